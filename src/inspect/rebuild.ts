// `uwrx inspect rebuild <attempt>`: one line per process on the skippable list (from the
// attempt's rebuild.json): its pid, executable, whether it ran or was skipped, and why.
import { UsageError } from '../errors.js';
import { requireAttemptDirectory } from '../record/reader.js';
import { readRebuildIndex } from '../rebuild/index-file.js';

export interface RebuildRow {
  pid: number;
  exe: string;
  decision: 'skipped' | 'ran';
  reason: string;
}

export function rebuildRows(attemptDir: string): RebuildRow[] {
  requireAttemptDirectory(attemptDir);
  let index;
  try {
    index = readRebuildIndex(attemptDir);
  } catch (err) {
    throw new UsageError(`uwrx inspect rebuild: ${(err as Error).message}`);
  }
  if (!index) throw new UsageError(`uwrx inspect rebuild: ${attemptDir} has no rebuild.json (recorded by an older uwrx, or the run did not finish)`);
  // a process that ran tells why it could not be skipped next time, when it could not
  return index.processes.map((e) => ({ pid: e.pid, exe: e.exe, decision: e.decision, reason: e.reason }));
}

/** Text: `pid decision exe reason` tab separated, then a count; json: an array. */
export function inspectRebuild(attemptDir: string, format: 'text' | 'json', out: NodeJS.WritableStream): void {
  const rows = rebuildRows(attemptDir);
  if (format === 'json') {
    out.write(JSON.stringify(rows, null, 1) + '\n');
    return;
  }
  for (const r of rows) out.write(`${r.pid}\t${r.decision}\t${r.exe}\t${r.reason}\n`);
  const skipped = rows.filter((r) => r.decision === 'skipped').length;
  out.write(`${skipped} of ${rows.length} skipped\n`);
}
