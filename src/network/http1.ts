// HTTP/1.1 on the proxy's client side, written out by hand so every byte the client
// gets is the record's (Node's http server adds and rewrites headers): a buffered
// reader over a socket, the request head parser with its limits, chunked bodies, and the
// response writer used both for forwarding and for replay.
import { STATUS_CODES } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import type { HeaderPairs } from './record.js';

/** Largest request head accepted (request line and headers); larger: 431. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Largest request body held for matching; larger: 413. */
export const MAX_REQUEST_BODY = 256 * 1024 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads a stream as a byte queue: up to a delimiter, exact counts, or what is there. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  private readonly listeners: Array<[string, (...args: any[]) => void]>; // eslint-disable-line @typescript-eslint/no-explicit-any

  constructor(private readonly stream: Duplex) {
    const onEnd = () => {
      this.ended = true;
      this.notify();
    };
    this.listeners = [
      ['data', (c: Buffer) => {
        this.chunks.push(c);
        this.size += c.length;
        // keep at most a few MiB queued: the sender waits in TCP meanwhile
        if (this.size > 4 * 1024 * 1024) stream.pause();
        this.notify();
      }],
      ['end', onEnd],
      ['close', onEnd],
      ['error', (err: Error) => {
        this.failure = err;
        this.notify();
      }],
    ];
    for (const [event, fn] of this.listeners) stream.on(event, fn);
  }

  /** Stops reading the stream and gives back what was read and not taken (the stream is
   * paused, for its next reader). */
  detach(): Buffer {
    for (const [event, fn] of this.listeners) this.stream.off(event, fn);
    this.stream.pause();
    return this.take(this.size);
  }

  get buffered(): number {
    return this.size;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async more(): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.ended) return false;
    this.stream.resume();
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
    return true;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  /** Bytes up to and including `delim`; null at a clean end with nothing buffered.
   * More than `max` bytes without the delimiter: HttpError(status). */
  async until(delim: string, max: number, status: number): Promise<Buffer | null> {
    let scanned = 0;
    for (;;) {
      if (this.size > 0) {
        const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [all];
        const at = all.indexOf(delim, Math.max(0, scanned - delim.length));
        if (at >= 0) return this.take(at + delim.length);
        scanned = all.length;
        if (all.length > max) throw new HttpError(status, `more than ${max} bytes without "${JSON.stringify(delim).slice(1, -1)}"`);
      }
      if (!(await this.more())) {
        if (this.size === 0) return null;
        throw new HttpError(400, 'connection ended inside a request head');
      }
    }
  }

  async exact(n: number): Promise<Buffer> {
    while (this.size < n) if (!(await this.more())) throw new HttpError(400, `connection ended ${n - this.size} bytes before the end of a body`);
    return this.take(n);
  }

  /** Whatever is buffered (waiting for some); null at the end. */
  async some(): Promise<Buffer | null> {
    while (this.size === 0) if (!(await this.more())) return null;
    return this.take(this.size);
  }

  /** The first byte, without consuming it; null at the end, undefined after `timeoutMs`. */
  async peek(timeoutMs: number): Promise<number | null | undefined> {
    if (this.size > 0) return this.chunks[0]![0]!;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      const r = await Promise.race([this.more(), timedOut]);
      if (r === 'timeout') return undefined;
      if (!r && this.size === 0) return null;
      return this.size > 0 ? this.chunks[0]![0]! : this.peek(timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface RequestHead {
  method: string;
  target: string;
  /** "1.1" or "1.0" */
  version: string;
  headers: HeaderPairs;
  /** Bytes of the head as received. */
  bytes: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses a request head (request line through the empty line). */
export function parseRequestHead(raw: Buffer): RequestHead {
  const text = raw.toString('latin1');
  const lines = text.slice(0, -4).split('\r\n');
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]!);
  if (!m) throw new HttpError(400, `malformed request line ${JSON.stringify(lines[0]!.slice(0, 100))}`);
  const headers: HeaderPairs = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!TOKEN.test(name)) throw new HttpError(400, `malformed header line ${JSON.stringify(line.slice(0, 100))}`);
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  return { method: m[1]!, target: m[2]!, version: m[3]!, headers, bytes: raw.length };
}

export function header(headers: HeaderPairs, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function isChunked(headers: HeaderPairs): boolean {
  return headers.some(([k, v]) => k.toLowerCase() === 'transfer-encoding' && /(^|,)\s*chunked\s*$/i.test(v));
}

/** Reads a request body as framed by its headers (Content-Length or chunked). */
export async function readRequestBody(reader: ByteReader, head: RequestHead): Promise<Buffer | null> {
  if (isChunked(head.headers)) return readChunked(reader, MAX_REQUEST_BODY).then((r) => r.body);
  const length = header(head.headers, 'content-length');
  if (length === undefined) return null;
  if (!/^\d+$/.test(length)) throw new HttpError(400, `malformed Content-Length ${JSON.stringify(length)}`);
  const n = Number(length);
  if (n > MAX_REQUEST_BODY) throw new HttpError(413, `request body of ${n} bytes is larger than ${MAX_REQUEST_BODY}`);
  return n === 0 ? Buffer.alloc(0) : reader.exact(n);
}

/** A chunked body: the chunks' data joined, and the trailers. */
export async function readChunked(reader: ByteReader, max: number): Promise<{ body: Buffer; trailers: HeaderPairs }> {
  const parts: Buffer[] = [];
  let total = 0;
  for (;;) {
    const line = await reader.until('\r\n', 4096, 400);
    if (!line) throw new HttpError(400, 'connection ended inside a chunked body');
    const m = /^([0-9a-fA-F]+)(;.*)?\r\n$/.exec(line.toString('latin1'));
    if (!m) throw new HttpError(400, 'malformed chunk size line');
    const size = parseInt(m[1]!, 16);
    if (size === 0) break;
    total += size;
    if (total > max) throw new HttpError(413, `chunked request body larger than ${max} bytes`);
    parts.push(await reader.exact(size));
    await reader.exact(2);
  }
  const trailers: HeaderPairs = [];
  for (;;) {
    const line = await reader.until('\r\n', MAX_HEAD_BYTES, 431);
    if (!line || line.length === 2) break;
    const t = line.toString('latin1').slice(0, -2);
    const colon = t.indexOf(':');
    if (colon > 0) trailers.push([t.slice(0, colon), t.slice(colon + 1).trim()]);
  }
  return { body: Buffer.concat(parts), trailers };
}

/** The response's status line and headers, byte for byte as given. */
export function responseHead(version: string, status: number, reason: string, headers: HeaderPairs): Buffer {
  let text = `HTTP/${version} ${status} ${reason}\r\n`;
  for (const [k, v] of headers) text += `${k}: ${v}\r\n`;
  return Buffer.from(text + '\r\n', 'latin1');
}

export function chunk(data: Buffer): Buffer[] {
  return [Buffer.from(data.length.toString(16) + '\r\n', 'latin1'), data, Buffer.from('\r\n', 'latin1')];
}

export function lastChunk(trailers: HeaderPairs | undefined): Buffer {
  let text = '0\r\n';
  for (const [k, v] of trailers ?? []) text += `${k}: ${v}\r\n`;
  return Buffer.from(text + '\r\n', 'latin1');
}

/** Whether a response to `method` with `status` carries a body at all. */
export function responseHasBody(method: string, status: number): boolean {
  return method !== 'HEAD' && !(status >= 100 && status < 200) && status !== 204 && status !== 304;
}

/** A short error response of the proxy's own, with the reason in a header. */
export function errorResponse(status: number, reasonPhrase: string, why: string): Buffer {
  const body = Buffer.from(`uwrx: ${why}\n`, 'utf8');
  const safe = why.replace(/[\r\n]/g, ' ').slice(0, 500);
  return Buffer.concat([
    responseHead('1.1', status, reasonPhrase, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(body.length)],
      ['X-Uwrx-Error', safe],
      ['Connection', 'close'],
    ]),
    body,
  ]);
}

/** Whether the client wants the connection kept after this exchange. */
export function clientKeepsAlive(head: RequestHead): boolean {
  const c = (header(head.headers, 'connection') ?? '').toLowerCase();
  return head.version === '1.1' ? !/\bclose\b/.test(c) : /\bkeep-alive\b/.test(c);
}

/** Resolves when `stream` can take more writes, or has closed (nothing will drain it). */
export function drainedOrClosed(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Where the proxy sends a response: an HTTP/1.1 connection (H1Sink) or one stream of
 * an HTTP/2 connection (src/network/http2.ts). */
export interface ResponseSink {
  /** Status and headers as recorded; `hasBody` false: nothing follows them. */
  head(version: string, status: number, reason: string, headers: HeaderPairs, hasBody: boolean): void;
  /** Body bytes; false asks the caller to wait for drained(). */
  write(data: Buffer): boolean;
  drained(): Promise<void>;
  /** The body is complete. */
  end(trailers: HeaderPairs | undefined): void;
  /** The proxy's own error response, sent instead of any other. */
  fail(status: number, reason: string, why: string): void;
  /** The response breaks off: the client must not take it as complete. */
  abort(): void;
  readonly gone: boolean;
}

/** A response on an HTTP/1.1 connection: the status line and headers as given, the body
 * in chunks when the headers say chunked. */
export class H1Sink implements ResponseSink {
  private chunked = false;

  constructor(private readonly client: Duplex) {}

  head(version: string, status: number, reason: string, headers: HeaderPairs, hasBody: boolean): void {
    // an exchange recorded over HTTP/2 has no reason phrase and no HTTP/1 version
    const v = version === '1.0' ? '1.0' : '1.1';
    this.client.write(responseHead(v, status, version === '2' && !reason ? STATUS_CODES[status] ?? '' : reason, headers));
    this.chunked = hasBody && isChunked(headers);
  }

  write(data: Buffer): boolean {
    if (!this.chunked) return this.client.write(data);
    let more = true;
    for (const b of chunk(data)) more = this.client.write(b) && more;
    return more;
  }

  drained(): Promise<void> {
    return drainedOrClosed(this.client);
  }

  end(trailers: HeaderPairs | undefined): void {
    if (this.chunked) this.client.write(lastChunk(trailers));
  }

  fail(status: number, reason: string, why: string): void {
    this.client.end(errorResponse(status, reason, why));
  }

  abort(): void {
    this.client.destroy();
  }

  get gone(): boolean {
    return this.client.destroyed;
  }
}
