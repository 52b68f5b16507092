// The proxy actor: serves every connection the sandbox makes to an allocated address.
// uwrx-init makes a listener for each address and port a connect names and hands it
// over by fd; the first byte tells TLS (0x16: terminated with the domain's certificate,
// SNI or the address's domain) from plain HTTP (a method name) from anything else
// (tunnelled raw in capture mode, refused in replay). HTTP/1.1 requests, and HTTP/2
// streams of clients that offer only h2 by ALPN, are forwarded to the real server in
// capture mode (src/network/upstream.ts) and answered from the record in replay mode; every
// exchange goes to net/ (src/network/record.ts) either way, so a replay's record is
// complete too. Git (smart HTTP requests and git:// connections) is routed to
// src/network/git.ts, which answers from a mirror of each repository.
import { nodeCrypto } from '../crypto.js';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { defineActor } from './actor.js';
import type { Peer } from './peer.js';
import type { DomainInfo } from './dns.js';
import { DNS_MESSAGES, PROXY_MESSAGES, type NetMode } from '../network/messages.js';

export { PROXY_MESSAGES };
import { makeLeafCert, keysFromPem, recordedCert, type Authority } from '../network/ca.js';
import {
  ByteReader,
  H1Sink,
  HttpError,
  clientKeepsAlive,
  errorResponse,
  header,
  isChunked,
  parseRequestHead,
  readRequestBody,
  responseHasBody,
  MAX_HEAD_BYTES,
  MAX_REQUEST_BODY,
  type RequestHead,
  type ResponseSink,
} from '../network/http1.js';
import { H2Sink, h1RequestHeaders } from '../network/http2.js';
import { Upstreams, type UpstreamResponse } from '../network/upstream.js';
import { NET_DIR, NetRecordWriter, matchKey, readExchanges, writeDomainFile, type Exchange, type HeaderPairs } from '../network/record.js';
import { NetTrace } from '../network/trace.js';
import { GitServer, readFirstPkt } from '../network/git.js';
import { detectSmartHttp, parseDaemonRequest } from '../network/git-protocol.js';
import { ConnectionOwners } from '../network/owners.js';

export interface ProxyOptions {
  attemptDir: string;
  mode: NetMode;
  replayDir?: string;
  /** PEM texts trusted for upstream servers besides Node's bundled roots: the host's
   * trust store, NODE_EXTRA_CA_CERTS, --upstream-ca. */
  upstreamCa: string[];
  /** The host's CA bundle plus --upstream-ca, as one file (for the git that fills mirrors). */
  upstreamCaFile?: string;
  /** --allow-push: git pushes pass through to the real server in capture mode. */
  allowPush?: boolean;
  /** net/_keys.pem contents and the CA certificate (ca.pem). */
  keysPem: string;
  caCertPem: string;
  /** Start of certificate validity (T0 of the attempt, ms). */
  notBeforeMs: number;
  tracesDir?: string;
}

export interface ProxyStats {
  requests: number;
  /** Response body bytes served to the sandbox. */
  bytes: number;
  /** Requests the record could not answer (replay). */
  unmatched: number;
  /** Malformed requests, failed handshakes, upstream failures, refused git operations. */
  errors: number;
  /** Git operations (src/network/git.ts) and the bytes they sent. */
  git: number;
  gitBytes: number;
  /** The first problems, one line each. */
  problems: string[];
}

/** How long a client may stay silent before uwrx looks for a server that speaks first
 * (SMTP, SSH ...). A client slower than this (a busy machine can hold back a TLS hello
 * for seconds) still decides when it speaks, up to SILENT_CLIENT_TIMEOUT_MS. */
const FIRST_BYTE_TIMEOUT_MS = 1000;
/** How long a connection where neither side speaks is kept before it is passed through
 * (capture) or refused (replay, where raw TCP is not served). */
const SILENT_CLIENT_TIMEOUT_MS = 30_000;
const MAX_PROBLEMS = 20;

/** 0-9 and a-f: how a pkt-line's length starts. */
function isLowerHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66);
}

/** The first byte of a connection, left unread: null at the end, undefined after
 * `timeoutMs` or once `stop` is called (which also removes the listeners). */
function watchFirst(sock: net.Socket, timeoutMs: number): { first: Promise<number | null | undefined>; stop: () => void } {
  let finish: (v: number | null | undefined) => void = () => undefined;
  const first = new Promise<number | null | undefined>((resolve) => {
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const onReadable = () => {
      const data = sock.read() as Buffer | null;
      if (data === null) return;
      sock.unshift(data);
      finish(data[0]!);
    };
    const onEnd = () => finish(null);
    finish = (v) => {
      clearTimeout(timer);
      sock.off('readable', onReadable);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      resolve(v);
    };
    sock.on('readable', onReadable);
    sock.on('end', onEnd);
    sock.on('close', onEnd);
  });
  return { first, stop: () => finish(undefined) };
}

function pairs(raw: string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** Whether the response leaves the client connection usable for another request. */
function framed(method: string, status: number, headers: HeaderPairs): boolean {
  if (!responseHasBody(method, status)) return true;
  if (isChunked(headers)) return true;
  if (header(headers, 'content-length') !== undefined) return !/\bclose\b/i.test(header(headers, 'connection') ?? '');
  return false;
}

/** The body cut into the recorded chunk sizes (what the client got in capture); bytes
 * beyond them, if any, in the reads' own sizes. */
async function* rechunk(input: AsyncIterable<Buffer>, sizes: number[]): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let have = 0;
  let i = 0;
  for await (const data of input) {
    pending.push(data);
    have += data.length;
    while (i < sizes.length && have >= sizes[i]!) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      yield all.subarray(0, sizes[i]!);
      const rest = all.subarray(sizes[i]!);
      pending = rest.length ? [rest] : [];
      have = rest.length;
      i++;
    }
    if (i >= sizes.length && have > 0) {
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      have = 0;
    }
  }
  if (have > 0) yield Buffer.concat(pending);
}

/** The proxy of one run: its listeners, connections, certificates and record. */
function createProxy(options: ProxyOptions, dns: Peer) {
  const record = new NetRecordWriter(options.attemptDir);
  let trace = options.tracesDir ? new NetTrace(options.tracesDir, 'proxy') : undefined;
  const authority: Authority = { keys: keysFromPem(options.keysPem), caCertPem: options.caCertPem };
  const servers: net.Server[] = [];
  const sockets = new Set<Duplex>();
  const contexts = new Map<string, tls.SecureContext>();
  const owners = new ConnectionOwners();

  const upstreams = new Upstreams(options.upstreamCa);
  const stats: ProxyStats = { requests: 0, bytes: 0, unmatched: 0, errors: 0, git: 0, gitBytes: 0, problems: [] };
  /** Replay: recorded exchanges by match key, served in recorded order. */
  const recorded = new Map<string, { list: Exchange[]; next: number }>();
  function problem(text: string): void {
    stats.errors++;
    if (stats.problems.length < MAX_PROBLEMS) stats.problems.push(text);
  }
  const git = new GitServer({
    netDir: record.dir,
    mode: options.mode,
    ...(options.replayDir ? { replayNetDir: path.join(options.replayDir, NET_DIR) } : {}),
    ...(options.upstreamCaFile ? { upstreamCaFile: options.upstreamCaFile } : {}),
    resolve: async (name) => (await dns.request<DomainInfo | null>(DNS_MESSAGES.resolve, { name }))?.upstream[0],
    allowPush: options.allowPush === true,
    record,
    trace: () => trace,
    problem,
  });

  function contextFor(name: string): tls.SecureContext {
    let ctx = contexts.get(name);
    if (!ctx) {
      // a replay serves the recorded certificate (same key, same bytes)
      const recorded = options.replayDir && !net.isIP(name) ? recordedCert(path.join(options.replayDir, NET_DIR, name, 'cert.pem'), authority.keys.leafKeyPem) : undefined;
      const cert = recorded ?? makeLeafCert(authority, name, options.notBeforeMs);
      if (!net.isIP(name)) writeDomainFile(options.attemptDir, name, 'cert.pem', cert);
      ctx = tls.createSecureContext({ key: authority.keys.leafKeyPem, cert: cert + authority.caCertPem });
      contexts.set(name, ctx);
    }
    return ctx;
  }

  async function serveConnection(sock: net.Socket, address: string, port: number): Promise<void> {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const [pid, info] = await Promise.all([
      owners.ownerOf(`${address}:${port}:${sock.remotePort}`),
      dns.request<DomainInfo | null>(DNS_MESSAGES.domainOf, { address }).then((d) => d ?? null),
    ]);
    await serveStream(sock, info, address, port, pid);
  }

  /** A connection to `address:port` (the domain `info`), by its first byte: TLS, HTTP,
   * git://, or anything else. */
  async function serveStream(sock: net.Socket, info: DomainInfo | null, address: string, port: number, pid: number): Promise<void> {
    let first = await watchFirst(sock, FIRST_BYTE_TIMEOUT_MS).first;
    if (first === undefined) {
      // a client waiting for the server's greeting, or a slow one: in capture the server
      // is asked, and whichever side speaks first decides
      const upstream = options.mode === 'capture' ? info?.upstream[0] : undefined;
      const out = upstream ? net.connect({ host: upstream, port }) : undefined;
      out?.on('error', () => undefined);
      const client = watchFirst(sock, SILENT_CLIENT_TIMEOUT_MS);
      const server = out ? watchFirst(out, SILENT_CLIENT_TIMEOUT_MS) : undefined;
      // a server that greets, hangs up or cannot be reached decides as well: the client
      // then gets what it would natively, the greeting or the end of the connection
      const greeted = server?.first.then((b) => (b === undefined ? new Promise<never>(() => undefined) : ('server' as const)));
      const spoke = await Promise.race([client.first, ...(greeted ? [greeted] : [])]);
      client.stop();
      server?.stop();
      if (spoke === 'server' || (spoke === undefined && out)) return tunnel(sock, info, address, port, pid, out);
      out?.destroy();
      first = spoke;
    }
    if (first === null) return void sock.destroy();
    if (first === 0x16) {
      const secure = new tls.TLSSocket(sock, {
        isServer: true,
        secureContext: contextFor(info?.domain ?? address),
        SNICallback: (name, cb) => {
          try {
            cb(null, contextFor(name.toLowerCase()));
          } catch (err) {
            cb(err as Error);
          }
        },
        // the server's preference first: a client offering both gets HTTP/1.1, one
        // offering only h2 gets HTTP/2
        ALPNProtocols: ['http/1.1', 'h2'],
      });
      sockets.add(secure);
      secure.on('close', () => sockets.delete(secure));
      const ok = await new Promise<boolean>((resolve) => {
        let settled = false;
        const fail = (why: string) => {
          if (settled) return;
          settled = true;
          problem(`TLS handshake on ${info?.domain ?? address}:${port} failed: ${why}`);
          trace?.exchange(pid, -1, 0, `https://${info?.domain ?? address}:${port}/`, '');
          resolve(false);
        };
        secure.once('secure', () => {
          settled = true;
          resolve(true);
        });
        secure.once('error', (err) => fail(err.message));
        secure.once('close', () => fail('the client closed the connection'));
      });
      if (!ok) return void sock.destroy();
      secure.on('error', () => undefined);
      const name = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      const domain = typeof name === 'string' && name ? name.toLowerCase() : info?.domain ?? address;
      if (secure.alpnProtocol === 'h2') await serveHttp2(secure, domain, port, pid);
      else await serveHttp(secure, 'https', domain, port, pid);
    } else if (first !== undefined && first >= 0x41 && first <= 0x5a) {
      await serveHttp(sock, 'http', info?.domain ?? address, port, pid, sock);
    } else if (first !== undefined && isLowerHex(first)) {
      // git:// starts with a pkt-line: "git-upload-pack /path\0host=...\0"
      const pkt = await readFirstPkt(sock);
      const request = pkt ? parseDaemonRequest(pkt.subarray(4)) : undefined;
      if (request && (await git.serveDaemon(sock, request, info?.domain ?? address, port, pid))) return;
      if (pkt) sock.unshift(pkt);
      tunnel(sock, info, address, port, pid);
    } else {
      tunnel(sock, info, address, port, pid);
    }
  }

  /** CONNECT host:port from a client told to use a proxy (HTTPS_PROXY=http://proxy:3128):
   * the proxy is this one, whatever its name, and what follows in the tunnel is served as
   * a connection made to host:port directly, recorded under host's name. */
  async function connectTunnel(sock: net.Socket, reader: ByteReader, authority: string, pid: number): Promise<void> {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(authority);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      problem(`CONNECT ${authority}: not host:port`);
      return void sock.end(errorResponse(400, 'Bad Request', `CONNECT needs host:port, not ${authority}`));
    }
    const host = (m[1] ?? m[2]!).toLowerCase();
    const info = net.isIP(host)
      ? await dns.request<DomainInfo | null>(DNS_MESSAGES.domainOf, { address: host })
      : await dns.request<DomainInfo | null>(DNS_MESSAGES.resolve, { name: host });
    if (!info && !net.isIP(host)) {
      problem(`CONNECT ${authority}: the name does not resolve`);
      trace?.exchange(pid, 502, 0, `tcp://${authority}`, '');
      return void sock.end(errorResponse(502, 'Bad Gateway', `${host} does not resolve`));
    }
    const rest = reader.detach();
    sock.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (rest.length) sock.unshift(rest);
    await serveStream(sock, info ?? null, info?.ip4 ?? host, port, pid);
  }

  /** Anything but HTTP: passed through to the real server in capture mode (its bytes are
   * not recorded; `connected`: the connection to it already open), refused otherwise. */
  function tunnel(sock: net.Socket, info: DomainInfo | null, address: string, port: number, pid: number, connected?: net.Socket): void {
    const url = `tcp://${info?.domain ?? address}:${port}`;
    const upstream = info?.upstream[0];
    if (options.mode !== 'capture' || !upstream) {
      problem(`${url}: not HTTP; ${options.mode === 'capture' ? 'no upstream address' : 'raw TCP is not replayed'}`);
      trace?.exchange(pid, -1, 0, url, '');
      connected?.destroy();
      return void sock.destroy();
    }
    trace?.exchange(pid, 0, 0, url, '');
    const out = connected ?? net.connect({ host: upstream, port });
    if (out.destroyed || out.readableEnded) {
      // the server hung up or failed before anyone spoke
      out.destroy();
      return void sock.destroy();
    }
    sockets.add(out);
    out.on('close', () => sockets.delete(out));
    out.on('error', () => sock.destroy());
    sock.on('error', () => out.destroy());
    sock.pipe(out);
    out.pipe(sock);
  }

  /** `plain`: the connection itself when it is not TLS, which may then ask to CONNECT. */
  async function serveHttp(stream: Duplex, scheme: 'http' | 'https', domain: string, port: number, pid: number, plain?: net.Socket): Promise<void> {
    const reader = new ByteReader(stream);
    for (;;) {
      let head: RequestHead;
      let body: Buffer | null;
      try {
        const raw = await reader.until('\r\n\r\n', MAX_HEAD_BYTES, 431);
        if (!raw) break;
        head = parseRequestHead(raw);
        if (/^100-continue$/i.test(header(head.headers, 'expect') ?? '')) stream.write('HTTP/1.1 100 Continue\r\n\r\n');
        body = await readRequestBody(reader, head);
      } catch (err) {
        if (err instanceof HttpError) {
          const reason = err.status === 431 ? 'Request Header Fields Too Large' : err.status === 413 ? 'Content Too Large' : 'Bad Request';
          problem(`${scheme}://${domain}:${port}: ${err.message}`);
          trace?.exchange(pid, err.status, 0, `${scheme}://${domain}:${port}/`, '');
          stream.end(errorResponse(err.status, reason, err.message));
        } else stream.destroy();
        return;
      }
      if (head.method === 'CONNECT' && plain) return connectTunnel(plain, reader, head.target, pid);
      const host = domain;
      const smart = detectSmartHttp(head.method, head.target);
      if (smart && !git.passesThrough(smart.service)) {
        const keep = await git.serveHttp(stream, { scheme, host, port, pid, head, body, smart });
        if (!keep || !clientKeepsAlive(head)) return void stream.end();
        continue;
      }
      const exchange: Exchange = {
        seq: 0,
        pid,
        scheme,
        host,
        port,
        method: head.method,
        target: head.target,
        requestHeaders: head.headers,
        requestBody: body ? record.storeBody(body) : null,
        requestBytes: body?.length ?? 0,
        durationMs: 0,
      };
      stats.requests++;
      const started = Date.now();
      const sink = new H1Sink(stream);
      const served =
        options.mode === 'capture' ? await forward(sink, exchange, head.headers, body, false) : await replay(sink, exchange);
      const keep = served && clientKeepsAlive(head) && framed(exchange.method, exchange.status!, exchange.responseHeaders!);
      finishExchange(exchange, started);
      if (!keep) {
        stream.end();
        return;
      }
    }
    stream.end();
  }

  /** Appends a served exchange to the record and the trace. */
  function finishExchange(exchange: Exchange, started: number): void {
    exchange.durationMs = Date.now() - started;
    exchange.seq = record.nextSeq();
    record.append(exchange);
    const url = `${exchange.scheme}://${exchange.host}:${exchange.port}${exchange.target}`;
    trace?.exchange(exchange.pid, exchange.status ?? -1, exchange.responseBytes ?? 0, url, exchange.saved ?? '');
  }

  /** An HTTP/2 connection (the client offered only h2): each stream is one exchange,
   * forwarded or replayed like an HTTP/1.1 request. Resolves when the connection ends. */
  function serveHttp2(secure: tls.TLSSocket, domain: string, port: number, pid: number): Promise<void> {
    const server = http2.createServer();
    // only a tls.Server marks the sockets it made as connected; the HTTP/2 session
    // waits for that mark before it reads
    (secure as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    return new Promise<void>((resolve) => {
      server.on('session', (session: http2.ServerHttp2Session) => {
        session.on('error', (err) => problem(`https://${domain}:${port} (HTTP/2): ${err.message}`));
        session.on('close', () => resolve());
      });
      server.on('stream', (stream: http2.ServerHttp2Stream, _headers: unknown, _flags: number, raw: string[]) => {
        stream.on('error', () => undefined);
        serveHttp2Stream(stream, pairs(raw), domain, port, pid).catch((err: Error) => {
          problem(`https://${domain}:${port} (HTTP/2): ${err.message}`);
          if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        });
      });
      server.emit('connection', secure);
    });
  }

  async function serveHttp2Stream(stream: http2.ServerHttp2Stream, raw: HeaderPairs, domain: string, port: number, pid: number): Promise<void> {
    const sink = new H2Sink(stream);
    const method = raw.find(([k]) => k === ':method')?.[1] ?? '';
    const target = raw.find(([k]) => k === ':path')?.[1] ?? '';
    const url = `https://${domain}:${port}${target}`;
    if (method === 'CONNECT' || !target) {
      problem(`${url}: HTTP/2 ${method || 'request'} without a path is not served`);
      trace?.exchange(pid, 501, 0, url, '');
      return sink.fail(501, 'Not Implemented', `HTTP/2 ${method || 'request'} without a path is not served`);
    }
    const parts: Buffer[] = [];
    let size = 0;
    for await (const data of stream as AsyncIterable<Buffer>) {
      size += data.length;
      if (size > MAX_REQUEST_BODY) {
        problem(`${url}: request body larger than ${MAX_REQUEST_BODY} bytes`);
        trace?.exchange(pid, 413, 0, url, '');
        return sink.fail(413, 'Content Too Large', `request body larger than ${MAX_REQUEST_BODY} bytes`);
      }
      parts.push(data);
    }
    const body = parts.length || header(raw, 'content-length') !== undefined ? Buffer.concat(parts) : null;
    const exchange: Exchange = {
      seq: 0,
      pid,
      scheme: 'https',
      host: domain,
      port,
      method,
      target,
      protocol: 'h2',
      requestHeaders: raw,
      requestBody: body ? record.storeBody(body) : null,
      requestBytes: body?.length ?? 0,
      durationMs: 0,
    };
    stats.requests++;
    const started = Date.now();
    if (options.mode === 'capture') await forward(sink, exchange, h1RequestHeaders(raw), body, true);
    else await replay(sink, exchange);
    finishExchange(exchange, started);
  }

  /** Capture: the exchange with the real server, streamed to the client while the body is
   * stored. `headers`: the request's headers as an HTTP/1.1 request carries them.
   * Resolves false when the response did not reach the client whole. */
  async function forward(sink: ResponseSink, ex: Exchange, headers: HeaderPairs, body: Buffer | null, offerH2: boolean): Promise<boolean> {
    const info = await dns.request<DomainInfo | null>(DNS_MESSAGES.resolve, { name: ex.host });
    const address = info?.upstream[0];
    const url = `${ex.scheme}://${ex.host}:${ex.port}${ex.target}`;
    if (!address) {
      ex.error = `no upstream address for ${ex.host}`;
      problem(`${url}: ${ex.error}`);
      sink.fail(502, 'Bad Gateway', ex.error);
      return false;
    }
    let res: UpstreamResponse;
    try {
      res = await upstreams.request({ scheme: ex.scheme, host: ex.host, address, port: ex.port, method: ex.method, target: ex.target, headers, body, offerH2 });
    } catch (err) {
      ex.error = `upstream ${ex.host}:${ex.port}: ${(err as Error).message}`;
      problem(`${url}: ${ex.error}`);
      sink.fail(502, 'Bad Gateway', ex.error);
      return false;
    }
    const status = res.status;
    ex.status = status;
    ex.reason = res.reason;
    ex.version = res.version;
    ex.responseHeaders = res.headers;
    const hasBody = responseHasBody(ex.method, status);
    sink.head(ex.version, status, ex.reason, res.headers, hasBody);
    const chunked = hasBody && isChunked(res.headers);
    const tmp = hasBody ? record.tempBodyPath() : undefined;
    const fd = tmp ? openSync(tmp, 'w') : -1;
    const hash = nodeCrypto().createHash('sha256');
    let size = 0;
    const chunks: number[] = [];
    res.body.on('data', (data: Buffer) => {
      size += data.length;
      if (chunked) chunks.push(data.length);
      hash.update(data);
      writeSync(fd, data);
      if (!sink.write(data)) {
        res.body.pause();
        void sink.drained().then(() => res.body.resume());
      }
    });
    const error = await res.ended;
    if (fd >= 0) closeSync(fd);
    ex.responseBytes = size;
    stats.bytes += size;
    if (error) {
      ex.error = error;
      ex.responseBody = null;
      problem(`${url}: ${error}`);
      sink.abort();
      return false;
    }
    if (tmp) {
      const sha = hash.digest('hex');
      record.commitBody(tmp, sha);
      ex.responseBody = sha;
      if (ex.method === 'GET' && status >= 200 && status < 300) {
        const saved = record.saveReadable(ex.host, ex.target, sha);
        if (saved) ex.saved = saved;
      }
    } else ex.responseBody = null;
    const trailers = res.trailers();
    if (hasBody && chunked) ex.chunks = chunks;
    if (trailers.length) ex.trailers = trailers;
    sink.end(ex.trailers);
    return true;
  }

  function loadRecorded(): void {
    if (!options.replayDir) return;
    for (const e of readExchanges(options.replayDir)) {
      if (e.status === undefined || e.error) continue;
      const key = matchKey(e);
      let entry = recorded.get(key);
      if (!entry) recorded.set(key, (entry = { list: [], next: 0 }));
      entry.list.push(e);
    }
  }

  /** Replay: the recorded response, byte for byte; 502 with the reason when none matches.
   * Resolves false when the response did not reach the client whole. */
  async function replay(sink: ResponseSink, ex: Exchange): Promise<boolean> {
    const entry = recorded.get(matchKey(ex));
    const url = `${ex.scheme}://${ex.host}:${ex.port}${ex.target}`;
    if (!entry) {
      stats.unmatched++;
      ex.error = `no recorded exchange for ${ex.method} ${url}${ex.requestBody ? ` with body ${ex.requestBody.slice(0, 12)}` : ''}`;
      problem(`replay: ${ex.error}`);
      sink.fail(502, 'Bad Gateway', ex.error);
      return false;
    }
    // repeated identical requests get the recorded answers in order; then the last again
    const rec = entry.list[Math.min(entry.next, entry.list.length - 1)]!;
    entry.next++;
    const from = path.join(options.replayDir!, NET_DIR);
    ex.status = rec.status!;
    ex.reason = rec.reason ?? '';
    ex.version = rec.version ?? '1.1';
    ex.responseHeaders = rec.responseHeaders ?? [];
    ex.responseBody = rec.responseBody ?? null;
    ex.responseBytes = rec.responseBytes ?? 0;
    if (rec.trailers) ex.trailers = rec.trailers;
    const hasBody = responseHasBody(ex.method, ex.status);
    sink.head(ex.version, ex.status, ex.reason, ex.responseHeaders, hasBody);
    if (ex.responseBody && hasBody) {
      record.importBody(from, ex.responseBody);
      if (ex.method === 'GET' && ex.status >= 200 && ex.status < 300) {
        const saved = record.saveReadable(ex.host, ex.target, ex.responseBody);
        if (saved) ex.saved = saved;
      }
      const input = createReadStream(record.bodyPath(ex.responseBody), { highWaterMark: 1 << 20 });
      if (rec.chunks) ex.chunks = rec.chunks;
      const pieces = rec.chunks ? rechunk(input as AsyncIterable<Buffer>, rec.chunks) : (input as AsyncIterable<Buffer>);
      for await (const data of pieces) {
        if (!sink.write(data) && !sink.gone) await sink.drained();
        if (sink.gone) {
          input.destroy();
          return false;
        }
      }
      stats.bytes += ex.responseBytes;
    }
    sink.end(ex.trailers);
    return true;
  }

  loadRecorded();
  const close = () => {
    for (const s of servers) s.close();
    servers.length = 0;
    for (const s of sockets) s.destroy();
    upstreams.close();
    git.close();
    record.close();
    trace?.close();
    trace = undefined;
  };
  return {
    listen(fd: number, address: string, port: number): void {
      const server = net.createServer((sock) => {
        serveConnection(sock, address, port).catch((err: Error) => {
          problem(`${address}:${port}: ${err.message}`);
          sock.destroy();
        });
      });
      server.on('error', (err) => problem(`listener ${address}:${port}: ${err.message}`));
      server.listen({ fd });
      servers.push(server);
    },
    connected(pid: number, address: string, port: number, sourcePort: number): void {
      owners.reported(`${address}:${port}:${sourcePort}`, pid);
    },
    finish(): ProxyStats {
      close();
      return { ...stats, git: git.operations, gitBytes: git.bytesSent };
    },
    close,
  };
}

export default defineActor<ProxyOptions>('proxy', (ctx) => {
  const proxy = createProxy(ctx.options, ctx.peer('dns'));
  return {
    stop: () => proxy.close(),
    handlers: {
      [PROXY_MESSAGES.listen]: (body: { fd: number; address: string; port: number }) => {
        proxy.listen(body.fd, body.address, body.port);
        return null;
      },
      [PROXY_MESSAGES.connect]: (body: { pid: number; address: string; port: number; sourcePort: number }) => {
        proxy.connected(body.pid, body.address, body.port, body.sourcePort);
        return null;
      },
      [PROXY_MESSAGES.finish]: () => proxy.finish(),
    },
  };
});
