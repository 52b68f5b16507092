// The entry of a worker thread that hosts the record's actors in the bundled CLI: loads
// their CommonJS bundle (io-bundle.ts; its path in workerData.bundle) with V8's code
// cache, which the user cache keeps as it keeps the CLI's (src/cli/code-cache.ts:
// invalidated the same way, and a missing, stale or damaged one only costs a compile).
// After a miss the cache is written once the thread's actors have stopped, so that it
// holds every function the run compiled. Itself bundled as CommonJS (dist/src/cli/boot/).
import { workerData } from 'node:worker_threads';
import { loadBundle, userCodeCache } from '../cli/code-cache.js';
import type { HostOptions } from './worker-host.js';

/** What the thread needs besides hostActors' own workerData. */
export interface WorkerBootData {
  /** Absolute path of the actors' CommonJS bundle. */
  bundle: string;
  /** Absolute path of the native addon (the code cache's digests). */
  addon: string;
}

type Host = (options: HostOptions) => Promise<unknown>;

const { bundle, addon } = workerData as WorkerBootData;
const loaded = loadBundle(bundle, 'io', userCodeCache(addon));
if (process.env.UWRX_DEBUG_TIMING && process.env.UWRX_DEBUG_TIMING !== '0') {
  process.stderr.write(`uwrx timing: io thread code cache ${loaded.cache}${loaded.cacheFile ? ` (${loaded.cacheFile})` : ''}\n`);
}
const host = loaded.exports.host as Host;
host({
  importModule: (url) => import(url),
  ...(loaded.cache === 'miss' ? { allStopped: loaded.saveCache } : {}),
}).catch((err: unknown) => {
  // an uncaught error, as it would be at the top level of an ES module entry
  process.nextTick(() => {
    throw err;
  });
});
