// The git wire protocol as far as the proxy needs it (gitprotocol-pack, -http, -v2):
// pkt-lines, recognising smart HTTP requests and the git:// request line, and reading
// what a client asked for (command, wants, depth, filter) out of its requests.
import { savedPath } from './record.js';

export type GitService = 'git-upload-pack' | 'git-receive-pack';

export const FLUSH_PKT = Buffer.from('0000', 'latin1');
/** Largest pkt-line, length prefix included. */
export const MAX_PKT = 65520;

/** One pkt-line carrying `data`. */
export function pktLine(data: string | Buffer): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

/** An error packet: git clients stop with "remote error: <message>". */
export function errPkt(message: string): Buffer {
  return pktLine(`ERR ${message.replace(/[\r\n]+/g, ' ').slice(0, 1000)}\n`);
}

/** A decoded pkt-line: its payload, or the special packets 0000 (flush), 0001
 * (delimiter) and 0002 (response end). */
export type Pkt = Buffer | 'flush' | 'delim' | 'end';

/** The pkt-lines at the start of `buf`, and how many bytes they took (a line cut off at
 * the end is left for later). Stops at bytes that are not a pkt-line (a pack). */
export function parsePkts(buf: Buffer): { pkts: Pkt[]; used: number; bad: boolean } {
  const pkts: Pkt[] = [];
  let at = 0;
  while (at + 4 <= buf.length) {
    const text = buf.toString('latin1', at, at + 4);
    if (!/^[0-9a-f]{4}$/.test(text)) return { pkts, used: at, bad: true };
    const len = parseInt(text, 16);
    if (len < 4) {
      pkts.push(len === 0 ? 'flush' : len === 1 ? 'delim' : 'end');
      at += 4;
      continue;
    }
    if (at + len > buf.length) break;
    pkts.push(buf.subarray(at + 4, at + len));
    at += len;
  }
  return { pkts, used: at, bad: false };
}

/** A smart HTTP request (gitprotocol-http): the reference advertisement or a call. */
export interface SmartHttpRequest {
  kind: 'advertise' | 'rpc';
  service: GitService;
  /** The repository's URL path, without /info/refs or /git-upload-pack. */
  repoPath: string;
}

const SERVICES: readonly string[] = ['git-upload-pack', 'git-receive-pack'];

/** Whether an HTTP request is git's smart protocol; undefined for anything else
 * (dumb HTTP fetches of objects stay ordinary GETs). */
export function detectSmartHttp(method: string, target: string): SmartHttpRequest | undefined {
  const q = target.indexOf('?');
  const urlPath = q >= 0 ? target.slice(0, q) : target;
  const query = new URLSearchParams(q >= 0 ? target.slice(q + 1) : '');
  if (method === 'GET' && urlPath.endsWith('/info/refs')) {
    const service = query.get('service') ?? '';
    if (!SERVICES.includes(service)) return undefined;
    return { kind: 'advertise', service: service as GitService, repoPath: urlPath.slice(0, -'/info/refs'.length) || '/' };
  }
  if (method === 'POST') {
    for (const service of SERVICES) {
      if (urlPath.endsWith('/' + service)) {
        return { kind: 'rpc', service: service as GitService, repoPath: urlPath.slice(0, -service.length - 1) || '/' };
      }
    }
  }
  return undefined;
}

/** The first packet of a git:// connection: "git-upload-pack /path\0host=H\0" and
 * optionally "\0version=2\0" (extra parameters). */
export interface GitDaemonRequest {
  service: GitService | 'git-upload-archive';
  repoPath: string;
  host?: string;
  /** Extra parameters such as "version=2". */
  extra: string[];
}

export function parseDaemonRequest(payload: Buffer): GitDaemonRequest | undefined {
  const text = payload.toString('latin1');
  const m = /^(git-upload-pack|git-receive-pack|git-upload-archive) ([^\0]+)\0/.exec(text);
  if (!m) return undefined;
  const rest = text.slice(m[0].length).split('\0');
  let host: string | undefined;
  const extra: string[] = [];
  // host=... comes first, then an empty field, then the extra parameters
  let i = 0;
  if (rest[0]?.startsWith('host=')) host = rest[i++]!.slice(5);
  for (; i < rest.length; i++) if (rest[i]) extra.push(rest[i]!);
  return { service: m[1] as GitDaemonRequest['service'], repoPath: m[2]!.replace(/\n$/, ''), ...(host ? { host } : {}), extra };
}

/** GIT_PROTOCOL for the server side from the client's Git-Protocol header or git://
 * extra parameters; only well-formed key=value items pass. */
export function gitProtocolEnv(items: string[]): string | undefined {
  const ok = items.flatMap((s) => s.split(':')).filter((s) => /^[A-Za-z0-9._-]+(=[A-Za-z0-9._-]*)?$/.test(s));
  return ok.length ? ok.join(':') : undefined;
}

/** Protocol version a GIT_PROTOCOL value asks for (0 when none). */
export function protocolVersion(gitProtocol: string | undefined): number {
  const m = /(?:^|:)version=(\d+)/.exec(gitProtocol ?? '');
  return m ? Number(m[1]) : 0;
}

/** What a client asked for in the requests it sent. */
export interface GitAsk {
  /** v2 commands (ls-refs, fetch), or "fetch" for a v0 negotiation. */
  commands: string[];
  /** Object ids and (v2 want-ref) ref names wanted. */
  wants: string[];
  refPrefixes: string[];
  depth?: number;
  filter?: string;
}

export function emptyAsk(): GitAsk {
  return { commands: [], wants: [], refPrefixes: [] };
}

/** Longest list of wants kept per operation (a mirror clone may want thousands). */
const MAX_WANTS = 200;

/** Adds what the pkt-lines of a request say to `ask`. */
export function readAsk(pkts: Pkt[], ask: GitAsk): void {
  for (const p of pkts) {
    if (typeof p === 'string') continue;
    const line = p.toString('utf8').replace(/\n$/, '');
    const [word, arg = ''] = splitFirst(line);
    switch (word) {
      case 'want':
      case 'want-ref': {
        const id = arg.split(' ')[0]!;
        if (ask.wants.length < MAX_WANTS && !ask.wants.includes(id)) ask.wants.push(id);
        if (!ask.commands.includes('fetch')) ask.commands.push('fetch');
        break;
      }
      case 'ref-prefix':
        if (ask.refPrefixes.length < MAX_WANTS) ask.refPrefixes.push(arg);
        break;
      case 'deepen':
        ask.depth = Number(arg);
        break;
      case 'filter':
        ask.filter = arg;
        break;
      default:
        if (line.startsWith('command=')) {
          const c = line.slice('command='.length);
          if (!ask.commands.includes(c)) ask.commands.push(c);
        }
    }
  }
}

function splitFirst(line: string): [string, string] {
  const sp = line.indexOf(' ');
  return sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)];
}

/** Where the mirror of a repository lives, relative to net/: net/<domain>/<path>.git
 * (a path already ending in .git keeps one), segments written as for saved bodies. */
export function mirrorPath(domain: string, repoPath: string): string {
  let p = repoPath.replace(/\/+$/, '');
  if (p.endsWith('.git')) p = p.slice(0, -4);
  if (!p.startsWith('/')) p = '/' + p;
  return savedPath(domain, p + '.git');
}

/** Watches one direction of a conversation for pkt-lines (what a client sends to
 * upload-pack is pkt-lines only). */
export class PktScanner {
  private pending: Buffer = Buffer.alloc(0);
  private stopped = false;

  constructor(private readonly onPkts: (pkts: Pkt[]) => void) {}

  push(data: Buffer): void {
    if (this.stopped) return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    const { pkts, used, bad } = parsePkts(this.pending);
    this.pending = this.pending.subarray(used);
    if (pkts.length) this.onPkts(pkts);
    // not pkt-lines (a pack being pushed) or an absurd backlog: stop looking
    if (bad || this.pending.length > MAX_PKT) this.stopped = true;
  }
}
