// How a workload's command is run in each mode. A mode wraps the command's argv; it does
// not change the workload, so every mode measures the same work.
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readAttemptStatus, type AttemptStatus } from '../src/record/layout.js';
import type { BenchContext } from './context.js';
import { cleanEnv, describeFailure, runMeasured } from './proc.js';
import type { Command } from './workloads.js';

export interface Wrapped {
  argv: string[];
  /** comm of a descendant whose peak RSS is reported next to the spawned process's. */
  watchDescendant?: string;
  cleanup?: () => Promise<void>;
  /** Where the run's file calls were answered (uwrx's attempt status), read before cleanup. */
  fileCalls?: () => Promise<FileCalls | undefined>;
  /** Where the measured run's CPU time went (uwrx's attempt status), read before cleanup. */
  cpuSplit?: () => Promise<CpuSplit | undefined>;
  /** What uwrx-init's handlers answered in the measured run (its attempt status). */
  handled?: () => Promise<Handled | undefined>;
}

/** Notifications of a uwrx run by system call name: how many, and the microseconds its
 * handlers spent on them in all (the status's notifications and notificationUs). */
export type Handled = Record<string, { calls: number; us: number }>;

/** CPU seconds (user and system) of a uwrx run by part: the command's processes,
 * uwrx-init, and the uwrx supervisor process (the status's cpuMs). */
export interface CpuSplit {
  command: number;
  init: number;
  supervisor: number;
}

export interface FileCalls {
  inProcess: number;
  notified: number;
}

/** The status of every attempt under a uwrx build directory. */
async function readStatuses(build: string): Promise<AttemptStatus[]> {
  const statuses: AttemptStatus[] = [];
  for (const step of await readdir(build).catch(() => [] as string[])) {
    for (const attempt of await readdir(path.join(build, step)).catch(() => [] as string[])) {
      try {
        const status = readAttemptStatus(path.join(build, step, attempt));
        if (status) statuses.push(status);
      } catch {
        /* not an attempt directory */
      }
    }
  }
  return statuses;
}

/** The file call counts of every attempt under a uwrx build directory, summed. */
async function readFileCalls(build: string): Promise<FileCalls | undefined> {
  let total: FileCalls | undefined;
  for (const status of await readStatuses(build)) {
    if (!status.fileCalls) continue;
    total ??= { inProcess: 0, notified: 0 };
    total.inProcess += status.fileCalls.inProcess;
    total.notified += status.fileCalls.notified;
  }
  return total;
}

/** The attempt that ended last under a uwrx build directory and has `key` (the measured
 * one: a rebuild mode's capture ended before its replay). */
async function lastStatusWith(build: string, key: keyof AttemptStatus): Promise<AttemptStatus | undefined> {
  return (await readStatuses(build))
    .filter((s) => s[key] !== undefined)
    .sort((a, b) => (a.endedAt < b.endedAt ? -1 : 1))
    .at(-1);
}

/** The measured attempt's CPU split, in seconds. */
async function readCpuSplit(build: string): Promise<CpuSplit | undefined> {
  const last = (await lastStatusWith(build, 'cpuMs'))?.cpuMs;
  return last && { command: last.command / 1000, init: last.init / 1000, supervisor: last.supervisor / 1000 };
}

/** The measured attempt's notifications by call. */
async function readHandled(build: string): Promise<Handled | undefined> {
  const status = await lastStatusWith(build, 'notifications');
  if (!status?.notifications) return undefined;
  const handled: Handled = {};
  for (const [name, calls] of Object.entries(status.notifications)) handled[name] = { calls, us: status.notificationUs?.[name] ?? 0 };
  return handled;
}

export interface Mode {
  name: string;
  description: string;
  /** Null when the mode can run here, else one line saying why not. */
  probe(ctx: BenchContext): Promise<string | null>;
  wrap(command: Command, ctx: BenchContext): Promise<Wrapped>;
  /** The spawned process is the uwrx supervisor: report its RSS and uwrx-init's. */
  reportsMemory?: boolean;
  /** Only for compile workloads (Workload.rebuildable): a rebuild mode. */
  rebuildOnly?: boolean;
  /** After a successful probe: a line saying why the numbers do not mean what the mode
   * promises (e.g. the command was not sandboxed), or null. */
  caveat?(ctx: BenchContext): Promise<string | null>;
}

/** A mode reserved in the table whose implementation does not exist yet. */
export const notYet = 'not yet';

async function probeCommand(argv: string[], ctx: BenchContext): Promise<string | null> {
  try {
    const o = await runMeasured({ argv, cwd: ctx.scratch, env: cleanEnv(), timeoutMs: 60_000 });
    return o.exitCode === 0 ? null : describeFailure(o);
  } catch (e) {
    return (e as Error).message;
  }
}

const native: Mode = {
  name: 'native',
  description: 'the command as is',
  probe: async () => null,
  wrap: async ({ argv }) => ({ argv }),
};

const strace: Mode = {
  name: 'strace',
  description: '`strace -f -o /dev/null`: what a user reaches for to trace a build (ptrace, every syscall stops)',
  probe: (ctx) => probeCommand(['strace', '-f', '-o', '/dev/null', '--', 'true'], ctx),
  wrap: async ({ argv }) => ({ argv: ['strace', '-f', '-o', '/dev/null', '--', ...argv] }),
};

/** The namespaces uwrx creates, with the host root bound in and no interception. */
export function bwrapArgs(cwd: string): string[] {
  return [
    'bwrap',
    '--unshare-user',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-uts',
    '--unshare-ipc',
    '--dev-bind', '/', '/',
    '--proc', '/proc',
    '--dev', '/dev',
    '--die-with-parent',
    '--chdir', cwd,
    '--',
  ];
}

const bwrap: Mode = {
  name: 'bwrap',
  description:
    'bubblewrap with the same namespaces (user, mount, pid, net, uts, ipc), `--dev-bind / /`, fresh /proc and /dev, no tracing: the floor of a sandbox',
  probe: (ctx) => probeCommand([...bwrapArgs(ctx.scratch), 'true'], ctx),
  wrap: async ({ argv, cwd }) => ({ argv: [...bwrapArgs(cwd), ...argv] }),
};

/** uwrx started as a user starts it: the `uwrx` command (package.json "bin", which
 * starts bin/uwrx) where the checkout has one, else bin/uwrx as a program (its first line
 * picks the Node on PATH and how Node starts). */
function uwrxProgram(ctx: BenchContext): string {
  const command = path.join(ctx.repo, 'src', 'native', 'out', 'uwrx');
  return existsSync(command) ? command : path.join(ctx.repo, 'bin', 'uwrx');
}

/** bin/uwrx loads the CLI's bundle only when it is at least as new as the compiled
 * modules, else the modules one by one (some 60 ms more of every run's start): a bare
 * `tsc` after the last bundle would measure that slower start, not uwrx's. */
function staleBundle(ctx: BenchContext): string | null {
  const cli = path.join(ctx.repo, 'dist', 'src', 'cli');
  try {
    if (statSync(path.join(cli, 'uwrx.cjs')).mtimeMs >= statSync(path.join(cli, 'main.js')).mtimeMs) return null;
  } catch {
    // no bundle at all: the same advice
  }
  return `the CLI bundle (${path.join(cli, 'uwrx.cjs')}) is missing or older than the compiled modules: run \`npm run build:ts\` first`;
}

export function uwrxCommand(ctx: BenchContext, buildDir: string, argv: string[], options: string[] = []): string[] {
  return [uwrxProgram(ctx), 'run', '--quiet', '--build', buildDir, ...options, '--', ...argv];
}

function uwrxMode(name: string, description: string, extra: string[]): Mode {
  return {
    name,
    description,
    reportsMemory: true,
    caveat: uwrxCaveat,
    async probe(ctx) {
      if (!existsSync(path.join(ctx.repo, 'bin', 'uwrx'))) return `${path.join(ctx.repo, 'bin', 'uwrx')} does not exist`;
      const stale = staleBundle(ctx);
      if (stale) return stale;
      const build = await mkdtemp(path.join(ctx.scratch, 'uwrx-probe-'));
      try {
        return await probeCommand(uwrxCommand(ctx, build, ['true'], extra), ctx);
      } finally {
        await rm(build, { recursive: true, force: true });
      }
    },
    async wrap({ argv, uwrxOptions }, ctx) {
      const build = await mkdtemp(path.join(ctx.scratch, 'uwrx-build-'));
      return {
        argv: uwrxCommand(ctx, build, argv, [...(uwrxOptions ?? []), ...extra]),
        watchDescendant: 'uwrx-init',
        fileCalls: () => readFileCalls(build),
        cpuSplit: () => readCpuSplit(build),
        handled: () => readHandled(build),
        // Records stay until the invocation ends, as a user's do (BenchContext.atEnd):
        // removing thousands of inodes seconds before the next run makes its own
        // creations dearer on filesystems that pass over recently freed inodes (ext4
        // without a journal), a cost of the bench, not of the run measured.
        cleanup: async () => void ctx.atEnd.push(() => rm(build, { recursive: true, force: true })),
      };
    },
  };
}

const uwrx = uwrxMode(
  'uwrx',
  '`uwrx run --quiet --no-fast-path --build <fresh tmp dir>`: capture mode, every process and file recorded, every file call notified',
  ['--no-fast-path'],
);
const uwrxFast = uwrxMode(
  'uwrx-fast',
  'the same with `--fast-path` (the default): read-only file calls of dynamically linked programs recorded in process, the rest notified',
  ['--fast-path'],
);

/** Pid namespace and seccomp state of a process started by argv-prefix + `sh -c`. */
async function isolation(ctx: BenchContext, prefix: string[]): Promise<{ pidns: string; seccomp: string } | undefined> {
  const o = await runMeasured({
    argv: [...prefix, 'sh', '-c', 'readlink /proc/self/ns/pid; sed -n "s/^Seccomp:[[:space:]]*//p" /proc/self/status'],
    cwd: ctx.scratch,
    env: cleanEnv(),
    timeoutMs: 60_000,
  });
  const [pidns, seccomp] = o.stdout.trim().split('\n').slice(-2);
  return o.exitCode === 0 && pidns && seccomp ? { pidns, seccomp } : undefined;
}

/** uwrx numbers only count when the command really ran sandboxed and filtered. */
async function uwrxCaveat(ctx: BenchContext): Promise<string | null> {
  const host = await isolation(ctx, []);
  const build = await mkdtemp(path.join(ctx.scratch, 'uwrx-probe-'));
  try {
    const inside = await isolation(ctx, uwrxCommand(ctx, build, []));
    if (!host || !inside) return 'could not inspect the command\'s namespaces under uwrx';
    if (inside.pidns === host.pidns) return 'uwrx ran the command without its sandbox (host pid namespace)';
    if (inside.seccomp !== '2') return 'uwrx ran the command without a seccomp filter';
    return null;
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

/** `uwrx run --replay` of a capture made untimed in wrap (the real tree stays as it was:
 * uwrx never writes it), after `change` (one source edited, restored in cleanup). */
function uwrxReplayMode(name: string, description: string, change: boolean, captureOptions: string[] = []): Mode {
  return {
    name,
    description,
    reportsMemory: true,
    rebuildOnly: true,
    caveat: uwrxCaveat,
    probe: (ctx) => uwrx.probe(ctx),
    async wrap({ argv, cwd, uwrxOptions, rebuild }, ctx) {
      if (!rebuild) throw new Error('not a compile workload');
      const build = await mkdtemp(path.join(ctx.scratch, 'uwrx-build-'));
      const capture = await runMeasured({
        argv: uwrxCommand(ctx, build, argv, [...(uwrxOptions ?? []), ...captureOptions]),
        cwd,
        env: cleanEnv(),
        timeoutMs: ctx.timeoutMs,
      });
      if (capture.exitCode !== 0) throw new Error(`capture: ${describeFailure(capture)}`);
      const original = change ? await readFile(rebuild.source) : undefined;
      if (original) await writeFile(rebuild.source, Buffer.concat([original, Buffer.from(rebuild.append)]));
      return {
        argv: [uwrxProgram(ctx), 'run', '--quiet', '--replay', path.join(build, '0', '0')],
        watchDescendant: 'uwrx-init',
        fileCalls: () => readFileCalls(build),
        cpuSplit: () => readCpuSplit(build),
        handled: () => readHandled(build),
        cleanup: async () => {
          if (original) await writeFile(rebuild.source, original);
          await rm(build, { recursive: true, force: true });
        },
      };
    },
  };
}

const uwrxReplay = uwrxReplayMode(
  'uwrx-replay',
  '`uwrx run --replay <capture>` right after a capture of the same build (made untimed): every compile skipped (partial rebuild)',
  false,
);
const uwrxReplayOne = uwrxReplayMode(
  'uwrx-replay-1',
  'the same after one source file changed: its compile, the archive and the link run',
  true,
);
const uwrxReplayMake = uwrxReplayMode(
  'uwrx-replay-make',
  'the same no-change replay of a capture made with `--skippable make`: make itself is skipped, its whole tree answered from the record',
  false,
  ['--skippable', 'make'],
);

/** ccache's cache for the benchmarks: warm once per run, outside the timing. */
const ccacheEnv = (ctx: BenchContext) => ({ ...cleanEnv(), CCACHE_DIR: path.join(ctx.cache, 'ccache') });

const ccache: Mode = {
  name: 'ccache',
  description:
    'a rebuild from clean through ccache (`make CC="ccache gcc"`) with a warm cache (a build through it and `make clean` just before, untimed): the peer of uwrx-replay',
  rebuildOnly: true,
  probe: (ctx) => probeCommand(['ccache', '--version'], ctx),
  async wrap({ argv, cwd, rebuild }, ctx) {
    if (!rebuild) throw new Error('not a compile workload');
    const env = ccacheEnv(ctx);
    const build = [...argv, `${rebuild.ccVariable}=ccache gcc`];
    const warm = await runMeasured({ argv: build, cwd, env, timeoutMs: ctx.timeoutMs });
    if (warm.exitCode !== 0) throw new Error(`warming the cache: ${describeFailure(warm)}`);
    const clean = await runMeasured({ argv: ['make', 'clean'], cwd, env, timeoutMs: ctx.timeoutMs });
    if (clean.exitCode !== 0) throw new Error(`make clean: ${describeFailure(clean)}`);
    return { argv: ['env', `CCACHE_DIR=${env.CCACHE_DIR}`, ...build] };
  },
};

export const modes: readonly Mode[] = [native, strace, bwrap, uwrx, uwrxFast, uwrxReplay, uwrxReplayOne, uwrxReplayMake, ccache];

export function findMode(name: string): Mode | undefined {
  return modes.find((m) => m.name === name);
}
