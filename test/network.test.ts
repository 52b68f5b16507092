// The network under `uwrx run`: real clients inside the sandbox reach real servers on the
// host's loopback through uwrx's DNS and proxy (names mapped by --dns-map, the servers'
// CA passed by --upstream-ca), the exchanges land in net/, and a replay with the servers
// stopped gives the clients the same bytes.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';
import { BIG_SIZE, startServers, testBytes, type TestServers } from '../bench/net-servers.js';
import { readExchanges, savedPath } from '../src/network/record.js';

const HOST = 'pkgs.example.test';
const missing = ensureCommands({ curl: 'curl', wget: 'wget', git: 'git', python3: 'python3' });
const hasRequests = spawnSync('python3', ['-c', 'import requests'], { stdio: 'ignore' }).status === 0;

function netArgs(s: TestServers): string[] {
  return ['--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', s.caFile];
}

async function runOk(cwd: string, args: string[]) {
  const r = await uwrx(['run', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Stops the servers, replays `attempt` and checks it printed `stdout` without a request. */
async function replayWithServersStopped(t: ExecutionContext, dir: string, servers: TestServers, attempt: string, stdout: string) {
  const served = servers.count();
  await servers.close();
  const replay = await runOk(dir, ['--replay', attempt]);
  t.is(replay.stdout, stdout);
  t.is(servers.count(), served);
  return replay;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.serial('curl over https is recorded under net/ and replayed byte for byte with the server stopped', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/a.tar.gz`;
    const first = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', `curl -sS ${url} -o a.tgz && sha256sum a.tgz && echo done`]);
    t.regex(first.stdout, /a\.tgz\ndone\n$/);
    t.regex(first.stderr, /1 request \(293\.0 KiB\)/);
    const attempt = lastAttempt(dir);
    const net = path.join(attempt, 'net');
    const expected = testBytes(300_000);
    t.true(existsSync(path.join(attempt, 'ca.pem')));
    t.regex(readFileSync(path.join(net, HOST, 'ip4.txt'), 'utf8'), /^127\.\d+\.\d+\.\d+\n$/);
    t.regex(readFileSync(path.join(net, HOST, 'cert.pem'), 'utf8'), /BEGIN CERTIFICATE/);
    t.deepEqual(readFileSync(path.join(net, HOST, 'a.tar.gz')), expected);
    t.deepEqual(readFileSync(path.join(attempt, 'files', dir, 'a.tgz')), expected);
    const log = readExchanges(attempt);
    t.is(log.length, 1);
    t.like(log[0], { method: 'GET', scheme: 'https', host: HOST, port: servers.httpsPort, target: '/a.tar.gz', status: 200, responseBytes: 300_000, saved: `${HOST}/a.tar.gz` });
    t.is(log[0]!.pid, 3, 'the exchange belongs to curl (sh is 2)');
    const status = JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8'));
    t.like(status.network, { requests: 1, bytes: 300_000 });
    const text = await uwrx(['inspect', 'net', attempt], { cwd: dir });
    t.regex(text.stdout, new RegExp(`domain ${HOST} 127\\.`));
    t.regex(text.stdout, /pid 3 GET https:\/\/pkgs\.example\.test:\d+\/a\.tar\.gz 200 300000 B \d+ ms -> net\/pkgs\.example\.test\/a\.tar\.gz\n/);
    t.regex(text.stdout, /1 exchange, 300000 response bytes\n$/);
    const json = JSON.parse((await uwrx(['inspect', 'net', attempt, '--format', 'json'], { cwd: dir })).stdout);
    t.like(json.exchanges[0], { target: '/a.tar.gz', status: 200 });
    t.is(json.domains[0].domain, HOST);
    // the lookup, the connect and the exchange are in the trace
    const events = await uwrx(['inspect', 'events', attempt, '--format', 'json'], { cwd: dir });
    t.true(events.stdout.includes('"dns"'), 'a dns event');
    // curl's lookups are on curl's track: its UDP socket's connect to the name server says whose they are
    const lookups = (JSON.parse(events.stdout) as Array<{ type: string; tid: number }>).filter((e) => e.type === 'dns');
    t.true(lookups.length > 0 && lookups.every((e) => e.tid === 3), JSON.stringify(lookups));
    t.true(events.stdout.includes('"connect"'), 'a connect event');
    t.true(events.stdout.includes('"download"'), 'a download event');

    // the server goes away: the replay needs only the record
    const served = servers.count();
    await servers.close();
    const replay = await runOk(dir, ['--replay', attempt]);
    t.is(replay.stdout, first.stdout);
    const replayed = lastAttempt(dir);
    t.not(replayed, attempt);
    t.deepEqual(readFileSync(path.join(replayed, 'files', dir, 'a.tgz')), expected);
    t.deepEqual(readFileSync(path.join(replayed, 'net', HOST, 'a.tar.gz')), expected);
    t.is(readFileSync(path.join(replayed, 'ca.pem'), 'utf8'), readFileSync(path.join(attempt, 'ca.pem'), 'utf8'));
    t.is(servers.count(), served);

    // a URL the record lacks: a 502 at once, saying why
    const miss = await uwrx(['run', '--replay', attempt, '--', 'curl', '-sS', '-i', `https://${HOST}:${servers.httpsPort}/other`], { cwd: dir });
    t.is(miss.status, 0);
    t.regex(miss.stdout, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    t.regex(miss.stdout, /X-Uwrx-Error: no recorded exchange for GET https:\/\/pkgs\.example\.test:\d+\/other\r\n/);
    t.regex(miss.stderr, /1 not in the record/);
    // a name the record lacks does not resolve
    const unknown = await uwrx(['run', '--replay', attempt, '--', 'curl', '-sS', 'https://elsewhere.example.test/'], { cwd: dir });
    t.is(unknown.status, 6, unknown.stderr);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// A machine that reaches servers through an intercepting proxy trusts that proxy's CA in
// its trust store or NODE_EXTRA_CA_CERTS; clients there work natively, so they must
// under uwrx too (npm install failed with "self-signed certificate in certificate chain"
// while uwrx checked upstream servers against Node's own roots alone).
test.serial('upstream servers are checked against what the host trusts: a CA in NODE_EXTRA_CA_CERTS is enough', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/a.tar.gz`;
    const script = `curl -fsS ${url} -o a.tgz && echo fetched`;
    const env = (extra: string | undefined) => {
      const e = { ...process.env };
      delete e['NODE_EXTRA_CA_CERTS'];
      return extra ? { ...e, NODE_EXTRA_CA_CERTS: extra } : e;
    };
    const trusted = await uwrx(['run', '--dns-map', `${HOST}=127.0.0.1`, '--', 'sh', '-c', script], { cwd: dir, env: env(servers.caFile) });
    t.is(trusted.status, 0, trusted.stderr);
    t.is(trusted.stdout, 'fetched\n');
    const untrusted = await uwrx(['run', '--dns-map', `${HOST}=127.0.0.1`, '--', 'sh', '-c', script], { cwd: dir, env: env(undefined) });
    t.is(untrusted.status, 22, 'curl -f: the proxy answered 502');
    t.regex(untrusted.stderr, /certificate/);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('--no-net: no name resolves and no address outside answers, at once', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  try {
    const script = [
      'getent hosts example.com; echo getent=$?',
      'getent hosts localhost >/dev/null; echo localhost=$?',
      'curl -sS --connect-timeout 30 https://192.0.2.1/ 2>/dev/null; echo ip=$?',
      'curl -sS --connect-timeout 30 https://pkgs.example.test/ 2>/dev/null; echo name=$?',
    ].join('; ');
    const r = await runOk(dir, ['--no-net', '--', 'sh', '-c', script]);
    // getent 2: not found; curl 7: could not connect (not 28, a timeout); 6: no such host
    t.is(r.stdout, 'getent=2\nlocalhost=0\nip=7\nname=6\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Node parses its own roots and the file NODE_EXTRA_CA_CERTS names as it starts: naming
// the CA alone there, not the system bundle, keeps each Node process's start-up cost close
// to native. Offline nothing inside is served with the CA, so the caller's environment and
// trust stores are left as they are.
test.serial('NODE_EXTRA_CA_CERTS names the run CA alone; --no-net keeps the environment and trust stores', async (t) => {
  const dir = scratchDir();
  try {
    const env = { ...process.env };
    for (const v of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE']) delete env[v];
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    const probe = ['sh', '-c', `echo "node=$NODE_EXTRA_CA_CERTS ssl=$SSL_CERT_FILE curl=$CURL_CA_BUNDLE"; cat "\${NODE_EXTRA_CA_CERTS:-/dev/null}"; sha256sum ${bundle}`];
    const fresh = await uwrx(['run', '-q', '--', ...probe], { cwd: dir, env });
    t.is(fresh.status, 0, fresh.stderr);
    const ca = readFileSync(path.join(lastAttempt(dir), 'ca.pem'), 'utf8');
    const withCa = sha(Buffer.from(readFileSync(bundle, 'utf8').trimEnd() + '\n' + ca));
    t.is(fresh.stdout, `node=/dev/.uwrx-ca.pem ssl=${bundle} curl=${bundle}\n${ca}${withCa}  ${bundle}\n`);
    const offline = await uwrx(['run', '-q', '--no-net', '--', ...probe], { cwd: dir, env });
    t.is(offline.status, 0, offline.stderr);
    t.is(offline.stdout, `node= ssl= curl=\n${sha(readFileSync(bundle))}  ${bundle}\n`);
    const inside = await uwrx(['run', '-q', '--no-net', '--', 'env', '-0'], { cwd: dir, env });
    const names = (out: string) => out.split('\0').map((l) => l.split('=')[0]).filter((n) => n && n !== '_').sort();
    t.deepEqual(names(inside.stdout), names(execFileSync('env', ['-0'], { env, encoding: 'utf8' })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('wget, python3, node fetch and git ls-remote trust the run CA; their replay is identical', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const gitRoot = path.join(dir, 'repos');
  mkdirSync(gitRoot);
  const work = path.join(dir, 'work');
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  execFileSync('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'one']);
  execFileSync('git', ['clone', '-q', '--bare', work, path.join(gitRoot, 'repo.git')]);
  const servers = await startServers(dir, [HOST], gitRoot);
  try {
    const base = `https://${HOST}:${servers.httpsPort}`;
    const lines = [
      `wget -q -O w.bin ${base}/a.tar.gz && sha256sum w.bin`,
      `python3 -c "import urllib.request,hashlib; print('urllib', hashlib.sha256(urllib.request.urlopen('${base}/a.tar.gz').read()).hexdigest())"`,
      `node -e "fetch('${base}/gzip').then(r => r.text()).then(t => console.log('fetch', t.length))"`,
      `git ls-remote ${base}/git/repo.git`,
      `curl -sS http://${HOST}:${servers.httpPort}/query?a=1 `,
    ];
    if (hasRequests) lines.push(`python3 -c "import requests; print('requests', requests.get('${base}/chunked').text)"`);
    else t.log('python3 requests is not importable here: its check is left out');
    const script = lines.join(' && ');
    const first = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', script]);
    const hex = sha(testBytes(300_000));
    t.true(first.stdout.includes(`${hex}  w.bin`), first.stdout);
    t.true(first.stdout.includes(`urllib ${hex}`), first.stdout);
    t.regex(first.stdout, /fetch 16000\n/);
    const head = execFileSync('git', ['-C', work, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    t.regex(first.stdout, new RegExp(`${head}\\tHEAD\\n`));
    t.regex(first.stdout, /query \?a=1\n/);
    if (hasRequests) t.regex(first.stdout, /requests first part\nsecond part\nlast part\n/);
    const attempt = lastAttempt(dir);
    t.true(existsSync(path.join(attempt, 'net', savedPath(HOST, '/query?a=1'))));
    await replayWithServersStopped(t, dir, servers, attempt, first.stdout);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const JAVA_CLIENT = `
import java.io.InputStream;
import java.net.URL;
import java.security.MessageDigest;
public class Fetch {
  public static void main(String[] args) throws Exception {
    try (InputStream in = new URL(args[0]).openStream()) {
      byte[] hash = MessageDigest.getInstance("SHA-256").digest(in.readAllBytes());
      StringBuilder hex = new StringBuilder();
      for (byte b : hash) hex.append(String.format("%02x", b));
      System.out.println("java " + hex);
    }
  }
}
`;

test.serial('a Java client trusts the run CA through the JVM keystore; its replay is identical', async (t) => {
  t.timeout(300_000);
  t.deepEqual(ensureCommands({ javac: 'default-jdk-headless', keytool: 'default-jdk-headless' }), []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    writeFileSync(path.join(dir, 'Fetch.java'), JAVA_CLIENT);
    const url = `https://${HOST}:${servers.httpsPort}/a.tar.gz`;
    const script = `java Fetch.java ${url} && keytool -list -cacerts -storepass changeit -alias uwrx-run-ca | grep -c trustedCertEntry`;
    const first = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', script]);
    t.is(first.stdout, `java ${sha(testBytes(300_000))}\n1\n`);
    await replayWithServersStopped(t, dir, servers, lastAttempt(dir), first.stdout);
    // outside the sandbox the host's keystore is as it was
    t.not(spawnSync('keytool', ['-list', '-cacerts', '-storepass', 'changeit', '-alias', 'uwrx-run-ca']).status, 0);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('gzip, chunked, keep-alive, redirect, HEAD and a POST replay exactly', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const base = `https://${HOST}:${servers.httpsPort}`;
    const script = [
      // -i: status line and headers as the client got them, byte for byte; two URLs in
      // one curl share a kept-alive connection
      `curl -sS -i ${base}/gzip ${base}/chunked`,
      `curl -sS -i -L ${base}/redirect | sha256sum`,
      `curl -sS -I ${base}/a.tar.gz`,
      `curl -sS --raw -i ${base}/chunked`,
      `curl -sS --data-binary hello ${base}/echo`,
    ].join(' && ');
    const first = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', script]);
    t.true(first.stdout.includes('Content-Encoding: gzip\r\n'), first.stdout.slice(0, 400));
    t.true(first.stdout.includes('Transfer-Encoding: chunked\r\n'));
    t.true(first.stdout.includes('X-Checksum: abc\r\n'), 'the trailer passes through');
    t.true(first.stdout.includes(`${sha(Buffer.from('hello'))}\n`));
    const attempt = lastAttempt(dir);
    const log = readExchanges(attempt);
    t.is(log.filter((e) => e.method === 'HEAD').length, 1);
    t.is(log.filter((e) => e.target === '/redirect' || e.target === '/a.tar.gz').length, 3);
    await replayWithServersStopped(t, dir, servers, attempt, first.stdout);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('a 100 MiB body is recorded once and replayed exactly', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const url = `http://${HOST}:${servers.httpPort}/big`;
    const first = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', `curl -sS ${url} | sha256sum`]);
    t.is(first.stdout, `${sha(testBytesBig())}  -\n`);
    const attempt = lastAttempt(dir);
    const log = readExchanges(attempt);
    t.like(log[0], { target: '/big', responseBytes: BIG_SIZE, saved: `${HOST}/big` });
    await servers.close();
    const replay = await runOk(dir, ['--replay', attempt]);
    t.is(replay.stdout, first.stdout);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function testBytesBig(): Buffer {
  const block = testBytes(1 << 20, 'big');
  return Buffer.concat(Array.from({ length: BIG_SIZE / block.length }, () => block));
}

test.serial('bad input gets a clear error and the proxy keeps serving', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const base = `https://${HOST}:${servers.httpsPort}`;
    const py = [
      'import socket, ssl',
      `addr = (socket.gethostbyname('${HOST}'), ${servers.httpsPort})`,
      // a malformed request over TLS
      'ctx = ssl.create_default_context()',
      `s = ctx.wrap_socket(socket.create_connection(addr), server_hostname='${HOST}')`,
      "s.sendall(b'NOT HTTP AT ALL\\r\\n\\r\\n')",
      "print(s.recv(200).split(b'\\r\\n')[0].decode())",
      's.close()',
      // a TLS client hanging up in the middle of its handshake
      's = socket.create_connection(addr)',
      "s.sendall(b'\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03')",
      's.close()',
    ].join('\n');
    const script = [
      `python3 -c "${py.replace(/"/g, '\\"')}"`,
      `curl -sS -o /dev/null -w '%{http_code}\\n' -H "X-Big: $(head -c 70000 /dev/zero | tr '\\0' a)" ${base}/a.tar.gz`,
      `curl -sS ${base}/reset -o /dev/null; echo reset=$?`,
      `curl -sS ${base}/a.tar.gz | sha256sum`,
    ].join('; ');
    const r = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', script]);
    const lines = r.stdout.split('\n');
    t.is(lines[0], 'HTTP/1.1 400 Bad Request');
    t.is(lines[1], '431');
    t.is(lines[2], 'reset=18', 'curl: transfer closed with bytes remaining');
    t.is(lines[3], `${sha(testBytes(300_000))}  -`);
    t.regex(r.stderr, /uwrx: network: .*malformed request line/);
    t.regex(r.stderr, /uwrx: network: TLS handshake on .* failed/);
    t.regex(r.stderr, /uwrx: network: .*\/reset: upstream closed the connection in the middle of the body/);
    const log = readExchanges(lastAttempt(dir));
    t.true(log.some((e) => e.target === '/reset' && e.error !== undefined));
    t.true(log.some((e) => e.target === '/a.tar.gz' && e.status === 200));
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The proxy tells a connection's protocol by the client's first byte. A client silent for
// a second may be waiting for a server that speaks first (SMTP, SSH); one that speaks
// later (a TLS hello held back on a busy machine) must still be served as what it is.
test.serial('a client that speaks after a second is still served as HTTPS and replayed; a server that speaks first is passed through', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  const greeter = net.createServer((s) => s.end('220 greeting\r\n'));
  await new Promise<void>((resolve) => greeter.listen(0, '127.0.0.1', resolve));
  const greeterPort = (greeter.address() as net.AddressInfo).port;
  // a server that hangs up at once: the silent client sees the end, not a 30 s wait
  const closer = net.createServer((s) => s.end());
  await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
  const closerPort = (closer.address() as net.AddressInfo).port;
  try {
    const py = [
      'import hashlib, socket, ssl, time',
      `s = socket.create_connection((socket.gethostbyname('${HOST}'), ${servers.httpsPort}))`,
      'time.sleep(1.5)',
      `s = ssl.create_default_context().wrap_socket(s, server_hostname='${HOST}')`,
      `s.sendall(b'GET /a.tar.gz HTTP/1.1\\r\\nHost: ${HOST}\\r\\nConnection: close\\r\\n\\r\\n')`,
      "data = b''",
      'while True:',
      '    chunk = s.recv(65536)',
      '    if not chunk: break',
      '    data += chunk',
      "head, body = data.split(b'\\r\\n\\r\\n', 1)",
      "print(head.split(b'\\r\\n')[0].decode(), hashlib.sha256(body).hexdigest())",
    ].join('\n');
    const greet = `python3 -c "import socket; print(socket.create_connection((socket.gethostbyname('${HOST}'), ${greeterPort})).recv(100).decode().strip())"`;
    const hangUp = `python3 -c "import socket, time; t = time.monotonic(); s = socket.create_connection((socket.gethostbyname('${HOST}'), ${closerPort})); print(s.recv(100), time.monotonic() - t < 10)"`;
    const r = await runOk(dir, [...netArgs(servers), '--', 'sh', '-c', `python3 -c "${py.replace(/"/g, '\\"')}"; ${greet}; ${hangUp}`]);
    t.is(r.stdout, `HTTP/1.1 200 OK ${sha(testBytes(300_000))}\n220 greeting\nb'' True\n`);
    t.true(readExchanges(lastAttempt(dir)).some((e) => e.target === '/a.tar.gz' && e.status === 200), "the slow client's request is in the record");
    greeter.close();
    // the greeting is raw TCP, which a replay does not serve: only the HTTPS exchange
    const replay = await uwrx(['run', '--replay', lastAttempt(dir), '--', 'sh', '-c', `python3 -c "${py.replace(/"/g, '\\"')}"`], { cwd: dir });
    t.is(replay.stdout, `HTTP/1.1 200 OK ${sha(testBytes(300_000))}\n`, replay.stderr);
  } finally {
    greeter.close();
    closer.close();
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('a client told to use a proxy is served through CONNECT, recorded under the target, and replayed', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/a.tar.gz`;
    const proxy = 'http://proxy.example.test:3128';
    const script = [
      `curl -sS -x ${proxy} ${url} | sha256sum`,
      `https_proxy=${proxy} python3 -c "import urllib.request, hashlib; print(hashlib.sha256(urllib.request.urlopen('${url}').read()).hexdigest())"`,
    ].join(' && ');
    const args = ['--dns-map', `${HOST}=127.0.0.1,proxy.example.test=127.0.0.1`, '--upstream-ca', servers.caFile, '--', 'sh', '-c', script];
    const first = await runOk(dir, ['-q', ...args]);
    const sum = sha(testBytes(300_000));
    t.is(first.stdout, `${sum}  -\n${sum}\n`);
    const attempt = lastAttempt(dir);
    const log = readExchanges(attempt);
    t.is(log.length, 2);
    for (const e of log) t.like(e, { method: 'GET', scheme: 'https', host: HOST, port: servers.httpsPort, target: '/a.tar.gz', status: 200 });
    t.deepEqual(readFileSync(path.join(attempt, 'net', HOST, 'a.tar.gz')), testBytes(300_000));

    await servers.close();
    const replay = await runOk(dir, ['-q', '--replay', attempt]);
    t.is(replay.stdout, first.stdout);
    // a CONNECT without a port is refused with a clear status
    const bad = await uwrx(['run', '-q', '--replay', attempt, '--', 'sh', '-c',
      `curl -sS -o /dev/null -w '%{http_code}' -x ${proxy} -p ${url} ; printf 'CONNECT nonsense HTTP/1.1\\r\\n\\r\\n' | python3 -c "
import socket, sys
s = socket.create_connection(('proxy.example.test', 3128)); s.sendall(sys.stdin.buffer.read()); print(s.recv(200).split(b'\\r\\n')[0].decode())"`], { cwd: dir });
    t.regex(bad.stdout, /HTTP\/1\.1 400 Bad Request$/m);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
