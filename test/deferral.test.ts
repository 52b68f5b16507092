// Deferred answers in uwrx-init (docs/architecture.md, "uwrx-init"): a feature may answer
// a notification later, from Node, while the rest of the tree goes on. The deferral test
// feature (UWRX_TEST_DEFERRAL=1) defers the control call UWRX_CTL_TEST_DEFER(ms, value);
// Node answers it `ms` later with value + 1000 x the answers uwrx-init holds open then
// (asked over the same channel), so these runs cross the channel both ways.
import test from 'ava';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAttemptStatus } from '../src/record/layout.js';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const probe = buildDriver('defer_probe', ['test/native/defer_probe.c']);
const env = { ...process.env, UWRX_TEST_DEFERRAL: '1' };

function fields(line: string): Record<string, number> {
  return Object.fromEntries(line.trim().split(/\s+/).map((w) => w.split('=')).map(([k, v]) => [k!, Number(v)]));
}

/** Runs the probe under uwrx (real time: the probe measures its wait). */
async function runProbe(mode: string, ms: number) {
  const cwd = scratchDir('uwrx-defer-');
  try {
    const r = await uwrx(['run', '-q', '--time', 'real', '--', probe, mode, String(ms)], { cwd, env });
    const deferred = /deferred answers: (\d+) open, (\d+) answered, (\d+) dropped/.exec(r.stderr);
    return {
      status: r.status,
      stderr: r.stderr,
      out: fields(r.stdout),
      deferred: deferred ? { open: Number(deferred[1]), answered: Number(deferred[2]), dropped: Number(deferred[3]) } : undefined,
      attemptStatus: await readAttemptStatus(path.join(cwd, 'build', '0', '0')),
    };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

test('a call answered from Node 300 ms later blocks only its caller: the tree makes progress meanwhile', async (t) => {
  const r = await runProbe('progress', 300);
  t.is(r.status, 0, r.stderr);
  // the answer is Node's: the value plus one answer held open (this one) while it waited
  t.is(r.out.result, 1007);
  t.is(r.out.errno, 0);
  t.true(r.out.elapsed_ms! >= 300, `answered after ${r.out.elapsed_ms} ms`);
  // the sibling's notified calls went on while the call waited
  t.true(r.out.progress! > 0, `sibling made ${r.out.progress} notified calls during the wait`);
  t.deepEqual(r.deferred, { open: 0, answered: 1, dropped: 0 });
});

// A handler held in a call it did not announce (a slow disk, a lock another handler
// holds) is caught by the watcher (init/notify.c): another handler thread takes the turn
// once the receiver has been in one call for 10 ms, so the rest of the tree goes on.
(os.availableParallelism() > 1 ? test : test.skip)('a handler stuck in a call holds up only its caller: another handler thread takes the turn', async (t) => {
  const r = await runProbe('stuck', 500);
  t.is(r.status, 0, r.stderr);
  t.is(r.out.result, 7);
  t.is(r.out.errno, 0);
  t.true(r.out.elapsed_ms! >= 500, `answered after ${r.out.elapsed_ms} ms`);
  // without a second receiver the sibling's next notified call waits out the 500 ms
  t.true(r.out.progress! >= 10, `sibling made ${r.out.progress} notified calls while the handler was held`);
});

test('a signal to a thread waiting for a deferred answer is delivered after it, without EINTR', async (t) => {
  // WAIT_KILLABLE_RECV: once uwrx-init took the call, only a fatal signal ends the wait
  const r = await runProbe('signal', 300);
  t.is(r.status, 0, r.stderr);
  t.is(r.out.result, 1007);
  t.is(r.out.errno, 0);
  t.is(r.out.handled, 1);
  t.deepEqual(r.deferred, { open: 0, answered: 1, dropped: 0 });
});

test('a process killed while its call waits ends the run at once and leaves nothing open', async (t) => {
  // Node would answer after 60 s: the run must not wait for it
  const r = await runProbe('kill', 60_000);
  t.is(r.status, 0, r.stderr);
  t.is(r.out.killed, 1);
  t.is(r.out.signal, 9);
  t.deepEqual(r.deferred, { open: 0, answered: 0, dropped: 1 });
  t.notRegex(r.stderr, /problem|error/i);
  t.is(r.attemptStatus?.problems, undefined);
});

test('a request Node does not answer in time fails the waiting call and is counted as a problem', async (t) => {
  // Node answers after 5 s; uwrx-init gives up after 300 ms
  const r = await runProbe('timeout', 5000);
  t.is(r.status, 0, r.stderr);
  t.is(r.out.result, -1);
  t.is(r.out.errno, 5); // EIO
  t.true(r.out.elapsed_ms! < 5000, `gave up after ${r.out.elapsed_ms} ms`);
  t.deepEqual(r.deferred, { open: 0, answered: 1, dropped: 0 });
  t.deepEqual(r.attemptStatus?.problems, [{ kind: 'request-timeout', count: 1 }]);
});

test('without the test switch the deferral call does not exist (ENOSYS)', async (t) => {
  const cwd = scratchDir('uwrx-defer-');
  try {
    const r = await uwrx(['run', '-q', '--time', 'real', '--', probe, 'progress', '300'], { cwd, env: { ...process.env, UWRX_TEST_DEFERRAL: '' } });
    t.is(r.status, 0, r.stderr);
    const out = fields(r.stdout);
    t.is(out.result, -1);
    t.is(out.errno, 38);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
