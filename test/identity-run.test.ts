// Process identity under `uwrx run` (docs/reproducibility.md): no address-space
// randomization, clocks that differ between processes and follow causality, virtual CPU
// time. Temp names and random bytes repeat on --replay and differ between processes.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';
import { readProcessTable, type ProcessRecord } from '../src/record/procs.js';

async function runOk(cwd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await uwrx(['run', '-q', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

function scratch(t: { teardown(fn: () => void): void }): string {
  const cwd = scratchDir('uwrx-identity-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return cwd;
}

const stackLine = "grep '\\[stack\\]' /proc/self/maps";

test.serial('the tree runs without address-space randomization, recorded in the options; --aslr opts back in', async (t) => {
  const cwd = scratch(t);
  const first = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', `${stackLine}; ${stackLine}`]);
  const [a, b] = first.stdout.trim().split('\n');
  t.is(a, b, 'two processes, one stack address');
  t.regex(readFileSync(path.join(cwd, 'build/0/options'), 'utf8'), /"aslr": false/);
  t.is((await runOk(cwd, ['--replay', 'build/0/0'])).stdout, first.stdout);
  const random = await runOk(cwd, ['--step', '10', '--aslr', '--', 'sh', '-c', `${stackLine}; ${stackLine}`]);
  const [c, d] = random.stdout.trim().split('\n');
  t.not(c, d, 'with --aslr each exec gets its own stack address');
  t.regex(readFileSync(path.join(cwd, 'build/10/options'), 'utf8'), /"aslr": true/);
  const replayed = await runOk(cwd, ['--replay', 'build/10/0']);
  t.regex(readFileSync(path.join(cwd, 'build/10/1/options'), 'utf8'), /"aslr": true/, 'a replay keeps the choice');
  t.not(replayed.stdout, random.stdout);
});

test.serial('mktemp names repeat on --replay and differ between concurrent processes', async (t) => {
  const cwd = scratch(t);
  const script = 'mktemp & mktemp & wait; mktemp -u; mktemp -d';
  const first = (await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script])).stdout;
  const names = first.trim().split('\n');
  t.is(names.length, 4);
  t.is(new Set(names).size, 4);
  // the two concurrent ones may print in either order
  const sorted = (out: string) => out.trim().split('\n').sort();
  t.deepEqual(sorted((await runOk(cwd, ['--replay', 'build/0/0'])).stdout), sorted(first));
  const fresh = (await runOk(cwd, ['--step', '10', '--', 'sh', '-c', script])).stdout;
  t.notDeepEqual(sorted(fresh), sorted(first), 'a fresh seed gives other names');
});

test.serial("gcc's temporary file names repeat on --replay", async (t) => {
  ensureCommands({ gcc: 'gcc' });
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'a.c'), 'int a(void) { return 1; }\n');
  writeFileSync(path.join(cwd, 'b.c'), 'int b(void) { return 2; }\n');
  const script = 'gcc -v -c a.c 2>&1 & gcc -v -c b.c 2>&1 & wait';
  const first = (await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script])).stdout;
  const temps = (out: string) => [...out.matchAll(/\/tmp\/cc[A-Za-z0-9]{6}\.s/g)].map((m) => m[0]).sort();
  t.true(temps(first).length >= 2, first);
  t.is(new Set(temps(first)).size, temps(first).length / 2, 'each compiler its own name (written by cc1, read by as)');
  const replay = (await runOk(cwd, ['--replay', 'build/0/0'])).stdout;
  t.deepEqual(temps(replay), temps(first));
});

test.serial("node's crypto.randomBytes, Math.random and randomUUID repeat on --replay", async (t) => {
  const cwd = scratch(t);
  const script = "const c = require('crypto'); console.log(c.randomBytes(16).toString('hex'), Math.random(), c.randomUUID());";
  const first = (await runOk(cwd, ['--step', '0', '--', 'node', '-e', script])).stdout;
  t.regex(first, /^[0-9a-f]{32} 0\.\d+ [0-9a-f-]{36}\n$/);
  t.is((await runOk(cwd, ['--replay', 'build/0/0'])).stdout, first);
});

const nsLine = 'import time; print(time.monotonic_ns(), time.process_time_ns(), *__import__("os").times()[:4])';

test.serial('a child starts after its parent, siblings apart; a parent that reaped a child is past its end', async (t) => {
  const cwd = scratch(t);
  const script = [
    'import os, subprocess, sys, time',
    'before = time.monotonic_ns()',
    `out = subprocess.run([sys.executable, '-c', 'import time; a = time.monotonic_ns(); time.sleep(0.5); print(a, time.monotonic_ns())'], capture_output=True, text=True).stdout.split()`,
    'after = time.monotonic_ns()',
    'print(before, *out, after)',
  ].join('\n');
  const first = (await runOk(cwd, ['--step', '0', '--', 'python3', '-c', script])).stdout;
  const [before, childStart, childEnd, after] = first.trim().split(' ').map(BigInt);
  t.true(childStart! > before!, 'the child starts after the parent started it');
  t.true(childEnd! - childStart! >= 500_000_000n, 'the child slept 0.5 s');
  t.true(after! >= childEnd!, 'the parent waited for it: it is past the child end');
  t.is((await runOk(cwd, ['--replay', 'build/0/0'])).stdout, first);
  const two = (await runOk(cwd, ['--step', '10', '--', 'sh', '-c', `python3 -c '${nsLine}' & python3 -c '${nsLine}' & wait`])).stdout;
  const [x, y] = two.trim().split('\n').map((l) => l.split(' ')[0]);
  t.not(x, y, 'two concurrent processes read different clocks');
});

// Children are numbered in the order their parent created them, whichever registers
// first: the third child (forked by a second thread) ends while the second still waits
// in a read uwrx does not see, so the third is numbered from the parent's children as
// /proc lists them then, after the parent's files were first read for the first child.
const THREE_CHILDREN_C = `
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
static int fds[2];
static pid_t spawn(int code, int wait_pipe) {
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (wait_pipe && read(fds[0], &c, 1) != 1) _exit(1);
    _exit(code);
  }
  return pid;
}
static void *third(void *arg) { (void)arg; waitpid(spawn(12, 0), NULL, 0); return NULL; }
int main(void) {
  if (pipe(fds) != 0) return 1;
  waitpid(spawn(10, 0), NULL, 0);
  pid_t second = spawn(11, 1);
  pthread_t t;
  pthread_create(&t, NULL, third, NULL);
  pthread_join(t, NULL);
  if (write(fds[1], "x", 1) != 1) return 1;
  waitpid(second, NULL, 0);
  return 0;
}
`;

test.serial('children forked from two threads are numbered in creation order, not in the order they show up', async (t) => {
  ensureCommands({ cc: 'gcc' });
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'three.c'), THREE_CHILDREN_C);
  execFileSync('cc', ['-O1', '-pthread', '-o', path.join(cwd, 'three'), path.join(cwd, 'three.c')]);
  await runOk(cwd, ['--step', '0', '--', './three']);
  const procs = await readProcessTable(path.join(cwd, 'build/0/0'));
  const parent = procs.find((p) => p.exe?.toString().endsWith('/three'))!;
  const children = procs.filter((p) => p.ppid === parent.pid);
  const byCode = new Map(children.map((p) => [p.exitCode, p.key]));
  const detail = JSON.stringify(children.map((p) => [p.pid, p.key, p.exitCode, p.start.toString()]));
  t.deepEqual([10, 11, 12].map((code) => byCode.get(code)), [0, 1, 2].map((ordinal) => `${parent.pid}.${ordinal}`), detail);
  const firstSeen = [...children].sort((a, b) => Number(a.start - b.start)).map((p) => p.exitCode);
  t.deepEqual(firstSeen, [10, 12, 11], `the third showed up before the second: ${detail}`);
});

test.serial('CPU time is virtual: clock(), process_time, times() and getrusage repeat on --replay', async (t) => {
  const cwd = scratch(t);
  const script = [
    'import os, resource, time',
    'sum(range(2_000_000))',
    'r = resource.getrusage(resource.RUSAGE_SELF)',
    'print(time.process_time_ns(), os.times()[:4], r.ru_utime, r.ru_stime, r.ru_maxrss)',
  ].join('\n');
  const first = (await runOk(cwd, ['--step', '0', '--', 'python3', '-c', script])).stdout;
  t.is((await runOk(cwd, ['--replay', 'build/0/0'])).stdout, first);
  const [ns] = first.split(' ');
  t.true(BigInt(ns!) < 100_000_000n, `a few reads of virtual CPU time, not the real ${ns} ns`);
  t.regex(first.trim(), / 0\.0 0$/, 'no system time; counters read 0');
});

// A parallel make whose jobs end in an order set by files outside the record: the
// replay runs the same processes, but they first show up in another order.
const PARALLEL_MAKEFILE = [
  'N := $(shell seq 1 $(JOBS))',
  'all: $(N:%=out/%.txt)',
  'out/%.txt: | out',
  '\tsleep $$(cat delays/$*); echo $* > $@; tr 0-9 a-j < $@ > $@.up; cp $@.up $@',
  'out:',
  '\tmkdir -p out',
  '',
].join('\n');

function writeDelays(cwd: string, jobs: number, slow: number): void {
  mkdirSync(path.join(cwd, 'delays'), { recursive: true });
  for (let i = 1; i <= jobs; i++) writeFileSync(path.join(cwd, 'delays', String(i)), i % 4 === slow ? '0.4\n' : '0.01\n');
}

/** Every stored file of an attempt (files/, files-<pid>/) with its bytes, and files.meta's
 * lines sorted (their order follows the scheduling). */
function storedFiles(attemptDir: string): { files: Map<string, string>; meta: string[] } {
  const files = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(attemptDir, rel)).sort()) {
      const r = path.join(rel, name);
      const st = lstatSync(path.join(attemptDir, r));
      if (st.isDirectory()) walk(r);
      else files.set(r, st.isFile() ? readFileSync(path.join(attemptDir, r), 'utf8') : `mode ${st.mode}`);
    }
  };
  for (const dir of readdirSync(attemptDir).filter((n) => n === 'files' || n.startsWith('files-'))) walk(dir);
  const meta = readFileSync(path.join(attemptDir, 'files.meta'), 'utf8').trim().split('\n').sort();
  return { files, meta };
}

test.serial('--replay gives each process the logical pid of its tree key in the replayed attempt, whatever the order of first sight', async (t) => {
  ensureCommands({ make: 'make' });
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'Makefile'), PARALLEL_MAKEFILE);
  writeDelays(cwd, 24, 1);
  await runOk(cwd, ['--step', '0', '--', 'make', '-s', '-j4', 'JOBS=24']);
  writeDelays(cwd, 24, 3); // other jobs are slow now: they end, and their children start, in another order
  await runOk(cwd, ['--replay', 'build/0/0']);
  const [recorded, replayed] = await Promise.all(['build/0/0', 'build/0/1'].map((a) => readProcessTable(path.join(cwd, a))));
  const firstSeen = (procs: ProcessRecord[]) => [...procs].sort((a, b) => Number(a.start - b.start)).map((p) => p.key);
  t.notDeepEqual(firstSeen(replayed!), firstSeen(recorded!), 'the processes showed up in another order');
  const byKey = (procs: ProcessRecord[]) => new Map(procs.map((p) => [p.key, p.pid]));
  t.true(recorded!.length > 100);
  t.deepEqual(byKey(replayed!), byKey(recorded!), 'the same pid for every tree key');
  const a = storedFiles(path.join(cwd, 'build/0/0'));
  const b = storedFiles(path.join(cwd, 'build/0/1'));
  t.true([...a.files.keys()].some((f) => /^files-\d+\//.test(f)), 'later versions are stored by pid');
  t.deepEqual(b.files, a.files, 'the same files in files/ and every files-<pid>/');
  t.deepEqual(b.meta, a.meta);

  // A replay that runs more than was recorded: the new processes get pids after the
  // largest recorded one.
  await runOk(cwd, ['--replay', 'build/0/0', '--', 'make', '-s', '-j4', 'JOBS=25']);
  const more = await readProcessTable(path.join(cwd, 'build/0/2'));
  const known = byKey(recorded!);
  const largest = Math.max(...recorded!.map((p) => p.pid));
  const fresh = more.filter((p) => !known.has(p.key));
  t.true(fresh.length >= 5, 'the 25th job and its children are new');
  for (const p of fresh) t.true(p.pid > largest, `new process ${p.key} gets pid ${p.pid} > ${largest}`);
  t.is(new Set(more.map((p) => p.pid)).size, more.length, 'pids are unique');
  for (const p of more.filter((p) => known.has(p.key))) t.is(p.pid, known.get(p.key)!, p.key);
});
