// Fresh kernel filesystems for the new pid and net namespaces: /proc, /sys, and /dev as
// a tmpfs with the usual nodes bound from the host, a new devpts and /dev/shm.
import path from 'node:path';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, inRoot, isUnder, type BuildContext } from './steps.js';

/** Device nodes bound from the host into the sandbox's /dev. */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export function buildKernelFilesystems(ctx: BuildContext): void {
  const { steps } = ctx;
  steps.mount('proc', inRoot(ctx, '/proc'), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  // the host's pid_max, which a new pid namespace does not inherit (ps sizes its columns by it)
  const pidMax = ctx.host.pidMax();
  if (pidMax !== null) steps.push({ op: 'pidmax', path: inRoot(ctx, '/proc'), flags: pidMax, bestEffort: true });
  steps.mount('sysfs', inRoot(ctx, '/sys'), 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  // What the host mounts below /sys (the cgroup hierarchies, tracing ...) is bound in
  // as it is there: a fresh sysfs has none of it, and programs that size themselves by
  // their cgroup's limits (a JVM's heap, Go's and Rust's parallelism) read them there.
  // Read-only, as the fresh sysfs is: a build does not change the host's cgroups or
  // tracing (the sandbox's root could, through a user namespace that maps the owner).
  for (const p of sysSubmounts(ctx.hostMounts, ctx.hidden)) {
    steps.mount(p, inRoot(ctx, p), null, MS_BIND | MS_REC, null, true);
    steps.push({ op: 'readonly', path: inRoot(ctx, p), flags: 1, bestEffort: true });
  }
  const dev = inRoot(ctx, '/dev');
  steps.mount('uwrx-dev', dev, 'tmpfs', MS_NOSUID, 'mode=0755');
  for (const node of DEV_NODES) {
    steps.push({ op: 'file', path: path.join(dev, node), mode: 0o666 });
    steps.mount('/dev/' + node, path.join(dev, node), null, MS_BIND, null);
  }
  steps.mkdir(path.join(dev, 'pts'), 0o755);
  steps.mount('devpts', path.join(dev, 'pts'), 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=620');
  steps.push({ op: 'symlink', target: 'pts/ptmx', path: path.join(dev, 'ptmx') });
  // The terminal the command runs on keeps its name (ttyname, `tty`): the same index is
  // taken in the new instance and the host's pty bound over it (skipped when impossible).
  for (const n of ctx.host.ptys()) {
    steps.push({ op: 'pty', source: `/dev/pts/${n}`, path: path.join(dev, 'pts', String(n)), bestEffort: true });
  }
  steps.mkdir(path.join(dev, 'shm'), 0o755);
  steps.mount('uwrx-shm', path.join(dev, 'shm'), 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777');
  steps.push({ op: 'symlink', target: '/proc/self/fd', path: path.join(dev, 'fd') });
  ['stdin', 'stdout', 'stderr'].forEach((name, fd) =>
    steps.push({ op: 'symlink', target: `/proc/self/fd/${fd}`, path: path.join(dev, name) }),
  );
}

/** Of the host's mount points (mountinfo's order), those directly below /sys (each
 * bound recursively brings the ones below it); none under a hidden path. */
export function sysSubmounts(points: readonly string[], hidden: readonly string[]): string[] {
  const below = points.filter((p) => p !== '/sys' && isUnder(p, '/sys') && !hidden.some((h) => isUnder(p, h)));
  const top: string[] = [];
  for (const p of below) if (!top.some((t) => isUnder(p, t))) top.push(p);
  return top;
}
