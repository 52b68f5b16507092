import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { allocateAttempt, formatCommand, parseCommand } from '../src/record/layout.js';
import { escapeBytes, unescapeBytes } from '../src/record/escape.js';
import { scratchDir } from './helpers/uwrx.js';

test('allocateAttempt: many concurrent allocations never collide', async (t) => {
  const dir = scratchDir();
  const attempts = await Promise.all(Array.from({ length: 25 }, () => allocateAttempt(dir, 'x')));
  t.deepEqual(
    attempts.map((a) => a.attempt).sort((a, b) => a - b),
    Array.from({ length: 25 }, (_, i) => i),
  );
});

test('allocateAttempt: default step is largest numeric step + 10, ignoring names', async (t) => {
  const dir = scratchDir();
  await fs.mkdir(path.join(dir, '7'));
  await fs.mkdir(path.join(dir, 'release'));
  await fs.mkdir(path.join(dir, '.tmp'));
  const a = await allocateAttempt(dir);
  t.is(a.step, '17');
  t.is(a.attempt, 0);
});

test('escapeBytes round-trips tabs, newlines, backslashes and non-UTF-8 bytes', (t) => {
  const samples = [
    Buffer.from('plain/path.c'),
    Buffer.from('with space\tand tab\nand newline\\and backslash'),
    Buffer.from([0x66, 0xff, 0xfe, 0x2f, 0xc3, 0xa9, 0x00, 0x7f]),
    Buffer.from('ünïcödé ✓ 𝄞'),
    Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8 is not valid UTF-8
  ];
  for (const s of samples) {
    const e = escapeBytes(s);
    t.false(/[\t\n]/.test(e), `no raw tab/newline in ${e}`);
    t.deepEqual(unescapeBytes(e), s);
  }
  t.is(escapeBytes(Buffer.from('ünï')), 'ünï', 'valid UTF-8 stays readable');
  // a string escapes as its UTF-8 bytes do (plain ones are returned as they are)
  for (const s of ['plain/path.c', 'with space\tand tab\nand newline\\and backslash', 'del\x7f nul\x00', 'ünïcödé ✓ 𝄞', ''])
    t.is(escapeBytes(s), escapeBytes(Buffer.from(s, 'utf8')), s);
  t.throws(() => unescapeBytes('bad\\q'), { message: /malformed escape/ });
});

test('cmd format: one escaped argument per line', (t) => {
  const argv = ['sh', '-c', 'echo "a\tb"\nexit 3', ''];
  t.deepEqual(parseCommand(formatCommand(argv)), argv);
});
