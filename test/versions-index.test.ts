// The versions index uwrx-init appends during the run (src/record/versions-index.ts).
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseVersionsIndex, readVersionsIndex } from '../src/record/versions-index.js';
import { scratchDir } from './helpers/uwrx.js';

const line = (name: string, pid: number, p: Buffer | string) => Buffer.concat([Buffer.from(`${name}\t${pid}\t`), Buffer.from(p), Buffer.from([0])]);

test('a writer\'s later version of a path wins; absent versions; raw path bytes', (t) => {
  const odd = Buffer.concat([Buffer.from('/w/t\tab\nnl'), Buffer.from([0xff])]);
  const index = parseVersionsIndex(
    Buffer.concat([line('1', 7, '/w/a'), line('2', 8, '/w/a'), line('3', 7, '/w/a'), line('-', 9, '/w/b'), line('4', 7, odd)]),
    '/v',
  );
  t.deepEqual(index.get(7, '/w/a'), { kind: 'file', file: '/v/3' });
  t.deepEqual(index.get(8, '/w/a'), { kind: 'file', file: '/v/2' });
  t.deepEqual(index.get(9, '/w/b'), { kind: 'absent' });
  t.deepEqual(index.get(7, odd.toString('latin1')), { kind: 'file', file: '/v/4' });
  t.is(index.get(9, '/w/a'), undefined);
  t.is(index.size, 4);
});

test('a malformed index is an error that names it', (t) => {
  t.throws(() => parseVersionsIndex(Buffer.from('1\t7\t/w/a'), '/v'), { message: /\/v\/index: a line without its end/ });
  t.throws(() => parseVersionsIndex(Buffer.from('1\t/w/a\0'), '/v'), { message: /\/v\/index: malformed line at byte 0/ });
  t.throws(() => parseVersionsIndex(Buffer.concat([line('1', 7, '/a'), Buffer.from('x\t7\t/b\0')]), '/v'), {
    message: /malformed line at byte 7/,
  });
});

test('no index (no version kept, no file store): empty', async (t) => {
  const dir = scratchDir();
  t.is((await readVersionsIndex(path.join(dir, 'missing'))).size, 0);
  mkdirSync(path.join(dir, 'v'));
  writeFileSync(path.join(dir, 'v', 'index'), line('1', 3, '/x'));
  t.deepEqual((await readVersionsIndex(path.join(dir, 'v'))).get(3, '/x'), { kind: 'file', file: path.join(dir, 'v', '1') });
});
