// Transports carry Envelopes between actors: MessagePort between worker threads
// (structured clone; ArrayBuffers listed in `transfer` move instead of being copied),
// a unix stream socket to native peers such as uwrx-init (msgpack, which the C side
// reads). A body holding plain data, byte arrays and numbers looks the same on both.
import { Socket } from 'node:net';
import { threadWoke } from './wake-ups.js';
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
// Byte strings are decoded as views into their frame, which is never a reused read
// buffer (FrameDecoder copies frames out of one): a copy per read, not an ArrayBuffer per
// byte string (uwrx-init's exec notices carry a path, a cwd and each argument as bytes).
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

  /** `reused`: the chunk's bytes are overwritten once this returns (a socket's read
   * buffer): the frames returned are copied out of it (in one copy), and so is a partial
   * frame left over. */
  push(chunk: Buffer, reused = false): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Buffer[] = [];
    const inChunk = reused && this.pending.length === 1;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32LE(offset);
      if (length > MAX_FRAME_BYTES) throw new Error(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buf.length - offset - 4 < length) break;
      frames.push(buf.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    if (inChunk && frames.length > 0) {
      const whole = Buffer.from(buf.subarray(0, offset));
      const base = buf.byteOffset;
      for (let i = 0; i < frames.length; i++) frames[i] = whole.subarray(frames[i]!.byteOffset - base, frames[i]!.byteOffset - base + frames[i]!.length);
    }
    buf = buf.subarray(offset);
    if (inChunk && buf.length > 0) buf = Buffer.from(buf);
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

/** Bytes of the read buffer of SocketTransport.fromFd: a read takes what waits, up to this. */
const READ_BUFFER_BYTES = 64 * 1024;

/** A message encoded and framed for a SocketTransport. */
export interface EncodedMessage {
  type: string;
  frame: Buffer;
}

export class SocketTransport implements Transport {
  private readonly decoder = new FrameDecoder();
  private messageHandlers: Array<(m: Envelope) => void> = [];
  private closeHandlers: Array<(e?: Error) => void> = [];
  private closed = false;
  private failure: Error | undefined;

  /** Over a connected stream socket's descriptor (taken over), read into one buffer
   * reused for every read: no stream chunk, event and buffer per read, which a peer that
   * sends a few small messages per process (uwrx-init) pays thousands of times a run. */
  static fromFd(fd: number): SocketTransport {
    let transport: SocketTransport | undefined;
    const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    // `onread` is in Node's Socket constructor since 12.2 but not in its types
    const socket = new Socket({
      fd,
      readable: true,
      writable: true,
      onread: { buffer, callback: (n: number, buf: Buffer) => void transport!.received(buf.subarray(0, n), true) },
    } as ConstructorParameters<typeof Socket>[0]);
    transport = new SocketTransport(socket, true);
    return transport;
  }

  /** `readsItself`: the socket hands its reads to received() (fromFd), not as 'data'. */
  constructor(
    readonly socket: Socket,
    readsItself = false,
  ) {
    if (!readsItself) socket.on('data', (chunk: Buffer) => this.received(chunk, false));
    socket.on('error', (err) => {
      this.failure ??= err;
    });
    socket.on('close', () => this.finish());
  }

  private received(chunk: Buffer, reused: boolean): void {
    try {
      for (const f of this.decoder.push(chunk, reused)) {
        const message = decodeEnvelope(f);
        for (const h of this.messageHandlers) h(message);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.socket.destroy();
    }
    threadWoke();
  }

  send(message: Envelope, _transfer?: readonly ArrayBuffer[]): void {
    this.sendEncoded(SocketTransport.encode(message));
  }

  /** `message` as send() writes it: encoding a large message ahead (while waiting for
   * something else) takes it off the path to its write. */
  static encode(message: Envelope): EncodedMessage {
    return { type: message.type, frame: frame(encodeEnvelope(message)) };
  }

  /** Sends what encode() made, in order with everything sent before and after. */
  sendEncoded(message: EncodedMessage): void {
    if (this.closed) throw new Error(`cannot send "${message.type}": transport is closed`);
    this.socket.write(message.frame);
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
