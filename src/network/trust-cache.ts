// The sandbox's trust stores with the run's CA added (the host's CA bundle and its JVM
// keystores: some 400 KB read, changed and written by every run) kept in the user cache
// (src/user-cache.ts) under a name made of what they are made of: the host file's
// identity and the CA certificate. A run then copies the cached file into its run
// directory (a copy in the kernel) instead of reading the host's file, adding the CA
// (the keystore's digest is a SHA-1 over all of it) and writing the result. A copy, never
// the cached file itself: what the sandbox is given must not be shared with other runs.
import { copyFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../crypto.js';
import { keepInCache, pruneCache, userCacheDir } from '../user-cache.js';

/** Cached trust stores kept: a new CA or a host update makes new ones. */
const KEPT_TRUST_FILES = 8;

/** Writes `target` as `make()` would: from the cache when it holds the bytes made for the
 * same `kind`, host file (by identity: device, inode, size, modification and change
 * times, as a package update changes them) and CA certificate; otherwise made, written
 * and kept there. `make` reads the host file: its errors are thrown as they were. */
export function writeTrustStore(kind: string, hostFile: string, caCertPem: string, target: string, make: () => Buffer | string): void {
  let cached: string | undefined;
  try {
    const st = statSync(hostFile, { bigint: true });
    const key = sha256([kind, hostFile, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':'), '\n', caCertPem).toString('hex').slice(0, 32);
    cached = path.join(userCacheDir(), `trust-${kind}-${key}`);
    copyFileSync(cached, target);
    return;
  } catch {
    // not cached (or no cache): made below
  }
  const bytes = make();
  writeFileSync(target, bytes);
  if (cached && keepInCache(cached, bytes)) pruneCache('trust-', KEPT_TRUST_FILES);
}
