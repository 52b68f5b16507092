// `uwrx inspect events|procs|output|files <attempt>` and `uwrx check <attempt>`, over the
// record reader (src/record/reader.ts) that the UI and the library use as well.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { escapeBytes } from '../record/escape.js';
import { FilesMetaError, parseFilesMeta, type FileMetaEntry } from '../record/files-meta.js';
import { PROCESS_TABLE_FILE, parseProcessTable, type ProcessRecord } from '../record/procs.js';
import { commandLine, openRecord, requireAttemptDirectory, type AttemptRecord, type RecordFilter, type RecordProcess } from '../record/reader.js';
import { outputOf } from '../record/output-index.js';
import { outputBytes, readTrace, type RecordedEvent } from '../record/trace.js';
import { writeView, type Out } from './out.js';
import { leftoverBuffers, leftoverRunDirs } from './repair.js';
import { expectedFinal, isRemoval, parentKey, pathKey, replayHistory, type Kind } from '../record/history.js';
import { isWhiteout, layersFor, resolveBytes, versionPids, type Layer } from '../record/resolve.js';
import { lstatSyncOrNull } from '../fs.js';
import { problemLines, type Problem } from '../record/problems.js';

export type InspectKind = 'events' | 'procs' | 'output' | 'files';

export interface InspectOptions {
  format: 'text' | 'json';
  /** events, output: only this process. */
  pid?: number;
  /** files: who wrote each file (pid, operation, executable). */
  who?: boolean;
  /** files: only the files this process touched. */
  byPid?: number;
  /** procs: as a tree. */
  tree?: boolean;
  /** files, events: seconds since the record's first process. */
  since?: number;
  until?: number;
  /** files, events: only this path and what is below it. */
  pathPrefix?: string;
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
  if (kind === 'files' && opts.reads) {
    // the access index alone: no need to decode the trace
    const { formatAccesses, readAccesses } = await import('./reads.js');
    return writeView(out, (w) => {
      w.write(formatAccesses(readAccesses(attemptDir, opts.byPid), opts.format));
      return 0;
    });
  }
  const record = openRecord(attemptDir);
  if (!existsSync(path.join(attemptDir, 'perfetto')) && !existsSync(path.join(attemptDir, PROCESS_TABLE))) {
    throw new UsageError(`${attemptDir} has no perfetto file (the run did not finish; uwrx check --repair rebuilds what it can)`);
  }
  return writeView(out, (w) => {
    if (kind === 'events') inspectEvents(record, opts, w);
    else if (kind === 'procs') inspectProcs(record, opts, w);
    else if (kind === 'output') inspectOutput(record, opts, w);
    else inspectFiles(record, opts, w);
    return 0;
  });
}

function filterOf(opts: InspectOptions, pid?: number): RecordFilter {
  return {
    ...(pid !== undefined ? { pid } : {}),
    ...(opts.since !== undefined ? { since: opts.since } : {}),
    ...(opts.until !== undefined ? { until: opts.until } : {}),
    ...(opts.pathPrefix !== undefined ? { pathPrefix: opts.pathPrefix } : {}),
  };
}

function formatArg(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(' ')}]`;
  if (typeof value === 'string') return /^[\x21-\x7e]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  return String(value);
}

function seconds(ns: number, t0: number): string {
  return ((ns - t0) / 1e9).toFixed(6);
}

function inspectEvents(record: AttemptRecord, opts: InspectOptions, w: Out): void {
  const events = record.events(filterOf(opts, opts.pid));
  if (opts.format === 'json') {
    w.line(JSON.stringify(events.map((e) => ({ time: e.time, pid: e.pid, tid: e.tid, type: e.type, ...e.args })), null, 1));
    return;
  }
  const t0 = record.startTime;
  for (const e of events) {
    const args = Object.entries(e.args).map(([k, v]) =>
      k === 'text' || k === 'base64' ? `bytes=${outputBytes(e).length}`
      : k === 'mode' && typeof v === 'number' ? `mode=0${v.toString(8)}`
      : `${k}=${formatArg(v)}`,
    );
    w.line(`${seconds(e.time, t0)} ${e.pid}${e.tid !== e.pid ? `/${e.tid}` : ''} ${e.type} ${args.join(' ')}`.trimEnd());
  }
}

/** A process as inspect shows it (json): the table's fields, and the environment when
 * the record has one. */
function procJson(record: AttemptRecord, p: RecordProcess): Record<string, unknown> {
  const env = record.environment(p.pid);
  return {
    pid: p.pid,
    ppid: p.ppid,
    key: p.key,
    cmdline: p.argv,
    exe: p.exe,
    cwd: p.cwd,
    start: p.start,
    end: p.end,
    status: p.exitCode,
    signal: p.signal,
    ...(env ? { env } : {}),
  };
}

function statusText(p: RecordProcess): string {
  return p.signal !== null ? `signal ${p.signal}` : p.exitCode === null ? '?' : String(p.exitCode);
}

function durationText(p: RecordProcess): string {
  return p.start === null || p.end === null ? '?' : seconds(p.end, p.start);
}

function inspectProcs(record: AttemptRecord, opts: InspectOptions, w: Out): void {
  const procs = record.processes();
  if (opts.tree) {
    inspectTree(record, opts, w);
    return;
  }
  if (opts.format === 'json') {
    w.line(JSON.stringify(procs.map((p) => procJson(record, p)), null, 1));
    return;
  }
  const t0 = record.startTime;
  w.line('PID\tPPID\tSTATUS\tSTART\tDURATION\tCMDLINE');
  for (const p of procs) {
    const start = p.start === null ? '?' : seconds(p.start, t0);
    w.line(`${p.pid}\t${p.ppid}\t${statusText(p)}\t${start}\t${durationText(p)}\t${commandLine(p)}`);
  }
}

/** `procs --tree`: children under their parent. Text draws the branches; json nests
 * `children` arrays. */
function inspectTree(record: AttemptRecord, opts: InspectOptions, w: Out): void {
  if (opts.format === 'json') {
    const node = (p: RecordProcess): unknown => ({ ...procJson(record, p), children: record.children(p.pid).map(node) });
    w.line(JSON.stringify(record.roots().map(node), null, 1));
    return;
  }
  // Iterative: a deep chain of processes must not exhaust the stack.
  const stack: { p: RecordProcess; prefix: string; branch: string }[] = record
    .roots()
    .reverse()
    .map((p) => ({ p, prefix: '', branch: '' }));
  while (stack.length > 0) {
    const { p, prefix, branch } = stack.pop()!;
    w.line(`${prefix}${branch}${p.pid} [${statusText(p)}, ${durationText(p)} s] ${commandLine(p)}`);
    const kids = record.children(p.pid);
    const childPrefix = prefix + (branch === '' ? '' : branch === '├─ ' ? '│  ' : '   ');
    for (let i = kids.length - 1; i >= 0; i--) {
      stack.push({ p: kids[i]!, prefix: childPrefix, branch: i === kids.length - 1 ? '└─ ' : '├─ ' });
    }
  }
}

/** Text: the exact bytes (of one process with a pid, else of all in time order). */
function inspectOutput(record: AttemptRecord, opts: InspectOptions, w: Out): void {
  if (opts.pid !== undefined && !record.process(opts.pid)) throw new UsageError(`no process ${opts.pid} in this trace`);
  // the bytes in the order they were written: the output index has them so (the
  // trace's times of records read late do not say it, output-index.ts)
  const unfiltered = opts.since === undefined && opts.until === undefined && opts.pathPrefix === undefined;
  const indexed = opts.format !== 'json' && unfiltered ? outputOf(record.dir, opts.pid) : null;
  if (indexed) return void w.write(indexed);
  const events = record.events(filterOf(opts, opts.pid)).filter((e) => e.type === 'output');
  if (opts.format === 'json') {
    const rows = events.map((e: RecordedEvent) => {
      const bytes = outputBytes(e);
      return { time: e.time, pid: e.pid, tid: e.tid, fd: e.args.fd, ...(typeof e.args.text === 'string' ? { text: bytes.toString('utf8') } : { base64: bytes.toString('base64') }) };
    });
    w.line(JSON.stringify(rows, null, 1));
    return;
  }
  for (const e of events) w.write(outputBytes(e));
}

function inspectFiles(record: AttemptRecord, opts: InspectOptions, w: Out): void {
  let entries = record.fileOperations(filterOf(opts));
  if (opts.byPid !== undefined && !opts.who) {
    filesAsSeenBy(record, entries, opts.byPid, opts.format, w);
    return;
  }
  if (opts.byPid !== undefined) entries = entries.filter((e) => e.pid === opts.byPid);
  if (opts.format === 'json') {
    const rows = opts.who
      ? entries.map((e) => ({ path: e.path, pid: e.pid, operation: e.operation, exec: e.exec, ...(e.time !== undefined ? { time: e.time } : {}) }))
      : [...new Set(entries.map((e) => e.path))];
    w.line(JSON.stringify(rows, null, 1));
    return;
  }
  if (opts.who) {
    for (const e of entries) w.line(`${e.path}\t${e.pid}\t${e.operation}\t${e.exec}`);
  } else for (const p of new Set(entries.map((e) => e.path))) w.line(p);
}

/** `files --by-pid N`: every path of the attempt's files.meta as process N saw it (the
 * resolution rule as of N: which layer, or absent) and what N itself did to it. */
function filesAsSeenBy(record: AttemptRecord, entries: ReturnType<AttemptRecord['fileOperations']>, pid: number, format: 'text' | 'json', w: Out): void {
  const byPath = new Map<string, string[]>();
  for (const e of entries) {
    let wrote = byPath.get(e.path);
    if (!wrote) byPath.set(e.path, (wrote = []));
    if (e.pid === pid && !wrote.includes(e.operation)) wrote.push(e.operation);
  }
  const rows = [...byPath].map(([file, wrote]) => {
    const r = record.resolve(file, pid);
    const layer = r.layer;
    const where = !layer
      ? 'absent'
      : layer.real
        ? 'real'
        : `${layer.depth === 0 ? '' : path.relative(record.dir, layer.attemptDir) + '/'}${path.basename(layer.root)}/`;
    return { path: file, saw: r.kind === 'found' ? where : 'absent', layer: where, wrote };
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
  return writeView(out, (w) => checkAttempt(attemptDir, w));
}

function checkAttempt(attemptDir: string, w: Out): number {
  const problems: string[] = [];
  requireAttemptDirectory(attemptDir);
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
  const notes = checkEnding(attemptDir, problems);

  for (const p of problems) w.line(p);
  for (const n of notes) w.line(n);
  if (problems.length === 0) w.line(`ok: ${trace.processes.size} processes, ${trace.events.length} events`);
  return problems.length === 0 ? 0 : 1;
}

/** How the attempt ended: a run killed before it finished leaves no status and its
 * buffers in the run directory (problems, until --repair); a repaired attempt says what
 * it lost (notes). */
function checkEnding(attemptDir: string, problems: string[]): string[] {
  for (const runDir of leftoverRunDirs(attemptDir)) {
    const buffers = leftoverBuffers(runDir);
    if (buffers.length > 0) problems.push(`${runDir}: ${buffers.length} trace buffers left by a run that did not finish (uwrx check --repair recovers them)`);
  }
  const file = path.join(attemptDir, 'status');
  let status: { complete?: unknown; lost?: unknown; reason?: unknown; problems?: Problem[] };
  try {
    status = JSON.parse(readFileSync(file, 'utf8')) as typeof status;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(code === 'ENOENT' ? 'status: missing: uwrx did not finish this attempt (killed?); uwrx check --repair rebuilds what it can' : `status: damaged (${(err as Error).message})`);
    return [];
  }
  // the problems the run itself counted
  if (Array.isArray(status.problems)) problems.push(...problemLines(status.problems));
  const notes: string[] = [];
  if (status.complete === false) notes.push(`incomplete: ${typeof status.reason === 'string' ? status.reason : 'the run was interrupted'}`);
  if (Array.isArray(status.lost)) for (const l of status.lost) notes.push(`lost: ${String(l)}`);
  return notes;
}

/** Logical pids of the process table (procs.tsv); undefined when it is missing or broken. */
function readProcessTable(attemptDir: string, problems: string[]): Set<number> | undefined {
  const file = path.join(attemptDir, PROCESS_TABLE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${PROCESS_TABLE}: process table missing (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}: ${file})`);
    return undefined;
  }
  let records: ProcessRecord[];
  try {
    records = parseProcessTable(text);
  } catch (err) {
    problems.push((err as Error).message);
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
