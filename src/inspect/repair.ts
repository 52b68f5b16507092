// `uwrx check --repair <attempt>`: rebuilds what it can of an attempt whose uwrx was
// killed before finishing it, and says what was lost.
//
// What a killed run leaves: the attempt's perfetto holds the chunks the merger had
// written (often none: it writes in chunks of ~384 KiB); the run's private directory
// (<build>/.tmp/run-<step>-<attempt>-XXXXXX, or under --tmp) still holds the trace
// buffers of the processes that were alive (traces/<pid>) and of those that ended but were
// not collected yet (traces/<pid>.ended, or with their end in traces/log, uwrx-init's
// buffer log, which also names the pooled buffers free.<n> a process took). Buffers the
// collector had already consumed are gone: their events were in the merger's memory and
// are lost unless already written.
// procs.tsv and status are written only at the end, so they are missing.
//
// Repair: decode the written part of perfetto and every buffer left, drop events present
// in both, merge them into a new perfetto (the same Merger as a live run), write procs.tsv
// from the process events and a status that marks the attempt incomplete, repaired, and
// lists what is lost. The consumed buffers are then removed; the rest of the run
// directory (the overlays' upper directories) is left where it is and named.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Merger } from '../actors/merger.js';
import { OUTPUT_INDEX_FILE } from '../record/output-index.js';
import { UsageError } from '../errors.js';
import { EVENT_FLAG_TRUNCATED, EVENT_HEADER_SIZE, REC_DATA_OFFSET, REC_MAGIC, TRACE_DATA_OFFSET, TRACE_LOG, TRACE_LOG_ENTRY, TRACE_POOL_PREFIX, TraceFormatError, decodeEvents, eventDef, joinArgv, splitArgv, type TraceEvent } from '../protocol/events.js';
import { unescapeBytes } from '../record/escape.js';
import type { AttemptStatus } from '../record/layout.js';
import { removeTracesDir } from '../record/traces-dir.js';
import { PROCESS_TABLE_FILE, formatProcessTable, type ProcessRecord } from '../record/procs.js';
import { readTrace, type RecordedEvent } from '../record/trace.js';
import { writeView } from './out.js';
import { UPPER_DIR } from '../sandbox/plan/root.js';

export interface RepairOptions {
  /** The killed run's --tmp, when it was not the default <build>/.tmp. */
  tmp?: string;
}

/** Run directories a killed run of this attempt left behind. */
export function leftoverRunDirs(attemptDir: string, tmp?: string): string[] {
  const step = path.basename(path.dirname(attemptDir));
  const attempt = path.basename(attemptDir);
  const root = tmp ? path.resolve(tmp) : path.join(path.dirname(path.dirname(attemptDir)), '.tmp');
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const prefix = `run-${step}-${attempt}-`;
  return names
    .filter((n) => n.startsWith(prefix) && /^[A-Za-z0-9]{6}$/.test(n.slice(prefix.length)))
    .map((n) => path.join(root, n));
}

/** Buffer files in a run directory's traces/: named by their pids, and the pooled ones
 * the buffer log says a process took. */
export function leftoverBuffers(runDir: string): string[] {
  const { owners } = bufferLog(runDir);
  try {
    return readdirSync(path.join(runDir, 'traces'))
      .filter((n) => /^[1-9][0-9]*(\.ended)?$/.test(n) || owners.has(path.join(runDir, 'traces', n)))
      .map((n) => path.join(runDir, 'traces', n));
  } catch {
    return [];
  }
}

/** A run directory's buffer log (traces/log): the buffers whose end it told (by file),
 * and the owners of the pooled ones taken (file -> pid). */
export function bufferLog(runDir: string): { ended: Set<string>; owners: Map<string, number> } {
  const ended = new Set<string>();
  const owners = new Map<string, number>();
  let log: Buffer;
  try {
    log = readFileSync(path.join(runDir, 'traces', TRACE_LOG));
  } catch {
    return { ended, owners };
  }
  const fileOf = new Map<number, string>();
  for (let at = 0; at + TRACE_LOG_ENTRY <= log.length; at += TRACE_LOG_ENTRY) {
    const pid = log.readUInt32LE(at);
    const what = log.readUInt32LE(at + 4);
    if (what === 0) {
      ended.add(fileOf.get(pid) ?? path.join(runDir, 'traces', String(pid)));
    } else {
      const file = path.join(runDir, 'traces', `${TRACE_POOL_PREFIX}${what - 1}`);
      owners.set(file, pid);
      fileOf.set(pid, file);
    }
  }
  return { ended, owners };
}

export async function repair(attemptDir: string, options: RepairOptions, out: NodeJS.WritableStream): Promise<number> {
  if (!existsSync(path.join(attemptDir, 'seed.txt'))) {
    throw new UsageError(`uwrx check --repair: ${attemptDir}: not an attempt directory (expected <build>/<step>/<attempt> with seed.txt)`);
  }
  const runDirs = leftoverRunDirs(attemptDir, options.tmp);
  const statusFile = path.join(attemptDir, 'status');
  const buffers = runDirs.flatMap(leftoverBuffers);
  const report = existsSync(statusFile) && buffers.length === 0 ? undefined : repairAttempt(attemptDir, runDirs);
  return writeView(out, (w) => {
    if (!report) {
      w.line('nothing to repair: the attempt has its status and no trace buffers are left (uwrx check validates it)');
      return 0;
    }
    for (const line of report.recovered) w.line(`recovered: ${line}`);
    for (const line of report.lost) w.line(`lost: ${line}`);
    return 0;
  });
}

interface RepairReport {
  recovered: string[];
  lost: string[];
}

function repairAttempt(attemptDir: string, runDirs: string[]): RepairReport {
  const recovered: string[] = [];
  const lost: string[] = [];
  const tracePath = path.join(attemptDir, 'perfetto');

  // 1. What perfetto already holds (the chunks written before the kill).
  const byPid = new Map<number, TraceEvent[]>();
  const seen = new Set<string>();
  const add = (ev: TraceEvent): boolean => {
    const key = `${ev.pid}/${ev.tid}/${ev.time}/${ev.type}`;
    if (seen.has(key)) return false;
    seen.add(key);
    let list = byPid.get(ev.pid);
    if (!list) byPid.set(ev.pid, (list = []));
    list.push(ev);
    return true;
  };
  let written = 0;
  if (existsSync(tracePath)) {
    const trace = readTrace(tracePath);
    for (const e of trace.events) {
      const ev = traceEventOf(e);
      if (ev && add(ev)) written++;
    }
    const cut = trace.problems.find((p) => p.includes('truncated'));
    if (cut) lost.push(`the last, partly written chunk of perfetto (${cut.replace(/^perfetto: /, '')})`);
  }
  if (written > 0) recovered.push(`${written} events already written to perfetto`);

  // 2. The buffers the collector had not consumed.
  let fromBuffers = 0;
  let fromRecorders = 0;
  let recorders = 0;
  const buffers = runDirs.flatMap(leftoverBuffers);
  const alive = new Set<number>();
  const logs = runDirs.map(bufferLog);
  const logged = new Set(logs.flatMap((l) => [...l.ended]));
  const owners = new Map(logs.flatMap((l) => [...l.owners]));
  for (const file of buffers) {
    const pid = owners.get(file) ?? Number(path.basename(file).replace(/\.ended$/, ''));
    if (!file.endsWith('.ended') && !logged.has(file)) alive.add(pid);
    const { events, problem } = readBuffer(file, pid);
    for (const ev of events) if (add(ev)) fromBuffers++;
    if (problem) lost.push(`traces/${path.basename(file)}: ${problem}`);
    const region = readRecorderRegion(file, pid);
    if (region) {
      recorders++;
      for (const ev of region.events) if (add(ev)) fromRecorders++;
      if (region.problem) lost.push(`traces/${path.basename(file)}: recorder region: ${region.problem}`);
    }
  }
  if (buffers.length > 0) recovered.push(`${fromBuffers} events from ${buffers.length} trace buffers left in ${runDirs.join(', ')}`);
  if (recorders > 0) recovered.push(`${fromRecorders} events from ${recorders} in-process recorder regions`);
  else if (runDirs.length === 0) lost.push('the run directory of the killed run was not found (give its --tmp with --tmp)');

  // 3. The processes, as the events describe them.
  const table = processTable(byPid);
  const ownEvents = new Set(byPid.keys());
  const silent = table.filter((p) => !ownEvents.has(p.pid) && !alive.has(p.pid)).map((p) => p.pid);
  if (silent.length > 0) {
    lost.push(`the events of ${silent.length} process${silent.length === 1 ? '' : 'es'} that ended before the kill and were not yet written (${listPids(silent)}): only their parents' spawn records remain`);
  }
  const running = table.filter((p) => p.end === null && ownEvents.has(p.pid)).map((p) => p.pid);
  if (running.length > 0) {
    lost.push(`how ${running.length} process${running.length === 1 ? '' : 'es'} ended (${listPids(running)}): still running when uwrx was killed, they ended with it`);
  }

  // 4. Write the new perfetto, procs.tsv and status.
  const events = [...byPid.values()].flat();
  const first = events.reduce((t, e) => Math.min(t, e.time), Infinity);
  const seedTime = statSync(path.join(attemptDir, 'seed.txt')).mtimeMs;
  const boottime = Number.isFinite(first) ? first : 0;
  const tmp = `${tracePath}.repair-${process.pid}`;
  const indexTmp = path.join(attemptDir, `accesses.tsv.repair-${process.pid}`);
  const outputTmp = path.join(attemptDir, `${OUTPUT_INDEX_FILE}.repair-${process.pid}`);
  const merger = new Merger({ output: tmp, clocks: { boottime, realtime: Math.round(seedTime * 1e6) }, accessIndex: indexTmp, outputIndex: outputTmp });
  for (const list of byPid.values()) merger.push(list.sort((a, b) => a.time - b.time));
  const stats = merger.finish();
  renameSync(tmp, tracePath);
  if (existsSync(indexTmp)) renameSync(indexTmp, path.join(attemptDir, 'accesses.tsv'));
  if (existsSync(outputTmp)) renameSync(outputTmp, path.join(attemptDir, OUTPUT_INDEX_FILE));
  recovered.push(`perfetto rewritten: ${stats.events} events of ${stats.processes} processes`);
  writeFileSync(path.join(attemptDir, PROCESS_TABLE_FILE), formatProcessTable(table));
  recovered.push(`${PROCESS_TABLE_FILE} rebuilt from the process events: ${table.length} processes`);
  lost.push(`the working directories of the processes (${PROCESS_TABLE_FILE} has "-" for cwd)`);

  for (const runDir of runDirs) {
    const written = countUpperEntries(runDir);
    lost.push(`the file store: ${written} files the run wrote (and the directories it made) are not in the record (left in ${runDir}/${UPPER_DIR}/*)`);
    removeTracesDir(runDir);
    rmSync(path.join(runDir, 'traces'), { recursive: true, force: true });
  }
  if (!existsSync(path.join(attemptDir, 'files.meta'))) writeFileSync(path.join(attemptDir, 'files.meta'), '');

  const previous = readStatus(attemptDir);
  const ends = table.map((p) => p.end).filter((e): e is bigint => e !== null);
  const last = events.reduce((t, e) => Math.max(t, e.time), boottime);
  const status: AttemptStatus & { repaired: string; lost: string[] } = {
    complete: false,
    status: previous?.status ?? 128 + 9,
    exitCode: previous?.exitCode ?? null,
    signal: previous?.signal ?? null,
    reason: 'uwrx was killed before it finished this attempt; repaired by uwrx check --repair',
    startedAt: previous?.startedAt ?? new Date(seedTime).toISOString(),
    endedAt: previous?.endedAt ?? new Date(seedTime + (Math.max(last, ...ends.map(Number)) - boottime) / 1e6).toISOString(),
    processes: table.length,
    filesWritten: 0,
    repaired: new Date().toISOString(),
    lost,
  };
  writeFileSync(path.join(attemptDir, 'status'), JSON.stringify(status, null, 2) + '\n');
  recovered.push('status written: incomplete, with what was lost');
  return { recovered, lost };
}

/** Files, links and whiteouts in the overlays' upper directories. */
function countUpperEntries(runDir: string): number {
  let count = 0;
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      // whiteouts (character devices) are deletions, or what uwrx hides, not files
      else if (!e.isCharacterDevice()) count++;
    }
  };
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const n of list(path.join(runDir, UPPER_DIR))) walk(path.join(runDir, UPPER_DIR, n));
  // run directories of earlier versions: ovl/<n>/upper
  for (const n of list(path.join(runDir, 'ovl'))) walk(path.join(runDir, 'ovl', n, 'upper'));
  return count;
}

function listPids(pids: number[]): string {
  return pids.length <= 10 ? `pid ${pids.join(', ')}` : `pid ${pids.slice(0, 10).join(', ')} ...`;
}

function readStatus(attemptDir: string): AttemptStatus | undefined {
  try {
    return JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as AttemptStatus;
  } catch {
    return undefined;
  }
}

/** The records of a buffer file (from TRACE_DATA_OFFSET on). The collector punches holes
 * behind what it read, so the data may start after zeros, and then mid-record: the first
 * offset from which records decode to the end (or to the end mark) is taken. */
function readBuffer(file: string, pid: number): { events: TraceEvent[]; problem?: string } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const data = Buffer.alloc(Math.max(0, size - TRACE_DATA_OFFSET));
    const got = data.length > 0 ? readSync(fd, data, 0, data.length, TRACE_DATA_OFFSET) : 0;
    return recordsOf(data.subarray(0, got), pid);
  } finally {
    closeSync(fd);
  }
}

/** The committed records of a buffer file's recorder region (sparse: only the part up to
 * its write position is read); undefined when the file has none (a hole). Its header
 * (struct uwrx_rec_header, src/native/include/uwrx_recorder.h): magic, then the write
 * position and the file size (u64 at 16 and 24); records from REC_DATA_OFFSET on. */
function readRecorderRegion(file: string, pid: number): { events: TraceEvent[]; problem?: string } | undefined {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(32);
    if (readSync(fd, header, 0, header.length, 0) < header.length || header.readBigUInt64LE(0) === 0n) return undefined;
    if (header.readBigUInt64LE(0) !== REC_MAGIC) return { events: [], problem: 'not a recorder region' };
    const limit = header.readBigUInt64LE(16) < header.readBigUInt64LE(24) ? header.readBigUInt64LE(16) : header.readBigUInt64LE(24);
    const end = Math.min(Number(limit), TRACE_DATA_OFFSET);
    if (end <= REC_DATA_OFFSET) return { events: [] };
    const data = Buffer.alloc(end - REC_DATA_OFFSET);
    const got = readSync(fd, data, 0, data.length, REC_DATA_OFFSET);
    return recordsOf(data.subarray(0, got), pid);
  } finally {
    closeSync(fd);
  }
}

function recordsOf(data: Buffer, pid: number): { events: TraceEvent[]; problem?: string } {
  let start = 0;
  while (start + 8 <= data.length && data.readBigUInt64LE(start) === 0n) start += 8;
  if (start === 0 || start >= data.length) return decodeFrom(data, 0, pid);
  for (let at = start; at < Math.min(data.length, start + 65536); at += 8) {
    const r = decodeFrom(data, at, pid);
    if (!r.problem && r.events.length > 0) return at === start ? r : { ...r, problem: `${at - start} bytes of a record cut by the collector skipped` };
  }
  return { events: [], problem: 'no readable record' };
}

function decodeFrom(data: Buffer, at: number, pid: number): { events: TraceEvent[]; problem?: string } {
  const events: TraceEvent[] = [];
  try {
    const r = decodeEvents(data, at, data.length, events);
    if (events.some((e) => e.pid !== pid)) return { events: [], problem: 'records of another process' };
    if (!r.atEnd && r.next + EVENT_HEADER_SIZE <= data.length) return { events, problem: `a cut record at offset ${r.next}` };
    return { events };
  } catch (err) {
    if (!(err instanceof TraceFormatError)) throw err;
    return { events, problem: err.message };
  }
}

/** The binary event a perfetto instant event was written from (the inverse of the
 * merger's annotations); undefined for a type this version does not know. */
function traceEventOf(e: RecordedEvent): TraceEvent | undefined {
  const def = eventDef(e.type);
  if (!def) return undefined;
  const ev: Record<string, unknown> = { type: e.type, pid: e.pid, tid: e.tid, time: e.time };
  for (const [name] of def.fields) ev[name] = typeof e.args[name] === 'number' ? e.args[name] : 0;
  for (const b of def.blobs) {
    const v = e.args[b];
    if (b === 'argv') ev[b] = joinArgv(Array.isArray(v) ? v.map((a) => unescapeBytes(a)) : []);
    else if (b === 'data') {
      ev[b] = typeof e.args.text === 'string' ? Buffer.from(e.args.text, 'utf8') : Buffer.from(String(e.args.base64 ?? ''), 'base64');
    } else if (b === 'addr' && e.type === 'connect') ev[b] = addressBytes(String(v ?? ''), Number(e.args.family));
    else ev[b] = typeof v === 'string' ? unescapeBytes(v) : Buffer.alloc(0);
  }
  if (e.args.truncated === true) ev.flags0 = EVENT_FLAG_TRUNCATED;
  return ev as unknown as TraceEvent;
}

function addressBytes(text: string, family: number): Buffer {
  if (family === 2 && /^\d+\.\d+\.\d+\.\d+$/.test(text)) return Buffer.from(text.split('.').map(Number));
  if (family === 10 && /^[0-9a-f]+(:[0-9a-f]+){7}$/.test(text)) {
    const b = Buffer.alloc(16);
    text.split(':').forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
    return b;
  }
  return unescapeBytes(text);
}

/** procs.tsv rows from spawn, exec and exit events. */
function processTable(byPid: Map<number, TraceEvent[]>): ProcessRecord[] {
  const procs = new Map<number, ProcessRecord & { execs: number }>();
  const get = (pid: number, time: number): ProcessRecord & { execs: number } => {
    let p = procs.get(pid);
    if (!p) {
      p = { pid, ppid: 1, key: '', start: BigInt(time), end: null, exitCode: null, signal: null, cwd: null, exe: null, argv: [], execs: 0 };
      procs.set(pid, p);
    }
    if (BigInt(time) < p.start) p.start = BigInt(time);
    return p;
  };
  const ordinals = new Map<number, number>();
  const all = [...byPid.values()].flat().sort((a, b) => a.time - b.time);
  for (const ev of all) {
    const p = get(ev.pid, ev.time);
    if (ev.type === 'spawn' && !ev.thread) {
      const child = get(ev.child, ev.time);
      if (child.key === '') {
        child.ppid = ev.pid;
        const n = ordinals.get(ev.pid) ?? 0;
        ordinals.set(ev.pid, n + 1);
        child.key = `${ev.pid}.${n}`;
      }
    } else if (ev.type === 'exec' && ev.result >= 0) {
      if (p.execs++ === 0) p.argv = splitArgv(ev.argv).map((a) => Buffer.from(a));
      p.exe = Buffer.from(ev.path);
    } else if (ev.type === 'exit') {
      p.end = BigInt(ev.time);
      p.exitCode = ev.signal ? null : ev.status;
      p.signal = ev.signal || null;
    }
  }
  let rootOrdinal = 0;
  const rows = [...procs.values()].sort((a, b) => a.pid - b.pid);
  for (const p of rows) if (p.key === '') p.key = `1.${rootOrdinal++}`;
  return rows.map(({ execs: _e, ...r }) => r);
}

