// HTTP/2 through the proxy: a client that offers only h2 by ALPN is served over HTTP/2,
// its exchanges are forwarded to servers speaking HTTP/2 or HTTP/1.1 and recorded like
// any other, and a replay with the servers stopped gives it the same headers and bytes.
// A client offering both (curl --http2) is served over HTTP/1.1.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';
import { startServers, testBytes } from '../bench/net-servers.js';
import { readExchanges } from '../src/network/record.js';

const HOST = 'pkgs.example.test';
const missing = ensureCommands({ curl: 'curl' });
const client = fileURLToPath(new URL('./fixtures/h2-client.js', import.meta.url));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.serial('an h2-only client is served over HTTP/2 from HTTP/2 and HTTP/1.1 servers, and replayed byte for byte', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const h2 = `https://${HOST}:${servers.http2Port}`;
    const h1 = `https://${HOST}:${servers.httpsPort}`;
    const requests = [
      [h2, 'GET', '/a.tar.gz'], [h2, 'GET', '/chunked'], [h2, 'HEAD', '/a.tar.gz'], [h2, 'POST', '/echo', 'hello'],
      [h1, 'GET', '/chunked'], [h1, 'GET', '/redirect'], [h1, 'GET', '/gzip'], [h1, 'GET', '/reset'], [h1, 'GET', '/a.tar.gz'],
    ].flat();
    const script = `node ${client} ${requests.join(' ')} && curl --http2 -sS -w ' %{http_version}\\n' ${h2}/a.tar.gz | sha256sum`;
    const args = ['--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', servers.caFile, '--', 'sh', '-c', script];
    const first = await uwrx(['run', ...args], { cwd: dir });
    t.is(first.status, 0, first.stderr);
    const lines = first.stdout.trim().split('\n');
    t.is(lines.length, 10, first.stdout);
    // every h2 client request went over HTTP/2
    for (const line of lines.slice(0, 9)) t.regex(line, /^\w+ \/\S* h2 /);
    const small = sha(testBytes(300_000));
    t.true(lines[0]!.endsWith(` 300000 ${small}`), lines[0]);
    t.regex(lines[1]!, /trailers \{"x-checksum":"abc"\} 33 /, 'trailers from an HTTP/2 server');
    t.regex(lines[2]!, /"content-length":"300000".* trailers null 0 /, 'HEAD has the length and no body');
    t.true(lines[3]!.endsWith(` 65 ${sha(Buffer.from(sha(Buffer.from('hello')) + '\n'))}`), lines[3]);
    t.regex(lines[4]!, /trailers \{"x-checksum":"abc"\} 33 /, 'chunked HTTP/1.1 body and trailer over HTTP/2');
    t.regex(lines[5]!, /"location":"\/a\.tar\.gz"/);
    t.regex(lines[6]!, /"content-encoding":"gzip"/);
    t.notRegex(lines.slice(0, 7).join('\n'), /"(connection|transfer-encoding|keep-alive)"/);
    // a server resetting in the middle of the body: the stream is reset, the next served
    t.regex(lines[7]!, /^GET \/reset h2 failed: Stream closed with error code NGHTTP2_INTERNAL_ERROR$/);
    t.true(lines[8]!.endsWith(` 300000 ${small}`), lines[8]);
    t.regex(first.stderr, /uwrx: network: .*\/reset: upstream closed the connection in the middle of the body/);
    // curl offering h2 and http/1.1 gets HTTP/1.1
    t.is(lines[9], `${sha(Buffer.concat([testBytes(300_000), Buffer.from(' 1.1\n')]))}  -`);

    const attempt = lastAttempt(dir);
    const log = readExchanges(attempt);
    t.is(log.length, 10);
    t.like(log[0], { protocol: 'h2', method: 'GET', scheme: 'https', host: HOST, port: servers.http2Port, target: '/a.tar.gz', status: 200, version: '2', responseBytes: 300_000, saved: `${HOST}/a.tar.gz` });
    t.deepEqual(log[0]!.requestHeaders.slice(0, 4).map(([k]) => k).sort(), [':authority', ':method', ':path', ':scheme']);
    t.like(log[4], { protocol: 'h2', port: servers.httpsPort, target: '/chunked', version: '1.1', reason: 'OK', chunks: [11, 12, 10] });
    t.like(log[7], { protocol: 'h2', target: '/reset', error: 'upstream closed the connection in the middle of the body' });
    t.is(log[9]!.protocol, undefined);
    t.deepEqual(readFileSync(path.join(attempt, 'net', HOST, 'a.tar.gz')), testBytes(300_000));
    const listing = await uwrx(['inspect', 'net', attempt], { cwd: dir });
    t.regex(listing.stdout, /pid 3 POST https:\/\/pkgs\.example\.test:\d+\/echo 200 65 B/);

    const served = servers.count();
    await servers.close();
    const replay = await uwrx(['run', '--replay', attempt], { cwd: dir });
    t.is(replay.status, 0, replay.stderr);
    const again = replay.stdout.trim().split('\n');
    // the reset exchange is recorded but not served again: the replay answers it with a 502
    t.regex(again[7]!, /^GET \/reset h2 \{":status":502,/);
    again[7] = lines[7]!;
    t.deepEqual(again, lines);
    t.is(servers.count(), served);
    t.like(readExchanges(lastAttempt(dir))[0], { protocol: 'h2', version: '2', status: 200 });

    // a request the record lacks: a 502 on its stream, saying why
    const miss = await uwrx(['run', '--replay', attempt, '--', 'node', client, h2, 'GET', '/other', h2, 'GET', '/a.tar.gz'], { cwd: dir });
    t.is(miss.status, 0, miss.stderr);
    t.regex(miss.stdout, /^GET \/other h2 \{":status":502,.*"x-uwrx-error":"no recorded exchange for GET https:\/\/pkgs\.example\.test:\d+\/other"/);
    t.true(miss.stdout.includes(` 300000 ${small}\n`), 'the connection serves the next stream');
    t.regex(miss.stderr, /1 not in the record/);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
