// The file store as users meet it: real commands under `uwrx run`, then a look at
// files/, files-<pid>/, files.meta, the resolution rule and `uwrx inspect files`.
import test from 'ava';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseFilesMeta, type FileMetaEntry } from '../src/record/files-meta.js';
import { layersFor, resolveBytes, resolveFile } from '../src/record/resolve.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const scratch: string[] = [];
function project(): string {
  const dir = scratchDir('uwrx-files-');
  scratch.push(dir);
  return path.join(dir, 'proj');
}
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

interface Attempt {
  dir: string;
  cwd: string;
  build: string;
  stdout: string;
  stderr: string;
}

/** Runs `sh -c script` in a fresh project directory (or `cwd`) under uwrx. */
async function run(script: string, opts: { cwd?: string; build?: string; args?: string[] } = {}): Promise<Attempt> {
  const cwd = opts.cwd ?? project();
  mkdirSync(cwd, { recursive: true });
  const build = opts.build ?? path.join(path.dirname(cwd), 'build');
  const r = await uwrx(['run', '--build', build, ...(opts.args ?? []), '--', 'sh', '-c', script], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
  const m = /record in (\S+)/.exec(r.stderr);
  if (!m) throw new Error(`no attempt in: ${r.stderr}`);
  return { dir: m[1]!, cwd, build, stdout: r.stdout, stderr: r.stderr };
}

function meta(a: Attempt): FileMetaEntry[] {
  return parseFilesMeta(readFileSync(path.join(a.dir, 'files.meta'), 'utf8'));
}

/** files.meta as "<name> <op> <exec basename>" lines for files of the project directory. */
function ops(a: Attempt): string[] {
  return meta(a)
    .filter((e) => e.path.toString().startsWith(a.cwd + '/'))
    .map((e) => `${path.relative(a.cwd, e.path.toString())} ${e.operation} ${path.basename(e.execPath.toString())}`);
}

function pidOf(a: Attempt, name: string, operation: string, exec: string): number {
  const e = meta(a).find(
    (m) => m.path.toString() === path.join(a.cwd, name) && m.operation === operation && path.basename(m.execPath.toString()) === exec,
  );
  if (!e) throw new Error(`no ${operation} of ${name} by ${exec} in files.meta`);
  return e.pid;
}

function seen(a: Attempt, name: string, asOf?: number): string | null {
  const r = resolveFile(a.dir, path.join(a.cwd, name), asOf);
  return r.kind === 'found' ? readFileSync(r.file, 'utf8') : null;
}

async function check(t: { is: (a: unknown, b: unknown, m?: string) => void }, a: Attempt): Promise<void> {
  const r = await uwrx(['check', a.dir], { cwd: a.cwd });
  t.is(r.status, 0, r.stdout + r.stderr);
}

test('A writes foo, B reads it, C overwrites it: one version each, resolved per process', async (t) => {
  const a = await run(`sh -c 'printf A > foo'; cp foo bar; printf C | tee foo > /dev/null`);
  const A = pidOf(a, 'foo', 'create', 'dash');
  const B = pidOf(a, 'bar', 'create', 'cp');
  const C = pidOf(a, 'foo', 'write', 'tee');
  t.true(A < B && B < C);
  const files = path.join(a.dir, 'files', a.cwd);
  t.is(readFileSync(path.join(files, 'foo'), 'utf8'), 'A');
  t.is(readFileSync(path.join(a.dir, `files-${C}`, a.cwd, 'foo'), 'utf8'), 'C');
  t.is(readFileSync(path.join(files, 'bar'), 'utf8'), 'A');
  t.deepEqual(ops(a), ['foo create dash', 'bar create cp', 'foo write tee']);
  t.is(seen(a, 'foo', B), 'A');
  t.is(seen(a, 'foo', C + 1), 'C');
  t.is(seen(a, 'foo'), 'C');
  await check(t, a);
});

test('delete, re-create, rename over, rename away, rmdir and mkdir again, chmod', async (t) => {
  const a = await run(
    [
      `sh -c 'printf 1 > a'`,
      `rm a`,
      `sh -c 'printf 2 > a'`,
      `sh -c 'printf x > b; printf y > c'`,
      `mv c b`,
      `sh -c 'printf z > e'`,
      `mv e f`,
      `mkdir d`,
      `rmdir d`,
      `mkdir d`,
      `chmod 600 a`,
      `sh -c 'printf t > tmp'`,
      `rm tmp`,
    ].join('; '),
  );
  t.deepEqual(ops(a), [
    'a create dash', 'a delete rm', 'a create dash',
    'b create dash', 'c create dash', 'c rename_from mv', 'b rename_to mv',
    'e create dash', 'e rename_from mv', 'f rename_to mv',
    'd mkdir mkdir', 'd rmdir rmdir', 'd mkdir mkdir',
    'a chmod chmod',
    'tmp create dash', 'tmp delete rm',
  ]);
  t.is(seen(a, 'a'), '2');
  t.is(lstatSync(resolvedFile(a, 'a')).mode & 0o777, 0o600);
  t.is(seen(a, 'b'), 'y');
  t.is(seen(a, 'c'), null);
  t.is(seen(a, 'e'), null);
  t.is(seen(a, 'f'), 'z');
  t.is(seen(a, 'tmp'), null);
  t.true(lstatSync(resolvedFile(a, 'd')).isDirectory());
  // as the processes saw it along the way
  const rm = pidOf(a, 'a', 'delete', 'rm');
  t.is(seen(a, 'a', rm), '1');
  t.is(seen(a, 'a', rm + 1), null);
  const mvE = pidOf(a, 'e', 'rename_from', 'mv');
  t.is(seen(a, 'e', mvE), 'z');
  await check(t, a);
});

function resolvedFile(a: Attempt, name: string): string {
  const r = resolveFile(a.dir, path.join(a.cwd, name));
  if (r.kind !== 'found') throw new Error(`${name} is absent`);
  return r.file;
}

test('paths with spaces, tabs, newlines and non-UTF-8 bytes survive files.meta', async (t) => {
  const a = await run(`touch "$(printf 'sp ace\\ttab\\nnl\\377\\\\x')"`);
  const want = Buffer.concat([Buffer.from(a.cwd + '/sp ace\ttab\nnl'), Buffer.from([0xff]), Buffer.from('\\x')]);
  const entries = meta(a).filter((e) => e.path.equals(want));
  // touch creates it, then sets its times (a new version of the file: recorded as write)
  t.deepEqual(entries.map((e) => e.operation), ['create', 'write']);
  t.true(existsSync(Buffer.concat([Buffer.from(path.join(a.dir, 'files')), want])));
  await check(t, a);
});

test('a path written by three processes in turn and removed: every version readable through inspect', async (t) => {
  // nested directories; a second path with a tab and a byte that is not UTF-8 (the
  // versions index keeps raw bytes)
  const odd = `"$(printf 'd/e/v\\tx\\377')"`;
  const a = await run(
    [
      'mkdir -p d/e',
      ...['1', '2', '3'].flatMap((n) => [`sh -c 'printf ${n} > d/e/x'`, `sh -c 'printf ${n} > ${odd.replace(/'/g, `'"'"'`)}'`]),
      'cat d/e/x > seen',
      `rm d/e/x ${odd}`,
      `sh -c 'printf r > r; printf s > s'`,
      'mv s r',
      'ln -s one l',
      'ln -sfn two l',
      'rm l',
    ].join('; '),
  );
  const x = path.join(a.cwd, 'd/e/x');
  const writers = meta(a).filter((e) => e.path.toString() === x);
  t.deepEqual(writers.map((e) => e.operation), ['create', 'write', 'write', 'delete']);
  const [, p2, p3, rm] = writers.map((e) => e.pid) as [number, number, number, number];
  t.is(seen(a, 'seen'), '3');
  // each version, through `uwrx inspect files --by-pid`: the layer a process saw, read there
  const sawAs = async (pid: number): Promise<string | null> => {
    const r = await uwrx(['inspect', 'files', a.dir, '--by-pid', String(pid), '--format', 'json'], { cwd: a.cwd });
    t.is(r.status, 0, r.stderr);
    const row = (JSON.parse(r.stdout) as Array<{ path: string; saw: string }>).find((e) => e.path === x);
    if (!row) throw new Error(`no row for ${x} in ${r.stdout}`);
    return row.saw === 'absent' ? null : readFileSync(path.join(a.dir, row.saw, x), 'utf8');
  };
  // a process sees the versions of the processes before it
  t.is(await sawAs(p2), '1');
  t.is(await sawAs(p3), '2');
  t.is(await sawAs(rm), '3');
  t.is(await sawAs(rm + 1), null);
  t.is(seen(a, 'd/e/x', p2), '1');
  t.is(seen(a, 'd/e/x', rm), '3');

  const file = Buffer.concat([Buffer.from(path.join(a.cwd, 'd/e/v\tx')), Buffer.from([0xff])]);
  const oddWriters = meta(a).filter((e) => e.path.equals(file)).map((e) => e.pid);
  t.is(oddWriters.length, 4);
  const seenBytes = (asOf?: number): string | null => {
    const r = resolveBytes(layersFor(a.dir, asOf), file);
    return r.kind === 'found' ? readFileSync(r.file, 'utf8') : null;
  };
  t.deepEqual(oddWriters.slice(1).map((pid) => seenBytes(pid)), ['1', '2', '3']);
  t.is(seenBytes(), null);
  // a file replaced by a rename onto it, a symlink replaced and removed
  const mv = pidOf(a, 'r', 'rename_to', 'mv');
  t.is(seen(a, 'r', mv), 'r');
  t.is(seen(a, 'r'), 's');
  const [, lnSecond, rmL] = meta(a).filter((e) => e.path.toString() === path.join(a.cwd, 'l')).map((e) => e.pid) as [number, number, number];
  t.is(readlinkOf(a, 'l', lnSecond), 'one');
  t.is(readlinkOf(a, 'l', rmL), 'two');
  t.is(resolveFile(a.dir, path.join(a.cwd, 'l')).kind, 'absent');
  await check(t, a);
});

function readlinkOf(a: Attempt, name: string, asOf: number): string {
  const r = resolveFile(a.dir, path.join(a.cwd, name), asOf);
  if (r.kind !== 'found') throw new Error(`${name} is absent for ${asOf}`);
  return readlinkSync(r.file);
}

test('the whiteouts the layout makes share one inode', async (t) => {
  const a = await run(`for i in 1 2 3; do sh -c "printf $i > f$i"; rm f$i; done`);
  const whiteouts = [1, 2, 3].map((i) => {
    const r = pidOf(a, `f${i}`, 'delete', 'rm');
    return lstatSync(path.join(a.dir, `files-${r}`, a.cwd, `f${i}`));
  });
  for (const st of whiteouts) t.true(st.isCharacterDevice() && st.rdev === 0);
  t.is(new Set(whiteouts.map((st) => st.ino)).size, 1);
  t.true(whiteouts[0]!.nlink >= 3);
  for (let i = 1; i <= 3; i++) t.is(seen(a, `f${i}`), null);
  // the layout's own whiteout is gone from the attempt
  t.deepEqual(readdirSync(a.dir).filter((n) => n.startsWith('.whiteout')), []);
  await check(t, a);
});

const MAKEFILE = 'app: main.o f.o\n\tcc -o app main.o f.o\n%.o: %.c\n\tcc -c -o $@ $<\n';

test('step 10 builds on step 0: make finds everything up to date', async (t) => {
  const cwd = project();
  mkdirSync(cwd);
  writeFileSync(path.join(cwd, 'main.c'), 'int f(void);\nint main(void) { return f(); }\n');
  writeFileSync(path.join(cwd, 'f.c'), 'int f(void) { return 0; }\n');
  writeFileSync(path.join(cwd, 'Makefile'), MAKEFILE);
  // sources older than any run, as a checkout is
  const old = new Date('2020-01-01T00:00:00Z');
  for (const f of ['main.c', 'f.c', 'Makefile']) utimesSync(path.join(cwd, f), old, old);
  const first = await run('make', { cwd, args: ['--step', '0'] });
  t.regex(first.stdout, /cc -c -o main.o main.c/);
  t.true(existsSync(path.join(first.dir, 'files', cwd, 'app')));
  t.false(existsSync(path.join(cwd, 'app')));
  const second = await run('make', { cwd, args: ['--step', '10'] });
  t.is(realpathSync(path.join(second.dir, 'parent', '0')), first.dir);
  t.regex(second.stdout, /'app' is up to date/);
  t.notRegex(second.stdout, /cc /);
  t.deepEqual(ops(second), []);
  // the wall clocks start where each attempt's own files are squashed: none in the future
  for (const a of [first, second]) t.notRegex(a.stderr, /[Cc]lock skew|in the future/);
});

test('stat times: real files show their own, this attempt\'s show T0 + one layer and later, the same on a replay', async (t) => {
  const cwd = project();
  mkdirSync(cwd);
  writeFileSync(path.join(cwd, 'src.c'), 'int x;\n');
  utimesSync(path.join(cwd, 'src.c'), 1_600_000_000.25, 1_600_000_000.5);
  const script = 'printf o > out; stat -c %.9Y src.c; stat -c %Y out; stat -L -c %Y /usr/bin/env; ls -l --time-style=+%s src.c | cut -d" " -f6';
  const a = await run(script, { cwd });
  const t0 = Number(BigInt(readFileSync(path.join(a.dir, 't0.txt'), 'utf8').trim()) / 1_000_000_000n);
  const env = Math.floor(statSync('/usr/bin/env').mtimeMs / 1000);
  t.deepEqual(a.stdout.trim().split('\n'), ['1600000000.500000000', String(t0 + 1), String(env), '1600000000']);
  const replay = await uwrx(['run', '--build', a.build, '--replay', a.dir], { cwd });
  t.is(replay.status, 0, replay.stderr);
  t.is(replay.stdout, a.stdout);
});

test('inspect files --who and --by-pid, text and json', async (t) => {
  const a = await run(`sh -c 'printf A > foo'; cp foo bar; printf C | tee foo > /dev/null`);
  const A = pidOf(a, 'foo', 'create', 'dash');
  const B = pidOf(a, 'bar', 'create', 'cp');
  const C = pidOf(a, 'foo', 'write', 'tee');
  const foo = path.join(a.cwd, 'foo');
  const bar = path.join(a.cwd, 'bar');

  const who = await uwrx(['inspect', 'files', a.dir, '--who'], { cwd: a.cwd });
  t.is(who.status, 0, who.stderr);
  const lines = who.stdout.trim().split('\n');
  t.true(lines.includes(`${foo}\t${A}\tcreate\t/usr/bin/dash`));
  t.true(lines.includes(`${bar}\t${B}\tcreate\t/usr/bin/cp`));
  t.true(lines.includes(`${foo}\t${C}\twrite\t/usr/bin/tee`));

  const whoJson = await uwrx(['inspect', 'files', a.dir, '--who', '--format', 'json'], { cwd: a.cwd });
  const rows = JSON.parse(whoJson.stdout) as Array<{ path: string; pid: number; operation: string; exec: string }>;
  t.deepEqual(rows.filter((r) => r.path === foo).map((r) => [r.pid, r.operation, r.exec]), [
    [A, 'create', '/usr/bin/dash'],
    [C, 'write', '/usr/bin/tee'],
  ]);

  // B saw A's foo and wrote bar; C saw files/foo too (its own version is files-C/)
  const byB = await uwrx(['inspect', 'files', a.dir, '--by-pid', String(B)], { cwd: a.cwd });
  t.is(byB.status, 0, byB.stderr);
  t.true(byB.stdout.split('\n').includes(`${foo}\tfiles/\t-`));
  t.true(byB.stdout.split('\n').includes(`${bar}\tfiles/\tcreate`));
  const after = await uwrx(['inspect', 'files', a.dir, '--by-pid', String(C + 1), '--format', 'json'], { cwd: a.cwd });
  const seenAfter = JSON.parse(after.stdout) as Array<{ path: string; saw: string; wrote: string[] }>;
  t.deepEqual(seenAfter.find((r) => r.path === foo), { path: foo, saw: `files-${C}/`, layer: `files-${C}/`, wrote: [] });
});

test('inspect files --by-pid finds files whose names hold a tab or a byte that is not UTF-8', async (t) => {
  const a = await run(`printf A > "$(printf 'x\\ty')"; printf B > "$(printf 'z\\377')"; printf C > plain`);
  const by = await uwrx(['inspect', 'files', a.dir, '--by-pid', String(pidOf(a, 'plain', 'create', 'dash'))], { cwd: a.cwd });
  t.is(by.status, 0, by.stderr);
  const lines = by.stdout.split('\n');
  for (const name of ['x\\ty', 'z\\xff', 'plain']) t.true(lines.includes(`${path.join(a.cwd, name)}\tfiles/\tcreate`), `${name}: ${by.stdout}`);
});
