// Runs the real `bin/uwrx` as a user would, in a scratch directory.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');

export type { CommandResult as UwrxResult } from '../../src/scenarios/index.js';

const scratch: string[] = [];
// Each test file runs in its own process: its scratch directories go when it ends,
// whatever the tests' outcome.
process.on('exit', () => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the system's temporary directory, removed when the test
 * file's process exits. */
export function scratchDir(prefix = 'uwrx-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** Runs the real `bin/uwrx` (the same runner the bundled scenarios use). */
export { runUwrx as uwrx } from '../../src/scenarios/index.js';

/** The newest attempt of `step` in cwd's default build directory. */
export function lastAttempt(cwd: string, step = '0'): string {
  const dir = path.join(cwd, 'build', step);
  const attempts = readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  return path.join(dir, String(attempts[attempts.length - 1]));
}
