// Deterministic time (DESIGN.md section 4, docs/reproducibility.md), the TypeScript half
// of src/native/common/dettime.h: the same pure functions over a process's clocks and a
// thread's timed wait, checked against the C half with test/fixtures/time-vectors.json.
// Nanoseconds are bigints (T0 in ns does not fit a double exactly).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { errnoText } from '../fs.js';

export type TimeMode = 'advancing' | 'frozen' | 'real';
export const TIME_MODES: readonly TimeMode[] = ['advancing', 'frozen', 'real'];

/** The numbers uwrx-init's dettime.h uses for each mode. */
export const TIME_MODE_CODE: Record<TimeMode, number> = { advancing: 0, frozen: 1, real: 2 };

export const DEFAULT_STEP_NS = 10_000n; // 10 us per read
export const MONOTONIC_BASE_NS = 100_000_000_000n; // 100 s of "uptime"
export const FORK_SPREAD_NS = 1_000_000n; // a child starts up to 1 ms after its parent

export interface TimeConfig {
  mode: TimeMode;
  /** Wall-clock start of the attempt, ns since the epoch. */
  t0Ns: bigint;
  /** Advancing mode: how far a process's clocks move per read (and per wait that ended early). */
  stepNs: bigint;
  /** Wall clocks start at t0Ns + wallOffsetNs (default 0n); see wallOffsetNs(). */
  wallOffsetNs?: bigint;
}

/** A process's clocks (uwrx_clock). */
export interface ProcessClock {
  /** Virtual time on the attempt's axis (0 = the command's start). */
  nowNs: bigint;
  /** Virtual CPU time of the process. */
  cpuNs: bigint;
  /** CPU time of the children it reaped. */
  childrenCpuNs: bigint;
}

/** A thread's timed wait in progress (uwrx_wait); real times on the supervisor's clock. */
export interface TimedWait {
  active: boolean;
  realDeadlineNs: bigint;
  virtualDeadlineNs: bigint;
}

export function newClock(): ProcessClock {
  return { nowNs: 0n, cpuNs: 0n, childrenCpuNs: 0n };
}

export function newWait(): TimedWait {
  return { active: false, realDeadlineNs: 0n, virtualDeadlineNs: 0n };
}

/** Where an attempt's wall clocks start relative to T0: where its own files' stat times
 * are squashed (T0 + (parents + 1) * interval), so a build never sees a file newer than
 * its clock (make's "clock skew detected"). Mirrors uwrx_time_wall_offset. */
export function wallOffsetNs(layers: number, intervalNs: bigint | number): bigint {
  return BigInt(layers + 1) * BigInt(intervalNs);
}

export const Clock = {
  REALTIME: 0,
  MONOTONIC: 1,
  PROCESS_CPUTIME_ID: 2,
  THREAD_CPUTIME_ID: 3,
  MONOTONIC_RAW: 4,
  REALTIME_COARSE: 5,
  MONOTONIC_COARSE: 6,
  BOOTTIME: 7,
  REALTIME_ALARM: 8,
  BOOTTIME_ALARM: 9,
  TAI: 11,
} as const;

type ClockKind = 'wall' | 'monotonic' | 'cpu' | 'pass';

function kindOf(clockId: number): ClockKind {
  if (clockId < 0) return (clockId & 3) === 3 ? 'pass' : 'cpu'; // ~pid << 3 | flags; 3 = fd clock
  switch (clockId) {
    case Clock.REALTIME:
    case Clock.REALTIME_COARSE:
    case Clock.REALTIME_ALARM:
    case Clock.TAI:
      return 'wall';
    case Clock.MONOTONIC:
    case Clock.MONOTONIC_RAW:
    case Clock.MONOTONIC_COARSE:
    case Clock.BOOTTIME:
    case Clock.BOOTTIME_ALARM:
      return 'monotonic';
    case Clock.PROCESS_CPUTIME_ID:
    case Clock.THREAD_CPUTIME_ID:
      return 'cpu';
    default:
      return 'pass';
  }
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

function sat(v: bigint): bigint {
  return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v;
}

/** Whether uwrx answers reads of `clockId` in this mode (false: the kernel does). */
export function timeFaked(config: TimeConfig, clockId: number): boolean {
  return config.mode !== 'real' && kindOf(clockId) !== 'pass';
}

/** The current value of a clock without moving it; null when the kernel answers. */
export function peekClock(config: TimeConfig, clock: ProcessClock, clockId: number): bigint | null {
  if (!timeFaked(config, clockId)) return null;
  const frozen = config.mode === 'frozen';
  switch (kindOf(clockId)) {
    case 'wall':
      return sat(config.t0Ns + (config.wallOffsetNs ?? 0n) + (frozen ? 0n : clock.nowNs));
    case 'monotonic':
      return sat(MONOTONIC_BASE_NS + (frozen ? 0n : clock.nowNs));
    default:
      return frozen ? 0n : clock.cpuNs;
  }
}

/** clock_gettime(clockId): the answer, then the clocks advance; null when the kernel answers. */
export function readClock(config: TimeConfig, clock: ProcessClock, clockId: number): bigint | null {
  const ns = peekClock(config, clock, clockId);
  if (ns !== null && config.mode === 'advancing') {
    clock.nowNs = sat(clock.nowNs + config.stepNs);
    clock.cpuNs = sat(clock.cpuNs + config.stepNs);
  }
  return ns;
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export function gettimeofday(config: TimeConfig, clock: ProcessClock): { sec: bigint; usec: bigint } | null {
  const ns = readClock(config, clock, Clock.REALTIME);
  if (ns === null) return null;
  const sec = floorDiv(ns, 1_000_000_000n);
  return { sec, usec: (ns - sec * 1_000_000_000n) / 1000n };
}

export function time(config: TimeConfig, clock: ProcessClock): bigint | null {
  const ns = readClock(config, clock, Clock.REALTIME);
  return ns === null ? null : floorDiv(ns, 1_000_000_000n);
}

/** times(): [return value, tms_utime, tms_stime, tms_cutime, tms_cstime] in ticks of
 * `tickNs`; a read. Null when the kernel answers. */
export function times(config: TimeConfig, clock: ProcessClock, tickNs: bigint): bigint[] | null {
  const mono = peekClock(config, clock, Clock.MONOTONIC);
  if (tickNs <= 0n || mono === null) return null;
  const frozen = config.mode === 'frozen';
  const out = [mono / tickNs, (frozen ? 0n : clock.cpuNs) / tickNs, 0n, (frozen ? 0n : clock.childrenCpuNs) / tickNs, 0n];
  readClock(config, clock, Clock.MONOTONIC);
  return out;
}

/** getrusage(): user and system time of the process or (`children`) its reaped
 * children; a read. Null when the kernel answers. */
export function rusage(config: TimeConfig, clock: ProcessClock, children: boolean): { userNs: bigint; sysNs: bigint } | null {
  if (peekClock(config, clock, Clock.PROCESS_CPUTIME_ID) === null) return null;
  const userNs = config.mode === 'frozen' ? 0n : children ? clock.childrenCpuNs : clock.cpuNs;
  readClock(config, clock, Clock.PROCESS_CPUTIME_ID);
  return { userNs, sysNs: 0n };
}

/** A thread starts a wait of at most `timeoutNs` at real time `realNowNs`. */
export function waitRelative(config: TimeConfig, clock: ProcessClock, wait: TimedWait, realNowNs: bigint, timeoutNs: bigint): void {
  wait.active = false;
  if (config.mode !== 'advancing' || timeoutNs <= 0n) return;
  wait.active = true;
  wait.realDeadlineNs = sat(realNowNs + timeoutNs);
  wait.virtualDeadlineNs = sat(clock.nowNs + timeoutNs);
}

/** A thread starts a wait until `deadlineNs` on `clockId`; the real time it should last
 * from now, or null for a clock left to the kernel. */
export function waitAbsolute(
  config: TimeConfig,
  clock: ProcessClock,
  wait: TimedWait,
  realNowNs: bigint,
  clockId: number,
  deadlineNs: bigint,
): bigint | null {
  wait.active = false;
  const kind = kindOf(clockId);
  if (kind !== 'wall' && kind !== 'monotonic') return null;
  const now = peekClock(config, clock, clockId);
  if (now === null) return null;
  let remaining = sat(deadlineNs - now);
  if (remaining < 0n) remaining = 0n;
  if (config.mode === 'advancing' && remaining > 0n) {
    wait.active = true;
    wait.realDeadlineNs = sat(realNowNs + remaining);
    wait.virtualDeadlineNs = sat(clock.nowNs + remaining);
  }
  return remaining;
}

/** The waiting thread shows up again at `realNowNs`: true when the wait timed out. */
export function waitEnd(config: TimeConfig, clock: ProcessClock, wait: TimedWait, realNowNs: bigint): boolean {
  if (!wait.active) return false;
  wait.active = false;
  if (config.mode !== 'advancing') return false;
  if (realNowNs >= wait.realDeadlineNs) {
    if (clock.nowNs < wait.virtualDeadlineNs) clock.nowNs = wait.virtualDeadlineNs;
    return true;
  }
  clock.nowNs = sat(clock.nowNs + config.stepNs);
  return false;
}

/** A process's timer (uwrx_timer): alarm/setitimer(ITIMER_REAL) or a timerfd. */
export interface ProcessTimer {
  active: boolean;
  realDeadlineNs: bigint;
  virtualDeadlineNs: bigint;
  intervalNs: bigint;
}

export function newTimer(): ProcessTimer {
  return { active: false, realDeadlineNs: 0n, virtualDeadlineNs: 0n, intervalNs: 0n };
}

/** Arms `timer` to expire `valueNs` from now (<= 0: disarms), then every `intervalNs`. */
export function setTimer(config: TimeConfig, clock: ProcessClock, timer: ProcessTimer, realNowNs: bigint, valueNs: bigint, intervalNs: bigint): void {
  timer.active = config.mode === 'advancing' && valueNs > 0n;
  if (!timer.active) return;
  timer.realDeadlineNs = sat(realNowNs + valueNs);
  timer.virtualDeadlineNs = sat(clock.nowNs + valueNs);
  timer.intervalNs = intervalNs > 0n ? intervalNs : 0n;
}

/** The process shows up at `realNowNs`: true when `timer` expired (its time moved). */
export function fireTimer(config: TimeConfig, clock: ProcessClock, timer: ProcessTimer, realNowNs: bigint): boolean {
  if (!timer.active || realNowNs < timer.realDeadlineNs) return false;
  const last = timer.intervalNs > 0n ? (realNowNs - timer.realDeadlineNs) / timer.intervalNs : 0n;
  const expiry = sat(timer.virtualDeadlineNs + last * timer.intervalNs);
  if (config.mode === 'advancing' && clock.nowNs < expiry) clock.nowNs = expiry;
  if (timer.intervalNs > 0n) {
    timer.realDeadlineNs = sat(timer.realDeadlineNs + (last + 1n) * timer.intervalNs);
    timer.virtualDeadlineNs = sat(expiry + timer.intervalNs);
  } else {
    timer.active = false;
  }
  return true;
}

/** A new process's clocks: its parent's at fork (null: the command) plus an offset from
 * its clock stream (prng.ts clockBits). */
export function forkClock(config: TimeConfig, parent: ProcessClock | null, random: bigint): ProcessClock {
  const child = { nowNs: parent ? parent.nowNs : 0n, cpuNs: 0n, childrenCpuNs: 0n };
  if (parent && config.mode === 'advancing') child.nowNs = sat(child.nowNs + 1n + (BigInt.asUintN(64, random) % FORK_SPREAD_NS));
  return child;
}

/** `parent` reaped `child`. */
export function joinClock(config: TimeConfig, parent: ProcessClock, child: ProcessClock): void {
  if (config.mode !== 'advancing') return;
  if (parent.nowNs < child.nowNs) parent.nowNs = child.nowNs;
  parent.childrenCpuNs = sat(parent.childrenCpuNs + sat(child.cpuNs + child.childrenCpuNs));
}

export function parseTimeMode(text: string): TimeMode {
  if ((TIME_MODES as readonly string[]).includes(text)) return text as TimeMode;
  throw new UsageError(`unknown time mode '${text}' (expected ${TIME_MODES.join(', ')})`);
}

/** T0 for a fresh attempt: now, to whole seconds so `date` output stays readable. */
export function freshT0Ns(now = Date.now()): bigint {
  return BigInt(Math.floor(now / 1000)) * 1_000_000_000n;
}

export const T0_FILE = 't0.txt';
/** newest.txt of an attempt: the newest time (ns since the epoch) a file of the attempt
 * showed at its end, times set explicitly by programs left out (docs/record.md). */
export const NEWEST_FILE = 'newest.txt';

/** A file of ns since the epoch (t0.txt, newest.txt); undefined when it is missing or
 * malformed (older attempts, attempts cut short). */
export function readNsFileSync(file: string): bigint | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
  return /^\d+$/.test(text) ? BigInt(text) : undefined;
}

export async function writeNewestFile(attemptDir: string, ns: bigint): Promise<void> {
  writeFileSync(join(attemptDir, NEWEST_FILE), `${ns}\n`);
}

/** How the times of files from the layers below relate to this attempt's clocks. */
export interface LayerTimes {
  /** Where the attempt's wall clocks start, relative to T0 (see attemptWallOffsetNs). */
  wallOffsetNs: bigint;
  /** When the latest parent of the chain started (its T0 when that is unknown; 0n: no
   * parents): a real file modified after it changed after (or while) its parents were
   * recorded. */
  recordedSinceNs: bigint;
  /** The newest time a parent's file showed: a real file modified since recordedSinceNs
   * shows a time after it, so it is never older than what the parents built from it. */
  recordedNewestNs: bigint;
}

/** The wall-clock start of an attempt and what it needs of its parents' times. The
 * clocks start one interval per parent plus one after T0 (as the attempt's own files
 * did before their change times were kept), and at least one interval after the newest
 * file a parent left (its virtual times can run ahead of real time), in whole intervals,
 * so no inherited file is newer than the clock. A parent without newest.txt counts as
 * T0 (it ran before this attempt started). `hostNewestNs` (a replay, which reuses an
 * older T0): a host file edited since, which the clocks must start after as well (the
 * recorded run's files older than its clock keep its start). */
export function layerTimes(
  t0Ns: bigint,
  intervalNs: bigint,
  parents: Array<{ t0Ns?: bigint; newestNs?: bigint; startedNs?: bigint }>,
  hostNewestNs?: bigint,
): LayerTimes {
  let since = 0n;
  let newest = 0n;
  for (const p of parents) {
    const started = p.startedNs ?? p.t0Ns;
    if (started !== undefined && started > since) since = started;
    const n = p.newestNs ?? t0Ns;
    if (n > newest) newest = n;
  }
  let offset = wallOffsetNs(parents.length, intervalNs);
  if (parents.length > 0) {
    const needed = newest + intervalNs - t0Ns;
    if (needed > offset) offset = ((needed + intervalNs - 1n) / intervalNs) * intervalNs;
  }
  // a host file not older than that start: the clocks start after it, in whole intervals
  if (hostNewestNs !== undefined && hostNewestNs >= t0Ns + offset) offset = ((hostNewestNs - t0Ns) / intervalNs + 1n) * intervalNs;
  return { wallOffsetNs: offset, recordedSinceNs: since, recordedNewestNs: newest };
}

/** t0.txt of an attempt: T0 in ns since the epoch, decimal, and a newline. */
export async function writeT0File(attemptDir: string, t0Ns: bigint): Promise<void> {
  // a few bytes: without the thread pool's round trip (record/layout.ts)
  writeFileSync(join(attemptDir, T0_FILE), `${t0Ns}\n`);
}

export async function readT0File(attemptDir: string): Promise<bigint> {
  const path = join(attemptDir, T0_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${errnoText(err)}`);
  }
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${path}: expected an integer (ns since the epoch)`);
  return BigInt(text);
}
