// A link between two actors hosted in the same thread (the collector and the merger in
// the io thread): Envelopes handed over in a microtask, in order, instead of through a
// MessageChannel. A channel serializes every message and, for the collector's batches,
// moves each read buffer to a new ArrayBuffer on the other side: some 10-30 us per
// buffer, two buffers per traced process, for nothing within one thread.
//
// What the receiver gets: a message sent with a transfer list is the sender's own object
// (the sender hands its buffers over, as a transfer does, and does not touch them
// again); any other message is a structured clone, as a channel would deliver it.
import type { Envelope, Transport } from './transport.js';

class LocalTransport implements Transport {
  other!: LocalTransport;
  private readonly handlers: Array<(message: Envelope) => void> = [];
  private closeHandlers: Array<(error?: Error) => void> = [];
  private closed = false;

  send(message: Envelope, transfer: readonly ArrayBuffer[] = []): void {
    if (this.closed) throw new Error(`cannot send "${message.type}": transport is closed`);
    const delivered = transfer.length > 0 ? message : (flatCopy(message) ?? structuredClone(message));
    const to = this.other;
    queueMicrotask(() => {
      if (to.closed) return;
      for (const h of to.handlers) h(delivered);
    });
  }

  onMessage(handler: (message: Envelope) => void): void {
    this.handlers.push(handler);
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  /** Closes both ends, as closing either end of a channel does. */
  close(): void {
    this.end();
    this.other.end();
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.closeHandlers.splice(0)) h();
  }
}

/** What structuredClone gives for a value that is cloned as itself (a primitive a
 * channel carries); false for anything else. */
const asItself = (v: unknown): boolean => v === null || (typeof v !== 'object' && typeof v !== 'function' && typeof v !== 'symbol');

/** The structured clone of an envelope whose fields, and its body's own fields, are such
 * primitives (the collector's advance to the merger, each scan: a structuredClone is a
 * serialization and a deserialization, 20-40 us each); undefined for any other. */
function flatCopy(message: Envelope): Envelope | undefined {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(message)) {
    const v = (message as unknown as Record<string, unknown>)[key];
    if (key === 'body' && v !== null && typeof v === 'object') {
      if (Object.getPrototypeOf(v) !== Object.prototype) return undefined;
      const body: Record<string, unknown> = {};
      for (const k of Object.keys(v)) {
        const f = (v as Record<string, unknown>)[k];
        if (!asItself(f)) return undefined;
        body[k] = f;
      }
      out[key] = body;
    } else if (asItself(v)) out[key] = v;
    else return undefined;
  }
  return out as unknown as Envelope;
}

/** Two linked ends. */
export function localTransportPair(): [Transport, Transport] {
  const a = new LocalTransport();
  const b = new LocalTransport();
  a.other = b;
  b.other = a;
  return [a, b];
}
