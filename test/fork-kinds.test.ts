// Processes and threads the in-process recorder keeps answering for (test/native/
// fork_kinds.c): a child of a raw fork system call, which runs no atfork handler
// (Chromium's zygote forks its renderers so); a program whose fork made a call and
// exec'd a helper before the program's own image ended (that fork's few calls once
// decided its next images got no recorder library); a process with more threads in
// timed waits than the header once listed. Each run is replayed without the fast path,
// where every call is notified, and prints the same values.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const driver = buildDriver('fork_kinds', ['test/native/fork_kinds.c'], ['-pthread']);

function notified(attemptDir: string): Record<string, number> {
  const s = JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as { notifications?: Record<string, number> };
  return s.notifications ?? {};
}

async function bothWays(t: import('ava').ExecutionContext, args: string[]): Promise<[Record<string, number>, Record<string, number>]> {
  const cwd = scratchDir('uwrx-fork-kinds-');
  const first = await uwrx(['run', '-q', '--', driver, ...args], { cwd });
  t.is(first.status, 0, first.stderr);
  const replay = await uwrx(['run', '-q', '--no-fast-path', '--replay', 'build/0/0'], { cwd });
  t.is(replay.status, 0, replay.stderr);
  t.is(replay.stdout, first.stdout, 'the same values, every call notified');
  return [notified(path.join(cwd, 'build/0/0')), notified(path.join(cwd, 'build/0/1'))];
}

test('a child of a raw fork system call has its calls answered in process', async (t) => {
  const [inProcess, all] = await bothWays(t, ['raw']);
  // the child's 1000 reads in process; at most the parent's one read right after its
  // wait is notified, when that wait blocked (the child had not ended yet: the thread
  // stays marked until its next notified call, src/native/init/clocks.c)
  t.true((inProcess.clock_gettime ?? 0) <= 1, JSON.stringify(inProcess));
  t.true((inProcess.newfstatat ?? 0) < 10, JSON.stringify(inProcess));
  t.true((all.clock_gettime ?? 0) >= 1000 && (all.newfstatat ?? 0) >= 100, JSON.stringify(all));
});

test("a fork's calls before it execs a helper leave the program's next image its recorder", async (t) => {
  const [inProcess, all] = await bothWays(t, ['helper']);
  t.is(inProcess.clock_gettime ?? 0, 0, JSON.stringify(inProcess));
  t.true((all.clock_gettime ?? 0) >= 1000, JSON.stringify(all));
});

test('with 24 threads in timed waits the other threads read the clock in process', async (t) => {
  const [inProcess, all] = await bothWays(t, ['waiters', '24']);
  // the waiters' own reads after their waits stay notified
  t.true((inProcess.clock_gettime ?? 0) < 1000, JSON.stringify(inProcess));
  t.true((all.clock_gettime ?? 0) >= 20000, JSON.stringify(all));
});
