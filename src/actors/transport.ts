// Transports carry Envelopes between actors: MessagePort between worker threads
// (structured clone; ArrayBuffers listed in `transfer` move instead of being copied),
// a unix stream socket to native peers such as uwrx-init (msgpack, which the C side
// reads). A body holding plain data, byte arrays and numbers looks the same on both.
import type { Socket } from 'node:net';
import type { MessagePort } from 'node:worker_threads';
// The pack/unpack entries skip loading msgpackr-extract, a native string decoder that
// costs tens of ms at every thread's start-up and does not pay off for small messages.
import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';

/** One message. Requests carry `id`; responses carry `re` (the request's id) and
 * `error` when the request failed. */
export interface Envelope {
  type: string;
  id?: number;
  re?: number;
  error?: string;
  body?: unknown;
}

export interface Transport {
  /** `transfer`: ArrayBuffers of the body handed over, not copied (MessagePort only;
   * the sender must not touch them afterwards). */
  send(message: Envelope, transfer?: readonly ArrayBuffer[]): void;
  onMessage(handler: (message: Envelope) => void): void;
  /** Called once when the transport ends; `error` is set when it ended abnormally. */
  onClose(handler: (error?: Error) => void): void;
  close(): void;
}

// Plain maps, no records extension: native peers decode the bytes with a small C reader.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeEnvelope(message: Envelope): Buffer {
  return packr.pack(message);
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const value = unpackr.unpack(bytes) as unknown;
  if (typeof value !== 'object' || value === null || typeof (value as Envelope).type !== 'string') {
    throw new Error('malformed message: not a map with a string "type"');
  }
  return value as Envelope;
}

/** Largest frame accepted from a socket peer; larger means a corrupt stream. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Splits a byte stream into frames: u32 little-endian payload length, then payload. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Buffer[] = [];
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32LE(offset);
      if (length > MAX_FRAME_BYTES) throw new Error(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buf.length - offset - 4 < length) break;
      frames.push(buf.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    buf = buf.subarray(offset);
    this.pending = buf.length ? [buf] : [];
    this.pendingBytes = buf.length;
    return frames;
  }

  get buffered(): number {
    return this.pendingBytes;
  }
}

export function frame(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32LE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

export class SocketTransport implements Transport {
  private readonly decoder = new FrameDecoder();
  private messageHandlers: Array<(m: Envelope) => void> = [];
  private closeHandlers: Array<(e?: Error) => void> = [];
  private closed = false;
  private failure: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.decoder.push(chunk);
        for (const f of frames) {
          const message = decodeEnvelope(f);
          for (const h of this.messageHandlers) h(message);
        }
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      this.failure ??= err;
    });
    socket.on('close', () => this.finish());
  }

  send(message: Envelope, _transfer?: readonly ArrayBuffer[]): void {
    if (this.closed) throw new Error(`cannot send "${message.type}": transport is closed`);
    this.socket.write(frame(encodeEnvelope(message)));
  }

  onMessage(handler: (message: Envelope) => void): void {
    this.messageHandlers.push(handler);
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.closed) handler(this.failure);
    else this.closeHandlers.push(handler);
  }

  close(): void {
    this.socket.end();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure && this.decoder.buffered > 0) {
      this.failure = new Error(`peer closed mid-frame (${this.decoder.buffered} bytes pending)`);
    }
    for (const h of this.closeHandlers) h(this.failure);
    this.closeHandlers = [];
  }
}

export class PortTransport implements Transport {
  private closed = false;
  private closeHandlers: Array<(e?: Error) => void> = [];

  constructor(private readonly port: MessagePort) {
    port.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      for (const h of this.closeHandlers) h();
      this.closeHandlers = [];
    });
  }

  send(message: Envelope, transfer: readonly ArrayBuffer[] = []): void {
    if (this.closed) throw new Error(`cannot send "${message.type}": transport is closed`);
    this.port.postMessage(message, transfer as ArrayBuffer[]);
  }

  onMessage(handler: (message: Envelope) => void): void {
    this.port.on('message', (message: Envelope) => handler(message));
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  close(): void {
    this.port.close();
  }
}
