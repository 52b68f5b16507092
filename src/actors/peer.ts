// One end of a conversation over a Transport: requests with responses and timeouts,
// plus one-way notifications. The same class talks to a worker-thread actor over a
// MessagePort and to uwrx-init over a unix socket, so neither side knows which it has.
import type { Envelope, Transport } from './transport.js';

export type RequestHandler = (body: any) => unknown;
export type NotificationListener = (body: any) => void;

export interface RequestOptions {
  /** Give up after this long; the request rejects naming its type and the delay. */
  timeoutMs?: number;
  /** ArrayBuffers of the body to move rather than copy (see Transport.send). */
  transfer?: readonly ArrayBuffer[];
}

/** Every wait has an end: a peer that never answers must not hang the run. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The remote handler failed; `message` is its error message, as it reported it. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    readonly requestType: string,
    message: string,
  ) {
    super(message);
  }
}

/** The peer did not answer in time. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
  constructor(
    readonly requestType: string,
    readonly timeoutMs: number,
    peerName: string,
  ) {
    super(`request "${requestType}" to ${peerName} timed out after ${timeoutMs} ms`);
  }
}

interface Pending {
  type: string;
  resolve(body: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class Peer {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly listeners = new Map<string, NotificationListener[]>();
  private readonly closeListeners: Array<(error?: Error) => void> = [];
  private closedWith: { error?: Error } | undefined;

  /** `name` appears in error messages ("request "x" to actor merger timed out"). */
  constructor(
    private readonly transport: Transport,
    readonly name = 'peer',
  ) {
    transport.onMessage((message) => this.receive(message));
    transport.onClose((error) => this.closed(error));
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  request<T = unknown>(type: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      if (this.closedWith) {
        reject(this.closedError(type, this.closedWith.error));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeoutError(type, timeoutMs, this.name));
      }, timeoutMs);
      this.pending.set(id, { type, resolve: resolve as (body: unknown) => void, reject, timer });
      try {
        this.transport.send(body === undefined ? { type, id } : { type, id, body }, options.transfer);
      } catch (err) {
        this.settle(id)?.reject(asError(err));
      }
    });
  }

  /** One-way message; `transfer` as in RequestOptions. */
  notify(type: string, body?: unknown, transfer?: readonly ArrayBuffer[]): void {
    this.transport.send(body === undefined ? { type } : { type, body }, transfer);
  }

  /** Answers requests of `type`; a thrown error (or rejection) becomes an error response. */
  handle(type: string, handler: RequestHandler): this {
    if (this.handlers.has(type)) throw new Error(`${this.name} already handles "${type}"`);
    this.handlers.set(type, handler);
    return this;
  }

  on(type: string, listener: NotificationListener): this {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
    return this;
  }

  /** Called once when the transport ends; `error` is set when it ended abnormally. */
  onClose(listener: (error?: Error) => void): this {
    if (this.closedWith) listener(this.closedWith.error);
    else this.closeListeners.push(listener);
    return this;
  }

  close(): void {
    this.transport.close();
    // Some transports report closing asynchronously (or never, for a port whose
    // other end is gone): settle now so nothing waits on them.
    this.closed();
  }

  private receive(message: Envelope): void {
    if (message.re !== undefined) {
      // A response for a request that already timed out is dropped: its caller moved on.
      const pending = this.settle(message.re);
      if (!pending) return;
      if (message.error !== undefined) pending.reject(new RemoteError(pending.type, message.error));
      else pending.resolve(message.body);
    } else if (message.id !== undefined) {
      void this.answer(message.type, message.id, message.body);
    } else {
      for (const listener of this.listeners.get(message.type) ?? []) listener(message.body);
    }
  }

  private async answer(type: string, id: number, body: unknown): Promise<void> {
    let response: Envelope;
    const handler = this.handlers.get(type);
    if (!handler) {
      response = { type, re: id, error: `${this.name}: no handler for "${type}"` };
    } else {
      try {
        const result = await handler(body);
        response = result === undefined ? { type, re: id } : { type, re: id, body: result };
      } catch (err) {
        response = { type, re: id, error: asError(err).message };
      }
    }
    // The requester may be gone by now; there is nobody left to tell.
    if (!this.closedWith) {
      try {
        this.transport.send(response);
      } catch {
        /* closed while answering */
      }
    }
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    return pending;
  }

  private closed(error?: Error): void {
    if (this.closedWith) return;
    this.closedWith = { error };
    for (const id of [...this.pending.keys()]) {
      const pending = this.settle(id)!;
      pending.reject(this.closedError(pending.type, error));
    }
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }

  private closedError(type: string, error?: Error): Error {
    return new Error(`request "${type}" to ${this.name} failed: connection closed${error ? `: ${error.message}` : ''}`);
  }
}

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
