// The optimizing compiler is off after a run's command (src/actors/compiler-tuning.ts):
// a program that embeds uwrx must get it back when the run is done.
import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, scratchDir } from './helpers/uwrx.js';

const exec = promisify(execFile);

/** Whether TurboFan optimizes a function asked for after `before` ran, in a Node with the
 * natives syntax (%GetOptimizationStatus: bit 4 is "optimized"). */
async function optimizesAfter(before: string): Promise<boolean> {
  const runModule = path.join(repoRoot, 'dist', 'src', 'run.js');
  const script = `
    import { run } from ${JSON.stringify(runModule)};
    import { setFlagsFromString } from 'node:v8';
    ${before}
    function probe(x) { return x * 2 + 1; }
    %PrepareFunctionForOptimization(probe);
    probe(1); probe(2);
    %OptimizeFunctionOnNextCall(probe);
    probe(3);
    console.log((%GetOptimizationStatus(probe) & 16) !== 0 ? 'optimized' : 'not optimized');
  `;
  // a file, not -e: the run's worker threads take the process's options (--input-type) too
  const dir = scratchDir();
  const file = path.join(dir, 'probe.mjs');
  writeFileSync(file, script);
  const { stdout } = await exec(process.execPath, ['--allow-natives-syntax', file], { cwd: dir });
  return stdout.trim() === 'optimized';
}

test('the probe sees the compiler off when it is off', async (t) => {
  t.true(await optimizesAfter(''));
  t.false(await optimizesAfter(`setFlagsFromString('--no-turbofan');`));
});

test('after a run the optimizing compiler is on again in the program that ran it', async (t) => {
  const build = scratchDir();
  const before = `
    const r = await run({ argv: ['sh', '-c', 'for i in 1 2 3; do /bin/true; done'], cwd: ${JSON.stringify(build)}, build: ${JSON.stringify(path.join(build, 'b'))} }).done;
    if (r.status !== 0) throw new Error('run failed: ' + r.status);
  `;
  t.true(await optimizesAfter(before));
});
