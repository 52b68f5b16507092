// Clock reads answered in process (--fast-path): the in-process recorder reads the clocks
// uwrx-init leases to it, and every value is the one the notification path gives, also
// across forks, waits, threads and exec; a replay gives the same values on either path.
import test from 'ava';
import { rmSync } from 'node:fs';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { sameOnBothPaths, scratchDir, uwrx } from './helpers/uwrx.js';
import { shmHasRoom } from '../src/record/traces-dir.js';

const missing = ensureCommands({ strace: 'strace' });

test('reads answered in process give the values of the notification path, on capture and replay', async (t) => {
  const probe = buildDriver('clock_lease', ['test/native/clock_lease.c'], ['-pthread']);
  const dir = scratchDir('uwrx-clock-lease-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const captured = await sameOnBothPaths(t, dir, [probe, '/bin/date'], ['--time', 'frozen']);
  t.regex(captured, /^child 2 \d+ \d+$/m);
});

// Short processes in a row take the trace buffers of those before them from the pool, and
// with each buffer its recorder header, still mapped in uwrx-init from the process that
// ended (clocks.c): every process's in-process reads, its children's joins and its thread
// still give the notification path's values, never state left from the header's last user.
test('processes taking pooled buffers and their kept headers read the notification path\'s clocks', async (t) => {
  if (!shmHasRoom()) {
    t.pass('the buffers are pooled only on a tmpfs, where /dev/shm has room');
    return;
  }
  const probe = buildDriver('clock_lease', ['test/native/clock_lease.c'], ['-pthread']);
  const dir = scratchDir('uwrx-clock-lease-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // the probe sleeps 20 ms: the collector's scans (every 20 ms) return buffers in between
  const loop = `i=0; while [ $i -lt 25 ]; do ${probe} || exit 1; echo round $i; i=$((i+1)); done`;
  const captured = await sameOnBothPaths(t, dir, ['/bin/sh', '-c', loop]);
  t.is(captured.split('\n').filter((l) => /^round \d+$/.test(l)).length, 25);
  t.is(captured.split('\n').filter((l) => /^child 2 \d+ \d+$/.test(l)).length, 25);
});

test('in process, clock reads make no system call; notified, every read is one', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const probe = buildDriver('clock_lease', ['test/native/clock_lease.c'], ['-pthread']);
  const dir = scratchDir('uwrx-clock-lease-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const calls = async (args: string[]) => {
    const r = await uwrx(['run', '--quiet', ...args, '--', 'strace', '-f', '-qq', '-i', '-e', 'trace=clock_gettime,gettimeofday,time', probe], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    // the recorder's own reads of the real time for its records (the output records of
    // the probe's writes among them) are made from the gate, not by the program
    const own = /\[0*(7fffc0000002|757700000002)\] clock_gettime\(CLOCK_BOOTTIME/;
    return r.stderr.split('\n').filter((l) => /\b(clock_gettime|gettimeofday|time)\(/.test(l) && !own.test(l)).length;
  };
  const notified = await calls(['--no-fast-path']);
  t.true(notified >= 120, `${notified} calls on the notification path`);
  // the reads right after a timed wait or a reap still go through a notification
  const inProcess = await calls(['--fast-path']);
  t.true(inProcess <= 8, `${inProcess} calls left with --fast-path`);
});
