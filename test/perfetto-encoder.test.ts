// Our protobuf writer against protobufjs: same wire values for the scalar and nesting
// forms the merger uses, and our reader detects truncation.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { compressionFor } from '../src/actors/merger.js';
import protobuf from 'protobufjs';
import { ProtoDecodeError, ProtoWriter, readFields } from '../src/protocol/perfetto.js';

const root = protobuf.Root.fromJSON({
  nested: {
    M: {
      fields: {
        u: { id: 1, type: 'uint64' },
        i: { id: 2, type: 'int64' },
        s: { id: 3, type: 'string' },
        b: { id: 4, type: 'bytes' },
        flag: { id: 5, type: 'bool' },
        big: { id: 300, type: 'uint64' },
        child: { id: 6, type: 'M' },
        many: { id: 7, type: 'string', rule: 'repeated' },
        nums: { id: 8, type: 'uint64', rule: 'repeated', options: { packed: false } },
        i32: { id: 9, type: 'int32' },
      },
    },
  },
});
const M = root.lookupType('M');
const obj = (buf: Uint8Array) => M.toObject(M.decode(buf), { longs: String, bytes: Buffer, defaults: false });

test('varints of every size decode as protobufjs reads them', (t) => {
  const values = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31 - 1, 2 ** 32, 2 ** 35 + 5, Number.MAX_SAFE_INTEGER];
  for (const v of values) {
    const w = new ProtoWriter(4).uint(1, v).uint(300, v);
    t.deepEqual(obj(w.view()), v === 0 ? { u: '0', big: '0' } : { u: String(v), big: String(v) }, String(v));
  }
  const w = new ProtoWriter().uint(1, 18446744073709551615n).int(2, -1).int(9, -2147483648);
  t.deepEqual(obj(w.view()), { u: '18446744073709551615', i: '-1', i32: -2147483648 });
  t.is(new ProtoWriter().int(2, -1).length, 11, 'a negative int64 takes 10 bytes after its tag');
});

test('strings, bytes, bools, repeated and nested messages', (t) => {
  const w = new ProtoWriter(8);
  w.string(3, 'héllo \u{1F600}')
    .bytes(4, Buffer.from([0, 255, 10]))
    .bool(5, true)
    .message(6, (c) => c.string(3, 'inner').message(6, (g) => g.uint(1, 42)))
    .string(7, 'a')
    .string(7, '')
    .string(7, 'c')
    .uint(8, 1)
    .uint(8, 2);
  t.deepEqual(obj(w.view()), {
    s: 'héllo \u{1F600}',
    b: Buffer.from([0, 255, 10]),
    flag: true,
    child: { s: 'inner', child: { u: '42' } },
    many: ['a', '', 'c'],
    nums: ['1', '2'],
  });
  // A large nested message (length needs all four reserved varint bytes).
  const big = 'x'.repeat(3 << 20);
  t.is(obj(new ProtoWriter().message(6, (c) => c.string(3, big)).view()).child.s.length, big.length);
});

test('the reader walks fields and names truncation', (t) => {
  const w = new ProtoWriter().uint(1, 300).message(6, (c) => c.string(3, 'abc')).bytes(4, Buffer.alloc(100));
  const fields = [...readFields(w.view())].map((f) => [f.field, f.wireType]);
  t.deepEqual(fields, [[1, 0], [6, 2], [4, 2]]);
  const cut = w.view().subarray(0, w.length - 10);
  const err = t.throws(() => [...readFields(cut)], { instanceOf: ProtoDecodeError });
  t.regex(err!.message, /truncated field 4 at offset \d+: needs 100 bytes, 90 left/);
});

test('random bytes are stored, base64 text is entropy-coded, build output and small chunks are deflated', (t) => {
  t.is(compressionFor(randomBytes(400_000)), 'store');
  t.is(compressionFor(Buffer.from(randomBytes(300_000).toString('base64'))), 'entropy');
  t.is(compressionFor(Buffer.alloc(400_000, 'make[1]: Entering directory \'/src/lib\'\n')), 'full');
  t.is(compressionFor(randomBytes(100)), 'full', 'too small to judge: deflated as before');
  // text with a random middle still compresses as a whole
  t.is(compressionFor(Buffer.concat([Buffer.alloc(200_000, 'cc -c x.c\n'), randomBytes(100), Buffer.alloc(200_000, 'ok\n')])), 'full');
});

test('a length-delimited field opened with beginBytes gets the shortest length, whatever its size', (t) => {
  for (const size of [0, 1, 127, 128, 300, 16383, 16384, 70_000]) {
    const w = new ProtoWriter(4).uint(1, 7);
    const body = w.beginBytes(4);
    w.bytesOf(3, Buffer.alloc(size + 10, 'y'), 10, 10 + size);
    w.endBytes(body);
    w.uint(8, 9);
    const inner = new ProtoWriter().bytesOf(3, Buffer.alloc(size, 'y'), 0, size).view();
    const expected = new ProtoWriter().uint(1, 7).bytes(4, inner).uint(8, 9).view();
    t.deepEqual(w.view(), expected, `body of ${inner.length} bytes`);
  }
});

test('beginMessage/endMessage write what message() writes', (t) => {
  const a = new ProtoWriter(4);
  const at = a.beginMessage(6);
  a.string(3, 'inner').uint(1, 5);
  a.endMessage(at);
  const b = new ProtoWriter(4).message(6, (c) => c.string(3, 'inner').uint(1, 5));
  t.deepEqual(a.view(), b.view());
  t.deepEqual(obj(a.view()), { child: { s: 'inner', u: '5' } });
});
