// When the sandboxed tree has ended, no process uses the seccomp filter any more and the
// kernel answers every SECCOMP_IOCTL_NOTIF_RECV at once with ENOENT. uwrx-init's handler
// threads then stop asking (src/native/init/notify.c) instead of spinning until pid 1
// exits, which under a real-time policy kept pid 1 itself off the CPU for seconds.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrxBin } from './helpers/uwrx.js';

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
