// Headers between HTTP/2 and HTTP/1.1 (RFC 9113 section 8.2): HTTP/2 carries the
// request line in pseudo-headers (:method, :scheme, :authority, :path), names in lower
// case, and forbids the headers that describe an HTTP/1.1 connection. The record keeps
// what the server sent; these turn it into what the other protocol may carry.
import { constants, type OutgoingHttpHeaders, type ServerHttp2Stream, type ServerStreamResponseOptions } from 'node:http2';
import { drainedOrClosed, type ResponseSink } from './http1.js';
import type { HeaderPairs } from './record.js';

/** Node adds a Date header to responses unless told not to (an option its types lack). */
const NO_DATE = { sendDate: false } as ServerStreamResponseOptions;

/** Headers about one HTTP/1.1 connection, which HTTP/2 forbids. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

function connectionSpecific(name: string, value: string): boolean {
  return CONNECTION_SPECIFIC.has(name) || (name === 'te' && value.trim().toLowerCase() !== 'trailers');
}

/** Adds a header to an HTTP/2 header object: repeated names become arrays, in order. */
function add(out: OutgoingHttpHeaders, name: string, value: string): void {
  const had = out[name];
  if (had === undefined) out[name] = value;
  else if (Array.isArray(had)) had.push(value);
  else out[name] = [String(had), value];
}

/** A response's headers for an HTTP/2 client: names in lower case, the connection's own
 * headers (and those the Connection header names) left out. */
export function h2ResponseHeaders(status: number, headers: HeaderPairs): OutgoingHttpHeaders {
  const named = new Set<string>();
  for (const [k, v] of headers) if (k.toLowerCase() === 'connection') for (const n of v.split(',')) named.add(n.trim().toLowerCase());
  const out: OutgoingHttpHeaders = { ':status': status };
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    if (name.startsWith(':') || named.has(name) || connectionSpecific(name, v)) continue;
    add(out, name, v);
  }
  return out;
}

/** An HTTP/2 client's request as an HTTP/1.1 request's headers: Host from :authority
 * first, no pseudo-headers, cookie crumbs joined again with "; " (RFC 9113 8.2.3). */
export function h1RequestHeaders(raw: HeaderPairs): HeaderPairs {
  const authority = raw.find(([k]) => k === ':authority')?.[1];
  const host = raw.find(([k]) => k === 'host')?.[1];
  const out: HeaderPairs = [];
  if (authority !== undefined || host !== undefined) out.push(['host', authority ?? host!]);
  const cookies: string[] = [];
  for (const [k, v] of raw) {
    if (k.startsWith(':') || k === 'host') continue;
    if (k === 'cookie') cookies.push(v);
    else out.push([k, v]);
  }
  if (cookies.length) out.push(['cookie', cookies.join('; ')]);
  return out;
}

/** An HTTP/1.1-style request's headers for an HTTP/2 server: pseudo-headers from the
 * request line and Host, the rest in lower case without the connection's own. */
export function h2RequestHeaders(method: string, scheme: string, target: string, headers: HeaderPairs): OutgoingHttpHeaders {
  const host = headers.find(([k]) => k.toLowerCase() === 'host')?.[1];
  const out: OutgoingHttpHeaders = { ':method': method, ':scheme': scheme, ':path': target };
  if (host !== undefined) out[':authority'] = host;
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    if (name === 'host' || name.startsWith(':') || connectionSpecific(name, v)) continue;
    add(out, name, v);
  }
  return out;
}

/** A response on one stream of an HTTP/2 connection. Trailers, if any, end it; the date
 * is the record's, not one added now. */
export class H2Sink implements ResponseSink {
  private trailers: HeaderPairs = [];
  private responded = false;

  constructor(private readonly stream: ServerHttp2Stream) {
    stream.on('wantTrailers', () => {
      const out: OutgoingHttpHeaders = {};
      for (const [k, v] of this.trailers) if (!connectionSpecific(k.toLowerCase(), v)) add(out, k.toLowerCase(), v);
      // no trailers: an empty DATA frame ends the stream
      stream.sendTrailers(out);
    });
  }

  head(_version: string, status: number, _reason: string, headers: HeaderPairs, hasBody: boolean): void {
    this.responded = true;
    this.stream.respond(h2ResponseHeaders(status, headers), { ...NO_DATE, endStream: !hasBody, waitForTrailers: hasBody });
  }

  write(data: Buffer): boolean {
    return this.stream.write(data);
  }

  drained(): Promise<void> {
    return drainedOrClosed(this.stream);
  }

  end(trailers: HeaderPairs | undefined): void {
    this.trailers = trailers ?? [];
    if (!this.stream.writableEnded) this.stream.end();
  }

  fail(status: number, _reason: string, why: string): void {
    if (this.responded || this.stream.destroyed) return this.abort();
    this.responded = true;
    const body = Buffer.from(`uwrx: ${why}\n`, 'utf8');
    this.stream.respond(
      { ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'x-uwrx-error': why.replace(/[\r\n]/g, ' ').slice(0, 500) },
      NO_DATE,
    );
    this.stream.end(body);
  }

  abort(): void {
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  get gone(): boolean {
    return this.stream.destroyed;
  }
}
