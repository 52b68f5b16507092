// Replay: a new attempt of a recorded step, with the recorded command, parents, seed,
// T0 and time mode, and the network off unless asked for. It only decides settings;
// the other features do what they always do with them.
import { UsageError } from '../errors.js';
import { isErrno } from '../fs.js';
import { linkReplay, readParents, readStepCommand, readStepOptions, resolveAttemptDir, type AttemptPaths } from '../record/layout.js';
import { formatSeed, readSeedFile } from '../reproducibility/prng.js';
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
        settings.seed = formatSeed(await readSeedFile(replayed.attemptDir));
        settings.t0Ns = await readT0File(replayed.attemptDir);
        settings.stepOptions.replay = replayed.attemptDir;
      },
      async record(run) {
        await linkReplay(run.paths.attemptDir, replayed.attemptDir);
      },
    };
  },
});

/** The time mode a recorded attempt ran with (attempts before the option: advancing). */
async function recordedTimeMode(attempt: AttemptPaths): Promise<TimeMode> {
  const recorded = (await readStepOptions(attempt.attemptDir))?.time;
  return typeof recorded === 'string' ? parseTimeMode(recorded) : 'advancing';
}

/** The attempt's own copy of its command; older attempts have only the step's. */
async function readAttemptCommand(attempt: AttemptPaths): Promise<string[]> {
  try {
    return await readStepCommand(attempt.attemptDir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    return readStepCommand(attempt.stepDir);
  }
}
