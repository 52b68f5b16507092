// `uwrx inspect files <attempt> --reads`: every access of every process, from the access
// index (accesses.tsv) and the process table, without decoding the Perfetto file.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { AccessIndexError, parseAccessIndex, type AccessEntry } from '../record/accesses.js';
import { escapeBytes } from '../record/escape.js';
import { PROCESS_TABLE_FILE, parseProcessTable } from '../sandbox/process-table.js';

export const ACCESS_INDEX_FILE = 'accesses.tsv';

export interface AccessRow {
  pid: number;
  exe: string;
  path: string;
  op: AccessEntry['op'];
  count: number;
}

/** The attempt's accesses in first-access order, optionally of one process. */
export function readAccesses(attemptDir: string, pid?: number): AccessRow[] {
  const file = path.join(attemptDir, ACCESS_INDEX_FILE);
  if (!existsSync(file)) throw new UsageError(`uwrx inspect files --reads: ${attemptDir} has no ${ACCESS_INDEX_FILE} (recorded by an older uwrx, or the run did not finish)`);
  let entries: AccessEntry[];
  try {
    entries = parseAccessIndex(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof AccessIndexError) throw new UsageError(`uwrx inspect files --reads: ${err.message}`);
    throw err;
  }
  const exes = new Map<number, string>();
  const table = path.join(attemptDir, PROCESS_TABLE_FILE);
  if (existsSync(table)) {
    for (const p of parseProcessTable(readFileSync(table, 'utf8'))) if (p.exe) exes.set(p.pid, escapeBytes(p.exe));
  }
  return entries
    .filter((e) => pid === undefined || e.pid === pid)
    .map((e) => ({ pid: e.pid, exe: exes.get(e.pid) ?? '', path: escapeBytes(e.path), op: e.op, count: e.count }));
}

/** Text: one line per access, `pid op path exe count` tab separated; json: an array. */
export function formatAccesses(rows: AccessRow[], format: 'text' | 'json'): string {
  if (format === 'json') return JSON.stringify(rows, null, 1) + '\n';
  return rows.map((r) => `${r.pid}\t${r.op}\t${r.path}\t${r.exe}\t${r.count}\n`).join('');
}
