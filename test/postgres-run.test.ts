// PostgreSQL under uwrx, as a user runs it: initdb, a server started with pg_ctl (a
// postmaster forking a backend per connection, shared memory, signals, latches), pgbench
// filling its tables and running transactions from 4 clients over TCP, a count through
// psql over the server's Unix socket, and a fast shutdown. Its backends leave their
// timeouts' itimer armed: their clock reads stay in process (docs/reproducibility.md).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chownSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const BIN = '/usr/lib/postgresql/15/bin';
const missing = ensureCommands({ [`${BIN}/postgres`]: 'postgresql-15', [`${BIN}/pgbench`]: 'postgresql-15', psql: 'postgresql-client-15', setpriv: 'util-linux' });

const SCRIPT = `set -e
B=${BIN}
$B/initdb -D data -U postgres --no-sync -A trust >initdb.log
$B/pg_ctl -D data -o "-c listen_addresses=127.0.0.1 -c port=5433 -k $PWD" -l server.log -w start >/dev/null
$B/pgbench -i -q -h 127.0.0.1 -p 5433 -U postgres -s 1 postgres 2>init.log
$B/pgbench -h 127.0.0.1 -p 5433 -U postgres -c 4 -j 2 -t 300 postgres | grep -E '^number of (transactions actually processed|failed)'
psql -h "$PWD" -p 5433 -U postgres -Atc "select count(*) from pgbench_accounts" -c "select count(*) from pgbench_history" postgres
$B/pg_ctl -D data -m fast stop >/dev/null
`;

test('postgres: initdb, a server, pgbench over TCP and psql over its socket, a fast shutdown', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = scratchDir('uwrx-postgres-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  // the server refuses to run as root: the command runs as the package's user
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  chownSync(cwd, uid, gid);
  const r = await uwrx(['run', '-q', '--build', 'b', '--', 'setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', 'sh', '-c', SCRIPT], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'number of transactions actually processed: 1200/1200\nnumber of failed transactions: 0 (0.000%)\n100000\n1200\n');
  // the record holds the server's processes: the postmaster, and its helpers and a
  // backend per connection, forked (no exec of their own)
  const procs = await uwrx(['inspect', 'procs', 'b/0/0', '--format', 'json'], { cwd });
  const table = JSON.parse(procs.stdout) as Array<{ pid: number; ppid: number; exe: string | null; cmdline: string[] | null }>;
  const postmaster = table.find((p) => p.exe?.endsWith('/postgres') && p.cmdline?.join(' ').includes(' -D '));
  t.truthy(postmaster, procs.stdout);
  const forked = table.filter((p) => p.ppid === postmaster?.pid);
  t.true(forked.length >= 10, `${forked.length} processes forked by the postmaster`);
  const status = JSON.parse(readFileSync(path.join(cwd, 'b/0/0/status'), 'utf8')) as { notifications?: Record<string, number> };
  const n = status.notifications ?? {};
  // with their itimer armed, the backends' clock reads (tens of thousands) are answered
  // in process
  t.true((n.gettimeofday ?? 0) + (n.clock_gettime ?? 0) < 500, JSON.stringify(n));
});
