// The rebuild index a run wrote, checked against the one its finished record gives.
import type { ExecutionContext } from 'ava';
import { readRebuildIndex } from '../../src/rebuild/index-file.js';
import { CaptureIndexer } from '../../src/rebuild/capture.js';
import { HashCache } from '../../src/rebuild/hashes.js';

/** The entries of the processes that ran, as an indexer made from the finished record
 * gives them: the run built its index from what it read during and right after the
 * command (accesses, procs.tsv, the versions in the layers below), before files.meta and
 * the version directories were in the attempt; this indexer reads all of them at once.
 * `buildDir`: the record's build directory (not a path the command saw). Returns how many
 * were compared. */
export function sameAsFinishedRecord(t: ExecutionContext, attemptDir: string, buildDir: string): number {
  const index = readRebuildIndex(attemptDir);
  if (!index) throw new Error(`${attemptDir} has no rebuild index`);
  const indexer = new CaptureIndexer(attemptDir, new HashCache(), [buildDir]);
  const ran = index.processes.filter((e) => e.decision === 'ran');
  for (const e of ran) {
    const again = indexer.entry(e, 'ran', e.reason);
    t.deepEqual(
      { inputs: again.inputs, outputs: again.outputs, unsafe: again.unsafe, status: again.status, pids: again.stdio.pids },
      { inputs: e.inputs, outputs: e.outputs, unsafe: e.unsafe, status: e.status, pids: e.stdio.pids },
      e.argv.join(' '),
    );
  }
  return ran.length;
}
