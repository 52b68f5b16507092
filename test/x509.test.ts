// The certificate writer: the run's CA and server certificates, read back and verified
// by Node's X509Certificate (OpenSSL's parser), and the DER primitives against known
// encodings.
import test from 'ava';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeys, keysFromPem, keysToPem, makeCaCert, makeLeafCert, recordedCert } from '../src/network/ca.js';
import { integer, namedBits, oid, time, KEY_USAGE } from '../src/network/x509.js';

const hex = (b: Buffer) => b.toString('hex');

test('DER primitives encode as X.690 says', (t) => {
  t.is(hex(integer(Buffer.from([0, 0, 0x7f]))), '02017f');
  t.is(hex(integer(Buffer.from([0x80]))), '02020080');
  t.is(hex(integer(Buffer.alloc(0))), '020100');
  t.is(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  t.is(hex(oid('2.5.29.19')), '0603551d13');
  t.is(time(new Date('2026-11-30T07:05:09Z')).toString('latin1').slice(2), '261130070509Z');
  t.is(hex(time(new Date('2026-11-30T07:05:09Z')).subarray(0, 1)), '17');
  t.is(time(new Date('2061-01-02T03:04:05Z')).toString('latin1').slice(2), '20610102030405Z');
  t.is(hex(time(new Date('2061-01-02T03:04:05Z')).subarray(0, 1)), '18');
  t.is(hex(namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])), '03020106');
  t.is(hex(namedBits([KEY_USAGE.digitalSignature])), '03020780');
  t.is(hex(namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment])), '030205a0');
});

test('the run CA signs server certificates for names and addresses that verify', async (t) => {
  const keys = await generateKeys();
  const notBefore = Date.parse('2026-11-30T00:00:00Z');
  const caPem = makeCaCert(keys, notBefore);
  const ca = new X509Certificate(caPem);
  t.true(ca.ca);
  t.is(ca.subject, 'CN=uwrx run CA\nO=uwrx');
  t.is(ca.issuer, ca.subject);
  t.true(ca.verify(ca.publicKey), 'self-signed');
  t.true(ca.checkPrivateKey(createPrivateKey(keys.caKeyPem)));
  t.is(new Date(ca.validFrom).getTime(), notBefore - 2 * 86_400_000);
  t.is(new Date(ca.validTo).getTime(), notBefore + 3650 * 86_400_000);
  const authority = { keys, caCertPem: caPem };
  const leaf = new X509Certificate(makeLeafCert(authority, 'pkgs.example.test', notBefore));
  t.false(leaf.ca);
  t.true(leaf.checkIssued(ca));
  t.true(leaf.verify(ca.publicKey));
  t.is(leaf.checkHost('pkgs.example.test'), 'pkgs.example.test');
  t.is(leaf.checkHost('other.example.test'), undefined);
  t.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const v4 = new X509Certificate(makeLeafCert(authority, '127.4.5.6', notBefore));
  t.is(v4.checkIP('127.4.5.6'), '127.4.5.6');
  const v6 = new X509Certificate(makeLeafCert(authority, 'fd00::1:2', notBefore));
  t.is(v6.checkIP('fd00::1:2'), 'fd00::1:2');
  t.true(v6.verify(ca.publicKey));
  // keys survive the record's PEM file
  t.deepEqual(keysFromPem(keysToPem(keys)), { caKeyPem: keys.caKeyPem.trimEnd() + '\n', leafKeyPem: keys.leafKeyPem.trimEnd() + '\n' });
});

test('RSA keys of older records still sign, and a recorded certificate is reused only for its own key', (t) => {
  const rsa = () =>
    generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  const keys = { caKeyPem: rsa(), leafKeyPem: rsa() };
  const caPem = makeCaCert(keys, Date.now());
  const ca = new X509Certificate(caPem);
  const leaf = new X509Certificate(makeLeafCert({ keys, caCertPem: caPem }, 'a.test', Date.now()));
  t.true(leaf.verify(ca.publicKey));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uwrx-x509-'));
  try {
    const file = path.join(dir, 'ca.pem');
    writeFileSync(file, caPem);
    t.is(recordedCert(file, keys.caKeyPem), caPem);
    t.is(recordedCert(file, keys.leafKeyPem), undefined);
    t.is(recordedCert(path.join(dir, 'absent.pem'), keys.caKeyPem), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
