// The attempt's certificate authority and the per-domain certificates it signs.
//
// Key generation (RSA 2048, ~330 ms each) runs on libuv's thread pool through
// crypto.generateKeyPair, both keys at once, so it overlaps the run's other start-up
// work and never blocks an event loop. node-forge builds and signs the certificates
// (Node can verify certificates but not make them). A replay loads the replayed
// attempt's keys (net/_keys.pem) and re-signs with the same inputs, so the sandbox sees
// the same certificates.
import { constants, createHash, createPublicKey, generateKeyPair, privateEncrypt } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateRsa = promisify(generateKeyPair);

export interface CaKeys {
  caKeyPem: string;
  leafKeyPem: string;
}

export interface Authority {
  keys: CaKeys;
  caCertPem: string;
}

const DAY_MS = 24 * 3600 * 1000;
const CA_NAME = 'uwrx run CA';

async function rsaKeyPem(): Promise<string> {
  const { privateKey } = await generateRsa('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey as unknown as string;
}

/** Fresh keys for an attempt: the CA's and the one every leaf certificate shares. */
export async function generateKeys(): Promise<CaKeys> {
  const [caKeyPem, leafKeyPem] = await Promise.all([rsaKeyPem(), rsaKeyPem()]);
  return { caKeyPem, leafKeyPem };
}

export function keysToPem(keys: CaKeys): string {
  return keys.caKeyPem.trimEnd() + '\n' + keys.leafKeyPem.trimEnd() + '\n';
}

export function keysFromPem(text: string): CaKeys {
  const blocks = text.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
  if (blocks.length < 2) throw new Error('expected two private keys (CA, leaf)');
  return { caKeyPem: blocks[0]! + '\n', leafKeyPem: blocks[1]! + '\n' };
}

/** DER prefix of a DigestInfo for SHA-256 (PKCS#1 v1.5 signatures). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A signer node-forge accepts in place of its own key: the RSA operation is Node's
 * (native, about 1 ms) instead of forge's JavaScript one (hundreds of ms on a busy CPU). */
function nativeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  return {
    sign(md: forge.md.MessageDigest): string {
      const info = Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]);
      return privateEncrypt({ key: keyPem, padding: constants.RSA_PKCS1_PADDING }, info).toString('binary');
    },
  } as unknown as forge.pki.rsa.PrivateKey;
}

function publicKeyOf(keyPem: string): forge.pki.rsa.PublicKey {
  return forge.pki.publicKeyFromPem(createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string);
}

/** A serial number derived from the certificate's subject: stable across a replay. */
function serialFor(name: string): string {
  // positive: the first hex digit below 8
  return '0' + createHash('sha256').update(name).digest('hex').slice(0, 31);
}

/** The CA certificate: valid 10 years from two days before `notBefore`. */
export function makeCaCert(keys: CaKeys, notBeforeMs: number): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKeyOf(keys.caKeyPem);
  cert.serialNumber = serialFor(CA_NAME + keys.caKeyPem.length);
  cert.validity.notBefore = new Date(notBeforeMs - 2 * DAY_MS);
  cert.validity.notAfter = new Date(notBeforeMs + 3650 * DAY_MS);
  const attrs = [{ name: 'commonName', value: CA_NAME }, { name: 'organizationName', value: 'uwrx' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nativeSigner(keys.caKeyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** A server certificate for `name` (a DNS name or an IP address), signed by the CA. */
export function makeLeafCert(authority: Authority, name: string, notBeforeMs: number): string {
  const caCert = forge.pki.certificateFromPem(authority.caCertPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKeyOf(authority.keys.leafKeyPem);
  cert.serialNumber = serialFor(name);
  cert.validity.notBefore = new Date(notBeforeMs - 2 * DAY_MS);
  cert.validity.notAfter = new Date(notBeforeMs + 199 * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: name.slice(0, 64) }]);
  cert.setIssuer(caCert.subject.attributes);
  const isIp = /^[0-9.]+$/.test(name) || name.includes(':');
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: name } : { type: 2, value: name }] },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(nativeSigner(authority.keys.caKeyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
