// What the terminal UI shows, as plain data over the record reader: the process tree
// (with collapsed branches and the failed-only filter), each process's details, and
// search. Nothing here touches the terminal; view.ts renders, app.ts drives.
import path from 'node:path';
import { READ_ACCESS_OPS, commandLine, type AttemptRecord, type RecordProcess } from '../record/reader.js';

export interface TreeRow {
  process: RecordProcess;
  depth: number;
  /** Has children in the current view. */
  hasChildren: boolean;
  collapsed: boolean;
}

export type DetailTab = 'info' | 'files' | 'output';
export const DETAIL_TABS: DetailTab[] = ['info', 'files', 'output'];

export interface UiModel {
  record: AttemptRecord;
  title: string;
  summary: string;
  /** A problem the reader found (a damaged trace): shown, not hidden. */
  warning?: string;
  /** Detail lines already computed, by "<pid> <tab>". */
  cache: Map<string, string[]>;
}

export function modelFor(record: AttemptRecord): UiModel {
  const status = record.status;
  const procs = record.processes();
  const failed = procs.filter(isFailed).length;
  const summary = status
    ? `${status.complete ? 'complete' : 'incomplete'}, status ${status.status}, ${procs.length} processes, ${failed} failed`
    : `no status (the run did not finish), ${procs.length} processes, ${failed} failed`;
  return { record, title: `${record.dir}  ${record.command.join(' ')}`, summary, cache: new Map() };
}

export function isFailed(p: RecordProcess): boolean {
  return p.signal !== null || (p.exitCode !== null && p.exitCode !== 0);
}

/** The rows to show: processes in tree order (children after their parent, by pid), minus
 * the collapsed branches; with `failedOnly`, the failed processes and their ancestors. */
export function treeRows(record: AttemptRecord, collapsed: ReadonlySet<number>, failedOnly: boolean): TreeRow[] {
  let keep: Set<number> | undefined;
  if (failedOnly) {
    keep = new Set();
    for (const p of record.processes()) {
      if (!isFailed(p)) continue;
      for (let q: RecordProcess | undefined = p; q && !keep.has(q.pid); q = record.process(q.ppid)) {
        keep.add(q.pid);
        if (q.ppid === q.pid) break;
      }
    }
  }
  const rows: TreeRow[] = [];
  const seen = new Set<number>();
  // Iterative walk: deep process chains must not exhaust the stack.
  const stack: { p: RecordProcess; depth: number }[] = record
    .roots()
    .filter((p) => !keep || keep.has(p.pid))
    .reverse()
    .map((p) => ({ p, depth: 0 }));
  while (stack.length > 0) {
    const { p, depth } = stack.pop()!;
    if (seen.has(p.pid)) continue;
    seen.add(p.pid);
    const kids = record.children(p.pid).filter((c) => !keep || keep.has(c.pid));
    const isCollapsed = collapsed.has(p.pid) && kids.length > 0;
    rows.push({ process: p, depth, hasChildren: kids.length > 0, collapsed: isCollapsed });
    if (isCollapsed) continue;
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ p: kids[i]!, depth: depth + 1 });
  }
  return rows;
}

export function outcome(p: RecordProcess): string {
  if (p.signal !== null) return `killed by signal ${p.signal}`;
  if (p.exitCode !== null) return `exit ${p.exitCode}`;
  return 'running or unknown';
}

function duration(p: RecordProcess): string {
  return p.start !== null && p.end !== null ? `${((p.end - p.start) / 1e9).toFixed(3)} s` : 'duration unknown';
}

/** The lines of a details tab for one process. */
export function detailLines(model: UiModel, p: RecordProcess, tab: DetailTab): string[] {
  const key = `${p.pid} ${tab}`;
  let lines = model.cache.get(key);
  if (!lines) {
    lines = computeDetailLines(model, p, tab);
    if (model.record.traceLoaded) model.cache.set(key, lines);
  }
  return lines;
}

/** Decodes the trace in the background; a damaged one becomes the model's warning. */
export async function loadTrace(model: UiModel): Promise<void> {
  await model.record.loadTrace();
  model.cache.clear();
  const problems = model.record.problems();
  if (problems.length > 0) model.warning = `${problems[0]}${problems.length > 1 ? ` (+${problems.length - 1})` : ''}`;
}

const READING = '(reading the trace…)';

function computeDetailLines(model: UiModel, p: RecordProcess, tab: DetailTab): string[] {
  const record = model.record;
  // Until the trace is decoded (right after the first screen), only what the process
  // table and files.meta say.
  const traced = record.traceLoaded;
  if (tab === 'output' && !traced) return [READING];
  if (tab === 'output') {
    const lines = outputLines(record.output(p.pid));
    return lines.length > 0 ? lines : ['(no output)'];
  }
  if (tab === 'files') return fileLines(record, p);
  const lines = [
    `argv: ${p.argv.join(' ') || '(never exec\'d)'}`,
    `exe:  ${p.exe ?? '-'}`,
    `cwd:  ${p.cwd ?? '-'}`,
    `started +${p.start !== null ? ((p.start - record.startTime) / 1e9).toFixed(3) : '?'} s, ${duration(p)}`,
    `children: ${p.children.length}`,
  ];
  if (!traced) return [...lines, READING];
  for (const d of record.rebuildDecisions(p.pid)) lines.push(`rebuild: ${d.decision}${d.reason ? ` (${d.reason})` : ''}`);
  const net = record.networkExchanges(p.pid);
  if (net.length > 0) {
    lines.push(`network: ${net.length} exchange${net.length === 1 ? '' : 's'}`);
    for (const n of net) lines.push(`  ${n.type} ${Object.entries(n.args).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`);
  }
  const env = record.environment(p.pid);
  if (env) {
    lines.push(`environment: ${env.length} variables`);
    for (const e of env) lines.push(`  ${e}`);
  } else lines.push('environment: not recorded');
  return lines;
}

/** Files the process wrote (with the version the record keeps) and, when the record has
 * them, the files it read (with the version it saw). */
function fileLines(record: AttemptRecord, p: RecordProcess): string[] {
  const lines: string[] = [];
  const ops = record.fileOperations({ pid: p.pid });
  if (ops.length > 0) lines.push(`wrote (${ops.length}), with the version kept:`);
  for (const o of ops) {
    const v = o.operation === 'delete' || o.operation === 'rmdir' || o.operation === 'rename_from' ? undefined : record.versionWrittenBy(o.path, p.pid);
    lines.push(`  ${o.operation.padEnd(11)} ${(v ? v.layer : '-').padEnd(9)} ${o.path}`);
  }
  if (!record.traceLoaded) return [...lines, READING];
  const reads = record.accesses({ pid: p.pid }).filter((a) => READ_ACCESS_OPS.has(a.op));
  if (reads.length > 0) {
    lines.push(`read (${reads.length}), with the version seen:`);
    const seen = new Set<string>();
    for (const a of reads) {
      const key = `${a.op}\t${a.path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(`  ${a.op.padEnd(11)} ${(a.op === 'missing' ? '-' : seenLayer(record, a.path, p.pid)).padEnd(9)} ${a.path}`);
    }
  }
  return lines.length > 0 ? lines : ['(no file operations recorded)'];
}

function seenLayer(record: AttemptRecord, file: string, pid: number): string {
  if (!file.startsWith('/')) return '?';
  const r = record.resolve(file, pid);
  if (!r.layer || r.kind === 'absent') return 'absent';
  if (r.layer.real) return 'real';
  const where = path.basename(r.layer.root);
  return r.layer.depth === 0 ? where : `parent ${path.relative(record.dir, r.layer.attemptDir)} ${where}`;
}

export interface SearchHit {
  pid: number;
  /** Where the text was found; the UI opens that tab. */
  tab: DetailTab;
  /** Line of that tab to scroll to. */
  line: number;
}

/** Processes matching `query` by command line, by a path they wrote or read, or by their
 * output, in pid order. */
export function search(model: UiModel, query: string): SearchHit[] {
  const record = model.record;
  const q = query.toLowerCase();
  const hits: SearchHit[] = [];
  const byPath = new Set<number>();
  for (const o of record.fileOperations()) if (o.path.toLowerCase().includes(q)) byPath.add(o.pid);
  for (const a of record.accesses()) if (a.path.toLowerCase().includes(q)) byPath.add(a.pid);
  for (const p of record.processes()) {
    if (commandLine(p).toLowerCase().includes(q)) {
      hits.push({ pid: p.pid, tab: 'info', line: 0 });
      continue;
    }
    if (byPath.has(p.pid)) {
      const line = detailLines(model, p, 'files').findIndex((l) => l.toLowerCase().includes(q));
      hits.push({ pid: p.pid, tab: 'files', line: Math.max(0, line) });
      continue;
    }
    const out = record.output(p.pid);
    if (out.length > 0 && out.toString('utf8').toLowerCase().includes(q)) {
      const line = outputLines(out).findIndex((l) => l.toLowerCase().includes(q));
      hits.push({ pid: p.pid, tab: 'output', line: Math.max(0, line) });
    }
  }
  return hits;
}

/** Shortens text to `width` columns, marking the cut with an ellipsis. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text + ' '.repeat(width - chars.length);
  return chars.slice(0, Math.max(0, width - 1)).join('') + '…';
}

/** Output bytes as display lines: control characters other than tab made visible. */
export function outputLines(bytes: Buffer): string[] {
  if (bytes.length === 0) return [];
  const text = bytes.toString('utf8').replace(/\t/g, '    ');
  // eslint-disable-next-line no-control-regex
  const visible = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `^${String.fromCharCode(c.charCodeAt(0) ^ 0x40)}`);
  const lines = visible.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
