// The workloads: real work, set up once outside the timing, reset before every run.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext } from './context.js';
import { benchProgram } from './native.js';
import { binutilsSource, setupStep } from './sources.js';

import type { Unit } from './results.js';

export interface Command {
  argv: string[];
  cwd: string;
  /** Extra `uwrx run` options this workload needs to measure what it means to. */
  uwrxOptions?: string[];
  /** A compile workload: the source the one-file-change rebuild modes edit (appending
   * `append`, restored afterwards), and the C compiler variable of its Makefile. */
  rebuild?: { source: string; append: string; ccVariable: string };
}

/** A row only one workload has (the notified-syscall floors), run without any mode. */
export interface ExtraRow {
  name: string;
  description: string;
  /** Inserted in the table right after this mode. */
  after: string;
  command(ctx: BenchContext): Promise<Command>;
}

export interface Workload {
  name: string;
  description(ctx: BenchContext): string;
  unit: Unit;
  /** Once per invocation, outside the timing. */
  setup(ctx: BenchContext): Promise<void>;
  /** Before every run (warm-up included), outside the timing. */
  prepare?(ctx: BenchContext): Promise<void>;
  command(ctx: BenchContext): Promise<Command>;
  /** For us/call workloads: the measured value printed by the command. */
  parse?(stdout: string): number;
  extraRows?: ExtraRow[];
  /** Its command has `rebuild`: the rebuild modes (uwrx-replay ..., ccache) apply. */
  rebuildable?: boolean;
  /** The processes its command starts, when they are what it measures (exec-storm). */
  processes?(ctx: BenchContext): number;
  /** At least this many measured runs whatever --runs says: a workload of a fraction of a
   * second, whose differences are smaller than this machine's run-to-run noise. */
  minRuns?: number;
}

/** The C project of the build workloads: libiberty (about 90 files), zlib with --quick. */
function cProject(ctx: BenchContext): string {
  return ctx.quick ? 'zlib' : 'libiberty';
}

function cBuildDir(ctx: BenchContext): string {
  return path.join(ctx.cache, 'work', `build-${cProject(ctx)}`);
}

/** Configured once (outside timing) in a build directory of its own. */
async function configureCProject(ctx: BenchContext): Promise<string> {
  const src = await binutilsSource(ctx);
  const dir = cBuildDir(ctx);
  if (!existsSync(path.join(dir, 'Makefile'))) {
    ctx.log(`configuring ${cProject(ctx)} in ${dir}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await setupStep(ctx, [path.join(src, cProject(ctx), 'configure')], dir, `configure ${cProject(ctx)}`);
  }
  return dir;
}

const cBuild: Workload = {
  name: 'c-build',
  unit: 'seconds',
  description: (ctx) =>
    `\`make -j2\` of binutils' ${cProject(ctx)} from clean (configured once outside the timing; \`make clean\` before every run)`,
  setup: async (ctx) => void (await configureCProject(ctx)),
  prepare: (ctx) => setupStep(ctx, ['make', 'clean'], cBuildDir(ctx), 'make clean'),
  rebuildable: true,
  command: async (ctx) => ({
    argv: ['make', '-j2'],
    cwd: cBuildDir(ctx),
    rebuild: {
      source: path.join(await binutilsSource(ctx), cProject(ctx), ctx.quick ? 'adler32.c' : 'xmalloc.c'),
      append: '\nint uwrx_bench_changed = 1;\n',
      ccVariable: 'CC',
    },
  }),
};

const configureDir = (ctx: BenchContext) => path.join(ctx.cache, 'work', 'configure-zlib');

const configure: Workload = {
  name: 'configure',
  unit: 'seconds',
  description: () => "autotools `configure` of binutils' zlib in an empty build directory (exec-heavy: hundreds of sh, sed and cc runs)",
  setup: async (ctx) => void (await binutilsSource(ctx)),
  async prepare(ctx) {
    await rm(configureDir(ctx), { recursive: true, force: true });
    await mkdir(configureDir(ctx), { recursive: true });
  },
  async command(ctx) {
    const src = await binutilsSource(ctx);
    return { argv: [path.join(src, 'zlib', 'configure')], cwd: configureDir(ctx) };
  },
};

const execIterations = (ctx: BenchContext) => (ctx.quick ? 200 : 1000);
// a /bin/true and an `sh -c :` an iteration (the loop's own shell: the fixed cost)
const execProcesses = (ctx: BenchContext) => 2 * execIterations(ctx);

const execStorm: Workload = {
  name: 'exec-storm',
  unit: 'seconds',
  description: (ctx) =>
    `a shell loop starting ${execProcesses(ctx)} short processes: \`/bin/true\` and \`sh -c :\`, ${execIterations(ctx)} times each`,
  setup: async () => {},
  processes: execProcesses,
  command: async (ctx) => ({
    argv: ['sh', '-c', `i=0; while [ $i -lt ${execIterations(ctx)} ]; do /bin/true; sh -c :; i=$((i+1)); done`],
    cwd: ctx.scratch,
  }),
};

const findRoot = (ctx: BenchContext) => (ctx.quick ? '/usr/share' : '/usr');

const findTree: Workload = {
  name: 'find',
  unit: 'seconds',
  description: (ctx) =>
    `\`find ${findRoot(ctx)} -size +4096k\`: an lstat of every entry of a large tree (exit status 1, some unreadable directory, is accepted: in a user namespace as root, files of unmapped owners are not readable)`,
  setup: async () => {},
  command: async (ctx) => ({ argv: ['sh', '-c', `find ${findRoot(ctx)} -size +4096k; test $? -le 1`], cwd: ctx.scratch }),
};

const noopRepeats = 10;

const noopMake: Workload = {
  name: 'noop-make',
  unit: 'seconds',
  description: (ctx) =>
    `${noopRepeats} no-op \`make -j2\` runs on the built ${cProject(ctx)} tree (make stats every target and prerequisite)`,
  async setup(ctx) {
    const dir = await configureCProject(ctx);
    await setupStep(ctx, ['make', '-j2'], dir, `make -j2 in ${dir}`);
  },
  command: async (ctx) => ({
    argv: ['sh', '-c', `for i in $(seq ${noopRepeats}); do make -j2 >/dev/null || exit 1; done`],
    cwd: cBuildDir(ctx),
  }),
};

const notifyIterations = (ctx: BenchContext) => (ctx.quick ? 5000 : 20000);

function lastNumber(stdout: string): number {
  const lines = stdout.trim().split('\n');
  const value = Number(lines.at(-1));
  if (!Number.isFinite(value)) throw new Error(`expected ns per call, got: ${lines.at(-1) ?? ''}`);
  return value / 1000;
}

const notify: Workload = {
  name: 'notify',
  unit: 'us/call',
  description: (ctx) =>
    `${notifyIterations(ctx)} \`write(1, "", 0)\` calls (bench/native/notify-loop.c, timed by itself; uwrx runs it with \`--time real\`); each mode runs the loop, the floor rows run bench/native/notify-floor.c`,
  async setup(ctx) {
    await benchProgram(ctx, 'notify-loop');
    await benchProgram(ctx, 'notify-floor');
  },
  // The loop times itself with clock_gettime: uwrx's default deterministic clocks
  // (10 us per read) would make that meaningless.
  command: async (ctx) => ({
    argv: [await benchProgram(ctx, 'notify-loop'), String(notifyIterations(ctx))],
    cwd: ctx.scratch,
    uwrxOptions: ['--time', 'real'],
  }),
  parse: lastNumber,
  extraRows: [
    floorRow('floor-default', 'native', 'minimal C responder answering CONTINUE, default wake-up', 'default'),
    floorRow('floor-sync', 'floor-default', 'the same responder with SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP)', 'sync'),
  ],
};

/** A row of the minimal C responder (bench/native/notify-floor.c) in one wake-up mode. */
function floorRow(name: string, after: string, description: string, wakeUp: 'default' | 'sync'): ExtraRow {
  return {
    name,
    after,
    description,
    command: async (ctx) => ({
      argv: [await benchProgram(ctx, 'notify-floor'), String(notifyIterations(ctx)), wakeUp],
      cwd: ctx.scratch,
    }),
  };
}

// Timed waits measure themselves in real time with /proc/uptime (10 ms resolution),
// which no clock interception touches: the sum of the real seconds they took.
const timerPrograms = [
  [
    'python3',
    '-c',
    [
      'import asyncio, threading, time',
      "up = lambda: float(open('/proc/uptime').read().split()[0])",
      'for f in (lambda: time.sleep(1), lambda: asyncio.run(asyncio.sleep(0.3)), lambda: threading.Event().wait(1)):',
      '    r = up(); f(); print(up() - r)',
    ].join('\n'),
  ],
  [
    'node',
    '-e',
    "const up = () => Number(require('fs').readFileSync('/proc/uptime', 'utf8').split(' ')[0]); const r = up(); setTimeout(() => console.log(up() - r), 1000);",
  ],
];

function sumOfLines(stdout: string): number {
  const values = stdout.trim().split('\n').map(Number);
  if (values.length !== 4 || values.some((v) => !Number.isFinite(v))) throw new Error(`expected 4 durations, got: ${stdout}`);
  return values.reduce((a, b) => a + b, 0);
}

const timers: Workload = {
  name: 'timers',
  unit: 'seconds',
  description: () =>
    'real time spent in timed waits (Python `time.sleep(1)`, `asyncio.sleep(0.3)`, `threading.Event().wait(1)`, Node `setTimeout(f, 1000)`: 3.3 s of waiting), each measured inside with /proc/uptime; under uwrx with the default deterministic clocks',
  setup: async () => undefined,
  command: async (ctx) => ({
    argv: ['sh', '-c', timerPrograms.map((argv) => argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')).join(' && ')],
    cwd: ctx.scratch,
  }),
  parse: sumOfLines,
};

/** The path of a program of bench/programs/. */
const benchScript = (ctx: BenchContext, name: string) => path.join(ctx.repo, 'bench', 'programs', name);

// A load test: a program under test and its clients, the way a user stress-tests a
// server under uwrx. The program times itself in real time (/proc/uptime), so the row
// compares the requests' own time, without uwrx's fixed cost.
const loadRequests = (ctx: BenchContext) => (ctx.quick ? 5000 : 20000);

/** The last line of a program that prints its own duration in seconds. */
function lastLineSeconds(stdout: string): number {
  const value = Number(stdout.trim().split('\n').at(-1));
  if (!Number.isFinite(value)) throw new Error(`expected seconds, got: ${stdout}`);
  return value;
}

const httpLoad: Workload = {
  name: 'http-load',
  unit: 'seconds',
  description: (ctx) =>
    `a Node HTTP server and 32 keep-alive clients in one process making ${loadRequests(ctx)} requests over loopback (bench/programs/http-load.cjs, timed inside with /proc/uptime); uwrx with its default deterministic clocks`,
  setup: async () => undefined,
  command: async (ctx) => ({
    argv: [process.execPath, benchScript(ctx, 'http-load.cjs'), String(loadRequests(ctx)), '32'],
    cwd: ctx.scratch,
  }),
  parse: lastLineSeconds,
};

/** A server and its load generator run by a script of bench/programs/ with one count,
 * which prints the load's own duration (timed inside with /proc/uptime) last. */
function serverLoad(name: string, script: string, count: (ctx: BenchContext) => number, what: (n: number) => string): Workload {
  return {
    name,
    unit: 'seconds',
    description: (ctx) =>
      `${what(count(ctx))} (bench/programs/${script}, timed inside with /proc/uptime); uwrx with its default deterministic clocks`,
    setup: async () => undefined,
    command: async (ctx) => ({ argv: ['sh', benchScript(ctx, script), String(count(ctx))], cwd: ctx.scratch }),
    parse: lastLineSeconds,
  };
}

// An event loop that waits with a timeout on every turn (epoll_wait), the other kind of
// server a load test meets: under uwrx's default clocks each such wait ends in process.
const redisLoad = serverLoad(
  'redis-load',
  'redis-load.sh',
  (ctx) => (ctx.quick ? 10000 : 50000),
  (n) => `redis-server and redis-benchmark over a unix socket, ${n} SET and ${n} GET requests with 16 connections`,
);

// A server of many processes: the postmaster forks a backend per connection, and the
// backends keep an itimer armed while they read the clock around every statement.
const pgLoad = serverLoad(
  'pg-load',
  'pg-load.sh',
  (ctx) => (ctx.quick ? 300 : 1500),
  (n) => `PostgreSQL 15: initdb, pg_ctl, \`pgbench -i -s 2\`, then 4 clients in 2 threads making ${n} transactions each over TCP`,
);

const outputLines = (ctx: BenchContext) => (ctx.quick ? 10000 : 50000);

// Output of a process with threads (Node's), one write(2) per line: into a file and into
// a pipe, the two places a build's output goes.
const output: Workload = {
  name: 'output',
  unit: 'seconds',
  description: (ctx) =>
    `\`bench/programs/print-lines.cjs\`: Node writing ${outputLines(ctx)} lines, one write each, to a file, then as many into a pipe to \`cat\``,
  setup: async () => undefined,
  command: async (ctx) => {
    const print = `${process.execPath} ${benchScript(ctx, 'print-lines.cjs')} ${outputLines(ctx)}`;
    return { argv: ['sh', '-c', `${print} > lines.txt && ${print} | cat > /dev/null`], cwd: ctx.scratch };
  },
};

// A JavaScript tool's start: module resolution is stats of candidate files, which Node
// (libuv) makes through syscall(2), not through libc's stat wrappers.
const resolveRounds = (ctx: BenchContext) => (ctx.quick ? 10 : 40);
const nodeResolve: Workload = {
  name: 'node-resolve',
  unit: 'seconds',
  description: (ctx) =>
    `\`bench/programs/resolve-modules.cjs\`: Node reading the package.json of every package in uwrx's own node_modules and resolving its entry with \`require.resolve\`, ${resolveRounds(ctx)} rounds (a bundler's or test runner's start)`,
  setup: async () => undefined,
  command: async (ctx) => ({
    argv: [process.execPath, benchScript(ctx, 'resolve-modules.cjs'), ctx.repo, String(resolveRounds(ctx))],
    cwd: ctx.scratch,
  }),
};

// The fixed cost of a run: everything uwrx does around a command that does nothing.
const startup: Workload = {
  name: 'startup',
  unit: 'seconds',
  description: () =>
    'the fixed cost of a run: `true`, whose own time is nothing (Node start and imports, actors, sandbox set-up and finish under uwrx); the node-baseline row is a bare `node -e 0`, the floor of any program on Node, measured in the same rounds',
  setup: async () => undefined,
  command: async (ctx) => ({ argv: ['true'], cwd: ctx.scratch }),
  // each run is about 0.2 s; three of them moved the median by 20 ms between invocations
  minRuns: 11,
  extraRows: [
    {
      name: 'node-baseline',
      after: 'native',
      description: '`node -e 0` (the Node that runs uwrx), with NODE_EXTRA_CA_CERTS emptied as uwrx starts its Node: what starting any Node program costs here',
      // a set NODE_EXTRA_CA_CERTS costs Node some 60-90 ms at start-up (bin/uwrx says why
      // uwrx empties it); the floor is measured the way uwrx starts
      command: async (ctx) => ({ argv: ['env', 'NODE_EXTRA_CA_CERTS=', process.execPath, '-e', '0'], cwd: ctx.scratch }),
    },
  ],
};

export const workloads: readonly Workload[] = [cBuild, configure, execStorm, findTree, noopMake, notify, timers, httpLoad, redisLoad, pgLoad, output, nodeResolve, startup];

export function findWorkload(name: string): Workload | undefined {
  return workloads.find((w) => w.name === name);
}
