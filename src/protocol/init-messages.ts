// Messages between Node and uwrx-init, the sandbox's pid 1. The C side mirrors these
// names in src/native/include/uwrx_init_proto.h. Transport: SocketTransport (u32 LE
// length + msgpack Envelope). Byte strings from the sandbox (paths, argv) arrive as
// msgpack bin (Uint8Array): they need not be UTF-8.

/** Node -> uwrx-init: the whole sandbox, as data. Sent once, first. */
export const MSG_PLAN = 'plan';
/** Node -> uwrx-init: SIGTERM to every process now, SIGKILL after `graceMs`. */
export const MSG_TERMINATE = 'terminate';
/** uwrx-init -> Node: the command was forked (the plan is carried out). */
export const MSG_STARTED = 'started';
export const MSG_SPAWN = 'spawn';
export const MSG_EXEC = 'exec';
export const MSG_EXIT = 'exit';
/** uwrx-init -> Node: every process of the sandbox has ended. */
export const MSG_DONE = 'done';
/** uwrx-init -> Node: a plan step or the sandbox setup failed; `error` is one line. */
export const MSG_FAILED = 'failed';

/** Plan step operations, executed in order by pid 1 before the command starts. */
export type PlanStep =
  | { op: 'mount'; source: string | null; target: string; fstype: string | null; flags: number; data: string | null }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'file'; path: string; mode: number }
  | { op: 'symlink'; target: string; path: string }
  /** flags: 1 = the whole subtree (AT_RECURSIVE) */
  | { op: 'readonly'; path: string; flags: number }
  | { op: 'pivot'; path: string }
  | { op: 'loopback' }
  | { op: 'hostname'; name: string };

export interface InitPlan {
  argv: string[];
  /** "NAME=value" entries: the command's environment, exactly. */
  env: string[];
  cwd: string;
  /** Written to /proc/self/uid_map and gid_map of the new user namespace. */
  uidMap: string;
  gidMap: string;
  /** Write "deny" to /proc/self/setgroups first (required unprivileged). */
  denySetgroups: boolean;
  steps: PlanStep[];
  /** Threads answering seccomp notifications. */
  handlerThreads: number;
  /** Grace period between SIGTERM and SIGKILL when uwrx-init itself gets SIGINT/SIGTERM. */
  graceMs: number;
}

/** Times are CLOCK_BOOTTIME nanoseconds, the clock of trace events. */
export interface SpawnBody {
  pid: number;
  ppid: number;
  /** pid inside the sandbox's pid namespace (creation order among siblings). */
  nspid: number;
  time: number;
}

export interface ExecBody {
  pid: number;
  path: Uint8Array;
  argv: Uint8Array[];
  cwd: Uint8Array | null;
  time: number;
}

export interface ExitBody {
  pid: number;
  code: number | null;
  signal: number | null;
  time: number;
}

export interface DoneBody {
  /** The command's exit code, or 128+N when signal N killed it. */
  status: number;
  code: number | null;
  signal: number | null;
  time: number;
}

export interface FailedBody {
  /** Index of the failing plan step, -1 for setup outside the plan. */
  step: number;
  op: string;
  path: string;
  errno: number;
}
