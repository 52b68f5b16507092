// A finished run's directory is renamed aside and removed by uwrx-remove, which goes on
// after uwrx exited (src/sandbox/run-dir-removal.ts); what a removal that did not finish
// left goes with the next run's, and nothing of a run still going is touched.
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REMOVING_PREFIX, isRemovingName } from '../src/sandbox/run-dir-removal.js';
import { afterRemovals, scratchDir, uwrx } from './helpers/uwrx.js';

test('a run\'s directory is gone after the run, its record complete', async (t) => {
  const cwd = scratchDir('uwrx-rdr-');
  const r = await uwrx(['run', '--quiet', '--', 'sh', '-c', 'mkdir -p d/e && echo x > d/e/f && rm -rf /tmp/uwrx-rdr-none && echo done'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'done\n');
  const tmp = path.join(cwd, 'build', '.tmp');
  // nothing but what is being removed, renamed aside
  t.deepEqual(readdirSync(tmp).filter((n) => !isRemovingName(n)), []);
  t.deepEqual(await afterRemovals(tmp), [], 'removed after uwrx exited');
  const status = JSON.parse(readFileSync(path.join(cwd, 'build', '0', '0', 'status'), 'utf8')) as { complete: boolean };
  t.true(status.complete);
  t.is(readFileSync(path.join(cwd, 'build', '0', '0', 'files', cwd, 'd', 'e', 'f'), 'utf8'), 'x\n');
});

test('what an unfinished removal left goes with the next run\'s directory; another run\'s directory stays', async (t) => {
  const cwd = scratchDir('uwrx-rdr-');
  const tmp = path.join(cwd, 'build', '.tmp');
  // a run directory renamed aside whose removal was stopped: directories that deny their
  // owner access (as overlayfs's work/work), a link out of the tree
  const left = path.join(tmp, `${REMOVING_PREFIX}run-0-0-AbCdEf`);
  const outside = path.join(cwd, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'kept'), 'still here');
  mkdirSync(path.join(left, 'work', '0', 'work', 'inner'), { recursive: true });
  writeFileSync(path.join(left, 'work', '0', 'work', 'inner', 'file'), 'x');
  chmodSync(path.join(left, 'work', '0', 'work'), 0);
  mkdirSync(path.join(left, 'upper', '3', 'a'), { recursive: true });
  chmodSync(path.join(left, 'upper', '3'), 0o500);
  symlinkSync(outside, path.join(left, 'link-out'));
  // a run directory of a run still going (or killed: `uwrx check --repair` wants it)
  const other = path.join(tmp, 'run-5-0-GhIjKl');
  mkdirSync(path.join(other, 'traces'), { recursive: true });
  // and what is not uwrx's, whatever its name
  mkdirSync(path.join(tmp, '.removing-not-a-run'));
  const r = await uwrx(['run', '--quiet', '--step', '1', '--', 'true'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.deepEqual((await afterRemovals(tmp)).sort(), ['.removing-not-a-run', 'run-5-0-GhIjKl']);
  t.false(existsSync(left));
  t.true(existsSync(path.join(other, 'traces')));
  t.is(readFileSync(path.join(outside, 'kept'), 'utf8'), 'still here', 'the link was removed, not what it points at');
});
