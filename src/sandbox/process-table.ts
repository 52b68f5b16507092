// The process table of an attempt: what ran, who started it, how it ended.
//
// File <attempt>/procs.tsv, UTF-8 text, one header line then one line per process in
// logical pid order, fields separated by tabs, each field escaped like every record
// text file (src/record/escape.ts):
//
//   pid  ppid  key  start  end  exit  signal  cwd  exe  argv...
//
// pid     logical pid (2, 3, ... in first-seen order; uwrx itself is 1)
// ppid    logical pid of the parent (1 when the parent is uwrx or was never seen)
// key     tree key "<ppid>.<ordinal>": ordinal = index among the parent's children in
//         creation order (from 0). Together with argv it identifies the process across
//         runs (DESIGN.md 3.3) independent of scheduling.
// start   CLOCK_BOOTTIME nanoseconds of first sight; end: of the exit ("-" unknown)
// exit    exit code, "-" when killed or unknown; signal: number of the killing signal or "-"
// cwd     working directory at the first successful exec ("-" when it never exec'd)
// exe     path of the last successful exec ("-" when none)
// argv    the arguments of the first successful exec, one field each, to the end of the line
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { escapeBytes, unescapeBytes } from '../record/escape.js';
import type { ExecBody, ExitBody, SpawnBody } from '../protocol/init-messages.js';

export const PROCESS_TABLE_FILE = 'procs.tsv';
const HEADER = ['pid', 'ppid', 'key', 'start', 'end', 'exit', 'signal', 'cwd', 'exe', 'argv'];

export interface ProcessRecord {
  pid: number;
  ppid: number;
  key: string;
  start: bigint;
  end: bigint | null;
  exitCode: number | null;
  signal: number | null;
  cwd: Buffer | null;
  exe: Buffer | null;
  argv: Buffer[];
}

interface Live extends ProcessRecord {
  nspid: number;
  execs: number;
}

export class ProcessTable {
  private readonly procs = new Map<number, Live>();

  spawn(body: SpawnBody): void {
    this.procs.set(body.pid, {
      pid: body.pid,
      ppid: body.ppid,
      key: '',
      start: BigInt(body.time),
      end: null,
      exitCode: null,
      signal: null,
      cwd: null,
      exe: null,
      argv: [],
      nspid: body.nspid,
      execs: 0,
    });
  }

  exec(body: ExecBody): void {
    const p = this.procs.get(body.pid);
    if (!p) return;
    if (p.execs++ === 0) {
      p.argv = body.argv.map((a) => Buffer.from(a));
      p.cwd = body.cwd ? Buffer.from(body.cwd) : null;
    }
    p.exe = Buffer.from(body.path);
  }

  exit(body: ExitBody): void {
    const p = this.procs.get(body.pid);
    if (!p) return;
    p.end = BigInt(body.time);
    p.exitCode = body.code;
    p.signal = body.signal;
  }

  get size(): number {
    return this.procs.size;
  }

  /** Records in logical pid order, with tree keys filled in. */
  records(): ProcessRecord[] {
    const children = new Map<number, Live[]>();
    for (const p of this.procs.values()) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    }
    // pids inside the namespace grow in creation order: that order survives racy
    // scheduling, the order of first sight does not
    for (const [ppid, list] of children) {
      list.sort((a, b) => a.nspid - b.nspid);
      list.forEach((p, i) => (p.key = `${ppid}.${i}`));
    }
    return [...this.procs.values()]
      .sort((a, b) => a.pid - b.pid)
      .map(({ nspid: _n, execs: _e, ...rest }) => rest);
  }

  async write(attemptDir: string): Promise<void> {
    await fs.writeFile(path.join(attemptDir, PROCESS_TABLE_FILE), formatProcessTable(this.records()));
  }
}

const dash = (v: string | null) => v ?? '-';

export function formatProcessTable(records: ProcessRecord[]): string {
  const lines = [HEADER.join('\t')];
  for (const r of records) {
    lines.push(
      [
        String(r.pid),
        String(r.ppid),
        r.key,
        r.start.toString(),
        dash(r.end?.toString() ?? null),
        dash(r.exitCode?.toString() ?? null),
        dash(r.signal?.toString() ?? null),
        r.cwd ? escapeBytes(r.cwd) : '-',
        r.exe ? escapeBytes(r.exe) : '-',
        ...r.argv.map((a) => escapeBytes(a)),
      ].join('\t'),
    );
  }
  return lines.join('\n') + '\n';
}

/** Reads <attemptDir>/procs.tsv back. A literal "-" in cwd/exe means absent (a real
 * path is absolute, so it never is "-"). */
export function parseProcessTable(text: string): ProcessRecord[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (lines[0] !== HEADER.join('\t')) throw new Error('process table: unexpected header');
  return lines.slice(1).map((line) => {
    const f = line.split('\t');
    const num = (s: string) => (s === '-' ? null : Number(s));
    return {
      pid: Number(f[0]),
      ppid: Number(f[1]),
      key: f[2]!,
      start: BigInt(f[3]!),
      end: f[4] === '-' ? null : BigInt(f[4]!),
      exitCode: num(f[5]!),
      signal: num(f[6]!),
      cwd: f[7] === '-' ? null : unescapeBytes(f[7]!),
      exe: f[8] === '-' ? null : unescapeBytes(f[8]!),
      argv: f.slice(9).map((a) => unescapeBytes(a)),
    };
  });
}

export async function readProcessTable(attemptDir: string): Promise<ProcessRecord[]> {
  return parseProcessTable(await fs.readFile(path.join(attemptDir, PROCESS_TABLE_FILE), 'utf8'));
}
