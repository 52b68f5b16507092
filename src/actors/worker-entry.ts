// The body of an actor worker thread as a module (src/actors/worker-host.ts): every
// actor module is imported. The CLI's record actors boot from their CommonJS bundle
// instead (io-bundle.ts).
import { hostActors } from './worker-host.js';

export type { ActorWorkerData, LinkMessage, WorkerData } from './worker-host.js';

await hostActors({ importModule: (url) => import(url) });
