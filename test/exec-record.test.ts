// An exec's record (path, argv, cwd) is read from the calling process while its exec
// waits: from a vfork child, which shares its parent's memory, with process_vm_readv,
// and from a forked child through /proc/<pid>/mem, which then stays open to tell the
// exec's outcome. Both give the whole argv, also when it spans several pages.
import test from 'ava';
import path from 'node:path';
import { readProcessTable } from '../src/record/procs.js';
import { ensureCommands } from './helpers/packages.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

test("a long argv is recorded whole from a vfork child's exec and from a forked child's", async (t) => {
  ensureCommands({ perl: 'perl' });
  const cwd = scratchDir('uwrx-exec-record-');
  const args = Array.from({ length: 600 }, (_, i) => `arg-${i}-${'x'.repeat(i % 37)}`);
  // sh starts /bin/true from a vfork child; perl forks, and its child execs
  const forked = `perl -e 'my $p = fork; if (!$p) { exec @ARGV; exit 127 } waitpid $p, 0' /bin/true ${args.join(' ')}`;
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', `/bin/true ${args.join(' ')}; ${forked}; /bin/true short`], { cwd });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(cwd));
  const trues = procs.filter((p) => p.argv[0]?.toString() === '/bin/true');
  t.is(trues.length, 3, JSON.stringify(procs.map((p) => [p.key, p.argv.slice(0, 2).map(String)])));
  const perl = procs.find((p) => p.argv[0]?.toString() === 'perl')!;
  t.deepEqual(trues.map((p) => p.ppid === perl.pid), [false, true, false], 'the second is the forked child of perl');
  for (const [p, want] of trues.map((p, i) => [p, i === 2 ? ['short'] : args] as const)) {
    t.deepEqual(p.argv.map(String), ['/bin/true', ...want], p.key);
    t.is(p.exe?.toString(), '/bin/true', p.key);
    t.is(p.cwd?.toString(), path.resolve(cwd), p.key);
    t.is(p.exitCode, 0, p.key);
  }
});
