import test from 'ava';
import { readFile } from 'node:fs/promises';
import { scratchDir } from './helpers/uwrx.js';
import { join } from 'node:path';
import {
  PrngLabel,
  PrngStream,
  atRandomBytes,
  chacha20Block,
  deriveSeed,
  formatSeed,
  freshSeed,
  parseSeed,
  processSeed,
  readSeedFile,
  threadSeed,
  writeSeedFile,
} from '../src/reproducibility/prng.js';
import { askDriver, buildDriver, repoRoot } from './native/cc.js';

interface Vectors {
  labels: Record<string, number>;
  rootSeed: string;
  chacha20: { source: string; key: string; counter: string; nonce: string; block: string }[];
  derivations: { what: string; parent: string; label: number; index: number; seed: string }[];
  streams: { what: string; seed: string; kind: number; index: number; skip: number; length: number; bytes: string }[];
}

const vectors: Vectors = JSON.parse(await readFile(join(repoRoot, 'test/fixtures/prng-vectors.json'), 'utf8'));
const hex = (s: string) => Buffer.from(s, 'hex');
const driver = buildDriver('prng_driver', ['test/native/prng_driver.c', 'src/native/common/prng.c']);

test('labels are the ones the C header uses', (t) => {
  t.deepEqual(vectors.labels, { ...PrngLabel });
});

test('TypeScript ChaCha20 reproduces the published keystream blocks', (t) => {
  for (const v of vectors.chacha20)
    t.is(chacha20Block(hex(v.key), BigInt(v.counter), BigInt(v.nonce)).toString('hex'), v.block, v.source);
});

test('C ChaCha20 reproduces the published keystream blocks', (t) => {
  const got = askDriver(driver, vectors.chacha20.map((v) => `block ${v.key} ${v.counter} ${v.nonce}`));
  t.deepEqual(got, vectors.chacha20.map((v) => v.block));
});

test('TypeScript derivations and streams match the shared vectors', (t) => {
  for (const d of vectors.derivations) t.is(deriveSeed(hex(d.parent), d.label, d.index).toString('hex'), d.seed, d.what);
  for (const s of vectors.streams) {
    const stream = new PrngStream(hex(s.seed), s.kind, s.index);
    stream.read(s.skip);
    // Uneven reads must give the same bytes as one read.
    const parts: Buffer[] = [];
    for (let left = s.length, n = 1; left > 0; n = n * 3 + 1) {
      parts.push(stream.read(Math.min(n, left)));
      left -= Math.min(n, left);
    }
    t.is(Buffer.concat(parts).toString('hex'), s.bytes, s.what);
    t.is(stream.position, s.skip + s.length);
  }
});

test('C derivations and streams match the shared vectors, whatever the read sizes', (t) => {
  t.deepEqual(
    askDriver(driver, vectors.derivations.map((d) => `derive ${d.parent} ${d.label} ${d.index}`)),
    vectors.derivations.map((d) => d.seed),
  );
  for (const chunk of [1, 7, 64, 100]) {
    const got = askDriver(driver, vectors.streams.map((s) => `stream ${s.seed} ${s.kind} ${s.index} ${s.skip} ${s.length} ${chunk}`));
    t.deepEqual(got, vectors.streams.map((s) => s.bytes), `chunk ${chunk}`);
  }
});

test('the hierarchy: process seeds follow the tree, threads and streams are independent', (t) => {
  const root = hex(vectors.rootSeed);
  const p2 = processSeed(root, 2);
  t.is(p2.toString('hex'), vectors.derivations[0]!.seed);
  t.is(processSeed(p2, 3).toString('hex'), vectors.derivations[1]!.seed);
  // Same pid under another parent, or another pid under the same parent: other seeds.
  const seeds = [p2, processSeed(root, 3), processSeed(p2, 3), processSeed(p2, 4), threadSeed(p2, 0), threadSeed(p2, 1)];
  t.is(new Set(seeds.map((s) => s.toString('hex'))).size, seeds.length);
  t.not(atRandomBytes(p2, 0).toString('hex'), atRandomBytes(p2, 1).toString('hex'));
  t.is(atRandomBytes(p2, 0).toString('hex'), vectors.streams[2]!.bytes);
  // Long streams stay deterministic (8 MiB, as `dd if=/dev/urandom bs=1M count=8` reads).
  const a = new PrngStream(p2, PrngLabel.devUrandom, 0);
  const b = new PrngStream(p2, PrngLabel.devUrandom, 0);
  let equal = true;
  for (let i = 0; i < 8; i++) equal &&= a.read(1 << 20).equals(b.read(1 << 20));
  t.true(equal);
  t.not(new PrngStream(p2, PrngLabel.devUrandom, 1).read(32).toString('hex'), new PrngStream(p2, PrngLabel.devRandom, 1).read(32).toString('hex'));
});

test('the C per-process API hands out the streams the construction defines', (t) => {
  const root = hex(vectors.rootSeed);
  const [line] = askDriver(driver, [`proc ${vectors.rootSeed} 2`]);
  const p = processSeed(root, 2);
  const expected = [
    atRandomBytes(p, 0),
    atRandomBytes(p, 1),
    new PrngStream(threadSeed(p, 0), PrngLabel.getrandom, 0).read(16),
    new PrngStream(threadSeed(p, 1), PrngLabel.getrandom, 0).read(16),
    new PrngStream(p, PrngLabel.devUrandom, 0).read(16),
    new PrngStream(p, PrngLabel.devUrandom, 1).read(16),
    new PrngStream(p, PrngLabel.devRandom, 0).read(16),
  ];
  t.is(line, expected.map((b) => b.toString('hex')).join(' '));
});

test('seed.txt round trip, and a clear error for a bad seed', async (t) => {
  const dir = scratchDir('uwrx-seed-');
  const seed = freshSeed();
  await writeSeedFile(dir, seed);
  t.is(await readFile(join(dir, 'seed.txt'), 'utf8'), formatSeed(seed) + '\n');
  t.true((await readSeedFile(dir)).equals(seed));
  t.throws(() => parseSeed('abc', 'seed.txt'), { message: 'seed.txt: expected 64 hex digits' });
  await t.throwsAsync(readSeedFile(join(dir, 'missing')), { message: /cannot read .*seed\.txt: ENOENT/ });
});

test('C generator throughput', (t) => {
  const [mbps] = askDriver(driver, ['bench 32']);
  t.log(`uwrx_stream_read: ${mbps} MB/s`);
  t.true(Number(mbps) > 1);
});
