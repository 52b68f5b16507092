// Builds the UI model from an attempt directory: processes and output from the perfetto
// trace (or the process table when there is no trace), files from files.meta.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { escapeBytes } from '../record/escape.js';
import { parseFilesMeta } from '../record/files-meta.js';
import { readAttemptStatus } from '../record/layout.js';
import { outputBytes, readTrace } from '../inspect/trace.js';
import { readProcessTable } from '../sandbox/process-table.js';
import type { UiModel, UiProcess } from './model.js';

export async function loadModel(attemptDir: string): Promise<UiModel> {
  if (!existsSync(path.join(attemptDir, 'seed.txt'))) {
    throw new UsageError(`${attemptDir}: not an attempt directory (expected <build>/<step>/<attempt>)`);
  }
  const processes = new Map<number, UiProcess>();
  const blank = (pid: number, ppid: number): UiProcess => ({
    pid,
    ppid,
    argv: [],
    cwd: '',
    exe: '',
    exitCode: null,
    signal: null,
    durationMs: null,
    files: [],
    output: Buffer.alloc(0),
  });

  const tracePath = path.join(attemptDir, 'perfetto');
  if (existsSync(tracePath)) {
    const trace = readTrace(tracePath);
    for (const p of trace.processes.values()) {
      processes.set(p.pid, {
        ...blank(p.pid, p.ppid),
        argv: p.cmdline,
        exitCode: p.signal ? null : (p.status ?? null),
        signal: p.signal ?? null,
        durationMs: p.start !== undefined && p.end !== undefined ? (p.end - p.start) / 1e6 : null,
      });
    }
    const chunks = new Map<number, Buffer[]>();
    for (const e of trace.events) {
      if (e.type !== 'output') continue;
      const list = chunks.get(e.pid) ?? [];
      list.push(outputBytes(e));
      chunks.set(e.pid, list);
    }
    for (const [pid, list] of chunks) {
      const p = processes.get(pid) ?? blank(pid, 1);
      p.output = Buffer.concat(list);
      processes.set(pid, p);
    }
  }
  try {
    for (const r of await readProcessTable(attemptDir)) {
      const p = processes.get(r.pid) ?? blank(r.pid, r.ppid);
      p.ppid = r.ppid;
      if (p.argv.length === 0) p.argv = r.argv.map((a) => escapeBytes(a));
      p.cwd = r.cwd ? escapeBytes(r.cwd) : '';
      p.exe = r.exe ? escapeBytes(r.exe) : '';
      p.exitCode = r.exitCode;
      p.signal = r.signal;
      if (r.end !== null) p.durationMs = Number(r.end - r.start) / 1e6;
      processes.set(r.pid, p);
    }
  } catch {
    // No process table: the trace alone describes the processes.
  }
  const metaPath = path.join(attemptDir, 'files.meta');
  if (existsSync(metaPath)) {
    for (const entry of parseFilesMeta(readFileSync(metaPath, 'utf8'))) {
      processes.get(entry.pid)?.files.push({ path: escapeBytes(entry.path), operation: entry.operation });
    }
  }
  const status = await readAttemptStatus(attemptDir);
  const cmd = existsSync(path.join(attemptDir, 'cmd')) ? readFileSync(path.join(attemptDir, 'cmd'), 'utf8').trim().split('\n').join(' ') : '';
  const summary = status
    ? `${status.complete ? 'complete' : 'incomplete'}, status ${status.status}, ${status.processes} processes, ${status.filesWritten} files written`
    : 'no status (the run did not finish)';
  return { title: `${attemptDir}  ${cmd}`, summary, processes: [...processes.values()] };
}
