// `uwrx inspect` and `uwrx check` on records made by running real commands under the real
// bin/uwrx, including one left by a uwrx that was SIGKILLed in the middle of a run.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = scratchDir('uwrx-inspect-');
  dirs.push(d);
  return d;
}

/** The shell pipeline `uwrx <args> | head -<n>`: what head printed, what uwrx said on
 * stderr and its exit status. */
function piped(cwd: string, args: string[], lines: number): { out: string; err: string; status: number } {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const r = spawnSync('sh', ['-c', `{ '${process.execPath}' '${uwrxBin}' ${quoted} 2>uwrx.err; echo $? > uwrx.status; } | head -${lines}`], { cwd, encoding: 'utf8' });
  return {
    out: r.stdout,
    err: readFileSync(path.join(cwd, 'uwrx.err'), 'utf8'),
    status: Number(readFileSync(path.join(cwd, 'uwrx.status'), 'utf8')),
  };
}

test('procs --tree, in text and json, on a real run', async (t) => {
  const cwd = scratch();
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', 'sh -c "sh -c true; exit 4"; sh -c "echo x"; exit 0'], { cwd });
  t.is(run.status, 0, run.stderr);
  const text = await uwrx(['inspect', 'procs', '--tree', 'build/0/0'], { cwd });
  t.is(text.status, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  t.is(lines.length, 4);
  t.regex(lines[0]!, /^2 \[0, [0-9.]+ s\] sh -c sh -c "sh -c true; exit 4"; sh -c "echo x"; exit 0$/);
  t.regex(lines[1]!, /^├─ 3 \[4, [0-9.]+ s\] sh -c sh -c true; exit 4$/);
  t.regex(lines[2]!, /^│  └─ 4 \[0, [0-9.]+ s\] sh -c true$/);
  t.regex(lines[3]!, /^└─ 5 \[0, [0-9.]+ s\] sh -c echo x$/);
  const json = await uwrx(['inspect', 'procs', '--tree', '--format', 'json', 'build/0/0'], { cwd });
  const tree = JSON.parse(json.stdout) as { pid: number; status: number; cwd: string; children: { pid: number; children: { pid: number }[] }[] }[];
  t.is(tree.length, 1);
  t.is(tree[0]!.pid, 2);
  t.is(tree[0]!.cwd, cwd);
  t.deepEqual(tree[0]!.children.map((c) => [c.pid, c.children.map((g) => g.pid)]), [
    [3, [4]],
    [5, []],
  ]);
  const bad = await uwrx(['inspect', 'files', '--tree', 'build/0/0'], { cwd });
  t.is(bad.status, 2);
  t.is(bad.stderr, 'uwrx inspect files: --tree applies to "procs" only\n');
});

test('a process that never exec\'d (a subshell) shows whose fork it is', async (t) => {
  const cwd = scratch();
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', '(echo in-subshell; exit 3); true'], { cwd });
  t.is(run.status, 0, run.stderr);
  t.is(run.stdout, 'in-subshell\n');
  const tree = await uwrx(['inspect', 'procs', '--tree', 'build/0/0'], { cwd });
  t.regex(tree.stdout, /^└─ 3 \[3, [0-9.]+ s\] \(fork of 2\)$/m);
  const table = await uwrx(['inspect', 'procs', 'build/0/0'], { cwd });
  t.regex(table.stdout, /^3\t2\t3\t[0-9.]+\t[0-9.]+\t\(fork of 2\)$/m);
});

test('files and events filtered by path prefix and by time range', async (t) => {
  const cwd = scratch();
  // two phases a second apart, each writing under its own directory
  const script = 'mkdir -p early late; echo 1 > early/a; echo 2 > early/b; sleep 1; echo 3 > late/c; echo 4 > lateral';
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd });
  t.is(run.status, 0, run.stderr);
  // the time between the phases, in seconds after the first process started (as the
  // filters count), from the record itself: a loaded machine may start late
  const all = JSON.parse((await uwrx(['inspect', 'events', 'build/0/0', '--format', 'json'], { cwd })).stdout) as { type: string; time: number; path?: string }[];
  const table = JSON.parse((await uwrx(['inspect', 'procs', 'build/0/0', '--format', 'json'], { cwd })).stdout) as { start: number }[];
  const t0 = Math.min(...table.map((p) => p.start));
  const lastEarly = Math.max(...all.filter((e) => e.path?.includes('/early/')).map((e) => e.time));
  const firstLate = Math.min(...all.filter((e) => e.path?.endsWith('/late/c')).map((e) => e.time));
  t.true(firstLate - lastEarly > 0.5e9, 'the sleep separates the phases');
  const split = ((lastEarly + firstLate) / 2 - t0) / 1e9;
  const at = split.toFixed(3);
  const files = async (...args: string[]) => {
    const r = await uwrx(['inspect', 'files', 'build/0/0', ...args], { cwd });
    t.is(r.status, 0, r.stderr);
    return r.stdout.trimEnd().split('\n').filter(Boolean).map((p) => path.relative(cwd, p));
  };
  t.deepEqual(await files('--path', path.join(cwd, 'early')), ['early', 'early/a', 'early/b']);
  // a prefix is a directory: `late` does not take in `lateral`
  t.deepEqual(await files('--path', path.join(cwd, 'late')), ['late', 'late/c']);
  t.deepEqual(await files('--until', at, '--path', cwd), ['early', 'late', 'early/a', 'early/b']);
  t.deepEqual(await files('--since', at, '--path', cwd), ['late/c', 'lateral']);

  const events = await uwrx(['inspect', 'events', 'build/0/0', '--since', at, '--path', path.join(cwd, 'late'), '--format', 'json'], { cwd });
  t.is(events.status, 0, events.stderr);
  const list = JSON.parse(events.stdout) as { type: string; path: string }[];
  t.deepEqual(list.map((e) => [e.type, path.relative(cwd, e.path)]), [['open', 'late/c']]);

  for (const [args, message] of [
    [['--since', 'soon'], 'uwrx inspect: --since expects seconds since the run\'s start (e.g. 1.5), got "soon"'],
    [['--path', 'relative/dir'], 'uwrx inspect: --path expects an absolute path, got "relative/dir"'],
    [['--since', '2', '--until', '1'], 'uwrx inspect files: --since 2 is after --until 1'],
  ] as const) {
    const r = await uwrx(['inspect', 'files', 'build/0/0', ...args], { cwd });
    t.is(r.status, 2);
    t.is(r.stderr, `${message}\n`);
  }
  const procs = await uwrx(['inspect', 'procs', 'build/0/0', '--path', '/x'], { cwd });
  t.is(procs.stderr, 'uwrx inspect procs: --since, --until and --path apply to "files" and "events" only\n');
});

test('inspect ... | head -1 and check ... | head stop quietly', async (t) => {
  const cwd = scratch();
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', 'for i in $(seq 2000); do echo line $i; echo $i > f$i; done'], { cwd });
  t.is(run.status, 0, run.stderr);
  for (const view of ['events', 'output', 'procs', 'files']) {
    const r = piped(cwd, ['inspect', view, 'build/0/0'], 1);
    t.is(r.err, '', `inspect ${view}`);
    t.is(r.status, 0, `inspect ${view}`);
    t.is(r.out.split('\n').length, 2, `inspect ${view}`);
  }
  // a damaged copy: thousands of problem lines
  spawnSync('cp', ['-a', 'build', 'damaged'], { cwd });
  rmSync(path.join(cwd, 'damaged', '0', '0', 'files'), { recursive: true });
  const r = piped(cwd, ['check', 'damaged/0/0'], 10);
  t.is(r.err, '');
  t.is(r.status, 1, 'the problems found decide the status, not the closed pipe');
  t.is(r.out.trimEnd().split('\n').length, 10);
  t.regex(r.out, /has no stored version in files\//);
});

test('a uwrx killed with SIGKILL mid-run: check reports it, check --repair rebuilds, check passes listing what is lost', async (t) => {
  const cwd = scratch();
  // a sleep no other test on the machine runs, to look for it afterwards
  const sleeper = `sleep 60.${process.pid}`;
  const child = spawn(process.execPath, [uwrxBin, 'run', '--', 'sh', '-c', `echo started; echo content > f1; sh -c "echo quick-child"; echo waiting; ${sleeper}`], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // start-up takes seconds on a loaded machine
  for (let i = 0; i < 1200 && !out.includes('waiting'); i++) await sleep(50);
  await sleep(200);
  child.kill('SIGKILL');
  t.true(out.includes('waiting'), out);
  t.is(await exited, 'SIGKILL');
  // the sandbox dies with uwrx: nothing of the tree is left running
  const running = () => spawnSync('pgrep', ['-f', `^${sleeper.replace('.', '\\.')}$`]).status === 0;
  for (let i = 0; i < 50 && running(); i++) await sleep(100);
  t.false(running(), 'the sandboxed sleep is gone');

  const attempt = 'build/0/0';
  t.false(existsSync(path.join(cwd, attempt, 'status')));
  let r = await uwrx(['check', attempt], { cwd });
  t.is(r.status, 1);
  t.regex(r.stdout, /^procs\.tsv: process table missing/m);
  t.regex(r.stdout, /^status: missing: uwrx did not finish this attempt \(killed\?\); uwrx check --repair rebuilds what it can$/m);
  t.regex(r.stdout, /^\S+\/build\/\.tmp\/run-0-0-\w{6}: \d+ trace buffers left by a run that did not finish \(uwrx check --repair recovers them\)$/m);

  // the buffers may be on /dev/shm behind <runDir>/traces: repair removes them there too
  const tracesDir = realpathSync(path.join(cwd, 'build', '.tmp', readdirSync(path.join(cwd, 'build', '.tmp'))[0]!, 'traces'));
  r = await uwrx(['check', '--repair', attempt], { cwd });
  t.is(r.status, 0, r.stderr);
  t.false(existsSync(tracesDir), `${tracesDir} is removed`);
  t.regex(r.stdout, /^recovered: \d+ events from \d+ trace buffers left in /m);
  t.regex(r.stdout, /^recovered: perfetto rewritten: \d+ events of \d+ processes$/m);
  // whether the ends of sh and sleep are lost depends on whether uwrx-init saw them die
  // before it went: when a line says so, it names only them
  const ended = /^lost: how (?:1 process|\d+ processes) ended \(pid ([\d, ]+)\): still running when uwrx was killed, they ended with it$/m.exec(r.stdout);
  if (ended) t.regex(ended[1]!, /^(?:2|4|2, 4)$/);
  t.regex(r.stdout, /^lost: the file store: 1 files the run wrote \(and the directories it made\) are not in the record/m);

  r = await uwrx(['check', attempt], { cwd });
  t.is(r.status, 0, r.stdout);
  t.regex(r.stdout, /^incomplete: uwrx was killed before it finished this attempt; repaired by uwrx check --repair$/m);
  t.regex(r.stdout, /^lost: the file store/m);
  t.regex(r.stdout, /^ok: \d+ processes, \d+ events$/m);

  // what was recovered reads like any record
  const output = await uwrx(['inspect', 'output', attempt, '2'], { cwd });
  t.regex(output.stdout, /^started\n(.*\n)*waiting\n$/);
  const procs = await uwrx(['inspect', 'procs', '--tree', attempt], { cwd });
  t.regex(procs.stdout, /^2 \[[^\]]+\] sh -c echo started/m);
  t.regex(procs.stdout, /└─ 4 \[[^\]]+\] sleep 60\.\d+$/m);
  const status = JSON.parse(readFileSync(path.join(cwd, attempt, 'status'), 'utf8')) as { complete: boolean; lost: string[] };
  t.false(status.complete);
  t.true(status.lost.length > 0);

  r = await uwrx(['check', '--repair', attempt], { cwd });
  t.is(r.stdout, 'nothing to repair: the attempt has its status and no trace buffers are left (uwrx check validates it)\n');
  const runDir = readdirSync(path.join(cwd, 'build', '.tmp'))[0]!;
  t.false(existsSync(path.join(cwd, 'build', '.tmp', runDir, 'traces')), 'the consumed buffers are removed');
});

test('check --repair: bad input is one line, exit 2', async (t) => {
  const cwd = scratch();
  let r = await uwrx(['check', '--repair', 'nowhere'], { cwd });
  t.is(r.status, 2);
  t.is(r.stderr, `uwrx check --repair: ${path.join(cwd, 'nowhere')}: not an attempt directory (expected <build>/<step>/<attempt> with seed.txt)\n`);
  r = await uwrx(['check', '--tmp', '/x', 'build/0/0'], { cwd });
  t.is(r.status, 2);
  t.is(r.stderr, 'uwrx check: --tmp applies to --repair only\n');
});
