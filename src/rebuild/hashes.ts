// Content hashes of file versions, each computed once per run: a stored version never
// changes, and a live file is the same version while its inode, size and times are.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, type BigIntStats } from 'node:fs';

export type Kind = 'file' | 'dir' | 'other';

export function kindOf(st: { isFile(): boolean; isDirectory(): boolean }): Kind {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

export class HashCache {
  private readonly hashes = new Map<string, string>();
  /** Files hashed so far (each version once). */
  computed = 0;

  /** SHA-256 (hex) of the file `file` (followed if a link), "dir" for a directory;
   * null when it does not exist. `st`: its stat when the caller has it. */
  contentOf(file: string | Buffer, st?: BigIntStats | null): string | null {
    const s = st === undefined ? statOrNull(file) : st;
    if (!s) return null;
    if (s.isDirectory()) return 'dir';
    const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    const known = this.hashes.get(key);
    if (known !== undefined) return known;
    let hash: string;
    try {
      hash = createHash('sha256').update(readFileSync(file)).digest('hex');
    } catch {
      return null;
    }
    this.computed++;
    this.hashes.set(key, hash);
    return hash;
  }
}

export function statOrNull(file: string | Buffer): BigIntStats | null {
  try {
    // most absent paths are failed probes: no exception for them
    return statSync(file, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** SHA-256 of a directory's sorted entry names (NUL-separated); null when unreadable. */
export function listingHash(dir: string | Buffer): string | null {
  let names: Buffer[];
  try {
    names = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return null;
  }
  names.sort(Buffer.compare);
  const h = createHash('sha256');
  for (const n of names) h.update(n).update('\0');
  return h.digest('hex');
}
