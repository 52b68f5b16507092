// A small, exact X.509 certificate writer (RFC 5280, DER): the handful of fields the
// run's CA and its server certificates use, with tags and object identifiers named once
// here. Node's crypto makes the keys and the signatures; it reads certificates but does
// not write them.
import type { KeyObject } from 'node:crypto';
import { nodeCrypto } from '../crypto.js';

const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

const OID = {
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const;

/** keyUsage bits, numbered as RFC 5280 does (bit 0 is the first, most significant). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: tag, definite length, contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(TAG.sequence, ...items);
const set = (...items: Buffer[]) => tlv(TAG.set, ...items);
/** [n] EXPLICIT (constructed, context-specific). */
const explicit = (n: number, inner: Buffer) => tlv(0xa0 | n, inner);
const octetString = (bytes: Buffer) => tlv(TAG.octetString, bytes);
const bitString = (bytes: Buffer, unusedBits = 0) => tlv(TAG.bitString, Buffer.from([unusedBits]), bytes);

/** A non-negative INTEGER from its big-endian magnitude, in the shortest form. */
export function integer(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let bytes = magnitude.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(TAG.integer, bytes);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) {
    const groups: number[] = [];
    for (let v = part; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return tlv(TAG.oid, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), to the second. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = date.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, Buffer.from(digits.slice(2), 'latin1'));
  return tlv(TAG.generalizedTime, Buffer.from(digits, 'latin1'));
}

/** A bit string of named bits (keyUsage), without trailing zero bits as DER wants. */
export function namedBits(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (highest & 7));
}

export interface NameAttribute {
  type: 'commonName' | 'organizationName';
  value: string;
}

function name(attributes: NameAttribute[]): Buffer {
  return sequence(...attributes.map((a) => set(sequence(oid(OID[a.type]), tlv(TAG.utf8String, Buffer.from(a.value, 'utf8'))))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [tlv(TAG.boolean, Buffer.from([0xff]))] : []), octetString(value));
}

/** Reads one TLV at `at`: its tag, where its contents start and end. */
function readTlv(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280
 * 4.2.1.2, method 1). */
export function keyIdentifier(key: KeyObject): Buffer {
  const spki = key.export({ type: 'spki', format: 'der' });
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.start);
  const bits = readTlv(spki, algorithm.end);
  if (bits.tag !== TAG.bitString) throw new Error('subjectPublicKeyInfo without a key bit string');
  return nodeCrypto().createHash('sha1').update(spki.subarray(bits.start + 1, bits.end)).digest();
}

/** The subject Name of a certificate (DER), as encoded there: what a certificate it
 * issues must name as its issuer. */
export function subjectOf(certDer: Buffer): Buffer {
  const at = tbsFieldAt(certDer, TBS_SUBJECT);
  return certDer.subarray(at, readTlv(certDer, at).end);
}

/** The fields of a certificate's tbsCertificate after its optional version [0]. */
const TBS_VALIDITY = 3; // serialNumber, signature, issuer, then the validity
const TBS_SUBJECT = 4;

/** Where field `index` (TBS_*) of a certificate's (DER) tbsCertificate starts. */
function tbsFieldAt(certDer: Buffer, index: number): number {
  const cert = readTlv(certDer, 0);
  const tbs = readTlv(certDer, cert.start);
  let at = tbs.start;
  const first = readTlv(certDer, at);
  if (first.tag === 0xa0) at = first.end;
  for (let i = 0; i < index; i++) at = readTlv(certDer, at).end;
  return at;
}

/** The start of a certificate's validity (DER), to the second. */
export function notBeforeOf(certDer: Buffer): Date {
  const validity = readTlv(certDer, tbsFieldAt(certDer, TBS_VALIDITY));
  const t = readTlv(certDer, validity.start);
  const text = certDer.toString('latin1', t.start, t.end);
  // UTCTime's two-digit year: 1950-2049 (RFC 5280 4.1.2.5.1)
  const digits = t.tag === TAG.utcTime ? `${Number(text.slice(0, 2)) >= 50 ? '19' : '20'}${text}` : t.tag === TAG.generalizedTime ? text : undefined;
  const m = digits === undefined ? null : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(digits);
  if (!m) throw new Error('certificate without a notBefore time in DER form');
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function signatureAlgorithm(key: KeyObject): Buffer {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return sequence(oid(OID.ecdsaWithSha256));
    case 'rsa':
      return sequence(oid(OID.sha256WithRsa), tlv(TAG.null));
    default:
      throw new Error(`cannot sign certificates with a ${key.asymmetricKeyType} key`);
  }
}

export type SubjectAltName = { dns: string } | { ip: string };

function ipBytes(ip: string): Buffer {
  if (ip.includes(':')) {
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
    const h = groups(head);
    const t = groups(tail);
    const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
    const out = Buffer.alloc(16);
    all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
    return out;
  }
  return Buffer.from(ip.split('.').map(Number));
}

export interface CertificateFields {
  /** Serial number, big-endian magnitude. */
  serial: Buffer;
  subject: NameAttribute[];
  /** The issuer's name, or its subject exactly as its certificate encodes it. */
  issuer: NameAttribute[] | Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The certified key (public, or a private key whose public half is meant). */
  publicKey: KeyObject;
  /** The issuer's private key. */
  signingKey: KeyObject;
  /** basicConstraints: a CA (critical) or an end entity. */
  ca: boolean;
  keyUsage: number[];
  serverAuth?: boolean;
  altNames?: SubjectAltName[];
  /** The issuer's key identifier (authorityKeyIdentifier); the CA's own is computed. */
  authorityKeyId?: Buffer;
}

/** A signed certificate, DER. */
export function certificateDer(f: CertificateFields): Buffer {
  const publicKey = f.publicKey.type === 'private' ? nodeCrypto().createPublicKey(f.publicKey) : f.publicKey;
  const algorithm = signatureAlgorithm(f.signingKey);
  const extensions = [
    extension(OID.basicConstraints, f.ca, f.ca ? sequence(tlv(TAG.boolean, Buffer.from([0xff]))) : sequence()),
    extension(OID.keyUsage, true, namedBits(f.keyUsage)),
    ...(f.serverAuth ? [extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth)))] : []),
    ...(f.altNames?.length
      ? [extension(OID.subjectAltName, false, sequence(...f.altNames.map((n) => ('dns' in n ? tlv(0x82, Buffer.from(n.dns, 'latin1')) : tlv(0x87, ipBytes(n.ip))))))]
      : []),
    ...(f.ca ? [extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(publicKey)))] : []),
    ...(f.authorityKeyId ? [extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, f.authorityKeyId)))] : []),
  ];
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(f.serial),
    algorithm,
    Buffer.isBuffer(f.issuer) ? f.issuer : name(f.issuer),
    sequence(time(f.notBefore), time(f.notAfter)),
    name(f.subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions)),
  );
  // ECDSA signatures come DER-encoded (Node's default), as X.509 wants them
  const signature = nodeCrypto().sign('sha256', tbs, f.signingKey);
  return sequence(tbs, algorithm, bitString(signature));
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
