// The times of records made in process (src/native/recorder/stamp.c: the time stamp
// counter between real clock reads) against those uwrx-init makes for notified calls:
// the access index lists a process's first accesses in the order the two paths made them.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import type { AccessRow } from '../src/inspect/reads.js';

test('reads answered in process and notified reads keep their order in the record, past the clock calibration', async (t) => {
  const probe = buildDriver('order_probe', ['test/native/order_probe.c']);
  const dir = scratchDir('uwrx-order-');
  const data = path.join(dir, 'data');
  // each notified read takes several microseconds: thousands of rounds run well past the
  // 10 ms after which the recorder extends its clock reads with the counter
  const rounds = 3000;
  mkdirSync(data);
  for (let i = 0; i < rounds; i++) {
    writeFileSync(path.join(data, `fast-${i}`), '');
    writeFileSync(path.join(data, `slow-${i}`), '');
  }
  const r = await uwrx(['run', '--fast-path', '--', probe, data, String(rounds)], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const attempt = /record in (\S+)/.exec(r.stderr)?.[1];
  t.truthy(attempt, r.stderr);
  const out = await uwrx(['inspect', 'files', path.resolve(dir, attempt!), '--reads', '--format', 'json'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  const rows = JSON.parse(out.stdout) as AccessRow[];
  const order = rows.filter((row) => row.op === 'read' && row.path.startsWith(data + '/')).map((row) => path.basename(row.path));
  const expected = Array.from({ length: rounds }, (_, i) => [`fast-${i}`, `slow-${i}`]).flat();
  t.is(order.length, expected.length, 'every read recorded once');
  const first = order.findIndex((name, i) => name !== expected[i]);
  t.is(first, -1, `in order; the first out of place: ${order.slice(Math.max(0, first - 2), first + 3).join(' ')}`);
});
