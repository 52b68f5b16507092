// What the kernel must offer before a sandbox can start; one line when something lacks.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { helperPath } from '../native.js';
import { childProcess } from '../builtins.js';

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  if (!m) return true;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

export function checkKernel(): string | null {
  if (process.platform !== 'linux') return `uwrx needs Linux (this is ${process.platform})`;
  if (process.arch !== 'x64') return `uwrx supports x86_64 only for now (this is ${process.arch})`;
  if (!kernelAtLeast(5, 14)) {
    return `kernel ${os.release()} lacks seccomp user notification with ADDFD_FLAG_SEND: uwrx needs Linux 5.14 or newer`;
  }
  if (readNumber('/proc/sys/user/max_user_namespaces') === 0) {
    return 'user namespaces are disabled (user.max_user_namespaces = 0): run "sysctl -w user.max_user_namespaces=15000" as root';
  }
  const unprivileged = process.getuid?.() !== 0;
  if (unprivileged && readNumber('/proc/sys/kernel/unprivileged_userns_clone') === 0) {
    return 'unprivileged user namespaces are disabled: run "sysctl -w kernel.unprivileged_userns_clone=1" as root, or run uwrx as root';
  }
  if (unprivileged && readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === 1) {
    return 'AppArmor restricts unprivileged user namespaces: run "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" as root, or run uwrx as root';
  }
  let filesystems = '';
  try {
    filesystems = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    return 'cannot read /proc/filesystems: is /proc mounted?';
  }
  if (!/\toverlay\n/.test(filesystems)) {
    return 'overlayfs is not available: run "modprobe overlay" as root (uwrx needs it for the sandbox root)';
  }
  if (unprivileged && !kernelAtLeast(5, 11)) {
    return `kernel ${os.release()} cannot mount overlayfs in a user namespace: use Linux 5.11 or newer, or run uwrx as root`;
  }
  if (underSeccompFilter() && childProcess().spawnSync(helperPath('uwrx-init'), ['--probe-listener']).status === LISTENER_BUSY) {
    return 'cannot run inside another uwrx run (or under another seccomp notification supervisor): ' +
      'the kernel allows one seccomp listener per process tree';
  }
  return null;
}

/** `uwrx-init --probe-listener` exit status: this tree has a seccomp listener already. */
const LISTENER_BUSY = 3;

/** True when this process runs under a seccomp filter (only then can a listener exist). */
function underSeccompFilter(): boolean {
  try {
    return /^Seccomp:\s*2$/m.test(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
}
