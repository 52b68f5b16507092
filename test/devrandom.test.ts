import test from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir } from './helpers/uwrx.js';

const driver = buildDriver('devrandom_driver', [
  'test/native/devrandom_driver.c',
  'src/native/init/devrandom.c',
  'src/native/common/prng.c',
], ['-pthread']);

function underDriver(script: string): string {
  const file = path.join(scratchDir(), 'urandom');
  writeFileSync(file, '');
  return execFileSync(driver, [file, 'sh', '-c', script.replaceAll('DEV', file)], { encoding: 'utf8' });
}

test('each open is a deterministic stream; dd bs=1M reads full blocks', (t) => {
  const script = 'dd if=DEV bs=1M count=8 2>/dev/null | sha256sum; head -c 32 DEV | od -An -tx1 | tr -d " \\n"; echo; head -c 32 DEV | od -An -tx1 | tr -d " \\n"';
  const first = underDriver(script).split('\n');
  const second = underDriver(script).split('\n');
  t.deepEqual(first, second, 'same seed, same bytes');
  t.regex(first[0]!, /^[0-9a-f]{64} {2}-$/);
  t.not(first[1], first[2], 'a second open is a new stream');
  t.is(first[1]!.length, 64);
  const size = underDriver('dd if=DEV bs=1M count=8 2>/dev/null | wc -c').trim();
  t.is(size, String(8 * 1024 * 1024), 'no short reads');
});

test('the device is read-only', (t) => {
  const out = underDriver('(echo x > DEV) 2>/dev/null && echo writable || echo refused');
  t.is(out.trim(), 'refused');
});
