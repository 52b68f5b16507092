// Loads the node-addon-api addon and locates the static helpers built by `npm install`.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { EnvironmentError } from './errors.js';

/** Repository (package) root: the nearest directory above this module with uwrx's
 * package.json (dist/src/native.js is two levels below it, the bundle dist/src/cli/uwrx.cjs
 * three). */
export const packageRoot = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'uwrx') return dir;
    } catch {
      /* none here, or not ours */
    }
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

export interface NativeAddon {
  socketPair(): [number, number];
  closeFd(fd: number): void;
  /** Dies of signal `signo` (no core dump of its own); returns when its default action
   * does not end a process. */
  endBySignal(signo: number): void;
  /** Whether uwrx's process group is the foreground group of the terminal on one of its
   * standard descriptors: a Ctrl-C there reached the command tree too. */
  inTerminalForeground(): boolean;
  seqpacketPair(): [number, number];
  recvFd(sock: number): { id: number; fd: number } | null;
  /** Calls `callback` once when `fd` becomes readable (nothing is read); the watch does
   * not keep the event loop alive. Returns an id for cancelReadable. */
  whenReadable(fd: number, callback: () => void): number;
  cancelReadable(id: number): void;
  getXattr(path: string, name: string): Buffer | null;
  setXattr(path: string, name: string, value: Buffer): void;
  makeWhiteout(path: string): void;
  /** Sets a path's access and modification times to the nanosecond (a symlink's own). */
  setTimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void;
  /** Removes a file or a whole tree (absent is success); rejects with the errno. */
  removeTree(path: string): Promise<void>;
  /** Calls ops[i] on paths[i] with args[2i], args[2i+1], in order, in one thread-pool job
   * (src/fs.ts DirCalls); `failed`: the index of the call that failed (-1: none). */
  makeDirs(ops: number[], paths: string[], args: number[]): Promise<{ whiteouts: string[]; failed: number; errno: number }>;
  /** renameat2(from, to, RENAME_NOREPLACE) (paths as raw bytes or strings): 0, or the
   * errno (not thrown; EEXIST where `to` is there, an empty directory included). */
  renameNoReplace(from: Buffer | string, to: Buffer | string): number;
  /** Sets a directory's top-directory flag (chattr +T): 0, or the errno (not thrown). */
  setTopDir(path: string): number;
  /** accesses.tsv as rows (src/record/accesses.ts accessIndexRows); null when a line is
   * not regular. */
  scanAccessIndex(text: Buffer, header: string, ops: readonly string[]): { paths: string[]; rows: Int32Array } | null;
  /** The digest of the parts one after the other, a string as UTF-8 (Node's OpenSSL;
   * src/crypto.ts). */
  digest(algorithm: 'sha256' | 'sha1', parts: Array<Buffer | string>): Buffer;
  /** `n` bytes (at most 65536) from getrandom(2). */
  randomBytes(n: number): Buffer;
  [name: string]: unknown;
}

let loaded: NativeAddon | undefined;

/** Where the addon is (bin/uwrx and the io thread's boot load it before the bundle). */
export const addonFile = (): string => path.join(packageRoot, 'build', 'Release', 'uwrx_native.node');

export function native(): NativeAddon {
  if (loaded) return loaded;
  const file = addonFile();
  if (!existsSync(file)) {
    throw new EnvironmentError(`native addon missing at ${file}: run "npm install" in ${packageRoot}`);
  }
  loaded = createRequire(import.meta.url)(file) as NativeAddon;
  return loaded;
}

/** Path of a static helper (uwrx-init, uwrx-remove, uwrx-shim) built into src/native/out. */
export function helperPath(name: 'uwrx-init' | 'uwrx-remove' | 'uwrx-shim'): string {
  const file = path.join(packageRoot, 'src', 'native', 'out', name);
  if (!existsSync(file)) {
    throw new EnvironmentError(`${name} missing at ${file}: run "npm install" in ${packageRoot}`);
  }
  return file;
}

/** The addon's trace buffer primitives (src/native/addon/tracebuf.cc). */
export interface TraceAddon {
  punchHole(fd: number, offset: number, length: number): void;
  /** Buffer file `from` copied to a new file `to` (created; never replacing one), its
   * holes kept. Throws with the errno; a partial copy is removed. */
  copyBuffer(from: string, to: string): void;
  /** A finished buffer file read whole and removed: [its records, its recorder region
   * (header page and records) or undefined without one]; null, leaving it, when a part
   * is more than maxBytes; undefined when it is gone. */
  takeFile(file: string, maxBytes: number): [Buffer, Buffer | undefined] | null | undefined;
  /** The files `names` of `dir` taken as takeFile takes one, their parts in the one
   * Buffer returned. layout gets 4 numbers per name: its records' offset and length,
   * its region's offset and length (-1: none); records length TAKE_GONE or
   * TAKE_TOO_LARGE (left in place) instead. pool ([next, max] or [next, max, oldest]):
   * finished buffers (<pid>.ended, or flagged in closed) go to uwrx-init's pool as
   * free.<next> (next counts up) while fewer than max wait there, instead of being
   * deleted; oldest, the lowest free.<n> the caller's last listing of dir showed that no
   * process took (next if none), tells how many wait without a look at dir. closed (one
   * per name): non-zero where the writer closed a buffer not named `<pid>.ended` (the
   * buffer log told its end), which may then be pooled too. */
  takeFiles(dir: string, names: string[], maxBytes: number, layout: Int32Array, pool?: Int32Array, closed?: Uint8Array): Buffer;
  /** The buffer files of a traces directory as [pid, ended (1) or live (0)] pairs into
   * `out`: `<pid>` and `<pid>.ended` with the pid in decimal without a leading zero; the
   * pool's waiting `free.<n>` as [n, 2]; other names are left out. Returns the int32s the pairs take (those beyond out's
   * length not written), -1 when the directory is gone. */
  listBuffers(dir: string, out: Int32Array): number;
  /** For each open live buffer fds[i]: out[2i] its size, out[2i+1] where its recorder
   * region's committed records end (0 without a valid header); -1 where a call failed. */
  pollBuffers(fds: Int32Array, out: Float64Array): void;
  /** Allocated bytes of a buffer file's records and of its recorder region; undefined when it is gone or its region changed while measured. */
  bufferAllocated(file: string): [number, number] | undefined;
  /** clock_gettime(clockId) in ns (Linux ids: CLOCK_REALTIME 0, CLOCK_BOOTTIME 7). */
  clockNs(clockId: number): number;
  /** backlogMax: bytes of unread buffer before the writer waits (0: never). */
  traceWriterOpen(tracesDir: string, pid: number, backlogMax?: number): object;
  traceWriterAppend(writer: object, record: Buffer): void;
  traceWriterClose(writer: object, ended: boolean): void;
}

/** takeFiles' records length for a file gone, and for one left in place (too large). */
export const TAKE_GONE = -1;
export const TAKE_TOO_LARGE = -2;

export function traceAddon(): TraceAddon {
  return native() as unknown as TraceAddon;
}

export const CLOCK_REALTIME = 0;
export const CLOCK_BOOTTIME = 7;

/** Clock readings for a trace's ClockSnapshot. */
export function readTraceClocks(): { boottime: number; realtime: number } {
  const addon = traceAddon();
  return { boottime: addon.clockNs(CLOCK_BOOTTIME), realtime: addon.clockNs(CLOCK_REALTIME) };
}
