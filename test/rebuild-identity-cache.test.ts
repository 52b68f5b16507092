// The hashes of real files kept in the user cache between runs: a capture in a fresh
// build directory takes them by identity instead of hashing the toolchain again; a
// changed file is hashed anew; a damaged cache is ignored and written anew.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { readRebuildIndex } from '../src/rebuild/index-file.js';
import { IdentityCache } from '../src/rebuild/identity-cache.js';

const missing = ensureCommands({ gcc: 'gcc' });
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

test('a capture takes real files\' hashes from the user cache by identity', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = scratchDir('uwrx-idcache-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') };
  const cacheFile = path.join(dir, 'cache', 'uwrx', 'file-hashes-v2.bin');
  mkdirSync(path.dirname(cacheFile), { recursive: true });
  writeFileSync(cacheFile, 'uwrx-fh2\x09\0\0\0'); // nine records, none there
  mkdirSync(path.join(dir, 'inc'));
  const header = path.join(dir, 'inc', 'h.h');
  writeFileSync(header, '#define H 1\n');
  writeFileSync(path.join(dir, 'x.c'), '#include "h.h"\nint x = H;\n');
  await sleep(2100); // a file changed within the last 2 s is not known by identity yet

  const capture = async (build: string) => {
    const r = await uwrx(['run', '--quiet', '--build', build, '--', 'gcc', '-Iinc', '-c', 'x.c', '-o', 'x.o'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    const driver = readRebuildIndex(path.join(dir, build, '0', '0'))!.processes.find((e) => /gcc/.test(path.basename(e.exe)))!;
    return new Map(driver.inputs.map(([op, p, v]) => [`${op} ${p}`, v]));
  };
  const cached = () => IdentityCache.open(cacheFile).identities();

  const first = await capture('b1');
  t.is(first.get(`read ${header}`), sha256('#define H 1\n'));
  const kept = cached();
  t.true(kept.length > 0, 'the damaged cache was written anew');
  const headerId = kept.find((id) => id[0] === header);
  t.is(headerId?.[4], sha256('#define H 1\n'));
  const cc1 = [...first.keys()].find((k) => k.startsWith('exec ') && k.endsWith('/cc1'))!.slice('exec '.length);
  t.is(kept.find((id) => id[0] === cc1)?.[4], sha256(readFileSync(cc1)));

  // a fresh build directory (no parent index): the hash comes from the cache, unread
  headerId![4] = 'f'.repeat(64);
  writeFileSync(cacheFile, IdentityCache.empty().withUsed(kept));
  t.is((await capture('b2')).get(`read ${header}`), 'f'.repeat(64));

  // a changed file has another identity: hashed anew
  writeFileSync(header, '#define H 2\n');
  t.is((await capture('b3')).get(`read ${header}`), sha256('#define H 2\n'));
});

test('the user cache of file hashes is read while the command runs, not after it', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = scratchDir('uwrx-idcache-early-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache'), UWRX_DEBUG_TIMING: '1' };
  writeFileSync(path.join(dir, 'x.c'), 'int x = 1;\n');
  // the compile's exec is reported to the supervisor; the command goes on for 2 s more
  const run = () => uwrx(['run', '--quiet', '--build', 'b', '--', 'sh', '-c', 'gcc -c x.c -o x.o && sleep 2'], { cwd: dir, env });
  const first = await run();
  t.is(first.status, 0, first.stderr);
  t.true(IdentityCache.open(path.join(dir, 'cache', 'uwrx', 'file-hashes-v2.bin')).size > 0);
  const second = await run();
  t.is(second.status, 0, second.stderr);
  const lines = second.stderr.split('\n');
  const read = lines.findIndex((l) => /rebuild index: user cache read \([1-9][0-9]* file hashes\)/.test(l));
  const exited = lines.findIndex((l) => /uwrx-init exited/.test(l));
  t.true(read >= 0 && exited >= 0 && read < exited, second.stderr);
  // the index takes the toolchain's hashes from it all the same
  t.regex(lines.find((l) => /rebuild index written/.test(l)) ?? '', /[1-9][0-9]* known by identity/);
});
