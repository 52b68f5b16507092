// The record's directory layout: build/<step>/{cmd,options}, build/<step>/<attempt>/...
// Steps and attempts are allocated with exclusive mkdir so concurrent runs never share
// an attempt (and runs without --step never share a step).
import { promises as fs, accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from '../crypto.js';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { escapeBytes, unescapeString } from './escape.js';
import type { Problem } from './problems.js';
import { errnoText, isErrno } from '../fs.js';

export const NUMERIC_STEP_INCREMENT = 10;

export interface AttemptPaths {
  buildDir: string;
  step: string;
  stepDir: string;
  attempt: number;
  attemptDir: string;
}

/** Options recorded in build/<step>/options (JSON), so a replay knows how the step ran. */
export interface StepOptions {
  net: boolean;
  parents: string[];
  replay?: string;
  [key: string]: unknown;
}

// The attempt's own small files and directories are made with synchronous calls: at
// the run's start and end nothing else waits for this thread, and each call through the
// thread pool costs a round trip of two threads (some 0.3 ms of CPU for a small
// writeFile, more wall on a loaded machine) where the call itself takes tens of us.

function listNumericEntries(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  return names.filter((n) => /^(0|[1-9][0-9]*)$/.test(n)).map(Number);
}

/** mkdir -p that fails instead of looping: Node's recursive mkdir spins forever when
 * mkdir reports ENOENT under an existing parent (e.g. below /proc). */
export async function makeDirectories(dir: string, role: string): Promise<void> {
  const abs = path.resolve(dir);
  // the usual cases in one or two calls: it is there, or only its last part is missing
  const there = statSync(abs, { throwIfNoEntry: false });
  if (there?.isDirectory()) return;
  if (!there) {
    try {
      mkdirSync(abs);
      return;
    } catch {
      // the walk below says what stands in the way
    }
  }
  const parts = abs.split('/').filter(Boolean);
  let current = '/';
  for (const part of parts) {
    current = path.join(current, part);
    try {
      mkdirSync(current);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) {
        throw new UsageError(`cannot create ${role} ${abs}: ${errnoText(err)} at ${current}`);
      }
    }
  }
  const st = statSync(abs);
  if (!st.isDirectory()) throw new UsageError(`${role} ${abs} is not a directory`);
}

/** A directory's stat, or undefined when the path is absent (ENOENT, or ENOTDIR: a file
 * stands in its way); any other failure is the user's to see, named with the path. */
function statOrAbsent(p: string, role: string, given: string): Stats | undefined {
  try {
    return statSync(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw new UsageError(`${role} ${given}: cannot look at ${p}: ${errnoText(err)}`);
  }
}

/** Whether this process may create entries in directory `dir` (EACCES, EROFS ...: the
 * errno that says why not), as access(2) sees it, root's powers and read-only mounts
 * included. */
function notWritable(dir: string): string | undefined {
  try {
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
    return undefined;
  } catch (err) {
    return errnoText(err);
  }
}

/** The nearest existing ancestor of absent path `abs`: it must be a directory where the
 * missing part can be made; a UsageError names it and says why not. */
function checkCreatable(abs: string, role: string): void {
  for (let up = path.dirname(abs); ; up = path.dirname(up)) {
    const st = statOrAbsent(up, role, abs);
    if (!st) continue; // (the root always exists)
    if (!st.isDirectory()) throw new UsageError(`${role} ${abs} cannot be created: ${up} is not a directory`);
    const why = notWritable(up);
    if (why) throw new UsageError(`${role} ${abs} cannot be created: ${up} is not writable (${why})`);
    return;
  }
}

/** Entries of build directory `dir` that are not steps: a step is a directory, numeric,
 * or named and holding its cmd, options or attempts (or nothing yet: a run just made it).
 * Hidden entries (.tmp, a .gitignore) are left alone. */
function foreignEntries(dir: string): string[] {
  const foreign: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const isDir = e.isDirectory() || (e.isSymbolicLink() && !!statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory());
    if (isDir && /^(0|[1-9][0-9]*)$/.test(e.name)) continue;
    if (isDir) {
      let inside: string[];
      try {
        inside = readdirSync(path.join(dir, e.name));
      } catch {
        inside = ['?'];
      }
      if (inside.length === 0 || inside.some((n) => n === 'cmd' || n === 'options' || /^(0|[1-9][0-9]*)$/.test(n))) continue;
    }
    foreign.push(e.name);
  }
  return foreign.sort();
}

/** Checks, before anything is made, that `dir` can take a new attempt: an existing one is
 * a directory this process can write that holds only steps (so a record is never mixed
 * into, say, a CMake build tree or a source directory), an absent one can be created.
 * Throws a UsageError naming the path and the reason. */
export function checkBuildDirectory(dir: string, role = 'build directory'): void {
  const abs = path.resolve(dir);
  const st = statOrAbsent(abs, role, abs);
  if (!st) return checkCreatable(abs, role);
  if (!st.isDirectory()) throw new UsageError(`${role} ${abs} is not a directory`);
  const why = notWritable(abs);
  if (why) throw new UsageError(`${role} ${abs} is not writable (${why})`);
  let foreign: string[];
  try {
    foreign = foreignEntries(abs);
  } catch (err) {
    throw new UsageError(`${role} ${abs} cannot be listed: ${errnoText(err)}`);
  }
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
    throw new UsageError(`${role} ${abs} is not a uwrx record (it holds ${shown}): choose another --build`);
  }
}

/** A directory that must exist, be one and be writable (--tmp); a UsageError names the
 * path and the reason. */
export function checkExistingDirectory(dir: string, role: string): void {
  const st = statOrAbsent(dir, role, dir);
  if (!st) {
    // a file on the way says more than "no such directory"
    for (let up = path.dirname(dir); up !== path.dirname(up); up = path.dirname(up)) {
      const above = statOrAbsent(up, role, dir);
      if (above && !above.isDirectory()) throw new UsageError(`${role} ${dir}: ${up} is not a directory`);
      if (above) break;
    }
    throw new UsageError(`${role} ${dir}: no such directory`);
  }
  if (!st.isDirectory()) throw new UsageError(`${role} ${dir}: not a directory`);
  const why = notWritable(dir);
  if (why) throw new UsageError(`${role} ${dir}: not writable (${why})`);
}

async function ensureBuildDir(buildDir: string): Promise<void> {
  await makeDirectories(buildDir, 'build directory');
}

/** The step a run without --step gets: largest numeric step + 10, or 0. Created here,
 * exclusively: when another run takes the same number first, the next one is tried. */
async function allocateNumericStep(buildDir: string): Promise<string> {
  for (;;) {
    const steps = listNumericEntries(buildDir);
    const next = steps.length === 0 ? 0 : Math.max(...steps) + NUMERIC_STEP_INCREMENT;
    try {
      mkdirSync(path.join(buildDir, String(next)));
      return String(next);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }
}

/** Next attempt number of a step, taken with an exclusive mkdir. */
async function allocateAttemptNumber(stepDir: string): Promise<number> {
  for (;;) {
    const attempts = listNumericEntries(stepDir);
    const next = attempts.length === 0 ? 0 : Math.max(...attempts) + 1;
    try {
      mkdirSync(path.join(stepDir, String(next)));
      return next;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }
}

/** The paths the next allocateAttempt would take, without creating anything. */
export async function nextAttempt(buildDir: string, step?: string): Promise<AttemptPaths> {
  const absBuild = path.resolve(buildDir);
  const steps = listNumericEntries(absBuild);
  const stepName = step ?? String(steps.length === 0 ? 0 : Math.max(...steps) + NUMERIC_STEP_INCREMENT);
  const stepDir = path.join(absBuild, stepName);
  const attempts = listNumericEntries(stepDir);
  const attempt = attempts.length === 0 ? 0 : Math.max(...attempts) + 1;
  return { buildDir: absBuild, step: stepName, stepDir, attempt, attemptDir: path.join(stepDir, String(attempt)) };
}

export async function allocateAttempt(buildDir: string, step?: string): Promise<AttemptPaths> {
  const absBuild = path.resolve(buildDir);
  await ensureBuildDir(absBuild);
  let stepName = step;
  if (stepName === undefined) stepName = await allocateNumericStep(absBuild);
  else await makeDirectories(path.join(absBuild, stepName), 'step directory');
  const stepDir = path.join(absBuild, stepName);
  const attempt = await allocateAttemptNumber(stepDir);
  return { buildDir: absBuild, step: stepName, stepDir, attempt, attemptDir: path.join(stepDir, String(attempt)) };
}

/** The attempt a path names, or a UsageError saying why it is not one. An attempt
 * directory is a numeric directory holding seed.txt (inside a step directory). */
export async function resolveAttemptDir(given: string, role: string): Promise<AttemptPaths> {
  const abs = path.resolve(given);
  let st;
  try {
    st = await fs.stat(abs);
  } catch {
    throw new UsageError(`${role} ${given}: no such attempt directory`);
  }
  if (!st.isDirectory()) throw new UsageError(`${role} ${given}: not a directory`);
  const real = await fs.realpath(abs);
  const attemptName = path.basename(real);
  const stepDir = path.dirname(real);
  const hasSeed = await exists(path.join(real, 'seed.txt'));
  if (!/^(0|[1-9][0-9]*)$/.test(attemptName) || !hasSeed) {
    throw new UsageError(`${role} ${given}: not an attempt directory (expected <build>/<step>/<attempt> with seed.txt)`);
  }
  return {
    buildDir: path.dirname(stepDir),
    step: path.basename(stepDir),
    stepDir,
    attempt: Number(attemptName),
    attemptDir: real,
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** cmd: one argument per line, escaped (arguments may hold newlines or any bytes). */
export function formatCommand(argv: string[]): string {
  return argv.map((a) => escapeBytes(a) + '\n').join('');
}

export function parseCommand(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map(unescapeString);
}

export function writeStepCommand(stepDir: string, argv: string[]): void {
  writeFileAtomicSync(path.join(stepDir, 'cmd'), formatCommand(argv));
}

export async function readStepCommand(stepDir: string): Promise<string[]> {
  const argv = parseCommand(await fs.readFile(path.join(stepDir, 'cmd'), 'utf8'));
  if (argv.length === 0) throw new UsageError(`${stepDir}/cmd is empty: no command to replay`);
  return argv;
}

export function writeStepOptions(stepDir: string, options: StepOptions): void {
  writeFileAtomicSync(path.join(stepDir, 'options'), JSON.stringify(options, null, 2) + '\n');
}

export async function readStepOptions(stepDir: string): Promise<StepOptions | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(stepDir, 'options'), 'utf8')) as StepOptions;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new UsageError(`${stepDir}/options is unreadable: ${(err as Error).message}`);
  }
}

/** parent/0, parent/1 ... (nearest parent first) and `replay`, as relative symlinks so a
 * build directory can be moved as a whole. */
export function linkParents(attemptDir: string, parents: string[]): void {
  if (parents.length === 0) return;
  const dir = path.join(attemptDir, 'parent');
  mkdirSync(dir);
  for (const [i, p] of parents.entries()) {
    symlinkSync(path.relative(dir, p), path.join(dir, String(i)));
  }
}

export async function linkReplay(attemptDir: string, replayed: string): Promise<void> {
  await fs.symlink(path.relative(attemptDir, replayed), path.join(attemptDir, 'replay'));
}

/** How the attempt ended, written last: `status` (JSON). */
export interface AttemptStatus {
  complete: boolean;
  status: number;
  exitCode: number | null;
  signal: number | null;
  reason?: string;
  startedAt: string;
  endedAt: string;
  processes: number;
  filesWritten: number;
  /** Processes left running by the command and terminated after the linger time. */
  terminated?: { count: number; processes: Array<{ pid: number; name: string }> };
  /** File calls (opens, stats, access checks, readlinks, mutations) by where they were
   * answered: in the process by the recorder (--fast-path), or through a seccomp
   * notification (the backstop). */
  fileCalls?: { inProcess: number; notified: number };
  /** Problems found while running (src/record/problems.ts); absent when none. */
  problems?: Problem[];
  /** User and system milliseconds of the command's processes, uwrx-init and uwrx itself
   * (src/features/trace.ts); absent from attempts before it was kept. */
  cpuMs?: { command: number; init: number; supervisor: number };
  /** Notifications uwrx-init answered, by system call name, and the microseconds its
   * handlers spent on each name in all (from taking the call to answering it: the time
   * the calling thread waited, less the kernel's round trip); absent before they were kept. */
  notifications?: Record<string, number>;
  notificationUs?: Record<string, number>;
  /** HTTP exchanges served to the sandbox, response bytes, DNS questions (src/network). */
  network?: { requests: number; bytes: number; unmatched: number; errors: number; queries: number; git?: number; gitBytes?: number; problems?: string[] };
}

export async function writeAttemptStatus(attemptDir: string, status: AttemptStatus): Promise<void> {
  writeFileAtomicSync(path.join(attemptDir, 'status'), JSON.stringify(status, null, 2) + '\n');
}

/** The attempt's status; undefined when it has none (yet). A small file: read without
 * the thread pool (see listNumericEntries). */
export function readAttemptStatus(attemptDir: string): AttemptStatus | undefined {
  try {
    return JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as AttemptStatus;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** A name beside `file` that no other writer uses. */
const tempNameFor = (file: string): string => `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Write to a temporary name and rename, so readers never see half a file; a write that
 * fails (a full disk) leaves no temporary file behind. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempNameFor(file);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** writeFileAtomic for the record's small files (see listNumericEntries). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  const tmp = tempNameFor(file);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* the write's error is the one to report */
    }
    throw err;
  }
}

/** The attempt a new attempt of `step` builds on by default: the latest complete attempt
 * (`status` says complete: not one still running, interrupted or killed) of the nearest
 * earlier numeric step that has one. `passedOver` lists the nearer steps whose attempts
 * all are incomplete. Named steps have no order, so they get no default parent. */
export async function defaultParent(buildDir: string, step: string): Promise<{ parent?: string; passedOver: string[] }> {
  const passedOver: string[] = [];
  if (!/^(0|[1-9][0-9]*)$/.test(step)) return { passedOver };
  const earlier = listNumericEntries(buildDir).filter((s) => s < Number(step)).sort((a, b) => b - a);
  for (const s of earlier) {
    const stepDir = path.join(buildDir, String(s));
    const attempts = listNumericEntries(stepDir).sort((a, b) => b - a);
    let any = false;
    for (const a of attempts) {
      const dir = path.join(stepDir, String(a));
      if (!existsSync(path.join(dir, 'seed.txt'))) continue;
      any = true;
      if (completeAttempt(dir)) return { parent: dir, passedOver };
    }
    if (any) passedOver.push(stepDir);
  }
  return { passedOver };
}

/** Whether the attempt's status says complete (false when it has none, or unreadable). */
function completeAttempt(attemptDir: string): boolean {
  try {
    return !!readAttemptStatus(attemptDir)?.complete;
  } catch {
    return false;
  }
}

/** The parent attempts an attempt was linked to, nearest first. */
export async function readParents(attemptDir: string): Promise<string[]> {
  const dir = path.join(attemptDir, 'parent');
  const out: string[] = [];
  for (let i = 0; ; i++) {
    try {
      out.push(path.resolve(dir, await fs.readlink(path.join(dir, String(i)))));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return out;
      throw err;
    }
  }
}
