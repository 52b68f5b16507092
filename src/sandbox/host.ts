// The host as the sandbox plan sees it: the mount table, the metadata and entries of
// host paths, who the caller is and which terminals it runs on. computePlan reads the
// host only through this view, so the plan is a function of its inputs: the run passes
// realHost(), plan tests pass a made-up host.
import { accessSync, fstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { lstatSyncOrNull, statSyncOrNull } from '../fs.js';

/** What the plan needs of a stat result. */
export type HostStat = Pick<Stats, 'mode' | 'uid' | 'gid' | 'atimeMs' | 'mtimeMs' | 'isDirectory' | 'isFile' | 'isSymbolicLink'> &
  Partial<Pick<Stats, 'dev'>>;

export interface HostView {
  /** The caller the sandbox maps to itself (0: root, the full id range). */
  readonly uid: number;
  readonly gid: number;
  /** /proc/self/mountinfo. */
  mountinfo(): string;
  /** stat(2) (follows symlinks); null when the path is absent or cannot be read. */
  stat(p: string): HostStat | null;
  /** lstat(2); null when the path is absent or cannot be read. */
  lstat(p: string): HostStat | null;
  /** Entries of a directory, sorted; none when it cannot be read (nor could the command). */
  readdir(p: string): string[];
  /** The target of a symlink; null when it is not one (any more). */
  readlink(p: string): string | null;
  /** The path with every symlink resolved; null when it leads nowhere. */
  realpath(p: string): string | null;
  /** Whether the caller may access `p` with `mode` (R_OK 4, W_OK 2, X_OK 1), as access(2)
   * answers: supplementary groups and ACLs count. */
  access(p: string, mode: number): boolean;
  /** Indexes of the /dev/pts terminals on the caller's fds 0-2. */
  ptys(): number[];
  /** /proc/sys/kernel/pid_max; null when it cannot be read. */
  pidMax(): number | null;
}

/** This machine, for the current process. */
export function realHost(): HostView {
  return {
    uid: process.getuid!(),
    gid: process.getgid!(),
    mountinfo: () => readFileSync('/proc/self/mountinfo', 'utf8'),
    stat: statSyncOrNull,
    lstat: lstatSyncOrNull,
    readdir(p) {
      try {
        return readdirSync(p).sort();
      } catch {
        return [];
      }
    },
    readlink(p) {
      try {
        return readlinkSync(p);
      } catch {
        return null;
      }
    },
    realpath(p) {
      try {
        return realpathSync(p);
      } catch {
        return null;
      }
    },
    access(p, mode) {
      try {
        accessSync(p, mode);
        return true;
      } catch {
        return false;
      }
    },
    ptys: hostPtys,
    pidMax() {
      try {
        const n = Number.parseInt(readFileSync('/proc/sys/kernel/pid_max', 'utf8'), 10);
        return Number.isSafeInteger(n) && n > 0 ? n : null;
      } catch {
        return null;
      }
    },
  };
}

/** Indexes of the host's /dev/pts pseudo-terminals on fds 0-2 of this process (the fds
 * uwrx-init and the command inherit). */
export function hostPtys(): number[] {
  const found = new Set<number>();
  for (const fd of [0, 1, 2]) {
    try {
      const st = fstatSync(fd);
      if (!st.isCharacterDevice()) continue;
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      const m = /^\/dev\/pts\/(\d+)$/.exec(link);
      if (!m) continue;
      const named = statSyncOrNull(link);
      if (named && named.ino === st.ino && named.dev === st.dev && named.rdev === st.rdev) found.add(Number(m[1]));
    } catch {
      // closed fd, or not a terminal of this mount namespace
    }
  }
  return [...found].sort((a, b) => a - b);
}
