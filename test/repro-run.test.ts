// Reproducibility under `uwrx run` (docs/reproducibility.md): two runs with the same seed
// (the second a --replay of the first) see the same randomness and the same clocks and
// write the same bytes; a fresh seed changes them.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';
import { wallOffsetNs } from '../src/reproducibility/time.js';
import { LAYER_INTERVAL_NS } from '../src/sandbox/plan.js';

const probe = buildDriver('repro_probe', ['test/native/repro_probe.c']);
const poll = buildDriver('clock_poll', ['test/native/clock_poll.c']);

async function runOk(cwd: string, args: string[]): Promise<string> {
  const r = await uwrx(['run', '-q', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** The newest attempt directory of `step` under build/. */
function field(output: string, key: string): string {
  const line = output.split('\n').find((l) => l.startsWith(key + '='));
  if (line === undefined) throw new Error(`no ${key}= in:\n${output}`);
  return line.slice(key.length + 1);
}

/** Where an attempt starts its wall clocks, in whole seconds: T0 plus the offset at which
 * its own files' times are squashed (one interval per parent, and one more). */
function wallStartSeconds(attemptDir: string): bigint {
  const t0 = BigInt(readFileSync(path.join(attemptDir, 't0.txt'), 'utf8').trim());
  const parentDir = path.join(attemptDir, 'parent');
  const parents = existsSync(parentDir) ? readdirSync(parentDir).length : 0;
  return (t0 + wallOffsetNs(parents, LAYER_INTERVAL_NS)) / 1_000_000_000n;
}

/** Runs `args` fresh (step 0), replays it, runs it again fresh (step 10). */
async function runReplayFresh(args: string[]) {
  const cwd = scratchDir('uwrx-repro-');
  const first = await runOk(cwd, ['--step', '0', '--', ...args]);
  const replay = await runOk(cwd, ['--replay', 'build/0/0']);
  const fresh = await runOk(cwd, ['--step', '10', '--', ...args]);
  return { cwd, first, replay, fresh };
}

test.serial('a C program sees the same clocks, random bytes and host name on --replay', async (t) => {
  const { cwd, first, replay, fresh } = await runReplayFresh([probe]);
  t.is(replay, first);
  t.is(field(first, 'vdso'), '0', 'the shim removed the vDSO, so clocks are real syscalls');
  t.is(field(first, 'hostname'), 'uwrx');
  // Advancing mode: the n-th clock read of the process is base + n steps (10 us).
  const t0 = wallStartSeconds(path.join(cwd, 'build/0/0'));
  t.is(field(first, 'realtime'), `${t0}.000000000`);
  t.is(field(first, 'monotonic'), '100.000010000');
  t.is(field(first, 'gettimeofday'), `${t0}.000020`);
  t.is(field(first, 'time'), `${t0}`);
  for (const key of ['at_random', 'getrandom', 'urandom']) {
    t.regex(field(first, key), /^[0-9a-f]{32,64}$/);
    t.not(field(fresh, key), field(first, key), `${key} changes with a fresh seed`);
  }
  t.not(field(first, 'getrandom'), field(first, 'urandom'));
  t.is(
    readFileSync(path.join(cwd, 'build/0/1/seed.txt'), 'utf8'),
    readFileSync(path.join(cwd, 'build/0/0/seed.txt'), 'utf8'),
  );
  t.is(readFileSync(path.join(cwd, 'build/0/1/t0.txt'), 'utf8'), readFileSync(path.join(cwd, 'build/0/0/t0.txt'), 'utf8'));
});

test.serial('python: time.time(), os.urandom, random.random() and hash() repeat on --replay', async (t) => {
  const script = [
    'import os, random, time',
    'print(time.time())',
    'print(os.urandom(16).hex())',
    'print(random.random())',
    "print(hash('x'))",
  ].join('\n');
  const { first, replay, fresh } = await runReplayFresh(['env', '-u', 'PYTHONHASHSEED', 'python3', '-c', script]);
  const lines = first.trim().split('\n');
  t.is(lines.length, 4);
  t.is(replay, first);
  const other = fresh.trim().split('\n');
  for (let i = 1; i < 4; i++) t.not(other[i], lines[i], `line ${i + 1} changes with a fresh seed`);
});

test.serial('threads get their own getrandom streams, the same on --replay', async (t) => {
  const script = [
    'import os, threading',
    'out = [None] * 4',
    'def work(i): out[i] = os.urandom(8).hex()',
    'ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]',
    '[x.start() for x in ts]; [x.join() for x in ts]',
    'print(os.urandom(8).hex(), *out)',
  ].join('\n');
  const { first, replay } = await runReplayFresh(['python3', '-c', script]);
  t.is(replay, first);
  t.is(new Set(first.trim().split(' ')).size, 5);
});

test.serial('date prints the wall-clock start; frozen time stands still; real time is the host clock', async (t) => {
  const cwd = scratchDir('uwrx-repro-');
  const advancing = await runOk(cwd, ['--', 'date', '-u', '+%s.%N']);
  t.is(advancing.trim(), `${wallStartSeconds(lastAttempt(cwd))}.000000000`);
  const frozen = await runOk(cwd, ['--step', '20', '--time', 'frozen', '--', 'sh', '-c', 'date +%s.%N; date +%s.%N; python3 -c "import time; print(time.time(), time.time())"']);
  const t0 = wallStartSeconds(lastAttempt(cwd, '20'));
  t.deepEqual(frozen.trim().split('\n'), [`${t0}.000000000`, `${t0}.000000000`, `${t0}.0 ${t0}.0`]);
  t.regex(readFileSync(path.join(cwd, 'build/20/options'), 'utf8'), /"time": "frozen"/);
  // a replay keeps the mode and T0
  const replayed = await runOk(cwd, ['--replay', 'build/20/0']);
  t.is(replayed, frozen);
  t.regex(readFileSync(path.join(cwd, 'build/20/1/options'), 'utf8'), /"time": "frozen"/);
  const real = await runOk(cwd, ['--step', '30', '--time', 'real', '--', 'date', '+%s.%N']);
  t.true(Math.abs(Number(real.trim()) - Date.now() / 1000) < 60);
  t.false(real.trim().endsWith('.000000000'));
});

test.serial('--time takes advancing, frozen or real only', async (t) => {
  const cwd = scratchDir('uwrx-repro-');
  const r = await uwrx(['run', '--time', 'slow', '--', 'true'], { cwd });
  t.is(r.status, 2);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /--time must be advancing, frozen, real/);
});

test.serial('8 MiB of /dev/urandom are the same on --replay', async (t) => {
  const { first, replay, fresh } = await runReplayFresh(['sh', '-c', 'dd if=/dev/urandom bs=1M count=8 2>/dev/null | sha256sum']);
  t.regex(first, /^[0-9a-f]{64} {2}-\n$/);
  t.is(replay, first);
  t.not(fresh, first);
  // each open is its own stream: two reads of the same size differ
  const cwd = scratchDir('uwrx-repro-');
  const two = await runOk(cwd, ['--', 'sh', '-c', 'head -c 32 /dev/urandom | sha256sum; head -c 32 /dev/urandom | sha256sum']);
  const [a, b] = two.trim().split('\n');
  t.truthy(a);
  t.not(a, b);
});

test.serial('a busy wait for 0.2 s of CLOCK_MONOTONIC ends under advancing time', async (t) => {
  const cwd = scratchDir('uwrx-repro-');
  const started = Date.now();
  const out = await runOk(cwd, ['--', poll, '0.2']);
  // one read per 10 us of the deterministic clock: 20,000 reads after the first
  t.is(out.trim(), 'reads=20001');
  t.true(Date.now() - started < 60_000);
});

// A small project whose outputs embed the time of the build: __DATE__/__TIME__ in the
// executable, member mtimes in the ar archive (U: not deterministic mode), file mtimes in
// the tarball and the source mtime in the .pyc of a generated module.
const BUILD_SH = `set -e
rm -rf out && mkdir out
echo 'def answer(): return 42' > out/gen.py
cc -c -o out/hello.o hello.c
cc -c -o out/add.o add.c
ar rcU out/libadd.a out/add.o
cc -o out/hello out/hello.o out/libadd.a
python3 -c 'import py_compile; py_compile.compile("out/gen.py", cfile="out/gen.pyc")'
tar cf out/src.tar hello.c add.c out/gen.py out/hello.o
`;

function makeProject(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'hello.c'), '#include <stdio.h>\nint add(int, int);\nint main(void) { printf("built %s %s: %d\\n", __DATE__, __TIME__, add(2, 3)); return 0; }\n');
  writeFileSync(path.join(dir, 'add.c'), 'int add(int a, int b) { return a + b; }\n');
  writeFileSync(path.join(dir, 'build.sh'), BUILD_SH);
}

/** name -> bytes of every file below `dir`. */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(path.relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

const OUTPUTS = ['out/add.o', 'out/gen.py', 'out/gen.pyc', 'out/hello', 'out/hello.o', 'out/libadd.a', 'out/src.tar'];

test.serial('a real build gives byte-identical files/ on --replay, and differs without uwrx', async (t) => {
  const cwd = scratchDir('uwrx-repro-');
  const proj = path.join(cwd, 'proj');
  makeProject(proj);
  await runOk(proj, ['--build', '../build', '--', 'sh', 'build.sh']);
  await runOk(proj, ['--build', '../build', '--replay', '../build/0/0']);
  const first = tree(path.join(cwd, 'build/0/0/files', proj));
  const second = tree(path.join(cwd, 'build/0/1/files', proj));
  t.deepEqual([...first.keys()].filter((k) => k.startsWith('out/')), OUTPUTS);
  for (const name of OUTPUTS) t.true(first.get(name)!.equals(second.get(name)!), `${name} is byte-identical`);

  // The same build twice on the host, a second apart: the time leaks into the outputs.
  const native = path.join(cwd, 'native');
  makeProject(native);
  const build = () => {
    execFileSync('sh', ['build.sh'], { cwd: native, stdio: 'ignore' });
    return tree(path.join(native, 'out'));
  };
  const a = build();
  await new Promise((r) => setTimeout(r, 1100));
  const b = build();
  const differing = [...a.keys()].filter((k) => !a.get(k)!.equals(b.get(k)!));
  t.deepEqual(differing.sort(), ['gen.pyc', 'hello', 'hello.o', 'libadd.a', 'src.tar']);
});

test.serial('the C probe without uwrx reads the vDSO and the host name', (t) => {
  // the other side of the first test: what uwrx changes
  const r = spawnSync(probe, { encoding: 'utf8' });
  t.not(field(r.stdout, 'vdso'), '0');
});
