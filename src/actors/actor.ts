// What an actor module exports. A capability (collector, merger, storage ...) is one
// module whose default export is `defineActor({...})`; the generic worker entry loads
// it into a worker thread, so adding a capability never touches the runtime.
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
   * before its start(); the other side receives it shortly after, so it should mostly
   * answer through its handlers rather than call first.
   */
  peer(name: string): Peer;
  /** Listens for a notification from the supervisor or any linked actor. */
  on(type: string, listener: (body: any) => void): void;
}

export interface ActorDefinition<Options = unknown> {
  /** Used in messages when the module is loaded under another spec name. */
  name: string;
  /** Runs before the supervisor starts the next actor; throwing fails the run. */
  start?(ctx: ActorContext<Options>): Promise<void> | void;
  /** Releases what start() acquired; the worker is terminated afterwards regardless. */
  stop?(): Promise<void> | void;
  /** Requests this actor answers, from the supervisor and from linked actors alike. */
  handlers?: Record<string, RequestHandler>;
}

/** Identity at run time; gives the module's export its type. */
export function defineActor<Options = unknown>(definition: ActorDefinition<Options>): ActorDefinition<Options> {
  return definition;
}

/** Request types between the supervisor and the worker entry; actors never see them. */
export const CONTROL = {
  start: 'actor.start',
  stop: 'actor.stop',
} as const;
