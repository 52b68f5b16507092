// A replay reuses its attempt's T0, so its wall clock starts where the recorded run's
// did. A host file edited since that run (the usual reason to replay) would then be
// newer than the replay's clock: make would report clock skew and rebuild its targets
// at every invocation, which it never does natively. The replay's wall clock therefore
// starts after the newest host file the recorded run looked at that changed since: the
// files of its access index (read, executed, stat'ed, or probed and missing then),
// modified after its T0 and not in the future (a file dated ahead of the real clock is
// skewed natively too, and must not drag the replay's clock there); the clock start
// moves only past one that is not older than it (time.ts, layerTimes), so a replay of
// an unchanged tree keeps the recorded clocks. Directories are left out: their times move
// with entries nobody built from (the record's own directory, made in the working
// directory as the first run started).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../fs.js';
import { ACCESS_INDEX_FILE, ACCESS_INDEX_OPS, AccessIndexError, accessIndexRows, type AccessOp } from '../record/accesses.js';
import { unescapeBytes } from '../record/escape.js';

/** What a process looked at, as opposed to what it changed (a listing names a directory,
 * which is left out). */
const LOOKED_AT: ReadonlySet<AccessOp> = new Set<AccessOp>(['read', 'missing', 'stat', 'readlink', 'exec']);
const LOOKED_AT_CODES: ReadonlySet<number> = new Set(ACCESS_INDEX_OPS.flatMap((op, i) => (LOOKED_AT.has(op) ? [i] : [])));

/** Kernel file systems whose times move on their own (a terminal's on every write). */
const KERNEL_TREES = ['/proc/', '/sys/', '/dev/'];

/**
 * The newest modification time (ns since the epoch) in (sinceNs, nowNs] of the host files
 * the attempt looked at, as they are now; undefined when none changed in that window or
 * the attempt has no readable access index.
 */
export function hostNewestSinceNs(attemptDir: string, sinceNs: bigint, nowNs: bigint): bigint | undefined {
  let text: Buffer;
  try {
    text = readFileSync(path.join(attemptDir, ACCESS_INDEX_FILE));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let index;
  try {
    index = accessIndexRows(text);
  } catch (err) {
    // a damaged index (uwrx check names it) leaves the recorded clock: the replay still runs
    if (err instanceof AccessIndexError) return undefined;
    throw err;
  }
  const { paths, rows } = index;
  const candidates = new Set<string>();
  for (let i = 0; i + 2 < rows.length; i += 3) {
    if (!LOOKED_AT_CODES.has(rows[i + 1]!)) continue;
    const escaped = paths[rows[i + 2]!]!;
    if (!escaped.startsWith('/') || KERNEL_TREES.some((tree) => escaped.startsWith(tree))) continue;
    candidates.add(escaped);
  }
  let newest: bigint | undefined;
  for (const escaped of candidates) {
    // a file the recorded run made exists only in its record: nothing here
    let st;
    try {
      st = statSync(unescapeBytes(escaped), { bigint: true, throwIfNoEntry: false });
    } catch {
      continue; // not a directory on the way, no permission: not a file the replay sees
    }
    if (!st || st.isDirectory() || st.mtimeNs <= sinceNs || st.mtimeNs > nowNs) continue;
    if (newest === undefined || st.mtimeNs > newest) newest = st.mtimeNs;
  }
  return newest;
}
