// Hierarchical deterministic randomness (DESIGN.md section 4), the TypeScript half.
// Same construction as src/native/common/prng.h (read it for the details); both are
// checked against test/fixtures/prng-vectors.json. ChaCha20 blocks come from Node's
// OpenSSL 'chacha20' cipher, whose 16-byte IV is words 12-15 of the ChaCha state:
// here a 64-bit little-endian block counter followed by a 64-bit nonce.
import type { Cipher } from 'node:crypto';
import { nodeCrypto, randomBytes } from '../crypto.js';
import { promises as fs, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { errnoText } from '../fs.js';

export const SEED_BYTES = 32;

/** Derivation labels; the numbers are shared with prng.h and must never change. */
export const PrngLabel = {
  process: 1,
  thread: 2,
  getrandom: 3,
  atRandom: 4,
  devUrandom: 5,
  devRandom: 6,
  clock: 7,
} as const;
export type PrngLabel = (typeof PrngLabel)[keyof typeof PrngLabel];

function checkSeed(seed: Uint8Array): void {
  if (seed.length !== SEED_BYTES) throw new RangeError(`seed must be ${SEED_BYTES} bytes, got ${seed.length}`);
}

function u32(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what} must be a u32, got ${n}`);
  return n;
}

function keystream(key: Uint8Array, counter: bigint, nonce: bigint): Cipher {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(BigInt.asUintN(64, counter), 0);
  iv.writeBigUInt64LE(BigInt.asUintN(64, nonce), 8);
  return nodeCrypto().createCipheriv('chacha20', key, iv);
}

/** One 64-byte ChaCha20 block (20 rounds) for a 32-byte key, 64-bit counter and nonce. */
export function chacha20Block(key: Uint8Array, counter: bigint, nonce: bigint): Buffer {
  checkSeed(key);
  return keystream(key, counter, nonce).update(Buffer.alloc(64));
}

/** derive(parent, label, index): the first 32 bytes of block 0 with nonce (label, index). */
export function deriveSeed(parent: Uint8Array, label: number, index: number): Buffer {
  const nonce = BigInt(u32(label, 'label')) | (BigInt(u32(index, 'index')) << 32n);
  if (label === 0) throw new RangeError('label 0 is reserved for keystream blocks');
  return chacha20Block(parent, 0n, nonce).subarray(0, SEED_BYTES);
}

/** Seed of the process with this logical pid, from its parent's seed (root seed for pid 1's children). */
export function processSeed(parentSeed: Uint8Array, logicalPid: number): Buffer {
  return deriveSeed(parentSeed, PrngLabel.process, logicalPid);
}

/** Seed of a thread of a process; ordinal 0 is the main thread. */
export function threadSeed(processSeedBytes: Uint8Array, ordinal: number): Buffer {
  return deriveSeed(processSeedBytes, PrngLabel.thread, ordinal);
}

/** An endless deterministic byte stream: stream `kind` number `index` of a seed. */
export class PrngStream {
  #cipher: Cipher;
  #position = 0;

  constructor(seed: Uint8Array, kind: number, index: number) {
    this.#cipher = keystream(deriveSeed(seed, kind, index), 0n, 0n);
  }

  read(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`cannot read ${n} bytes`);
    this.#position += n;
    return this.#cipher.update(Buffer.alloc(n));
  }

  /** Bytes read so far. */
  get position(): number {
    return this.#position;
  }
}

/** The 16 AT_RANDOM bytes of a process's exec number `execOrdinal` (0 = first). */
export function atRandomBytes(processSeedBytes: Uint8Array, execOrdinal: number): Buffer {
  return new PrngStream(processSeedBytes, PrngLabel.atRandom, execOrdinal).read(16);
}

/** The first 8 bytes (little-endian) of a process's clock stream: the offset its clocks
 * start at past its parent's (src/reproducibility/time.ts forkClock). */
export function clockBits(processSeedBytes: Uint8Array): bigint {
  return new PrngStream(processSeedBytes, PrngLabel.clock, 0).read(8).readBigUInt64LE(0);
}

export function freshSeed(): Buffer {
  return randomBytes(SEED_BYTES);
}

export function formatSeed(seed: Uint8Array): string {
  checkSeed(seed);
  return Buffer.from(seed).toString('hex');
}

export function parseSeed(text: string, source = 'seed'): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new UsageError(`${source}: expected ${SEED_BYTES * 2} hex digits`);
  return Buffer.from(hex, 'hex');
}

export const SEED_FILE = 'seed.txt';

/** seed.txt of an attempt: 64 lowercase hex digits and a newline. */
export async function writeSeedFile(attemptDir: string, seed: Uint8Array): Promise<void> {
  // a few bytes: without the thread pool's round trip (record/layout.ts)
  writeFileSync(join(attemptDir, SEED_FILE), formatSeed(seed) + '\n');
}

export async function readSeedFile(attemptDir: string): Promise<Buffer> {
  const path = join(attemptDir, SEED_FILE);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${errnoText(err)}`);
  }
  return parseSeed(text, path);
}
