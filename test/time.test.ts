import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from './helpers/uwrx.js';
import {
  Clock,
  DEFAULT_STEP_NS,
  MONOTONIC_BASE_NS,
  type TimeConfig,
  forkClock,
  freshT0Ns,
  gettimeofday,
  joinClock,
  layerTimes,
  newClock,
  newWait,
  parseTimeMode,
  peekClock,
  readClock,
  readT0File,
  time,
  waitAbsolute,
  waitEnd,
  waitRelative,
  wallOffsetNs,
  writeT0File,
} from '../src/reproducibility/time.js';
import { askDriver, buildDriver, repoRoot } from './native/cc.js';
import { runTimeScript, vectorScripts } from './helpers/time-script.js';

const T0 = 1_767_225_600_123_456_789n; // 2026-01-01T00:00:00.123456789Z
const advancing: TimeConfig = { mode: 'advancing', t0Ns: T0, stepNs: DEFAULT_STEP_NS };

test('advancing: every read moves the process clock by one step, on every clock', (t) => {
  const k = newClock();
  t.is(readClock(advancing, k, Clock.REALTIME), T0);
  t.is(readClock(advancing, k, Clock.MONOTONIC), MONOTONIC_BASE_NS + DEFAULT_STEP_NS);
  t.is(readClock(advancing, k, Clock.PROCESS_CPUTIME_ID), 2n * DEFAULT_STEP_NS);
  t.deepEqual(gettimeofday(advancing, k), { sec: 1_767_225_600n, usec: 123_456n + 30n });
  t.is(time(advancing, k), 1_767_225_600n);
  t.is(peekClock(advancing, k, Clock.BOOTTIME), MONOTONIC_BASE_NS + 5n * DEFAULT_STEP_NS, 'a peek does not move');
  t.is(peekClock(advancing, k, Clock.BOOTTIME), MONOTONIC_BASE_NS + 5n * DEFAULT_STEP_NS);
});

test('wall clocks start at T0 + the offset where the attempt squashes its files', (t) => {
  t.is(wallOffsetNs(0, 1_000_000_000), 1_000_000_000n);
  t.is(wallOffsetNs(2, 1_000_000_000n), 3_000_000_000n);
  const shifted: TimeConfig = { ...advancing, wallOffsetNs: wallOffsetNs(2, 1_000_000_000) };
  const k = newClock();
  t.is(readClock(shifted, k, Clock.REALTIME), T0 + 3_000_000_000n);
  t.is(readClock(shifted, k, Clock.TAI), T0 + 3_000_000_000n + DEFAULT_STEP_NS);
  t.is(readClock(shifted, k, Clock.MONOTONIC), MONOTONIC_BASE_NS + 2n * DEFAULT_STEP_NS, 'only wall clocks move');
});

test("an attempt's wall clocks start past the newest file its parents left; edits are judged against their latest T0", (t) => {
  const s = 1_000_000_000n;
  t.deepEqual(layerTimes(T0, s, []), { wallOffsetNs: s, recordedSinceNs: 0n, recordedNewestNs: 0n }, 'no parents: one interval');
  // parents that ended long before: one interval per parent and one more
  const old = [{ t0Ns: T0 - 100n * s, newestNs: T0 - 90n * s }, { t0Ns: T0 - 200n * s, newestNs: T0 - 150n * s }];
  t.deepEqual(layerTimes(T0, s, old), { wallOffsetNs: 3n * s, recordedSinceNs: T0 - 100n * s, recordedNewestNs: T0 - 90n * s });
  // a parent whose virtual times ran ahead of this attempt's T0: whole intervals past them
  t.is(layerTimes(T0, s, [{ t0Ns: T0 - 5n * s, newestNs: T0 + 7n * s + 1n }]).wallOffsetNs, 9n * s);
  // a parent without newest.txt counts as having ended at this attempt's T0
  t.deepEqual(layerTimes(T0, s, [{}]), { wallOffsetNs: 2n * s, recordedSinceNs: 0n, recordedNewestNs: T0 });
  // a parent's start (to the ms) decides what counts as edited since, not its whole-second T0:
  // sources written in the second before it started are older than what it built
  t.is(layerTimes(T0, s, [{ t0Ns: T0 - 5n * s, startedNs: T0 - 5n * s + 700_000_000n }]).recordedSinceNs, T0 - 5n * s + 700_000_000n);
  // a replay's host file edited since its run: whole intervals past it, with or without parents
  t.is(layerTimes(T0, s, [], T0 + 42n * s + 1n).wallOffsetNs, 43n * s);
  t.is(layerTimes(T0, s, old, T0 + 42n * s + 1n).wallOffsetNs, 43n * s);
  t.is(layerTimes(T0, s, [], T0 + s).wallOffsetNs, 2n * s, 'one at the start: the next interval');
  t.is(layerTimes(T0, s, [], T0 + s - 1n).wallOffsetNs, s, 'one older than the clock changes nothing');
  t.is(layerTimes(T0, s, old, T0 + 2n * s).wallOffsetNs, 3n * s, 'nor one older than the parents\' start');
  t.is(layerTimes(T0, s, [], T0 + 42n * s).recordedNewestNs, 0n, 'nor what the parents left');
});

test('frozen reads the bases forever; real leaves every clock to the kernel', (t) => {
  const frozen: TimeConfig = { ...advancing, mode: 'frozen' };
  const k = newClock();
  t.is(readClock(frozen, k, Clock.REALTIME), T0);
  t.is(readClock(frozen, k, Clock.REALTIME), T0);
  t.is(readClock(frozen, k, Clock.MONOTONIC), MONOTONIC_BASE_NS);
  const real: TimeConfig = { ...advancing, mode: 'real' };
  t.is(readClock(real, k, Clock.REALTIME), null);
  t.is(gettimeofday(real, k), null);
  t.is(time(real, k), null);
});

test('clocks uwrx does not fake go to the kernel', (t) => {
  const k = newClock();
  t.is(readClock(advancing, k, 10), null); // unassigned id: the kernel says EINVAL
  t.is(readClock(advancing, k, (~5 << 3) | 3), null); // an fd clock (PTP device on fd 5)
  t.is(k.nowNs, 0n, 'reads the kernel answers do not move the clock');
  // CPU clocks of another process or thread (clock_getcpuclockid) read the CPU clock.
  t.is(readClock(advancing, k, (~1234 << 3) | 2), 0n);
  t.is(readClock(advancing, k, (~1234 << 3) | 4 | 2), DEFAULT_STEP_NS);
});

test('a loop polling CLOCK_MONOTONIC until 2 s passed ends after 2 s / step reads', (t) => {
  const k = newClock();
  let n = 1;
  const start = readClock(advancing, k, Clock.MONOTONIC)!;
  while (readClock(advancing, k, Clock.MONOTONIC)! - start < 2_000_000_000n && n < 1e7) n++;
  t.is(n, Number(2_000_000_000n / DEFAULT_STEP_NS));
});

test('a wait that timed out moves the clock by its timeout; one that ended early by one step', (t) => {
  const k = newClock();
  const w = newWait();
  waitRelative(advancing, k, w, 1_000n, 500_000_000n);
  t.true(waitEnd(advancing, k, w, 2_000_000_000n), 'real time passed the deadline: timed out');
  t.is(k.nowNs, 500_000_000n, 'by the timeout, however late the thread came back');
  waitRelative(advancing, k, w, 0n, 500_000_000n);
  t.false(waitEnd(advancing, k, w, 100_000_000n), 'an event ended it after 100 ms');
  t.is(k.nowNs, 500_000_000n + DEFAULT_STEP_NS);
  t.false(waitEnd(advancing, k, w, 10n ** 12n), 'no wait: nothing moves');
  t.is(k.nowNs, 500_000_000n + DEFAULT_STEP_NS);
});

test('an absolute deadline on the virtual clock lasts as long in real time', (t) => {
  const k = newClock();
  const w = newWait();
  const deadline = readClock(advancing, k, Clock.REALTIME)! + 100_000_000n; // pthread_cond_timedwait(now + 100 ms)
  t.is(waitAbsolute(advancing, k, w, 0n, Clock.REALTIME, deadline), 100_000_000n - DEFAULT_STEP_NS);
  t.true(waitEnd(advancing, k, w, 100_000_000n));
  t.is(peekClock(advancing, k, Clock.REALTIME), deadline, 'the clock reads the deadline when it timed out');
  t.is(waitAbsolute(advancing, k, w, 0n, Clock.MONOTONIC, 5n), 0n, 'a deadline in the past: no wait');
  t.false(w.active);
  t.is(waitAbsolute(advancing, k, w, 0n, Clock.PROCESS_CPUTIME_ID, 5n), null, 'CPU clocks are left to the kernel');
});

test('children start after their parent, apart from each other; a reap moves the parent past the child', (t) => {
  const parent = newClock();
  for (let i = 0; i < 100; i++) readClock(advancing, parent, Clock.MONOTONIC);
  const a = forkClock(advancing, parent, 7n);
  const b = forkClock(advancing, parent, 123_456_789n);
  t.is(a.nowNs, parent.nowNs + 8n);
  t.is(b.nowNs, parent.nowNs + 1n + (123_456_789n % 1_000_000n));
  t.is(a.cpuNs, 0n);
  t.is(forkClock(advancing, null, 99n).nowNs, 0n, 'the command starts at 0');
  const w = newWait();
  waitRelative(advancing, b, w, 0n, 3_000_000_000n);
  waitEnd(advancing, b, w, 3_000_000_000n);
  readClock(advancing, b, Clock.MONOTONIC);
  joinClock(advancing, parent, b);
  t.is(parent.nowNs, b.nowNs);
  t.is(parent.childrenCpuNs, DEFAULT_STEP_NS);
  joinClock(advancing, parent, a);
  t.is(parent.nowNs, b.nowNs, 'never backwards');
});

test('the C implementation answers every script of the shared vectors as recorded', async (t) => {
  const fixture = JSON.parse(await readFile(join(repoRoot, 'test/fixtures/time-vectors.json'), 'utf8')) as {
    scripts: { name: string; ops: string[]; expect: string[] }[];
  };
  t.deepEqual(fixture.scripts.map((s) => ({ name: s.name, ops: s.ops })), vectorScripts(), 'the fixture holds the current scripts');
  const driver = buildDriver('time_driver', ['test/native/time_driver.c', 'src/native/common/dettime.c']);
  const c = askDriver(driver, fixture.scripts.flatMap((s) => s.ops));
  t.deepEqual(c, fixture.scripts.flatMap((s) => s.expect), 'C');
  t.deepEqual(fixture.scripts.flatMap((s) => runTimeScript(s.ops)), fixture.scripts.flatMap((s) => s.expect), 'TypeScript');
});

test('reads folded in at once move the clocks as the same reads one by one (C, the in-process path)', (t) => {
  const driver = buildDriver('time_driver', ['test/native/time_driver.c', 'src/native/common/dettime.c']);
  for (const mode of [0, 1]) {
    const config = `config ${mode} ${T0} ${DEFAULT_STEP_NS} 0`;
    const oneByOne = askDriver(driver, [config, 'fork 0 -1 7', ...Array.from({ length: 37 }, (_, i) => `read 0 ${i % 3}`), 'state 0']);
    const folded = askDriver(driver, [config, 'fork 0 -1 7', 'after 0 37', 'state 0']);
    t.is(folded.at(-1), oneByOne.at(-1), `mode ${mode}`);
    // and back: a child that forked after 30 of them
    t.deepEqual(askDriver(driver, [config, 'fork 0 -1 7', 'after 0 37', 'after 0 -7', 'state 0']).at(-1), askDriver(driver, [config, 'fork 0 -1 7', 'after 0 30', 'state 0']).at(-1));
  }
});

test('T0 and mode options', async (t) => {
  t.is(freshT0Ns(1_767_225_600_999), 1_767_225_600_000_000_000n);
  t.is(parseTimeMode('frozen'), 'frozen');
  t.throws(() => parseTimeMode('slow'), { message: "unknown time mode 'slow' (expected advancing, frozen, real)" });
  const dir = scratchDir('uwrx-t0-');
  await writeT0File(dir, T0);
  t.is(await readT0File(dir), T0);
});
