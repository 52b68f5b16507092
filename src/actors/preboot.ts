// A worker thread booted before anyone asked for it: bin/uwrx starts the io thread of
// `uwrx run` (the record's actors, IO_THREAD) before it loads the CLI bundle, so that the
// thread's own start (some 40 ms of CPU) and its imports run beside the bundle's load
// and the run's set-up instead of after them. The supervisor takes it over when it
// creates a worker for the same actor modules, and hands it what it would have given a
// new worker (src/actors/worker-host.ts, PrebootData); otherwise it is never used and,
// being unreferenced, never keeps the process alive.
//
// bin/uwrx and the CLI bundle each have their own copy of this module: the worker is
// kept on globalThis under a registered symbol so that both find it.
import { Worker } from 'node:worker_threads';

const KEY = Symbol.for('uwrx.prebooted-worker');

interface Prebooted {
  worker: Worker;
  entry: string;
  modules: string[];
  /** It failed or exited before it was taken: not used (a new worker reports why). */
  broken: boolean;
}

/** What a prebooted worker gets as workerData (worker-host.ts): modules to import at
 * once (unless built into its entry); its actors come in the first message on its parent
 * port. */
export interface PrebootData {
  preload: string[];
}

type Holder = { [KEY]?: Prebooted };

/** Starts a worker running `entry` that imports `modules` and waits to be taken (one at
 * a time: undefined when one is already waiting). `data`: what else its workerData holds
 * (see workerEntry in modules.ts). */
export function prebootWorker(entry: URL, modules: URL[], name: string, data: Record<string, string> = {}): Worker | undefined {
  const holder = globalThis as Holder;
  if (holder[KEY]) return undefined;
  const workerData: PrebootData = { ...data, preload: modules.map(String) };
  const worker = new Worker(entry, { workerData, name });
  worker.unref();
  const p: Prebooted = { worker, entry: String(entry), modules: workerData.preload, broken: false };
  // an 'error' without a listener would end the process
  const broken = () => (p.broken = true);
  worker.on('error', broken).on('exit', broken);
  holder[KEY] = p;
  return worker;
}

/** The prebooted worker if it runs `entry` and imported the modules `modules` names (in
 * any order), and did not fail; it is then referenced again and its caller's. A worker
 * that does not fit is terminated. Each prebooted worker is handed out at most once. */
export function takePrebooted(entry: string, modules: string[]): Worker | undefined {
  const holder = globalThis as Holder;
  const p = holder[KEY];
  if (!p) return undefined;
  delete holder[KEY];
  const wanted = new Set(modules);
  const have = new Set(p.modules);
  const fits = p.entry === entry && wanted.size === have.size && [...wanted].every((m) => have.has(m));
  if (!fits || p.broken) {
    void p.worker.terminate();
    return undefined;
  }
  p.worker.removeAllListeners('error').removeAllListeners('exit');
  p.worker.ref();
  return p.worker;
}
