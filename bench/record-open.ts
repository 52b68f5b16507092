// Opening a large record: how long `openRecord` takes to give the process tree of a
// 10,000-process attempt and `uwrx ui` its first screen (goal: under a second), and what
// the full trace decode costs on top (paid after the first screen). The record is made
// here: procs.tsv, files.meta, a stored file per process and a perfetto file written by
// the real merger from spawn, exec, open, output and exit events.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Merger } from '../src/actors/merger.js';
import { joinArgv, type TraceEvent } from '../src/protocol/events.js';
import { formatProcessTable, type ProcessRecord } from '../src/record/procs.js';
import { openRecord } from '../src/record/reader.js';
import { modelFor } from '../src/ui/model.js';
import { UiState, render } from '../src/ui/view.js';

/** Wall and CPU time of one phase (ms): on a loaded machine the CPU time is the stabler. */
export interface Timing {
  wallMs: number;
  cpuMs: number;
}

export interface RecordOpenResult {
  processes: number;
  /** openRecord + the process tree. */
  open: Timing;
  /** openRecord to the UI's first screen at 80x24. */
  firstScreen: Timing;
  /** Decoding the whole trace afterwards. */
  traceDecode: Timing;
  /** `uwrx inspect procs --tree` as a command, Node start included (wall only). */
  inspectTreeMs: number;
}

/** Writes a record of `count` processes: pid 2 runs `fanout` children, each of which
 * runs children of its own until `count` processes exist (a make-like tree). */
export function makeLargeRecord(dir: string, count: number, fanout = 100): string {
  const attempt = path.join(dir, 'build', '0', '0');
  mkdirSync(attempt, { recursive: true });
  writeFileSync(path.join(dir, 'build', '0', 'cmd'), 'make\n-j8\n');
  writeFileSync(path.join(attempt, 'cmd'), 'make\n-j8\n');
  writeFileSync(path.join(attempt, 'seed.txt'), `${'0'.repeat(64)}\n`);
  const base = 1_000_000_000;
  const records: ProcessRecord[] = [];
  const parentOf = (pid: number): number => (pid === 2 ? 1 : pid <= 2 + fanout ? 2 : 3 + ((pid - 3 - fanout) % fanout));
  const ordinals = new Map<number, number>();
  const merger = new Merger({ output: path.join(attempt, 'perfetto'), clocks: { boottime: base, realtime: Date.now() * 1e6 } });
  const meta: string[] = [];
  mkdirSync(path.join(attempt, 'files', 'work', 'out'), { recursive: true });
  for (let pid = 2; pid < 2 + count; pid++) {
    const ppid = parentOf(pid);
    const ordinal = ordinals.get(ppid) ?? 0;
    ordinals.set(ppid, ordinal + 1);
    const start = base + pid * 1000;
    const argv = pid === 2 ? ['make', '-j8'] : ['cc', '-c', `src/${pid}.c`, '-o', `out/${pid}.o`];
    records.push({
      pid,
      ppid,
      key: `${ppid}.${ordinal}`,
      start: BigInt(start),
      end: BigInt(start + 500),
      exitCode: pid % 97 === 0 ? 1 : 0,
      signal: null,
      cwd: Buffer.from('/work'),
      exe: Buffer.from(`/usr/bin/${argv[0]}`),
      argv: argv.map((a) => Buffer.from(a)),
    });
    const ev = (e: Record<string, unknown>, t: number): TraceEvent => ({ pid, tid: pid, time: start + t, ...e }) as unknown as TraceEvent;
    const events: TraceEvent[] = [
      ev({ type: 'exec', result: 0, path: Buffer.from(`/usr/bin/${argv[0]}`), argv: joinArgv(argv) }, 1),
      ev({ type: 'open', flags: 0o1101, mode: 0o644, result: 3, path: Buffer.from(`/work/out/${pid}.o`) }, 10),
      ev({ type: 'output', fd: 1, flags: 0, dest_dev: 0, dest_ino: 0, data: Buffer.from(`compiling src/${pid}.c\n`) }, 20),
      ev({ type: 'exit', status: pid % 97 === 0 ? 1 : 0, signal: 0 }, 500),
    ];
    merger.push(events);
    // the parent's spawn record of this child
    if (ppid > 1) merger.push([{ type: 'spawn', pid: ppid, tid: ppid, time: start, child: pid, thread: 0, clone_flags: 0 } as unknown as TraceEvent]);
    meta.push(`/work/out/${pid}.o\t${pid}\tcreate\t/usr/bin/${argv[0]}`);
    writeFileSync(path.join(attempt, 'files', 'work', 'out', `${pid}.o`), 'o');
  }
  merger.finish();
  writeFileSync(path.join(attempt, 'procs.tsv'), formatProcessTable(records));
  writeFileSync(path.join(attempt, 'files.meta'), meta.join('\n') + '\n');
  const status = { complete: true, status: 0, exitCode: 0, signal: null, startedAt: '', endedAt: '', processes: count, filesWritten: count };
  writeFileSync(path.join(attempt, 'status'), JSON.stringify(status));
  return attempt;
}

const ms = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;

function timed<T>(fn: () => T): [T, Timing] {
  const wall = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(cpu);
  return [value, { wallMs: ms(wall), cpuMs: (used.user + used.system) / 1000 }];
}

export function benchRecordOpen(count = 10_000): RecordOpenResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'uwrx-bench-record-'));
  try {
    const attempt = makeLargeRecord(dir, count);
    const [record, open] = timed(() => {
      const r = openRecord(attempt);
      let reached = 0;
      const stack = [...r.roots()];
      while (stack.length > 0) {
        reached++;
        stack.push(...r.children(stack.pop()!.pid));
      }
      if (reached !== count) throw new Error(`tree holds ${reached} of ${count} processes`);
      return r;
    });
    const [screen, firstScreen] = timed(() => render(new UiState(modelFor(openRecord(attempt))), 80, 24));
    if (screen.length !== 24) throw new Error('no first screen');
    const [, traceDecode] = timed(() => {
      const problems = record.problems();
      if (problems.length > 0) throw new Error(problems[0]);
      if (record.output(count).length === 0) throw new Error('no output decoded');
    });
    const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'uwrx');
    const start = process.hrtime.bigint();
    execFileSync(process.execPath, [bin, 'inspect', 'procs', '--tree', attempt], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { processes: count, open, firstScreen, traceDecode, inspectTreeMs: ms(start) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);

if (isMain) {
  const count = Number(process.argv[2] ?? 10_000);
  const r = benchRecordOpen(count);
  const show = (t: Timing): string => `${t.wallMs.toFixed(0)} ms wall, ${t.cpuMs.toFixed(0)} ms CPU`;
  console.log(`record of ${r.processes} processes (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  console.log(`openRecord + process tree:           ${show(r.open)}`);
  console.log(`openRecord to the UI's first screen: ${show(r.firstScreen)} (goal: under 1000 ms)`);
  console.log(`whole trace decoded afterwards:      ${show(r.traceDecode)} (in the background in the UI)`);
  console.log(`uwrx inspect procs --tree:           ${r.inspectTreeMs.toFixed(0)} ms wall (Node start included)`);
}
