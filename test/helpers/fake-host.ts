// A made-up host for plan tests: a few directories, files and symlinks with owners and
// modes, a mount table and terminals. The sandbox plan reads the host only through a
// HostView, so a test states the machine instead of depending on this one's /.
import path from 'node:path';
import type { HostStat, HostView } from '../../src/sandbox/host.js';

export interface FakeEntry {
  type: 'dir' | 'file' | 'symlink';
  mode?: number;
  uid?: number;
  gid?: number;
  /** symlink target */
  target?: string;
  mtimeMs?: number;
}

export const dir = (mode = 0o755, uid = 0, gid = 0): FakeEntry => ({ type: 'dir', mode, uid, gid });
export const file = (mode = 0o644, uid = 0, gid = 0): FakeEntry => ({ type: 'file', mode, uid, gid });
export const symlink = (target: string): FakeEntry => ({ type: 'symlink', target });

export interface FakeHostOptions {
  uid: number;
  gid: number;
  /** Absolute path -> entry; parents are made as root-owned 0755 directories. */
  tree: Record<string, FakeEntry>;
  mountinfo?: string;
  ptys?: number[];
}

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000 };

export function fakeHost(options: FakeHostOptions): HostView {
  const entries = new Map<string, FakeEntry>([['/', dir()]]);
  for (const [p, e] of Object.entries(options.tree)) {
    for (let d = path.dirname(p); !entries.has(d); d = path.dirname(d)) entries.set(d, dir());
    entries.set(p, e);
  }
  const toStat = (e: FakeEntry): HostStat => {
    const mode = TYPE_BITS[e.type] | (e.mode ?? (e.type === 'symlink' ? 0o777 : 0o755));
    return {
      mode,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      atimeMs: e.mtimeMs ?? 1_000_000,
      mtimeMs: e.mtimeMs ?? 1_000_000,
      isDirectory: () => e.type === 'dir',
      isFile: () => e.type === 'file',
      isSymbolicLink: () => e.type === 'symlink',
    } as HostStat;
  };
  // symlinks followed component by component, as the kernel does
  const resolve = (p: string, depth = 0): string | null => {
    if (depth > 8) return null;
    let at = '/';
    for (const name of p.split('/').filter(Boolean)) {
      const next = path.join(at, name);
      const e = entries.get(next);
      if (!e) return null;
      if (e.type !== 'symlink') at = next;
      else {
        const r = resolve(path.resolve(at, e.target!), depth + 1);
        if (!r) return null;
        at = r;
      }
    }
    return at;
  };
  const host: HostView = {
    uid: options.uid,
    gid: options.gid,
    mountinfo: () => options.mountinfo ?? '26 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    lstat: (p) => {
      const e = entries.get(p);
      return e ? toStat(e) : null;
    },
    stat: (p) => {
      const r = resolve(p);
      return r ? toStat(entries.get(r)!) : null;
    },
    readdir: (p) =>
      [...entries.keys()].filter((k) => k !== '/' && path.dirname(k) === p).map((k) => path.basename(k)).sort(),
    readlink: (p) => entries.get(p)?.target ?? null,
    realpath: (p) => resolve(p),
    access: (p, mode) => {
      const st = host.stat(p);
      if (!st) return false;
      if (options.uid === 0) return true;
      const shift = st.uid === options.uid ? 6 : st.gid === options.gid ? 3 : 0;
      return ((st.mode >> shift) & mode) === mode;
    },
    ptys: () => options.ptys ?? [],
    pidMax: () => 32768,
  };
  return host;
}
