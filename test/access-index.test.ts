import test from 'ava';
import { ACCESS_INDEX_HEADER, ACCESS_INDEX_OPS, AccessIndexError, accessIndexRows, parseAccessIndex, parseAccessIndexEscaped } from '../src/record/accesses.js';
import { escapeBytes } from '../src/record/escape.js';
import { native } from '../src/native.js';

/** accessIndexRows as parseAccessIndexEscaped's entries, without the counts. */
function rowsOf(text: string): Array<{ pid: number; op: string; path: string }> {
  const { paths: names, rows } = accessIndexRows(Buffer.from(text));
  const out = [];
  for (let i = 0; i < rows.length; i += 3) out.push({ pid: rows[i]!, op: ACCESS_INDEX_OPS[rows[i + 1]!]!, path: names[rows[i + 2]!]! });
  return out;
}
const withoutCount = (entries: Array<{ pid: number; op: string; path: string }>) => entries.map(({ pid, op, path }) => ({ pid, op, path }));

const paths = [
  Buffer.from('/src/a.c'),
  Buffer.from('/with\ttab\nnewline\\backslash'),
  Buffer.from([0x2f, 0xff, 0x41]), // not UTF-8
  Buffer.from('/caf\u00e9/\u6587'),
];
const text =
  ACCESS_INDEX_HEADER +
  paths.map((p, i) => `${i + 1}\tread\t${escapeBytes(p)}\t${i + 1}\n`).join('') +
  '9\tstat\t/x\\x41\t2\n'; // an escape a writer need not have used

test('accesses.tsv: paths parse to their bytes, and to their canonical escaped text', (t) => {
  const bytes = parseAccessIndex(text);
  t.deepEqual(bytes.map((e) => e.path), [...paths, Buffer.from('/xA')]);
  t.deepEqual(bytes.map((e) => [e.pid, e.op, e.count]), [[1, 'read', 1], [2, 'read', 2], [3, 'read', 3], [4, 'read', 4], [9, 'stat', 2]]);
  const escaped = parseAccessIndexEscaped(text);
  t.deepEqual(escaped.map((e) => e.path), [...paths.map((p) => escapeBytes(p)), '/xA']);
  t.deepEqual(escaped.map((e) => [e.pid, e.op, e.count]), bytes.map((e) => [e.pid, e.op, e.count]));
  t.deepEqual(rowsOf(text), withoutCount(escaped));
});

test('accesses.tsv as rows: the native scan gives the entries of the reference reading', (t) => {
  // repeated paths, the same path spelled two ways, every operation, a last line without newline
  const lines = ACCESS_INDEX_OPS.map((op, i) => `${i + 3}\t${op}\t${i % 2 ? '/xA' : '/x\\x41'}\t${i + 1}\n`);
  const many = text + lines.join('') + '7\tread\t/src/a.c\t1\n4000000\tmissing\t/usr/include/\u6587.h\t12';
  t.not(native().scanAccessIndex(Buffer.from(many), ACCESS_INDEX_HEADER, ACCESS_INDEX_OPS), null);
  const rows = rowsOf(many);
  t.deepEqual(rows, withoutCount(parseAccessIndexEscaped(many)));
  t.is(rows.length, 5 + ACCESS_INDEX_OPS.length + 2);
  t.deepEqual(rowsOf(ACCESS_INDEX_HEADER), []);
  // a pid beyond 32 bits is one the native scan leaves to the reference reading
  const big = `${ACCESS_INDEX_HEADER}4294967297\tread\t/a\t1\n`;
  t.is(native().scanAccessIndex(Buffer.from(big), ACCESS_INDEX_HEADER, ACCESS_INDEX_OPS), null);
  t.deepEqual(rowsOf(big), [{ pid: 4294967297, op: 'read', path: '/a' }]);
});

test('accesses.tsv: a malformed escape is an error naming its line, in both forms', (t) => {
  const bad = `${ACCESS_INDEX_HEADER}1\tread\t/ok\t1\n2\tread\t/bad\\q\t1\n`;
  for (const parse of [parseAccessIndex, parseAccessIndexEscaped, rowsOf]) {
    const err = t.throws(() => parse(bad), { instanceOf: AccessIndexError });
    t.regex(err!.message, /line 3: malformed escape/);
  }
});

test('accesses.tsv: each bad field is an error naming its line, and a last line needs no newline', (t) => {
  const ok = `${ACCESS_INDEX_HEADER}1\tread\t/ok\t1\n`;
  const cases: Array<[string, RegExp]> = [
    ['2\tread\t/a\n', /line 3: expected 4 tab-separated fields, found 3/],
    ['2\tread\t/a\t1\textra\n', /line 3: expected 4 tab-separated fields, found 5/],
    ['\n2\tread\t/a\t1\n', /line 3: expected 4 tab-separated fields, found 1/],
    ['0\tread\t/a\t1\n', /line 3: pid "0" is not a logical pid/],
    ['02\tread\t/a\t1\n', /line 3: pid "02" is not a logical pid/],
    ['x\tread\t/a\t1\n', /line 3: pid "x" is not a logical pid/],
    ['2\tlook\t/a\t1\n', /line 3: unknown operation "look"/],
    ['2\tread\t/a\t0\n', /line 3: count "0" is not a positive number/],
    ['2\tread\t/a\t1x\n', /line 3: count "1x" is not a positive number/],
  ];
  for (const [line, message] of cases) {
    for (const parse of [parseAccessIndex, parseAccessIndexEscaped, rowsOf]) {
      const err = t.throws(() => parse(ok + line), { instanceOf: AccessIndexError }, JSON.stringify(line));
      t.regex(err!.message, message);
    }
  }
  t.throws(() => parseAccessIndex('pid\top\n'), { instanceOf: AccessIndexError, message: /missing header line/ });
  t.throws(() => rowsOf('pid\top\n'), { instanceOf: AccessIndexError, message: /missing header line/ });
  const last = parseAccessIndexEscaped(`${ok}12\tmissing\t/b c\t34`);
  t.deepEqual(last.map((e) => [e.pid, e.op, e.path, e.count]), [[1, 'read', '/ok', 1], [12, 'missing', '/b c', 34]]);
  t.deepEqual(parseAccessIndex(ACCESS_INDEX_HEADER), []);
});
