// Real git servers on the host's loopback for the git tests: `git daemon` (git://) and
// `git http-backend` behind the HTTP(S) servers of bench/net-servers.ts (under /git/),
// serving the bare repositories of one directory; and repositories to serve.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startServers, type TestServers } from '../../bench/net-servers.js';

export interface GitServers {
  /** git daemon's port. */
  gitPort: number;
  http: TestServers;
  /** Stops both (idempotent). */
  close(): Promise<void>;
}

/** Runs git on the host with a fixed identity; returns its trimmed output. */
export function git(args: string[], cwd?: string): string {
  return execFileSync('git', ['-c', 'user.name=uwrx test', '-c', 'user.email=test@uwrx.test', '-c', 'init.defaultBranch=main', ...args], {
    encoding: 'utf8',
    ...(cwd ? { cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** A work repository at `work` with `commits` commits (file.txt and a file per commit),
 * published as the bare repository root/<name>.git; returns the work path. */
export function makeRepo(root: string, work: string, name: string, commits = 2): string {
  mkdirSync(work, { recursive: true });
  git(['init', '-q', '-b', 'main', work]);
  for (let i = 1; i <= commits; i++) addCommit(work, `commit ${i}`);
  git(['clone', '-q', '--bare', work, path.join(root, `${name}.git`)]);
  return work;
}

/** One more commit in `work`, pushed to its bare repository when `bare` is given. */
export function addCommit(work: string, message: string, bare?: string): string {
  const n = message.replace(/\W+/g, '-');
  writeFileSync(path.join(work, 'file.txt'), `${message}\n`);
  writeFileSync(path.join(work, `${n}.txt`), `${message}\n`.repeat(50));
  git(['-C', work, 'add', '-A']);
  git(['-C', work, 'commit', '-q', '-m', message]);
  if (bare) git(['-C', work, 'push', '-q', bare, 'HEAD:refs/heads/main']);
  return git(['-C', work, 'rev-parse', 'HEAD']);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const c = net.connect({ host: '127.0.0.1', port });
      c.once('connect', () => {
        c.destroy();
        resolve();
      });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > deadline) reject(new Error(`git daemon did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Serves root's bare repositories: git://127.0.0.1:<gitPort>/<name>.git (pushes
 * enabled) and http(s)://127.0.0.1:<port>/git/<name>.git, certificates for `names`. */
export async function startGitServers(dir: string, root: string, names: string[]): Promise<GitServers> {
  const http = await startServers(dir, names, root);
  const gitPort = await freePort();
  const daemon = spawn(
    'git',
    ['daemon', '--reuseaddr', '--export-all', '--enable=receive-pack', '--informative-errors', `--base-path=${root}`, '--listen=127.0.0.1', `--port=${gitPort}`, root],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  await waitForPort(gitPort, Date.now() + 30_000);
  let closed = false;
  return {
    gitPort,
    http,
    close: async () => {
      if (closed) return;
      closed = true;
      daemon.kill('SIGTERM');
      await Promise.all([exited, http.close()]);
    },
  };
}
