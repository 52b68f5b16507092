import test from 'ava';
import { scratchDir } from './helpers/uwrx.js';
import {
  Clock,
  DEFAULT_STEP_NS,
  MONOTONIC_BASE_NS,
  TIME_MODE_CODE,
  type TimeConfig,
  type TimeMode,
  clockNs,
  freshT0Ns,
  gettimeofday,
  parseTimeMode,
  readT0File,
  time,
  wallOffsetNs,
  writeT0File,
} from '../src/reproducibility/time.js';
import { askDriver, buildDriver } from './native/cc.js';

const T0 = 1_767_225_600_123_456_789n; // 2026-01-01T00:00:00.123456789Z
const advancing: TimeConfig = { mode: 'advancing', t0Ns: T0, stepNs: DEFAULT_STEP_NS };

test('advancing: every query moves the process clock by one step, on every clock', (t) => {
  t.is(clockNs(advancing, 0, Clock.REALTIME), T0);
  t.is(clockNs(advancing, 1, Clock.MONOTONIC), MONOTONIC_BASE_NS + DEFAULT_STEP_NS);
  t.is(clockNs(advancing, 5, Clock.REALTIME_COARSE), T0 + 5n * DEFAULT_STEP_NS);
  t.is(clockNs(advancing, 3, Clock.BOOTTIME), MONOTONIC_BASE_NS + 3n * DEFAULT_STEP_NS);
  t.is(clockNs(advancing, 2, Clock.PROCESS_CPUTIME_ID), 2n * DEFAULT_STEP_NS);
  t.deepEqual(gettimeofday(advancing, 0), { sec: 1_767_225_600n, usec: 123_456n });
  t.is(time(advancing, 1000), 1_767_225_601n);
});

test('wall clocks start at T0 + the offset where the attempt squashes its files', (t) => {
  t.is(wallOffsetNs(0, 1_000_000_000), 1_000_000_000n);
  t.is(wallOffsetNs(2, 1_000_000_000n), 3_000_000_000n);
  const shifted: TimeConfig = { ...advancing, wallOffsetNs: wallOffsetNs(2, 1_000_000_000) };
  t.is(clockNs(shifted, 0, Clock.REALTIME), T0 + 3_000_000_000n);
  t.is(clockNs(shifted, 1, Clock.TAI), T0 + 3_000_000_000n + DEFAULT_STEP_NS);
  t.is(clockNs(shifted, 1, Clock.MONOTONIC), MONOTONIC_BASE_NS + DEFAULT_STEP_NS, 'only wall clocks move');
  t.is(time(shifted, 0), 1_767_225_603n);
});

test('frozen reads T0 forever; real leaves every clock to the kernel', (t) => {
  const frozen: TimeConfig = { ...advancing, mode: 'frozen' };
  t.is(clockNs(frozen, 0, Clock.REALTIME), T0);
  t.is(clockNs(frozen, 99, Clock.REALTIME), T0);
  t.is(clockNs(frozen, 99, Clock.MONOTONIC), MONOTONIC_BASE_NS);
  const real: TimeConfig = { ...advancing, mode: 'real' };
  t.is(clockNs(real, 0, Clock.REALTIME), null);
  t.is(gettimeofday(real, 0), null);
  t.is(time(real, 0), null);
});

test('clocks uwrx does not fake go to the kernel', (t) => {
  t.is(clockNs(advancing, 0, 10), null); // unassigned id: the kernel says EINVAL
  t.is(clockNs(advancing, 0, (~5 << 3) | 3), null); // an fd clock (PTP device on fd 5)
  // CPU clocks of another process or thread (clock_getcpuclockid) advance like ours.
  t.is(clockNs(advancing, 4, (~1234 << 3) | 2), clockNs(advancing, 4, Clock.PROCESS_CPUTIME_ID));
  t.is(clockNs(advancing, 4, (~1234 << 3) | 4 | 2), clockNs(advancing, 4, Clock.THREAD_CPUTIME_ID));
});

test('a loop polling CLOCK_MONOTONIC until 2 s passed ends after 2 s / step queries', (t) => {
  let n = 0;
  const start = clockNs(advancing, n++, Clock.MONOTONIC)!;
  while (clockNs(advancing, n++, Clock.MONOTONIC)! - start < 2_000_000_000n) if (n > 1e7) break;
  t.is(n, Number(2_000_000_000n / DEFAULT_STEP_NS) + 1);
});

test('the C implementation gives the same answers', (t) => {
  const driver = buildDriver('time_driver', ['test/native/time_driver.c', 'src/native/common/dettime.c']);
  const clocks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -2, -6, -3, -8 * 77 - 1, -8 * 77 - 5, (~9 << 3) | 3, (~9 << 3) | 6];
  const cases: { mode: TimeMode; t0: bigint; step: bigint; query: bigint; clock: number; offset: bigint }[] = [];
  for (const mode of ['advancing', 'frozen', 'real'] as const)
    for (const t0 of [T0, 0n, -1_500_000_001n, 999_999_999n])
      for (const step of [DEFAULT_STEP_NS, 1n, 333n])
        for (const query of [0n, 1n, 7n, 1_000_001n])
          for (const clock of clocks)
            for (const offset of [0n, wallOffsetNs(0, 1_000_000_000), wallOffsetNs(3, 7)]) cases.push({ mode, t0, step, query, clock, offset });
  const answers = askDriver(driver, cases.map((c) => `${TIME_MODE_CODE[c.mode]} ${c.t0} ${c.step} ${c.query} ${c.clock} ${c.offset}`));
  const expected = cases.map((c) => {
    const config: TimeConfig = { mode: c.mode, t0Ns: c.t0, stepNs: c.step, wallOffsetNs: c.offset };
    const ns = clockNs(config, c.query, c.clock);
    const tod = gettimeofday(config, c.query);
    const sec = time(config, c.query);
    return `clock ${ns === null ? '0' : `1 ${ns}`} tod ${tod === null ? '0' : `1 ${tod.sec} ${tod.usec}`} time ${sec === null ? '0' : `1 ${sec}`}`;
  });
  t.deepEqual(answers, expected);
});

test('T0 and mode options', async (t) => {
  t.is(freshT0Ns(1_767_225_600_999), 1_767_225_600_000_000_000n);
  t.is(parseTimeMode('frozen'), 'frozen');
  t.throws(() => parseTimeMode('slow'), { message: "unknown time mode 'slow' (expected advancing, frozen, real)" });
  const dir = scratchDir('uwrx-t0-');
  await writeT0File(dir, T0);
  t.is(await readT0File(dir), T0);
});
