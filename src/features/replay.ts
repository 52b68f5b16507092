// Replay: a new attempt of a recorded step, with the recorded command, parents, seed,
// T0, time mode and address-space randomization, and the network off unless asked for,
// and the replayed processes' logical pids by tree key, and a wall clock that starts
// after the host files edited since (replay-clock.ts). It only decides settings; the
// other features do what they always do with them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { isErrno } from '../fs.js';
import { linkReplay, readParents, readStepCommand, readStepOptions, resolveAttemptDir, type AttemptPaths } from '../record/layout.js';
import { PROCESS_TABLE_FILE, ProcessTableError, parseProcessRows } from '../record/procs.js';
import { formatSeed, readSeedFile } from '../reproducibility/prng.js';
import { hostNewestSinceNs } from '../reproducibility/replay-clock.js';
import { parseTimeMode, readT0File, type TimeMode } from '../reproducibility/time.js';
import { defineFeature } from './feature.js';

export default defineFeature({
  name: 'replay',
  enabled: (options) => options.replay !== undefined,
  create() {
    let replayed: AttemptPaths;
    return {
      async configure(settings) {
        replayed = await resolveAttemptDir(settings.options.replay!, '--replay');
        if (settings.step !== undefined) {
          throw new UsageError('--step cannot be used with --replay (a replay is a new attempt of the replayed step)');
        }
        if (settings.argv.length === 0) settings.argv = await readAttemptCommand(replayed);
        settings.buildDir = replayed.buildDir;
        settings.step = replayed.step;
        settings.parents ??= await readParents(replayed.attemptDir);
        settings.net ??= false;
        settings.time ??= await recordedTimeMode(replayed);
        settings.aslr ??= (await readStepOptions(replayed.attemptDir))?.aslr === true;
        settings.seed = formatSeed(await readSeedFile(replayed.attemptDir));
        settings.t0Ns = await readT0File(replayed.attemptDir);
        settings.stepOptions.replay = replayed.attemptDir;
      },
      async record(run) {
        await linkReplay(run.paths.attemptDir, replayed.attemptDir);
      },
      async plan(run) {
        // the clock starts after host files edited since T0 (replay-clock.ts), also those
        // edited before an earlier replay of the same run: the clock is T0's again
        const t0Ns = run.settings.t0Ns;
        const edited = t0Ns === undefined ? undefined : hostNewestSinceNs(replayed.attemptDir, t0Ns, BigInt(Date.now()) * 1_000_000n);
        return { replayPids: await replayedPids(replayed), ...(edited !== undefined ? { hostNewestNs: edited } : {}) };
      },
    };
  },
});

/** Tree key -> logical pid of the replayed attempt's processes, as the flat triples of
 * InitPlan.replayPids. An attempt without a process table (cut short) gives none: every
 * process then gets a fresh pid. Keys are unique in a table; a malformed one is skipped. */
async function replayedPids(attempt: AttemptPaths): Promise<number[]> {
  let rows;
  try {
    rows = parseProcessRows(await fs.readFile(path.join(attempt.attemptDir, PROCESS_TABLE_FILE), 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    if (err instanceof ProcessTableError) throw new UsageError(`--replay ${attempt.attemptDir}: ${err.message}`);
    throw err;
  }
  const out: number[] = [];
  for (const row of rows) {
    const m = /^([1-9][0-9]*)\.(0|[1-9][0-9]*)$/.exec(row.key);
    if (m) out.push(Number(m[1]), Number(m[2]), row.pid);
  }
  return out;
}

/** The time mode a recorded attempt ran with (attempts before the option: advancing). */
async function recordedTimeMode(attempt: AttemptPaths): Promise<TimeMode> {
  const recorded = (await readStepOptions(attempt.attemptDir))?.time;
  return typeof recorded === 'string' ? parseTimeMode(recorded) : 'advancing';
}

/** The attempt's own copy of its command; older attempts have only the step's. */
async function readAttemptCommand(attempt: AttemptPaths): Promise<string[]> {
  for (const dir of [attempt.attemptDir, attempt.stepDir]) {
    try {
      return await readStepCommand(dir);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }
  throw new UsageError(
    `--replay ${attempt.attemptDir}: no command recorded (neither the attempt nor its step has a cmd file): give one after "--"`,
  );
}
