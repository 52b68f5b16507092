// The proxy's side towards the real servers in capture mode: one request out, one
// response back as a stream, over HTTP/1.1 (Node's agents, kept alive) or HTTP/2 (one
// session per origin). A client that spoke HTTP/1.1 is forwarded over HTTP/1.1, so the
// server's headers and framing reach it as sent; a client that spoke HTTP/2 is forwarded
// over whatever the server picks when offered h2 and http/1.1 by ALPN.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { HeaderPairs } from './record.js';
import { h2RequestHeaders } from './http2.js';

export interface UpstreamRequest {
  scheme: 'http' | 'https';
  /** The name the client used: TLS server name and certificate check. */
  host: string;
  /** Where the server really is. */
  address: string;
  port: number;
  method: string;
  target: string;
  /** HTTP/1.1 style: names as sent, Host among them. */
  headers: HeaderPairs;
  body: Buffer | null;
  /** The client spoke HTTP/2: the server may be offered h2. */
  offerH2: boolean;
}

export interface UpstreamResponse {
  status: number;
  reason: string;
  /** "1.0", "1.1" or "2". */
  version: string;
  headers: HeaderPairs;
  body: Readable;
  /** Trailers, once the body ended. */
  trailers(): HeaderPairs;
  /** undefined when the body ended complete, otherwise what went wrong. */
  ended: Promise<string | undefined>;
}

function pairs(raw: string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

type Origin = { kind: 'h1' } | { kind: 'h2'; session: http2.ClientHttp2Session };

export class Upstreams {
  private readonly agents = new Map<string, http.Agent>();
  /** What each https origin speaks to an HTTP/2 client, once known. */
  private readonly origins = new Map<string, Promise<Origin>>();
  /** Node's own roots and `trusted` (PEM texts: the host's trust store, --upstream-ca),
   * parsed once for every connection. */
  private readonly context: tls.SecureContext;

  constructor(trusted: string[]) {
    this.context = tls.createSecureContext({ ca: [...tls.rootCertificates, ...trusted] });
  }

  /** Sends the request; rejects when no response head arrives. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (req.offerH2 && req.scheme === 'https') {
      const origin = await this.origin(req);
      if (origin.kind === 'h2') return this.requestH2(origin.session, req);
    }
    return this.requestH1(req);
  }

  private agent(scheme: 'http' | 'https', host: string, port: number): http.Agent {
    const key = `${scheme}://${host}:${port}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = scheme === 'https' ? new https.Agent({ keepAlive: true, secureContext: this.context }) : new http.Agent({ keepAlive: true });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private requestH1(req: UpstreamRequest): Promise<UpstreamResponse> {
    const flat: string[] = [];
    for (const [k, v] of req.headers) flat.push(k, v);
    return new Promise((resolve, reject) => {
      const out = (req.scheme === 'https' ? https : http).request({
        host: req.address,
        port: req.port,
        method: req.method,
        path: req.target,
        headers: flat as unknown as http.OutgoingHttpHeaders,
        setHost: false,
        agent: this.agent(req.scheme, req.host, req.port),
        ...(req.scheme === 'https' ? { servername: req.host } : {}),
      });
      out.on('error', reject);
      out.on('response', (res) => {
        const ended = new Promise<string | undefined>((done) => {
          res.on('end', () => done(undefined));
          res.on('aborted', () => done('upstream closed the connection in the middle of the body'));
          res.on('error', (err) => done(`upstream failed in the middle of the body: ${err.message}`));
          res.on('close', () => {
            if (!res.complete) done('upstream closed the connection in the middle of the body');
          });
        });
        resolve({
          status: res.statusCode ?? 0,
          reason: res.statusMessage ?? '',
          version: res.httpVersion === '1.0' ? '1.0' : '1.1',
          headers: pairs(res.rawHeaders),
          body: res,
          trailers: () => pairs(res.rawTrailers),
          ended,
        });
      });
      out.end(req.body ?? undefined);
    });
  }

  /** The origin's protocol for HTTP/2 clients: a TLS connection offering h2 and
   * http/1.1 decides it; an h2 session is kept for the next requests until it closes. */
  private origin(req: UpstreamRequest): Promise<Origin> {
    const key = `${req.host}:${req.port}`;
    let known = this.origins.get(key);
    if (!known) {
      known = new Promise<Origin>((resolve, reject) => {
        const sock = tls.connect({ host: req.address, port: req.port, servername: req.host, secureContext: this.context, ALPNProtocols: ['h2', 'http/1.1'] });
        sock.once('error', reject);
        sock.once('secureConnect', () => {
          sock.off('error', reject);
          if (sock.alpnProtocol !== 'h2') {
            sock.destroy();
            return resolve({ kind: 'h1' });
          }
          const session = http2.connect(`https://${req.host}:${req.port}`, { createConnection: () => sock });
          const forget = () => {
            if (this.origins.get(key) === known) this.origins.delete(key);
          };
          session.on('close', forget);
          session.on('goaway', forget);
          session.on('error', forget);
          resolve({ kind: 'h2', session });
        });
      });
      // a failed probe is not remembered: the next request tries again
      known.catch(() => this.origins.delete(key));
      this.origins.set(key, known);
    }
    return known;
  }

  private requestH2(session: http2.ClientHttp2Session, req: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const stream = session.request(h2RequestHeaders(req.method, req.scheme, req.target, req.headers), { endStream: !req.body });
      let trailers: HeaderPairs = [];
      let ended = false;
      stream.on('trailers', (_h: unknown, _f: number, raw: string[]) => (trailers = pairs(raw)));
      stream.once('error', reject);
      stream.once('response', (_headers: unknown, _flags: number, raw: string[]) => {
        stream.off('error', reject);
        const all = pairs(raw);
        const status = Number(all.find(([k]) => k === ':status')?.[1] ?? 0);
        resolve({
          status,
          reason: '',
          version: '2',
          headers: all.filter(([k]) => !k.startsWith(':')),
          body: stream,
          trailers: () => trailers,
          ended: new Promise((done) => {
            stream.on('end', () => {
              ended = true;
              done(undefined);
            });
            stream.on('error', (err) => done(`upstream failed in the middle of the body: ${err.message}`));
            stream.on('close', () => {
              if (!ended) done(`upstream reset the stream in the middle of the body (code ${stream.rstCode ?? 'none'})`);
            });
          }),
        });
      });
      stream.once('close', () => reject(new Error(`stream closed before a response (code ${stream.rstCode ?? 'none'})`)));
      if (req.body) stream.end(req.body);
    });
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    for (const o of this.origins.values()) o.then((x) => x.kind === 'h2' && x.session.destroy(), () => undefined);
    this.origins.clear();
  }
}
