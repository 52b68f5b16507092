// The sandbox plan as data: what uwrx-init will mount, computed without running it.
import test from 'ava';
import { computePlan, preflight, renderPlan } from '../src/sandbox/index.js';
import { mountPoints } from '../src/sandbox/plan.js';

const mountinfo = [
  '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '21 26 0:20 / /proc rw,relatime - proc proc rw',
  '23 26 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw',
  '27 26 0:24 / /mnt/with\\040space/inner ro - tmpfs t ro',
].join('\n');

function plan(uid: number) {
  return computePlan({
    argv: ['make', '-j2'],
    cwd: '/home/u/proj',
    env: { PATH: '/usr/bin', GONE: undefined },
    runDir: '/tmp/run-x',
    hide: ['/tmp/does-not-exist-uwrx'],
    uid,
    gid: uid,
    mountinfo,
  });
}

test('mount points are decoded from mountinfo', (t) => {
  t.deepEqual(mountPoints(mountinfo), ['/', '/proc', '/dev', '/mnt/with space/inner']);
});

test('each top-level directory is an overlay; special filesystems are fresh', (t) => {
  const p = plan(1000);
  const usr = p.overlays.find((o) => o.mountPoint === '/usr');
  t.truthy(usr);
  t.is(usr!.upper, `/tmp/run-x/ovl/${p.overlays.indexOf(usr!)}/upper`);
  t.false(p.overlays.some((o) => ['/proc', '/dev', '/sys'].includes(o.mountPoint)));
  const fstypes = p.init.steps.flatMap((s) => (s.op === 'mount' && s.fstype ? [s.fstype] : []));
  for (const fs of ['proc', 'sysfs', 'devpts', 'tmpfs']) t.true(fstypes.includes(fs), fs);
  t.deepEqual(p.init.steps.at(-1), { op: 'pivot', path: '/tmp/run-x/root' });
  t.true(p.init.steps.every((s) => s.op !== 'mount' || !s.data?.includes('lowerdir=/,')));
});

test('identity: the caller maps to itself, root gets the full range', (t) => {
  t.like(plan(1000).init, { uidMap: '1000 1000 1', gidMap: '1000 1000 1', denySetgroups: true });
  t.like(plan(0).init, { uidMap: '0 0 4294967295', denySetgroups: false });
  t.deepEqual(plan(1000).init.env, ['PATH=/usr/bin']);
});

test('the rendered plan reads as a list of steps', (t) => {
  const text = renderPlan(plan(1000).init);
  t.regex(text, /mount overlay overlay -> \/tmp\/run-x\/root\/usr \S* ?lowerdir=\/usr,upperdir=/);
  t.regex(text, /pivot_root \/tmp\/run-x\/root\n$/);
});

test('this machine can run the sandbox', (t) => {
  t.is(preflight(), null);
});
