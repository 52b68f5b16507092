// A directory with a filesystem mounted below it cannot be a lower layer of an overlay
// inside a user namespace, so the sandbox rebuilds it entry by entry. What the command
// creates there must still be written and recorded like anywhere else.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isRoot, removeWorkDirs, runUwrx, runners, workDir, type Runner } from './helpers/sandbox-users.js';

test.after.always(removeWorkDirs);

// mount(2) below the work directory in a mount namespace of the test's own, so nothing
// else running on the host sees it
const inMountNamespace = (r: Runner): Runner => ({
  ...r,
  prefix: ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
    'mount -t tmpfs -o mode=0777 uwrx-test "$0/sub" && echo below > "$0/sub/inside" && exec "$@"', '.', ...r.prefix],
});

for (const r of runners) {
  (isRoot ? test.serial : test.serial.skip)(`${r.name}: new entries beside a mount are written and recorded (needs root for the mount)`, async (t) => {
    const dir = await workDir(r);
    const { mkdirSync, chownSync } = await import('node:fs');
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'old.txt'), 'old\n');
    chownSync(path.join(dir, 'old.txt'), r.uid, r.gid);
    const runner = inMountNamespace(r);
    runner.prefix[runner.prefix.indexOf('.')] = dir;
    const out = await runUwrx(runner, dir, ['sh', '-c',
      'cat sub/inside old.txt && echo new > created && mkdir newdir && echo f > newdir/f && ls newdir && cat created']);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, 'below\nold\nf\nnew\n');
    const files = path.join(out.attemptDir, 'files', dir);
    t.is(readFileSync(path.join(files, 'created'), 'utf8'), 'new\n');
    t.is(readFileSync(path.join(files, 'newdir', 'f'), 'utf8'), 'f\n');
    t.false(existsSync(path.join(files, 'old.txt')), 'an entry only read is not in the record');
  });
}
