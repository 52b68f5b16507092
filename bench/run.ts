// `npm run bench -- <name|all> [options]`: runs workloads x modes, prints the table and
// writes docs/benchmarks.md.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, repoRoot, type BenchContext } from './context.js';
import { describeMachine, loadAverage, type Machine } from './machine.js';
import { findMode, modes, notYet, type CpuSplit, type FileCalls, type Handled, type Mode, type Wrapped } from './modes.js';
import { cleanEnv, describeFailure, killRunning, runMeasured } from './proc.js';
import { renderDocument, parseDocument } from './report.js';
import { evaluateGoals, mergeWorkloads, tableHeader, tableRows, type RowResult, type WorkloadResult } from './results.js';
import { textTable } from './stats.js';
import { ensureTools } from './tools.js';
import { findWorkload, workloads, type Command, type ExtraRow, type Workload } from './workloads.js';

const usage = `usage: npm run bench -- <workload...|all> [options]

workloads: ${workloads.map((w) => w.name).join(', ')}
modes:     ${modes.map((m) => m.name).join(', ')}

options:
  --quick          1 warm-up, 3 runs, smaller workloads; docs/benchmarks.md is not written
  --runs N         measured runs per mode (default 5; 3 with --quick; startup at least 11)
  --warmup N       warm-up runs per mode, discarded (default 1)
  --modes a,b      only these modes (native is always measured: it is the baseline)
  --write          write docs/benchmarks.md even with --quick
  --no-write       do not write docs/benchmarks.md
  --cache DIR      cache for sources, configured trees and bench programs
                   (default $UWRX_BENCH_CACHE or ~/.cache/uwrx-bench)
  --render-only    measure nothing: rewrite docs/benchmarks.md from the results it
                   holds (after a change to the document's template)`;

interface Options {
  names: string[];
  quick: boolean;
  runs: number;
  warmup: number;
  modes: Mode[];
  write: boolean;
  cache: string;
  /** Names given with --modes, to pick a workload's own rows too; undefined: all. */
  modeFilter?: string[];
}

class UsageFailure extends Error {}
class RenderOnly extends Error {}

const docFile = path.join(repoRoot, 'docs', 'benchmarks.md');

async function writeDocument(machine: Machine | undefined, fresh: WorkloadResult[]): Promise<void> {
  const old = existsSync(docFile) ? parseDocument(await readFile(docFile, 'utf8')) : {};
  const merged = mergeWorkloads(old.data?.workloads ?? [], fresh, workloads.map((w) => w.name));
  const m = machine ?? old.data?.machine;
  if (m === undefined) throw new Error(`${docFile} holds no results to render`);
  const extraRows = workloads.flatMap((w) => (w.extraRows ?? []).map((r) => ({ ...r, workload: w.name })));
  await mkdir(path.dirname(docFile), { recursive: true });
  await writeFile(docFile, renderDocument({ machine: m, workloads: merged }, modes, extraRows, old.notes));
}

function parseOptions(args: string[]): Options {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      modes: { type: 'string' },
      write: { type: 'boolean' },
      'no-write': { type: 'boolean' },
      cache: { type: 'string' },
      'render-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (values['render-only']) throw new RenderOnly();
  if (positionals.length === 0) throw new UsageFailure('name a workload or "all"');
  const names = positionals.includes('all') ? workloads.map((w) => w.name) : positionals;
  for (const n of names) if (!findWorkload(n)) throw new UsageFailure(`unknown workload "${n}"`);
  const count = (v: string | undefined, fallback: number, min: number, what: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageFailure(`${what} must be an integer >= ${min}`);
    return n;
  };
  const quick = values.quick ?? false;
  let selected = [...modes];
  let modeFilter: string[] | undefined;
  if (values.modes !== undefined) {
    modeFilter = values.modes.split(',').map((s) => s.trim()).filter(Boolean);
    const extraNames = workloads.flatMap((w) => w.extraRows ?? []).map((r) => r.name);
    for (const n of modeFilter) if (!findMode(n) && !extraNames.includes(n)) throw new UsageFailure(`unknown mode "${n}"`);
    selected = modes.filter((m) => m.name === 'native' || modeFilter!.includes(m.name));
  }
  return {
    names,
    quick,
    runs: count(values.runs, quick ? 3 : 5, 1, '--runs'),
    warmup: count(values.warmup, 1, 0, '--warmup'),
    modes: selected,
    write: values['no-write'] ? false : (values.write ?? !quick),
    cache: path.resolve(values.cache ?? defaultCacheDir()),
    ...(modeFilter ? { modeFilter } : {}),
  };
}

/** One line of a table row: a mode, or a workload's own row (run without a mode). */
interface Row {
  name: string;
  mode?: Mode;
  extra?: ExtraRow;
  result: RowResult;
}

interface Availability {
  reason: string | null;
  caveat: string | null;
}

function planRows(w: Workload, opts: Options, availability: Map<string, Availability>): Row[] {
  const rows: Row[] = opts.modes.map((mode) => {
    const { reason, caveat } = availability.get(mode.name) ?? { reason: null, caveat: null };
    const result: RowResult =
      mode.rebuildOnly && !w.rebuildable
        ? { mode: mode.name, status: 'unavailable', note: 'not a compile workload', samples: [] }
        : reason === null
        ? { mode: mode.name, status: 'ok', samples: [], ...(caveat ? { caveat } : {}) }
        : { mode: mode.name, status: reason === notYet ? 'not yet' : 'unavailable', note: reason, samples: [] };
    return { name: mode.name, mode, result };
  });
  // A workload's own rows go after the row they name, else after the previous one.
  let cursor = rows.findIndex((r) => r.name === 'native');
  for (const extra of w.extraRows ?? []) {
    if (opts.modeFilter && !opts.modeFilter.includes(extra.name)) continue;
    const at = rows.findIndex((r) => r.name === extra.after);
    cursor = (at < 0 ? cursor : at) + 1;
    rows.splice(cursor, 0, { name: extra.name, extra, result: { mode: extra.name, status: 'ok', samples: [] } });
  }
  return rows;
}

function format(w: Workload, v: number): string {
  return w.unit === 'seconds' ? `${v.toFixed(3)} s` : `${v.toFixed(2)} us/call`;
}

async function runOnce(
  ctx: BenchContext,
  w: Workload,
  row: Row,
  command: Command,
): Promise<{ value: number; supervisorKiB?: number; initKiB?: number; fileCalls?: FileCalls; cpuSeconds?: number; cpuSplit?: CpuSplit; handled?: Handled }> {
  await w.prepare?.(ctx);
  const wrapped: Wrapped = row.mode ? await row.mode.wrap(command, ctx) : { argv: (await row.extra!.command(ctx)).argv };
  try {
    const o = await runMeasured({
      argv: wrapped.argv,
      cwd: command.cwd,
      env: cleanEnv(),
      timeoutMs: ctx.timeoutMs,
      ...(wrapped.watchDescendant ? { watchDescendant: wrapped.watchDescendant } : {}),
    });
    if (o.exitCode !== 0) throw new Error(describeFailure(o));
    const value = w.parse ? w.parse(o.stdout) : o.seconds;
    const fileCalls = await wrapped.fileCalls?.();
    const cpuSplit = await wrapped.cpuSplit?.();
    const handled = await wrapped.handled?.();
    return {
      value,
      ...(fileCalls ? { fileCalls } : {}),
      ...(o.cpuSeconds !== undefined ? { cpuSeconds: o.cpuSeconds } : {}),
      ...(cpuSplit ? { cpuSplit } : {}),
      ...(handled ? { handled } : {}),
      ...(row.mode?.reportsMemory && o.rootHwmKiB !== undefined ? { supervisorKiB: o.rootHwmKiB } : {}),
      ...(row.mode?.reportsMemory && o.descendantHwmKiB !== undefined ? { initKiB: o.descendantHwmKiB } : {}),
    };
  } finally {
    await wrapped.cleanup?.();
  }
}

async function runWorkload(
  ctx: BenchContext,
  w: Workload,
  opts: Options,
  availability: Map<string, Availability>,
  invocation: string,
): Promise<WorkloadResult> {
  const loadStart = loadAverage();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const rows = planRows(w, opts, availability);
  let command: Command | undefined;
  try {
    ctx.log(`${w.name}: setup`);
    await w.setup(ctx);
    command = await w.command(ctx);
  } catch (e) {
    for (const r of rows) if (r.result.status === 'ok') Object.assign(r.result, { status: 'failed', note: `setup: ${(e as Error).message}` });
  }
  const runs = Math.max(opts.runs, w.minRuns ?? 0);
  const total = opts.warmup + runs;
  // Round-robin over the modes: a change in the machine's load during the workload
  // then affects every mode instead of whichever ran at that moment.
  for (let round = 0; command && round < total; round++) {
    const warm = round < opts.warmup;
    for (const row of rows) {
      if (row.result.status !== 'ok') continue;
      try {
        const r = await runOnce(ctx, w, row, command);
        const label = warm ? 'warm-up' : `run ${round - opts.warmup + 1}/${runs}`;
        ctx.log(`${w.name} ${row.name} ${label}: ${format(w, r.value)}`);
        if (warm) continue;
        row.result.samples.push(r.value);
        if (r.supervisorKiB !== undefined) row.result.supervisorKiB = Math.max(row.result.supervisorKiB ?? 0, r.supervisorKiB);
        if (r.initKiB !== undefined) row.result.initKiB = Math.max(row.result.initKiB ?? 0, r.initKiB);
        if (r.cpuSeconds !== undefined) (row.result.cpu ??= []).push(r.cpuSeconds);
        if (r.cpuSplit) (row.result.cpuSplits ??= []).push(r.cpuSplit);
        if (r.handled) (row.result.handled ??= []).push(r.handled);
        if (r.fileCalls) {
          const sum = (row.result.fileCalls ??= { inProcess: 0, notified: 0 });
          sum.inProcess += r.fileCalls.inProcess;
          sum.notified += r.fileCalls.notified;
        }
        ctx.log(`${w.name} ${row.name} ${label}: file calls ${JSON.stringify(r.fileCalls ?? {})}`);
      } catch (e) {
        const note = (e as Error).message.split('\n')[0] ?? '';
        ctx.log(`${w.name} ${row.name} ${warm ? 'warm-up' : `run ${round - opts.warmup + 1}/${runs}`}: failed: ${note}`);
        // An occasional failure is a finding worth a note next to the numbers; a mode
        // that fails twice without ever succeeding is not worth more machine time.
        const failures = (row.result.failures ?? 0) + 1;
        Object.assign(row.result, { failures, note: `${failures} run${failures > 1 ? 's' : ''} failed, last: ${note}` });
        if (row.result.samples.length === 0 && failures >= 2) {
          Object.assign(row.result, { status: 'failed', note });
          delete row.result.caveat;
        }
      }
    }
  }
  return {
    name: w.name,
    description: w.description(ctx),
    unit: w.unit,
    command: command ? command.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ') : '-',
    invocation,
    date,
    quick: opts.quick,
    warmup: opts.warmup,
    runs,
    loadStart,
    loadEnd: loadAverage(),
    ...(w.processes ? { processes: w.processes(ctx) } : {}),
    rows: rows.map((r) => r.result),
  };
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    if (e instanceof RenderOnly) {
      await writeDocument(undefined, []);
      console.error(`[bench] wrote ${docFile}`);
      return 0;
    }
    if (e instanceof UsageFailure || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`bench: ${(e as Error).message}\n\n${usage}`);
      return 2;
    }
    throw e;
  }
  await mkdir(opts.cache, { recursive: true });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'uwrx-bench-'));
  const ctx: BenchContext = {
    repo: repoRoot,
    cache: opts.cache,
    scratch,
    quick: opts.quick,
    timeoutMs: opts.quick ? 600_000 : 1_800_000,
    log: (line) => console.error(`[bench] ${line}`),
    atEnd: [],
  };
  const stop = () => {
    killRunning();
    void rm(scratch, { recursive: true, force: true }).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await ensureTools(ctx);
    const machine = await describeMachine({ 'work trees': opts.cache, scratch });
    const availability = new Map<string, Availability>();
    for (const mode of opts.modes) {
      const reason = await mode.probe(ctx);
      const caveat = reason === null && mode.caveat ? await mode.caveat(ctx) : null;
      availability.set(mode.name, { reason, caveat });
      if (reason !== null) ctx.log(`mode ${mode.name}: ${reason === notYet ? notYet : `unavailable: ${reason}`}`);
      if (caveat !== null) ctx.log(`mode ${mode.name}: ${caveat}`);
    }
    const invocation = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const results: WorkloadResult[] = [];
    for (const name of opts.names) results.push(await runWorkload(ctx, findWorkload(name)!, opts, availability, invocation));

    console.log(textTable(tableHeader, tableRows(results)));
    console.log('');
    for (const g of evaluateGoals(results)) console.log(`goal: ${g.goal} (${g.target}): ${g.measured} -> ${g.status}`);

    if (opts.write) {
      await writeDocument(machine, results);
      ctx.log(`wrote ${path.relative(process.cwd(), docFile) || docFile}`);
    }
    return 0;
  } finally {
    for (const remove of ctx.atEnd.splice(0)) await remove().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    killRunning();
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
