// Java's trust store. The JVM ignores the PEM bundles and the CA variables: it trusts the
// certificates of its `cacerts` keystore, which Debian, Ubuntu and Fedora keep in the
// JKS format. A run's copy is the host's keystore with the run's CA appended as one more
// trusted-certificate entry, bound over the host's file inside the sandbox.
//
// JKS, as the JDK reads it (all integers big-endian):
//   u32 magic 0xFEEDFEED, u32 version 2, u32 entry count,
//   entries: u32 tag (2: trusted certificate), alias (u16 length + modified UTF-8),
//            u64 creation time (ms), certificate type ("X.509" as the alias),
//            u32 length + DER,
//   SHA-1 over (password as UTF-16BE, "Mighty Aphrodite", everything before the digest).
// Entries are appended without parsing the ones there: only the count and the digest
// change.
import { sha1 } from '../crypto.js';

const JKS_MAGIC = 0xfeedfeed;
const JKS_VERSION = 2;
const TRUSTED_CERT = 2;
const DIGEST_BYTES = 20;
/** The password every distribution's `cacerts` uses (the JDK's default). */
export const JAVA_CACERTS_PASSWORD = 'changeit';

/** Where distributions keep the JVM's system keystore. */
export const JAVA_KEYSTORE_PATHS = [
  '/etc/ssl/certs/java/cacerts',
  '/etc/pki/ca-trust/extracted/java/cacerts',
  '/etc/pki/java/cacerts',
];

export function isJks(bytes: Buffer): boolean {
  return bytes.length >= 12 + DIGEST_BYTES && bytes.readUInt32BE(0) === JKS_MAGIC && bytes.readUInt32BE(4) === JKS_VERSION;
}

function javaUtf(text: string): Buffer {
  // aliases and type names here are ASCII, where modified UTF-8 is plain UTF-8
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function digest(password: string, body: Buffer): Buffer {
  return sha1(Buffer.from(password, 'utf16le').swap16(), 'Mighty Aphrodite', body);
}

/** The keystore `jks` with `certDer` added as trusted certificate `alias`; the digest is
 * made with `password`. Throws when `jks` is not a JKS keystore. */
export function withTrustedCert(jks: Buffer, alias: string, certDer: Buffer, createdMs: number, password = JAVA_CACERTS_PASSWORD): Buffer {
  if (!isJks(jks)) throw new Error('not a JKS keystore');
  const header = Buffer.alloc(12);
  header.writeUInt32BE(JKS_MAGIC, 0);
  header.writeUInt32BE(JKS_VERSION, 4);
  header.writeUInt32BE(jks.readUInt32BE(8) + 1, 8);
  const entry = Buffer.alloc(4 + 8);
  entry.writeUInt32BE(TRUSTED_CERT, 0);
  const created = Buffer.alloc(8);
  created.writeBigUInt64BE(BigInt(createdMs));
  const certLength = Buffer.alloc(4);
  certLength.writeUInt32BE(certDer.length);
  const body = Buffer.concat([
    header,
    jks.subarray(12, jks.length - DIGEST_BYTES),
    entry.subarray(0, 4),
    javaUtf(alias),
    created,
    javaUtf('X.509'),
    certLength,
    certDer,
  ]);
  return Buffer.concat([body, digest(password, body)]);
}

/** Whether the keystore's digest matches `password` (what `keytool -storepass` checks). */
export function jksDigestMatches(jks: Buffer, password = JAVA_CACERTS_PASSWORD): boolean {
  if (!isJks(jks)) return false;
  const body = jks.subarray(0, jks.length - DIGEST_BYTES);
  return digest(password, body).equals(jks.subarray(jks.length - DIGEST_BYTES));
}
