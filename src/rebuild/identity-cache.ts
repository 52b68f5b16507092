// The hashes of the real filesystem's files kept between runs (the user cache), by the
// same identity as the rebuild index (path, size, modification and change times), so a
// capture in a fresh build directory does not hash the toolchain again: libiberty's
// compiles read 381 files of the real filesystem, 220 MB of them the linker plugin's
// libraries that `ar` loads. Entries used most recently come first; the oldest go when
// the file would grow past MAX_IDENTITIES. A file that cannot be read or parsed is
// ignored and written anew.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { keepInCache, userCacheDir } from '../user-cache.js';
import type { Identity } from './hashes.js';

const FILE = 'file-hashes-v1.json';
const MAX_IDENTITIES = 100_000;

export const identityCacheFile = (): string => path.join(userCacheDir(), FILE);

function isIdentity(v: unknown): v is Identity {
  return Array.isArray(v) && v.length === 5 && v.every((x) => typeof x === 'string') && /^[0-9a-f]{64}$/.test(v[4] as string);
}

/** The identities kept by earlier runs; none when the cache is missing or unreadable. */
export function loadIdentityCache(): Identity[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(identityCacheFile(), 'utf8'));
  } catch {
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const { version, identities } = parsed as { version?: unknown; identities?: unknown };
  return version === 1 && Array.isArray(identities) ? identities.filter(isIdentity) : [];
}

/** Keeps `used` (this run's, first) ahead of the earlier `kept` ones. */
export function saveIdentityCache(used: readonly Identity[], kept: readonly Identity[]): boolean {
  const key = (id: Identity) => id.slice(0, 4).join('\0');
  const seen = new Set<string>();
  const out: Identity[] = [];
  for (const id of [...used, ...kept]) {
    const k = key(id);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(id);
    if (out.length === MAX_IDENTITIES) break;
  }
  return keepInCache(identityCacheFile(), JSON.stringify({ version: 1, identities: out }), 0o600);
}
