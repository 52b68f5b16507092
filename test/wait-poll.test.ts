// Waits that find nothing to reap (WNOHANG polls: a shell's second wait after every
// command, make's polls) are answered in process (--fast-path) without a notification,
// with the answers and clock values of the notification path; a wait that can reap
// still goes through uwrx-init, which joins the child's clock.
import test from 'ava';
import { rmSync } from 'node:fs';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { sameOnBothPaths, scratchDir, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ strace: 'strace' });

test('polls answered in process give the answers and clocks of the notification path, on capture and replay', async (t) => {
  const probe = buildDriver('wait_poll', ['test/native/wait_poll.c']);
  const dir = scratchDir('uwrx-wait-poll-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const captured = await sameOnBothPaths(t, dir, [probe]);
  t.regex(captured, /^no children: -1 No child processes$/m);
  t.regex(captured, /^running, own group: 0$/m);
  t.regex(captured, /^not a child: -1 No child processes$/m);
  t.regex(captured, /^status untouched: -1$/m);
  t.regex(captured, /^exit 7, clock \d+$/m);
  t.regex(captured, /^exit 3, clock \d+$/m);
});

test('a shell\'s poll after each command is made from the gate, not notified', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = scratchDir('uwrx-wait-poll-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const waits = async (args: string[]) => {
    const r = await uwrx(['run', '--quiet', ...args, '--', 'strace', '-f', '-i', '-qq', '-e', 'trace=wait4,waitid',
      'sh', '-c', 'for i in 1 2 3 4 5; do /bin/true; done'], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n');
    const gate = (l: string) => l.includes('[0000757700000002]');
    return {
      // dash waits blocking, then polls with WNOHANG once per command
      polls: lines.filter((l) => /\bwait4\(-1, .*WNOHANG/.test(l) && !gate(l)).length,
      probes: lines.filter((l) => /\bwaitid\(.*WNOWAIT/.test(l) && gate(l)).length,
      reaps: lines.filter((l) => /\bwait4\b.* = [1-9]\d*$/.test(l)).length,
    };
  };
  const notified = await waits(['--no-fast-path']);
  t.true(notified.polls >= 5, `${JSON.stringify(notified)} notified`);
  t.is(notified.probes, 0);
  const inProcess = await waits(['--fast-path']);
  t.is(inProcess.polls, 0, JSON.stringify(inProcess));
  t.true(inProcess.probes >= 5, JSON.stringify(inProcess));
  t.true(inProcess.reaps >= 5, `the reaping waits stay: ${JSON.stringify(inProcess)}`);
});
