// Deterministic time (DESIGN.md section 4), the TypeScript half of
// src/native/common/dettime.h: the same pure answer to "query number n of a process on
// clock c". Nanoseconds are bigints (T0 in ns does not fit a double exactly).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { errnoText } from '../fs.js';

export type TimeMode = 'advancing' | 'frozen' | 'real';
export const TIME_MODES: readonly TimeMode[] = ['advancing', 'frozen', 'real'];

/** The numbers uwrx-init's dettime.h uses for each mode. */
export const TIME_MODE_CODE: Record<TimeMode, number> = { advancing: 0, frozen: 1, real: 2 };

export const DEFAULT_STEP_NS = 1_000_000n; // 1 ms per query
export const MONOTONIC_BASE_NS = 100_000_000_000n; // 100 s of "uptime"

export interface TimeConfig {
  mode: TimeMode;
  /** Wall-clock start of the attempt, ns since the epoch. */
  t0Ns: bigint;
  /** Advancing mode: how far a process's clocks move per query. */
  stepNs: bigint;
  /** Wall clocks start at t0Ns + wallOffsetNs (default 0n); see wallOffsetNs(). */
  wallOffsetNs?: bigint;
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

/** clock_gettime(clockId) for query number `query` (0-based) of a process, in ns;
 * null when the kernel answers (real mode, or a clock uwrx does not fake). */
export function clockNs(config: TimeConfig, query: bigint | number, clockId: number): bigint | null {
  if (config.mode === 'real') return null;
  const kind = kindOf(clockId);
  if (kind === 'pass') return null;
  const base = kind === 'wall' ? config.t0Ns + (config.wallOffsetNs ?? 0n) : kind === 'monotonic' ? MONOTONIC_BASE_NS : 0n;
  return config.mode === 'frozen' ? base : base + BigInt(query) * config.stepNs;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export function gettimeofday(config: TimeConfig, query: bigint | number): { sec: bigint; usec: bigint } | null {
  const ns = clockNs(config, query, Clock.REALTIME);
  if (ns === null) return null;
  const sec = floorDiv(ns, 1_000_000_000n);
  return { sec, usec: (ns - sec * 1_000_000_000n) / 1000n };
}

export function time(config: TimeConfig, query: bigint | number): bigint | null {
  const ns = clockNs(config, query, Clock.REALTIME);
  return ns === null ? null : floorDiv(ns, 1_000_000_000n);
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

/** t0.txt of an attempt: T0 in ns since the epoch, decimal, and a newline. */
export async function writeT0File(attemptDir: string, t0Ns: bigint): Promise<void> {
  await writeFile(join(attemptDir, T0_FILE), `${t0Ns}\n`);
}

export async function readT0File(attemptDir: string): Promise<bigint> {
  const path = join(attemptDir, T0_FILE);
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${errnoText(err)}`);
  }
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${path}: expected an integer (ns since the epoch)`);
  return BigInt(text);
}
