// Clock reads while a timer is armed (docs/reproducibility.md, "Timers"): the recorder
// answers them in process until the timer's real deadline, and the first call past it is
// notified, where the timer fires; the clocks are the notification path's.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const timerReads = buildDriver('timer_reads', ['test/native/timer_reads.c']);

function notified(attemptDir: string): Record<string, number> {
  const s = JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as { notifications?: Record<string, number> };
  return s.notifications ?? {};
}

test('reads with an itimer armed are answered in process until it is due, with the clocks of notified ones', async (t) => {
  const cwd = scratchDir('uwrx-timer-reads-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const fast = await uwrx(['run', '-q', '--build', 'fast', '--', timerReads, '2000'], { cwd });
  t.is(fast.status, 0, fast.stderr);
  const slow = await uwrx(['run', '-q', '--no-fast-path', '--build', 'slow', '--', timerReads, '2000'], { cwd });
  t.is(slow.status, 0, slow.stderr);
  // 10 us a read; the timer's fire moves the clock to its deadline, and the read after it
  // one step on
  t.is(
    fast.stdout,
    'armed: 40000000 ns, 40000 us over 2000 reads each\nfired: 1, 100010000 ns after it was armed\ndisarmed: 20000000 ns over 2000 reads\n',
  );
  t.is(slow.stdout, fast.stdout);
  const inProcess = notified(path.join(cwd, 'fast/0/0'));
  const reads = (inProcess.clock_gettime ?? 0) + (inProcess.gettimeofday ?? 0);
  // the read past the deadline, where the timer fires
  t.true(reads >= 1 && reads <= 3, JSON.stringify(inProcess));
  const all = notified(path.join(cwd, 'slow/0/0'));
  t.true((all.clock_gettime ?? 0) + (all.gettimeofday ?? 0) >= 6000, JSON.stringify(all));
});
