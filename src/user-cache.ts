// The per-user cache of things worth keeping between runs (the combined ld.so, the
// hashes of the toolchain's files): $XDG_CACHE_HOME/uwrx, else ~/.cache/uwrx. Every
// entry can be made again, so a cache that cannot be read or written only costs time.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function userCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'uwrx');
}

/** Writes `file` in the cache whole or not at all (a temporary name, then a rename), so
 * that concurrent runs never read half of it; false when it could not be written.
 * Synchronous: it also runs at process exit (the code cache). */
export function keepInCache(file: string, bytes: Buffer | string, mode = 0o644): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, bytes, { mode });
    renameSync(tmp, file);
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // no directory to have written it in
    }
    return false;
  }
}

/** Removes all but the `keep` most recently modified entries of the cache (`dir`) whose
 * names start with `prefix` (older uwrx or ld.so versions, and uwrx checkouts that are
 * gone, leave theirs behind). */
export function pruneCache(prefix: string, keep: number, dir = userCacheDir()): void {
  let entries: Array<{ file: string; mtime: number }>;
  try {
    entries = readdirSync(dir)
      .filter((n) => n.startsWith(prefix) && !n.endsWith('.tmp'))
      .map((n) => {
        const file = path.join(dir, n);
        return { file, mtime: statSync(file).mtimeMs };
      });
  } catch {
    return;
  }
  entries.sort((a, b) => b.mtime - a.mtime);
  for (const e of entries.slice(keep)) {
    try {
      unlinkSync(e.file);
    } catch {
      // another run's prune got there first
    }
  }
}
