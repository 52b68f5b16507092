// Bare mirrors of the git repositories a run fetches, at net/<domain>/<path>.git. A pack
// depends on each client's haves, so packs cannot be replayed byte for byte: the mirror
// is the record, and every fetch is answered from it by `git upload-pack`. Capture fills
// a mirror from upstream with the host's git, once per remote per run; a replay clones
// the recorded mirror into the new attempt (hard links) and never goes upstream.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { NetMode } from '../actors/dns.js';
import { mirrorPath } from './git-protocol.js';

export interface Remote {
  transport: 'http' | 'https' | 'git';
  /** The domain the client named. */
  host: string;
  port: number;
  repoPath: string;
}

/** The remote's URL as the client named it. */
export function remoteUrl(r: Remote): string {
  return `${r.transport}://${r.host}:${r.port}${r.repoPath}`;
}

/** A problem the git client is told about (an ERR packet: "remote error: ..."). */
export class MirrorError extends Error {}

export interface MirrorOptions {
  /** The attempt's net/ directory. */
  netDir: string;
  mode: NetMode;
  /** The replayed attempt's net/ directory. */
  replayNetDir?: string;
  /** Trusted CAs for HTTPS upstreams: the system's and --upstream-ca's. */
  upstreamCaFile?: string;
  /** The upstream address of a domain (the DNS actor's answer: --dns-map or the host). */
  resolve(host: string): Promise<string | undefined>;
}

export interface PreparedMirror {
  /** Absolute path of the bare repository to serve from. */
  dir: string;
  /** Its path relative to net/. */
  rel: string;
  /** How this request found it: filled now from upstream or the record, or ready. */
  source: 'upstream' | 'record' | 'ready';
}

/** What upload-pack needs on a mirror so that partial clones and fetches by object id
 * work (without allowFilter a filter is silently ignored); no automatic gc in a record. */
const MIRROR_CONFIG = [
  '[uploadpack]',
  '\tallowFilter = true',
  '\tallowAnySHA1InWant = true',
  '\tallowReachableSHA1InWant = true',
  '\tallowTipSHA1InWant = true',
  '[gc]',
  '\tauto = 0',
  '',
].join('\n');

/** Environment of every git the proxy starts: no prompts, nothing of a surrounding git. */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', ...extra };
  for (const v of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_NAMESPACE', 'GIT_CEILING_DIRECTORIES']) delete env[v];
  if (!extra.GIT_PROTOCOL) delete env.GIT_PROTOCOL;
  return env;
}

export class GitMirrors {
  /** Remotes already handled in this run, by URL: fetched once, then served. */
  private readonly ready = new Map<string, Promise<PreparedMirror>>();
  /** The last operation on each mirror directory: two remotes of one mirror wait in turn. */
  private readonly busy = new Map<string, Promise<unknown>>();
  readonly children = new Set<ChildProcess>();

  constructor(private readonly options: MirrorOptions) {}

  /** The mirror of `remote`, ready to serve from. Throws MirrorError with a message for
   * the client. */
  async prepare(remote: Remote): Promise<PreparedMirror> {
    const key = remoteUrl(remote);
    const known = this.ready.get(key);
    if (known) return { ...(await known), source: 'ready' };
    const rel = mirrorPath(remote.host, remote.repoPath);
    const dir = path.join(this.options.netDir, rel);
    const before = this.busy.get(dir) ?? Promise.resolve();
    const job = before.catch(() => undefined).then(() =>
      this.options.mode === 'capture' ? this.fetchUpstream(remote, dir, rel) : this.copyRecorded(remote, dir, rel),
    );
    this.busy.set(dir, job);
    this.ready.set(key, job);
    // a failure is not remembered: the next request of the remote tries again
    job.catch(() => this.ready.delete(key));
    return job;
  }

  private async fetchUpstream(remote: Remote, dir: string, rel: string): Promise<PreparedMirror> {
    const ip = await this.options.resolve(remote.host);
    if (!ip) throw new MirrorError(`no upstream address for ${remote.host}`);
    const config: string[] = [];
    let url: string;
    if (remote.transport === 'git') {
      url = `git://${net.isIPv6(ip) ? `[${ip}]` : ip}:${remote.port}${remote.repoPath}`;
    } else {
      url = remoteUrl(remote);
      config.push('-c', `http.curloptResolve=${remote.host}:${remote.port}:${net.isIPv6(ip) ? `[${ip}]` : ip}`);
    }
    // the variable, not http.sslCAInfo: a GIT_SSL_CAINFO of the host would win over it
    const env: Record<string, string> = remote.transport === 'https' && this.options.upstreamCaFile ? { GIT_SSL_CAINFO: this.options.upstreamCaFile } : {};
    const fresh = !existsSync(dir);
    if (fresh) {
      await mkdir(path.dirname(dir), { recursive: true });
      await this.git([...config, 'clone', '--mirror', '--quiet', url, dir], `fetching ${remoteUrl(remote)}`, env);
      await appendFile(path.join(dir, 'config'), MIRROR_CONFIG);
    } else {
      await this.git([...config, '-C', dir, 'fetch', '--quiet', '--prune', url, '+refs/*:refs/*'], `fetching ${remoteUrl(remote)}`, env);
    }
    return { dir, rel, source: 'upstream' };
  }

  private async copyRecorded(remote: Remote, dir: string, rel: string): Promise<PreparedMirror> {
    const from = this.options.replayNetDir ? path.join(this.options.replayNetDir, rel) : undefined;
    if (!from || !existsSync(from)) throw new MirrorError(`the record has no mirror of ${remoteUrl(remote)} (net/${rel})`);
    if (!existsSync(dir)) {
      await mkdir(path.dirname(dir), { recursive: true });
      await this.git(['clone', '--mirror', '--quiet', from, dir], `copying the recorded mirror net/${rel}`);
      await appendFile(path.join(dir, 'config'), MIRROR_CONFIG);
    }
    return { dir, rel, source: 'record' };
  }

  /** Runs git to its end; fails with its last line of stderr. */
  private git(args: string[], what: string, env: Record<string, string> = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('git', args, { env: gitEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
      this.children.add(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        if (stderr.length < 8192) stderr += d.toString('utf8');
      });
      child.on('error', (err) => {
        this.children.delete(child);
        reject(new MirrorError(`${what}: git: ${err.message}`));
      });
      child.on('close', (code, signal) => {
        this.children.delete(child);
        if (code === 0) return resolve();
        const last = stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit status ${code}`);
        reject(new MirrorError(`${what} failed: ${last}`));
      });
    });
  }

  close(): void {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
  }
}
