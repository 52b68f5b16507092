// Runs the real `bin/uwrx` as a user would, in a scratch directory.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { runUwrx } from '../../src/scenarios/index.js';
import { isRemovingName } from '../../src/sandbox/run-dir-removal.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');
/** The `uwrx` command as npm installs it (package.json "bin"): the program that notes the
 * caller's descriptors and starts bin/uwrx (src/native/launch/main.c). */
export const uwrxCommand = path.join(repoRoot, (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: { uwrx: string } }).bin.uwrx);

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

/** A scratch directory holding `nat` and `rec`, two empty directories of the same name
 * length: one for the native run of a command, one for the run under uwrx, so that
 * paths the command prints or writes differ only in that name. */
export function nativeAndRecordedDirs(prefix: string): { cwd: string; nat: string; rec: string } {
  const cwd = scratchDir(prefix);
  const nat = path.join(cwd, 'nat');
  const rec = path.join(cwd, 'rec');
  mkdirSync(nat);
  mkdirSync(rec);
  return { cwd, nat, rec };
}

/** What `tmpRoot` (a run's --tmp, <build>/.tmp by default) holds once the run
 * directories renamed aside for removal are gone: uwrx-remove goes on after uwrx exited
 * (src/sandbox/run-dir-removal.ts). Gives up waiting after `timeoutMs`. */
export async function afterRemovals(tmpRoot: string, timeoutMs = 30_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const names = readdirSync(tmpRoot);
    if (!names.some(isRemovingName) || Date.now() > until) return names;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs the real `bin/uwrx` (the same runner the bundled scenarios use). */
export { runUwrx as uwrx } from '../../src/scenarios/index.js';

/** The newest attempt of `step` in cwd's default build directory. */
export function lastAttempt(cwd: string, step = '0'): string {
  const dir = path.join(cwd, 'build', step);
  const attempts = readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  return path.join(dir, String(attempts[attempts.length - 1]));
}

/**
 * For the answers uwrx gives both inside the process (the fast path) and through
 * notifications: runs `command` (`uwrx run --quiet`, in dir's default build directory,
 * a fresh one) captured on the notification path, replays that capture in process and
 * notified, then captures in process (with `fastOptions`) and replays that notified;
 * each replay must print what its capture printed. Returns the first capture's stdout
 * for the caller's own checks.
 */
export async function sameOnBothPaths(t: ExecutionContext, dir: string, command: string[], fastOptions: string[] = []): Promise<string> {
  const run = async (options: string[]) => {
    const r = await runUwrx(['run', '--quiet', ...options, '--', ...command], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    return r.stdout;
  };
  const captured = await run(['--no-fast-path']);
  const attempt = path.join(dir, 'build', '0', '0');
  t.is(await run(['--fast-path', '--replay', attempt]), captured, 'replayed in process: the same');
  t.is(await run(['--no-fast-path', '--replay', attempt]), captured, 'replayed notified: the same');
  const fastCapture = await run(['--fast-path', ...fastOptions]);
  // the next step's first attempt
  t.is(await run(['--no-fast-path', '--replay', path.join(dir, 'build', '10', '0')]), fastCapture, 'a capture in process, replayed notified');
  return captured;
}

/** strace -i's addresses (16 hex digits) of a call made from the recorder's gate
 * (src/native/include/uwrx_recorder.h): the near gate, which processes without
 * address-space randomization use, and the far one. */
export const GATE_IPS = ['00007fffc0000002', '0000757700000002'];

/** Whether an strace -i line shows a call made from the gate. */
export const fromGate = (line: string): boolean => GATE_IPS.some((ip) => line.includes(`[${ip}]`));
