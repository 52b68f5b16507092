// Finding and rewriting ld.so's system call sites (src/reproducibility/ldso-rewrite.ts),
// on made-up code: what is taken, what is left alone, and the bytes written.
import test from 'ava';
import { findSyscallSites, siteJump, stubBytes } from '../src/reproducibility/ldso-rewrite.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('openat and newfstatat sites are found, other system calls are not', (t) => {
  const code = hex(`
    90 90
    b8 01 01 00 00 0f 05  c3
    b8 06 01 00 00 0f 05  c3
    b8 03 00 00 00 0f 05  c3
    b8 01 01 00 00 48 89 fe bf 9c ff ff ff 0f 05 c3
    90 90 90 90 90 90 90 90 90 90 90 90 90 90 90 90
    bf 9c ff ff ff 0f 05 c3`);
  const sites = findSyscallSites(code, 0, code.length);
  t.deepEqual(sites.map((s) => [s.at, s.code.toString('hex')]), [
    [2, 'b8010100000f05'],
    [10, 'b8060100000f05'],
    [34, 'bf9cffffff0f05'], // the number was loaded just before: mov $AT_FDCWD,%edi; syscall
  ]); // the last one: no openat or newfstatat number in the 16 bytes before it
});

test('access sites are found with their number, so the combiner knows ld.so\'s check of /etc/ld.so.preload is hooked', (t) => {
  const code = hex('b8 15 00 00 00 0f 05 c3  b8 01 01 00 00 0f 05 c3  b8 15 01 00 00 0f 05 c3');
  t.deepEqual(findSyscallSites(code, 0, code.length).map((s) => [s.at, s.nr]), [[0, 21], [8, 257]]); // 0x115: not a hooked number
});

test('a site that a branch lands inside is left alone', (t) => {
  // jmp rel8 to the syscall instruction (offset 5 of the site at 2)
  const code = hex('eb 05  b8 01 01 00 00 0f 05 c3');
  t.deepEqual(findSyscallSites(code, 0, code.length), []);
  // a branch to the start of the site is fine
  const toStart = hex('eb 00  b8 01 01 00 00 0f 05 c3');
  t.is(findSyscallSites(toStart, 0, toStart.length).length, 1);
});

test('the jump and the stub', (t) => {
  t.is(siteJump(0x1000n, 0x2000n).toString('hex'), 'e9fb0f00009090');
  const stub = stubBytes(0x2000n, 0x1800n, hex('b8 01 01 00 00'), 0x1000n);
  t.is(stub.length, 32);
  t.is(stub.subarray(0, 5).toString('hex'), '488d642480'); // lea -0x80(%rsp),%rsp
  t.is(stub.subarray(5, 10).toString('hex'), 'b801010000'); // the replaced mov
  t.is(stub[10], 0xe8);
  t.is(stub.readInt32LE(11), 0x1800 - 0x200f); // call common
  t.is(stub.subarray(15, 23).toString('hex'), '488da42480000000'); // lea 0x80(%rsp),%rsp
  t.is(stub[23], 0xe9);
  t.is(stub.readInt32LE(24), 0x1007 - 0x201c); // jmp back after the site
});
