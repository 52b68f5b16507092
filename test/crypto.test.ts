// A run's digests and random bytes before its command starts come from the addon
// (src/crypto.ts), not from node:crypto, whose load costs more than they do: the same
// digests as node:crypto's, and a short run that does not load node:crypto at all.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes, sha1, sha256 } from '../src/crypto.js';
import { scratchDir, uwrxBin } from './helpers/uwrx.js';

const parts: Array<Array<string | Buffer>> = [[], [''], ['abc'], ['h\u00e9llo, ', Buffer.from([0, 255, 10])], [Buffer.alloc(200_000, 7), 'tail']];

test('sha256 and sha1 of the parts are node:crypto\'s of the same updates', (t) => {
  for (const p of parts) {
    const node = (algorithm: string) => p.reduce((h, part) => h.update(part), createHash(algorithm)).digest();
    t.deepEqual(sha256(...p), node('sha256'));
    t.deepEqual(sha1(...p), node('sha1'));
  }
  t.throws(() => sha256(42 as unknown as string), { instanceOf: TypeError });
});

test('randomBytes gives as many bytes as asked, different each time', (t) => {
  t.is(randomBytes(0).length, 0);
  const a = randomBytes(32);
  const b = randomBytes(32);
  t.is(a.length, 32);
  t.notDeepEqual(a, b);
  t.throws(() => randomBytes(-1), { instanceOf: RangeError });
});

test('a run of true loads no node:crypto', (t) => {
  const dir = scratchDir('uwrx-crypto-');
  const list = path.join(dir, 'modules.txt');
  // what Node loaded, written as it exits
  const preload = path.join(dir, 'modules.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
  const r = spawnSync(process.execPath, ['-r', preload, uwrxBin, 'run', '-q', '--build', path.join(dir, 'build'), '--', 'true'], { cwd: dir, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const loaded = readFileSync(list, 'utf8').split('\n');
  // the list is Node's own: a module it loads shows as "NativeModule <name>"
  t.true(loaded.includes('NativeModule fs'), 'the list names the modules loaded');
  t.deepEqual(loaded.filter((m) => /^NativeModule (crypto|internal\/crypto\/)/.test(m)), []);
});
