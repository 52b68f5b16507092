// Times of the files an attempt changes (docs/record.md, "Timestamps in stat results"):
// the virtual time of the change, so make sees the order of changes inside one run;
// times a program sets itself are kept; the same on --replay.
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';

async function runOk(cwd: string, args: string[]): Promise<string> {
  const r = await uwrx(['run', '-q', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return r.stdout;
}

function scratch(t: { teardown(fn: () => void): void }): string {
  const cwd = scratchDir('uwrx-filetimes-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return cwd;
}

test.serial('make; edit a source; make, in one run: the second make rebuilds', async (t) => {
  ensureCommands({ make: 'make', cc: 'gcc' });
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'Makefile'), 'a.o: a.c\n\tcc -c a.c -o a.o\n');
  const script = "echo 'int a;' > a.c; make; echo 'int x;' >> a.c; make; make";
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  t.deepEqual(out.trim().split('\n'), ['cc -c a.c -o a.o', 'cc -c a.c -o a.o', "make: 'a.o' is up to date."]);
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});

test.serial('explicit times are kept; other changes read the virtual time of the change, the same on --replay', async (t) => {
  const cwd = scratch(t);
  const script = [
    'touch -d 2030-01-01T00:00:00Z f; stat -c %Y f',
    'touch g; sleep 0.2; touch h; stat -c %.9Y g h',
    'mv g k; stat -c %.9Y k',
    'touch -m -d @1000000000.5 f; stat -c %.9Y f',
  ].join('; ');
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  const [f, g, h, k, f2] = out.trim().split('\n');
  t.is(f, '1893456000');
  t.true(Number(h) - Number(g) >= 0.2, `h (${h}) is 0.2 s of virtual time after g (${g})`);
  t.is(k, g, 'a rename keeps the time');
  t.is(f2, '1000000000.500000000');
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});
