// Runs `uwrx run` as the current user and, when that is root, as an unprivileged user
// too (created on first use), each in a fresh working directory it owns.
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uwrxBin } from './uwrx.js';

export const isRoot = process.getuid?.() === 0;
export const TEST_USER = 'uwrxtest';

export interface Runner {
  name: string;
  /** uid/gid the command runs as (for chown of test directories). */
  uid: number;
  gid: number;
  /** Prefix that runs a command as this runner's user. */
  prefix: string[];
}

function ensureTestUser(): Runner {
  if (spawnSync('id', ['-u', TEST_USER]).status !== 0) {
    const made = spawnSync('useradd', ['--no-create-home', '--shell', '/bin/sh', TEST_USER]);
    if (made.status !== 0) throw new Error(`useradd ${TEST_USER}: ${made.stderr}`);
  }
  const uid = Number(spawnSync('id', ['-u', TEST_USER]).stdout.toString());
  const gid = Number(spawnSync('id', ['-g', TEST_USER]).stdout.toString());
  // setpriv execs in place, so signals sent to the child reach uwrx itself
  return { name: 'unprivileged', uid, gid, prefix: ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--'] };
}

/** The current user, then (when that is root) the unprivileged test user. */
export const runners: Runner[] = [{ name: isRoot ? 'root' : 'user', uid: process.getuid!(), gid: process.getgid!(), prefix: [] }];
if (isRoot) runners.push(ensureTestUser());

export interface RunOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  attemptDir: string;
  ms: number;
}

const made: string[] = [];

/** Removes every directory workDir made (call from test.after.always). */
export async function removeWorkDirs(): Promise<void> {
  for (const dir of made.splice(0)) await fs.rm(dir, { recursive: true, force: true });
}

/** A fresh directory owned by the runner: the command's cwd, with build/ inside. */
export async function workDir(r: Runner): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uwrx-sandbox-test-'));
  made.push(dir);
  await fs.chmod(dir, 0o755);
  await fs.chown(dir, r.uid, r.gid).catch(() => undefined);
  return dir;
}

/** Registers a directory the test made itself for removal with the work directories. */
export function removeLater(dir: string): void {
  made.push(dir);
}

export function latestAttempt(build: string): string {
  const steps = readdirSync(build).filter((s) => /^\d+$/.test(s)).sort((a, b) => Number(a) - Number(b));
  const step = path.join(build, steps[steps.length - 1]!);
  const attempts = readdirSync(step).filter((s) => /^\d+$/.test(s)).sort((a, b) => Number(a) - Number(b));
  return path.join(step, attempts[attempts.length - 1]!);
}

/** `uwrx run --quiet --build <dir>/build -- argv` as the runner, without waiting. */
export function startUwrx(r: Runner, dir: string, argv: string[]) {
  const [cmd, ...args] = [...r.prefix, ...uwrxArgv(dir, argv)];
  return spawn(cmd!, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
}

/** The argv of `uwrx run --quiet --build <dir>/build -- argv` (without the runner's prefix). */
export function uwrxArgv(dir: string, argv: string[]): string[] {
  return [process.execPath, uwrxBin, 'run', '--quiet', '--build', path.join(dir, 'build'), '--', ...argv];
}

export async function runUwrx(r: Runner, dir: string, argv: string[]): Promise<RunOutcome> {
  const started = Date.now();
  const child = startUwrx(r, dir, argv);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close', not 'exit': the output may still be on its way when the process has exited
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr, attemptDir: latestAttempt(path.join(dir, 'build')), ms: Date.now() - started };
}
