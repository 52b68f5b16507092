// The TypeScript side of the deterministic-time scripts of test/native/time_driver.c:
// the same operations and answer lines, over src/reproducibility/time.ts.
import {
  type ProcessClock,
  type ProcessTimer,
  type TimeConfig,
  type TimedWait,
  TIME_MODES,
  fireTimer,
  forkClock,
  gettimeofday,
  joinClock,
  newClock,
  newTimer,
  newWait,
  peekClock,
  readClock,
  rusage,
  setTimer,
  time,
  times,
  waitAbsolute,
  waitEnd,
  waitRelative,
} from '../../src/reproducibility/time.js';

const N = 16;

export function runTimeScript(ops: readonly string[]): string[] {
  let config: TimeConfig = { mode: 'advancing', t0Ns: 0n, stepNs: 0n };
  let clocks: ProcessClock[] = [];
  let waits: TimedWait[] = [];
  let timers: ProcessTimer[] = [];
  const reset = () => {
    clocks = Array.from({ length: N }, newClock);
    waits = Array.from({ length: N }, newWait);
    timers = Array.from({ length: N }, newTimer);
  };
  reset();
  const flag = (b: boolean) => (b ? '1' : '0');
  return ops.map((line) => {
    const [op, ...rest] = line.trim().split(/\s+/);
    const v = rest.map((x) => BigInt(x));
    const i = (n: number) => Number(v[n]);
    switch (op) {
      case 'config':
        config = { mode: TIME_MODES[i(0)]!, t0Ns: v[1]!, stepNs: v[2]!, wallOffsetNs: v[3]! };
        reset();
        return 'ok';
      case 'fork': {
        const child = forkClock(config, i(1) < 0 ? null : clocks[i(1)]!, v[2]!);
        clocks[i(0)] = child;
        return `${child.nowNs} ${child.cpuNs}`;
      }
      case 'read':
      case 'peek': {
        const ns = (op === 'read' ? readClock : peekClock)(config, clocks[i(0)]!, i(1));
        return ns === null ? '0' : `1 ${ns}`;
      }
      case 'tod': {
        const tv = gettimeofday(config, clocks[i(0)]!);
        return tv === null ? '0' : `1 ${tv.sec} ${tv.usec}`;
      }
      case 'time': {
        const sec = time(config, clocks[i(0)]!);
        return sec === null ? '0' : `1 ${sec}`;
      }
      case 'rel': {
        const w = waits[i(1)]!;
        waitRelative(config, clocks[i(0)]!, w, v[2]!, v[3]!);
        return w.active ? `1 ${w.realDeadlineNs} ${w.virtualDeadlineNs}` : '0 0 0';
      }
      case 'abs': {
        const w = waits[i(1)]!;
        const remaining = waitAbsolute(config, clocks[i(0)]!, w, v[2]!, i(3), v[4]!);
        return remaining === null ? '0' : `1 ${remaining} ${flag(w.active)}`;
      }
      case 'end': {
        const out = waitEnd(config, clocks[i(0)]!, waits[i(1)]!, v[2]!);
        return `${flag(out)} ${clocks[i(0)]!.nowNs}`;
      }
      case 'join':
        joinClock(config, clocks[i(0)]!, clocks[i(1)]!);
        return `${clocks[i(0)]!.nowNs} ${clocks[i(0)]!.childrenCpuNs}`;
      case 'tset':
        setTimer(config, clocks[i(0)]!, timers[i(1)]!, v[2]!, v[3]!, v[4]!);
        return flag(timers[i(1)]!.active);
      case 'tfire': {
        const fired = fireTimer(config, clocks[i(0)]!, timers[i(1)]!, v[2]!);
        return `${flag(fired)} ${clocks[i(0)]!.nowNs}`;
      }
      case 'times': {
        const out = times(config, clocks[i(0)]!, v[1]!);
        return out === null ? '0' : `1 ${out.join(' ')}`;
      }
      case 'rusage': {
        const r = rusage(config, clocks[i(0)]!, v[1]! !== 0n);
        return r === null ? '0' : `1 ${r.userNs} ${r.sysNs}`;
      }
      case 'state': {
        const k = clocks[i(0)]!;
        return `${k.nowNs} ${k.cpuNs} ${k.childrenCpuNs}`;
      }
      default:
        return 'error';
    }
  });
}

const T0 = 1_767_225_600_123_456_789n;

/** The scripts of test/fixtures/time-vectors.json: a grid of configurations, each
 * running the same story (reads on every clock, waits that time out and end early,
 * absolute deadlines, forks, a reap, timers). */
export function vectorScripts(): { name: string; ops: string[] }[] {
  const clocks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -2, -6, -3, -8 * 77 - 1, -8 * 77 - 5, (~9 << 3) | 3, (~9 << 3) | 6];
  const scripts: { name: string; ops: string[] }[] = [];
  for (let mode = 0; mode < 3; mode++)
    for (const t0 of [T0, -1_500_000_001n])
      for (const step of [10_000n, 333n, 1_000_000n])
        for (const offset of [0n, 1_000_000_028n]) {
          const ops = [`config ${mode} ${t0} ${step} ${offset}`, 'fork 0 -1 12345'];
          for (const c of clocks) ops.push(`read 0 ${c}`, `peek 0 ${c}`);
          ops.push('tod 0', 'time 0', 'state 0');
          ops.push('rel 0 0 5000 100000000', 'end 0 0 100005000', 'state 0');
          ops.push('rel 0 1 200000000 100000000', 'end 0 1 250000000', 'state 0');
          ops.push('rel 0 2 0 0', 'end 0 2 1', 'rel 0 2 0 -5', 'end 0 2 1');
          for (const c of [0, 1, 7, 2, 12, -2])
            ops.push(`peek 0 ${c}`, `abs 0 3 1000000000 ${c} ${t0 + offset + 3_000_000_000n}`, 'end 0 3 1500000000',
              `abs 0 3 1000000000 ${c} 100500000000`, 'end 0 3 9000000000', `abs 0 3 0 ${c} -9223372036854775807`, 'state 0');
          ops.push('fork 1 0 18446744073709551615', 'fork 2 0 999999', 'read 1 1', 'rel 1 4 0 7000000000',
            'end 1 4 7000000000', 'read 1 2', 'join 0 1', 'join 0 2', 'state 0', 'state 1',
            'times 0 10000000', 'times 1 10000000', 'times 0 0', 'rusage 0 0', 'rusage 0 1', 'rusage 1 0', 'state 0');
          ops.push('tset 0 0 100 0 0', 'tset 0 0 100 50 0', 'tfire 0 0 149', 'tfire 0 0 150', 'tfire 0 0 10000',
            'tset 0 1 0 1000 300', 'tfire 0 1 999', 'tfire 0 1 2000', 'tfire 0 1 2100', 'tfire 0 1 2200', 'state 0');
          ops.push('rel 0 5 9223372036854775000 9000', 'end 0 5 9223372036854775807', 'state 0');
          scripts.push({ name: `mode ${mode} t0 ${t0} step ${step} offset ${offset}`, ops });
        }
  return scripts;
}
