// The run CA kept between runs in the user cache (src/user-cache.ts): a fresh run takes
// it instead of making two keys and signing a certificate before its command starts.
// Each attempt still records the CA it used (ca.pem, net/_keys.pem) and a replay uses the
// replayed attempt's, so what a record holds is unchanged; only fresh attempts made by
// one user share a CA.
//
// The file holds the CA's private key. It is used only when it is a regular file of this
// user that no one else may read or write, when its certificate is a CA certificate
// that certifies its key, and when that certificate is valid over every date the run's
// certificates carry (certificateSpan). Anything else (missing, damaged, foreign,
// too permissive, expired, not yet valid) means fresh keys, which then replace it.
//
//   run-ca.pem   the CA's key and the server certificates' key (PKCS#8 PEM, in that
//                order, as net/_keys.pem), then the CA certificate
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { keepInCache, userCacheDir } from '../user-cache.js';
import { certificateSpan, keysToPem, pemBlocks, type Authority } from './ca.js';

export const CA_CACHE_FILE = 'run-ca.pem';

/** A cached authority and the span its certificate is valid for. */
export interface CachedAuthority extends Authority {
  validFromMs: number;
  validToMs: number;
}

export const caCacheFile = (): string => path.join(userCacheDir(), CA_CACHE_FILE);

/** The cached authority, or undefined when there is none that may be used (see above;
 * whether it serves a given run is `servesRun`). Never throws. */
export function readCachedAuthority(file = caCacheFile()): CachedAuthority | undefined {
  try {
    const text = readPrivateFile(file);
    if (text === undefined) return undefined;
    const blocks = pemBlocks(text);
    const keys = blocks.filter((b) => b.label === 'PRIVATE KEY');
    const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
    if (keys.length !== 2 || certs.length !== 1) return undefined;
    const caKeyPem = keys[0]!.pem;
    const leafKeyPem = keys[1]!.pem;
    const caCertPem = certs[0]!.pem;
    const cert = new X509Certificate(caCertPem);
    createPrivateKey(leafKeyPem);
    if (!cert.ca || !cert.checkPrivateKey(createPrivateKey(caKeyPem))) return undefined;
    const validFromMs = Date.parse(cert.validFrom);
    const validToMs = Date.parse(cert.validTo);
    if (!Number.isFinite(validFromMs) || !Number.isFinite(validToMs)) return undefined;
    return { keys: { caKeyPem, leafKeyPem }, caCertPem, validFromMs, validToMs };
  } catch {
    return undefined;
  }
}

/** Whether `cached` may be the CA of a run whose clock starts at `notBeforeMs`. */
export function servesRun(cached: CachedAuthority, notBeforeMs: number): boolean {
  const span = certificateSpan(notBeforeMs);
  return cached.validFromMs <= span.fromMs && cached.validToMs >= span.toMs;
}

/** Keeps `authority` for the next runs, readable by this user only; false when the
 * cache cannot be written (the next run then makes its own). */
export function keepAuthority(authority: Authority, file = caCacheFile()): boolean {
  return keepInCache(file, keysToPem(authority.keys) + authority.caCertPem.trimEnd() + '\n', 0o600);
}

/** The file's text if it is a regular file owned by this user with no permission for
 * anyone else; undefined otherwise. The checks are on the opened file itself. */
function readPrivateFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) return undefined;
    return readFileSync(fd, 'latin1');
  } finally {
    closeSync(fd);
  }
}
