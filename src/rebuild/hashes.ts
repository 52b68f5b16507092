// Content hashes of file versions, each computed once per run: a stored version never
// changes, and a live file is the same version while its inode, size and times are.
// Across runs, files of the real filesystem (the toolchain, the sources) are known by
// identity: path, size, modification and change times, recorded with their hash in the
// rebuild index. A replay that finds the same identity takes the hash without reading
// the file (a change of contents moves the change time, which no program can set).
import { nodeCrypto } from '../crypto.js';
import { closeSync, openSync, readdirSync, readSync, statSync, type BigIntStats } from 'node:fs';
import type { IdentityCache } from './identity-cache.js';

export type Kind = 'file' | 'dir' | 'other';

/** A file known by identity: [path (escaped), size, mtime ns, ctime ns, SHA-256 hex]. */
export type Identity = [path: string, size: string, mtimeNs: string, ctimeNs: string, hash: string];

/** A file changed this recently may change again within the same tick of the change
 * time's clock (which is coarse): its identity is not recorded. */
const SETTLED_NS = 2_000_000_000n;

export function kindOf(st: { isFile(): boolean; isDirectory(): boolean }): Kind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

/** What an identity is looked up by: the escaped path, NUL, size:mtimeNs:ctimeNs. */
export const identityKey = (file: string, size: bigint | string, mtimeNs: bigint | string, ctimeNs: bigint | string): string =>
  `${file}\0${size}:${mtimeNs}:${ctimeNs}`;
const keyOf = (file: string, st: BigIntStats) => identityKey(file, st.size, st.mtimeNs, st.ctimeNs);

export class HashCache {
  private readonly hashes = new Map<string, string>();
  private readonly byIdentity = new Map<string, Identity>();
  /** The user cache of identities, looked up where byIdentity has none. */
  private kept: IdentityCache | undefined;
  /** Files hashed so far (each version once). */
  computed = 0;
  /** Files whose hash came from a recorded identity. */
  known = 0;
  /** Identities of real files this run hashed or found recorded, in that order. */
  private readonly used = new Set<Identity>();
  /** Identities this run added. */
  added = 0;

  /** SHA-256 (hex) of the file `file` (followed if a link), "dir" for a directory,
   * "char-device N" (or block-) for a device (N: its device number); null when it does not exist or
   * is a fifo or socket. `st`: its stat when the caller has it. */
  contentOf(file: string | Buffer, st?: BigIntStats | null): string | null {
    const s = st === undefined ? statOrNull(file) : st;
    if (!s) return null;
    if (s.isDirectory()) return 'dir';
    // a device or a fifo is never read: /dev/urandom (which gcc -flto reads for its seed)
    // and /dev/zero never end, and a fifo's data is gone once read. A device stands for
    // itself; what came through a fifo or socket is in no record
    if (s.isCharacterDevice() || s.isBlockDevice()) return `${s.isCharacterDevice() ? 'char' : 'block'}-device ${s.rdev}`;
    if (!s.isFile()) return null;
    const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    const known = this.hashes.get(key);
    if (known !== undefined) return known;
    let hash: string;
    try {
      hash = sha256OfFile(file);
    } catch {
      return null;
    }
    this.computed++;
    this.hashes.set(key, hash);
    return hash;
  }

  /** Identities recorded by an earlier run. */
  remember(identities: readonly Identity[]): void {
    for (const id of identities) this.byIdentity.set(identityKey(id[0], id[1], id[2], id[3]), id);
  }

  /** The identities kept between runs (the user cache), looked up one by one. */
  rememberKept(kept: IdentityCache): void {
    this.kept = kept;
  }

  /** The identity of `file` as `st` gives it, when recorded or kept. */
  private identityOf(file: string, st: BigIntStats): Identity | undefined {
    const key = keyOf(file, st);
    const id = this.byIdentity.get(key);
    if (id !== undefined || this.kept === undefined) return id;
    const hash = this.kept.hashOf(key);
    if (hash === undefined) return undefined;
    const found: Identity = [file, `${st.size}`, `${st.mtimeNs}`, `${st.ctimeNs}`, hash];
    this.byIdentity.set(key, found);
    return found;
  }

  /** The hash of `live` (the file at `file` now, through the sandbox's root), from its
   * recorded identity when it has not changed since. */
  liveContentOf(file: string, live: string | Buffer, st: BigIntStats): string | null {
    if (st.isFile()) {
      const id = this.identityOf(file, st);
      if (id) {
        this.known++;
        return id[4];
      }
    }
    return this.contentOf(live, st);
  }

  /** The hash of `file` of the real filesystem, its identity recorded when settled. */
  realContentOf(file: string, host: string): string | null {
    const before = statOrNull(host);
    if (!before?.isFile()) return this.contentOf(host, before);
    const id = this.identityOf(file, before);
    if (id) {
      this.known++;
      this.used.add(id);
      return id[4];
    }
    const hash = this.contentOf(host, before);
    const after = statOrNull(host);
    const settled = BigInt(Date.now()) * 1_000_000n - before.ctimeNs > SETTLED_NS;
    if (hash !== null && settled && after && keyOf(file, after) === keyOf(file, before)) {
      const added: Identity = [file, `${before.size}`, `${before.mtimeNs}`, `${before.ctimeNs}`, hash];
      this.byIdentity.set(keyOf(file, before), added);
      this.used.add(added);
      this.added++;
    }
    return hash;
  }

  /** The identities of real files this run hashed or found recorded. */
  usedIdentities(): Identity[] {
    return [...this.used];
  }

  /** The identities of these paths, for the index. */
  identitiesOf(paths: ReadonlySet<string>): Identity[] {
    return [...this.byIdentity.values()].filter((id) => paths.has(id[0])).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
}

/** Read in pieces into one reused buffer: the toolchain's executables and libraries are
 * tens of MB each, and reading them whole made them the supervisor's peak memory. */
const HASH_CHUNK = Buffer.allocUnsafe(1 << 20);

function sha256OfFile(file: string | Buffer): string {
  const h = nodeCrypto().createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, HASH_CHUNK, 0, HASH_CHUNK.length, null);
      if (n === 0) break;
      h.update(HASH_CHUNK.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export function statOrNull(file: string | Buffer): BigIntStats | null {
  try {
    // most absent paths are failed probes: no exception for them
    return statSync(file, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** SHA-256 of a directory's sorted entry names (NUL-separated), without the names in
 * `absent` (hidden inside the sandbox); null when unreadable. */
export function listingHash(dir: string | Buffer, absent: ReadonlySet<string> = new Set()): string | null {
  let names: Buffer[];
  try {
    names = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return null;
  }
  if (absent.size > 0) names = names.filter((n) => !absent.has(n.toString()));
  names.sort(Buffer.compare);
  const h = nodeCrypto().createHash('sha256');
  for (const n of names) h.update(n).update('\0');
  return h.digest('hex');
}
