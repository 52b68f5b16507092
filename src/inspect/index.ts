// `uwrx inspect events|procs|output|files <attempt>` and `uwrx check <attempt>`.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { escapeBytes, unescapeBytes } from '../record/escape.js';
import { FilesMetaError, parseFilesMeta, type FileMetaEntry } from '../record/files-meta.js';
import { expectedFinal, isRemoval, parentKey, pathKey, replayHistory, type Kind } from '../record/history.js';
import { isWhiteout, layersFor, resolveBytes, resolveFile, versionPids, type Layer } from '../record/resolve.js';
import { problemLines, type Problem } from '../record/problems.js';
import { PROCESS_TABLE_FILE, parseProcessTable, type ProcessRecord } from '../sandbox/process-table.js';
import { outputBytes, pathBytes, readTrace, type RecordedEvent, type RecordedProcess, type RecordedTrace } from './trace.js';
import { errnoOf, lstatSyncOrNull } from '../fs.js';

export type InspectKind = 'events' | 'procs' | 'output' | 'files';

export interface InspectOptions {
  format: 'text' | 'json';
  /** events, output: only this process. */
  pid?: number;
  /** files: who wrote each file (pid, operation, executable). */
  who?: boolean;
  /** files: only the files this process touched. */
  byPid?: number;
  /** files: every access (read, missing, stat, readdir, readlink, exec, write ...) from
   * the access index. */
  reads?: boolean;
}

const PROCESS_TABLE = PROCESS_TABLE_FILE;

export async function inspect(
  kind: InspectKind,
  attemptDir: string,
  opts: InspectOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const w = new Out(out);
  if (kind === 'files' && opts.reads) {
    // the access index alone: no need to decode the trace
    const { formatAccesses, readAccesses } = await import('./reads.js');
    w.write(formatAccesses(readAccesses(attemptDir, opts.byPid), opts.format));
    await w.done();
    return 0;
  }
  const trace = loadTrace(attemptDir);
  if (kind === 'events') inspectEvents(trace, opts, w);
  else if (kind === 'procs') inspectProcs(attemptDir, trace, opts, w);
  else if (kind === 'output') inspectOutput(trace, opts, w);
  else inspectFiles(attemptDir, trace, opts, w);
  await w.done();
  return 0;
}

function loadTrace(attemptDir: string): RecordedTrace {
  const file = path.join(attemptDir, 'perfetto');
  if (!existsSync(attemptDir)) throw new UsageError(`no such attempt directory: ${attemptDir}`);
  if (!existsSync(file)) throw new UsageError(`${attemptDir} has no perfetto file (not an attempt directory, or the run did not finish)`);
  const trace = readTrace(file);
  const fatal = trace.problems.find((p) => p.startsWith('perfetto: ') && !p.includes('sequence'));
  if (fatal && trace.packets === 0) throw new UsageError(`${file}: ${fatal.slice('perfetto: '.length)}`);
  return trace;
}

/** Writes with backpressure, so a large output is not buffered whole. */
class Out {
  private pending: Promise<void> = Promise.resolve();
  private waiting = false;
  constructor(private readonly stream: NodeJS.WritableStream) {}
  write(chunk: string | Buffer): void {
    // One 'drain' covers every write queued before it: waiting for one per full write
    // would wait for drains that never come (and Node exits with 13).
    if (!this.stream.write(chunk) && !this.waiting) {
      this.waiting = true;
      this.pending = new Promise((resolve) =>
        this.stream.once('drain', () => {
          this.waiting = false;
          resolve();
        }),
      );
    }
  }
  line(s: string): void {
    this.write(s + '\n');
  }
  done(): Promise<void> {
    return this.pending;
  }
}

function formatArg(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(' ')}]`;
  if (typeof value === 'string') return /^[\x21-\x7e]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  return String(value);
}

function seconds(ns: number, t0: number): string {
  return ((ns - t0) / 1e9).toFixed(6);
}

function inspectEvents(trace: RecordedTrace, opts: InspectOptions, w: Out): void {
  const events = trace.events.filter((e) => opts.pid === undefined || e.pid === opts.pid);
  if (opts.format === 'json') {
    w.line(JSON.stringify(events.map((e) => ({ time: e.time, pid: e.pid, tid: e.tid, type: e.type, ...e.args })), null, 1));
    return;
  }
  const t0 = trace.events[0]?.time ?? 0;
  for (const e of events) {
    const args = Object.entries(e.args).map(([k, v]) =>
      k === 'text' || k === 'base64' ? `bytes=${outputBytes(e).length}`
      : k === 'mode' && typeof v === 'number' ? `mode=0${v.toString(8)}`
      : `${k}=${formatArg(v)}`,
    );
    w.line(`${seconds(e.time, t0)} ${e.pid}${e.tid !== e.pid ? `/${e.tid}` : ''} ${e.type} ${args.join(' ')}`.trimEnd());
  }
}

/** The process table when the attempt has one (it knows processes that left no events),
 * else what the trace says. */
function processList(attemptDir: string, trace: RecordedTrace): RecordedProcess[] {
  let table: ProcessRecord[] | undefined;
  try {
    table = parseProcessTable(readFileSync(path.join(attemptDir, PROCESS_TABLE), 'utf8'));
  } catch {
    table = undefined;
  }
  if (!table) return [...trace.processes.values()].sort((a, b) => a.pid - b.pid);
  return table.map((r) => {
    const traced = trace.processes.get(r.pid);
    const cmdline = r.argv.map((a) => escapeBytes(a));
    return {
      pid: r.pid,
      ppid: r.ppid,
      cmdline,
      name: traced?.name ?? cmdline[0] ?? '',
      start: Number(r.start),
      end: r.end === null ? undefined : Number(r.end),
      status: r.exitCode ?? undefined,
      signal: r.signal ?? undefined,
      threads: traced?.threads ?? [],
    };
  });
}

function inspectProcs(attemptDir: string, trace: RecordedTrace, opts: InspectOptions, w: Out): void {
  const procs = processList(attemptDir, trace);
  if (opts.format === 'json') {
    w.line(JSON.stringify(procs, null, 1));
    return;
  }
  const t0 = Math.min(...procs.map((p) => p.start ?? Infinity));
  w.line('PID\tPPID\tSTATUS\tSTART\tDURATION\tCMDLINE');
  for (const p of procs) {
    const status = p.signal ? `signal ${p.signal}` : p.status === undefined ? '?' : String(p.status);
    const start = p.start === undefined ? '?' : seconds(p.start, t0);
    const dur = p.start === undefined || p.end === undefined ? '?' : seconds(p.end, p.start);
    w.line(`${p.pid}\t${p.ppid}\t${status}\t${start}\t${dur}\t${p.cmdline.join(' ')}`);
  }
}

function outputEvents(trace: RecordedTrace, pid: number | undefined): RecordedEvent[] {
  return trace.events.filter((e) => e.type === 'output' && (pid === undefined || e.pid === pid));
}

/** Text: the exact bytes (of one process with a pid, else of all in time order). */
function inspectOutput(trace: RecordedTrace, opts: InspectOptions, w: Out): void {
  if (opts.pid !== undefined && !trace.processes.has(opts.pid)) throw new UsageError(`no process ${opts.pid} in this trace`);
  const events = outputEvents(trace, opts.pid);
  if (opts.format === 'json') {
    const rows = events.map((e) => {
      const bytes = outputBytes(e);
      return { time: e.time, pid: e.pid, tid: e.tid, fd: e.args.fd, ...(typeof e.args.text === 'string' ? { text: bytes.toString('utf8') } : { base64: bytes.toString('base64') }) };
    });
    w.line(JSON.stringify(rows, null, 1));
    return;
  }
  for (const e of events) w.write(outputBytes(e));
}

const O_ACCMODE = 3;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;

/** File operations from the trace, for attempts without files.meta. */
function fileOpsFromTrace(trace: RecordedTrace): FileMetaEntry[] {
  const exec = new Map<number, Buffer>();
  for (const p of trace.processes.values()) exec.set(p.pid, p.cmdline[0] ? unescapeBytes(p.cmdline[0]) : Buffer.alloc(0));
  const out: FileMetaEntry[] = [];
  for (const e of trace.events) {
    const result = e.args.result;
    if (typeof result === 'number' && result < 0) continue;
    if (e.type === 'exec') exec.set(e.pid, pathBytes(e.args.path));
    const add = (p: unknown, operation: FileMetaEntry['operation']): void => {
      out.push({ path: pathBytes(p as string), pid: e.pid, operation, execPath: exec.get(e.pid) ?? Buffer.alloc(0) });
    };
    const flags = typeof e.args.flags === 'number' ? e.args.flags : 0;
    if (e.type === 'open' && ((flags & O_ACCMODE) !== 0 || flags & (O_CREAT | O_TRUNC))) add(e.args.path, flags & O_CREAT ? 'create' : 'write');
    else if (e.type === 'truncate') add(e.args.path, 'write');
    else if (e.type === 'unlink') add(e.args.path, 'delete');
    else if (e.type === 'rename') {
      add(e.args.from, 'rename_from');
      add(e.args.to, 'rename_to');
    } else if (e.type === 'mkdir' || e.type === 'rmdir' || e.type === 'chmod' || e.type === 'chown') add(e.args.path, e.type);
  }
  return out;
}

function inspectFiles(attemptDir: string, trace: RecordedTrace, opts: InspectOptions, w: Out): void {
  const metaFile = path.join(attemptDir, 'files.meta');
  let entries: FileMetaEntry[];
  if (existsSync(metaFile)) {
    try {
      entries = parseFilesMeta(readFileSync(metaFile, 'utf8'));
    } catch (err) {
      if (err instanceof FilesMetaError) throw new UsageError(err.message);
      throw err;
    }
  } else entries = fileOpsFromTrace(trace);
  if (opts.byPid !== undefined && !opts.who) {
    filesAsSeenBy(attemptDir, entries, opts.byPid, opts.format, w);
    return;
  }
  if (opts.byPid !== undefined) entries = entries.filter((e) => e.pid === opts.byPid);
  if (opts.format === 'json') {
    const rows = opts.who
      ? entries.map((e) => ({ path: escapeBytes(e.path), pid: e.pid, operation: e.operation, exec: escapeBytes(e.execPath) }))
      : [...new Set(entries.map((e) => escapeBytes(e.path)))];
    w.line(JSON.stringify(rows, null, 1));
    return;
  }
  if (opts.who) {
    for (const e of entries) w.line(`${escapeBytes(e.path)}\t${e.pid}\t${e.operation}\t${escapeBytes(e.execPath)}`);
  } else for (const p of new Set(entries.map((e) => escapeBytes(e.path)))) w.line(p);
}

/** `files --by-pid N`: every path of the attempt's files.meta as process N saw it (the
 * resolution rule as of N: which layer, or absent) and what N itself did to it. */
function filesAsSeenBy(attemptDir: string, entries: FileMetaEntry[], pid: number, format: 'text' | 'json', w: Out): void {
  const byPath = new Map<string, { path: Buffer; wrote: string[] }>();
  for (const e of entries) {
    const key = e.path.toString('latin1');
    let row = byPath.get(key);
    if (!row) byPath.set(key, (row = { path: e.path, wrote: [] }));
    if (e.pid === pid && !row.wrote.includes(e.operation)) row.wrote.push(e.operation);
  }
  const rows = [...byPath.values()].map((row) => {
    const r = resolveFile(attemptDir, row.path.toString('utf8'), pid);
    const layer = r.layer;
    const where = !layer
      ? 'absent'
      : layer.real
        ? 'real'
        : `${layer.depth === 0 ? '' : path.relative(attemptDir, layer.attemptDir) + '/'}${path.basename(layer.root)}/`;
    return { path: escapeBytes(row.path), saw: r.kind === 'found' ? where : 'absent', layer: where, wrote: row.wrote };
  });
  if (format === 'json') {
    w.line(JSON.stringify(rows, null, 1));
    return;
  }
  for (const r of rows) {
    const layer = r.saw === 'absent' && r.layer !== 'absent' ? `absent (${r.layer})` : r.saw;
    w.line(`${r.path}\t${layer}\t${r.wrote.length ? r.wrote.join(',') : '-'}`);
  }
}

/** Validates an attempt: the perfetto file decodes and follows the format's rules, every
 * process it references is in the process table, and files.meta agrees with files/.
 * Prints one problem per line; 0 when there is none. */
export async function check(attemptDir: string, out: NodeJS.WritableStream): Promise<number> {
  const w = new Out(out);
  const problems: string[] = [];
  if (!existsSync(attemptDir) || !statSync(attemptDir).isDirectory()) throw new UsageError(`no such attempt directory: ${attemptDir}`);
  const trace = readTrace(path.join(attemptDir, 'perfetto'));
  problems.push(...trace.problems);

  const tablePids = readProcessTable(attemptDir, problems);
  if (tablePids) {
    for (const pid of trace.processes.keys()) {
      if (!tablePids.has(pid)) problems.push(`${PROCESS_TABLE}: process ${pid} is in the trace but not in the process table`);
    }
  }
  for (const e of trace.events) {
    if (!trace.processes.has(e.pid)) problems.push(`perfetto: event "${e.type}" of unknown process ${e.pid}`);
  }
  for (const p of trace.processes.values()) {
    // 0: the root of the tree; 1: uwrx itself.
    if (p.ppid > 1 && !trace.processes.has(p.ppid)) problems.push(`perfetto: process ${p.pid} has unknown parent ${p.ppid}`);
  }
  checkFiles(attemptDir, tablePids ?? new Set(trace.processes.keys()), problems);
  problems.push(...statusProblems(attemptDir));

  for (const p of problems) w.line(p);
  if (problems.length === 0) w.line(`ok: ${trace.processes.size} processes, ${trace.events.length} events`);
  await w.done();
  return problems.length === 0 ? 0 : 1;
}

/** The problems the run itself counted (its `status`), one line each; none when there
 * is no status (an attempt cut short). */
function statusProblems(attemptDir: string): string[] {
  let text: string;
  try {
    text = readFileSync(path.join(attemptDir, 'status'), 'utf8');
  } catch {
    return [];
  }
  try {
    return problemLines((JSON.parse(text) as { problems?: Problem[] }).problems);
  } catch (err) {
    return [`status: not JSON (${(err as Error).message})`];
  }
}

/** Logical pids of the process table (procs.tsv); undefined when it is missing or broken. */
function readProcessTable(attemptDir: string, problems: string[]): Set<number> | undefined {
  const file = path.join(attemptDir, PROCESS_TABLE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${PROCESS_TABLE}: process table missing (${errnoOf(err) ?? 'unreadable'}: ${file})`);
    return undefined;
  }
  let records: ProcessRecord[];
  try {
    records = parseProcessTable(text);
  } catch (err) {
    problems.push(`${PROCESS_TABLE}: ${(err as Error).message}`);
    return undefined;
  }
  const pids = new Set<number>();
  records.forEach((r, i) => {
    if (!Number.isInteger(r.pid) || r.pid < 2) problems.push(`${PROCESS_TABLE} line ${i + 2}: "${r.pid}" is not a logical pid`);
    else pids.add(r.pid);
  });
  for (const r of records) {
    if (r.ppid > 1 && !pids.has(r.ppid)) problems.push(`${PROCESS_TABLE}: process ${r.pid} has unknown parent ${r.ppid}`);
  }
  return pids;
}

function checkFiles(attemptDir: string, pids: Set<number>, problems: string[]): void {
  const metaFile = path.join(attemptDir, 'files.meta');
  const filesDir = path.join(attemptDir, 'files');
  if (!existsSync(metaFile)) {
    if (existsSync(filesDir)) problems.push('files.meta: missing, but files/ exists');
    return;
  }
  let entries: FileMetaEntry[];
  try {
    entries = parseFilesMeta(readFileSync(metaFile, 'utf8'));
  } catch (err) {
    if (err instanceof FilesMetaError) {
      problems.push(err.message);
      return;
    }
    throw err;
  }
  const below = layersFor(attemptDir).filter((l) => l.depth !== 0);
  const kindIn = (layers: Layer[], p: Buffer): Kind => {
    const r = resolveBytes(layers, p);
    return r.kind === 'absent' ? 'absent' : lstatSyncOrNull(r.file)?.isDirectory() ? 'dir' : 'file';
  };
  const history = replayHistory(entries, (p) => kindIn(below, p));
  const all = layersFor(attemptDir);
  const skipped = readSkipped(attemptDir);
  const stores = [filesDir, ...versionPids(attemptDir).map((pid) => path.join(attemptDir, `files-${pid}`))];
  // a version that a later operation removed again (a temporary file, or one inside a
  // directory removed or renamed later) leaves nothing to store
  const removedAfter = (key: string, seq: number): boolean => {
    for (let k: string | undefined = key; k !== undefined; k = parentKey(k)) {
      if (history.get(k)?.ops.some((op) => op.seq > seq && (isRemoval(op.op) || (k !== key && op.op === 'mkdir')))) return true;
    }
    return false;
  };
  entries.forEach((e, i) => {
    const where = `files.meta line ${i + 1}`;
    if (!pids.has(e.pid)) problems.push(`${where}: process ${e.pid} is not in the process table`);
    if ((e.operation === 'create' || e.operation === 'write' || e.operation === 'rename_to') && !removedAfter(pathKey(e.path), i)) {
      const stored = stores.some((d) => storedIn(d, e.path)) || skipped.has(`${escapeBytes(e.path)}\t${e.pid}`);
      if (!stored) problems.push(`${where}: ${escapeBytes(e.path)} (${e.operation} by ${e.pid}) has no stored version in files/ or files-${e.pid}/`);
    }
  });
  // what the lines say each path is after the run, against what the store resolves to
  for (const [key, want] of expectedFinal(history)) {
    if (want === undefined) continue;
    const h = history.get(key)!;
    const got = kindIn(all, h.path);
    if (got !== want) {
      const last = h.ops[h.ops.length - 1]!;
      problems.push(`files: ${escapeBytes(h.path)} resolves to ${got} after the run, but files.meta says ${want} (line ${last.seq + 1}: ${last.op} by ${last.pid})`);
    }
  }
  if (!existsSync(filesDir)) return;
  // a file inside a directory renamed or moved into place has no line of its own
  const movedIn = (key: string): boolean => {
    for (let k = parentKey(key); k !== undefined; k = parentKey(k)) if (history.get(k)?.ops.some((op) => op.op === 'rename_to')) return true;
    return false;
  };
  for (const rel of walk(Buffer.from(filesDir), Buffer.from('/'))) {
    const key = pathKey(rel);
    if (!history.has(key) && !movedIn(key)) problems.push(`files/${escapeBytes(rel).replace(/^\//, '')}: not in files.meta`);
  }
}

function readSkipped(attemptDir: string): Set<string> {
  try {
    return new Set(readFileSync(path.join(attemptDir, 'files.skipped'), 'utf8').split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

function storedIn(dir: string, absPath: Buffer): boolean {
  const st = lstatSyncOrNull(Buffer.concat([Buffer.from(dir), absPath]));
  return st !== null && !isWhiteout(st);
}

/** Absolute sandbox paths (bytes) of the non-directories under dir. */
function* walk(dir: Buffer, prefix: Buffer): Generator<Buffer> {
  for (const entry of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    const rel = Buffer.concat([prefix, entry.name]);
    const full = Buffer.concat([dir, Buffer.from('/'), entry.name]);
    if (entry.isDirectory()) yield* walk(full, Buffer.concat([rel, Buffer.from('/')]));
    else yield rel;
  }
}
