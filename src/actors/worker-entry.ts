// Generic body of every actor's worker thread: loads the actor module named by the
// supervisor, answers the supervisor's start/stop requests, and wires the actor's
// handlers to the supervisor and to every linked actor.
//
// Failures are deliberately not caught here: an exception that escapes the actor
// (at import, in a timer, in an unawaited promise) ends the thread, and the
// supervisor reports it with the actor's name.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CONTROL, type ActorContext, type ActorDefinition, type ActorInstance } from './actor.js';
import { Peer, type NotificationListener } from './peer.js';
import { PortTransport } from './transport.js';

export interface ActorWorkerData {
  name: string;
  /** Absolute file URL of the actor module. */
  moduleUrl: string;
  options: unknown;
  /** Channel to the supervisor, carrying Envelopes. */
  port: MessagePort;
  /** Channels to already-running actors this one asked to be linked with. */
  links: Record<string, MessagePort>;
}

/** Sent on the worker's parentPort (structured clone: it carries a MessagePort). */
export interface LinkMessage {
  link: string;
  port: MessagePort;
}

const data = workerData as ActorWorkerData;
const imported = (await import(data.moduleUrl)) as { default?: ActorDefinition };
const definition = imported.default;
if (!definition || typeof definition !== 'object' || typeof definition.body !== 'function') {
  throw new Error(`${data.moduleUrl} has no default export from defineActor()`);
}

const peers = new Map<string, Peer>();
const listeners: Array<[string, NotificationListener]> = [];
/** Set once the body has run: its handlers answer every peer from then on. */
let instance: ActorInstance | undefined;

function attach(peerName: string, peer: Peer): void {
  for (const [type, handler] of Object.entries(instance?.handlers ?? {})) peer.handle(type, handler);
  for (const [type, listener] of listeners) peer.on(type, listener);
  peers.set(peerName, peer);
}

const supervisor = new Peer(new PortTransport(data.port), 'supervisor');
for (const [peerName, port] of Object.entries(data.links)) {
  attach(peerName, new Peer(new PortTransport(port), `actor ${peerName}`));
}
parentPort!.on('message', (message: LinkMessage) => {
  attach(message.link, new Peer(new PortTransport(message.port), `actor ${message.link}`));
});
// The parent port must not keep the thread alive by itself; the supervisor's channel does.
parentPort!.unref();

const ctx: ActorContext = {
  name: data.name,
  options: data.options,
  supervisor,
  peer(peerName) {
    const peer = peers.get(peerName);
    if (!peer) throw new Error(`actor ${data.name} is not linked with "${peerName}" (see ActorSpec.connect)`);
    return peer;
  },
  on(type, listener) {
    listeners.push([type, listener]);
    supervisor.on(type, listener);
    for (const peer of peers.values()) peer.on(type, listener);
  },
};

supervisor.handle(CONTROL.start, async () => {
  instance = (await definition.body(ctx)) ?? {};
  for (const [type, handler] of Object.entries(instance.handlers ?? {})) {
    supervisor.handle(type, handler);
    for (const peer of peers.values()) peer.handle(type, handler);
  }
});
supervisor.handle(CONTROL.stop, async () => {
  await instance?.stop?.();
});
