// Generic body of every actor thread: loads the actor modules named by the supervisor
// (one, or several that share the thread; see ActorSpec.thread), answers the
// supervisor's start/stop requests for each, and wires each actor's handlers to the
// supervisor and to every actor it is linked with. Its entries: worker-entry.ts (the
// modules are imported), the record's actors' CommonJS bundle (io-bundle.ts, whose
// actors are built in), and main-host.ts for actors hosted on the main thread.
//
// Failures are deliberately not caught here: an exception that escapes an actor (at
// import, in a timer, in an unawaited promise) ends the thread, and the supervisor
// reports it with the names of the actors it hosted. A host that is not a thread of its
// own (main-host.ts) passes `failed` instead: an exception of a notification listener
// (a full disk under the merger's writes) goes there, as the thread's end would.
import type { MessagePort } from 'node:worker_threads';
import { CONTROL, type ActorContext, type ActorDefinition, type ActorInstance } from './actor.js';
import { Peer, type NotificationListener } from './peer.js';
import { PortTransport, type Transport } from './transport.js';
import { localTransportPair } from './local-transport.js';
import { workerThreads } from '../builtins.js';

export interface ActorWorkerData {
  name: string;
  /** Absolute file URL of the actor module. */
  moduleUrl: string;
  options: unknown;
  /** Channel to the supervisor, carrying Envelopes. */
  port: MessagePort;
  /** Channels to already-running actors this one asked to be linked with. */
  links: Record<string, MessagePort>;
  /** Actors of the same thread, started before this one, it is linked with directly
   * (local-transport.ts) instead of over a channel. */
  localLinks?: string[];
}

/** What a worker hosts: its actors, in start order. */
export interface WorkerData {
  actors: ActorWorkerData[];
}

/** Sent on the worker's parentPort (structured clone: it carries a MessagePort): actor
 * `link` started, and `port` is actor `to`'s end of the channel to it. */
export interface LinkMessage {
  to: string;
  link: string;
  port: MessagePort;
}

/** One hosted actor: its module, its channels and, once started, its handlers. */
class Hosted {
  private readonly peers = new Map<string, Peer>();
  private readonly listeners: Array<[string, NotificationListener]> = [];
  /** Set once the body has run: its handlers answer every peer from then on. */
  private instance: ActorInstance | undefined;
  private stopped = false;
  private readonly supervisor: Peer;

  constructor(
    private readonly data: ActorWorkerData,
    private readonly definition: ActorDefinition,
    onStopped: () => void,
    private readonly failed?: (err: unknown) => void,
  ) {
    this.supervisor = new Peer(new PortTransport(data.port), 'supervisor');
    for (const [peerName, port] of Object.entries(data.links)) this.link(peerName, port);
    this.supervisor.handle(CONTROL.start, () => this.start());
    this.supervisor.handle(CONTROL.stop, async () => {
      this.stopped = true;
      await this.instance?.stop?.();
      onStopped();
    });
  }

  /** What a thread's end would do: the actor's stop() if it was not stopped (its timers
   * and handles must not outlive it), then its channels closed. */
  close(): void {
    if (!this.stopped) {
      this.stopped = true;
      try {
        void Promise.resolve(this.instance?.stop?.()).catch(() => undefined);
      } catch {
        /* ending anyway */
      }
    }
    for (const peer of this.peers.values()) peer.close();
    this.supervisor.close();
  }

  link(peerName: string, to: MessagePort | Transport): void {
    const peer = new Peer('send' in to ? to : new PortTransport(to), `actor ${peerName}`);
    for (const [type, handler] of Object.entries(this.instance?.handlers ?? {})) peer.handle(type, handler);
    for (const [type, listener] of this.listeners) peer.on(type, listener);
    this.peers.set(peerName, peer);
  }

  private async start(): Promise<void> {
    const { data, peers, listeners, supervisor, failed } = this;
    const ctx: ActorContext = {
      name: data.name,
      options: data.options,
      supervisor,
      peer(peerName) {
        const peer = peers.get(peerName);
        if (!peer) throw new Error(`actor ${data.name} is not linked with "${peerName}" (see ActorSpec.connect)`);
        return peer;
      },
      on(type, given) {
        const listener: NotificationListener = failed
          ? (body) => {
              try {
                given(body);
              } catch (err) {
                failed(err);
              }
            }
          : given;
        listeners.push([type, listener]);
        supervisor.on(type, listener);
        for (const peer of peers.values()) peer.on(type, listener);
      },
    };
    const instance = (await this.definition.body(ctx)) ?? {};
    this.instance = instance;
    for (const [type, handler] of Object.entries(instance.handlers ?? {})) {
      supervisor.handle(type, handler);
      for (const peer of peers.values()) peer.handle(type, handler);
    }
  }
}

/** How a worker entry finds actor modules: those whose URL is in `builtIn` come from
 * there, the others through `importModule` (the entry's own import(): code run through
 * vm.Script cannot import). `allStopped` runs once every hosted actor's stop() returned
 * (the supervisor terminates the thread after its last answer). `given` and `parent`:
 * the actors and the port LinkMessages come on, when they are not the worker thread's
 * workerData and parent port (actors hosted on the main thread, main-host.ts). */
export interface HostOptions {
  builtIn?: ReadonlyMap<string, ActorDefinition>;
  importModule(url: string): Promise<unknown>;
  allStopped?: () => void;
  given?: WorkerData;
  parent?: MessagePort;
  /** An exception of an actor's notification listener, for a host that is not a thread
   * (absent: it ends the thread, as any other does). */
  failed?: (err: unknown) => void;
}

/** The hosted actors, for a host that is not a thread of its own: close() does what the
 * thread's end would (main-host.ts). */
export interface Hosting {
  close(): void;
}

/** Hosts the actors of this thread's workerData (or of `given`). */
export async function hostActors({ builtIn = new Map(), importModule, allStopped, given = workerThreads().workerData as WorkerData, parent = workerThreads().parentPort!, failed }: HostOptions): Promise<Hosting> {
  const hosted = new Map<string, Hosted>();
  let running = given.actors.length;
  const stopped = () => {
    if (--running === 0) allStopped?.();
  };
  for (const data of given.actors) {
    const definition = builtIn.get(data.moduleUrl) ?? ((await importModule(data.moduleUrl)) as { default?: ActorDefinition }).default;
    if (!definition || typeof definition !== 'object' || typeof definition.body !== 'function') {
      throw new Error(`${data.moduleUrl} has no default export from defineActor()`);
    }
    hosted.set(data.name, new Hosted(data, definition, stopped, failed));
  }
  for (const data of given.actors) {
    for (const other of data.localLinks ?? []) {
      const [mine, theirs] = localTransportPair();
      hosted.get(data.name)!.link(other, mine);
      hosted.get(other)?.link(data.name, theirs);
    }
  }
  parent.on('message', (message: LinkMessage) => hosted.get(message.to)?.link(message.link, message.port));
  // The parent port must not keep the thread alive by itself; the supervisors' channels do.
  parent.unref();
  return {
    close() {
      for (const h of hosted.values()) h.close();
      parent.close();
    },
  };
}
