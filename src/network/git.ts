// Git through the proxy: smart HTTP(S) requests and git:// connections are answered by
// `git upload-pack` from the remote's mirror (src/network/git-mirror.ts), with the
// protocol version the client asked for. Each request (HTTP) or connection (git://) is
// one operation in net/_git.jsonl and one `git` trace event on the client's track.
// Pushes are refused with a message the client shows, unless --allow-push lets them
// through to the real server in capture mode.
import { spawn } from 'node:child_process';
import type net from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import type { NetMode } from '../actors/dns.js';
import { GitMirrors, MirrorError, gitEnv, remoteUrl, type MirrorOptions, type Remote } from './git-mirror.js';
import {
  FLUSH_PKT,
  MAX_PKT,
  PktScanner,
  emptyAsk,
  errPkt,
  gitProtocolEnv,
  parsePkts,
  pktLine,
  protocolVersion,
  readAsk,
  type GitAsk,
  type GitDaemonRequest,
  type SmartHttpRequest,
} from './git-protocol.js';
import { chunk, header, lastChunk, responseHead, type RequestHead } from './http1.js';
import type { GitOperation, NetRecordWriter } from './record.js';
import type { NetTrace } from './trace.js';

export interface GitServerOptions extends MirrorOptions {
  /** --allow-push: capture passes pushes through to the real server. */
  allowPush: boolean;
  record: NetRecordWriter;
  trace(): NetTrace | undefined;
  /** A refused or failed operation, one line (the run's problems). */
  problem(text: string): void;
}

export interface GitHttpRequest {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  pid: number;
  head: RequestHead;
  body: Buffer | null;
  smart: SmartHttpRequest;
}

/** Seconds of silence after which a git:// upload-pack gives up. */
const UPLOAD_PACK_TIMEOUT_S = 600;
const FIRST_PKT_TIMEOUT_MS = 5000;

const unzip = { gzip: promisify(gunzip), deflate: promisify(inflate) };

export class GitServer {
  private readonly mirrors: GitMirrors;
  private readonly mode: NetMode;
  /** Operations served or refused, and the bytes sent to clients. */
  operations = 0;
  bytesSent = 0;

  constructor(private readonly options: GitServerOptions) {
    this.mirrors = new GitMirrors(options);
    this.mode = options.mode;
  }

  /** Whether a request of `service` goes to the real server as it is (an allowed push). */
  passesThrough(service: string): boolean {
    return service === 'git-receive-pack' && this.mode === 'capture' && this.options.allowPush;
  }

  private pushRefusal(url: string): string {
    return this.mode === 'capture'
      ? `uwrx: push to ${url} refused (uwrx run --allow-push lets pushes through)`
      : `uwrx: push to ${url} refused: a replay serves from the record only`;
  }

  /** Answers one smart HTTP request; resolves whether the connection can carry another. */
  async serveHttp(client: Duplex, req: GitHttpRequest): Promise<boolean> {
    const started = Date.now();
    const gitProtocol = gitProtocolEnv([header(req.head.headers, 'git-protocol') ?? '']);
    const remote: Remote = { transport: req.scheme, host: req.host, port: req.port, repoPath: req.smart.repoPath };
    const op = this.operation(req.pid, req.smart.service, remote, req.smart.kind === 'advertise' ? 'advertise' : 'fetch', gitProtocol);
    const kind = req.smart.kind === 'advertise' ? 'advertisement' : 'result';
    const contentType = `application/x-${req.smart.service}-${kind}`;
    const refuse = (message: string): boolean => {
      op.error = message;
      const body = errPkt(message);
      op.bytes = body.length;
      client.write(responseHead('1.1', 200, 'OK', [['Content-Type', contentType], ['Cache-Control', 'no-cache'], ['Content-Length', String(body.length)]]));
      client.write(body);
      return true;
    };
    let keep = true;
    try {
      if (req.smart.service !== 'git-upload-pack') {
        keep = refuse(this.pushRefusal(op.remote));
      } else {
        const mirror = await this.mirrors.prepare(remote);
        op.mirror = mirror.rel;
        op.source = mirror.source;
        if (req.smart.kind === 'advertise') {
          const refs = await this.collect(['upload-pack', '--stateless-rpc', '--advertise-refs', mirror.dir], gitProtocol);
          // v0 and v1 start with the service line; v2's capability list stands alone
          const body =
            protocolVersion(gitProtocol) === 2 ? refs : Buffer.concat([pktLine(`# service=${req.smart.service}\n`), FLUSH_PKT, refs]);
          client.write(responseHead('1.1', 200, 'OK', [['Content-Type', contentType], ['Cache-Control', 'no-cache'], ['Content-Length', String(body.length)]]));
          client.write(body);
          op.bytes = body.length;
        } else {
          const input = await decodeBody(req.body ?? Buffer.alloc(0), header(req.head.headers, 'content-encoding'));
          const ask = emptyAsk();
          readAsk(parsePkts(input).pkts, ask);
          describe(op, ask, false);
          keep = await this.streamRpc(client, mirror.dir, input, gitProtocol, contentType, op);
        }
      }
    } catch (err) {
      if (!(err instanceof MirrorError)) throw err;
      keep = refuse(`uwrx: ${err.message}`);
    }
    this.finish(op, started);
    return keep;
  }

  /** POST .../git-upload-pack: upload-pack's answer streamed as a chunked body. */
  private async streamRpc(client: Duplex, dir: string, input: Buffer, gitProtocol: string | undefined, contentType: string, op: GitOperation): Promise<boolean> {
    client.write(responseHead('1.1', 200, 'OK', [['Content-Type', contentType], ['Cache-Control', 'no-cache'], ['Transfer-Encoding', 'chunked']]));
    const failure = await this.uploadPack(['upload-pack', '--stateless-rpc', dir], gitProtocol, client, op, chunk, (stdin) => stdin.end(input));
    if (failure) op.error = failure;
    if (client.destroyed) return false;
    client.write(lastChunk(undefined));
    return true;
  }

  /** Serves a git:// connection whose first packet was `request`. Resolves false when
   * the connection is not for the mirror (an allowed push: the caller passes it through). */
  async serveDaemon(sock: net.Socket, request: GitDaemonRequest, domain: string, port: number, pid: number): Promise<boolean> {
    if (request.service !== 'git-upload-pack' && this.mode === 'capture' && (request.service === 'git-upload-archive' || this.options.allowPush)) return false;
    const started = Date.now();
    const gitProtocol = gitProtocolEnv(request.extra);
    const remote: Remote = { transport: 'git', host: domain, port, repoPath: request.repoPath };
    const op = this.operation(pid, request.service, remote, 'connection', gitProtocol);
    const refuse = (message: string) => {
      op.error = message;
      const body = errPkt(message);
      op.bytes = body.length;
      sock.end(body);
    };
    try {
      if (request.service === 'git-receive-pack') refuse(this.pushRefusal(op.remote));
      else if (request.service !== 'git-upload-pack') refuse(`uwrx: ${request.service} is not served from the record`);
      else {
        const mirror = await this.mirrors.prepare(remote);
        op.mirror = mirror.rel;
        op.source = mirror.source;
        await this.pipeUploadPack(sock, mirror.dir, gitProtocol, op);
      }
    } catch (err) {
      if (!(err instanceof MirrorError)) throw err;
      refuse(`uwrx: ${err.message}`);
    }
    this.finish(op, started);
    return true;
  }

  /** A whole git:// conversation with upload-pack, watching the client's requests. */
  private async pipeUploadPack(sock: net.Socket, dir: string, gitProtocol: string | undefined, op: GitOperation): Promise<void> {
    const ask = emptyAsk();
    const scanner = new PktScanner((pkts) => readAsk(pkts, ask));
    const args = ['upload-pack', '--strict', `--timeout=${UPLOAD_PACK_TIMEOUT_S}`, dir];
    const failure = await this.uploadPack(args, gitProtocol, sock, op, (data) => [data], (stdin) => {
      sock.on('data', (data: Buffer) => scanner.push(data));
      sock.pipe(stdin);
    });
    if (failure && !sock.destroyed) op.error = failure;
    describe(op, ask, true);
    sock.end();
  }

  /** Runs upload-pack (`args`) on the mirror for `client`: `feed` gives it its input, its
   * output goes to the client framed by `frame`, with backpressure, counted in op.bytes.
   * Killed when the client goes first. Resolves with why it failed, or undefined when it
   * exited 0. */
  private uploadPack(args: string[], gitProtocol: string | undefined, client: Duplex, op: GitOperation, frame: (data: Buffer) => Buffer[], feed: (stdin: Writable) => void): Promise<string | undefined> {
    return new Promise((resolve) => {
      const child = spawn('git', args, { env: gitEnv(gitProtocol ? { GIT_PROTOCOL: gitProtocol } : {}) });
      this.mirrors.children.add(child);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4096) stderr += d.toString('utf8');
      });
      child.stdin.on('error', () => undefined);
      feed(child.stdin);
      child.stdout.on('data', (data: Buffer) => {
        op.bytes += data.length;
        if (!frame(data).map((b) => client.write(b)).every(Boolean)) {
          child.stdout.pause();
          client.once('drain', () => child.stdout.resume());
        }
      });
      const onClientClose = () => child.kill('SIGKILL');
      client.once('close', onClientClose);
      child.on('error', (err) => {
        stderr ||= err.message;
      });
      child.on('close', (code) => {
        this.mirrors.children.delete(child);
        client.off('close', onClientClose);
        resolve(code === 0 ? undefined : `upload-pack: ${stderr.trim().split('\n').pop() || `exit status ${code}`}`);
      });
    });
  }

  /** Runs git and returns its standard output. */
  private collect(args: string[], gitProtocol: string | undefined): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const child = spawn('git', args, { env: gitEnv(gitProtocol ? { GIT_PROTOCOL: gitProtocol } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
      this.mirrors.children.add(child);
      const out: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('error', (err) => reject(new MirrorError(`git ${args[0]}: ${err.message}`)));
      child.on('close', (code) => {
        this.mirrors.children.delete(child);
        if (code === 0) resolve(Buffer.concat(out));
        else reject(new MirrorError(`git ${args[0]} failed: ${stderr.trim().split('\n').pop() || `exit status ${code}`}`));
      });
    });
  }

  private operation(pid: number, service: string, remote: Remote, request: string, gitProtocol: string | undefined): GitOperation {
    return { seq: 0, pid, service, remote: remoteUrl(remote), request, protocol: protocolVersion(gitProtocol), wants: [], bytes: 0, durationMs: 0 };
  }

  private finish(op: GitOperation, started: number): void {
    op.durationMs = Date.now() - started;
    this.operations++;
    this.bytesSent += op.bytes;
    if (op.error) this.options.problem(`${op.remote}: ${op.error}`);
    this.options.record.appendGit(op);
    this.options.trace()?.git(op.pid, op.error ? -1 : 0, op.bytes, op.service, op.remote, op.request, op.wants);
  }

  close(): void {
    this.mirrors.close();
  }
}

/** Fills an operation's request fields from what the client asked: for a git://
 * connection the advertisement and the commands that followed, for an HTTP call its
 * command (a v0 negotiation is a fetch). */
function describe(op: GitOperation, ask: GitAsk, connection: boolean): void {
  op.request = connection ? ['advertise', ...ask.commands].join('+') : ask.commands.join('+') || 'fetch';
  op.wants = ask.wants;
  if (ask.refPrefixes.length) op.refPrefixes = ask.refPrefixes;
  if (ask.depth !== undefined) op.depth = ask.depth;
  if (ask.filter !== undefined) op.filter = ask.filter;
}

/** A request body as git sent it: gzip (large v0 negotiations) or plain. */
async function decodeBody(body: Buffer, encoding: string | undefined): Promise<Buffer> {
  const e = (encoding ?? '').trim().toLowerCase();
  if (e === 'gzip' || e === 'x-gzip') return unzip.gzip(body);
  if (e === 'deflate') return unzip.deflate(body);
  return body;
}

/** The first pkt-line of a connection (git://), read without losing anything: resolves
 * its bytes with the connection's further bytes left unread, or undefined when the
 * bytes are not a pkt-line (then all of them are put back). */
export function readFirstPkt(sock: net.Socket): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let got: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => done(undefined), FIRST_PKT_TIMEOUT_MS);
    const done = (pkt: Buffer | undefined) => {
      clearTimeout(timer);
      sock.off('readable', onReadable);
      sock.off('end', onEnd);
      if (pkt) {
        const rest = got.subarray(pkt.length);
        if (rest.length) sock.unshift(rest);
      } else if (got.length) sock.unshift(got);
      resolve(pkt);
    };
    const onEnd = () => done(undefined);
    const onReadable = () => {
      for (let data = sock.read() as Buffer | null; data !== null; data = sock.read() as Buffer | null) got = Buffer.concat([got, data]);
      if (got.length < 4) return;
      const text = got.toString('latin1', 0, 4);
      const len = /^[0-9a-f]{4}$/.test(text) ? parseInt(text, 16) : -1;
      if (len < 4 || len > MAX_PKT) return done(undefined);
      if (got.length >= len) done(got.subarray(0, len));
    };
    sock.on('readable', onReadable);
    sock.on('end', onEnd);
    onReadable();
  });
}
