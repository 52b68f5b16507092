import test from 'ava';
import { mkdirSync, writeFileSync, readFileSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { flattenLayers } from '../src/record/flatten.js';
import { resolveFile } from '../src/record/resolve.js';
import { native } from '../src/native.js';
import { scratchDir } from './helpers/uwrx.js';

function put(root: string, rel: string, content: string): void {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

test('flattenLayers gives the same view as the stacked layers', (t) => {
  const dir = scratchDir();
  const attempt = path.join(dir, 'b', '0', '0');
  put(attempt, 'files/w/a', 'a1');
  put(attempt, 'files/w/b', 'b1');
  put(attempt, 'files/w/gone', 'g');
  put(attempt, 'files-5/w/a', 'a5');
  mkdirSync(path.join(attempt, 'files-7/w'), { recursive: true });
  native().makeWhiteout(path.join(attempt, 'files-7/w/gone'));
  native().makeWhiteout(path.join(attempt, 'files-7/w/hostname-like'));
  mkdirSync(path.join(attempt, 'files-9/w/sub'), { recursive: true });
  native().setXattr(path.join(attempt, 'files-9/w/sub'), 'user.overlay.opaque', Buffer.from('y'));
  put(attempt, 'files-9/w/sub/new', 'n');
  put(attempt, 'files/w/sub/old', 'o');

  const flat = path.join(dir, 'flat');
  flattenLayers(['files-9', 'files-7', 'files-5', 'files'].map((l) => path.join(attempt, l)), flat);
  t.is(readFileSync(path.join(flat, 'w/a'), 'utf8'), 'a5');
  t.is(readFileSync(path.join(flat, 'w/b'), 'utf8'), 'b1');
  t.is(lstatSync(path.join(flat, 'w/b')).ino, lstatSync(path.join(attempt, 'files/w/b')).ino, 'hard link, not a copy');
  t.true(lstatSync(path.join(flat, 'w/gone')).isCharacterDevice(), 'whiteout kept');
  t.is(readFileSync(path.join(flat, 'w/sub/new'), 'utf8'), 'n');
  t.throws(() => lstatSync(path.join(flat, 'w/sub/old')), undefined, 'opaque directory cleared lower contents');
  t.is(native().getXattr(path.join(flat, 'w/sub'), 'user.overlay.opaque')?.toString(), 'y');

  // Same answers as the resolution rule over the unflattened attempt.
  const flatAttempt = path.join(dir, 'c', '0', '0');
  mkdirSync(flatAttempt, { recursive: true });
  flattenLayers([flat], path.join(flatAttempt, 'files'));
  for (const p of ['/w/a', '/w/b', '/w/gone', '/w/sub/new', '/w/sub/old', '/w/hostname-like']) {
    const a = resolveFile(attempt, p);
    const b = resolveFile(flatAttempt, p);
    t.is(a.kind, b.kind, p);
    if (a.kind === 'found' && b.kind === 'found') t.is(readFileSync(a.file, 'utf8'), readFileSync(b.file, 'utf8'), p);
  }
});
