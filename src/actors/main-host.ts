// Actors hosted on the main thread instead of a worker thread of their own: the same
// body (worker-host.ts) over the same MessageChannels, so neither the actors nor the
// supervisor see a difference in their messages. A worker thread costs some 50 ms of
// CPU to boot (Node's bootstrap for a new isolate), more than a short run's whole
// record; the run hosts its record's actors here when its tree ended before they were
// worth a thread (src/run.ts).
//
// What differs from a thread: an exception that escapes an actor outside its handlers
// and notification listeners (in a timer, an unawaited promise) is the process's, not an
// actor failure; and terminate() cannot interrupt a busy actor, it stops and disconnects
// the actors. One of a listener (the merger's write on a full disk) fails the actors as
// a thread's end would: 'error', then 'exit'.
import { EventEmitter } from 'node:events';
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import { actorModule } from './modules.js';
import type { ActorDefinition } from './actor.js';
import { hostActors, type Hosting, type WorkerData } from './worker-host.js';
import { workerThreads } from '../builtins.js';

/** The part of a Worker the supervisor uses; a MainThreadHost is one too. */
export interface ActorThread {
  postMessage(message: unknown, transferList?: readonly TransferListItem[]): void;
  terminate(): Promise<number>;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'exit', listener: (code: number) => void): this;
  once(event: 'exit', listener: (code: number) => void): this;
}

export class MainThreadHost extends EventEmitter implements ActorThread {
  /** Our end of the channel LinkMessages go on (a worker's parent port). */
  private readonly toHost: MessagePort;
  private readonly hosting: Promise<Hosting | undefined>;
  private ended = false;

  constructor(data: WorkerData) {
    super();
    const { port1, port2 } = new (workerThreads().MessageChannel)();
    this.toHost = port1;
    this.hosting = startHosting(data, port2, (err) => this.failed(err)).then(
      (hosting) => {
        if (this.ended) hosting.close();
        return hosting;
      },
      (err: unknown) => {
        // as a worker whose entry threw: 'error', then 'exit'
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
        this.end(1);
        return undefined;
      },
    );
  }

  postMessage(message: unknown, transferList?: readonly TransferListItem[]): void {
    this.toHost.postMessage(message, transferList);
  }

  /** Stops what is still running and closes every channel; 'exit' (code 1, as for a
   * terminated worker) follows. */
  async terminate(): Promise<number> {
    if (!this.ended) {
      this.end(1);
      (await this.hosting)?.close();
    }
    return 1;
  }

  /** An actor's listener threw: reported as a thread's uncaught exception, and no
   * further message reaches its actors. */
  private failed(err: unknown): void {
    if (this.ended) return;
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
    this.end(1);
    void this.hosting.then((hosting) => hosting?.close());
  }

  private end(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.toHost.close();
    setImmediate(() => this.emit('exit', code));
  }
}

let builtIn: Promise<[typeof import('./storage.js'), typeof import('./collector.js'), typeof import('./merger.js')]> | undefined;
const builtInModules = () => (builtIn ??= Promise.all([import('./storage.js'), import('./collector.js'), import('./merger.js')]));

/** Loads the record's actors' modules (and what they load: zlib, the access writer)
 * ahead of a start on this thread, while nothing else runs (src/run.ts). A channel is
 * made and closed too: Node's first MessageChannel sets up its message port machinery
 * (a few ms), which the start would otherwise wait for. */
export function prepareMainThreadActors(): void {
  builtInModules().catch(() => undefined);
  const { port1, port2 } = new (workerThreads().MessageChannel)();
  port1.close();
  port2.close();
}

/** hostActors on this thread for `data`'s actors. The record's actors come from this
 * code itself (the CLI's bundle holds them: no second bundle to load and compile), any
 * other actor from its module. */
async function startHosting(data: WorkerData, parent: MessagePort, failed: (err: unknown) => void): Promise<Hosting> {
  const [storage, collector, merger] = await builtInModules();
  const builtIn = new Map<string, ActorDefinition>([
    [actorModule('storage').href, storage.default as ActorDefinition],
    [actorModule('collector').href, collector.default as ActorDefinition],
    [actorModule('merger').href, merger.default as ActorDefinition],
  ]);
  return hostActors({ builtIn, importModule: (url) => import(url), given: data, parent, failed });
}
