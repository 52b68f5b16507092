// Finishing an attempt whose history cannot be laid out per path (a directory later
// replaced by a file): the run still succeeds and says what it could not store.
import test from 'ava';
import { readFileSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';

test('a directory replaced by a file does not break finishing', async (t) => {
  const cwd = scratchDir();
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', 'mkdir -p d/out; echo x > d/out/f; rm -rf d; echo file > d'], { cwd });
  t.is(r.status, 0, r.stderr);
  const files = path.join(cwd, 'build/0/0/files', cwd);
  t.true(lstatSync(path.join(files, 'd')).isFile());
  t.is(readFileSync(path.join(files, 'd'), 'utf8'), 'file\n');
  t.regex(readFileSync(path.join(cwd, 'build/0/0/files.skipped'), 'utf8'), new RegExp(`${cwd}/d/out/f\\t\\d+\\n`));
  const check = await uwrx(['check', 'build/0/0'], { cwd });
  t.is(check.status, 0, check.stdout + check.stderr);
});
