// One supervised run: allocate the attempt, write what the record needs up front, run the
// command in the sandbox beside the actors, finalise the attempt. The CLI's `uwrx run`
// and the library's `run()` are this same code. What a run does beyond that comes from
// its run features (src/features/): this file calls their hooks in order and knows none
// of them by name.
import { existsSync, fstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, rmdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { EnvironmentError, UsageError } from './errors.js';
import {
  allocateAttempt,
  checkBuildDirectory,
  checkExistingDirectory,
  makeDirectories,
  nextAttempt,
  defaultParent,
  linkParents,
  resolveAttemptDir,
  writeStepCommand,
  writeStepOptions,
  type AttemptPaths,
  type AttemptStatus,
} from './record/layout.js';
import { addProblem, problemFromInit, type Problem } from './record/problems.js';
import { ActorFailedError, Supervisor, type ActorSpec } from './actors/runtime.js';
import { serveWhenReady, type InitBridge } from './actors/init-bridge.js';
import { StorageClient, storageActorSpec } from './actors/storage-client.js';
import { prepareMainThreadActors } from './actors/main-host.js';
import { RUN_FEATURES, activeFeatures, finishAll, type ActiveFeature } from './features/index.js';
import type { PlanContext, RunContext, RunFeature, RunSettings, SettledSettings } from './features/feature.js';
import { MSG_PROBLEM, MSG_STARTED, type ProblemBody } from './protocol/init-messages.js';
import { planFor, preflight, renderPlan, startSandbox, type Sandbox, type SandboxEvent, type SandboxOptions, type SandboxOutcome, type SandboxResult } from './sandbox/index.js';
import type { PlanInput } from './sandbox/plan.js';
import { errnoText, removeTree } from './fs.js';
import { removeTracesDir } from './record/traces-dir.js';
import { versionsDirOf } from './record/versions-index.js';
import type { TimeMode } from './reproducibility/time.js';
import { timing } from './timing.js';
import { fsPromises } from './builtins.js';
import type { NetworkStats } from './network/setup.js';

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
  /** Upstream addresses by name (NAME=IP[,NAME=IP...] strings or a map), used instead
   * of the host's resolver (src/features/network.ts). */
  dnsMap?: string[] | Record<string, string[]>;
  /** PEM files of CAs trusted for upstream servers, besides the system's. */
  upstreamCa?: string[];
  /** Let git pushes through to the real server (capture only; refused otherwise). */
  allowPush?: boolean;
  /** Directory for the run's temporary files (default <build>/.tmp). */
  tmp?: string;
  /** Working directory of the command (default process.cwd()). */
  cwd?: string;
  /** Environment of the command (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Descriptors of this process, above 2, that the command gets at the same numbers
   * (the same open files, inheritable), as a shell's `3>file` would give them. uwrx's
   * command-line tool passes the ones its caller left open. */
  passFds?: number[];
  /** Clock mode (default advancing; a replay keeps the replayed attempt's). */
  time?: TimeMode;
  /** Keep address-space randomization in the command tree (default off; a replay keeps
   * the replayed attempt's choice). */
  aslr?: boolean;
  /** Bind the ld.so shim over the dynamic linker (default true; off to measure it). */
  shim?: boolean;
  /** Record read accesses in process (the in-process recorder; default on). */
  fastPath?: boolean;
  /** Programs added to / removed from the partial rebuild list (src/rebuild/skippable.ts);
   * a replay keeps the replayed attempt's choice unless these are given. */
  skippable?: string[];
  notSkippable?: string[];
  /** Run features added after the built-in ones (src/features/feature.ts). */
  features?: RunFeature[];
  /** Seconds to wait, once the command's main process ended, for the processes it left
   * running (daemons) before terminating them (default DEFAULT_LINGER_S). */
  linger?: number;
}

/** Default of RunOptions.linger. */
export const DEFAULT_LINGER_S = 2;

/** How long the command's tree runs before the actors that start late (the record's:
 * ActorSpec.startsLate) start in their worker thread. When the tree ends sooner, they
 * start then, on the main thread: booting a thread (some 50 ms of CPU) would cost more
 * than recording so short a tree, and the record is written after the tree either way. */
export const LATE_ACTORS_AFTER_MS = 200;

/** UWRX_TEST_LATE_ACTORS_MS: a test switch, deliberately not an option, for tests that
 * need one host or the other whatever the machine's load; undefined when not set. */
function testLateActorsMs(): number | undefined {
  const ms = Number(process.env.UWRX_TEST_LATE_ACTORS_MS ?? NaN);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Machines with at most this many CPUs host the late actors on the main thread even
 * when the tree outlives LATE_ACTORS_AFTER_MS. There the command and uwrx share the CPUs,
 * so what counts is uwrx's CPU, not its parallelism: the io thread's boot (some 90 ms of
 * CPU) and every message between the threads (a structured clone, a wake-up) cost more
 * than the main thread waiting behind a scan. A storm of 1,000 short processes: 0.25 s
 * less CPU in Node (about a fifth), no longer to run. */
export const MAIN_THREAD_ACTORS_MAX_CPUS = 2;

/** Whether the late actors start in their worker thread (after LATE_ACTORS_AFTER_MS). */
function lateActorsInWorker(): boolean {
  return testLateActorsMs() !== undefined || os.availableParallelism() > MAIN_THREAD_ACTORS_MAX_CPUS;
}

export interface RunResult extends SandboxResult {
  /** Parent attempts the run built on, nearest first. */
  parents: string[];
  buildDir: string;
  step: string;
  attempt: number;
  attemptDir: string;
  durationMs: number;
  /** Problems found while running (src/record/problems.ts); absent when none. */
  problems?: Problem[];
  /** What the network served (src/features/network.ts). */
  network?: NetworkStats;
  /** Processes answered from the replayed record (src/features/rebuild.ts). */
  skipped?: number;
}

export type RunEvent =
  | ({ type: 'attempt'; argv: string[] } & AttemptPaths)
  | { type: 'warning'; message: string }
  | SandboxEvent
  | { type: 'finished'; result: RunResult };

interface RunEvents {
  event: [RunEvent];
  /** The message of each 'warning' event, alone: for a listener that wants nothing else
   * (a listener of 'event' makes the run build every process event). */
  warning: [string];
}

/** The events every events() iterator gets from the first, whenever it starts; the
 * others (spawn, exec, exit ...) are kept only while one iterates. */
const RUN_OWN_EVENTS: ReadonlySet<RunEvent['type']> = new Set(['attempt', 'warning', 'finished']);

/** events() iterators collected unfinished: each lets its run's process events go. */
const dropped = new FinalizationRegistry<() => void>((release) => release());

export class RunHandle extends EventEmitter<RunEvents> {
  readonly done: Promise<RunResult>;
  private sandbox: Sandbox | undefined;
  private terminateRequested: number | undefined;
  private interruptedBy: NodeJS.Signals | undefined;
  /** After the tree got the interrupt itself: terminate() if it is still running then. */
  private interruptTimer: NodeJS.Timeout | undefined;
  /** uwrx-init started the command (MSG_STARTED). */
  private commandRunning = false;
  private readonly history: RunEvent[] = [];
  /** events() iterators not ended. */
  private iterators = 0;
  private finished = false;
  private waiters: Array<() => void> = [];

  constructor(options: RunOptions) {
    super();
    this.done = this.execute(options).finally(() => {
      clearTimeout(this.interruptTimer);
      this.finished = true;
      this.wake();
    });
    // A caller that only iterates events must not get an unhandled rejection warning.
    this.done.catch(() => undefined);
  }

  /** SIGTERM to the whole tree, SIGKILL after graceMs; the attempt is marked incomplete.
   * `signal`: what asked uwrx to stop (the status says 128 + it unless the command died
   * of a signal itself; default SIGTERM). */
  terminate(graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): void {
    this.terminateRequested = graceMs;
    this.interruptedBy ??= signal;
    this.sandbox?.terminate(graceMs);
  }

  /** The command tree got `signal` itself, as uwrx did: a terminal's Ctrl-C goes to its
   * whole foreground process group, and the tree stays in uwrx's. It reacts as it would
   * natively (make says "Interrupt", Python raises KeyboardInterrupt); the attempt is
   * marked incomplete all the same, and a tree still running after graceMs is stopped
   * as by terminate(). Before the command started, that is terminate() now. */
  interruptedWithTree(graceMs = 3000, signal: NodeJS.Signals = 'SIGINT'): void {
    // not started yet (uwrx-init setting the sandbox up, which the signal does not stop)
    if (!this.sandbox || !this.commandRunning) return this.terminate(graceMs, signal);
    this.interruptedBy ??= signal;
    this.sandbox.noteInterrupt();
    this.interruptTimer ??= setTimeout(() => this.terminate(graceMs, signal), graceMs).unref();
  }

  /** The run's events as an async iterator: its own (attempt, warning, finished) from the
   * first, the processes' (spawn, exec, exit) from this call on. Called right after
   * run(), before anything is awaited, it misses none: the command has not started. */
  events(): AsyncGenerator<RunEvent> {
    this.iterators++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      // with no iterator left, the processes' events go: a later one starts without them
      if (--this.iterators === 0) this.history.splice(0, this.history.length, ...this.history.filter((e) => RUN_OWN_EVENTS.has(e.type)));
    };
    const iterator = this.iterate(release);
    // A generator's finally runs only once it started: one returned before its first
    // next(), or dropped unfinished, lets the processes' events go all the same.
    const returnNow = iterator.return.bind(iterator);
    iterator.return = (value) => {
      release();
      return returnNow(value);
    };
    dropped.register(iterator, release);
    return iterator;
  }

  /** Whether anyone takes the run's events now: a listener of 'event' or an events()
   * iterator. Features build the events of each process only then (RunContext.listened). */
  get listened(): boolean {
    return this.iterators > 0 || this.listenerCount('event') > 0;
  }

  private async *iterate(release: () => void): AsyncGenerator<RunEvent> {
    try {
      let index = 0;
      for (;;) {
        while (index < this.history.length) yield this.history[index++]!;
        if (this.finished) return;
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      release();
    }
  }

  private publish(event: RunEvent): void {
    // a process event with no iterator is for the listeners alone: a run's history of
    // every process would grow with the build for nobody
    if (this.iterators > 0 || RUN_OWN_EVENTS.has(event.type)) {
      this.history.push(event);
      this.wake();
    }
    this.emit('event', event);
    if (event.type === 'warning') this.emit('warning', event.message);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async execute(options: RunOptions): Promise<RunResult> {
    timing('modules loaded, run starts');
    const features = activeFeatures(options, [...RUN_FEATURES, ...(options.features ?? [])]);
    const settings = await settle(options, features, false);
    const problem = preflight();
    if (problem) throw new EnvironmentError(problem);

    // Everything that can fail on bad input is checked before the attempt exists, so a
    // mistake leaves no half-made attempt behind.
    checkBuildDirectory(settings.buildDir);
    const tmpRoot = path.resolve(settings.cwd, options.tmp ?? path.join(settings.buildDir, '.tmp'));
    // the default lives in the build directory and is made; a given one must exist
    if (options.tmp !== undefined) checkExistingDirectory(tmpRoot, '--tmp');
    // the record and the run directory are absent inside: the command could not start there
    for (const [dir, role] of [[settings.buildDir, 'build directory'], [tmpRoot, '--tmp directory']] as const) {
      if (settings.cwd === dir || settings.cwd.startsWith(dir + '/')) {
        throw new UsageError(`the working directory ${settings.cwd} is inside the ${role} ${dir}, which the command cannot see: choose another --build or --tmp`);
      }
    }
    // what this run makes goes again if it cannot start (below): only those, and only empty
    const made = [settings.buildDir, tmpRoot].filter((dir) => !existsSync(dir));
    await makeDirectories(settings.buildDir, 'build directory');
    if (options.tmp === undefined) await makeDirectories(tmpRoot, 'temporary directory');
    const paths = await allocateAttempt(settings.buildDir, settings.step);
    const attemptId = directoryId(paths.attemptDir);
    const parents = settings.parents ?? (await defaultParents(paths, settings.cwd, (message) => this.publish({ type: 'warning', message })));
    const settled: SettledSettings = { ...settings, buildDir: settings.buildDir, parents, net: settings.net ?? true };
    const startedAt = new Date();
    const stepOptions = { net: settled.net, parents, ...settings.stepOptions };
    // The step's cmd/options describe its latest attempt; each attempt keeps its own copy,
    // which is what a replay of that attempt reruns.
    // (small files, written without the thread pool: see record/layout.ts)
    // A run that cannot start leaves nothing: the attempt goes again, with its step when
    // that holds no other, and the build and temporary directories when this run made
    // them (a given --tmp existed: `made` holds the default one at most, inside the build's).
    const abandon = (runDir?: string) => {
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      rmSync(paths.attemptDir, { recursive: true, force: true });
      for (const dir of [paths.stepDir, ...made.reverse()]) {
        try {
          rmdirSync(dir);
        } catch {
          // not empty or gone: left as it is
        }
      }
    };
    let runDir: string;
    try {
      runDir = mkdtempSync(path.join(tmpRoot, `run-${paths.step}-${paths.attempt}-`));
    } catch (err) {
      // a directory access(2) called writable that is not (sysfs, a full disk ...)
      abandon();
      throw new UsageError(`${options.tmp !== undefined ? '--tmp' : 'temporary directory'} ${tmpRoot}: cannot create the run directory there (${errnoText(err)})`);
    }
    try {
      linkParents(paths.attemptDir, parents);
      for (const dir of [paths.stepDir, paths.attemptDir]) {
        writeStepCommand(dir, settled.argv);
        writeStepOptions(dir, stepOptions);
      }
    } catch (err) {
      abandon(runDir);
      const e = err instanceof Error ? err : new Error(String(err));
      throw recordFull(e, settings.buildDir, 'the run cannot start') ?? e;
    }

    // The record's actors run beside the sandbox; if one fails, the command tree is
    // stopped and the attempt is finalised as incomplete with the actor's error.
    // Any actor may talk to uwrx-init (src/actors/init-bridge.ts) once it runs.
    let bridgeReady!: (bridge: InitBridge) => void;
    const bridge = new Promise<InitBridge>((resolve) => (bridgeReady = resolve));
    const supervisor = new Supervisor({ onActorPeer: (_name, peer) => serveWhenReady(peer, bridge) });
    const problems: Problem[] = [];
    let initPid: number | undefined;
    let sandboxRoot: string | undefined;
    const handle = this;
    const run: RunContext = {
      settings: settled,
      paths,
      runDir,
      startedAt,
      supervisor,
      storage: new StorageClient(() => (supervisor.live.includes('storage') ? supervisor.peer('storage') : undefined), paths.attemptDir),
      publish: (event) => this.publish(event),
      get listened() {
        return handle.listened;
      },
      problem: (p) => addProblem(problems, p),
      // the sandbox's pid 1 lives as long as the run: found once
      sandboxRoot: () => (sandboxRoot ??= initPid === undefined ? undefined : sandboxRootOf(initPid)),
    };
    let actorFailure: ActorFailedError | undefined;
    supervisor.on('actor-failed', (_name, error) => {
      actorFailure ??= error;
      this.sandbox?.terminate(0);
    });
    let outcome: SandboxOutcome;
    // The run directory (not part of the record) goes once the features have finished the
    // record (the uppers are in it): beside the derived files, the status write and the
    // actors' stop, and awaited before the run returns. Its removal is one job on the thread pool (removeTree),
    // so it does not queue before the record's own calls. Started once, whoever asks.
    // What the features write for the sandbox (their ready hooks), asked for once: before
    // uwrx-init starts, or by the clean-up of a run that failed before that, so that no
    // write still under way makes part of the run directory again after its removal.
    let readied: Promise<unknown> | undefined;
    const ready = (): Promise<unknown> => (readied ??= Promise.all(features.map(async (f) => f.hooks.ready?.(run))));
    let cleaning: Promise<void> | undefined;
    const cleanup = (): Promise<void> =>
      (cleaning ??= (async () => {
        await ready().catch(() => undefined);
        if (this.sandbox) await this.sandbox.cleanup();
        else {
          removeTracesDir(runDir);
          await removeTree(runDir);
        }
      })());
    let lateTimer: NodeJS.Timeout | undefined;
    try {
      // Workers read what they need from disk when they need it, so they start first and
      // boot (Node, imports) while the record is written and the tree starts; those that
      // start late, once the tree has run LATE_ACTORS_AFTER_MS or has ended.
      const { early, late } = startOrder([storageActorSpec(paths.attemptDir, versionsDirOf(runDir)), ...features.flatMap((f) => f.hooks.actors?.(run) ?? [])]);
      const earlyStarted = supervisor.start(early);
      earlyStarted.catch(() => undefined);
      let lateStarted: Promise<void> | undefined;
      const startLate = (mainThread: boolean): Promise<void> => {
        clearTimeout(lateTimer);
        if (!lateStarted) {
          lateStarted = earlyStarted.then(() => supervisor.start(late, { mainThread }));
          lateStarted.then(() => timing(`late actors started${mainThread ? ' (main thread)' : ''}`), () => undefined);
        }
        return lateStarted;
      };
      const commandStarted = () => {
        this.commandRunning = true;
        if (late.length === 0 || lateStarted) return;
        const mainThread = !lateActorsInWorker();
        lateTimer = setTimeout(() => void startLate(mainThread), testLateActorsMs() ?? LATE_ACTORS_AFTER_MS);
      };
      for (const f of features) await f.hooks.record?.(run);
      this.publish({ type: 'attempt', argv: settled.argv, ...paths });
      timing('attempt allocated and written');
      const pieces = await planPieces(features, run);
      this.sandbox = startSandbox({
        ...sandboxPlace(settled, paths, runDir),
        ...pieces,
        net: settled.net,
        on: addListener({ ...bindAll(features, 'on', run), [MSG_PROBLEM]: (b: ProblemBody) => run.problem(problemFromInit(b)) }, MSG_STARTED, commandStarted),
        requests: bindAll(features, 'requests', run),
        ready,
        onInitBridge: bridgeReady,
        onInitPid: (pid) => (initPid = pid),
        // uwrx-init sets the sandbox up meanwhile: what the finish needs is loaded now
        onPlanSent: () => {
          // the finish's file calls go through the thread pool
          fsPromises();
          if (late.length > 0) prepareMainThreadActors();
          for (const f of features) {
            try {
              f.hooks.prepare?.(run);
            } catch {
              // the step that needs it loads it itself
            }
          }
          timing('prepared for the finish');
        },
      });
      if (this.terminateRequested !== undefined) this.sandbox.terminate(this.terminateRequested);
      earlyStarted.then(() => timing('actors started'), () => undefined);
      outcome = await this.sandbox.done;
      timing('sandbox done');
      const actorsStarted = Promise.all([earlyStarted, startLate(true)]);
      // A failed actor is reported below; the record still gets what the others can write.
      await actorsStarted.catch((err: unknown) => {
        if (!actorFailure) throw err;
      });
      const finishInput = { sandbox: outcome, actorFailure };
      await finishAll(features, (f) => f.hooks.finish?.(run, finishInput));
      // the record no longer needs the run directory: its removal (mostly waits on the
      // kernel) goes on while the features derive their files from the record. One turn
      // of the event loop first, so that it is under way before their synchronous work.
      if (!actorFailure) {
        cleanup().catch(() => undefined);
        await new Promise((resolve) => setImmediate(resolve));
      }
      for (const f of features) await f.hooks.derive?.(run, finishInput);
      if (actorFailure) throw actorFailure;
    } catch (caught) {
      clearTimeout(lateTimer);
      // the actor's failure is the cause of whatever failed after it
      const err = recordLost(actorFailure ?? caught, paths.attemptDir, attemptId);
      // best effort: the attempt directory may be what is gone
      await run.storage
        .storeStatus({
          complete: false,
          status: 2,
          exitCode: null,
          signal: null,
          reason: err.message,
          startedAt: startedAt.toISOString(),
          endedAt: new Date().toISOString(),
          processes: 0,
          filesWritten: 0,
        })
        .catch(() => undefined);
      await supervisor.stop();
      await cleanup();
      throw err;
    } finally {
      clearTimeout(lateTimer);
    }
    const endedAt = new Date();
    // An interrupted command that exited 0 (or any code) on its way out did not succeed:
    // the status says what stopped it, as a shell reports a job it interrupted.
    if (outcome.incomplete && !outcome.problem && outcome.signal === null) {
      outcome = { ...outcome, status: 128 + (os.constants.signals[this.interruptedBy ?? 'SIGTERM'] ?? 15) };
    }
    const fields = inStatusOrder(Object.assign({}, ...features.map((f) => f.hooks.status?.(run) ?? {}))) as { processes: number; filesWritten: number };
    const status: AttemptStatus = {
      complete: !outcome.incomplete,
      status: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      ...(outcome.incomplete ? { reason: outcome.problem ?? 'interrupted' } : {}),
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      ...fields,
      ...(outcome.terminated ? { terminated: outcome.terminated } : {}),
      ...(problems.length > 0 ? { problems } : {}),
    };
    try {
      await run.storage.storeStatus(status);
    } catch (err) {
      // the actors must stop whatever failed, or their timers keep uwrx alive
      await supervisor.stop().catch(() => undefined);
      await cleanup().catch(() => undefined);
      throw recordLost(err, paths.attemptDir, attemptId);
    }
    timing('status written');
    const cleaned = cleanup();
    cleaned.catch(() => undefined);
    await supervisor.stop();
    timing('actors stopped');
    await cleaned;
    const full: RunResult = {
      status: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      incomplete: outcome.incomplete,
      ...fields,
      ...(outcome.terminated ? { terminated: outcome.terminated } : {}),
      ...(outcome.problem ? { problem: outcome.problem } : {}),
      parents,
      ...(problems.length > 0 ? { problems } : {}),
      ...paths,
      durationMs: endedAt.getTime() - startedAt.getTime(),
    };
    this.publish({ type: 'finished', result: full });
    return full;
  }
}

/** A directory's identity (device and inode); undefined when it is not there. */
function directoryId(dir: string): string | undefined {
  try {
    const st = statSync(dir);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** A failure because the attempt's directory went away during the run (removed by hand,
 * by a clean-up of the build directory) says so; any other error is itself. The
 * directory counts as gone when another one has its path now: the record's writers that
 * ran after the removal may have made its path again (a write of the files' collection). */
function recordLost(err: unknown, attemptDir: string, attemptId: string | undefined): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (attemptId !== undefined && directoryId(attemptDir) === attemptId) return recordFull(e, attemptDir, 'its record is incomplete') ?? e;
  return new EnvironmentError(`the record's directory ${attemptDir} was removed during the run: its record is lost`);
}

/** A write of the record that found its filesystem full (or the user's quota used up),
 * wherever it failed (an actor's thread, the addon, the status): the user's to act on,
 * not an internal error. The command's own writes meet the same filesystem (its upper
 * directories are beside the record). */
function recordFull(err: Error, dir: string, outcome: string): EnvironmentError | undefined {
  const reason = err instanceof ActorFailedError ? err.reason : err.message;
  const code = (err as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT' || /\b(ENOSPC|EDQUOT)\b|No space left on device|Disk quota exceeded/.test(reason);
  if (!full) return undefined;
  const what = /\bEDQUOT\b|Disk quota exceeded/.test(reason) || code === 'EDQUOT' ? 'the disk quota is used up' : 'no space is left';
  return new EnvironmentError(`${what} on the filesystem of ${dir}: ${outcome} (${reason})`);
}

/** The run's settings from its options and its features' configure hooks, in order;
 * every check on the options happens here, before anything is written. */
async function settle(options: RunOptions, features: ActiveFeature[], dryRun: boolean): Promise<RunSettings & { buildDir: string }> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  if (options.noParents && options.parents?.length) throw new UsageError('--parent cannot be used with --no-parent');
  checkPassFds(options.passFds ?? []);
  const parents: string[] = [];
  for (const p of options.parents ?? []) parents.push((await resolveAttemptDir(p, '--parent')).attemptDir);
  const settings: RunSettings = {
    options,
    cwd,
    dryRun,
    argv: options.argv ?? [],
    buildDir: undefined,
    step: options.step,
    parents: parents.length > 0 ? parents : options.noParents ? [] : undefined,
    net: options.net,
    time: options.time,
    aslr: options.aslr,
    seed: undefined,
    t0Ns: undefined,
    stepOptions: {},
  };
  for (const f of features) await f.hooks.configure?.(settings);
  if (settings.argv.length === 0) throw new UsageError('no command to run');
  return { ...settings, buildDir: settings.buildDir ?? path.resolve(cwd, options.build ?? 'build') };
}

/** Every descriptor to pass is one above 2 that is open here. */
function checkPassFds(fds: number[]): void {
  for (const fd of fds) {
    if (!Number.isSafeInteger(fd) || fd < 3) throw new UsageError(`passFds: ${fd} is not a descriptor above 2`);
    try {
      fstatSync(fd);
    } catch {
      throw new UsageError(`passFds: descriptor ${fd} is not open`);
    }
  }
}

/** No parent given: the latest complete attempt of the nearest earlier step that has
 * one; a warning names the nearer steps passed over. */
async function defaultParents(paths: AttemptPaths, cwd: string, warn: (message: string) => void): Promise<string[]> {
  const { parent, passedOver } = await defaultParent(paths.buildDir, paths.step);
  if (passedOver.length > 0) {
    const steps = passedOver.map((d) => path.relative(cwd, d) || d).join(', ');
    warn(`no complete attempt in ${steps} (still running, interrupted or failed): ` +
      (parent ? `building on ${path.relative(cwd, parent) || parent}` : 'running without a parent'));
  }
  return parent ? [parent] : [];
}

/** /proc/<pid>/root of the sandbox's pid 1: the child uwrx-init cloned into the new
 * namespaces. Undefined unless that root lies in another mount namespace than ours, so
 * nothing meant for the sandbox can land on the host. */
function sandboxRootOf(helperPid: number): string | undefined {
  let children: string[];
  try {
    children = readFileSync(`/proc/${helperPid}/task/${helperPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
  let ours: string;
  try {
    ours = readlinkSync('/proc/self/ns/mnt');
  } catch {
    return undefined;
  }
  for (const child of children) {
    try {
      if (readlinkSync(`/proc/${child}/ns/mnt`) !== ours) return `/proc/${child}/root`;
    } catch {
      // gone, or not ours to look at
    }
  }
  return undefined;
}

/** The actors to start at once and those that may start late (ActorSpec.startsLate),
 * each in spec order. An actor that starts at once cannot link to a late one: then all
 * start at once. */
function startOrder(specs: ActorSpec[]): { early: ActorSpec[]; late: ActorSpec[] } {
  const late = specs.filter((s) => s.startsLate);
  const early = specs.filter((s) => !s.startsLate);
  if (early.some((s) => s.connect?.some((name) => late.some((l) => l.name === name)))) return { early: specs, late: [] };
  return { early, late };
}

/** Adds `listener` for `type` to `on`, called after the one already there. */
function addListener(on: Record<string, (body: any) => any>, type: string, listener: (body: any) => any): Record<string, (body: any) => any> {
  const before = Object.hasOwn(on, type) ? on[type] : undefined;
  on[type] = before !== undefined ? (body) => (before(body), listener(body)) : listener;
  return on;
}

/** The features' status fields, those docs/record.md names first and in its order (the
 * features' list is in the order of their finish steps, not of the status). */
function inStatusOrder(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ['processes', 'filesWritten']) if (name in fields) out[name] = fields[name];
  return Object.assign(out, fields);
}

/** The features' pieces of the sandbox plan, merged in order. */
async function planPieces(features: ActiveFeature[], run: PlanContext): Promise<Partial<PlanInput>> {
  const pieces: Partial<PlanInput> = {};
  for (const f of features) Object.assign(pieces, await f.hooks.plan?.(run));
  return pieces;
}

/** The features' listeners (or request handlers) by message type, bound to the run. One
 * feature per request type; listeners of one type are called in feature order. */
function bindAll(features: ActiveFeature[], kind: 'on' | 'requests', run: RunContext): Record<string, (body: any) => any> {
  const bound: Record<string, (body: any) => any> = {};
  for (const f of features) {
    for (const [type, fn] of Object.entries(f.hooks[kind] ?? {})) {
      if (kind === 'requests' && Object.hasOwn(bound, type)) throw new Error(`features ${f.name} and another both answer "${type}"`);
      addListener(bound, type, (body) => fn(body, run));
    }
  }
  return bound;
}

/** Where and what the sandbox runs; the record's directories are hidden inside. */
function sandboxPlace(settings: SettledSettings, paths: AttemptPaths, runDir: string) {
  const env = settings.options.env ?? process.env;
  return {
    argv: settings.argv, cwd: settings.cwd, env, attemptDir: paths.attemptDir, runDir, hide: [paths.buildDir, runDir],
    lingerMs: Math.round((settings.options.linger ?? DEFAULT_LINGER_S) * 1000),
    ...(settings.options.passFds?.length ? { passFds: settings.options.passFds } : {}),
  };
}

/** What `uwrx run --dry-run` prints: the attempt it would create and the sandbox plan,
 * step by step. Nothing is created. */
export async function dryRun(options: RunOptions): Promise<string> {
  const features = activeFeatures(options, [...RUN_FEATURES, ...(options.features ?? [])]);
  const settings = await settle(options, features, true);
  checkBuildDirectory(settings.buildDir);
  const paths = await nextAttempt(settings.buildDir, settings.step);
  const tmpRoot = path.resolve(settings.cwd, options.tmp ?? path.join(paths.buildDir, '.tmp'));
  const runDir = path.join(tmpRoot, `run-${paths.step}-${paths.attempt}-XXXXXX`);
  const settled: SettledSettings = { ...settings, parents: settings.parents ?? [], net: settings.net ?? true };
  const run: PlanContext = { settings: settled, paths, runDir };
  const plan = planFor({ ...sandboxPlace(settled, paths, runDir), net: settled.net, ...(await planPieces(features, run)) } satisfies SandboxOptions);
  return `attempt ${paths.attemptDir}\nrun directory ${runDir}\n${renderPlan(plan.init, plan.overlays)}`;
}

/** Starts a supervised run. Await `handle.done` for the result; iterate
 * `handle.events()` or listen to 'event' for processes as they come and go. */
export function run(options: RunOptions): RunHandle {
  return new RunHandle(options);
}
