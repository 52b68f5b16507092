// The actor runtime, in one import.
//
// - Transport (transport.ts): moves Envelopes over a MessagePort (structured clone,
//   with transfer) or a unix stream socket (u32 LE length + msgpack), the latter for
//   native peers (uwrx-init).
// - Peer (peer.ts): request/response with timeouts and one-way notifications over
//   any Transport.
// - Actor (actor.ts): a module whose default export is defineActor(name, ctx => ...); it runs in
//   its own worker thread under the generic worker-entry.ts.
// - Supervisor (supervisor.ts): starts actors in order, stops them in reverse order,
//   and turns a crash ("actor merger failed: ...") into an event plus an orderly stop
//   of the rest. Actors reach each other over direct MessageChannels the supervisor
//   hands out (ActorSpec.connect), not through the main thread.
export { defineActor, IO_THREAD, type ActorBody, type ActorContext, type ActorDefinition, type ActorInstance } from './actor.js';
export { Peer, RemoteError, RequestTimeoutError, DEFAULT_REQUEST_TIMEOUT_MS, type RequestOptions, type RequestHandler } from './peer.js';
export {
  Supervisor,
  ActorFailedError,
  type ActorSpec,
  type SupervisorEvents,
  type SupervisorOptions,
} from './supervisor.js';
export {
  PortTransport,
  SocketTransport,
  FrameDecoder,
  MAX_FRAME_BYTES,
  encodeEnvelope,
  decodeEnvelope,
  frame,
  type Envelope,
  type Transport,
} from './transport.js';
