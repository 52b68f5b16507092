// One supervised run: allocate the attempt, write what the record needs up front, run the
// command in the sandbox, finalise the attempt. The CLI's `uwrx run` and the library's
// `run()` are this same code.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { EnvironmentError, UsageError } from './errors.js';
import {
  allocateAttempt,
  makeDirectories,
  nextAttempt,
  defaultParent,
  readParents,
  linkParents,
  linkReplay,
  readStepCommand,
  readStepOptions,
  resolveAttemptDir,
  writeAttemptStatus,
  writeStepCommand,
  writeStepOptions,
  type AttemptPaths,
} from './record/layout.js';
import { formatSeed, freshSeed, readSeedFile, writeSeedFile } from './reproducibility/prng.js';
import { freshT0Ns, readT0File, writeT0File, parseTimeMode, type TimeMode } from './reproducibility/time.js';
import { ActorFailedError, Supervisor } from './actors/runtime.js';
import { COLLECTOR_MESSAGES, traceActorSpecs } from './actors/collector.js';
import { planFor, preflight, renderPlan, startSandbox, type Sandbox, type SandboxEvent, type SandboxResult } from './sandbox/index.js';
import { timing } from './timing.js';

/** Longest the trace pipeline may take to drain and write `perfetto` after the tree ended. */
const FINISH_TIMEOUT_MS = 10 * 60 * 1000;

export interface RunOptions {
  /** Command and arguments; defaults to the replayed step's command with `replay`. */
  argv?: string[];
  /** Build directory (default ./build, relative to cwd). */
  build?: string;
  /** Step name; default: largest numeric step + 10, or 0. Not allowed with `replay`. */
  step?: string;
  /** Parent attempt directories, nearest first. */
  parents?: string[];
  /** No parent at all, not even the default one (the nearest earlier step). */
  noParents?: boolean;
  /** Attempt directory to replay. */
  replay?: string;
  /** Network on (default) or off (default with `replay`). */
  net?: boolean;
  /** Directory for the run's temporary files (default <build>/.tmp). */
  tmp?: string;
  /** Working directory of the command (default process.cwd()). */
  cwd?: string;
  /** Environment of the command (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Clock mode (default advancing; a replay keeps the replayed attempt's). */
  time?: TimeMode;
  /** Keep address-space randomization in the command tree (default off; a replay keeps
   * the replayed attempt's choice). */
  aslr?: boolean;
  /** Bind the ld.so shim over the dynamic linker (default true; off to measure it). */
  shim?: boolean;
}

export interface RunResult extends SandboxResult {
  buildDir: string;
  step: string;
  attempt: number;
  attemptDir: string;
  durationMs: number;
}

export type RunEvent =
  | ({ type: 'attempt'; argv: string[] } & AttemptPaths)
  | SandboxEvent
  | { type: 'finished'; result: RunResult };

interface RunEvents {
  event: [RunEvent];
}

export class RunHandle extends EventEmitter<RunEvents> {
  readonly done: Promise<RunResult>;
  private sandbox: Sandbox | undefined;
  private terminateRequested: number | undefined;
  private readonly history: RunEvent[] = [];
  private finished = false;
  private waiters: Array<() => void> = [];

  constructor(options: RunOptions) {
    super();
    this.done = this.execute(options).finally(() => {
      this.finished = true;
      this.wake();
    });
    // A caller that only iterates events must not get an unhandled rejection warning.
    this.done.catch(() => undefined);
  }

  /** SIGTERM to the whole tree, SIGKILL after graceMs; the attempt is marked incomplete. */
  terminate(graceMs = 3000): void {
    this.terminateRequested = graceMs;
    this.sandbox?.terminate(graceMs);
  }

  /** Every event of the run, from the first, as an async iterator. */
  async *events(): AsyncGenerator<RunEvent> {
    let index = 0;
    for (;;) {
      while (index < this.history.length) yield this.history[index++]!;
      if (this.finished) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private publish(event: RunEvent): void {
    this.history.push(event);
    this.emit('event', event);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async execute(options: RunOptions): Promise<RunResult> {
    timing('modules loaded, run starts');
    const cwd = path.resolve(options.cwd ?? process.cwd());
    const replayed = options.replay !== undefined ? await resolveAttemptDir(options.replay, '--replay') : undefined;
    if (replayed && options.step !== undefined) {
      throw new UsageError('--step cannot be used with --replay (a replay is a new attempt of the replayed step)');
    }
    if (options.noParents && options.parents?.length) throw new UsageError('--parent cannot be used with --no-parent');
    const explicitParents: string[] = [];
    for (const p of options.parents ?? []) explicitParents.push((await resolveAttemptDir(p, '--parent')).attemptDir);
    const argv =
      options.argv && options.argv.length > 0 ? options.argv : replayed ? await readAttemptCommand(replayed) : [];
    if (argv.length === 0) throw new UsageError('no command to run');
    const problem = preflight();
    if (problem) throw new EnvironmentError(problem);

    // Everything that can fail on bad input is checked before the attempt exists, so a
    // mistake leaves no half-made attempt behind.
    const buildDir = replayed ? replayed.buildDir : path.resolve(cwd, options.build ?? 'build');
    await makeDirectories(buildDir, 'build directory');
    const tmpRoot = path.resolve(cwd, options.tmp ?? path.join(buildDir, '.tmp'));
    await makeDirectories(tmpRoot, 'temporary directory (--tmp)');
    const paths = await allocateAttempt(buildDir, replayed ? replayed.step : options.step);
    // Parents: as given; a replay keeps the replayed attempt's; else the nearest earlier step.
    let parents = explicitParents;
    if (parents.length === 0 && !options.noParents) {
      if (replayed) parents = await readParents(replayed.attemptDir);
      else {
        const p = await defaultParent(paths.buildDir, paths.step);
        if (p) parents = [p];
      }
    }
    const net = options.net ?? !replayed;
    const startedAt = new Date();
    const time = options.time ?? (replayed ? await replayedTimeMode(replayed) : 'advancing');
    const aslr = options.aslr ?? (replayed ? (await readStepOptions(replayed.attemptDir))?.aslr === true : false);
    const stepOptions = { net, parents, time, aslr, ...(replayed ? { replay: replayed.attemptDir } : {}) };
    // The step's cmd/options describe its latest attempt; each attempt keeps its own copy,
    // which is what a replay of that attempt reruns.
    for (const dir of [paths.stepDir, paths.attemptDir]) {
      await writeStepCommand(dir, argv);
      await writeStepOptions(dir, stepOptions);
    }
    const seed = replayed ? await readSeedFile(replayed.attemptDir) : freshSeed();
    await writeSeedFile(paths.attemptDir, seed);
    const t0Ns = replayed ? await readT0File(replayed.attemptDir) : freshT0Ns(startedAt.getTime());
    await writeT0File(paths.attemptDir, t0Ns);
    await linkParents(paths.attemptDir, parents);
    if (replayed) await linkReplay(paths.attemptDir, replayed.attemptDir);
    this.publish({ type: 'attempt', argv, ...paths });

    const runDir = await fs.mkdtemp(path.join(tmpRoot, `run-${paths.step}-${paths.attempt}-`));

    await fs.mkdir(path.join(runDir, 'traces'));
    timing('attempt allocated and written');

    // The record's actors run beside the sandbox; if one fails, the command tree is
    // stopped and the attempt is finalised as incomplete with the actor's error.
    const supervisor = new Supervisor();
    let actorFailure: ActorFailedError | undefined;
    supervisor.on('actor-failed', (_name, error) => {
      actorFailure ??= error;
      this.sandbox?.terminate(0);
    });
    let result: SandboxResult;
    try {
      // The collector reads buffers from disk, so the tree can start while the actors
      // start: that hides the worker threads' start-up time.
      const actorsStarted = supervisor.start(traceActorSpecs({ runDir, attemptDir: paths.attemptDir }));
      actorsStarted.catch(() => undefined);
      this.sandbox = startSandbox({
        ...sandboxPlace(argv, cwd, options, paths, runDir),
        net,
        repro: { seed: formatSeed(seed), t0Ns, timeMode: time, aslr, ...(options.shim === false ? { shim: false } : {}) },
        onEvent: (e) => this.publish(e),
      });
      if (this.terminateRequested !== undefined) this.sandbox.terminate(this.terminateRequested);
      actorsStarted.then(() => timing('trace actors started'), () => undefined);
      result = await this.sandbox.done;
      timing('sandbox done');
      await actorsStarted;
      if (!actorFailure) {
        await supervisor.request('collector', COLLECTOR_MESSAGES.finish, undefined, { timeoutMs: FINISH_TIMEOUT_MS });
      }
      timing('trace merged (perfetto written)');
      await supervisor.stop();
      timing('actors stopped');
      if (actorFailure) throw actorFailure;
    } catch (err) {
      await supervisor.stop();
      await writeAttemptStatus(paths.attemptDir, {
        complete: false,
        status: 2,
        exitCode: null,
        signal: null,
        reason: (err as Error).message,
        startedAt: startedAt.toISOString(),
        endedAt: new Date().toISOString(),
        processes: 0,
        filesWritten: 0,
      });
      throw err;
    } finally {
      await fs.rm(runDir, { recursive: true, force: true });
    }
    const endedAt = new Date();
    await writeAttemptStatus(paths.attemptDir, {
      complete: !result.incomplete,
      status: result.status,
      exitCode: result.exitCode,
      signal: result.signal,
      ...(result.incomplete ? { reason: 'interrupted' } : {}),
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      processes: result.processes,
      filesWritten: result.filesWritten,
    });
    const full: RunResult = { ...result, ...paths, durationMs: endedAt.getTime() - startedAt.getTime() };
    timing('status written');
    this.publish({ type: 'finished', result: full });
    return full;
  }
}

/** Where and what the sandbox runs; the record's directories are hidden inside. */
function sandboxPlace(argv: string[], cwd: string, options: RunOptions, paths: AttemptPaths, runDir: string) {
  return { argv, cwd, env: options.env ?? process.env, attemptDir: paths.attemptDir, runDir, hide: [paths.buildDir, runDir] };
}

/** What `uwrx run --dry-run` prints: the attempt it would create and the sandbox plan,
 * step by step. Nothing is created. */
export async function dryRun(options: RunOptions): Promise<string> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const replayed = options.replay !== undefined ? await resolveAttemptDir(options.replay, '--replay') : undefined;
  const argv =
    options.argv && options.argv.length > 0 ? options.argv : replayed ? await readAttemptCommand(replayed) : [];
  if (argv.length === 0) throw new UsageError('no command to run');
  const paths = replayed
    ? await nextAttempt(replayed.buildDir, replayed.step)
    : await nextAttempt(path.resolve(cwd, options.build ?? 'build'), options.step);
  const tmpRoot = path.resolve(cwd, options.tmp ?? path.join(paths.buildDir, '.tmp'));
  const runDir = path.join(tmpRoot, `run-${paths.step}-${paths.attempt}-XXXXXX`);
  const plan = planFor({
    ...sandboxPlace(argv, cwd, options, paths, runDir),
    net: options.net ?? !replayed,
    repro: {
      seed: replayed ? formatSeed(await readSeedFile(replayed.attemptDir)) : '<fresh>',
      t0Ns: replayed ? await readT0File(replayed.attemptDir) : freshT0Ns(),
      timeMode: options.time ?? (replayed ? await replayedTimeMode(replayed) : 'advancing'),
    },
  });
  return `attempt ${paths.attemptDir}\nrun directory ${runDir}\n${renderPlan(plan.init, plan.overlays)}`;
}

/** The time mode a replayed attempt ran with (attempts before the option: advancing). */
async function replayedTimeMode(attempt: AttemptPaths): Promise<TimeMode> {
  const recorded = (await readStepOptions(attempt.attemptDir))?.time;
  return typeof recorded === 'string' ? parseTimeMode(recorded) : 'advancing';
}

async function readAttemptCommand(attempt: AttemptPaths): Promise<string[]> {
  try {
    return await readStepCommand(attempt.attemptDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return readStepCommand(attempt.stepDir);
  }
}

/** Starts a supervised run. Await `handle.done` for the result; iterate
 * `handle.events()` or listen to 'event' for processes as they come and go. */
export function run(options: RunOptions): RunHandle {
  return new RunHandle(options);
}
