// The sandbox: runs the command tree under uwrx-init and passes its messages on. This
// interface is what the run orchestration (src/run.ts) relies on. The pieces: plan.ts
// (the sandbox as data), launch.ts (uwrx-init and its messages), process-table.ts
// (procs.tsv), preflight.ts (kernel requirements). What the tree leaves behind goes into
// the record through the storage actor (src/actors/storage.ts).
import { launchSandbox } from './launch.js';
import { checkKernel } from './preflight.js';
import type { OverlayLayer, PlanInput, ReproInput } from './plan.js';
import type { FilesPlan } from '../protocol/init-messages.js';
import type { InitBridge } from '../actors/init-bridge.js';

export { computePlan, renderPlan } from './plan.js';
export { planFor } from './launch.js';
export { readProcessTable, PROCESS_TABLE_FILE, type ProcessRecord } from './process-table.js';
export type { OverlayLayer } from './plan.js';

/** The plan's inputs the run passes through as they are (their meaning: PlanInput): the
 * network's pieces (present: uwrx-init gets a socket to hand sockets over, MSG_NET_FD;
 * absent: loopback only) and a replay's or partial rebuild's. */
type PassedToPlan = Pick<PlanInput, 'network' | 'replayPids' | 'hostNewestNs' | 'skippable' | 'rebuildWait' | 'replayedDir'>;

export interface SandboxOptions extends PassedToPlan {
  /** Command and arguments; argv[0] is looked up in PATH. */
  argv: string[];
  /** Working directory of the command (kept inside the sandbox). */
  cwd: string;
  /** Environment of the command. */
  env: NodeJS.ProcessEnv;
  /** build/<step>/<attempt>: its parents' stores are lower layers of the sandbox. */
  attemptDir: string;
  /** Private working directory of this run (live upper, overlay work dirs, trace buffers),
   * on the same filesystem as attemptDir so finishing costs renames. */
  runDir: string;
  /** Absolute paths that must be invisible inside (the build directory, runDir). */
  hide: string[];
  /** Network on (served by the network actors) or off (loopback only). */
  net: boolean;
  /** Listeners for uwrx-init's notifications, by message type (spawn, exec, exit ...;
   * src/protocol/init-messages.ts). A message nobody listens to is an error. */
  on?: Record<string, (body: any) => void>;
  /** Handlers for uwrx-init's requests, by message type; the result is the reply. */
  requests?: Record<string, (body: any) => unknown>;
  /** Awaited once the plan is computed and the run directory prepared, before
   * uwrx-init starts: what it needs on disk that is written meanwhile. */
  ready?: () => Promise<unknown>;
  /** Called once uwrx-init's bridge exists, before the plan is sent: the way to ask
   * uwrx-init (InitBridge.request) or to hand it to actors (InitBridge.serve). */
  onInitBridge?: (bridge: InitBridge) => void;
  /** Called once the plan is on its way to uwrx-init, which then sets the sandbox up
   * without this thread (some 20-30 ms). */
  onPlanSent?: () => void;
  /** uwrx-init's pid on the host once it runs: /proc/<pid>/root is the sandbox's view. */
  onInitPid?: (pid: number) => void;
  /** Threads in uwrx-init answering seccomp notifications (default 1: with more, every
   * notification wakes each of them, which measured slower on 2 CPUs). */
  handlerThreads?: number;
  /** Once the command's main process ended, how long to wait for the processes it left
   * running before terminating them (SIGTERM, then SIGKILL after the grace period).
   * Absent: wait for every process. */
  lingerMs?: number;
  /** Descriptors of this process (above 2) the command gets at the same numbers. */
  passFds?: number[];
  /** Deterministic randomness and time, the ld.so shim (docs/reproducibility.md). */
  repro?: ReproInput;
  /** Where uwrx-init writes the processes' trace buffers; absent: no trace. */
  tracesDir?: string;
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

/** A process terminated after the linger time: its logical pid and its name as the
 * kernel knew it (comm, also for a fork that did not exec). */
export interface TerminatedProcess {
  pid: number;
  name: string;
}

/** How the tree ended, and what it left for the record. */
export interface SandboxOutcome {
  /** What uwrx exits with: the command's exit code, or 128+N when killed by signal N. */
  status: number;
  exitCode: number | null;
  signal: number | null;
  /** True when the run was interrupted (SIGINT/SIGTERM to uwrx) or uwrx-init was killed. */
  incomplete: boolean;
  /** The overlays whose uppers hold what the command wrote. */
  overlays: OverlayLayer[];
  /** uwrx-init's file record (files.meta, preserved versions). */
  files?: FilesPlan;
  /** See SandboxResult. */
  terminated?: SandboxResult['terminated'];
  problem?: string;
  /** File calls answered through seccomp notifications (DoneBody.fileNotifications). */
  fileNotifications?: number;
  /** Every notification by system call name (DoneBody.notifications). */
  notifications?: Record<string, number>;
  /** Handler time by system call name, microseconds (DoneBody.notificationUs). */
  notificationUs?: Record<string, number>;
  /** CPU time of the command's processes and of uwrx-init, microseconds (DoneBody.cpuUs). */
  cpuUs?: { command: number; init: number };
  /** DoneBody.newestFileNs. */
  newestFileNs?: bigint;
}

export interface Sandbox {
  /** Resolves once every process ended and uwrx-init exited; rejects with an
   * EnvironmentError naming the failing step when the setup failed. */
  done: Promise<SandboxOutcome>;
  /** Starts the removal of what is left of the run directory (after the record took the
   * uppers), without waiting for it (src/sandbox/run-dir-removal.ts). */
  cleanup(): Promise<void>;
  /** SIGTERM to the whole tree, SIGKILL after graceMs. */
  terminate(graceMs?: number): void;
  /** The tree was interrupted by a signal it got itself (a terminal's Ctrl-C): nothing is
   * sent to it, but the outcome is marked incomplete as after terminate(). */
  noteInterrupt(): void;
}

/** Runs the command in new namespaces under uwrx-init. */
export function startSandbox(options: SandboxOptions): Sandbox {
  return launchSandbox(options);
}

/** Null when this machine can run the sandbox, else one line saying what is missing. */
export function preflight(): string | null {
  return checkKernel();
}
