// What an actor module exports. A capability (collector, merger, storage ...) is one
// module whose default export is `defineActor(name, (ctx) => ...)`; the generic worker
// entry loads it into a worker thread, so adding a capability never touches the runtime.
//
// The body runs when the supervisor starts the actor and gets everything through its
// context; its state lives in the body's closure, never in module globals, so one
// module can run as several actors and a test can start it twice.
import type { Peer, RequestHandler } from './peer.js';

export interface ActorContext<Options = unknown> {
  /** The name the supervisor started this actor under. */
  readonly name: string;
  /** `options` of the actor's spec, as the supervisor passed them. */
  readonly options: Options;
  /** The supervisor, on the main thread. */
  readonly supervisor: Peer;
  /**
   * A linked actor (see ActorSpec.connect). The actor that asked for the link has it
   * when its body runs; the other side receives it shortly after, so it should mostly
   * answer through its handlers rather than call first.
   */
  peer(name: string): Peer;
  /** Listens for a notification from the supervisor or any linked actor. */
  on(type: string, listener: (body: any) => void): void;
}

/** What an actor's body returns once it has started. */
export interface ActorInstance {
  /** Requests this actor answers, from the supervisor and from linked actors alike. */
  handlers?: Record<string, RequestHandler>;
  /** Releases what the body acquired; the worker is terminated afterwards regardless. */
  stop?(): Promise<void> | void;
}

/** Runs when the supervisor starts the actor (before it starts the next one); throwing
 * fails the run. */
export type ActorBody<Options = unknown> = (ctx: ActorContext<Options>) => ActorInstance | void | Promise<ActorInstance | void>;

export interface ActorDefinition<Options = unknown> {
  /** What the module is, for messages; the spec's name is what it runs as. */
  readonly name: string;
  readonly body: ActorBody<Options>;
}

export function defineActor<Options = unknown>(name: string, body: ActorBody<Options>): ActorDefinition<Options> {
  return { name, body };
}

/** The thread (ActorSpec.thread) shared by the record's actors (the storage actor, the
 * trace collector and merger): a worker thread costs about 40 ms of CPU to boot, more
 * than a short run's whole record, and on a loaded machine the collector and the merger
 * do not run in parallel anyway. */
export const IO_THREAD = 'io';

/** Request types between the supervisor and the worker entry; actors never see them. */
export const CONTROL = {
  start: 'actor.start',
  stop: 'actor.stop',
} as const;
