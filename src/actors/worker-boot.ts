// The entry of a worker thread that hosts the record's actors in the bundled CLI: loads
// their CommonJS bundle (io-bundle.ts; its path in workerData.bundle) with V8's code
// cache (io-load.ts). Itself bundled as CommonJS (dist/src/cli/boot/).
import { workerData } from 'node:worker_threads';
import { loadIoActors } from './io-load.js';

/** What the thread needs besides hostActors' own workerData. */
export interface WorkerBootData {
  /** Absolute path of the actors' CommonJS bundle. */
  bundle: string;
}

const { bundle } = workerData as WorkerBootData;
const { host, allStopped } = loadIoActors(bundle, 'io thread');
host({ importModule: (url) => import(url), ...(allStopped ? { allStopped } : {}) }).catch((err: unknown) => {
  // an uncaught error, as it would be at the top level of an ES module entry
  process.nextTick(() => {
    throw err;
  });
});
