// Loads the node-addon-api addon and locates the static helpers built by `npm install`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { EnvironmentError } from './errors.js';

/** Repository (package) root: dist/src/native.js lives two levels below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface NativeAddon {
  socketPair(): [number, number];
  closeFd(fd: number): void;
  seqpacketPair(): [number, number];
  recvFd(sock: number): { id: number; fd: number } | null;
  getXattr(path: string, name: string): Buffer | null;
  setXattr(path: string, name: string, value: Buffer): void;
  makeWhiteout(path: string): void;
  [name: string]: unknown;
}

let loaded: NativeAddon | undefined;

export function native(): NativeAddon {
  if (loaded) return loaded;
  const file = path.join(packageRoot, 'build', 'Release', 'uwrx_native.node');
  if (!existsSync(file)) {
    throw new EnvironmentError(`native addon missing at ${file}: run "npm install" in ${packageRoot}`);
  }
  loaded = createRequire(import.meta.url)(file) as NativeAddon;
  return loaded;
}

/** Path of a static helper (uwrx-init, uwrx-shim) built into src/native/out. */
export function helperPath(name: 'uwrx-init' | 'uwrx-shim'): string {
  const file = path.join(packageRoot, 'src', 'native', 'out', name);
  if (!existsSync(file)) {
    throw new EnvironmentError(`${name} missing at ${file}: run "npm install" in ${packageRoot}`);
  }
  return file;
}
