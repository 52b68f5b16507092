// The user cache of file hashes as a file: written sorted, looked up where it lies,
// this run's identities in place of the old ones, the least recently used dropped past
// the limit, and a damaged file read as no cache (never an error, never a wrong hash).
import test from 'ava';
import { createHash } from 'node:crypto';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HashCache, identityKey, type Identity } from '../src/rebuild/hashes.js';
import { IdentityCache, saveIdentityCache } from '../src/rebuild/identity-cache.js';
import { scratchDir } from './helpers/uwrx.js';

const hash = (s: string) => createHash('sha256').update(s).digest('hex');
const id = (file: string, size: number, content = file): Identity => [file, String(size), '1700000000000000000', '1700000000123456789', hash(content)];
const keyOf = (i: Identity) => identityKey(i[0], i[1], i[2], i[3]);
const cacheOf = (used: Identity[], now = 1000, max?: number, from = IdentityCache.empty()) => IdentityCache.from(from.withUsed(used, now, max));

test('identities are found by their whole key, in any order written', (t) => {
  const ids = [id('/usr/bin/cc', 10), id('/usr/include/stdio.h', 20), id('/a', 1), id('/usr/lib/é\\x01', 3), id('/usr/include/stdio.h', 21, 'other')];
  const cache = cacheOf(ids);
  t.is(cache.size, 5);
  for (const i of ids) t.is(cache.hashOf(keyOf(i)), i[4]);
  t.is(cache.hashOf(identityKey('/usr/bin/cc', '10', '1700000000000000000', '1700000000123456780')), undefined, 'another change time');
  t.is(cache.hashOf(identityKey('/usr/bin/c', '10', '1700000000000000000', '1700000000123456789')), undefined);
  t.is(cache.hashOf(identityKey('/zzz', '1', '1', '1')), undefined);
  t.deepEqual(cache.identities(), ids);
  // many, in a table of many collisions' worth
  const many = Array.from({ length: 3000 }, (_, i) => id(`/usr/include/h${i}.h`, i));
  const big = cacheOf(many);
  t.is(big.size, 3000);
  t.true(many.every((i) => big.hashOf(keyOf(i)) === i[4]));
  t.is(IdentityCache.empty().hashOf(keyOf(ids[0]!)), undefined);
});

test('a run\'s identities replace the kept ones; past the limit the least recently used go', (t) => {
  const [a, b, c, d] = [id('/a', 1), id('/b', 1), id('/c', 1), id('/d', 1)];
  let cache = cacheOf([a], 100);
  cache = cacheOf([b], 200, undefined, cache);
  cache = cacheOf([c], 300, undefined, cache);
  t.deepEqual(cache.identities().map((i) => i[0]), ['/c', '/b', '/a'], 'the newest first');
  // a used again: its stamp is new; d is new; two fit beside this run's two
  const a2: Identity = [...a.slice(0, 4), hash('changed')] as Identity;
  const next = cacheOf([a2, d], 400, 3, cache);
  t.deepEqual(next.identities().map((i) => i[0]), ['/a', '/d', '/c']);
  t.is(next.hashOf(keyOf(a)), hash('changed'));
  t.is(next.hashOf(keyOf(b)), undefined, 'the least recently used is gone');
  // a hash that is not SHA-256 hex is not kept
  t.is(cacheOf([['/x', '1', '1', '1', 'nothex']]).size, 0);
});

test('a damaged cache file is no cache', (t) => {
  const ids = [id('/a', 1), id('/b', 2), id('/c', 3)];
  const good = IdentityCache.empty().withUsed(ids, 1);
  t.is(IdentityCache.from(good).size, 3);
  t.is(IdentityCache.from(Buffer.from('{"version": 1, "identities": []}')).size, 0);
  t.is(IdentityCache.from(good.subarray(0, 40)).size, 0, 'its table cut short');
  const slots = good.readUInt32LE(8);
  const tableEnd = 16 + 4 * slots;
  // the last record cut short: not found, no error
  const cut = IdentityCache.from(good.subarray(0, good.length - 10));
  t.is(cut.hashOf(keyOf(ids[2]!)), undefined);
  t.is(cut.hashOf(keyOf(ids[0]!)), ids[0]![4]);
  t.deepEqual(cut.identities(), ids.slice(0, 2));
  // slots pointing out of the file or into the table
  for (const wrong of [0xfffffff0, 20]) {
    const bad = Buffer.from(good);
    for (let i = 0; i < slots; i++) if (bad.readUInt32LE(16 + 4 * i) !== 0) bad.writeUInt32LE(wrong, 16 + 4 * i);
    t.is(IdentityCache.from(bad).hashOf(keyOf(ids[0]!)), undefined);
  }
  // a key's bytes changed: that key is not found, and is not mistaken for another
  const flipped = Buffer.from(good);
  flipped[tableEnd + 44 + 1] = 'b'.charCodeAt(0); // "/a..." -> "/b..."
  const f = IdentityCache.from(flipped);
  t.is(f.hashOf(keyOf(ids[0]!)), undefined);
  t.is(f.hashOf(keyOf(ids[1]!)), ids[1]![4]);
  // the whole file written again keeps what is whole
  t.is(IdentityCache.from(cut.withUsed([id('/d', 4)], 2)).size, 3);
});

test('a real file whose identity the cache keeps is not read; the index learns that identity', (t) => {
  const dir = scratchDir('uwrx-idformat-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'f');
  writeFileSync(file, 'contents');
  const st = statSync(file, { bigint: true });
  const kept: Identity = [file, `${st.size}`, `${st.mtimeNs}`, `${st.ctimeNs}`, 'a'.repeat(64)];
  const cacheFile = path.join(dir, 'hashes.bin');
  t.true(saveIdentityCache([kept], IdentityCache.empty(), cacheFile));
  const hashes = new HashCache();
  hashes.rememberKept(IdentityCache.open(cacheFile));
  t.is(hashes.realContentOf(file, file), 'a'.repeat(64));
  t.is(hashes.known, 1);
  t.is(hashes.computed, 0);
  t.deepEqual(hashes.identitiesOf(new Set([file])), [kept]);
  t.deepEqual(hashes.usedIdentities(), [kept]);
  // another file, not kept: hashed
  writeFileSync(path.join(dir, 'g'), 'other');
  t.is(hashes.realContentOf(path.join(dir, 'g'), path.join(dir, 'g')), hash('other'));
  t.is(IdentityCache.open(path.join(dir, 'missing')).size, 0);
});
