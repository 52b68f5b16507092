// removeTree (src/fs.ts): the addon removes a whole tree in one job, also where
// directories deny their owner access (overlayfs's work/work), never following a
// symbolic link out of the tree; fs.rm takes over where the addon cannot.
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeTree } from '../src/fs.js';
import { native } from '../src/native.js';
import { scratchDir } from './helpers/uwrx.js';

/** A tree like a run directory's: nested directories, files, a link out of the tree,
 * directories of mode 000 and 500. */
function makeTree(root: string, outside: string): void {
  for (let i = 0; i < 5; i++) {
    mkdirSync(path.join(root, 'ovl', String(i), 'upper', 'a', 'b'), { recursive: true });
    mkdirSync(path.join(root, 'ovl', String(i), 'work', 'work', 'inner'), { recursive: true });
    writeFileSync(path.join(root, 'ovl', String(i), 'upper', 'a', 'b', 'file'), 'x');
    writeFileSync(path.join(root, 'ovl', String(i), 'work', 'work', 'inner', 'file'), 'x');
    chmodSync(path.join(root, 'ovl', String(i), 'work', 'work'), 0);
    chmodSync(path.join(root, 'ovl', String(i), 'upper', 'a'), 0o500);
  }
  symlinkSync(outside, path.join(root, 'link-out'));
  symlinkSync(path.join(outside, 'kept'), path.join(root, 'link-to-file'));
}

test('the addon removes a whole tree, mode-000 directories too, without following links out of it', async (t) => {
  const dir = scratchDir('uwrx-rm-');
  const root = path.join(dir, 'run');
  const outside = path.join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'kept'), 'still here');
  makeTree(root, outside);
  await native().removeTree(root);
  t.false(existsSync(root));
  t.is(readFileSync(path.join(outside, 'kept'), 'utf8'), 'still here', 'the link was removed, not what it points at');
  await t.notThrowsAsync(native().removeTree(root), 'an absent tree is removed already');
  writeFileSync(path.join(dir, 'plain'), 'x');
  await native().removeTree(path.join(dir, 'plain'));
  t.false(existsSync(path.join(dir, 'plain')), 'a file is removed too');
});

test('the addon reports what stands in the way with its errno', async (t) => {
  const dir = scratchDir('uwrx-rm-');
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  const err = await t.throwsAsync(native().removeTree(path.join(file, 'below')));
  t.regex(err!.message, /^remove .*\/file\/below: Not a directory$/);
  t.is((err as Error & { errno?: number }).errno, 20);
});

test('removeTree removes a run-directory-like tree and is quiet about an absent one', async (t) => {
  const dir = scratchDir('uwrx-rm-');
  const root = path.join(dir, 'run');
  mkdirSync(path.join(dir, 'outside'));
  makeTree(root, path.join(dir, 'outside'));
  await removeTree(root);
  t.false(existsSync(root));
  await t.notThrowsAsync(removeTree(root));
});

test('where the addon fails, fs.rm runs and its error is what removeTree reports', async (t) => {
  const dir = scratchDir('uwrx-rm-');
  const file = path.join(dir, 'file');
  writeFileSync(file, 'x');
  const err = await t.throwsAsync(removeTree(path.join(file, 'below')));
  t.is((err as NodeJS.ErrnoException).code, 'ENOTDIR', 'a Node fs error, with its code');
  t.true(existsSync(file));
});
