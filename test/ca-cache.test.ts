// The run CA kept in the user cache: fresh runs of one user share it (each attempt still
// records it), and a cache file that is missing, damaged, foreign, readable by others,
// a symlink or not valid for the run's dates is never used: the run makes its own CA
// and replaces the file with a usable one.
import test from 'ava';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeys, keysToPem, makeCaCert, makeLeafCert, type Authority } from '../src/network/ca.js';
import { CA_CACHE_FILE, keepAuthority, readCachedAuthority, servesRun } from '../src/network/ca-cache.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const DAY_MS = 86_400_000;

async function authority(notBeforeMs = Date.now()): Promise<Authority> {
  const keys = await generateKeys();
  return { keys, caCertPem: makeCaCert(keys, notBeforeMs) };
}

test('a kept authority is read back and serves runs within its dates only', async (t) => {
  const file = path.join(scratchDir('uwrx-ca-'), CA_CACHE_FILE);
  const now = Date.now();
  const kept = await authority(now);
  t.true(keepAuthority(kept, file));
  t.is(statSync(file).mode & 0o777, 0o600);
  const read = readCachedAuthority(file);
  t.truthy(read);
  t.is(read!.caCertPem, kept.caCertPem);
  t.deepEqual(read!.keys, { caKeyPem: kept.keys.caKeyPem.trimEnd() + '\n', leafKeyPem: kept.keys.leafKeyPem.trimEnd() + '\n' });
  t.true(servesRun(read!, now));
  t.true(servesRun(read!, now + 365 * DAY_MS), 'a later run, within the CA validity');
  t.false(servesRun(read!, now - DAY_MS), 'a run whose certificates would start before the CA');
  t.false(servesRun(read!, now + 3600 * DAY_MS), 'a run whose server certificates would outlive the CA');
  // what the proxy does with it: server certificates that verify against it
  const leaf = new X509Certificate(makeLeafCert(read!, 'a.example.test', now));
  t.true(leaf.verify(new X509Certificate(read!.caCertPem).publicKey));
});

test('a kept file vouches for itself in its first line; one without it is checked in full and then marked', async (t) => {
  const dir = scratchDir('uwrx-ca-');
  const file = path.join(dir, CA_CACHE_FILE);
  const kept = await authority();
  t.true(keepAuthority(kept, file));
  const text = readFileSync(file, 'latin1');
  const cert = new X509Certificate(kept.caCertPem);
  const mark = /^# uwrx run CA: valid (\d+)-(\d+), sha256 [0-9a-f]{64}\n/.exec(text);
  t.truthy(mark, text.split('\n')[0]);
  t.deepEqual([Number(mark![1]), Number(mark![2])], [Date.parse(cert.validFrom), Date.parse(cert.validTo)]);
  const marked = readCachedAuthority(file);
  t.deepEqual([marked?.validFromMs, marked?.validToMs], [Date.parse(cert.validFrom), Date.parse(cert.validTo)]);

  // the file as an earlier uwrx wrote it: used after the full check, and marked
  writeFileSync(file, text.slice(mark![0].length), { mode: 0o600 });
  const unmarked = readCachedAuthority(file);
  t.is(unmarked?.caCertPem, kept.caCertPem);
  t.deepEqual(unmarked, marked);
  t.is(readFileSync(file, 'latin1'), text, 'marked again, as keepAuthority writes it');
  t.is(statSync(file).mode & 0o777, 0o600);
});

test('a mark that does not match its file is not believed: the dates come from the certificate', async (t) => {
  const dir = scratchDir('uwrx-ca-');
  const file = path.join(dir, CA_CACHE_FILE);
  const kept = await authority();
  keepAuthority(kept, file);
  const text = readFileSync(file, 'latin1');
  const cert = new X509Certificate(kept.caCertPem);
  // a later end date in the mark, the digest left as it was
  const stretched = text.replace(/-(\d+),/, (_m, to: string) => `-${Number(to) + 3650 * DAY_MS},`);
  t.not(stretched, text);
  writeFileSync(file, stretched, { mode: 0o600 });
  t.is(readCachedAuthority(file)?.validToMs, Date.parse(cert.validTo));
  t.is(readFileSync(file, 'latin1'), text, 'checked in full and marked anew');
});

const damages: Array<[string, (file: string, good: string, other: Authority) => void]> = [
  ['missing', () => undefined],
  ['empty', (f) => writeFileSync(f, '', { mode: 0o600 })],
  ['cut short', (f, good) => writeFileSync(f, good.slice(0, Math.floor(good.length / 2)), { mode: 0o600 })],
  ['not PEM', (f) => writeFileSync(f, 'not a certificate authority\n', { mode: 0o600 })],
  ['readable by others', (f, good) => {
    writeFileSync(f, good, { mode: 0o600 });
    chmodSync(f, 0o644);
  }],
  ['a certificate of another key', (f, good, other) => writeFileSync(f, good.replace(/-----BEGIN CERTIFICATE-----[\s\S]+$/, other.caCertPem), { mode: 0o600 })],
  ['a server certificate in place of the CA', (f, _good, other) => {
    writeFileSync(f, keysToPem(other.keys) + makeLeafCert(other, 'x.example.test', Date.now()), { mode: 0o600 });
  }],
  ['a symlink to a good file', (f, good) => {
    writeFileSync(`${f}.real`, good, { mode: 0o600 });
    symlinkSync(`${f}.real`, f);
  }],
];

for (const [what, damage] of damages) {
  test(`a cached authority that is ${what} is not used`, async (t) => {
    const dir = scratchDir('uwrx-ca-');
    const good = path.join(dir, 'good.pem');
    keepAuthority(await authority(), good);
    const file = path.join(dir, CA_CACHE_FILE);
    damage(file, readFileSync(good, 'latin1'), await authority());
    t.is(readCachedAuthority(file), undefined);
  });
}

test('fresh runs share the cached CA; a damaged cache gives a run its own CA and is written anew', async (t) => {
  const dir = scratchDir('uwrx-ca-run-');
  const env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') };
  const file = path.join(dir, 'cache', 'uwrx', CA_CACHE_FILE);
  let runs = 0;
  const attempt = () => path.join(dir, `b${runs}`, '0', '0');
  const run = async () => {
    runs++;
    const r = await uwrx(['run', '--quiet', '--build', `b${runs}`, '--', 'true'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    t.is(r.stderr, '');
    return readFileSync(path.join(attempt(), 'ca.pem'), 'latin1');
  };
  const first = await run();
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(readCachedAuthority(file)?.caCertPem, first);
  const second = await run();
  t.is(second, first, 'the second run took the cached CA');
  // the attempt's keys certify its CA as before
  const keys = readFileSync(path.join(attempt(), 'net', '_keys.pem'), 'latin1');
  t.true(new X509Certificate(second).checkPrivateKey(createPrivateKey(keys.split(/(?<=-----END PRIVATE KEY-----\n)/)[0]!)));

  writeFileSync(file, readFileSync(file, 'latin1').slice(0, 200), { mode: 0o600 });
  const third = await run();
  t.not(third, first, 'a damaged cache: the run made its own CA');
  t.is(readCachedAuthority(file)?.caCertPem, third, 'and kept it');

  chmodSync(file, 0o644);
  const fourth = await run();
  t.not(fourth, third, 'a cache others may read is not used');
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(readCachedAuthority(file)?.caCertPem, fourth);
});
