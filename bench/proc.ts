// Runs one measured command: wall time from spawn to exit, output tails, and optionally
// the peak RSS (VmHWM) of the spawned process and of a named descendant.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

export interface RunSpec {
  argv: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Sample VmHWM of the spawned process and of the first descendant with this comm. */
  watchDescendant?: string;
}

export interface RunOutcome {
  seconds: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Peak RSS in KiB of the spawned process (all its threads). */
  rootHwmKiB?: number;
  /** Peak RSS in KiB of the watched descendant, when it was seen. */
  descendantHwmKiB?: number;
  /** User and system seconds of the command's whole tree (everything reaped under it),
   * to 10 ms. */
  cpuSeconds?: number;
}

/** User and system time of this process's reaped children, seconds: /proc/self/stat's
 * cutime and cstime (fields 16 and 17, in clock ticks of 1/100 s on Linux). A child's
 * tree counts once the child is reaped, with each of its descendants that was reaped. */
export function childrenCpuSeconds(stat = readFileSync('/proc/self/stat', 'utf8')): number | undefined {
  // comm (field 2) is in parentheses and may hold spaces: count from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cutime = Number(fields[13]);
  const cstime = Number(fields[14]);
  return Number.isFinite(cutime) && Number.isFinite(cstime) ? (cutime + cstime) / 100 : undefined;
}

const keepBytes = 64 * 1024;

/** Process groups of measured commands still running: ended on Ctrl-C. */
export const runningGroups = new Set<number>();

export function killRunning(): void {
  for (const pgid of runningGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function tail(chunks: Buffer[]): string {
  return Buffer.concat(chunks).subarray(-keepBytes).toString('utf8');
}

/** Environment for workloads: an outer make must not leak its jobserver into ours. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', ...extra };
  for (const name of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES']) delete env[name];
  return env;
}

export async function readHwmKiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** First process below `root` whose comm is `comm` (one scan of /proc). */
export async function findDescendant(root: number, comm: string): Promise<number | undefined> {
  const parents = new Map<number, number>();
  const comms = new Map<number, string>();
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        try {
          const stat = await readFile(`/proc/${e}/stat`, 'utf8');
          // comm is in parentheses and may itself contain ') '; the ppid follows the last ')'.
          const close = stat.lastIndexOf(')');
          const fields = stat.slice(close + 2).split(' ');
          parents.set(Number(e), Number(fields[1]));
          comms.set(Number(e), stat.slice(stat.indexOf('(') + 1, close));
        } catch {
          // gone while scanning
        }
      }),
  );
  for (const [pid, name] of comms) {
    if (name !== comm) continue;
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) return pid;
    }
  }
  return undefined;
}

export function runMeasured(spec: RunSpec): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let rootHwm: number | undefined;
    let descHwm: number | undefined;
    let descPid: number | undefined;
    let sampling = false;
    let ticks = 0;
    // the bench runs one command at a time: the children's time it gains is this one's
    const cpuBefore = childrenCpuSeconds();
    const start = process.hrtime.bigint();
    const child = spawn(spec.argv[0]!, spec.argv.slice(1), {
      cwd: spec.cwd,
      env: spec.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout can end the whole tree
    });
    if (child.pid !== undefined) runningGroups.add(child.pid);
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      if (out.length > 256) out.splice(0, out.length, Buffer.concat(out).subarray(-keepBytes));
    });
    child.stderr.on('data', (b: Buffer) => {
      err.push(b);
      if (err.length > 256) err.splice(0, err.length, Buffer.concat(err).subarray(-keepBytes));
    });
    const sample = async () => {
      if (sampling || child.pid === undefined) return;
      sampling = true;
      ticks++;
      try {
        const r = await readHwmKiB(child.pid);
        if (r !== undefined) rootHwm = Math.max(rootHwm ?? 0, r);
        if (spec.watchDescendant) {
          // A /proc scan costs a few ms: every tick only while the helper may still be starting.
          if (descPid === undefined && (ticks < 40 || ticks % 5 === 0)) descPid = await findDescendant(child.pid, spec.watchDescendant);
          if (descPid !== undefined) {
            const d = await readHwmKiB(descPid);
            if (d !== undefined) descHwm = Math.max(descHwm ?? 0, d);
          }
        }
      } finally {
        sampling = false;
      }
    };
    const sampler = spec.watchDescendant !== undefined ? setInterval(() => void sample(), 50) : undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, spec.timeoutMs);
    child.on('error', (e) => {
      if (child.pid !== undefined) runningGroups.delete(child.pid);
      clearTimeout(timer);
      if (sampler) clearInterval(sampler);
      reject(e);
    });
    // Wall time ends when the command exits; 'close' also waits for its output pipes.
    let end: bigint | undefined;
    let cpuAfter: number | undefined;
    child.on('exit', () => {
      end = process.hrtime.bigint();
      cpuAfter = childrenCpuSeconds();
    });
    child.on('close', (exitCode, signal) => {
      const seconds = Number((end ?? process.hrtime.bigint()) - start) / 1e9;
      if (child.pid !== undefined) runningGroups.delete(child.pid);
      clearTimeout(timer);
      if (sampler) clearInterval(sampler);
      resolve({
        seconds,
        exitCode,
        signal,
        timedOut,
        stdout: tail(out),
        stderr: tail(err),
        ...(rootHwm !== undefined ? { rootHwmKiB: rootHwm } : {}),
        ...(descHwm !== undefined ? { descendantHwmKiB: descHwm } : {}),
        ...(cpuBefore !== undefined && cpuAfter !== undefined ? { cpuSeconds: Math.round((cpuAfter - cpuBefore) * 100) / 100 } : {}),
      });
    });
  });
}

/** The last non-empty line of a command's stderr (or stdout), for one-line error notes. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.at(-1) ?? '';
}

/** The line that says what went wrong: the last of the final few lines that mentions an
 * error (tools often end with a hint such as "set X=1 for details"), else the last. */
export function errorLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).slice(-3);
  return lines.filter((l) => /error|fail|denied|not found|cannot|no such/i.test(l)).at(-1) ?? lines.at(-1) ?? '';
}

export function describeFailure(o: RunOutcome): string {
  const line = errorLine(o.stderr) || errorLine(o.stdout);
  const how = o.timedOut ? 'timed out' : o.signal ? `killed by ${o.signal}` : `exit ${o.exitCode}`;
  return line ? `${how}: ${line}` : how;
}
