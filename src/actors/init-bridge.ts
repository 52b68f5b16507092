// The bridge to uwrx-init, the sandbox's pid 1: one Peer over its socket, so either
// side can ask the other (request ids, answers routed back, timeouts) and tell the
// other (notifications). A message of a type nobody listens for is an error: the two
// sides disagree on the protocol, which must not pass silently.
//
// Actors reach uwrx-init through the supervisor: `serve(peer)` on an actor's
// supervisor-side Peer lets that actor send requests (INIT_BRIDGE.request) and take
// over uwrx-init's requests of a type (INIT_BRIDGE.handle; they arrive as
// INIT_BRIDGE.requested requests, whose answer goes back to uwrx-init).
import { Peer, type RequestHandler, type RequestOptions } from './peer.js';
import type { Envelope, Transport } from './transport.js';
import { MSG_EXEC, MSG_EXIT, MSG_PROCS, MSG_SPAWN, PROC_EXEC, PROC_EXIT, PROC_SPAWN, type ExecBody, type ExitBody, type ProcsBody, type SpawnBody } from '../protocol/init-messages.js';

/** The process notices MSG_PROCS carries, by their PROC_ kind. */
const PROC_KINDS: Record<string, number> = { [MSG_SPAWN]: PROC_SPAWN, [MSG_EXEC]: PROC_EXEC, [MSG_EXIT]: PROC_EXIT };

/** Request types between an actor and the bridge (through the supervisor). */
export const INIT_BRIDGE = {
  /** actor -> bridge: {type, body?, timeoutMs?}; answers with uwrx-init's answer. */
  request: 'init.request',
  /** actor -> bridge: {type}: uwrx-init's requests of `type` go to this actor. */
  handle: 'init.handle',
  /** bridge -> actor: {type, body}: one of uwrx-init's requests; answer it. */
  requested: 'init.requested',
} as const;

export interface InitRequest {
  type: string;
  body?: unknown;
  timeoutMs?: number;
}

/** A uwrx-init message nobody knows; the run cannot trust the channel after it. */
export class UnknownMessageError extends Error {
  override name = 'UnknownMessageError';
  constructor(readonly messageType: string) {
    super(`uwrx-init sent an unknown message "${messageType}"`);
  }
}

export class InitBridge {
  private readonly peer: Peer;
  private readonly notifications = new Set<string>();
  private readonly errorListeners: Array<(error: Error) => void> = [];
  /** Listeners of spawn, exec and exit, by PROC_ kind: MSG_PROCS entries go to them. */
  private readonly procListeners: Array<Array<(body: any) => void>> = [[], [], []];

  constructor(transport: Transport) {
    this.peer = new Peer(new CheckedTransport(transport, (m) => this.accepts(m)), 'uwrx-init');
  }

  /** Listens for uwrx-init's notifications of `type`. */
  on(type: string, listener: (body: any) => void): this {
    this.notifications.add(type);
    this.peer.on(type, listener);
    const kind = PROC_KINDS[type];
    if (kind !== undefined) {
      if (!this.notifications.has(MSG_PROCS)) {
        this.notifications.add(MSG_PROCS);
        this.peer.on(MSG_PROCS, (entries: ProcsBody) => this.procs(entries));
      }
      this.procListeners[kind]!.push(listener);
    }
    return this;
  }

  /** Answers uwrx-init's requests of `type`; one handler per type. */
  handle(type: string, handler: RequestHandler): this {
    this.peer.handle(type, handler);
    return this;
  }

  /** Asks uwrx-init; rejects with its error, on timeout, or when the channel closes. */
  request<T = unknown>(type: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return this.peer.request<T>(type, body, options);
  }

  notify(type: string, body?: unknown): void {
    this.peer.notify(type, body);
  }

  /** Called for a protocol error (an unknown message). */
  onError(listener: (error: Error) => void): this {
    this.errorListeners.push(listener);
    return this;
  }

  onClose(listener: (error?: Error) => void): this {
    this.peer.onClose(listener);
    return this;
  }

  /** Lets the actor behind `actor` (its supervisor-side Peer) use this bridge. */
  serve(actor: Peer): void {
    serveWhenReady(actor, Promise.resolve(this));
  }

  /** Each entry of a MSG_PROCS notice as the notice it stands for, in order. */
  private procs(entries: ProcsBody): void {
    const [spawned, execed, exited] = this.procListeners as [Array<(b: SpawnBody) => void>, Array<(b: ExecBody) => void>, Array<(b: ExitBody) => void>];
    for (const e of entries) {
      if (e[0] === PROC_SPAWN) {
        const body: SpawnBody = { pid: e[1], ppid: e[2], ordinal: e[3], nspid: e[4], time: e[5] };
        for (const listener of spawned) listener(body);
      } else if (e[0] === PROC_EXEC) {
        const body: ExecBody = { pid: e[1], path: e[2], argv: e[3], cwd: e[4], time: e[5] };
        for (const listener of execed) listener(body);
      } else if (e[0] === PROC_EXIT) {
        const body: ExitBody = { pid: e[1], code: e[2], signal: e[3], time: e[4], ...(e[5] ? { clock: e[5] } : {}) };
        for (const listener of exited) listener(body);
      } else {
        const error = new UnknownMessageError(`${MSG_PROCS} entry ${String((e as unknown[])[0])}`);
        for (const listener of this.errorListeners) listener(error);
        return;
      }
    }
  }

  private accepts(m: Envelope): boolean {
    // answers and requests are the Peer's to route (an unknown request gets an error answer)
    if (m.re !== undefined || m.id !== undefined || this.notifications.has(m.type)) return true;
    const error = new UnknownMessageError(m.type);
    for (const listener of this.errorListeners) listener(error);
    return false;
  }
}

/** Lets the actor behind `actor` use the bridge once it exists: actors start while the
 * sandbox does, so their requests wait for it. An actor takes over a request type
 * (INIT_BRIDGE.handle) in its start, before uwrx-init can ask. */
export function serveWhenReady(actor: Peer, bridge: Promise<InitBridge>): void {
  actor.handle(INIT_BRIDGE.request, async (r: InitRequest) =>
    (await bridge).request(r.type, r.body, r.timeoutMs !== undefined ? { timeoutMs: r.timeoutMs } : {}),
  );
  actor.handle(INIT_BRIDGE.handle, async ({ type }: { type: string }) => {
    (await bridge).handle(type, (body) => actor.request(INIT_BRIDGE.requested, { type, body }));
  });
}

/** Passes on only the messages `accepts` lets through. */
class CheckedTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly accepts: (m: Envelope) => boolean,
  ) {}

  send(message: Envelope): void {
    this.inner.send(message);
  }

  onMessage(handler: (message: Envelope) => void): void {
    this.inner.onMessage((m) => {
      if (this.accepts(m)) handler(m);
    });
  }

  onClose(handler: (error?: Error) => void): void {
    this.inner.onClose(handler);
  }

  close(): void {
    this.inner.close();
  }
}
