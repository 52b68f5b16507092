// When the sandboxed tree has ended, no process uses the seccomp filter any more and the
// kernel answers every SECCOMP_IOCTL_NOTIF_RECV at once with ENOENT. uwrx-init's handler
// threads then stop asking (src/native/init/notify.c) instead of spinning until pid 1
// exits, which under a real-time policy kept pid 1 itself off the CPU for seconds.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

const missing = ensureCommands({ strace: 'strace' });

test('uwrx-init receives notifications only while the tree runs', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = scratchDir('uwrx-notify-end-');
  const log = path.join(dir, 'strace.log');
  // strace follows Node, uwrx-init and its handler threads: the receives are theirs
  const status = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('strace', ['-f', '-qq', '-e', 'trace=ioctl', '-e', 'signal=none', '-o', log, process.execPath, uwrxBin, 'run', '--quiet', '--', 'true'], {
      cwd: dir,
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  t.is(status, 0);
  const receives = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('SECCOMP_IOCTL_NOTIF_RECV')).length;
  // `true` under the shim makes a handful of notified calls; each handler thread makes
  // one more receive, the one that finds the filter unused
  t.true(receives > 0, 'the handler threads were traced');
  t.true(receives < 100, `${receives} receives`);
});

// While the tree runs without notified calls (a long compile, a sleep), uwrx-init does
// not wake for nothing: the handler thread that watches for a busy receiver looks less
// and less often instead of every 2 ms (about 1000 wake-ups in 2 s), and pid 1's loop
// waits without its 20 ms tick when nothing waits for time to pass (about 100). The
// threads of pid 1 (uwrx-init, as the sandbox sees it) switch out a few dozen times,
// mostly for the calls of the commands around the sleep.
test('an idle tree leaves the handler threads asleep', async (t) => {
  const dir = scratchDir('uwrx-notify-idle-');
  const count = 'cat /proc/1/task/*/status | awk "/^voluntary_ctxt_switches/ {s += \\$2} END {print s}"';
  const r = await uwrx(['run', '--quiet', '--', 'sh', '-c', `a=$(${count}); sleep 2; b=$(${count}); echo $((b - a))`], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const switches = Number(r.stdout.trim());
  t.true(switches > 0 && switches < 120, `uwrx-init's threads switched out ${switches} times in 2 s`);
});
