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
import { escapeBytes, unescapeBytes } from './escape.js';

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

/** A procs.tsv that does not follow the format; the message names the line. */
export class ProcessTableError extends Error {}

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


/** A procs.tsv line with its text fields still escaped (cheap: nothing is unescaped). */
export interface ProcessRow {
  pid: number;
  ppid: number;
  key: string;
  start: number;
  end: number | null;
  exitCode: number | null;
  signal: number | null;
  /** Escaped text (src/record/escape.ts); null for "-". */
  cwd: string | null;
  exe: string | null;
  argv: string[];
}

const INTEGER = /^(0|-?[1-9][0-9]*)$/;
const NATURAL = /^[0-9]+$/;

/** Reads procs.tsv text; throws ProcessTableError naming the first bad line. A literal
 * "-" in cwd/exe means absent (a real path is absolute, so it never is "-"). */
export function parseProcessRows(text: string): ProcessRow[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== HEADER.join('\t')) throw new ProcessTableError(`${PROCESS_TABLE_FILE} line 1: unexpected header`);
  const rows: ProcessRow[] = new Array(lines.length - 1);
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.split('\t');
    const bad = (message: string): never => {
      throw new ProcessTableError(`${PROCESS_TABLE_FILE} line ${i + 1}: ${message}`);
    };
    if (f.length < 9) bad(`expected at least 9 tab-separated fields, found ${f.length}`);
    const int = (name: string, s: string, optional: boolean): number | null => {
      if (optional && s === '-') return null;
      if (!INTEGER.test(s)) bad(`${name} "${s}" is not a number`);
      return Number(s);
    };
    const time = (name: string, s: string, optional: boolean): number | null => {
      if (optional && s === '-') return null;
      if (!NATURAL.test(s)) bad(`${name} "${s}" is not a number`);
      return Number(s);
    };
    const pid = int('pid', f[0]!, false)!;
    if (pid < 2) bad(`"${pid}" is not a logical pid`);
    rows[i - 1] = {
      pid,
      ppid: int('ppid', f[1]!, false)!,
      key: f[2]!,
      start: time('start', f[3]!, false)!,
      end: time('end', f[4]!, true),
      exitCode: int('exit', f[5]!, true),
      signal: int('signal', f[6]!, true),
      cwd: f[7] === '-' ? null : f[7]!,
      exe: f[8] === '-' ? null : f[8]!,
      argv: f.slice(9),
    };
  }
  return rows;
}

/** procs.tsv text to records with their paths and arguments as bytes. */
export function parseProcessTable(text: string): ProcessRecord[] {
  return parseProcessRows(text).map((r, i) => {
    const bytes = (name: string, s: string): Buffer => {
      try {
        return unescapeBytes(s);
      } catch (err) {
        throw new ProcessTableError(`${PROCESS_TABLE_FILE} line ${i + 2}: ${name}: ${(err as Error).message}`);
      }
    };
    return {
      pid: r.pid,
      ppid: r.ppid,
      key: r.key,
      start: BigInt(r.start),
      end: r.end === null ? null : BigInt(r.end),
      exitCode: r.exitCode,
      signal: r.signal,
      cwd: r.cwd === null ? null : bytes('cwd', r.cwd),
      exe: r.exe === null ? null : bytes('exe', r.exe),
      argv: r.argv.map((a) => bytes('argv', a)),
    };
  });
}

export async function readProcessTable(attemptDir: string): Promise<ProcessRecord[]> {
  return parseProcessTable(await fs.readFile(path.join(attemptDir, PROCESS_TABLE_FILE), 'utf8'));
}
