// The hashes of the real filesystem's files kept between runs (the user cache), by the
// same identity as the rebuild index (path, size, modification and change times), so a
// capture in a fresh build directory does not hash the toolchain again: libiberty's
// compiles read 381 files of the real filesystem, 220 MB of them the linker plugin's
// libraries that `ar` loads. The oldest entries (by the last run that used them) go when
// the file would grow past MAX_IDENTITIES. A file that cannot be read or is damaged is
// ignored and written anew.
//
// The file is looked up where it lies, not parsed: a run reads it whole (one read) and
// finds the few hundred files its index asks for in its hash table. A user's cache holds
// thousands of entries (the same toolchain under many build directories, test files):
// as JSON, parsed, checked and put in a map, 9,700 of them cost some 50 ms of CPU on the
// supervisor's main thread in every run, and as 50,000 strings on its heap they
// lengthened each collection after that. (A sorted file searched by halves took as long:
// its 4,000 calls of Buffer#compare with ranges.)
//
// Format (integers are unsigned 32-bit little-endian):
//   magic "uwrx-fh2" (8 bytes), slots (a power of two), records,
//   the hash table: per slot, the offset of a record from the file's start (0: none),
//     records placed at their key's hash, the next free slot on collision,
//   the records: the key's hash (keyHash: FNV-1a of its characters' low bytes), key length,
//     stamp (when a run last used it, seconds since the epoch), SHA-256 (32 bytes),
//     key (UTF-8: the escaped path, NUL, size:mtimeNs:ctimeNs).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { keepInCache, userCacheDir } from '../user-cache.js';
import { identityKey, type Identity } from './hashes.js';

const FILE = 'file-hashes-v2.bin';
const MAGIC = Buffer.from('uwrx-fh2', 'latin1');
const HEAD = MAGIC.length + 8;
/** Key hash, key length, stamp, SHA-256. */
const RECORD_HEAD = 4 + 4 + 4 + 32;
export const MAX_IDENTITIES = 100_000;

export const identityCacheFile = (): string => path.join(userCacheDir(), FILE);

/** FNV-1a (32-bit) of the low bytes of `key`'s characters. Over the string, not its
 * UTF-8 bytes: a loop over a Buffer and a byte-by-byte comparison cost some 17 us a lookup
 * while V8 interprets them, as it does after the command (compiler-tuning.ts); this and
 * one toString some 7. */
function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key.charCodeAt(i) & 0xff), 0x01000193);
  return h >>> 0;
}

/** A read cache file; lookups in its hash table, nothing decoded ahead. */
export class IdentityCache {
  private constructor(
    private readonly bytes: Buffer,
    private readonly slots: number,
    /** Records in the file (0 when it was missing or damaged). */
    readonly size: number,
  ) {}

  static empty(): IdentityCache {
    return new IdentityCache(Buffer.alloc(0), 0, 0);
  }

  /** The cache at `file`; empty when it is missing or damaged. */
  static open(file = identityCacheFile()): IdentityCache {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      return IdentityCache.empty();
    }
    return IdentityCache.from(bytes);
  }

  /** The cache in `bytes`; empty when they do not start as a cache file. A record is
   * checked when a lookup reaches it: one out of the file's bounds is not found. */
  static from(bytes: Buffer): IdentityCache {
    if (bytes.length < HEAD || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return IdentityCache.empty();
    const slots = bytes.readUInt32LE(MAGIC.length);
    const size = bytes.readUInt32LE(MAGIC.length + 4);
    const fits = slots > 0 && (slots & (slots - 1)) === 0 && size < slots && HEAD + 4 * slots <= bytes.length;
    return fits ? new IdentityCache(bytes, slots, size) : IdentityCache.empty();
  }

  /** The end of the record at `at`, -1 when it does not lie within the file. */
  private recordEnd(at: number): number {
    const b = this.bytes;
    if (at < HEAD + 4 * this.slots || at + RECORD_HEAD > b.length) return -1;
    const end = at + RECORD_HEAD + b.readUInt32LE(at + 4);
    return end <= b.length ? end : -1;
  }

  /** Where the record whose key is `key` starts, else -1. */
  private find(key: string): number {
    const b = this.bytes;
    const h = keyHash(key);
    const mask = this.slots - 1;
    for (let n = 0, i = h & mask; n < this.slots; n++, i = (i + 1) & mask) {
      const at = b.readUInt32LE(HEAD + 4 * i);
      if (at === 0) return -1;
      const end = this.recordEnd(at);
      if (end < 0) return -1;
      if (b.readUInt32LE(at) === h && b.toString('utf8', at + RECORD_HEAD, end) === key) return at;
    }
    return -1;
  }

  /** The SHA-256 (hex) kept for the identity `key` (identityKey), if any. */
  hashOf(key: string): string | undefined {
    if (this.size === 0) return undefined;
    const at = this.find(key);
    return at < 0 ? undefined : this.bytes.toString('hex', at + 12, at + 12 + 32);
  }

  /** Where each whole record starts, in the file's order. */
  private records(): number[] {
    const out: number[] = [];
    let at = HEAD + 4 * this.slots;
    for (let n = 0; n < this.size; n++) {
      const end = this.recordEnd(at);
      if (end < 0) break;
      out.push(at);
      at = end;
    }
    return out;
  }

  /** Every identity in the file, in its order. */
  identities(): Identity[] {
    return this.records().map((at): Identity => {
      const key = this.bytes.toString('utf8', at + RECORD_HEAD, this.recordEnd(at));
      const nul = key.lastIndexOf('\0');
      const [size, mtime, ctime] = key.slice(nul + 1).split(':') as [string, string, string];
      return [key.slice(0, nul), size, mtime, ctime, this.bytes.toString('hex', at + 12, at + 44)];
    });
  }

  /** This file's records with `used` (this run's identities, stamped `now`) in place of
   * theirs, the most recently used MAX_IDENTITIES (`max`) of them, as a cache file. */
  withUsed(used: readonly Identity[], now = Math.floor(Date.now() / 1000), max = MAX_IDENTITIES): Buffer {
    const b = this.bytes;
    // this run's records, each key once
    const fresh = new Map<string, { key: string; bytes: Buffer; hash: string }>();
    for (const id of used) {
      const key = identityKey(id[0], id[1], id[2], id[3]);
      if (!fresh.has(key) && /^[0-9a-f]{64}$/.test(id[4])) fresh.set(key, { key, bytes: Buffer.from(key, 'utf8'), hash: id[4] });
    }
    const mine = [...fresh.values()].slice(0, max);
    // the file's records that stay: whole, not replaced, the most recent that fit
    const replaced = new Set<number>();
    for (const r of mine) {
      const at = this.find(r.key);
      if (at >= 0) replaced.add(at);
    }
    let kept = this.records().filter((at) => !replaced.has(at));
    if (kept.length > max - mine.length) {
      // by place: the most recent first, then back in the file's order
      const stamp = (pos: number) => b.readUInt32LE(kept[pos]! + 8);
      const places = kept.map((_, pos) => pos).sort((x, y) => stamp(y) - stamp(x) || x - y);
      kept = places.slice(0, max - mine.length).sort((x, y) => x - y).map((pos) => kept[pos]!);
    }
    const count = mine.length + kept.length;
    let slots = 16;
    while (slots < 2 * count) slots *= 2;
    let bytes = HEAD + 4 * slots;
    for (const r of mine) bytes += RECORD_HEAD + r.bytes.length;
    for (const at of kept) bytes += this.recordEnd(at) - at;
    const out = Buffer.alloc(bytes);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(slots, MAGIC.length);
    out.writeUInt32LE(count, MAGIC.length + 4);
    const place = (at: number) => {
      let i = out.readUInt32LE(at) & (slots - 1);
      while (out.readUInt32LE(HEAD + 4 * i) !== 0) i = (i + 1) & (slots - 1);
      out.writeUInt32LE(at, HEAD + 4 * i);
    };
    let at = HEAD + 4 * slots;
    for (const r of mine) {
      out.writeUInt32LE(keyHash(r.key), at);
      out.writeUInt32LE(r.bytes.length, at + 4);
      out.writeUInt32LE(now, at + 8);
      out.write(r.hash, at + 12, 32, 'hex');
      r.bytes.copy(out, at + RECORD_HEAD);
      place(at);
      at += RECORD_HEAD + r.bytes.length;
    }
    for (const old of kept) {
      const end = this.recordEnd(old);
      // a damaged key hash only hides its record: lookups compare the key
      b.copy(out, at, old, end);
      place(at);
      at += end - old;
    }
    return out;
  }
}

/** Keeps `used` (this run's identities) in the cache `kept` was read from, with kept's
 * other entries; false when the file could not be written. */
export function saveIdentityCache(used: readonly Identity[], kept: IdentityCache, file = identityCacheFile()): boolean {
  return keepInCache(file, kept.withUsed(used), 0o600);
}
