// Measured results, the table rows made from them, and the goals tracked against them.
// Pure functions: unit tested in test/bench.test.ts.
import type { Machine } from './machine.js';
import type { CpuSplit, Handled } from './modes.js';
import { formatMegabytes, formatMicros, formatRatio, formatSeconds, median, ratio, summarize } from './stats.js';

export type Unit = 'seconds' | 'us/call';
export type RowStatus = 'ok' | 'unavailable' | 'failed' | 'not yet';

export interface RowResult {
  /** A mode (native, strace, bwrap, uwrx ...) or a workload's own row (floor-sync). */
  mode: string;
  status: RowStatus;
  /** Why a row has no numbers: one line. */
  note?: string;
  /** Why a row's numbers do not measure what the mode promises (goals then count them as unmeasured). */
  caveat?: string;
  /** Runs (warm-up included) that failed; the samples are the runs that succeeded. */
  failures?: number;
  /** Seconds of wall time, or us per call, one per measured run. */
  samples: number[];
  /** Peak RSS (VmHWM, KiB) of the uwrx supervisor process, max over the runs. */
  supervisorKiB?: number;
  /** Peak RSS (VmHWM, KiB) of uwrx-init, max over the runs. */
  initKiB?: number;
  /** File calls answered in process / through notifications, summed over the measured runs. */
  fileCalls?: { inProcess: number; notified: number };
  /** User and system seconds of the command's whole tree (uwrx's own processes with it),
   * one per measured run. */
  cpu?: number[];
  /** Those of a uwrx run by part (its attempt status), one per measured run. */
  cpuSplits?: CpuSplit[];
  /** uwrx-init's notifications by call (its attempt status), one per measured run. */
  handled?: Handled[];
}

export interface WorkloadResult {
  name: string;
  description: string;
  unit: Unit;
  /** The measured command, as the native mode runs it. */
  command: string;
  /** Start of the invocation that measured this workload. */
  invocation: string;
  date: string;
  quick: boolean;
  warmup: number;
  runs: number;
  loadStart: string;
  loadEnd: string;
  /** Processes the command starts (workloads of short processes: the cost of each). */
  processes?: number;
  rows: RowResult[];
}

export interface BenchData {
  machine: Machine;
  workloads: WorkloadResult[];
}

export function rowMedian(w: WorkloadResult, mode: string): number | undefined {
  const row = w.rows.find((r) => r.mode === mode);
  return row && row.status === 'ok' && row.samples.length > 0 ? median(row.samples) : undefined;
}

/** The uwrx median when it counts for a goal: measured, and without a caveat. */
function uwrxMedian(w: WorkloadResult, mode = 'uwrx'): number | undefined {
  const row = w.rows.find((r) => r.mode === mode);
  return row?.caveat ? undefined : rowMedian(w, mode);
}

/** The share of file calls that took the notification path, when counted. */
export function slowShare(r: RowResult | undefined): number | undefined {
  const c = r?.fileCalls;
  if (!c || c.inProcess + c.notified === 0) return undefined;
  return c.notified / (c.inProcess + c.notified);
}

function slowShareNote(r: RowResult): string | undefined {
  const share = slowShare(r);
  if (share === undefined) return undefined;
  const runs = Math.max(r.samples.length, 1);
  return `${(share * 100).toFixed(1)}% of ${Math.round((r.fileCalls!.inProcess + r.fileCalls!.notified) / runs)} file calls notified`;
}

/** The mean CPU split of a row's measured runs, seconds. */
function meanSplit(r: RowResult | undefined): CpuSplit | undefined {
  const splits = r?.cpuSplits;
  if (!splits?.length) return undefined;
  const mean = (part: keyof CpuSplit) => splits.reduce((sum, s) => sum + s[part], 0) / splits.length;
  return { command: mean('command'), init: mean('init'), supervisor: mean('supervisor') };
}

/** "cpu 4.21 s (command 3.10, uwrx-init 0.52, supervisor 0.59)": where a run's time went. */
export function cpuNote(r: RowResult): string | undefined {
  if (!r.cpu || r.cpu.length === 0) return undefined;
  const split = meanSplit(r);
  const parts = split && `command ${split.command.toFixed(2)}, uwrx-init ${split.init.toFixed(2)}, supervisor ${split.supervisor.toFixed(2)}`;
  return `cpu ${median(r.cpu).toFixed(2)} s${parts ? ` (${parts})` : ''}`;
}

function formatValue(unit: Unit, v: number): string {
  return unit === 'seconds' ? formatSeconds(v) : formatMicros(v);
}

export const tableHeader = ['workload', 'mode', 'median', 'min', 'max', 'vs native', 'supervisor RSS', 'init RSS', 'note'];

export function tableRows(workloads: readonly WorkloadResult[]): string[][] {
  const rows: string[][] = [];
  for (const w of workloads) {
    const base = rowMedian(w, 'native');
    for (const r of w.rows) {
      if (r.status !== 'ok' || r.samples.length === 0) {
        rows.push([w.name, r.mode, '-', '-', '-', '-', '-', '-', r.status === 'not yet' ? 'not yet' : `${r.status}: ${r.note ?? ''}`]);
        continue;
      }
      const s = summarize(r.samples);
      rows.push([
        w.name,
        r.mode,
        formatValue(w.unit, s.median),
        formatValue(w.unit, s.min),
        formatValue(w.unit, s.max),
        formatRatio(ratio(s.median, base)),
        r.supervisorKiB === undefined ? '' : formatMegabytes(r.supervisorKiB),
        r.initKiB === undefined ? '' : formatMegabytes(r.initKiB),
        [r.caveat, r.note, slowShareNote(r), cpuNote(r)].filter(Boolean).join('; '),
      ]);
    }
  }
  return rows;
}

export interface GoalResult {
  goal: string;
  target: string;
  measured: string;
  status: string;
}

function find(workloads: readonly WorkloadResult[], name: string): WorkloadResult | undefined {
  return workloads.find((w) => w.name === name);
}

function uwrxNote(w: WorkloadResult | undefined, mode = 'uwrx'): string {
  if (w === undefined) return 'workload not run';
  const row = w.rows.find((r) => r.mode === mode);
  if (row === undefined) return `${mode} mode not run`;
  if (row.caveat) return row.caveat;
  return `uwrx ${row.status}${row.note ? `: ${row.note}` : ''}`;
}

function ratioGoal(goal: string, w: WorkloadResult | undefined, over: string, limit: number, mode = 'uwrx'): GoalResult {
  const target = `<= ${limit.toFixed(2)}x ${over}`;
  const value = w && ratio(uwrxMedian(w, mode), rowMedian(w, over));
  if (value === undefined || value === null) {
    return { goal, target, measured: '-', status: `not measured (${w && uwrxMedian(w, mode) !== undefined ? `no ${over} run` : uwrxNote(w, mode)})` };
  }
  const failures = w?.rows.find((r) => r.mode === mode)?.failures;
  const status = value <= limit ? 'met' : `missed by ${(value - limit).toFixed(2)}x (${(((value - limit) / limit) * 100).toFixed(0)}% over)`;
  return {
    goal,
    target,
    measured: formatRatio(value),
    status: failures ? `${status}, but ${failures} uwrx run${failures > 1 ? 's' : ''} failed` : status,
  };
}

/** The fixed cost of a run: the median wall time of `uwrx run -- true`, with what a bare
 * Node start cost in the same rounds beside it. */
function startupGoal(w: WorkloadResult | undefined, limitS: number): GoalResult {
  const goal = '`uwrx run -- true` (the fixed cost of a run)';
  const target = `<= ${(limitS * 1000).toFixed(0)} ms`;
  const u = w && uwrxMedian(w);
  if (u === undefined) return { goal, target, measured: '-', status: `not measured (${uwrxNote(w, 'uwrx')})` };
  const node = rowMedian(w!, 'node-baseline');
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  return {
    goal,
    target,
    measured: `${ms(u)}${node === undefined ? '' : ` (node -e 0: ${ms(node)}, uwrx beyond it: ${ms(u - node)})`}`,
    status: u <= limitS ? 'met' : `missed by ${ms(u - limitS)}`,
  };
}

/** What a short process costs beyond native: exec-storm's difference to native per
 * process, less the fixed cost of a run (startup's difference) when startup was measured. */
function perProcessGoal(w: WorkloadResult | undefined, startup: WorkloadResult | undefined, limitUs: number, mode: string): GoalResult {
  const goal = 'a short process (fork, exec and exit) under uwrx --fast-path, beyond native';
  const target = `<= ${limitUs} us`;
  const u = w && uwrxMedian(w, mode);
  const n = w && rowMedian(w, 'native');
  if (u === undefined || n === undefined || !w?.processes) {
    const why = u === undefined ? uwrxNote(w, mode) : n === undefined ? 'no native run' : 'results without the process count';
    return { goal, target, measured: '-', status: `not measured (${why})` };
  }
  const su = startup && uwrxMedian(startup, mode);
  const sn = startup && rowMedian(startup, 'native');
  const fixed = su !== undefined && sn !== undefined ? su - sn : undefined;
  const us = ((u - n - (fixed ?? 0)) / w.processes) * 1e6;
  const cpu = perProcessCpu(w, startup, mode);
  const waits = perProcessWaits(w, startup, mode);
  return {
    goal,
    target,
    measured: `${us.toFixed(0)} us (exec-storm, ${w.processes} processes${fixed === undefined ? ', the fixed cost of a run not measured: included' : `, less the fixed cost of a run: ${(fixed * 1000).toFixed(0)} ms`})${cpu ? `; ${cpu}` : ''}${waits ? `; ${waits}` : ''}`,
    status: us <= limitUs ? 'met' : `missed by ${(us - limitUs).toFixed(0)} us`,
  };
}

/** Where a short process's cost goes: CPU time per process beyond native, by part (each
 * less its share of `uwrx run -- true` when startup was measured). */
function perProcessCpu(w: WorkloadResult, startup: WorkloadResult | undefined, mode: string): string | undefined {
  const row = w.rows.find((r) => r.mode === mode);
  const split = meanSplit(row);
  const native = w.rows.find((r) => r.mode === 'native')?.cpu;
  if (!split || !native?.length || !w.processes) return undefined;
  const fixedSplit = meanSplit(startup?.rows.find((r) => r.mode === mode));
  const fixedNative = startup?.rows.find((r) => r.mode === 'native')?.cpu;
  const fixed = fixedSplit && fixedNative?.length ? { ...fixedSplit, native: median(fixedNative) } : { command: 0, init: 0, supervisor: 0, native: 0 };
  const us = (s: number) => ((s / w.processes!) * 1e6).toFixed(0);
  const command = split.command - fixed.command - (median(native) - fixed.native);
  const init = split.init - fixed.init;
  const supervisor = split.supervisor - fixed.supervisor;
  return `CPU per process beyond native ${us(command + init + supervisor)} us: the command's processes ${us(command)}, uwrx-init ${us(init)}, supervisor ${us(supervisor)}`;
}

/** Notifications per run of a row by call, the mean over its measured runs. */
function meanHandled(r: RowResult | undefined): Map<string, { calls: number; us: number }> {
  const mean = new Map<string, { calls: number; us: number }>();
  const runs = r?.handled ?? [];
  for (const run of runs)
    for (const [name, h] of Object.entries(run)) {
      const m = mean.get(name) ?? { calls: 0, us: 0 };
      mean.set(name, { calls: m.calls + h.calls / runs.length, us: m.us + h.us / runs.length });
    }
  return mean;
}

/** What a short process waited on in uwrx-init: each call notified at least once per 20
 * processes, as calls per process and handler time per call (less `uwrx run -- true`'s
 * own when startup was measured), the costliest first. */
function perProcessWaits(w: WorkloadResult, startup: WorkloadResult | undefined, mode: string): string | undefined {
  const processes = w.processes;
  const storm = meanHandled(w.rows.find((r) => r.mode === mode));
  if (!processes || storm.size === 0) return undefined;
  const fixed = meanHandled(startup?.rows.find((r) => r.mode === mode));
  const waits: Array<{ name: string; perProcess: number; usPerCall: number }> = [];
  for (const [name, h] of storm) {
    const calls = h.calls - (fixed.get(name)?.calls ?? 0);
    const us = h.us - (fixed.get(name)?.us ?? 0);
    if (calls * 20 < processes || us <= 0) continue;
    waits.push({ name, perProcess: calls / processes, usPerCall: us / calls });
  }
  if (waits.length === 0) return undefined;
  waits.sort((a, b) => b.perProcess * b.usPerCall - a.perProcess * a.usPerCall);
  const each = waits.map((x) => `${x.name} ${x.perProcess.toFixed(2)} x ${x.usPerCall.toFixed(0)} us`);
  return `uwrx-init's handlers per process: ${each.join(', ')}`;
}

export function evaluateGoals(workloads: readonly WorkloadResult[]): GoalResult[] {
  const goals: GoalResult[] = [
    ratioGoal('uwrx capture on the real C build', find(workloads, 'c-build'), 'native', 1.15),
    ratioGoal('uwrx capture on configure', find(workloads, 'configure'), 'native', 1.5),
  ];

  const below: string[] = [];
  const above: string[] = [];
  const unmeasured: string[] = [];
  for (const w of workloads) {
    // a tracer of one `true` has no start-up to speak of: the fixed cost has its own goal;
    // the timers' waits last what the programs ask under any tracer (their own goal below)
    if (w.name === 'startup' || w.name === 'timers') continue;
    const u = uwrxMedian(w);
    const s = rowMedian(w, 'strace');
    if (u === undefined || s === undefined) unmeasured.push(w.name);
    else (u < s ? below : above).push(`${w.name} ${formatRatio(u / s)}`);
  }
  const failing = workloads.filter((w) => w.rows.some((r) => r.mode === 'uwrx' && (r.failures ?? 0) > 0)).map((w) => w.name);
  goals.push({
    goal: 'uwrx capture below strace -f on every workload',
    target: 'uwrx / strace < 1.00x everywhere',
    measured: [...below, ...above].join(', ') || '-',
    status:
      above.length > 0
        ? `missed on ${above.map((a) => a.split(' ')[0]).join(', ')}`
        : below.length > 0 && unmeasured.length === 0
          ? 'met'
          : `not measured${unmeasured.length ? ` on ${unmeasured.join(', ')}` : ''}`,
  });
  if (failing.length > 0) goals.at(-1)!.status += `; uwrx runs failed on ${failing.join(', ')}`;

  let peak: { kib: number; workload: string } | undefined;
  for (const w of workloads) {
    const row = w.rows.find((r) => r.mode === 'uwrx');
    const kib = row?.caveat ? undefined : row?.supervisorKiB;
    if (kib !== undefined && (peak === undefined || kib > peak.kib)) peak = { kib, workload: w.name };
  }
  const limitKiB = 300 * 1024;
  goals.push({
    goal: 'uwrx supervisor peak RSS on the largest workload',
    target: '< 300 MB',
    measured: peak ? `${formatMegabytes(peak.kib)} (${peak.workload})` : '-',
    status: peak === undefined ? 'not measured (no uwrx run)' : peak.kib < limitKiB ? 'met' : `missed by ${formatMegabytes(peak.kib - limitKiB)}`,
  });

  goals.push(ratioGoal('one notified syscall through uwrx', find(workloads, 'notify'), 'floor-sync', 1.2));

  goals.push(startupGoal(find(workloads, 'startup'), 0.15));

  // Recording every read access: the in-process recorder (--fast-path).
  goals.push(ratioGoal('uwrx --fast-path on the real C build', find(workloads, 'c-build'), 'native', 1.15, 'uwrx-fast'));
  goals.push(ratioGoal('uwrx --fast-path on configure', find(workloads, 'configure'), 'native', 1.35, 'uwrx-fast'));
  goals.push(ratioGoal('uwrx --fast-path on find /usr', find(workloads, 'find'), 'native', 2.0, 'uwrx-fast'));
  goals.push(perProcessGoal(find(workloads, 'exec-storm'), find(workloads, 'startup'), 200, 'uwrx-fast'));
  const share = slowShare(find(workloads, 'c-build')?.rows.find((r) => r.mode === 'uwrx-fast'));
  goals.push({
    goal: 'file calls of the C build that took the notification path (--fast-path)',
    target: '< 10%',
    measured: share === undefined ? '-' : `${(share * 100).toFixed(1)}%`,
    status: share === undefined ? 'not measured' : share < 0.1 ? 'met' : `missed by ${((share - 0.1) * 100).toFixed(1)} points`,
  });
  goals.push(ratioGoal('timed waits last their real time under deterministic clocks', find(workloads, 'timers'), 'native', 1.1));
  goals.push(ratioGoal('HTTP load test (the requests\' own time)', find(workloads, 'http-load'), 'native', 1.1));
  goals.push(ratioGoal('HTTP load test with --fast-path', find(workloads, 'http-load'), 'native', 1.1, 'uwrx-fast'));
  goals.push(ratioGoal('partial rebuild without changes against a warm ccache', find(workloads, 'c-build'), 'ccache', 0.5, 'uwrx-replay'));
  goals.push(ratioGoal('the same with --skippable make (make skipped whole)', find(workloads, 'c-build'), 'ccache', 0.5, 'uwrx-replay-make'));
  return goals;
}

/** Results of a new invocation replace those of the same workloads; others are kept. */
export function mergeWorkloads(old: readonly WorkloadResult[], fresh: readonly WorkloadResult[], order: readonly string[]): WorkloadResult[] {
  const byName = new Map(old.map((w) => [w.name, w]));
  for (const w of fresh) byName.set(w.name, w);
  const rank = (n: string) => (order.includes(n) ? order.indexOf(n) : order.length);
  return [...byName.values()].sort((a, b) => rank(a.name) - rank(b.name));
}
