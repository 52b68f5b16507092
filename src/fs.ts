// Filesystem calls where one failure means "not there": the errno test written once,
// so callers say what they expect (absent, or a directory, or nothing to list) instead
// of casting errors inline.
import { lstatSync, promises as fs, readdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { native } from './native.js';

/** The errno code of a failed call ('ENOENT' ...), or undefined for other errors. */
export function errnoOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** True when `err` is a failed call with one of these errno codes. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoOf(err);
  return code !== undefined && codes.includes(code);
}

/** The errno code, or the message when there is none: for one-line error texts. */
export function errnoText(err: unknown): string {
  return errnoOf(err) ?? (err instanceof Error ? err.message : String(err));
}

// ENOTDIR: an ancestor is a file, so the path does not exist in that tree either.
const ABSENT = ['ENOENT', 'ENOTDIR'];

/** lstat, or null when the path does not exist. Other errors are thrown. */
export async function lstatOrNull(p: string | Buffer): Promise<Stats | null> {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if (isErrno(err, ...ABSENT)) return null;
    throw err;
  }
}

/** Entries of a directory, or none when it does not exist. Other errors are thrown. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if (isErrno(err, ...ABSENT)) return [];
    throw err;
  }
}

/** A file's text, or undefined when it does not exist. Other errors are thrown. */
export async function readFileOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, ...ABSENT)) return undefined;
    throw err;
  }
}

/** Synchronous stat/lstat that answer null for any failure: for probing the host, where
 * an unreadable path counts as absent (the command could not see it either). */
export function statSyncOrNull(p: string | Buffer): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

export function lstatSyncOrNull(p: string | Buffer): Stats | null {
  try {
    // no error made for a missing path: lookups in a record's layers mostly miss
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** Sorted entries of a directory; none when it cannot be read. */
export function readdirSyncOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function isDirectorySync(p: string): boolean {
  return statSyncOrNull(p)?.isDirectory() ?? false;
}

/** Removes a tree even where overlayfs left directories without permissions (work/work
 * is mode 000). The addon does it in one thread-pool job (src/native/addon/remove.cc);
 * where it cannot (no addon, a tree deeper than the open files allow), fs.rm does. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await native().removeTree(dir);
    return;
  } catch {
    // fs.rm below reports what really stands in the way
  }
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
    await makeWritable(dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  try {
    await fs.chmod(dir, 0o700);
  } catch {
    return;
  }
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await makeWritable(path.join(dir, e.name));
}

/** Directory-making calls to carry out in order, off the main thread, in one job
 * (src/native/addon/dirs.cc): each is what Node's synchronous call of the same name
 * does, and a failure is the error that call would have thrown. */
export class DirCalls {
  private readonly ops: number[] = [];
  private readonly paths: string[] = [];
  private readonly args: number[] = [];
  /** The path of each whiteout, in order. */
  private readonly whiteouts: string[] = [];

  mkdir(p: string, options?: { recursive: true }): this {
    return this.add(options?.recursive ? DirOp.mkdirP : DirOp.mkdir, p);
  }
  chmod(p: string, mode: number): this {
    return this.add(DirOp.chmod, p, mode);
  }
  chown(p: string, uid: number, gid: number): this {
    return this.add(DirOp.chown, p, uid, gid);
  }
  /** Times in seconds, as utimesSync takes them. */
  utimes(p: string, atime: number, mtime: number): this {
    return this.add(DirOp.utimes, p, atime, mtime);
  }
  /** An overlayfs whiteout (a 0/0 character device); its identity is returned. */
  whiteout(p: string): this {
    this.whiteouts.push(p);
    return this.add(DirOp.whiteout, p);
  }

  /** Carries the calls out; resolves with each whiteout's identity (`<inode>:<change
   * time in ns>`) by path. */
  async run(): Promise<Map<string, string>> {
    const done = await native().makeDirs(this.ops, this.paths, this.args);
    if (done.failed >= 0) throw callError(done.errno, DIR_OP_CALLS[this.ops[done.failed]!]!, this.paths[done.failed]!);
    return new Map(this.whiteouts.map((w, i) => [w, done.whiteouts[i]!]));
  }

  private add(op: DirOp, p: string, a = 0, b = 0): this {
    this.ops.push(op);
    this.paths.push(p);
    this.args.push(a, b);
    return this;
  }
}

/** The calls of dirs.cc, by number. */
const enum DirOp {
  mkdir = 0,
  mkdirP = 1,
  chmod = 2,
  chown = 3,
  utimes = 4,
  whiteout = 5,
}

/** The system call Node names in its error for each DirOp. */
const DIR_OP_CALLS = ['mkdir', 'mkdir', 'chmod', 'chown', 'utime', 'mknod'];

/** The error Node's own call would throw for `errno` (positive). */
function callError(errno: number, syscall: string, p: string): NodeJS.ErrnoException {
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, 'unknown error'];
  return Object.assign(new Error(`${code}: ${description}, ${syscall} '${p}'`), { errno: -errno, code, syscall, path: p });
}
