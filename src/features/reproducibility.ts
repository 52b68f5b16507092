// Reproducibility: the attempt's root seed and T0 (seed.txt, t0.txt), the time mode, and
// address-space randomization (off unless --aslr), and their part of the sandbox plan
// (deterministic randomness and clocks, the ld.so shim, hostname and domain name); docs/reproducibility.md.
import { formatSeed, freshSeed, parseSeed, writeSeedFile } from '../reproducibility/prng.js';
import { freshT0Ns, writeNewestFile, writeT0File } from '../reproducibility/time.js';
import { defineFeature } from './feature.js';

export default defineFeature({
  name: 'reproducibility',
  finishAfter: [],
  create() {
    let seed: string | undefined;
    let t0Ns: bigint | undefined;
    return {
      configure(settings) {
        settings.time ??= 'advancing';
        settings.stepOptions.time = settings.time;
        settings.aslr ??= false;
        settings.stepOptions.aslr = settings.aslr;
      },
      async record(run) {
        seed = run.settings.seed ?? formatSeed(freshSeed());
        t0Ns = run.settings.t0Ns ?? freshT0Ns(run.startedAt.getTime());
        await writeSeedFile(run.paths.attemptDir, parseSeed(seed));
        await writeT0File(run.paths.attemptDir, t0Ns);
      },
      async finish(run, { sandbox }) {
        if (sandbox.newestFileNs !== undefined) await writeNewestFile(run.paths.attemptDir, sandbox.newestFileNs);
      },
      plan(run) {
        const s = run.settings;
        return {
          repro: {
            // a dry run shows where a fresh seed would go
            seed: seed ?? s.seed ?? '<fresh>',
            t0Ns: t0Ns ?? s.t0Ns ?? freshT0Ns(),
            timeMode: s.time!,
            aslr: s.aslr!,
            ...(s.options.shim === false ? { shim: false } : {}),
            ...(s.options.fastPath !== false ? { recorder: true } : {}),
          },
        };
      },
    };
  },
});
