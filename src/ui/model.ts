// What the terminal UI shows, as plain data: a process tree with each process's command,
// outcome, files and output. Built from the attempt's record; rendering lives in app.ts.

export interface UiProcess {
  pid: number;
  ppid: number;
  argv: string[];
  cwd: string;
  exe: string;
  /** Exit code, or null when killed or unknown. */
  exitCode: number | null;
  signal: number | null;
  /** Duration in ms, null when unknown. */
  durationMs: number | null;
  files: Array<{ path: string; operation: string }>;
  output: Buffer;
}

export interface UiModel {
  title: string;
  summary: string;
  processes: UiProcess[];
}

export interface TreeRow {
  process: UiProcess;
  depth: number;
}

/** Processes in tree order (children after their parent, by pid), with their depth. */
export function treeRows(processes: UiProcess[]): TreeRow[] {
  const byPid = new Map(processes.map((p) => [p.pid, p]));
  const children = new Map<number, UiProcess[]>();
  const roots: UiProcess[] = [];
  for (const p of [...processes].sort((a, b) => a.pid - b.pid)) {
    if (p.ppid !== p.pid && byPid.has(p.ppid)) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else roots.push(p);
  }
  const rows: TreeRow[] = [];
  const seen = new Set<number>();
  const walk = (p: UiProcess, depth: number): void => {
    if (seen.has(p.pid)) return;
    seen.add(p.pid);
    rows.push({ process: p, depth });
    for (const c of children.get(p.pid) ?? []) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return rows;
}

export function outcome(p: UiProcess): string {
  if (p.signal !== null) return `killed by signal ${p.signal}`;
  if (p.exitCode !== null) return `exit ${p.exitCode}`;
  return 'running or unknown';
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
