// Timed waits ended in process (src/native/include/uwrx_recorder.h, "clock events"): an
// event loop's epoll_wait, epoll_pwait, poll, select, ppoll and pselect with a timeout, and sleeps
// (relative, or until a deadline), are made from the recorder's gate while the clock is leased, and their ends written as clock events. The
// program reads the clocks the notification path gives (a replay with
// UWRX_INPROCESS_WAITS=0, where every such wait is notified, prints the same values),
// without a notification per wait.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const driver = buildDriver('wait_events', ['test/native/wait_events.c'], ['-pthread']);

function notified(attemptDir: string): Record<string, number> {
  const s = JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as { notifications?: Record<string, number> };
  return s.notifications ?? {};
}

// (libc's select is pselect6, its nanosleep clock_nanosleep)
const waitCalls = ['epoll_wait', 'epoll_pwait', 'poll', 'ppoll', 'select', 'pselect6', 'nanosleep', 'clock_nanosleep'];
const waits = (n: Record<string, number>) => waitCalls.reduce((sum, call) => sum + (n[call] ?? 0), 0);

for (const mode of ['loop', 'threads', 'fork'] as const) {
  test(`${mode}: timed waits end in process with the clocks of notified ones`, async (t) => {
    const cwd = scratchDir('uwrx-wait-events-');
    const rounds = 12;
    const first = await uwrx(['run', '-q', '--', driver, mode, String(rounds)], { cwd });
    t.is(first.status, 0, first.stderr);
    const replay = await uwrx(['run', '-q', '--replay', 'build/0/0'], { cwd, env: { ...process.env, UWRX_INPROCESS_WAITS: '0' } });
    t.is(replay.status, 0, replay.stderr);
    t.is(replay.stdout, first.stdout, 'the same clock values, wait by wait');
    const lines = first.stdout.trim().split('\n');
    t.is(lines.length, mode === 'loop' ? rounds : mode === 'threads' ? 2 * rounds : 3 * rounds + 1);
    // a wait that timed out moved the clock to its deadline, one that found its
    // descriptor ready by a step
    // descriptor ready by a step; a select with a zero timeout moves nothing, a 1 ms
    // select and two 1 ms sleeps 3 ms (and the read between, a step), a sleep until 1 ms
    // after a read to that deadline, and one until a deadline passed not at all, a ppoll
    // that times out 1 ms and a pselect that finds its descriptor ready a step, a usleep
    // of 1 ms 1 ms and a sleep(0) nothing
    for (const line of lines.filter((l) => l.includes(':'))) t.regex(line, /: 0 2010000 1 20000 0 0 6020000 \d+\.\d{6}$/);
    const inProcess = notified(path.join(cwd, 'build/0/0'));
    const everyWait = notified(path.join(cwd, 'build/0/1'));
    t.is(waits(inProcess), 0, JSON.stringify(inProcess));
    // eleven timed waits a round (neither the select with a zero timeout nor sleep(0),
    // both made from the gate: they change no clock)
    t.is(waits(everyWait), 11 * lines.filter((l) => l.includes(':')).length, JSON.stringify(everyWait));
    // the clock reads after the waits are answered in process as well; uwrx-init folds
    // the events once the header's UWRX_REC_CLOCK_EVENTS are in use (a control call)
    // (but the one after a notified wait4: a child that ended before its parent's wait
    // is joined there, and the thread's next read ends that wait)
    t.true((inProcess.clock_gettime ?? 0) <= (inProcess.wait4 ?? 0), JSON.stringify(inProcess));
    t.true((inProcess.uwrx_control ?? 0) <= 2 + Math.ceil(waits(everyWait) / 16), JSON.stringify(inProcess));
  });
}

// A real event loop: asyncio's sleeps are epoll_wait with a timeout, its clock
// time.monotonic(); the loop's view of time is the same either way.
test('python asyncio: sleeps end in process, the loop sees the same times', async (t) => {
  const cwd = scratchDir('uwrx-wait-events-');
  const script = [
    'import asyncio, time',
    'async def main():',
    '    loop = asyncio.get_running_loop()',
    '    start = loop.time()',
    '    for i in range(20):',
    '        await asyncio.sleep(0.002)',
    '        print(i, round((loop.time() - start) * 1e6))',
    'asyncio.run(main())',
  ].join('\n');
  const first = await uwrx(['run', '-q', '--', 'python3', '-c', script], { cwd });
  t.is(first.status, 0, first.stderr);
  t.is(first.stdout.trim().split('\n').length, 20);
  const replay = await uwrx(['run', '-q', '--replay', 'build/0/0'], { cwd, env: { ...process.env, UWRX_INPROCESS_WAITS: '0' } });
  t.is(replay.status, 0, replay.stderr);
  t.is(replay.stdout, first.stdout);
  const inProcess = notified(path.join(cwd, 'build/0/0'));
  t.is(inProcess.epoll_wait ?? 0, 0, JSON.stringify(inProcess));
  t.true((notified(path.join(cwd, 'build/0/1')).epoll_wait ?? 0) >= 20);
});
