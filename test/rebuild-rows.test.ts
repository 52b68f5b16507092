// The rebuild index takes the access index's rows from the merger while the command
// runs; after it, only the rows of the last processes are left. The index is the one
// the finished record gives (accesses.tsv read whole).
import test from 'ava';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { readTraceLooks } from '../src/rebuild/capture.js';
import { sameAsFinishedRecord } from './helpers/rebuild-index.js';

const missing = ensureCommands({ gcc: 'gcc' });

test('rows taken while the command runs give the index the finished record gives', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = scratchDir('uwrx-rows-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'h.h'), '#define N 1\n');
  for (const n of ['a', 'b', 'c']) writeFileSync(path.join(dir, `${n}.c`), `#include "h.h"\nint ${n} = N;\n`);
  // compiles before and after pauses longer than the interval between takes
  const script = 'gcc -c a.c && sleep 1 && gcc -c b.c && sleep 1 && gcc -c c.c && ar rc lib.a a.o b.o c.o';
  const r = await uwrx(['run', '--quiet', '--build', 'b', '--', 'sh', '-c', script], { cwd: dir, env: { ...process.env, UWRX_DEBUG_TIMING: '1' } });
  t.is(r.status, 0, r.stderr);
  const taken = /rebuild index: access rows taken \(([0-9]+) while the command ran, ([0-9]+) after\)/.exec(r.stderr);
  t.truthy(taken, r.stderr);
  t.true(Number(taken![1]) > 0, 'rows were taken while the command ran');

  const attempt = path.join(dir, 'b', '0', '0');
  // as many looks as the file gives, in the same order
  const looks = readTraceLooks(attempt);
  t.true(looks.paths.length > 0);
  t.true(sameAsFinishedRecord(t, attempt, path.join(dir, 'b')) >= 4);
});
