// Builds the C test drivers of test/native with the host's cc, once per test process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const nativeDir = join(repoRoot, 'src/native');
export const driverDir = join(repoRoot, 'test/native');

let outDir: string | undefined;

/** Compiles `sources` (relative to the repo root) into an executable; returns its path. */
/** Drivers built by this test process: a second test asking for the same one gets it as
 * built (rebuilding it in place could fail a run of it that another test has started). */
const built = new Map<string, string>();

export function buildDriver(name: string, sources: string[], flags: string[] = []): string {
  const key = JSON.stringify([name, sources, flags]);
  const done = built.get(key);
  if (done) return done;
  if (!outDir) {
    const dir = (outDir = mkdtempSync(join(tmpdir(), 'uwrx-native-test-')));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const out = join(outDir, name);
  execFileSync(
    'cc',
    ['-O2', '-Wall', '-Wextra', '-Werror', '-I', join(nativeDir, 'common'), '-I', join(nativeDir, 'include'),
      '-o', out, ...sources.map((s) => join(repoRoot, s)), ...flags],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  built.set(key, out);
  return out;
}

/** Runs a line-oriented driver: one answer line per request line. */
export function askDriver(driver: string, requests: string[]): string[] {
  const out = execFileSync(driver, { input: requests.join('\n') + '\n', maxBuffer: 64 << 20 });
  return out.toString().trimEnd().split('\n');
}
