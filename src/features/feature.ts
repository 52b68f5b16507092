// A run feature: one capability of `uwrx run` (processes, trace, files,
// reproducibility, replay ...) as one registration. The run (src/run.ts) goes through
// the feature list (src/features/index.ts) at each phase, in list order; a feature
// implements only the hooks it needs. A new capability is a new feature in the list,
// not edits in the run, the sandbox launch or the other features.
//
// Phases of a run, and the hook called in each:
//   configure  before the attempt exists: check options, decide settings (may throw a
//              UsageError; nothing is written yet, so a mistake leaves nothing behind)
//   actors     the attempt exists: worker actors to start beside the sandbox (first,
//              so that their threads boot while the rest is prepared)
//   record     write what the record needs up front (seed.txt ...)
//   plan       pieces of the sandbox plan (src/sandbox/plan.ts PlanInput)
//   ready      what uwrx-init needs on disk (files it binds): awaited once the run
//              directory is prepared, before uwrx-init starts, so that writing it
//              overlaps the plan and the run directory
//   prepare    uwrx-init has the plan and sets the sandbox up (some 20-30 ms in which
//              Node waits): load what the later phases will need
//   on         notifications from uwrx-init (spawn, exec, exit ...) as they arrive
//   requests   requests from uwrx-init this feature answers (the reply goes back)
//   finish     the tree has ended: move results into the record, each once those it
//              names in finishAfter (default: all before it in the list) have
//   derive     the record is complete: files made from it (the rebuild index), while
//              the run directory is removed
//   status     fields of the attempt's `status` file and of the run's result
// `uwrx run --dry-run` calls configure (with settings.dryRun) and plan only.
import type { ActorSpec, Supervisor } from '../actors/runtime.js';
import type { AttemptPaths } from '../record/layout.js';
import type { TimeMode } from '../reproducibility/time.js';
import type { PlanInput } from '../sandbox/plan.js';
import type { RunEvent, RunOptions } from '../run.js';
import type { StorageClient } from '../actors/storage-client.js';
import type { Problem } from '../record/problems.js';

/** What the run decided before the attempt exists. Features fill it in list order, so a
 * later feature sees what an earlier one decided; undefined means "the default". */
export interface RunSettings {
  readonly options: RunOptions;
  /** The command's working directory, absolute. */
  readonly cwd: string;
  /** Planning for `--dry-run`: read what is needed, write nothing. */
  readonly dryRun: boolean;
  argv: string[];
  buildDir: string | undefined;
  step: string | undefined;
  /** Parent attempt directories, nearest first; undefined: the nearest earlier step. */
  parents: string[] | undefined;
  net: boolean | undefined;
  time: TimeMode | undefined;
  /** Keep address-space randomization in the command tree; undefined: off. */
  aslr: boolean | undefined;
  /** Root seed (64 hex digits) and T0; undefined: fresh ones. */
  seed: string | undefined;
  t0Ns: bigint | undefined;
  /** Entries of build/<step>/options added by features ({ net, parents } are the run's). */
  stepOptions: Record<string, unknown>;
}

/** Settings once every feature configured them: the defaults are filled in. */
export type SettledSettings = Readonly<RunSettings> & {
  readonly buildDir: string;
  readonly net: boolean;
  readonly parents: string[];
};

/** What planning sees: the settings and where the attempt and the run directory are
 * (for `--dry-run`, where they would be). */
export interface PlanContext {
  readonly settings: SettledSettings;
  readonly paths: AttemptPaths;
  /** Private directory of this run (live uppers, trace buffers); removed at the end. */
  readonly runDir: string;
}

/** The run as features see it once the attempt exists. */
export interface RunContext extends PlanContext {
  readonly startedAt: Date;
  /** The actors started for the run (features' and the storage actor). */
  readonly supervisor: Supervisor;
  /** The one writer of the record's finishing files (src/actors/storage.ts). */
  readonly storage: StorageClient;
  /** Hands an event to the run's listeners (RunHandle 'event', events()). */
  publish(event: RunEvent): void;
  /** Whether the run's events have a taker now (RunHandle.listened): an event made for
   * each process is built and published only then. */
  readonly listened: boolean;
  /** A problem found while running: counted in the status, shown by the summary. */
  problem(problem: Problem): void;
  /** The sandbox's root as the host sees it (/proc/<uwrx-init>/root) while the command
   * runs: paths below it resolve as the command's do; undefined before it starts. */
  sandboxRoot(): string | undefined;
}

/** How the sandbox ended, as the finish steps see it. */
export interface FinishInput {
  /** The sandbox's overlays and file plan, for moving the uppers into the record. */
  readonly sandbox: import('../sandbox/index.js').SandboxOutcome;
  /** An actor failed during the run: the record is written as far as it can be. */
  readonly actorFailure: Error | undefined;
}

export interface FeatureHooks {
  configure?(settings: RunSettings): Promise<void> | void;
  record?(run: RunContext): Promise<void> | void;
  plan?(run: PlanContext): Partial<PlanInput> | Promise<Partial<PlanInput>>;
  /** Resolves once what the sandbox needs of this feature is on disk (files the plan
   * binds, written on the thread pool since record()); rejects to fail the run. Awaited
   * after the plan is computed and the run directory prepared, before uwrx-init starts;
   * in a run that fails before that, awaited before the run directory is removed. */
  ready?(run: RunContext): Promise<void> | void;
  /** Actors to start with the run's; called before record(), so the workers boot while
   * the record is written: an actor reads what it needs from disk when it needs it. */
  actors?(run: RunContext): ActorSpec[];
  /** Called once uwrx-init has the plan, while it sets the sandbox up and this thread
   * has nothing to do: the place to load modules the finish or derive steps need, so
   * that neither the command's start nor its end waits for them. Nothing here may be
   * needed before the command starts, and a failure must not matter (the later step
   * loads what it needs itself). */
  prepare?(run: RunContext): void;
  /** Listeners for uwrx-init's notifications, by message type (src/protocol/init-messages.ts). */
  on?: Record<string, (body: any, run: RunContext) => void>;
  /** Handlers for uwrx-init's requests, by message type; what they return (or resolve
   * to) is the reply. One feature per request type. */
  requests?: Record<string, (body: any, run: RunContext) => unknown>;
  finish?(run: RunContext, input: FinishInput): Promise<void> | void;
  /** After every feature's finish: the record is complete and the run directory (live
   * uppers, trace buffers) is being removed meanwhile, so nothing here may read it. */
  derive?(run: RunContext, input: FinishInput): Promise<void> | void;
  status?(run: RunContext): Record<string, unknown>;
}

export interface RunFeature {
  /** Names the feature in errors and timing lines. */
  readonly name: string;
  /** Whether it takes part in a run with these options (default: always). */
  enabled?(options: RunOptions): boolean;
  /** The features (by name) whose finish step must have ended before this one's starts;
   * the finish steps of features that need none of each other run at once (most wait on
   * another thread or the thread pool). Default: every feature before it in the list. */
  readonly finishAfter?: readonly string[];
  /** Fresh hooks for one run: per-run state lives in this closure, never in the module. */
  create(): FeatureHooks;
}

/** Identity at run time; gives a feature module's export its type. */
export function defineFeature(feature: RunFeature): RunFeature {
  return feature;
}
