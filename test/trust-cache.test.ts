// The sandbox's trust stores (the host's CA bundle and JVM keystore with the run's CA
// added) come from the user cache once made: the cached bytes are what the run would
// have made, a new CA or a changed host file makes new ones, and a keystore's CA entry
// is dated from the certificate, so every run with one CA sees the same keystore.
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeys, makeCaCert } from '../src/network/ca.js';
import { jksDigestMatches } from '../src/network/java-keystore.js';
import { writeTrustStore } from '../src/network/trust-cache.js';
import { notBeforeOf } from '../src/network/x509.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const cacheHome = scratchDir('uwrx-trust-cache-');
// userCacheDir() reads it at each call; every test of this file shares it
process.env.XDG_CACHE_HOME = cacheHome;

const pemToDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

test('notBeforeOf reads the validity start in UTCTime and GeneralizedTime', async (t) => {
  const keys = await generateKeys();
  for (const at of [Date.UTC(2026, 11, 2, 7, 58, 31, 500), Date.UTC(2061, 0, 15, 12, 0, 1)]) {
    const pem = makeCaCert(keys, at);
    const expected = new Date(new X509Certificate(pem).validFrom).getTime();
    t.is(notBeforeOf(pemToDer(pem)).getTime(), expected);
    // two days before the run's start, to the second
    t.is(expected, Math.floor(at / 1000) * 1000 - 2 * 86_400_000);
  }
});

test('a trust store is made once per host file and CA, then copied from the cache', async (t) => {
  const dir = scratchDir('uwrx-trust-');
  const host = path.join(dir, 'host-bundle.pem');
  writeFileSync(host, 'host certificates\n');
  let made = 0;
  const make = (ca: string) => () => {
    made++;
    return readFileSync(host, 'latin1') + ca;
  };
  const kind = `test-${path.basename(dir)}`;
  const cached = () => readdirSync(path.join(cacheHome, 'uwrx')).filter((n) => n.startsWith(`trust-${kind}-`));

  writeTrustStore(kind, host, 'CA 1\n', path.join(dir, 'a'), make('CA 1\n'));
  t.is(made, 1);
  t.is(readFileSync(path.join(dir, 'a'), 'latin1'), 'host certificates\nCA 1\n');
  t.is(cached().length, 1);
  t.is(readFileSync(path.join(cacheHome, 'uwrx', cached()[0]!), 'latin1'), 'host certificates\nCA 1\n');

  writeTrustStore(kind, host, 'CA 1\n', path.join(dir, 'b'), make('CA 1\n'));
  t.is(made, 1, 'the second copy came from the cache');
  t.is(readFileSync(path.join(dir, 'b'), 'latin1'), 'host certificates\nCA 1\n');

  writeTrustStore(kind, host, 'CA 2\n', path.join(dir, 'c'), make('CA 2\n'));
  t.is(made, 2, 'another CA: made again');
  t.is(readFileSync(path.join(dir, 'c'), 'latin1'), 'host certificates\nCA 2\n');

  // an update of the host file of the same size (its times and inode change)
  writeFileSync(`${host}.new`, 'HOST certificates\n');
  renameSync(`${host}.new`, host);
  writeTrustStore(kind, host, 'CA 1\n', path.join(dir, 'd'), make('CA 1\n'));
  t.is(made, 3, 'a changed host file: made again');
  t.is(readFileSync(path.join(dir, 'd'), 'latin1'), 'HOST certificates\nCA 1\n');

  // a host file that cannot be read fails as reading it did
  const missing = path.join(dir, 'missing.pem');
  t.throws(() => writeTrustStore(kind, missing, 'CA 1\n', path.join(dir, 'e'), () => readFileSync(missing)), { code: 'ENOENT' });
  t.false(existsSync(path.join(dir, 'e')));
});

test('runs with one CA see the same trust stores, the CA added to the host bundle and keystore', async (t) => {
  const dir = scratchDir('uwrx-trust-run-');
  const env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') };
  mkdirSync(path.join(dir, 'out'));
  const bundle = '/etc/ssl/certs/ca-certificates.crt';
  const keystore = '/etc/ssl/certs/java/cacerts';
  const files = [bundle, ...(existsSync(keystore) ? [keystore] : [])];
  const seen: Buffer[][] = [];
  for (const n of [1, 2]) {
    const script = files.map((f, i) => `cat ${f} > out/${n}-${i}`).join(' && ');
    const r = await uwrx(['run', '--quiet', '--build', `b${n}`, '--', 'sh', '-c', script], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    seen.push(files.map((_, i) => readFileSync(path.join(dir, 'b' + n, '0', '0', 'files', dir.slice(1), 'out', `${n}-${i}`))));
  }
  const ca = readFileSync(path.join(dir, 'b1', '0', '0', 'ca.pem'), 'latin1');
  t.is(readFileSync(path.join(dir, 'b2', '0', '0', 'ca.pem'), 'latin1'), ca, 'the second run took the cached CA');
  t.is(seen[0]![0]!.toString('latin1'), readFileSync(bundle, 'latin1').trimEnd() + '\n' + ca);
  t.deepEqual(seen[1], seen[0], 'the same trust stores in both runs');
  t.deepEqual(readdirSync(path.join(dir, 'cache', 'uwrx')).filter((n) => n.startsWith('trust-')).map((n) => n.split('-')[1]).sort(), files.length > 1 ? ['bundle', 'jks'] : ['bundle']);
  if (files.length > 1) {
    const jks = seen[0]![1]!;
    t.true(jksDigestMatches(jks));
    // the last entry: the CA's DER, after its creation time (the certificate's start)
    const der = pemToDer(ca);
    t.true(jks.subarray(jks.length - 20 - der.length, jks.length - 20).equals(der));
    const created = jks.readBigUInt64BE(jks.length - 20 - der.length - 4 - 7 - 8);
    t.is(Number(created), notBeforeOf(der).getTime());
  }
});
