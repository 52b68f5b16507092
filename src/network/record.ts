// The network record of an attempt (docs/record.md, "Network"):
//
//   net/_exchanges.jsonl        one JSON object per HTTP exchange, appended when it ends
//   net/_git.jsonl              one JSON object per git operation (src/network/git.ts)
//   net/<domain>/<path>.git     bare mirror of each git repository fetched
//   net/_bodies/<sha256>        every request and response body, stored once by content
//   net/_keys.pem               the CA's and the leaf certificates' private keys
//   net/<domain>/ip4.txt        the loopback address the domain resolved to inside
//   net/<domain>/cert.pem       the domain's certificate, signed by ../../ca.pem
//   net/<domain>/<path>         the body of each successful GET (savedPath's rule)
//
// Names starting with "_" cannot be domains (host names are letters, digits, '-' and '.').
import { nodeCrypto, sha256 } from '../crypto.js';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';

export const NET_DIR = 'net';
export const EXCHANGES_FILE = '_exchanges.jsonl';
export const GIT_FILE = '_git.jsonl';
export const BODIES_DIR = '_bodies';
export const KEYS_FILE = '_keys.pem';
/** Files of a domain's directory that a URL path must not overwrite. */
const DOMAIN_FILES = new Set(['ip4.txt', 'ip6.txt', 'cert.pem']);
/** Longest file name most filesystems take. */
const NAME_MAX = 255;

export type HeaderPairs = Array<[string, string]>;

/** One HTTP exchange as recorded. Header names and values are the bytes on the wire,
 * as latin1 strings, in order; bodies are what the peer sent after transfer decoding
 * (chunked framing removed, Content-Encoding kept). */
export interface Exchange {
  seq: number;
  /** Logical pid of the process that made the connection (1: unknown). */
  pid: number;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  method: string;
  /** Request target as sent: path and query. */
  target: string;
  /** "h2": the client spoke HTTP/2 (its request headers start with the pseudo-headers
   * :method, :scheme, :authority, :path, in the order sent); absent: HTTP/1.x. */
  protocol?: 'h2';
  requestHeaders: HeaderPairs;
  /** sha256 of the request body, null when it had none. */
  requestBody: string | null;
  requestBytes: number;
  /** Absent when the exchange failed before a response (then `error` says why). */
  status?: number;
  reason?: string;
  /** The response's HTTP version: "1.1", "1.0", or "2" (then `reason` is empty). */
  version?: string;
  responseHeaders?: HeaderPairs;
  responseBody?: string | null;
  responseBytes?: number;
  /** A chunked body's chunk sizes as the client got them (replay cuts the same). */
  chunks?: number[];
  /** Sent after a chunked body. */
  trailers?: HeaderPairs;
  /** net/<saved>: where a GET body was also saved, relative to net/. */
  saved?: string;
  /** The response ended early (upstream reset) or failed; the exchange is kept for the
   * record but never served on replay. */
  error?: string;
  durationMs: number;
}

/** One git operation: a smart HTTP request, or a whole git:// connection. */
export interface GitOperation {
  seq: number;
  /** Logical pid of the process that made the connection (1: unknown). */
  pid: number;
  service: string;
  /** The remote as the client named it: scheme://host:port/path. */
  remote: string;
  /** advertise (the references), ls-refs, fetch (v2 commands; a v0 negotiation is
   * fetch), or the commands of a git:// connection joined by "+". */
  request: string;
  /** Protocol version the client asked for (0, 1 or 2). */
  protocol: number;
  /** Object ids and ref names wanted (the first 200). */
  wants: string[];
  refPrefixes?: string[];
  depth?: number;
  filter?: string;
  /** Bytes sent to the client. */
  bytes: number;
  /** The mirror served from, relative to net/. */
  mirror?: string;
  /** Where the mirror came from for this request: upstream (fetched now), record
   * (copied from the replayed attempt), ready (earlier in this run). */
  source?: string;
  /** Why the client was refused (it saw this text as "remote error"). */
  error?: string;
  durationMs: number;
}

/** sha256 of nothing: a request without a body matches one with an empty body. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The key the replay matches on: method, scheme, host, port, target (path and query)
 * and the request body's hash. Headers are not part of it. */
export function matchKey(e: Pick<Exchange, 'method' | 'scheme' | 'host' | 'port' | 'target' | 'requestBody'>): string {
  return [e.method, e.scheme, e.host.toLowerCase(), e.port, e.target, e.requestBody ?? EMPTY_SHA256].join(' ');
}

/** Where a GET body of `target` is saved, relative to net/ (docs/record.md): the path's
 * segments as sent (percent escapes kept); a trailing "/" names index.html; the query is
 * appended to the last segment; empty, "." and ".." segments become %2F, %2E, %2E%2E; a
 * top-level name of the domain's own files gets a "%" in front; over-long names are cut
 * and hashed. */
export function savedPath(domain: string, target: string): string {
  const q = target.indexOf('?');
  const rawPath = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q) : '';
  let segments = rawPath.split('/').slice(1);
  if (segments.length === 0) segments = [''];
  // a directory-like path (ends with "/") names its index
  if (segments[segments.length - 1] === '') segments[segments.length - 1] = 'index.html';
  segments = segments.map((s) => (s === '' ? '%2F' : s === '.' ? '%2E' : s === '..' ? '%2E%2E' : s));
  segments[segments.length - 1] += query;
  if (segments.length === 1 && DOMAIN_FILES.has(segments[0]!)) segments[0] = '%' + segments[0];
  segments = segments.map(fitName);
  return path.posix.join(domain, ...segments);
}

/** A name too long for the filesystem keeps its start and gets a hash of the whole. */
function fitName(name: string): string {
  if (Buffer.byteLength(name) <= NAME_MAX) return name;
  const hash = sha256(name).toString('hex').slice(0, 16);
  let cut = name.slice(0, 200);
  while (Buffer.byteLength(cut) > 200) cut = cut.slice(0, -1);
  return `${cut}-${hash}`;
}

/** Writes an attempt's network record. Used by one actor (the proxy) for exchanges and
 * bodies; the DNS actor writes ip4.txt/ip6.txt through writeDomainFile. */
export class NetRecordWriter {
  readonly dir: string;
  private logFd = -1;
  private gitFd = -1;
  private seq = 0;
  private gitSeq = 0;
  private tmpCount = 0;

  constructor(attemptDir: string) {
    this.dir = path.join(attemptDir, NET_DIR);
    mkdirSync(path.join(this.dir, BODIES_DIR), { recursive: true });
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** A temporary file in the bodies directory for a body being received. */
  tempBodyPath(): string {
    return path.join(this.dir, BODIES_DIR, `.tmp-${process.pid}-${++this.tmpCount}`);
  }

  /** Moves a received body (its sha256 computed while it streamed) to its place. */
  commitBody(tmp: string, sha256: string): void {
    const dest = path.join(this.dir, BODIES_DIR, sha256);
    if (existsSync(dest)) unlinkSync(tmp);
    else renameSync(tmp, dest);
  }

  /** Stores bytes held in memory; returns their sha256. */
  storeBody(bytes: Buffer): string {
    const sha = nodeCrypto().createHash('sha256').update(bytes).digest('hex');
    const dest = path.join(this.dir, BODIES_DIR, sha);
    if (!existsSync(dest)) {
      const tmp = this.tempBodyPath();
      writeFileSync(tmp, bytes);
      renameSync(tmp, dest);
    }
    return sha;
  }

  /** A body of another record, linked (or copied) in. */
  importBody(fromNetDir: string, sha256: string): void {
    const dest = path.join(this.dir, BODIES_DIR, sha256);
    if (existsSync(dest)) return;
    const src = path.join(fromNetDir, BODIES_DIR, sha256);
    try {
      linkSync(src, dest);
    } catch {
      copyFileSync(src, dest);
    }
  }

  bodyPath(sha256: string): string {
    return path.join(this.dir, BODIES_DIR, sha256);
  }

  /** Also saves a GET body as net/<domain>/<path>; returns that path relative to net/,
   * or undefined when the name is taken by a directory or file of another URL. */
  saveReadable(domain: string, target: string, sha256: string): string | undefined {
    const rel = savedPath(domain, target);
    const dest = path.join(this.dir, rel);
    try {
      mkdirSync(path.dirname(dest), { recursive: true });
      try {
        if (statSync(dest).isDirectory()) return undefined;
        unlinkSync(dest);
      } catch {
        // not there yet
      }
      linkSync(this.bodyPath(sha256), dest);
      return rel;
    } catch {
      return undefined;
    }
  }

  append(exchange: Exchange): void {
    if (this.logFd < 0) this.logFd = openSync(path.join(this.dir, EXCHANGES_FILE), 'a');
    writeSync(this.logFd, JSON.stringify(exchange) + '\n');
  }

  appendGit(op: GitOperation): void {
    if (this.gitFd < 0) this.gitFd = openSync(path.join(this.dir, GIT_FILE), 'a');
    op.seq = ++this.gitSeq;
    writeSync(this.gitFd, JSON.stringify(op) + '\n');
  }

  close(): void {
    if (this.logFd >= 0) closeSync(this.logFd);
    if (this.gitFd >= 0) closeSync(this.gitFd);
    this.logFd = -1;
    this.gitFd = -1;
  }
}

export function writeDomainFile(attemptDir: string, domain: string, name: string, text: string): void {
  const dir = path.join(attemptDir, NET_DIR, domain);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), text);
}

/** The exchanges of a record, in log order; none when it has no network record. A
 * line cut short (the run was killed while appending) is skipped. */
export function readExchanges(attemptDir: string): Exchange[] {
  return readJsonLines<Exchange>(path.join(attemptDir, NET_DIR, EXCHANGES_FILE));
}

/** The git operations of a record, in log order (same rules as readExchanges). */
export function readGitOperations(attemptDir: string): GitOperation[] {
  return readJsonLines<GitOperation>(path.join(attemptDir, NET_DIR, GIT_FILE));
}

function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a torn last line
    }
  }
  return out;
}

/** Domains of a record with their addresses (ip4.txt, ip6.txt). */
export function readDomains(attemptDir: string): Map<string, { ip4?: string; ip6?: string }> {
  const dir = path.join(attemptDir, NET_DIR);
  const out = new Map<string, { ip4?: string; ip6?: string }>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name.startsWith('_')) continue;
    const read = (f: string) => {
      try {
        return readFileSync(path.join(dir, name, f), 'utf8').trim() || undefined;
      } catch {
        return undefined;
      }
    };
    const ip4 = read('ip4.txt');
    const ip6 = read('ip6.txt');
    if (ip4 || ip6) out.set(name, { ...(ip4 ? { ip4 } : {}), ...(ip6 ? { ip6 } : {}) });
  }
  return out;
}
