// The run features of `uwrx run`, in the order their hooks are called. Order matters
// where one feature decides what a later one uses (replay sets the seed that
// reproducibility writes) and for the finish steps (see below). A new capability is one
// more entry here.
import type { RunOptions } from '../run.js';
import type { FeatureHooks, RunFeature } from './feature.js';
import replay from './replay.js';
import reproducibility from './reproducibility.js';
import processes from './processes.js';
import files from './files.js';
import network from './network.js';
import trace from './trace.js';
import rebuild from './rebuild.js';

// network before trace: its actors close their trace files when they finish; rebuild's
// index is made from the finished record (procs.tsv, accesses.tsv, files.meta) in derive.
// The files' collection (uppers, files.meta: the longest finish step, on the IO thread)
// comes last, so that rebuild reads the finished trace on the main thread meanwhile.
// Finish steps that need no other's run at once (RunFeature.finishAfter): a short run's
// end is a chain of round trips to the IO thread and the thread pool otherwise.
export const RUN_FEATURES: readonly RunFeature[] = [replay, reproducibility, processes, network, trace, rebuild, files];

export interface ActiveFeature {
  name: string;
  hooks: FeatureHooks;
  /** RunFeature.finishAfter. */
  finishAfter?: readonly string[];
}

/** Fresh hooks of the features that take part in a run with these options. */
export function activeFeatures(options: RunOptions, features: readonly RunFeature[] = RUN_FEATURES): ActiveFeature[] {
  return features
    .filter((f) => f.enabled?.(options) ?? true)
    .map((f) => ({ name: f.name, hooks: f.create(), ...(f.finishAfter ? { finishAfter: f.finishAfter } : {}) }));
}

/** Calls every feature's finish hook, each once the finish steps it waits for
 * (RunFeature.finishAfter) have ended, and resolves once all have settled: with the
 * first failure in list order, if any. A feature whose predecessor failed does not
 * finish (it would work on a record that is not there). */
export async function finishAll(features: readonly ActiveFeature[], finish: (f: ActiveFeature) => Promise<void> | void): Promise<void> {
  const ended = new Map<string, Promise<void>>();
  const all: Array<Promise<void>> = [];
  for (const f of features) {
    const before = f.finishAfter === undefined ? [...all] : f.finishAfter.flatMap((name) => ended.get(name) ?? []);
    const step = Promise.all(before).then(() => finish(f));
    step.catch(() => undefined);
    ended.set(f.name, step);
    all.push(step);
  }
  const settled = await Promise.allSettled(all);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}
