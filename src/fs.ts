// Filesystem calls where one failure means "not there": the errno test written once,
// so callers say what they expect (absent, or a directory, or nothing to list) instead
// of casting errors inline.
import { lstatSync, promises as fs, readdirSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
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
