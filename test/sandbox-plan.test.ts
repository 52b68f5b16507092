// The sandbox plan as data: what uwrx-init will mount, computed without running it, for
// a made-up host (test/helpers/fake-host.ts) so each case states the machine it plans for.
import test from 'ava';
import path from 'node:path';
import { computePlan, preflight, renderPlan } from '../src/sandbox/index.js';
import { mountPoints, type PlanInput } from '../src/sandbox/plan.js';
import { sysSubmounts } from '../src/sandbox/plan/dev.js';
import { joinPath } from '../src/sandbox/plan/steps.js';
import { dir, fakeHost, file, symlink, type FakeHostOptions } from './helpers/fake-host.js';

const mountinfo = [
  '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '21 26 0:20 / /proc rw,relatime - proc proc rw',
  '23 26 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw',
  '27 26 0:24 / /mnt/with\\040space/inner ro - tmpfs t ro',
  '28 26 0:25 / /tmp/small rw - tmpfs t rw',
].join('\n');

const tree: FakeHostOptions['tree'] = {
  '/usr/bin/make': file(0o755),
  '/etc/hostname': file(),
  '/etc': dir(0o755),
  '/home/u/proj': dir(0o755, 1000, 1000),
  '/lib64': symlink('usr/lib64'),
  '/usr/lib64/ld-linux-x86-64.so.2': file(0o755),
  '/tmp': dir(0o1777),
  '/tmp/cc1234.o': file(0o600, 1000, 1000),
  '/tmp/build-x': dir(0o700, 1000, 1000),
  '/tmp/small': dir(0o1777),
  '/mnt/with space/inner': dir(),
  '/proc': dir(0o555),
  '/dev': dir(),
  '/sys': dir(0o555),
  '/vmlinuz': file(),
};

function input(extra: Partial<PlanInput> = {}): PlanInput {
  return {
    argv: ['make', '-j2'],
    cwd: '/home/u/proj',
    env: { PATH: '/usr/bin', GONE: undefined },
    runDir: '/scratch/run-x',
    hide: ['/does-not-exist-uwrx'],
    ...extra,
  };
}

function plan(uid: number, extra: Partial<PlanInput> = {}, host: Partial<FakeHostOptions> = {}) {
  return computePlan(input(extra), fakeHost({ uid, gid: uid, tree, mountinfo, ...host }));
}

test('the host\'s mounts below /sys are bound from the top ones, none under a hidden path', (t) => {
  const info = [
    '22 1 0:21 / /sys rw - sysfs sysfs rw',
    '30 22 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro',
    '31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '40 22 0:12 / /sys/kernel/tracing rw - tracefs tracefs rw',
    '41 22 0:7 / /sys/kernel/debug rw - debugfs debugfs rw',
    '50 1 0:30 / /sysroot rw - ext4 /dev/sda1 rw',
  ].join('\n');
  t.deepEqual(sysSubmounts(mountPoints(info), []), ['/sys/fs/cgroup', '/sys/kernel/tracing', '/sys/kernel/debug']);
  t.deepEqual(sysSubmounts(mountPoints(info), ['/sys/kernel/debug']), ['/sys/fs/cgroup', '/sys/kernel/tracing']);
  // in a plan: each bound recursively, best effort, into the fresh sysfs
  const binds = (info: string) =>
    plan(0, {}, { mountinfo: info }).init.steps.flatMap((s) => (s.op === 'mount' && s.source?.startsWith('/sys/') ? [s] : []));
  t.deepEqual(binds(mountinfo), []);
  const withSys = binds(`${mountinfo}\n${info}`);
  t.deepEqual(withSys.map((s) => s.target), ['/sys/fs/cgroup', '/sys/kernel/tracing', '/sys/kernel/debug'].map((p) => joinPath('/scratch/run-x/root', p)));
  t.true(withSys.every((s) => s.flags === (0x1000 | 0x4000) && s.bestEffort === true && s.fstype === null));
  const readOnly = plan(0, {}, { mountinfo: `${mountinfo}\n${info}` }).init.steps.flatMap((s) =>
    s.op === 'readonly' && withSys.some((m) => m.target === s.path) ? [[s.path, s.flags, s.bestEffort]] : []);
  t.deepEqual(readOnly, withSys.map((m) => [m.target, 1, true]), 'each read-only, all the way down');
});

test('mount points are decoded from mountinfo', (t) => {
  t.deepEqual(mountPoints(mountinfo), ['/', '/proc', '/dev', '/mnt/with space/inner', '/tmp/small']);
});

test('each top-level directory is an overlay; special filesystems are fresh', (t) => {
  const p = plan(1000);
  const usr = p.overlays.find((o) => o.mountPoint === '/usr');
  t.truthy(usr);
  t.is(usr!.upper, `/scratch/run-x/upper/${p.overlays.indexOf(usr!)}`);
  t.false(p.overlays.some((o) => ['/proc', '/dev', '/sys'].includes(o.mountPoint)));
  const fstypes = p.init.steps.flatMap((s) => (s.op === 'mount' && s.fstype ? [s.fstype] : []));
  for (const fs of ['proc', 'sysfs', 'devpts', 'tmpfs']) t.true(fstypes.includes(fs), fs);
  t.deepEqual(p.init.steps.at(-1), { op: 'pivot', path: '/scratch/run-x/root' });
  t.true(p.init.steps.every((s) => s.op !== 'mount' || !s.data?.includes('lowerdir=/,')));
  // a top-level file is bound read-only, a top-level symlink copied
  t.true(p.init.steps.some((s) => s.op === 'mount' && s.source === '/vmlinuz' && !s.bestEffort));
  t.true(p.init.steps.some((s) => s.op === 'symlink' && s.path === '/scratch/run-x/root/lib64' && s.target === 'usr/lib64'));
});

test('the same inputs and host give the same plan', (t) => {
  t.deepEqual(plan(1000), plan(1000));
});

test('identity: the caller maps to itself, root gets the full range', (t) => {
  t.like(plan(1000).init, { uidMap: '1000 1000 1', gidMap: '1000 1000 1', denySetgroups: true });
  t.like(plan(0).init, { uidMap: '0 0 4294967295', denySetgroups: false });
  t.deepEqual(plan(1000).init.env, ['PATH=/usr/bin']);
});

test('unprivileged, a directory shows the caller\'s own rights in its owner bits', (t) => {
  const etc = plan(1000).overlays.find((o) => o.mountPoint === '/etc')!;
  t.is(etc.hostMode, 0o755);
  t.is(etc.mode, 0o555);
  t.is(plan(0).overlays.find((o) => o.mountPoint === '/etc')!.mode, 0o755);
});

test('a directory with mounts below is rebuilt entry by entry; its entries are best effort', (t) => {
  const p = plan(0);
  const steps = p.init.steps;
  // its placeholders are the lowest layer of its own overlay, so new entries are written
  // to an upper and recorded; the entries are mounted over the overlay afterwards
  const tmp = p.overlays.find((o) => o.mountPoint === '/tmp');
  t.truthy(tmp);
  const tmpMount = steps.findIndex((s) => s.op === 'mount' && s.target === '/scratch/run-x/root/tmp');
  t.like(steps[tmpMount], { fstype: 'overlay' });
  t.regex((steps[tmpMount] as { data: string }).data, new RegExp(`lowerdir=/scratch/run-x/scaffold/skeleton/tmp,upperdir=${tmp!.upper},`));
  const placeholder = steps.findIndex((s) => s.op === 'file' && s.path === '/scratch/run-x/scaffold/skeleton/tmp/cc1234.o');
  t.true(placeholder >= 0 && placeholder < tmpMount, 'placeholders before the overlay');
  t.true(steps.findIndex((s) => s.op === 'mount' && s.source === '/tmp/cc1234.o') > tmpMount, 'entries mounted after it');
  const bind = steps.find((s) => s.op === 'mount' && s.source === '/tmp/cc1234.o');
  t.like(bind, { target: '/scratch/run-x/root/tmp/cc1234.o', bestEffort: true });
  const build = steps.find((s) => s.op === 'mount' && s.target === '/scratch/run-x/root/tmp/build-x');
  t.like(build, { fstype: 'overlay', bestEffort: true });
  // the mount below is a mount, not a temporary entry: it must be there
  const small = steps.find((s) => s.op === 'mount' && s.target === '/scratch/run-x/root/tmp/small');
  t.truthy(small);
  t.falsy(small!.bestEffort);
});

test('an overlay over a host directory alone is made ahead; over a skeleton or a parent\'s layers it is not', (t) => {
  const mountOf = (p: ReturnType<typeof plan>, target: string) =>
    p.init.steps.find((s) => (s.op === 'mount' || s.op === 'lazy') && s.fstype === 'overlay' && s.target === `/scratch/run-x/root${target}`);
  const p = plan(0);
  t.like(mountOf(p, '/usr'), { ahead: true });
  t.like(mountOf(p, '/tmp/build-x'), { ahead: true, bestEffort: true });
  t.is(mountOf(p, '/tmp')!.ahead, undefined, 'its lowest layer is the skeleton, made by earlier steps');
  // a parent's layers enter with the real directory through an overlay of their own
  const parents = [{ attemptDir: '/b/0/0', roots: ['/b/0/0/files'] }];
  const withParent = computePlan(input({ parents }), fakeHost({ uid: 0, gid: 0, tree: { ...tree, '/b/0/0/files/usr/x': file() }, mountinfo }));
  t.is(mountOf(withParent, '/usr')!.ahead, undefined);
  t.like(mountOf(withParent, '/etc'), { ahead: true });
  t.regex(renderPlan(p.init), /-> \/scratch\/run-x\/root\/usr read-only, then overlay lowerdir=\/usr,\S+ at its first change \(made ahead\)\n/);
  t.regex(renderPlan(plan(0, { lazyRoot: false }).init), /-> \/scratch\/run-x\/root\/usr lowerdir=\/usr,\S+ \(made ahead\)\n/);
});

test('a top-level tree over the host alone starts as a read-only bind, its overlay attached at the first change', (t) => {
  const stepAt = (p: ReturnType<typeof plan>, target: string) => p.init.steps.find((s) => 'target' in s && s.target === `/scratch/run-x/root${target}`);
  for (const uid of [0, 1000]) {
    const p = plan(uid);
    const usr = p.overlays.find((o) => o.mountPoint === '/usr')!;
    t.like(stepAt(p, '/usr'), { op: 'lazy', name: '/usr', path: '/usr', source: 'overlay', fstype: 'overlay', ahead: true });
    t.regex((stepAt(p, '/usr') as { data: string }).data, new RegExp(`^lowerdir=/usr,upperdir=${usr.upper},workdir=`));
    // the command's cwd is in an overlay from the start
    t.like(stepAt(p, '/home'), { op: 'mount', fstype: 'overlay' });
    // so is a tree over a skeleton (mounts below it)
    t.like(stepAt(p, '/tmp'), { op: 'mount', fstype: 'overlay' });
  }
  // a tree with a hidden path below it
  t.like(stepAt(plan(0, { cwd: '/', hide: ['/usr/lib64'] }), '/usr'), { op: 'mount' });
  // parents with layers for the tree
  const parents = [{ attemptDir: '/b/0/0', roots: ['/b/0/0/files'] }];
  const withParent = computePlan(input({ parents }), fakeHost({ uid: 0, gid: 0, tree: { ...tree, '/b/0/0/files/usr/x': file() }, mountinfo }));
  t.like(stepAt(withParent, '/usr'), { op: 'mount' });
  t.like(stepAt(withParent, '/etc'), { op: 'lazy' });
  // a read-only bind over a file below it (the ld.so shim) is mounted again over the
  // overlay when it is attached: the tree stays lazy
  const repro = plan(1000, { repro: { seed: 'ab'.repeat(32), t0Ns: 5n, timeMode: 'frozen' as const } });
  t.like(stepAt(repro, '/usr'), { op: 'lazy' });
  // turned off: every tree an overlay from the start
  t.false(plan(0, { lazyRoot: false }).init.steps.some((s) => s.op === 'lazy'));
});

test('an entry that vanished while planning is left out, not an error', (t) => {
  const host = fakeHost({ uid: 0, gid: 0, tree, mountinfo });
  const vanishing = { ...host, lstat: (p: string) => (p === '/tmp/build-x' ? null : host.lstat(p)) };
  const p = computePlan(input(), vanishing);
  t.false(p.init.steps.some((s) => 'path' in s && s.path === '/scratch/run-x/root/tmp/build-x'));
  t.true(p.init.steps.some((s) => s.op === 'mount' && s.source === '/tmp/cc1234.o'));
});

test('hidden paths become whiteouts in their overlay\'s upper; absent ones are ignored', (t) => {
  const p = plan(1000, { hide: ['/home/u/proj', '/home/u/proj/build', '/does-not-exist-uwrx'] });
  t.deepEqual(p.init.steps.filter((s) => s.op === 'mount' && s.source === 'uwrx-hidden'), []);
  const whiteouts = p.overlays.flatMap((o) => (o.whiteouts ?? []).map((w) => path.join(o.mountPoint, path.relative(o.upper, w))));
  t.deepEqual(whiteouts, ['/home/u/proj']);
  // the upper's directories on the way to it exist before the run
  const home = p.overlays.find((o) => o.whiteouts)!;
  t.true((home.upperDirs ?? []).every((d) => '/home/u/proj'.startsWith(path.join(home.mountPoint, path.relative(home.upper, d.path)))));
  t.regex(renderPlan(p.init, p.overlays), /upper whiteout .*\/u\/proj \(hidden inside\)/);
});

test('reproducibility adds deterministic /dev/random, the domain name and the ld.so shim', (t) => {
  const repro = { seed: 'ab'.repeat(32), t0Ns: 5n, timeMode: 'frozen' as const };
  const p = plan(1000, { repro });
  t.deepEqual(p.ldso, { real: '/usr/lib64/ld-linux-x86-64.so.2', combined: '/scratch/run-x/ld.so' });
  t.true(p.init.steps.some((s) => s.op === 'mount' && s.source === '/scratch/run-x/ld.so' && s.target === '/scratch/run-x/root/usr/lib64/ld-linux-x86-64.so.2'));
  t.like(p.init, { seed: repro.seed, t0Ns: '5', timeMode: 1 });
  t.is(p.init.steps.filter((s) => s.op === 'devrandom').length, 2);
  t.false('ldso' in plan(1000, { repro: { ...repro, shim: false } }));
  t.false(plan(1000).init.steps.some((s) => s.op === 'devrandom' || s.op === 'domainname'));
});

test('a host terminal on stdio becomes a pty step after the sandbox\'s devpts', (t) => {
  const steps = plan(1000, {}, { ptys: [3] }).init.steps;
  const pty = steps.findIndex((s) => s.op === 'pty');
  t.deepEqual(steps[pty], { op: 'pty', source: '/dev/pts/3', path: '/scratch/run-x/root/dev/pts/3', bestEffort: true });
  t.true(steps.findIndex((s) => s.op === 'mount' && s.fstype === 'devpts') < pty);
});

test('the rendered plan reads as a list of steps and marks best-effort ones', (t) => {
  const text = renderPlan(plan(1000).init);
  t.regex(text, /lazy \/usr -> \/scratch\/run-x\/root\/usr read-only, then overlay lowerdir=\/usr,upperdir=/);
  t.regex(text, /mount overlay overlay -> \/scratch\/run-x\/root\/home \S* ?lowerdir=\/home,upperdir=/);
  t.regex(text, /mount - \/tmp\/cc1234\.o -> \/scratch\/run-x\/root\/tmp\/cc1234\.o \[bind\] \(best effort\)\n/);
  t.regex(text, /pivot_root \/scratch\/run-x\/root\n$/);
});

test('this machine can run the sandbox', (t) => {
  t.is(preflight(), null);
});

test('the plan joins paths as path.join does, normal or not', (t) => {
  const dirs = ['/r/root', '/', '/r/root/', '/r//root', '/r/./root', '/r/x/../root', 'rel/dir', ''];
  const names = ['/usr', 'usr', '/', '', '.', '..', '/usr/', '/a//b', '/a/./b', '/a/../b', '..x', '/.hidden', '.hidden', 'a/..', '/usr/lib/x86_64-linux-gnu'];
  for (const d of dirs) for (const n of names) t.is(joinPath(d, n), path.join(d, n), `joinPath(${JSON.stringify(d)}, ${JSON.stringify(n)})`);
});
