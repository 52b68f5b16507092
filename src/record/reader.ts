// One reader of an attempt's record, shared by `uwrx inspect`, `uwrx ui` and the library
// (`openRecord`). Opening reads only the small index files (status, cmd, procs.tsv);
// files.meta, the file store and the perfetto trace are read when first asked for, so a
// record of ten thousand processes opens at once and a view pays only for what it shows.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { ACCESS_OPS, EVENT_DEFS } from '../protocol/events.js';
import { ACCESS_INDEX_FILE, AccessIndexError, accessIndexRows, forEachAccessEscaped, parseAccessIndexEscaped, type AccessRows } from './accesses.js';
import { ProtoDecodeError, readFields, Fields } from '../protocol/perfetto.js';
import { unescapeBytes } from './escape.js';
import { FilesMetaError, parseFilesMetaEscaped, type EscapedFileMetaEntry, type FileOperation } from './files-meta.js';
import { parseCommand, type AttemptStatus } from './layout.js';
import { PROCESS_TABLE_FILE, ProcessTableError, parseProcessRows } from './procs.js';
import { resolveFile, isWhiteout, versionPids, type Resolution } from './resolve.js';
import { lstatSyncOrNull } from '../fs.js';
import { outputBytes, readTrace, readTraceAsync, type ArgValue, type RecordedEvent, type RecordedTrace } from './trace.js';

export type { RecordedEvent, ArgValue } from './trace.js';
export type { FileOperation } from './files-meta.js';
export type { AttemptStatus } from './layout.js';
export type { Resolution, Layer } from './resolve.js';

/** A record that cannot be read (not an attempt, or a damaged index file). One line. */
export class RecordError extends UsageError {
  override name = 'RecordError';
}

export interface RecordProcess {
  /** Logical pid (uwrx itself is 1; the command is 2). */
  pid: number;
  /** Logical pid of the parent (1: started by uwrx, or its parent was never seen). */
  ppid: number;
  /** Tree key `<ppid>.<ordinal>` (procs.tsv); '' when the record has no process table. */
  key: string;
  /** Arguments of the first exec, escaped text (src/record/escape.ts). */
  argv: string[];
  /** Executable of the last exec, escaped; null when the process never exec'd. */
  exe: string | null;
  /** Working directory at the first exec, escaped; null when unknown. */
  cwd: string | null;
  /** CLOCK_BOOTTIME ns of first sight and of the exit; null when unknown. */
  start: number | null;
  end: number | null;
  /** Exit code; null when killed or unknown. */
  exitCode: number | null;
  /** The signal that killed it; null otherwise. */
  signal: number | null;
  /** Logical pids of its children, in pid order. */
  children: number[];
}

/** A process's command as one line: its arguments, else its executable; a process that
 * never exec'd (a fork running on in its parent's program: a subshell, a server's worker)
 * says whose fork it is. */
export function commandLine(p: RecordProcess): string {
  return p.argv.join(' ') || p.exe || `(fork of ${p.ppid})`;
}

export interface RecordFileOperation {
  /** Absolute path in the sandbox, escaped text. */
  path: string;
  pid: number;
  operation: FileOperation;
  /** The executable the process was running, escaped. */
  exec: string;
  /** Trace time (ns) of the operation, when the query needed the trace (time filters). */
  time?: number;
}

/** One stored version of a file in this attempt. */
export interface FileVersion {
  /** Store directory: 'files' (first version) or 'files-<pid>'. */
  layer: string;
  /** The process whose version it is (files-<pid>), or the first writer (files/). */
  pid: number | null;
  /** The version on disk. */
  file: string;
  /** The path was absent at this position (an overlayfs whiteout). */
  deleted: boolean;
}

/** A file the process looked at or changed (reads, probes, stats, listings, execs,
 * writes): one per process, operation and path from the access index (accesses.tsv),
 * else one per trace event. */
export interface RecordAccess {
  pid: number;
  /** Trace time (ns); null when it comes from the access index. */
  time: number | null;
  /** read, missing, stat, readdir, readlink, exec, write, delete, rename_from, rename_to,
   * mkdir, rmdir, chmod, chown (the access index's operations). */
  op: string;
  /** Escaped text. */
  path: string;
  /** The call's result; null from the access index. */
  result: number | null;
  /** How often the process did this (access index only). */
  count?: number;
}

/** The operations of RecordAccess that only look (the others change the file). */
export const READ_ACCESS_OPS: ReadonlySet<string> = new Set(['read', 'missing', 'stat', 'readdir', 'readlink', 'exec']);

/** A network event of a process (connect, dns, download, and later kinds). */
export interface NetworkExchange {
  pid: number;
  time: number;
  type: string;
  args: Record<string, ArgValue>;
}

/** A partial rebuild decision: the process was answered from the record. */
export interface RebuildDecision {
  pid: number;
  time: number;
  decision: string;
  reason: string;
  status: number | null;
}

export interface RecordFilter {
  /** Only this process. */
  pid?: number;
  /** Seconds since the record's start (its first process): at or after. */
  since?: number;
  /** Seconds since the record's start: at or before. */
  until?: number;
  /** Only this path and the paths below it (a file or a directory). */
  pathPrefix?: string;
}

export interface AttemptRecord {
  readonly dir: string;
  readonly step: string;
  readonly attempt: number;
  /** The command line of the attempt (cmd). */
  readonly command: string[];
  /** How the attempt ended; undefined when the run was cut short. */
  readonly status: AttemptStatus | undefined;
  /** CLOCK_BOOTTIME ns of the first process: time 0 of the time filters. */
  readonly startTime: number;
  /** Every process, in pid order. */
  processes(): RecordProcess[];
  process(pid: number): RecordProcess | undefined;
  /** Processes whose parent is not in the record (usually just the command). */
  roots(): RecordProcess[];
  children(pid: number): RecordProcess[];
  /** files.meta, in the order the operations happened (from the trace when absent). */
  fileOperations(filter?: RecordFilter): RecordFileOperation[];
  /** The versions of `file` (absolute path) this attempt stores, oldest first. */
  versions(file: string): FileVersion[];
  /** The version process `pid` wrote of `file`, when it is stored. */
  versionWrittenBy(file: string, pid: number): FileVersion | undefined;
  /** The resolution rule: what process `asOfPid` (default: after the run) sees. */
  resolve(file: string, asOfPid?: number): Resolution;
  /** Trace events in time order (decodes the trace on first use). */
  events(filter?: RecordFilter): RecordedEvent[];
  /** Exact bytes a process wrote to stdout/stderr (fd 1 or 2; both when omitted). */
  output(pid: number, fd?: 1 | 2): Buffer;
  /** Environment of the process's exec, when the record has it. */
  environment(pid: number): string[] | undefined;
  /** Recorded reads, probes and stats; empty when the record has none. */
  accesses(filter?: RecordFilter): RecordAccess[];
  /** Every access of accesses(), in its order, handed to `visit` one by one: from the
   * access index without an object per access (partial rebuild reads a build's tens of
   * thousands once). */
  eachAccess(visit: (pid: number, op: string, path: string) => void): void;
  /** The attempt's accesses.tsv as rows (accessIndexRows); undefined without one. */
  accessRows(): AccessRows | undefined;
  networkExchanges(pid?: number): NetworkExchange[];
  rebuildDecisions(pid?: number): RebuildDecision[];
  /** Domains with a network record (net/<domain>/). */
  networkDomains(): string[];
  /** What the reader found broken while reading (empty for a sound record). */
  problems(): string[];
  /** True once the trace is decoded (the first call that needs it, or loadTrace). */
  readonly traceLoaded: boolean;
  /** Decodes the trace in steps that yield to the event loop; later calls need no wait. */
  loadTrace(): Promise<void>;
}

/** Throws a RecordError naming `dir` unless it is an attempt directory: seed.txt is
 * written first; a bare trace (perfetto, procs.tsv) is readable too. */
export function requireAttemptDirectory(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new RecordError(`${dir}: no such attempt directory`);
  }
  if (!st.isDirectory()) throw new RecordError(`${dir}: not a directory`);
  if (!['seed.txt', 'perfetto', PROCESS_TABLE_FILE].some((f) => existsSync(path.join(dir, f)))) {
    throw new RecordError(`${dir}: not an attempt directory (expected <build>/<step>/<attempt> with seed.txt)`);
  }
}

/** Opens an attempt directory (`<build>/<step>/<attempt>`). Throws a RecordError with
 * one line when it is not an attempt or its process table is damaged. */
export function openRecord(attemptDir: string): AttemptRecord {
  return new RecordReader(path.resolve(attemptDir));
}

const O_ACCMODE = 3;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const ENOENT = -2;
const ENOTDIR = -20;
const PATH_ARGS = ['path', 'from', 'to'];
const NETWORK_TYPES = new Set<string>(EVENT_DEFS.filter((d) => d.category === 'network').map((d) => d.name));
const REBUILD_TYPES = new Set<string>(EVENT_DEFS.filter((d) => d.category === 'rebuild').map((d) => d.name));
const MUTATIONS = new Set(['unlink', 'rename', 'mkdir', 'rmdir', 'chmod', 'chown', 'truncate']);

class RecordReader implements AttemptRecord {
  readonly step: string;
  readonly attempt: number;
  readonly command: string[];
  readonly status: AttemptStatus | undefined;
  private readonly table: RecordProcess[] | undefined;
  private procs: RecordProcess[] | undefined;
  private byPid: Map<number, RecordProcess> | undefined;
  private trace: RecordedTrace | undefined;
  private eventsByPid: Map<number, RecordedEvent[]> | undefined;
  private meta: RecordFileOperation[] | undefined;
  private storePids: number[] | undefined;
  private storePidSet: Set<number> | undefined;
  /** The first writer of each path of files.meta (a rebuild index asks for each output). */
  private firstWriters: Map<string, number> | undefined;
  private index: RecordAccess[] | false | undefined;
  private readonly found: string[] = [];

  constructor(readonly dir: string) {
    requireAttemptDirectory(dir);
    this.attempt = Number(path.basename(dir));
    this.step = path.basename(path.dirname(dir));
    this.command = readCommand(dir);
    this.status = readStatus(dir);
    this.table = readTable(dir);
  }

  get startTime(): number {
    let t = Infinity;
    for (const p of this.processes()) if (p.start !== null && p.start < t) t = p.start;
    if (t === Infinity) t = this.decoded().events[0]?.time ?? 0;
    return t;
  }

  processes(): RecordProcess[] {
    if (!this.procs) {
      this.procs = this.table ?? this.processesFromTrace();
      this.byPid = new Map(this.procs.map((p) => [p.pid, p]));
      for (const p of this.procs) {
        const parent = p.ppid !== p.pid ? this.byPid.get(p.ppid) : undefined;
        parent?.children.push(p.pid);
      }
    }
    return this.procs;
  }

  process(pid: number): RecordProcess | undefined {
    this.processes();
    return this.byPid!.get(pid);
  }

  roots(): RecordProcess[] {
    return this.processes().filter((p) => p.ppid === p.pid || !this.byPid!.has(p.ppid));
  }

  children(pid: number): RecordProcess[] {
    return (this.process(pid)?.children ?? []).map((c) => this.byPid!.get(c)!);
  }

  private processesFromTrace(): RecordProcess[] {
    const trace = this.decoded();
    return [...trace.processes.values()]
      .sort((a, b) => a.pid - b.pid)
      .map((p) => ({
        pid: p.pid,
        ppid: p.ppid || 1,
        key: '',
        argv: p.cmdline,
        exe: null,
        cwd: null,
        start: p.start ?? null,
        end: p.end ?? null,
        exitCode: p.signal ? null : (p.status ?? null),
        signal: p.signal || null,
        children: [],
      }));
  }

  get traceLoaded(): boolean {
    return this.trace !== undefined;
  }

  async loadTrace(): Promise<void> {
    if (this.trace) return;
    const file = path.join(this.dir, 'perfetto');
    const trace = existsSync(file) ? await readTraceAsync(file) : undefined;
    if (!this.trace) this.adopt(file, trace);
  }

  /** The decoded trace; throws a RecordError when it holds nothing readable. */
  private decoded(): RecordedTrace {
    if (this.trace) return this.trace;
    const file = path.join(this.dir, 'perfetto');
    return this.adopt(file, existsSync(file) ? readTrace(file) : undefined);
  }

  private adopt(file: string, trace: RecordedTrace | undefined): RecordedTrace {
    if (!trace) {
      this.found.push(`perfetto: missing (the run did not finish; uwrx check --repair rebuilds it)`);
      this.trace = { processes: new Map(), events: [], problems: [], packets: 0 };
    } else {
      const fatal = trace.problems.find((p) => p.startsWith('perfetto: ') && !p.includes('sequence'));
      if (fatal && trace.packets === 0) throw new RecordError(`${file}: ${fatal.slice('perfetto: '.length)}`);
      this.found.push(...trace.problems);
      this.trace = trace;
    }
    this.eventsByPid = new Map();
    for (const e of this.trace.events) {
      let list = this.eventsByPid.get(e.pid);
      if (!list) this.eventsByPid.set(e.pid, (list = []));
      list.push(e);
    }
    return this.trace;
  }

  private eventsOf(pid: number | undefined): RecordedEvent[] {
    const trace = this.decoded();
    return pid === undefined ? trace.events : (this.eventsByPid!.get(pid) ?? []);
  }

  events(filter: RecordFilter = {}): RecordedEvent[] {
    const inTime = this.timeTest(filter);
    const prefix = filter.pathPrefix;
    return this.eventsOf(filter.pid).filter(
      (e) => inTime(e.time) && (prefix === undefined || PATH_ARGS.some((k) => matchesPrefix(e.args[k], prefix))),
    );
  }

  private timeTest(filter: RecordFilter): (ns: number) => boolean {
    if (filter.since === undefined && filter.until === undefined) return () => true;
    const t0 = this.startTime;
    const lo = filter.since === undefined ? -Infinity : t0 + filter.since * 1e9;
    const hi = filter.until === undefined ? Infinity : t0 + filter.until * 1e9;
    return (ns) => ns >= lo && ns <= hi;
  }

  output(pid: number, fd?: 1 | 2): Buffer {
    const chunks = this.eventsOf(pid)
      .filter((e) => e.type === 'output' && (fd === undefined || e.args.fd === fd))
      .map(outputBytes);
    return Buffer.concat(chunks);
  }

  environment(pid: number): string[] | undefined {
    const exec = this.eventsOf(pid).find((e) => e.type === 'exec' && Array.isArray(e.args.env));
    return exec ? (exec.args.env as string[]) : undefined;
  }

  fileOperations(filter: RecordFilter = {}): RecordFileOperation[] {
    const timed = filter.since !== undefined || filter.until !== undefined;
    let ops = timed ? this.fileOperationsFromTrace() : this.metaOperations();
    if (timed) {
      const inTime = this.timeTest(filter);
      ops = ops.filter((o) => inTime(o.time!));
    }
    if (filter.pid !== undefined) ops = ops.filter((o) => o.pid === filter.pid);
    if (filter.pathPrefix !== undefined) ops = ops.filter((o) => matchesPrefix(o.path, filter.pathPrefix!));
    return ops;
  }

  private metaOperations(): RecordFileOperation[] {
    if (this.meta) return this.meta;
    const file = path.join(this.dir, 'files.meta');
    if (!existsSync(file)) return (this.meta = this.fileOperationsFromTrace());
    let entries: EscapedFileMetaEntry[];
    try {
      entries = parseFilesMetaEscaped(readFileSync(file, 'utf8'));
    } catch (err) {
      if (err instanceof FilesMetaError) throw new RecordError(`${this.dir}/${err.message}`);
      throw err;
    }
    return (this.meta = entries.map((e) => ({ path: e.path, pid: e.pid, operation: e.operation, exec: e.execPath })));
  }

  private firstWriter(file: string): number | null {
    if (!this.firstWriters) {
      this.firstWriters = new Map();
      for (const o of this.metaOperations()) if (isWrite(o.operation) && !this.firstWriters.has(o.path)) this.firstWriters.set(o.path, o.pid);
    }
    return this.firstWriters.get(file) ?? null;
  }

  /** File operations with their times, from the trace's file events. */
  private fileOperationsFromTrace(): RecordFileOperation[] {
    const exec = new Map<number, string>();
    for (const p of this.processes()) exec.set(p.pid, p.argv[0] ?? '');
    const out: RecordFileOperation[] = [];
    for (const e of this.eventsOf(undefined)) {
      const result = e.args.result;
      if (typeof result === 'number' && result < 0) continue;
      if (e.type === 'exec' && typeof e.args.path === 'string') exec.set(e.pid, e.args.path);
      const add = (p: ArgValue | undefined, operation: FileOperation): void => {
        if (typeof p === 'string') out.push({ path: p, pid: e.pid, operation, exec: exec.get(e.pid) ?? '', time: e.time });
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

  private stores(): number[] {
    this.storePids ??= versionPids(this.dir).reverse();
    return this.storePids;
  }

  versions(file: string): FileVersion[] {
    const rel = unescapeBytes(file);
    const firstWriter = this.firstWriter(file);
    const out: FileVersion[] = [];
    const look = (layer: string, pid: number | null): void => {
      const onDisk = Buffer.concat([Buffer.from(path.join(this.dir, layer)), rel]);
      const st = lstatSyncOrNull(onDisk);
      if (st) out.push({ layer, pid, file: onDisk.toString(), deleted: isWhiteout(st) });
    };
    look('files', firstWriter);
    for (const pid of this.stores()) look(`files-${pid}`, pid);
    return out;
  }

  versionWrittenBy(file: string, pid: number): FileVersion | undefined {
    // only two places can hold it: its own store, or files/ when it wrote first (a look
    // at every store costs one lstat per writing process)
    const rel = unescapeBytes(file);
    const look = (layer: string, writer: number | null): FileVersion | undefined => {
      const onDisk = Buffer.concat([Buffer.from(path.join(this.dir, layer)), rel]);
      const st = lstatSyncOrNull(onDisk);
      return st ? { layer, pid: writer, file: onDisk.toString(), deleted: isWhiteout(st) } : undefined;
    };
    this.storePidSet ??= new Set(this.stores());
    const own = this.storePidSet.has(pid) ? look(`files-${pid}`, pid) : undefined;
    if (own) return own;
    return this.firstWriter(file) === pid ? look('files', pid) : undefined;
  }

  resolve(file: string, asOfPid?: number): Resolution {
    // as bytes: a path that is not UTF-8 names a file that a string could not
    return resolveFile(this.dir, unescapeBytes(file), asOfPid);
  }

  accesses(filter: RecordFilter = {}): RecordAccess[] {
    const timed = filter.since !== undefined || filter.until !== undefined;
    const index = timed ? undefined : this.accessIndex();
    if (index) {
      return index.filter((a) => (filter.pid === undefined || a.pid === filter.pid) && (filter.pathPrefix === undefined || matchesPrefix(a.path, filter.pathPrefix)));
    }
    const out: RecordAccess[] = [];
    for (const e of this.events(filter)) {
      const op = accessOp(e);
      if (op === undefined) continue;
      const result = typeof e.args.result === 'number' ? e.args.result : null;
      out.push({ pid: e.pid, time: e.time, op, path: String(e.args.path), result });
    }
    return out;
  }

  eachAccess(visit: (pid: number, op: string, path: string) => void): void {
    let text: string | undefined;
    if (this.index === undefined) {
      try {
        text = readFileSync(path.join(this.dir, ACCESS_INDEX_FILE), 'utf8');
      } catch {
        // no index: from the trace, as accesses() gives them
      }
    }
    if (text === undefined) {
      for (const a of this.accesses()) visit(a.pid, a.op, a.path);
      return;
    }
    try {
      forEachAccessEscaped(text, visit);
    } catch (err) {
      if (err instanceof AccessIndexError) throw new RecordError(`${this.dir}/${err.message}`);
      throw err;
    }
  }

  accessRows(): AccessRows | undefined {
    let text: Buffer;
    try {
      text = readFileSync(path.join(this.dir, ACCESS_INDEX_FILE));
    } catch {
      return undefined;
    }
    try {
      return accessIndexRows(text);
    } catch (err) {
      if (err instanceof AccessIndexError) throw new RecordError(`${this.dir}/${err.message}`);
      throw err;
    }
  }

  /** accesses.tsv when the attempt has one (parsed once). */
  private accessIndex(): RecordAccess[] | undefined {
    if (this.index !== undefined) return this.index || undefined;
    const file = path.join(this.dir, ACCESS_INDEX_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      this.index = false;
      return undefined;
    }
    try {
      this.index = parseAccessIndexEscaped(text).map((e) => ({ pid: e.pid, time: null, op: e.op, path: e.path, result: null, count: e.count }));
    } catch (err) {
      if (err instanceof AccessIndexError) throw new RecordError(`${this.dir}/${err.message}`);
      throw err;
    }
    return this.index;
  }

  networkExchanges(pid?: number): NetworkExchange[] {
    return this.eventsOf(pid)
      .filter((e) => NETWORK_TYPES.has(e.type) || e.type.startsWith('http'))
      .map((e) => ({ pid: e.pid, time: e.time, type: e.type, args: e.args }));
  }

  rebuildDecisions(pid?: number): RebuildDecision[] {
    return this.eventsOf(pid)
      .filter((e) => REBUILD_TYPES.has(e.type))
      .map((e) => ({
        pid: e.pid,
        time: e.time,
        decision: e.type === 'skip' ? 'skipped' : e.type,
        reason: typeof e.args.reason === 'string' ? e.args.reason : '',
        status: typeof e.args.status === 'number' ? e.args.status : null,
      }));
  }

  networkDomains(): string[] {
    try {
      // names starting with '_' are the network record's own files (_exchanges.jsonl ...)
      return readdirSync(path.join(this.dir, 'net'))
        .filter((name) => !name.startsWith('_'))
        .sort();
    } catch {
      return [];
    }
  }

  problems(): string[] {
    this.decoded();
    return [...this.found];
  }
}

function isWrite(op: FileOperation): boolean {
  return op === 'create' || op === 'write' || op === 'rename_to';
}

/** The kind of access a trace event is, or undefined for events that are not accesses
 * (mutations are file operations; outputs, processes and network are elsewhere). */
function accessOp(e: RecordedEvent): string | undefined {
  if (typeof e.args.path !== 'string' || MUTATIONS.has(e.type) || NETWORK_TYPES.has(e.type) || REBUILD_TYPES.has(e.type)) return undefined;
  const result = typeof e.args.result === 'number' ? e.args.result : 0;
  if (e.type === 'exec') return result >= 0 ? 'exec' : undefined;
  if (e.type === 'access') {
    if (result === ENOENT || result === ENOTDIR) return 'missing';
    const name = typeof e.args.op === 'number' ? ACCESS_OPS[e.args.op as keyof typeof ACCESS_OPS] : undefined;
    // an access check tells what a stat tells: whether (and as what) the path exists
    return name === undefined || name === 'access' ? 'stat' : name;
  }
  if (result === ENOENT && (e.type === 'open' || e.type === 'stat' || e.type === 'access')) return 'missing';
  if (e.type === 'open') {
    const flags = typeof e.args.flags === 'number' ? e.args.flags : 0;
    return (flags & O_ACCMODE) !== 0 || flags & (O_CREAT | O_TRUNC) ? 'write' : 'read';
  }
  return e.type;
}

function matchesPrefix(value: ArgValue | undefined, prefix: string): boolean {
  if (typeof value !== 'string') return false;
  if (!value.startsWith(prefix)) return false;
  // a directory and what is below it, not its siblings with longer names
  return value.length === prefix.length || prefix.endsWith('/') || value[prefix.length] === '/';
}

function readCommand(dir: string): string[] {
  for (const file of [path.join(dir, 'cmd'), path.join(path.dirname(dir), 'cmd')]) {
    try {
      return parseCommand(readFileSync(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new RecordError(`${file}: ${(err as Error).message}`);
    }
  }
  return [];
}

function readStatus(dir: string): AttemptStatus | undefined {
  const file = path.join(dir, 'status');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const status = JSON.parse(text) as AttemptStatus;
    if (typeof status !== 'object' || status === null || typeof status.complete !== 'boolean') throw new Error('not a status object');
    return status;
  } catch (err) {
    throw new RecordError(`${file}: damaged (${(err as Error).message})`);
  }
}

function readTable(dir: string): RecordProcess[] | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, PROCESS_TABLE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return parseProcessRows(text).map((r) => ({ ...r, children: [] }));
  } catch (err) {
    if (err instanceof ProcessTableError) throw new RecordError(`${dir}/${err.message}`);
    throw err;
  }
}

/** Checks the framing of a perfetto file without inflating it: every top-level field is a
 * complete TracePacket. Undefined when sound, else the first problem. Cheap enough to
 * run before showing anything. */
export function traceFramingProblem(file: string): string | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    return `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  try {
    if (data.length > 0 && data[0] !== 0x0a) throw new ProtoDecodeError('does not start with a TracePacket (byte 0 is not 0x0A)');
    for (const f of readFields(data)) {
      if (f.field !== Fields.Trace.packet || f.wireType !== 2) throw new ProtoDecodeError(`expected a TracePacket, found field ${f.field}`);
    }
  } catch (err) {
    if (err instanceof ProtoDecodeError) return err.message;
    throw err;
  }
  return undefined;
}
