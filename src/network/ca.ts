// The attempt's certificate authority and the per-domain certificates it signs.
//
// Keys are ECDSA P-256: generating one takes about a millisecond (an RSA 2048 key took
// ~330 ms, most of a short run's start-up), and every TLS client in use speaks
// ECDHE-ECDSA. The certificates are written by src/network/x509.ts and signed by Node's
// crypto. ECDSA signatures are randomized, so a replay reuses the replayed attempt's
// certificates (ca.pem, net/<domain>/cert.pem) with its keys (net/_keys.pem) rather
// than signing again: the sandbox sees the same bytes. Records made with RSA keys replay
// the same way.
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { nodeCrypto, sha256 } from '../crypto.js';
import { certificateDer, keyIdentifier, KEY_USAGE, subjectOf, toPem, type NameAttribute } from './x509.js';


export interface CaKeys {
  caKeyPem: string;
  leafKeyPem: string;
}

export interface Authority {
  keys: CaKeys;
  caCertPem: string;
}

const DAY_MS = 24 * 3600 * 1000;
/** Validity of the certificates of a run whose clock starts at `notBefore`: the CA from
 * CA_BEFORE_DAYS before it for CA_DAYS, a server certificate from CA_BEFORE_DAYS before
 * it until LEAF_DAYS after. */
const CA_BEFORE_DAYS = 2;
const CA_DAYS = 3650;
const LEAF_DAYS = 199;

/** The dates a run's certificates carry when its clock starts at `notBeforeMs`: a CA
 * made for another run serves this one only if it is valid over all of them. */
export function certificateSpan(notBeforeMs: number): { fromMs: number; toMs: number } {
  return { fromMs: notBeforeMs - CA_BEFORE_DAYS * DAY_MS, toMs: notBeforeMs + LEAF_DAYS * DAY_MS };
}
const CA_NAME: NameAttribute[] = [
  { type: 'commonName', value: 'uwrx run CA' },
  { type: 'organizationName', value: 'uwrx' },
];

async function ecKeyPem(): Promise<string> {
  const { privateKey } = await promisify(nodeCrypto().generateKeyPair)('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey as unknown as string;
}

/** Fresh keys for an attempt: the CA's and the one every leaf certificate shares. */
export async function generateKeys(): Promise<CaKeys> {
  const [caKeyPem, leafKeyPem] = await Promise.all([ecKeyPem(), ecKeyPem()]);
  return { caKeyPem, leafKeyPem };
}

export function keysToPem(keys: CaKeys): string {
  return keys.caKeyPem.trimEnd() + '\n' + keys.leafKeyPem.trimEnd() + '\n';
}

export function keysFromPem(text: string): CaKeys {
  const keys = pemBlocks(text).filter((b) => b.label === 'PRIVATE KEY');
  if (keys.length < 2) throw new Error('expected two private keys (CA, leaf)');
  return { caKeyPem: keys[0]!.pem, leafKeyPem: keys[1]!.pem };
}

/** The PEM blocks of `text` in order, each with its label and its text (ending in a
 * newline). */
export function pemBlocks(text: string): Array<{ label: string; pem: string }> {
  const blocks: Array<{ label: string; pem: string }> = [];
  for (const m of text.matchAll(/-----BEGIN ([A-Z ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END \1-----/g)) {
    blocks.push({ label: m[1]!, pem: m[0]! + '\n' });
  }
  return blocks;
}

/** A serial number derived from what the certificate is for: stable across a replay. */
function serialFor(name: string): Buffer {
  const digest = sha256(name).subarray(0, 16);
  digest[0]! &= 0x0f; // positive, and no shorter than the serials made before
  return digest;
}

function privateKey(pem: string): KeyObject {
  return nodeCrypto().createPrivateKey(pem);
}

/** The CA certificate: valid 10 years from two days before `notBefore`. */
export function makeCaCert(keys: CaKeys, notBeforeMs: number): string {
  const key = privateKey(keys.caKeyPem);
  return toPem(certificateDer({
    serial: serialFor(CA_NAME[0]!.value + keys.caKeyPem.length),
    subject: CA_NAME,
    issuer: CA_NAME,
    notBefore: new Date(notBeforeMs - CA_BEFORE_DAYS * DAY_MS),
    notAfter: new Date(notBeforeMs + CA_DAYS * DAY_MS),
    publicKey: key,
    signingKey: key,
    ca: true,
    keyUsage: [KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign],
  }));
}

/** A server certificate for `name` (a DNS name or an IP address), signed by the CA. */
export function makeLeafCert(authority: Authority, name: string, notBeforeMs: number): string {
  const caCert = new (nodeCrypto().X509Certificate)(authority.caCertPem);
  const leafKey = privateKey(authority.keys.leafKeyPem);
  const isIp = /^[0-9.]+$/.test(name) || name.includes(':');
  return toPem(certificateDer({
    serial: serialFor(name),
    subject: [{ type: 'commonName', value: name.slice(0, 64) }],
    issuer: subjectOf(caCert.raw),
    notBefore: new Date(notBeforeMs - CA_BEFORE_DAYS * DAY_MS),
    notAfter: new Date(notBeforeMs + LEAF_DAYS * DAY_MS),
    publicKey: nodeCrypto().createPublicKey(leafKey),
    signingKey: privateKey(authority.keys.caKeyPem),
    ca: false,
    // keyEncipherment only means something for RSA key transport
    keyUsage: leafKey.asymmetricKeyType === 'rsa' ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] : [KEY_USAGE.digitalSignature],
    serverAuth: true,
    altNames: [isIp ? { ip: name } : { dns: name }],
    authorityKeyId: keyIdentifier(caCert.publicKey),
  }));
}

/** The certificate in `file` if it certifies the private key `keyPem` (a replay's
 * recorded certificate, reused as is); undefined when absent or for another key. */
export function recordedCert(file: string, keyPem: string): string | undefined {
  try {
    const pem = readFileSync(file, 'latin1');
    return new (nodeCrypto().X509Certificate)(pem).checkPrivateKey(privateKey(keyPem)) ? pem : undefined;
  } catch {
    return undefined;
  }
}
