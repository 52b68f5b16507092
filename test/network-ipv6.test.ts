// IPv6 inside the sandbox: a name resolves to an address of the run's private prefix as
// well as its loopback IPv4 address, clients that prefer IPv6 (curl, python3 with
// AI_ADDRCONFIG) reach the server through it, and a replay answers at the same address.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';
import { startServers, testBytes } from '../bench/net-servers.js';
import { readExchanges } from '../src/network/record.js';

const HOST = 'v6.example.test';
const missing = ensureCommands({ curl: 'curl', python3: 'python3' });

test.serial('curl -6 and python3 reach a server over the private IPv6 prefix, in capture and replay', async (t) => {
  t.deepEqual(missing, []);
  const dir = scratchDir();
  const servers = await startServers(dir, [HOST]);
  try {
    const url = `https://${HOST}:${servers.httpsPort}/a.tar.gz`;
    const script = [
      `getent ahostsv6 ${HOST} | head -1 | cut -d' ' -f1`,
      `curl -6 -sS ${url} | sha256sum`,
      `python3 -c "import socket; print(sorted({a[0] for a in socket.getaddrinfo('${HOST}', 443, flags=socket.AI_ADDRCONFIG)}))"`,
    ].join(' && ');
    const args = ['--dns-map', `${HOST}=127.0.0.1`, '--upstream-ca', servers.caFile, '--', 'sh', '-c', script];
    const first = await uwrx(['run', '-q', ...args], { cwd: dir });
    t.is(first.status, 0, first.stderr);
    const attempt = lastAttempt(dir);
    const ip6 = readFileSync(path.join(attempt, 'net', HOST, 'ip6.txt'), 'utf8').trim();
    t.regex(ip6, /^fd75:7772:7800:/);
    const [address, sum, families] = first.stdout.trim().split('\n');
    t.is(address, ip6);
    t.is(sum, `${(await import('node:crypto')).createHash('sha256').update(testBytes(300_000)).digest('hex')}  -`);
    t.is(families, '[<AddressFamily.AF_INET: 2>, <AddressFamily.AF_INET6: 10>]');
    t.like(readExchanges(attempt)[0], { target: '/a.tar.gz', status: 200 });

    await servers.close();
    const replay = await uwrx(['run', '-q', '--replay', attempt], { cwd: dir });
    t.is(replay.status, 0, replay.stderr);
    t.is(replay.stdout, first.stdout);
  } finally {
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
