// Messages between Node and uwrx-init, the sandbox's pid 1. The C side mirrors these
// names in src/native/include/uwrx_init_proto.h (test/init-protocol.test.ts keeps them
// in step). Transport: SocketTransport (u32 LE length + msgpack Envelope). Either side
// may ask: a request carries `id`, its answer `re` and `body` or `error` (src/actors/
// peer.ts, src/actors/init-bridge.ts); other messages are notifications. A message of
// an unknown type is an error. Byte strings from the sandbox (paths, argv) arrive as
// msgpack bin (Uint8Array): they need not be UTF-8.

/** Node -> uwrx-init: the whole sandbox, as data. Sent once, first. */
export const MSG_PLAN = 'plan';
/** Node -> uwrx-init: SIGTERM to every process now, SIGKILL after `graceMs`. */
export const MSG_TERMINATE = 'terminate';
/** Node -> uwrx-init request: deferred answers and problems so far (StatsBody). */
export const MSG_STATS = 'stats';
/** uwrx-init -> Node request of the deferral test feature (plan key testDeferral):
 * answer `{value}` after `ms` milliseconds (TestDeferBody). */
export const MSG_TEST_DEFER = 'test.defer';
/** uwrx-init -> Node: a program on the skippable list starts (RebuildExecBody). With
 * rebuildWait a request, whose answer (RebuildAnswer) says whether it runs or is answered
 * from the record; without (a capture), a notification: the exec runs at once. */
export const MSG_REBUILD_EXEC = 'rebuild.exec';

/** uwrx-init -> Node: the command was forked (the plan is carried out). */
export const MSG_STARTED = 'started';
export const MSG_SPAWN = 'spawn';
export const MSG_EXEC = 'exec';
export const MSG_EXIT = 'exit';
/** uwrx-init -> Node: process notices held together (ProcsBody), in order: each entry
 * is the body of a spawn, exec or exit by position. The bridge hands each on as that
 * notice (src/actors/init-bridge.ts): one envelope to decode for many notices. */
export const MSG_PROCS = 'procs';
/** ProcsBody entries' first element (PROC_* of uwrx_init_proto.h). */
export const PROC_SPAWN = 0;
export const PROC_EXEC = 1;
export const PROC_EXIT = 2;
/** uwrx-init -> Node: every process of the sandbox has ended. */
export const MSG_DONE = 'done';
/** uwrx-init -> Node: a plan step or the sandbox setup failed; `error` is one line. */
export const MSG_FAILED = 'failed';
/** uwrx-init -> Node: an fd waits on the network socket (NetFdBody; the launcher adds
 * the received `fd` before listeners see it). */
export const MSG_NET_FD = 'netfd';
/** uwrx-init -> Node: a process connects to an allocated address or to the sandbox's
 * name server (NetConnectBody). */
export const MSG_NET_CONNECT = 'netconnect';
/** uwrx-init -> Node: something the record should hold and does not (ProblemBody); the
 * run goes on and the attempt's status counts it. */
export const MSG_PROBLEM = 'problem';

/** Plan step operations, executed in order by pid 1 before the command starts (one
 * executor per operation in uwrx-init's op table). A step with `bestEffort` may fail
 * without failing the run (uwrx-init warns and goes on): it concerns a host path that
 * can vanish between planning and running, such as a temporary file in a directory
 * rebuilt entry by entry, or a feature the run can do without (devrandom, pty).
 * A mount with `ahead` names only sources no step makes (host directories, the run
 * directory's upper and work directories): uwrx-init makes its filesystem ahead, beside
 * the steps before it and the other such mounts, and attaches it at its own place in
 * the order (src/native/init/ahead.c). */
export type PlanStep = PlanOp & { bestEffort?: boolean; ahead?: boolean };

export type PlanOp =
  /** Opens the file record (the plan's `files`) before the run directory is hidden. */
  | { op: 'files' }
  /** Keeps a handle on the traces directory (the plan's `tracesDir`). */
  | { op: 'traces'; path: string }
  /** Keeps a handle on the replayed attempt (the plan input's `replayedDir`). */
  | { op: 'replayed'; path: string }
  | { op: 'mount'; source: string | null; target: string; fstype: string | null; flags: number; data: string | null }
  /** A read-only bind of the host directory `name` at `target`, the overlay (`source`,
   * `fstype`, `flags`, `data` as for a mount) attached over it at `path` (the same
   * directory after pivot_root) before the first change below it (init/lazy.c) */
  | { op: 'lazy'; name: string; source: string; target: string; path: string; fstype: string; flags: number; data: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'file'; path: string; mode: number }
  | { op: 'symlink'; target: string; path: string }
  /** `path` gets the access and modification times of the host's `source` (flags 1: of
   * a symlink itself) */
  | { op: 'times'; source: string; path: string; flags: number }
  /** flags: 1 = the whole subtree (AT_RECURSIVE) */
  | { op: 'readonly'; path: string; flags: number }
  | { op: 'pivot'; path: string }
  | { op: 'loopback' }
  | { op: 'hostname'; name: string }
  | { op: 'domainname'; name: string }
  /** A FUSE file serving deterministic streams over `path`; flags: 1 = /dev/random */
  | { op: 'devrandom'; path: string; flags: number }
  /** `path` is /dev/pts/<n> of the sandbox's devpts: pty n is taken there (ptmx beside
   * it) and the host's pty `source` bound over it; skipped with a warning if impossible */
  | { op: 'pty'; source: string; path: string }
  /** pid_max of the new pid namespace (flags), set in its /proc at `path`; skipped with a
   * warning where pid_max is not per namespace (Linux before 6.14) */
  | { op: 'pidmax'; path: string; flags: number }
  /** Network (src/native/init/net.c): an address added to lo (flags: prefix length) */
  | { op: 'netaddr'; path: string; flags: number }
  /** a local route for an IPv6 prefix on lo (flags: prefix length) */
  | { op: 'netroute'; path: string; flags: number }
  /** a UDP or TCP socket bound to `path` port `flags`, handed to Node (MSG_NET_FD) */
  | { op: 'netsocket'; name: 'udp' | 'tcp'; path: string; flags: number };

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
  /** How long to wait for the rest of the tree once the command's main process ended,
   * before terminating it (absent or negative: wait for every process). */
  lingerMs?: number;
  /** Absolute <runDir>/traces: uwrx-init writes each process's trace buffer there
   * (src/native/init/trace.c). Absent: no trace events. */
  tracesDir?: string;
  /** The in-process recorder may hand out its buffers (src/native/include/uwrx_recorder.h). */
  recorder?: boolean;
  /** Root PRNG seed, 64 hex digits (seed.txt). Absent: randomness and time pass through. */
  seed?: string;
  /** T0 in ns since the epoch, decimal (ns do not fit a double). */
  t0Ns?: string;
  /** TIME_MODE_CODE of src/reproducibility/time.ts. */
  timeMode?: number;
  timeStepNs?: number;
  /** Keep address-space randomization (default false: ADDR_NO_RANDOMIZE in the command tree). */
  aslr?: boolean;
  /** The file store (src/native/init/files.c). Absent: no files.meta, no versions, no
   * stat time squashing. */
  files?: FilesPlan;
  /** Enables the deferral test feature of uwrx-init (a test switch, see launch.ts). */
  testDeferral?: boolean;
  /** On replay: the replayed attempt's processes as flat triples (parent's logical pid,
   * ordinal among its children from 0, logical pid), i.e. tree key -> pid. A process
   * whose key is listed gets that pid; others get pids after the largest one. */
  replayPids?: number[];
  /** Executable names (exact, or "prefix*") whose exec start is asked about
   * (MSG_REBUILD_EXEC); matched against the basenames of argv[0] and of the executable,
   * as they are and without a "<arch>-linux-<abi>-" prefix and a "-<version>" suffix. */
  skippable?: string[];
  /** A replay with a policy: each such exec waits for the answer. Without (a capture),
   * a notification only notes the process and the exec goes on at once. */
  rebuildWait?: boolean;
}

export interface RebuildExecBody {
  /** Logical pid. */
  pid: number;
  /** The process seed (32 bytes): derived from its place in the process tree, so it
   * names the same process in a replay; null without a seed. */
  seed: Uint8Array | null;
  exe: Uint8Array;
  argv: Uint8Array[];
  cwd: Uint8Array | null;
  env: Uint8Array[];
  /** What its fds 1 and 2 name ("dev:ino" of their stat; null when closed). */
  stdio?: [string | null, string | null];
  /** The sandbox's overlays: [mount point, touched] (a process of the run asked to change
   * something below it); null when no changes are recorded. */
  overlays?: Array<[Uint8Array, boolean]> | null;
}

export interface RebuildAnswer {
  skip: boolean;
  /** Exit status of a skipped process. */
  status?: number;
  /** Output of a skipped process: records of (u8 fd, u32 LE length, bytes). */
  output?: Uint8Array;
  /** What the skipped process did to files, in order: uwrx-init does it in its name. */
  files?: ReplayedFile[];
  reason?: string;
  /** Where the recorded process's clocks ended (ExitBody.clock): the skipped one ends there. */
  clock?: ProcessClock;
}

export interface ReplayedFile {
  path: Uint8Array;
  /** 0: a file with `mode` and the bytes of `data` or of `source`, 1: a directory, 2:
   * absent. */
  kind: 0 | 1 | 2;
  mode: number;
  data?: Uint8Array;
  /** The stored version, relative to the replayed attempt (the plan's "replayed" step):
   * uwrx-init copies it from there. */
  source?: Uint8Array;
}

/** Where uwrx-init keeps the file record during the run, and what it needs to answer
 * stat times (docs/record.md, "Timestamps in stat results"). */
export interface FilesPlan {
  /** <runDir>/files.meta, appended to during the run. */
  meta: string;
  /** <runDir>/versions: preserved versions, <n> and `index` (src/record/versions-index.ts). */
  versions: string;
  /** Parent layers below this attempt (the length of the parent chain). */
  layers: number;
  intervalNs: number;
  /** With T0 (decimal ns strings, src/reproducibility/time.ts layerTimes): where the
   * attempt's wall clocks start after T0; the latest T0 of the parent chain ("0": none);
   * the newest time a parent's file showed. A real file modified after recordedSinceNs
   * shows a time after recordedNewestNs. */
  wallOffsetNs?: string;
  recordedSinceNs?: string;
  recordedNewestNs?: string;
  overlays: Array<{
    mountPoint: string;
    upper: string;
    /** The parents' directories for this mount point, top first; `layer` 1..layers. */
    lowers: Array<{ dir: string; layer: number }>;
    /** Device of the real directory: overlays of one real filesystem share it. */
    device?: number;
  }>;
}

/** Times are CLOCK_BOOTTIME nanoseconds, the clock of trace events. */
export interface SpawnBody {
  pid: number;
  ppid: number;
  /** pid inside the sandbox's pid namespace (creation order among siblings). */
  nspid: number;
  /** Rank among the parent's children in creation order, from 0 (the tree key's second
   * part); absent from older senders. */
  ordinal?: number;
  time: number;
}

export interface ExecBody {
  pid: number;
  path: Uint8Array;
  argv: Uint8Array[];
  cwd: Uint8Array | null;
  time: number;
}

/** A process's virtual clocks (src/native/common/dettime.h, uwrx_clock): its time on the
 * attempt's axis, its CPU time and its reaped children's, in ns. */
export type ProcessClock = [now: number, cpu: number, childrenCpu: number];

export interface ExitBody {
  pid: number;
  code: number | null;
  signal: number | null;
  time: number;
  /** Where its clocks ended; absent when they are not virtual (--time real). */
  clock?: ProcessClock;
}

/** MSG_PROCS: SpawnBody, ExecBody and ExitBody fields by position, after their kind. */
export type ProcEntry =
  | [typeof PROC_SPAWN, pid: number, ppid: number, ordinal: number, nspid: number, time: number]
  | [typeof PROC_EXEC, pid: number, path: Uint8Array, argv: Uint8Array[], cwd: Uint8Array | null, time: number]
  | [typeof PROC_EXIT, pid: number, code: number | null, signal: number | null, time: number, clock?: ProcessClock | null];
export type ProcsBody = ProcEntry[];

export interface DoneBody {
  /** The command's exit code, or 128+N when signal N killed it. */
  status: number;
  code: number | null;
  signal: number | null;
  time: number;
  /** Logical pids of the processes still running when the linger time ran out (the
   * first 64), which uwrx-init then terminated. */
  terminated?: Array<{ pid: number; name: string }>;
  /** How many processes that was (also those never seen by a handler). */
  terminatedCount?: number;
  /** Present when trace buffers failed (a full filesystem under --tmp): trace records
   * dropped, processes that got no buffer, the first errno. */
  traceLostRecords?: number;
  traceLostBuffers?: number;
  traceErrno?: number;
  /** Deferred answers over the run (absent from an older uwrx-init). */
  deferred?: DeferredStats;
  /** File calls (opens, the stat and access families, mutations) answered through
   * seccomp notifications during the run. */
  fileNotifications?: number;
  /** Every notification of the run, by system call name ("uwrx_control": the shim's and
   * the recorder's control calls; "other": numbers without a name). */
  notifications?: Record<string, number>;
  /** By the same names: the microseconds uwrx-init's handler threads spent on those
   * notifications, from taking each to answering it (absent from an older uwrx-init). */
  notificationUs?: Record<string, number>;
  /** User and system time, microseconds: `command`, the command's processes (every one
   * reaped by the end); `init`, uwrx-init's own threads (absent from an older uwrx-init). */
  cpuUs?: { command: number; init: number };
  /** The newest time a file of the attempt shows at its end (decimal ns; times set
   * explicitly left out): newest.txt. Absent without file times. */
  newestFileNs?: string;
}

export interface DeferredStats {
  /** Waiting at the end: always 0, a process's exit drops its own. */
  open: number;
  answered: number;
  /** Dropped because the caller was killed while it waited. */
  dropped: number;
}

export interface StatsBody {
  deferred: DeferredStats;
  /** Problems counted so far, by kind. */
  problems: Record<string, number>;
}

export interface TestDeferBody {
  /** The calling process (logical pid). */
  pid: number;
  ms: number;
  value: number;
}

export interface FailedBody {
  /** One line: what failed, and why. */
  message: string;
  /** Index of the failing plan step, -1 for setup outside the plan. */
  step: number;
  op: string;
  path: string;
  errno: number;
}

/** The kinds uwrx-init reports (PROBLEM_NAME_* in the C header). */
export const INIT_PROBLEM_KINDS = ['lost-version', 'trace-buffer', 'allocation', 'request-timeout', 'bad-message'] as const;

export interface ProblemBody {
  /** Short stable name: one of INIT_PROBLEM_KINDS. */
  kind: string;
  /** Occurrences since the last report of this kind. */
  count: number;
  /** The first occurrence, in one line (a path may not be UTF-8). */
  detail?: Uint8Array | string;
}

/** The fd with this id is the next message on the network socket (fd 4 of uwrx-init). */
export interface NetFdBody {
  id: number;
  /** udp, tcp (the DNS sockets) or listen (a proxy listener) */
  kind: string;
  address: string;
  port: number;
  /** Added by the launcher: the fd received for `id`. */
  fd?: number;
}

export interface NetConnectBody {
  /** Logical pid of the connecting process. */
  pid: number;
  /** The socket's type: a UDP socket is reported only when it connects to the name server. */
  kind: 'tcp' | 'udp';
  address: string;
  port: number;
  /** The connecting socket's port: the proxy sees it as the peer's port. */
  sourcePort: number;
  time: number;
}
