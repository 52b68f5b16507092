// getrandom answered in process (the default fast path): the in-process recorder reads the
// main thread's stream uwrx-init leases to it, and every value is the one the notification
// path gives, also after a thread, a fork and an exec; a replay gives the same values on
// either path.
import test from 'ava';
import { rmSync } from 'node:fs';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { sameOnBothPaths, scratchDir, uwrx, fromGate } from './helpers/uwrx.js';

const missing = ensureCommands({ strace: 'strace' });

test('getrandom answered in process gives the values of the notification path, on capture and replay', async (t) => {
  const probe = buildDriver('random_lease', ['test/native/random_lease.c'], ['-pthread']);
  const dir = scratchDir('uwrx-random-lease-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const captured = await sameOnBothPaths(t, dir, [probe]);
  for (const line of ['main 1 ', 'main 4 ', 'entropy ', 'big tail ', 'thread ', 'child 2 ', 'after exec ']) {
    t.regex(captured, new RegExp(`^${line}[0-9a-f]+$`, 'm'), line);
  }
  t.regex(captured, /^bad buffer -1 14$/m, 'EFAULT');
  t.regex(captured, /^bad flags -1 22$/m, 'EINVAL');
});

test('in process, the main thread\'s getrandom calls are not notified', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const probe = buildDriver('random_lease', ['test/native/random_lease.c'], ['-pthread']);
  const dir = scratchDir('uwrx-random-lease-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // strace -i shows where each call was made: the recorder's gate (0x7fffc0000002, or 0x757700000002) lets
  // it through; anywhere else it is notified
  const calls = async (args: string[]) => {
    const r = await uwrx(['run', '--quiet', ...args, '--', 'strace', '-f', '-qq', '-i', '-e', 'trace=getrandom', probe], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => /\bgetrandom\(/.test(l));
    return { gate: lines.filter(fromGate).length, other: lines.filter((l) => !fromGate(l)).length };
  };
  const notified = await calls(['--no-fast-path']);
  t.is(notified.gate, 0);
  t.true(notified.other >= 12, JSON.stringify(notified));
  // the main thread's nine good calls (in three images) and malloc's own key in each
  // image (libc calls its getrandom, redirected to the recorder) move to the gate; left
  // notified: the thread's call, the bad buffer and the bad flags
  const inProcess = await calls(['--fast-path']);
  t.true(inProcess.gate >= 12, JSON.stringify(inProcess));
  t.true(inProcess.other <= 3, JSON.stringify({ inProcess, notified }));
});
