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
//   run-ca.pem   `# uwrx run CA: valid <from>-<to>, sha256 <hex>` (a line), the CA's
//                key and the server certificates' key (PKCS#8 PEM, in that order, as
//                net/_keys.pem), then the CA certificate
//
// The first line is written for an authority that was checked (or just made): the
// certificate's validity (ms since the epoch) and a digest of those dates and of the
// rest of the file, so that a run reads the file without OpenSSL parsing its keys and
// its certificate (some 4 ms of CPU before every command). A file without that line,
// or whose digest does not match, is checked in full as above, and gets the line when
// it passes.
import type { X509Certificate } from 'node:crypto';
import { nodeCrypto, sha256 } from '../crypto.js';
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
    const marked = markedAuthority(text);
    if (marked) return marked;
    const checked = checkedAuthority(text);
    // one full check per file: the next runs read the mark
    if (checked) keepAuthority(checked, file);
    return checked;
  } catch {
    return undefined;
  }
}

const MARK = /^# uwrx run CA: valid (\d+)-(\d+), sha256 ([0-9a-f]{64})\n/;

/** The authority of a file whose first line vouches for the rest; undefined when there
 * is no such line or the rest is not what it was written for. */
function markedAuthority(text: string): CachedAuthority | undefined {
  const m = MARK.exec(text);
  if (!m) return undefined;
  const rest = text.slice(m[0].length);
  if (markDigest(m[1]!, m[2]!, rest) !== m[3]) return undefined;
  const parts = authorityParts(rest);
  return parts && { ...parts, validFromMs: Number(m[1]), validToMs: Number(m[2]) };
}

/** The authority of a file checked in full by OpenSSL: the certificate is a CA's and
 * certifies the CA key, and the server key parses. */
function checkedAuthority(text: string): CachedAuthority | undefined {
  const parts = authorityParts(text);
  if (!parts) return undefined;
  const { X509Certificate, createPrivateKey } = nodeCrypto();
  const cert = new X509Certificate(parts.caCertPem);
  createPrivateKey(parts.keys.leafKeyPem);
  if (!cert.ca || !cert.checkPrivateKey(createPrivateKey(parts.keys.caKeyPem))) return undefined;
  const span = validity(cert);
  return span && { ...parts, ...span };
}

/** The certificate's validity in ms since the epoch; undefined when its dates do not
 * parse. */
function validity(cert: X509Certificate): { validFromMs: number; validToMs: number } | undefined {
  const validFromMs = Date.parse(cert.validFrom);
  const validToMs = Date.parse(cert.validTo);
  return Number.isFinite(validFromMs) && Number.isFinite(validToMs) ? { validFromMs, validToMs } : undefined;
}

/** The two keys and the certificate, when the text holds exactly these blocks. */
function authorityParts(text: string): Authority | undefined {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => b.label === 'PRIVATE KEY');
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (keys.length !== 2 || certs.length !== 1) return undefined;
  return { keys: { caKeyPem: keys[0]!.pem, leafKeyPem: keys[1]!.pem }, caCertPem: certs[0]!.pem };
}

/** What the mark's digest covers: its dates and the rest of the file. */
function markDigest(from: string, to: string, rest: string): string {
  return sha256(`${from}-${to}\n`, Buffer.from(rest, 'latin1')).toString('hex');
}

/** Whether `cached` may be the CA of a run whose clock starts at `notBeforeMs`. */
export function servesRun(cached: CachedAuthority, notBeforeMs: number): boolean {
  const span = certificateSpan(notBeforeMs);
  return cached.validFromMs <= span.fromMs && cached.validToMs >= span.toMs;
}

/** Keeps `authority` for the next runs, readable by this user only, with the line that
 * lets them skip the full check (its dates from the certificate: a run keeps an
 * authority it made or checked); false when the cache cannot be written (the
 * next run then makes its own). */
export function keepAuthority(authority: Authority | CachedAuthority, file = caCacheFile()): boolean {
  let span: { validFromMs: number; validToMs: number } | undefined;
  try {
    // a checked authority brings its dates; a new one's are parsed here
    span = 'validFromMs' in authority ? authority : validity(new (nodeCrypto().X509Certificate)(authority.caCertPem));
  } catch {
    return false;
  }
  // the mark holds whole, non-negative numbers
  if (!span || !Number.isSafeInteger(span.validFromMs) || !Number.isSafeInteger(span.validToMs) || span.validFromMs < 0) return false;
  const rest = keysToPem(authority.keys) + authority.caCertPem.trimEnd() + '\n';
  const [from, to] = [String(span.validFromMs), String(span.validToMs)];
  const mark = `# uwrx run CA: valid ${from}-${to}, sha256 ${markDigest(from, to, rest)}\n`;
  return keepInCache(file, mark + rest, 0o600);
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
