// The sandbox: runs the command tree and reports its processes. This interface is what
// the run orchestration (src/run.ts) relies on. The pieces: plan.ts (the sandbox as
// data), launch.ts (uwrx-init and its messages), finish.ts (uppers into files/),
// process-table.ts (procs.tsv), preflight.ts (kernel requirements).
import { launchSandbox } from './launch.js';
import { checkKernel } from './preflight.js';
import type { ReproInput } from './plan.js';

export { computePlan, renderPlan } from './plan.js';
export { planFor } from './launch.js';
export { readProcessTable, PROCESS_TABLE_FILE, type ProcessRecord } from './process-table.js';

export interface SandboxOptions {
  /** Command and arguments; argv[0] is looked up in PATH. */
  argv: string[];
  /** Working directory of the command (kept inside the sandbox). */
  cwd: string;
  /** Environment of the command. */
  env: NodeJS.ProcessEnv;
  /** build/<step>/<attempt>: receives files/ and the process table when the run ends. */
  attemptDir: string;
  /** Private working directory of this run (live upper, overlay work dirs, trace buffers),
   * on the same filesystem as attemptDir so finishing costs renames. */
  runDir: string;
  /** Absolute paths that must be invisible inside (the build directory, runDir). */
  hide: string[];
  /** Network on (served by the network actors) or off (loopback only). */
  net: boolean;
  /** Called for each process event as it happens. */
  onEvent?: (event: SandboxEvent) => void;
  /** Threads in uwrx-init answering seccomp notifications (default 1: with more, every
   * notification wakes each of them, which measured slower on 2 CPUs). */
  handlerThreads?: number;
  /** Once the command's main process ended, how long to wait for the processes it left
   * running before terminating them (SIGTERM, then SIGKILL after the grace period).
   * Absent: wait for every process. */
  lingerMs?: number;
  /** Deterministic randomness and time, the ld.so shim (docs/reproducibility.md). */
  repro?: ReproInput;
}

/** `pid`/`ppid` are logical pids; `time` is CLOCK_BOOTTIME nanoseconds (as in trace
 * events). An exec is reported once it succeeded. */
export type SandboxEvent =
  | { type: 'spawn'; pid: number; ppid: number; time: number }
  | { type: 'exec'; pid: number; argv: string[]; cwd: string; time: number; path?: string }
  | { type: 'exit'; pid: number; exitCode: number | null; signal: number | null; time: number };

export interface SandboxResult {
  /** What uwrx exits with: the command's exit code, or 128+N when killed by signal N. */
  status: number;
  exitCode: number | null;
  signal: number | null;
  /** True when the run was interrupted (SIGINT/SIGTERM to uwrx) or the sandbox failed. */
  incomplete: boolean;
  processes: number;
  filesWritten: number;
  /** Processes still running when the linger time after the command's exit ran out,
   * which were terminated (absent: none). `processes` lists the first 64. */
  terminated?: { count: number; processes: TerminatedProcess[] };
  /** Why the record is incomplete although the command ran to its end (a full
   * filesystem under the trace buffers). */
  problem?: string;
}

/** A process terminated after the linger time: its logical pid, command line (when it
 * exec'd) and its name as the kernel knew it (comm). */
export interface TerminatedProcess {
  pid: number;
  argv?: string[];
  name: string;
}

export interface Sandbox {
  done: Promise<SandboxResult>;
  /** SIGTERM to the whole tree, SIGKILL after graceMs. */
  terminate(graceMs?: number): void;
}

/** Runs the command in new namespaces under uwrx-init; `done` resolves once every
 * process ended and the attempt holds files/ and procs.tsv. Setup failures reject
 * with an EnvironmentError naming the failing step. */
export function startSandbox(options: SandboxOptions): Sandbox {
  return launchSandbox(options);
}

/** Null when this machine can run the sandbox, else one line saying what is missing. */
export function preflight(): string | null {
  return checkKernel();
}
