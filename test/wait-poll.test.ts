// Waits that find nothing to reap (WNOHANG polls: a shell's second wait after every
// command, make's polls) are answered in process (--fast-path) without a notification,
// with the answers and clock values of the notification path. A blocking wait of a
// single-threaded process reaps in process too: uwrx-init joins the child's clock at the
// child's exit_group, before the wait returns, as it does for a notified wait4.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { sameOnBothPaths, scratchDir, uwrx, fromGate } from './helpers/uwrx.js';

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
    const gate = fromGate;
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

test('blocking waits reaped in process give the answers and clocks of the notification path, on capture and replay', async (t) => {
  const probe = buildDriver('wait_block', ['test/native/wait_block.c']);
  const dir = scratchDir('uwrx-wait-block-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const captured = await sameOnBothPaths(t, dir, [probe]);
  for (const line of ['by pid: the child, exit 4', 'any: the child, exit 5', 'own group: the child, exit 6',
    'ended before: the child, exit 7', 'killed: the child, signal 9', 'wait4: the child, exit 8', 'last: the child, exit 9']) {
    t.regex(captured, new RegExp(`^${line}, clock \\d+$`, 'm'), line);
  }
  // every child starts after the end of the one reaped before it, and the parent's clock
  // after a reap is past the child's end (its 30 ms sleep)
  const clocks = [...captured.matchAll(/clock (\d+)$|starts at (\d+)$/gm)].map((m) => BigInt(m[1] ?? m[2]!));
  for (let i = 1; i < clocks.length; i++) t.true(clocks[i]! > clocks[i - 1]!, captured);
});

test('a shell\'s blocking wait for a command is reaped from the gate, not notified', async (t) => {
  const dir = scratchDir('uwrx-wait-block-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const commands = 20;
  const waits = async (args: string[]) => {
    const r = await uwrx(['run', '--build', path.join(dir, 'build'), ...args, '--', 'sh', '-c', `for i in $(seq ${commands}); do /bin/true; done`], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    const attempt = path.resolve(dir, /record in (\S+)/.exec(r.stderr)?.[1] ?? 'none');
    const status = JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8')) as { notifications: Record<string, number> };
    return status.notifications.wait4 ?? 0;
  };
  const notified = await waits(['--no-fast-path']);
  // the blocking wait and the WNOHANG poll after it, per command
  t.true(notified >= 2 * commands, `${notified} notified`);
  const inProcess = await waits(['--fast-path']);
  // a command that ends before its shell waits is still notified (uwrx-init joins it there)
  t.true(inProcess <= commands / 2, `${inProcess} notified in process, ${notified} without`);
});
