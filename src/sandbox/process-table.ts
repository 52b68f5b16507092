// The live process table of a run, written as <attempt>/procs.tsv when the run ends
// (format: src/record/procs.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ExecBody, ExitBody, SpawnBody } from '../protocol/init-messages.js';
import { PROCESS_TABLE_FILE, formatProcessTable, type ProcessRecord } from '../record/procs.js';

export { PROCESS_TABLE_FILE, formatProcessTable, parseProcessTable, readProcessTable, type ProcessRecord } from '../record/procs.js';

interface Live extends ProcessRecord {
  nspid: number;
  ordinal: number | undefined;
  execs: number;
}

/** The bytes as a Buffer the table may keep: the transport's byte strings already are
 * (views into a copy of their frames, src/actors/transport.ts), anything else is copied. */
function owned(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
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
      ordinal: body.ordinal,
      execs: 0,
    });
  }

  exec(body: ExecBody): void {
    const p = this.procs.get(body.pid);
    if (!p) return;
    if (p.execs++ === 0) {
      p.argv = body.argv.map(owned);
      p.cwd = body.cwd ? owned(body.cwd) : null;
    }
    p.exe = owned(body.path);
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
    // uwrx-init gives the ordinal (the one a replay matches on); without it, pids inside
    // the namespace grow in creation order: that order survives racy scheduling, the
    // order of first sight does not
    for (const [ppid, list] of children) {
      list.sort((a, b) => a.nspid - b.nspid);
      list.forEach((p, i) => (p.key = `${ppid}.${p.ordinal ?? i}`));
    }
    // the fields named, not a rest pattern: a generic copy of each record took 8-16 ms
    // for a configure's 1,700 processes at the end of the run (TurboFan off), this 0.5-1
    return [...this.procs.values()]
      .sort((a, b) => a.pid - b.pid)
      .map((p) => ({ pid: p.pid, ppid: p.ppid, key: p.key, start: p.start, end: p.end, exitCode: p.exitCode, signal: p.signal, cwd: p.cwd, exe: p.exe, argv: p.argv }));
  }

  async write(attemptDir: string): Promise<void> {
    await fs.writeFile(path.join(attemptDir, PROCESS_TABLE_FILE), formatProcessTable(this.records()));
  }
}

