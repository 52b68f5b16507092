// uwrx-init holds process notices (spawn, exec, exit) and writes them to Node in
// batches: a handler thread appends while another thread writes what was held before,
// outside the append lock. Whatever the interleaving, Node gets every notice whole and
// in order: each process's spawn before its exec before its exit.
import test from 'ava';
import { readProcessTable } from '../src/record/procs.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

test('notices of processes started at once from several shells all arrive whole and in order', async (t) => {
  const cwd = scratchDir('uwrx-init-notices-');
  // four shells at once, each starting 120 processes with a long argv: some 250 KiB of
  // notices, so batches are written by handler threads (32 KiB each) and by pid 1's
  // loop while others append
  const pad = 'p'.repeat(400);
  const loop = (n: number) => `i=0; while [ $i -lt 120 ]; do /bin/echo ${n} $i ${pad} >/dev/null; i=$((i+1)); done`;
  const script = [1, 2, 3, 4].map((n) => `sh -c '${loop(n)}' &`).join(' ') + ' wait';
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(cwd));
  const echoes = procs.filter((p) => p.argv[0]?.toString() === '/bin/echo');
  t.is(echoes.length, 480);
  const shells = new Map(procs.filter((p) => p.argv[2]?.toString().startsWith('i=0')).map((p) => [p.pid, p]));
  t.is(shells.size, 4);
  const seen = new Set<string>();
  for (const p of echoes) {
    const argv = p.argv.map(String);
    t.is(argv.length, 4, p.key);
    t.is(argv[3], pad, p.key);
    t.is(p.exitCode, 0, p.key);
    // its shell is its parent, and that shell is the one its argv names
    const shell = shells.get(p.ppid);
    t.truthy(shell, p.key);
    t.true(shell!.argv.map(String).join(' ').includes(`/bin/echo ${argv[1]} `), p.key);
    seen.add(`${argv[1]}/${argv[2]}`);
  }
  t.is(seen.size, 480, 'every process once');
});
