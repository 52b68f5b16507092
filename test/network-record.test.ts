// The network record's pure rules: where GET bodies are saved, what replay matches on,
// the loopback ranges, and bad network options (one line, exit 2, no attempt made).
import test from 'ava';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EMPTY_SHA256, matchKey, savedPath } from '../src/network/record.js';
import { allocateIpv4, isAllocatedIpv4 } from '../src/network/addresses.js';
import { parseDnsMap } from '../src/network/setup.js';
import { h1RequestHeaders, h2RequestHeaders, h2ResponseHeaders } from '../src/network/http2.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

test('GET bodies are saved under net/<domain>/ by the documented rule', (t) => {
  t.is(savedPath('d.test', '/a.tar.gz'), 'd.test/a.tar.gz');
  t.is(savedPath('d.test', '/'), 'd.test/index.html');
  t.is(savedPath('d.test', '/dir/'), 'd.test/dir/index.html');
  t.is(savedPath('d.test', '/query?a=1&b=2'), 'd.test/query?a=1&b=2');
  t.is(savedPath('d.test', '/?x'), 'd.test/index.html?x');
  t.is(savedPath('d.test', '/a//b/./c/../d'), 'd.test/a/%2F/b/%2E/c/%2E%2E/d');
  t.is(savedPath('d.test', '/ip4.txt'), 'd.test/%ip4.txt');
  t.is(savedPath('d.test', '/x/cert.pem'), 'd.test/x/cert.pem');
  t.is(savedPath('d.test', '/%20space'), 'd.test/%20space');
  const long = savedPath('d.test', '/' + 'n'.repeat(300));
  t.regex(long, /^d\.test\/n{200}-[0-9a-f]{16}$/);
});

test('replay matches method, scheme, host, port, target and body, not headers', (t) => {
  const base = { method: 'GET', scheme: 'https' as const, host: 'D.test', port: 443, target: '/a?b', requestBody: null };
  t.is(matchKey(base), matchKey({ ...base, host: 'd.test' }));
  t.is(matchKey(base), matchKey({ ...base, requestBody: EMPTY_SHA256 }));
  t.not(matchKey(base), matchKey({ ...base, target: '/a?c' }));
  t.not(matchKey(base), matchKey({ ...base, port: 8443 }));
  t.not(matchKey(base), matchKey({ ...base, scheme: 'http' }));
  t.not(matchKey(base), matchKey({ ...base, method: 'HEAD' }));
  t.not(matchKey(base), matchKey({ ...base, requestBody: 'ab'.repeat(32) }));
});

test('allocated addresses stay out of 127.0.0.0/24 and 127.255.255.0/24', (t) => {
  t.false(isAllocatedIpv4('127.0.0.1'));
  t.false(isAllocatedIpv4('127.0.0.200'));
  t.false(isAllocatedIpv4('127.255.255.9'));
  t.false(isAllocatedIpv4('10.0.0.1'));
  t.true(isAllocatedIpv4('127.0.1.1'));
  const taken = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const ip = allocateIpv4(taken);
    t.true(isAllocatedIpv4(ip), ip);
    t.false(taken.has(ip));
    taken.add(ip);
  }
});

test('--dns-map takes NAME=IP lists', (t) => {
  t.deepEqual(parseDnsMap(['A.test=127.0.0.1,b.test=10.0.0.2', 'a.test=::1']), { 'a.test': ['127.0.0.1', '::1'], 'b.test': ['10.0.0.2'] });
  t.throws(() => parseDnsMap(['a.test']), { message: /--dns-map: expected NAME=IP/ });
});

const badOptions: Array<[string, string[], RegExp]> = [
  ['--dns-map without an address', ['--dns-map', 'pkgs.test'], /--dns-map expects NAME=IP\[,NAME=IP\.\.\.\], got "pkgs\.test"/],
  ['--upstream-ca that does not exist', ['--upstream-ca', '/nonexistent/ca.pem'], /--upstream-ca \/nonexistent\/ca\.pem: ENOENT/],
  ['--upstream-ca that is not PEM', ['--upstream-ca', 'not-pem.txt'], /--upstream-ca not-pem\.txt: no PEM certificate in it/],
];

for (const [name, args, message] of badOptions) {
  test(`wrong usage: ${name} prints one line, exits 2 and makes no attempt`, async (t) => {
    const cwd = scratchDir();
    try {
      writeFileSync(path.join(cwd, 'not-pem.txt'), 'hello\n');
      const r = await uwrx(['run', ...args, '--', 'true'], { cwd });
      t.is(r.status, 2);
      t.regex(r.stderr, message);
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      t.false(existsSync(path.join(cwd, 'build', '0', '0')));
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
}

test('HTTP/2 headers: pseudo-headers, lower case, no connection headers, cookies joined for HTTP/1.1', (t) => {
  t.deepEqual(
    h2ResponseHeaders(200, [['Content-Type', 'text/plain'], ['Connection', 'keep-alive, X-Hop'], ['Keep-Alive', 'timeout=5'], ['X-Hop', '1'], ['Transfer-Encoding', 'chunked'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]),
    { ':status': 200, 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] },
  );
  t.deepEqual(
    h1RequestHeaders([[':method', 'GET'], [':scheme', 'https'], [':authority', 'd.test:8443'], [':path', '/x'], ['cookie', 'a=1'], ['accept', '*/*'], ['cookie', 'b=2']]),
    [['host', 'd.test:8443'], ['accept', '*/*'], ['cookie', 'a=1; b=2']],
  );
  t.deepEqual(h2RequestHeaders('POST', 'https', '/p?q', [['Host', 'd.test'], ['Connection', 'keep-alive'], ['TE', 'trailers'], ['Accept', 'a'], ['Accept', 'b']]), {
    ':method': 'POST',
    ':scheme': 'https',
    ':path': '/p?q',
    ':authority': 'd.test',
    te: 'trailers',
    accept: ['a', 'b'],
  });
});
