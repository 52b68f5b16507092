// Starts actors in worker threads (in order; the threads of one start() call boot in
// parallel), or on the main thread when asked (main-host.ts), stops them (in reverse
// order), and turns any actor failure into one event and an orderly shutdown of the
// others.
//
// Actors talk to the supervisor through a Peer over a MessageChannel. Actor-to-actor
// traffic does not go through the main thread: an actor whose spec lists
// `connect: ['storage']` gets its own MessageChannel to the storage actor, handed to
// both workers by the supervisor (see worker-host.ts), so a busy main thread never
// sits between the collector and the merger; two actors started together in one
// thread are linked by their host directly (ActorWorkerData.localLinks).
import type { MessagePort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { EventEmitter } from 'eventemitter3';
import { CONTROL } from './actor.js';
import { Peer, RequestTimeoutError, asError, type RequestOptions } from './peer.js';
import { PortTransport } from './transport.js';
import { workerEntry } from './modules.js';
import { MainThreadHost, type ActorThread } from './main-host.js';
import type { ActorWorkerData, LinkMessage, WorkerData } from './worker-host.js';
import { workerThreads } from '../builtins.js';

export interface ActorSpec {
  name: string;
  /** The actor module: a file URL, or an absolute path. */
  module: URL | string;
  /** Handed to the actor as ctx.options (structured clone). */
  options?: unknown;
  /** Names of actors started before this one to open a direct channel with. */
  connect?: string[];
  /** Actors of one start() call naming the same thread share one worker thread: for
   * actors idle most of the run, whose own thread would cost more to start than their
   * work. Default: a thread of its own. A failure in a shared thread fails all of its
   * actors. */
  thread?: string;
  /** The actor has nothing to do while the command's tree is young: it reads what it
   * needs from disk when it needs it, and nobody asks it anything before. A run starts
   * such actors once the tree has run for a while, or, when the tree ended sooner, on
   * the main thread (src/run.ts). */
  startsLate?: boolean;
}

export interface StartOptions {
  /** Host these actors on the main thread (main-host.ts) instead of worker threads. */
  mainThread?: boolean;
}

export interface SupervisorOptions {
  /** Longest an actor's start() may take. */
  startTimeoutMs?: number;
  /** Longest an actor's stop() may take before its worker is terminated anyway. */
  stopTimeoutMs?: number;
  /** Called with each actor's supervisor-side Peer before the actor starts: the place
   * to add requests every actor may make of the main thread (InitBridge.serve). */
  onActorPeer?: (name: string, peer: Peer) => void;
}

/** An actor failed; the message reads "actor merger failed: <the actor's message>". */
export class ActorFailedError extends Error {
  override name = 'ActorFailedError';
  constructor(
    readonly actor: string,
    readonly reason: string,
  ) {
    super(`actor ${actor} failed: ${reason}`);
  }
}

export interface SupervisorEvents {
  'actor-started': [name: string];
  'actor-failed': [name: string, error: ActorFailedError];
  'actor-stopped': [name: string];
  /** Every worker has exited; `error` is the first failure, if any. */
  stopped: [error: ActorFailedError | undefined];
}

type State = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

interface RunningActor {
  name: string;
  worker: ActorThread;
  peer: Peer;
  state: State;
  hasExited: boolean;
  exited: Promise<void>;
}

/** A worker created ahead of its turn by start(): it boots (Node, imports) while the
 * actors before it start; it is started, in order, like any other. */
interface Prewarmed {
  worker: ActorThread;
  port: MessagePort;
  /** Our ends of its links, handed to each linked actor when this one's turn comes. */
  held: Map<string, MessagePort>;
  error?: Error;
  exitCode?: number;
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly actors: RunningActor[] = [];
  private readonly prewarmed = new Map<string, Prewarmed>();
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly onActorPeer: ((name: string, peer: Peer) => void) | undefined;
  private failure: ActorFailedError | undefined;
  private stopping: Promise<ActorFailedError | undefined> | undefined;

  constructor(options: SupervisorOptions = {}) {
    super();
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
    this.onActorPeer = options.onActorPeer;
  }

  /** Starts the actors one after the other. If one fails, the ones already started are
   * stopped and the promise rejects with that ActorFailedError once all have exited;
   * if stop() is called meanwhile, it rejects once all have exited. */
  async start(specs: ActorSpec[], options: StartOptions = {}): Promise<void> {
    // after stop(), nothing may start: a worker made now would outlive the supervisor
    if (!this.stopping) this.prewarm(specs, options);
    for (const spec of specs) {
      if (this.stopping) {
        const failure = await this.stopping;
        throw failure ?? new Error(`stopped before actor "${spec.name}" started`);
      }
      try {
        await this.startOne(spec, options);
      } catch (err) {
        // A wrong spec (duplicate name, unknown link): leave nothing running behind.
        await this.stop();
        throw err;
      }
    }
    // The last actor may have failed, or stop() been called, during its start().
    if (this.stopping) {
      const failure = await this.stopping;
      throw failure ?? new Error(`stopped while actor "${specs.at(-1)!.name}" was starting`);
    }
  }

  /** Stops every actor (reverse start order) and resolves with the first failure, if
   * any, once all workers have exited. Safe to call repeatedly. */
  stop(): Promise<ActorFailedError | undefined> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  /** The channel to a running actor. */
  peer(name: string): Peer {
    const actor = this.actors.find((a) => a.name === name);
    if (!actor) throw new Error(`no actor named "${name}"`);
    return actor.peer;
  }

  request<T = unknown>(actor: string, type: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.peer(actor).request<T>(type, body, options);
  }

  /** Names of actors whose worker thread has not exited yet. */
  get live(): string[] {
    return this.actors.filter((a) => !a.hasExited).map((a) => a.name);
  }

  /** Creates the workers of `specs` at once, so their threads boot in parallel (a worker's
   * start-up is mostly Node's and the imports'); startOne then starts them in order.
   * Skipped for a spec whose links cannot be made (startOne reports those). */
  private prewarm(specs: ActorSpec[], options: StartOptions): void {
    const known = new Set(this.actors.filter((a) => a.state === 'running').map((a) => a.name));
    // one worker per thread: the actors naming it, each with its own channels
    const threads = new Map<string, Array<{ spec: ActorSpec; data: ActorWorkerData; transfer: MessagePort[]; p: Omit<Prewarmed, 'worker'> }>>();
    const threadOf = new Map<string, string>();
    for (const spec of specs) {
      const ok = !this.prewarmed.has(spec.name) && !known.has(spec.name) && (spec.connect ?? []).every((o) => known.has(o));
      known.add(spec.name);
      if (!ok) continue;
      const thread = spec.thread ?? `actor ${spec.name}`;
      threadOf.set(spec.name, thread);
      const { port1, port2 } = new (workerThreads().MessageChannel)();
      const links: Record<string, MessagePort> = {};
      const held = new Map<string, MessagePort>();
      const transfer: MessagePort[] = [port2];
      const local: string[] = [];
      for (const other of spec.connect ?? []) {
        // in the same thread: the host links the two itself, without a channel
        if (threadOf.get(other) === thread) {
          local.push(other);
          continue;
        }
        const link = new (workerThreads().MessageChannel)();
        links[other] = link.port2;
        transfer.push(link.port2);
        held.set(other, link.port1);
      }
      const group = threads.get(thread) ?? [];
      group.push({ spec, data: { ...actorWorkerData(spec, port2, links), ...(local.length > 0 ? { localLinks: local } : {}) }, transfer, p: { port: port1, held } });
      threads.set(thread, group);
    }
    for (const [thread, group] of threads) {
      const worker = createWorker(thread, group.map((g) => g.data), group.flatMap((g) => g.transfer), options);
      for (const { spec, p: partial } of group) {
        const p: Prewarmed = { worker, ...partial };
        // kept until startOne takes the worker over: an early failure is reported in order
        worker.on('error', (err) => (p.error ??= asError(err)));
        worker.on('exit', (code) => (p.exitCode = code));
        this.prewarmed.set(spec.name, p);
      }
    }
  }

  private async startOne(spec: ActorSpec, options: StartOptions): Promise<void> {
    if (this.actors.some((a) => a.name === spec.name)) throw new Error(`actor "${spec.name}" started twice`);
    const targets = (spec.connect ?? []).map((other) => {
      const target = this.actors.find((a) => a.name === other && a.state === 'running');
      if (!target) throw new Error(`actor "${spec.name}" connects to "${other}", which is not running`);
      return target;
    });

    const warm = this.prewarmed.get(spec.name);
    this.prewarmed.delete(spec.name);
    let worker: ActorThread;
    let port: MessagePort;
    if (warm) {
      worker = warm.worker;
      port = warm.port;
      for (const target of targets) {
        const held = warm.held.get(target.name);
        // none for a link within the thread (ActorWorkerData.localLinks)
        if (held) target.worker.postMessage({ to: target.name, link: spec.name, port: held } satisfies LinkMessage, [held]);
      }
    } else {
      const { port1, port2 } = new (workerThreads().MessageChannel)();
      const links: Record<string, MessagePort> = {};
      const transfer: MessagePort[] = [port2];
      for (const target of targets) {
        const link = new (workerThreads().MessageChannel)();
        target.worker.postMessage({ to: target.name, link: spec.name, port: link.port1 } satisfies LinkMessage, [link.port1]);
        links[target.name] = link.port2;
        transfer.push(link.port2);
      }
      worker = createWorker(`actor ${spec.name}`, [actorWorkerData(spec, port2, links)], transfer, options);
      port = port1;
    }
    const peer = new Peer(new PortTransport(port), `actor ${spec.name}`);
    this.onActorPeer?.(spec.name, peer);
    const exitedEarly = warm?.exitCode !== undefined;
    const actor: RunningActor = {
      name: spec.name,
      worker,
      peer,
      state: 'starting',
      hasExited: false,
      exited: exitedEarly ? Promise.resolve() : new Promise((resolve) => worker.once('exit', () => resolve())),
    };
    this.actors.push(actor);

    // An uncaught exception in the worker arrives as 'error', followed by 'exit'.
    const onExit = (code: number) => {
      actor.hasExited = true;
      if (actor.state === 'starting' || actor.state === 'running') {
        this.fail(actor, `worker exited unexpectedly with code ${code}`);
      }
      peer.close();
    };
    worker.on('error', (err) => this.fail(actor, asError(err).message));
    worker.on('exit', onExit);
    if (warm?.error) this.fail(actor, warm.error.message);
    if (exitedEarly) onExit(warm!.exitCode!);
    if (actor.state !== 'starting') return;

    try {
      await peer.request(CONTROL.start, undefined, { timeoutMs: this.startTimeoutMs });
    } catch (err) {
      // A crash during start() has already been reported by the worker's 'error' event,
      // and a shutdown already under way closes the channel on purpose.
      if (actor.state === 'starting') {
        const reason =
          err instanceof RequestTimeoutError ? `start() did not finish within ${err.timeoutMs} ms` : asError(err).message;
        this.fail(actor, reason);
      }
      return;
    }
    if (actor.state !== 'starting') return;
    actor.state = 'running';
    this.emit('actor-started', spec.name);
  }

  private fail(actor: RunningActor, reason: string): void {
    if (actor.state === 'failed' || actor.state === 'stopped') return;
    // While stopping, an actor's error still counts (its stop() threw, or it crashed).
    actor.state = 'failed';
    const error = new ActorFailedError(actor.name, reason);
    this.failure ??= error;
    this.emit('actor-failed', actor.name, error);
    void this.stop();
  }

  private async stopAll(): Promise<ActorFailedError | undefined> {
    // Let the failing event's listeners and the current start() settle first.
    await Promise.resolve();
    for (const actor of [...this.actors].reverse()) {
      if (actor.state === 'starting' || actor.state === 'running') {
        actor.state = 'stopping';
        try {
          await actor.peer.request(CONTROL.stop, undefined, { timeoutMs: this.stopTimeoutMs });
        } catch (err) {
          this.fail(
            actor,
            err instanceof RequestTimeoutError
              ? `stop() did not finish within ${err.timeoutMs} ms; its thread was terminated`
              : `while stopping: ${asError(err).message}`,
          );
        }
      }
      // Actors may leave handles open (timers, sockets); terminating is what guarantees
      // the thread ends. It resolves once the thread is gone. A shared thread ends with
      // the first of its actors, the last one stopped.
      if (this.actors.find((a) => a.worker === actor.worker) === actor) {
        await withTimeout(actor.worker.terminate(), this.stopTimeoutMs);
        await withTimeout(actor.exited, this.stopTimeoutMs);
      }
      actor.peer.close();
      const wasStopping = actor.state === 'stopping';
      if (actor.state !== 'failed') actor.state = 'stopped';
      if (wasStopping) this.emit('actor-stopped', actor.name);
    }
    // workers created ahead of a turn that never came
    const unused = [...this.prewarmed.values()];
    this.prewarmed.clear();
    await Promise.all(unused.map((p) => {
      p.port.close();
      for (const held of p.held.values()) held.close();
      return withTimeout(p.worker.terminate(), this.stopTimeoutMs);
    }));
    this.emit('stopped', this.failure);
    return this.failure;
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

function actorWorkerData(spec: ActorSpec, port: MessagePort, links: Record<string, MessagePort>): ActorWorkerData {
  const moduleUrl = typeof spec.module === 'string' && !spec.module.startsWith('file:')
    ? pathToFileURL(spec.module).href
    : String(spec.module);
  return { name: spec.name, moduleUrl, options: spec.options, port, links };
}

function createWorker(thread: string, actors: ActorWorkerData[], transfer: MessagePort[], options: StartOptions): ActorThread {
  const workerData: WorkerData = { actors };
  // on this thread, the ports are used where they are: nothing to transfer
  if (options.mainThread) return new MainThreadHost(workerData);
  const entry = workerEntry(actors.map((a) => a.moduleUrl));
  return new (workerThreads().Worker)(entry.url, { workerData: { ...entry.data, ...workerData }, transferList: transfer, name: `uwrx ${thread}` });
}
