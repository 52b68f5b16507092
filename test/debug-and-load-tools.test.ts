// Tools people put under uwrx to debug and to load a program: gdb (ptrace inside the
// sandbox), valgrind (its own loader, which maps uwrx's ld.so shim itself, and a
// synthetic CPU that makes raw system calls: the notification path throughout) and
// stress-ng (timers, signals, futexes, semaphores, pipes, sockets and a fork storm at
// once, under deterministic time). Each one says what it says natively; what may differ
// is named in README.md, "Limits": the pid, addresses where valgrind's layout holds
// uwrx's ld.so shim, and the stack's addresses (the environment uwrx adds).
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { readProcessTable } from '../src/record/procs.js';
import { readAttemptStatus } from '../src/record/layout.js';
import { nativeAndRecordedDirs, scratchDir, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ gdb: 'gdb', valgrind: 'valgrind', 'stress-ng': 'stress-ng', cc: 'gcc' });

const PROGRAM = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  char *p = malloc(16);
  strcpy(p, "hello");
  int *lost = malloc(40);
  lost[0] = argc;
  FILE *f = fopen("out.txt", "w");
  fprintf(f, "%s %d\\n", p, lost[0]);
  fclose(f);
  char *bad = malloc(4);
  int uninitialised;
  memcpy(bad, &uninitialised, sizeof uninitialised);
  if (bad[0] == 'x') puts("x");
  printf("done %s\\n", p);
  free(p);
  return 0;
}
`;

/** Native's and uwrx's directories, each holding the program built with debug info. */
function twoTrees(prefix: string): { cwd: string; nat: string; rec: string } {
  const dirs = nativeAndRecordedDirs(prefix);
  for (const dir of [dirs.nat, dirs.rec]) {
    writeFileSync(path.join(dir, 'prog.c'), PROGRAM);
    execFileSync('cc', ['-g', '-O0', '-o', 'prog', 'prog.c'], { cwd: dir });
  }
  return dirs;
}

/** Output with what differs by design made equal: the directory, pids, addresses. */
function comparable(text: string, dir: string): string {
  return text
    .replaceAll(dir, 'DIR')
    .replace(/==\d+==/g, '==PID==')
    .replace(/\(process \d+\)/g, '(process PID)')
    .replace(/0x[0-9a-fA-F]+/g, 'ADDR');
}

test('gdb debugs a program inside as natively: breakpoint, stepping, variables, backtrace, exit', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const { cwd, nat, rec } = twoTrees('uwrx-gdb-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const args = ['-batch', '-nx', '-ex', 'break main', '-ex', 'run', '-ex', 'next', '-ex', 'next', '-ex', 'print p', '-ex', 'print argv[2]', '-ex', 'bt', '-ex', 'continue', '--args', './prog', 'one', 'two'];
  const native = spawnSync('gdb', args, { cwd: nat, encoding: 'utf8' });
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'gdb', ...args], { cwd: rec });
  t.is(r.status, native.status, r.stderr);
  t.regex(native.stdout, /Breakpoint 1, main \(argc=3/);
  t.regex(native.stdout, /"hello"/);
  t.regex(native.stdout, /"two"/);
  t.regex(native.stdout, /exited normally/);
  t.is(comparable(r.stdout, rec), comparable(native.stdout, nat), 'what gdb printed');
  t.is(comparable(r.stderr, rec), comparable(native.stderr, nat));
});

test('valgrind memcheck finds the same errors and leaks inside as natively', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const { cwd, nat, rec } = twoTrees('uwrx-valgrind-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const args = ['--leak-check=full', '--error-exitcode=3', './prog', 'a'];
  const native = spawnSync('valgrind', args, { cwd: nat, encoding: 'utf8' });
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'valgrind', ...args], { cwd: rec });
  // the uninitialised read makes memcheck exit with --error-exitcode
  t.is(native.status, 3, native.stderr);
  t.is(r.status, 3, r.stderr);
  t.is(r.stdout, native.stdout);
  t.regex(native.stderr, /Conditional jump or move depends on uninitialised value/);
  t.regex(native.stderr, /definitely lost: 44 bytes in 2 blocks/);
  t.is(comparable(r.stderr, rec), comparable(native.stderr, nat), "memcheck's report");
  // the program's file, read back through a later step
  const later = await uwrx(['run', '-q', '--build', '../b', '--step', '1', '--parent', '../b/0/0', '--', 'cat', 'out.txt'], { cwd: rec });
  t.is(later.stdout, readFileSync(path.join(nat, 'out.txt'), 'utf8'));
});

const STRESSORS = ['fork', 'pipe', 'timer', 'futex', 'sem', 'sock', 'sigq', 'poll', 'clock', 'mmap'];

test('stress-ng runs a mixed load to its timeout, every stressor working and verified, the tree recorded', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = scratchDir('uwrx-stress-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const args = [...STRESSORS.flatMap((s) => [`--${s}`, '1']), '--timeout', '2', '--verify', '--metrics-brief'];
  const r = await uwrx(['run', '-q', '--build', 'b', '--', 'stress-ng', ...args], { cwd });
  t.is(r.status, 0, r.stderr);
  // stress-ng reports on stderr
  t.regex(r.stderr, /successful run completed in [\d.]+s/);
  // (its own failures and errors are lines of those levels; --verify checks the results)
  t.notRegex(r.stderr, /^stress-ng: (fail|error):/m);
  for (const s of STRESSORS) {
    const line = r.stderr.split('\n').find((l) => new RegExp(`metrc: \\[\\d+\\] ${s} +\\d`).test(l));
    t.truthy(line, `${s} reported: ${r.stderr}`);
    const ops = Number(line!.split(/\s+/)[4]);
    t.true(ops > 0, `${s} did work: ${line}`);
  }
  // the stressors and the fork stressor's children are in the record; nothing lingered
  const list = await readProcessTable(path.join(cwd, 'b/0/0'));
  t.true(list.length > STRESSORS.length + 10, `${list.length} processes`);
  const status = readAttemptStatus(path.join(cwd, 'b/0/0'));
  t.true(status?.complete === true && status.terminated === undefined, JSON.stringify(status));
});
