// Git under `uwrx run`: clones and fetches over git:// and smart HTTPS from real servers
// on the host's loopback (git daemon, git http-backend) are answered from a bare mirror
// per repository under net/, which a replay with the servers stopped serves alone.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';
import { addCommit, git, makeRepo, startGitServers, type GitServers } from './helpers/git-servers.js';
import { readGitOperations } from '../src/network/record.js';

const HOST = 'git.example.test';
const missing = ensureCommands({ git: 'git', '/usr/lib/git-core/git-daemon': 'git', '/usr/lib/git-core/git-http-backend': 'git' });

function netArgs(s: GitServers): string[] {
  return ['--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', s.http.caFile];
}

async function runOk(cwd: string, args: string[]) {
  const r = await uwrx(['run', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Shell lines printing what a clone is: HEAD, the index, the work tree's files. */
function describeClone(dir: string): string {
  return `echo ${dir} $(git -C ${dir} rev-parse HEAD) $(git -C ${dir} rev-list --count HEAD) $(git -C ${dir} ls-files -s | sha256sum) $(cd ${dir} && find . -path ./.git -prune -o -type f -print | sort | xargs cat | sha256sum)`;
}

interface Fixture {
  dir: string;
  root: string;
  work: string;
  servers: GitServers;
  gitUrl: string;
  httpsUrl: string;
}

async function fixture(): Promise<Fixture> {
  const dir = scratchDir();
  const root = path.join(dir, 'repos');
  const work = makeRepo(root, path.join(dir, 'upstream-work'), 'lib', 3);
  const servers = await startGitServers(dir, root, [HOST]);
  return {
    dir,
    root,
    work,
    servers,
    gitUrl: `git://${HOST}:${servers.gitPort}/lib.git`,
    httpsUrl: `https://${HOST}:${servers.http.httpsPort}/git/lib.git`,
  };
}

test.serial('clones over git:// and https (v2 and v0, shallow, partial) come from mirrors; a replay without the servers gives the same clones', async (t) => {
  t.deepEqual(missing, []);
  const f = await fixture();
  try {
    const clones: Array<[string, string]> = [
      ['g2', `git clone -q ${f.gitUrl} g2`],
      ['g0', `git -c protocol.version=0 clone -q ${f.gitUrl} g0`],
      ['h2', `git clone -q ${f.httpsUrl} h2`],
      ['h0', `git -c protocol.version=0 clone -q ${f.httpsUrl} h0`],
      ['hdepth', `git clone -q --depth 1 ${f.httpsUrl} hdepth`],
      ['gdepth', `git -c protocol.version=0 clone -q --depth 1 ${f.gitUrl} gdepth`],
      ['hpartial', `git clone -q --filter=blob:none ${f.httpsUrl} hpartial`],
      ['gpartial', `git -c protocol.version=0 clone -q --filter=blob:none ${f.gitUrl} gpartial`],
    ];
    const script = ['set -e', ...clones.map(([, c]) => c), ...clones.map(([d]) => describeClone(d))].join('\n');
    const first = await runOk(f.dir, [...netArgs(f.servers), '--', 'sh', '-c', script]);
    const head = git(['-C', f.work, 'rev-parse', 'HEAD']);
    const lines = first.stdout.trim().split('\n');
    t.is(lines.length, clones.length, first.stdout);
    for (const line of lines) t.regex(line, new RegExp(`^\\w+ ${head} [13] `), line);
    t.regex(first.stdout, /^hdepth \w+ 1 /m, 'a shallow clone has one commit');
    t.regex(first.stdout, /^hpartial \w+ 3 /m);
    // every clone has the same files
    t.is(new Set(lines.map((l) => l.split(' ').slice(-2).join(' '))).size, 1, first.stdout);

    const attempt = lastAttempt(f.dir);
    const net = path.join(attempt, 'net');
    for (const mirror of [path.join(net, HOST, 'lib.git'), path.join(net, HOST, 'git', 'lib.git')]) {
      t.true(existsSync(mirror), mirror);
      execFileSync('git', ['-C', mirror, 'fsck', '--strict', '--no-progress'], { stdio: 'pipe' });
      t.is(git(['-C', mirror, 'rev-parse', 'refs/heads/main']), head);
      t.is(git(['-C', mirror, 'symbolic-ref', 'HEAD']), 'refs/heads/main');
    }
    const ops = readGitOperations(attempt);
    // one upstream fetch per remote in a run; every other request served from the mirror
    t.deepEqual(
      ops.filter((o) => o.source === 'upstream').map((o) => o.remote).sort(),
      [`git://${HOST}:${f.servers.gitPort}/lib.git`, `https://${HOST}:${f.servers.http.httpsPort}/git/lib.git`],
    );
    t.true(ops.every((o) => !o.error && o.service === 'git-upload-pack' && o.pid > 2), JSON.stringify(ops.filter((o) => o.error || o.pid <= 2)));
    t.true(ops.some((o) => o.remote.startsWith('git:') && o.protocol === 2 && o.request === 'advertise+ls-refs+fetch' && o.wants.length > 0));
    t.true(ops.some((o) => o.remote.startsWith('git:') && o.protocol === 0 && o.request === 'advertise+fetch' && o.filter === 'blob:none'));
    t.true(ops.some((o) => o.remote.startsWith('https:') && o.protocol === 2 && o.request === 'fetch' && o.depth === 1));
    t.true(ops.some((o) => o.remote.startsWith('https:') && o.protocol === 0 && o.request === 'advertise'));
    t.true(ops.some((o) => o.remote.startsWith('https:') && o.request === 'ls-refs' && o.refPrefixes?.includes('HEAD')));
    t.true(ops.some((o) => o.remote.startsWith('https:') && o.filter === 'blob:none' && o.bytes > 0));
    t.true(ops.every((o) => o.mirror === `${HOST}/lib.git` || o.mirror === `${HOST}/git/lib.git`));
    const status = JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8'));
    t.like(status.network, { git: ops.length, errors: 0 });
    t.regex(first.stderr, new RegExp(`, ${ops.length} git operations \\(`));
    const text = await uwrx(['inspect', 'net', attempt], { cwd: f.dir });
    t.regex(text.stdout, new RegExp(`pid \\d+ git-upload-pack git://${HOST}:\\d+/lib.git advertise\\+ls-refs\\+fetch v2 \\d+ B .*<- net/${HOST}/lib.git \\(upstream\\)`));
    t.regex(text.stdout, new RegExp(`${ops.length} git operations`));
    const events = await uwrx(['inspect', 'events', attempt, '--format', 'json'], { cwd: f.dir });
    t.true(events.stdout.includes('"git"'), 'git trace events');

    // the servers go away: the record alone answers
    await f.servers.close();
    const replay = await runOk(f.dir, ['--replay', attempt]);
    t.is(replay.stdout, first.stdout);
    const replayed = lastAttempt(f.dir);
    t.not(replayed, attempt);
    const again = readGitOperations(replayed);
    t.is(again.filter((o) => o.source === 'record').length, 2);
    t.true(again.every((o) => !o.error), JSON.stringify(again.filter((o) => o.error)));
    t.is(git(['-C', path.join(replayed, 'net', HOST, 'lib.git'), 'rev-parse', 'refs/heads/main']), head);
  } finally {
    await f.servers.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test.serial('a fetch after upstream moved updates the next run\'s mirror; its replay fetches the same', async (t) => {
  t.deepEqual(missing, []);
  const f = await fixture();
  try {
    await runOk(f.dir, [...netArgs(f.servers), '--', 'sh', '-c', `git clone -q ${f.httpsUrl} h && git -c protocol.version=0 clone -q ${f.gitUrl} g`]);
    const moved = addCommit(f.work, 'commit 4', path.join(f.root, 'lib.git'));
    // step 10 sees step 0's clones (its parent) and fetches into them
    const script = ['set -e', 'git -C h fetch -q', 'git -C g -c protocol.version=0 fetch -q', 'git -C h rev-parse origin/main', 'git -C g rev-parse origin/main'].join('\n');
    const second = await runOk(f.dir, [...netArgs(f.servers), '--', 'sh', '-c', script]);
    t.is(second.stdout, `${moved}\n${moved}\n`);
    const attempt = lastAttempt(f.dir, '10');
    t.is(git(['-C', path.join(attempt, 'net', HOST, 'git', 'lib.git'), 'rev-parse', 'refs/heads/main']), moved);
    const fetches = readGitOperations(attempt).filter((o) => o.request.includes('fetch'));
    t.true(fetches.length >= 2);
    t.true(fetches.every((o) => o.wants.includes(moved) || o.wants.includes('refs/heads/main')), JSON.stringify(fetches));
    await f.servers.close();
    const replay = await runOk(f.dir, ['--replay', attempt]);
    t.is(replay.stdout, second.stdout);
  } finally {
    await f.servers.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test.serial('a repository with a submodule clones recursively in capture and replay', async (t) => {
  t.deepEqual(missing, []);
  const f = await fixture();
  try {
    const app = path.join(f.dir, 'app-work');
    git(['init', '-q', '-b', 'main', app]);
    // the submodule is named by its served URL, as a real project's would be
    git(['-C', app, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', path.join(f.root, 'lib.git'), 'lib']);
    git(['-C', app, 'config', '-f', '.gitmodules', 'submodule.lib.url', f.httpsUrl]);
    git(['-C', app, 'add', '.gitmodules']);
    git(['-C', app, 'commit', '-q', '-m', 'app with lib']);
    git(['clone', '-q', '--bare', app, path.join(f.root, 'app.git')]);
    const appUrl = `git://${HOST}:${f.servers.gitPort}/app.git`;
    const script = ['set -e', `git clone -q --recurse-submodules ${appUrl} app`, 'git -C app submodule status', 'cat app/lib/file.txt'].join('\n');
    const first = await runOk(f.dir, [...netArgs(f.servers), '--', 'sh', '-c', script]);
    const libHead = git(['-C', f.work, 'rev-parse', 'HEAD']);
    t.is(first.stdout, ` ${libHead} lib (heads/main)\ncommit 3\n`);
    const attempt = lastAttempt(f.dir);
    t.true(existsSync(path.join(attempt, 'net', HOST, 'app.git')));
    t.true(existsSync(path.join(attempt, 'net', HOST, 'git', 'lib.git')));
    await f.servers.close();
    const replay = await runOk(f.dir, ['--replay', attempt]);
    t.is(replay.stdout, first.stdout);
  } finally {
    await f.servers.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test.serial('what the record lacks and pushes fail with a message the git client shows', async (t) => {
  t.deepEqual(missing, []);
  const f = await fixture();
  try {
    const push = (url: string) => `git -C w push -q ${url} HEAD:refs/heads/pushed 2>&1; echo push=$?`;
    const script = [
      `git clone -q ${f.httpsUrl} w`,
      `git clone -q ${f.gitUrl} g`,
      push(f.httpsUrl),
      push(f.gitUrl),
    ].join('\n');
    const first = await uwrx(['run', ...netArgs(f.servers), '--', 'sh', '-c', script], { cwd: f.dir });
    t.is(first.status, 0, first.stderr);
    t.regex(first.stdout, new RegExp(`fatal: remote error: uwrx: push to https://${HOST}:\\d+/git/lib.git refused \\(uwrx run --allow-push lets pushes through\\)\npush=128\n`));
    t.regex(first.stdout, new RegExp(`fatal: remote error: uwrx: push to git://${HOST}:\\d+/lib.git refused .*\npush=128\n`));
    t.regex(first.stderr, /uwrx: network: https:\/\/.*push to .* refused/);
    const attempt = lastAttempt(f.dir);
    const refused = readGitOperations(attempt).filter((o) => o.service === 'git-receive-pack');
    t.is(refused.length, 2);
    t.true(refused.every((o) => o.error?.includes('refused')));
    t.throws(() => git(['-C', path.join(f.root, 'lib.git'), 'rev-parse', '--verify', '-q', 'refs/heads/pushed']));

    // --allow-push: the push reaches the server (git://)
    const allowed = await runOk(f.dir, [...netArgs(f.servers), '--allow-push', '--', 'sh', '-c', `git clone -q ${f.gitUrl} p && ${push(f.gitUrl)}`]);
    t.is(allowed.stdout, 'push=0\n');
    t.is(git(['-C', path.join(f.root, 'lib.git'), 'rev-parse', 'refs/heads/pushed']), git(['-C', f.work, 'rev-parse', 'HEAD']));

    await f.servers.close();
    // replay: pushes refused; a repository, a branch and an object the record lacks fail
    const other = `https://${HOST}:${f.servers.http.httpsPort}/git/other.git`;
    const replayScript = [
      `git clone -q ${f.gitUrl} w && git clone -q ${f.gitUrl} g`,
      push(f.gitUrl),
      `git clone -q ${other} o 2>&1; echo other=$?`,
      `git clone -q -b nope ${f.httpsUrl} n 2>&1; echo branch=$?`,
      `git -C g fetch -q origin ${'1'.repeat(40)} 2>&1; echo object=$?`,
    ].join('\n');
    const replay = await uwrx(['run', '--replay', attempt, '--', 'sh', '-c', replayScript], { cwd: f.dir });
    t.is(replay.status, 0, replay.stderr);
    t.regex(replay.stdout, new RegExp(`fatal: remote error: uwrx: push to git://${HOST}:\\d+/lib.git refused: a replay serves from the record only\npush=128\n`));
    t.regex(replay.stdout, new RegExp(`fatal: remote error: uwrx: the record has no mirror of https://${HOST}:\\d+/git/other.git \\(net/${HOST}/git/other.git\\)\nother=128\n`));
    t.regex(replay.stdout, /Remote branch nope not found in upstream origin\n(.*\n)?branch=128\n/);
    t.regex(replay.stdout, /fatal: remote error: upload-pack: not our ref 1{40}\nobject=128\n/);
  } finally {
    await f.servers.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});
