// Prepared execs (src/native/include/uwrx_recorder.h): a dynamically linked exec whose
// start needs no answer from uwrx (no partial rebuild waits on it) is prepared at its
// execve notification, and the new image's shim starts without a control call. What the
// program sees and what the record holds are what the control call gives.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const probe = buildDriver('repro_probe', ['test/native/repro_probe.c']);

interface Status {
  notifications?: Record<string, number>;
}

function status(attemptDir: string): Status {
  return JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as Status;
}

/** The programs procs.tsv records as exec'd (its exe column's base names). */
function execs(attemptDir: string, name: string): number {
  return readFileSync(path.join(attemptDir, 'procs.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l.split('\t').some((f) => f === name || f.endsWith(`/${name}`))).length;
}

test('execs of a program seen before start without a control call, and are recorded', async (t) => {
  const cwd = scratchDir('uwrx-prepared-');
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done; echo done'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'done\n');
  const attempt = path.join(cwd, 'build/0/0');
  // the first exec of a path asks (rebuild learns its executable); sh's own exec too
  const control = status(attempt).notifications?.uwrx_control ?? 0;
  t.true(control <= 3, `${control} control calls for 11 execs`);
  t.is(execs(attempt, 'true'), 10, 'every exec is in the process table');
  const without = await uwrx(['run', '-q', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done'], {
    cwd,
    env: { ...process.env, UWRX_PREPARED_EXECS: '0' },
  });
  t.is(without.status, 0, without.stderr);
  t.true((status(path.join(cwd, 'build/10/0')).notifications?.uwrx_control ?? 0) >= 11, 'each exec asks without them');
});

test('a prepared exec sees the AT_RANDOM bytes, clocks and random bytes a control call gives', async (t) => {
  const cwd = scratchDir('uwrx-prepared-');
  // the probe's execs after the first are prepared (on the replay none is): a vfork
  // child's, a subshell's that recorded a call of its own before (its lease opens only
  // once its shim is known to have run), the shell's own
  const script = `${probe}; echo --; ${probe}; echo --; ( test -e /etc/hostname; exec ${probe} ); echo --; exec ${probe}`;
  const first = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd });
  t.is(first.status, 0, first.stderr);
  const replay = await uwrx(['run', '-q', '--replay', 'build/0/0'], { cwd, env: { ...process.env, UWRX_PREPARED_EXECS: '0' } });
  t.is(replay.status, 0, replay.stderr);
  t.is(replay.stdout, first.stdout);
  const runs = first.stdout.split('--\n');
  t.is(runs.length, 4);
  for (const out of runs) {
    t.regex(out, /^vdso=0$/m, 'the shim removed the vDSO');
    t.regex(out, /^at_random=[0-9a-f]{32}$/m);
  }
  t.not(runs[1], runs[2], 'each exec has its own bytes');
  const calls = (dir: string) => status(path.join(cwd, dir)).notifications?.uwrx_control ?? 0;
  t.true(calls('build/0/0') < calls('build/0/1'), `${calls('build/0/0')} control calls, ${calls('build/0/1')} without preparing`);
});

// Which images get the recorder library is learnt from what earlier images of the same
// program made of it (init/redirects.c). A vfork child's exec is prepared before its
// own header holds anything: that is no image of the parent's program with no calls.
// sh -c : asks where it is (two stats answered by the library) in every image.
test('the images of a program keep the recorder library they use', async (t) => {
  const cwd = scratchDir('uwrx-prepared-');
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', 'i=0; while [ $i -lt 64 ]; do sh -c :; i=$((i+1)); done'], { cwd });
  t.is(r.status, 0, r.stderr);
  const notified = status(path.join(cwd, 'build/0/0')).notifications ?? {};
  t.is(notified.newfstatat ?? 0, 0, JSON.stringify(notified));
  t.true((notified.uwrx_control ?? 0) <= 3, JSON.stringify(notified));
});
