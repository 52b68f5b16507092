// Spare directories: empty directories made while the command runs, which the store
// layout (src/record/store-layout.ts) renames into files-<pid>/ instead of making its
// directories after the run (some 900 for a configure). On ext4 without a journal a new
// inode passes over every inode of its group freed within the last minute
// (fs/ext4/ialloc.c, recently_deleted), so right after a build's removals (and the
// previous record's, where a build directory is removed and made again) a mkdir costs
// 30-400 us, on the finish's critical path; a rename costs some 20 us. While the command
// runs, the io thread that makes them is idle.
//
// The pool is <build>/.tmp/spare-dirs/<mode>/, <mode> (octal) what mkdir(path, 0777)
// gives in this process: a spare is the directory the layout's mkdir would have made
// (mode; owner, group and set-group-ID bit are compared with the parent's, see take).
// Spares are taken with renameat2(RENAME_NOREPLACE), atomic: runs sharing a build
// directory never take the same one, and an empty directory already in the record is not
// replaced. What a run leaves stays for the next run in the build directory (removing it
// would free more inodes); a directory that a run killed mid-way left in spare-dirs/
// itself (not in a mode directory) goes at the next run's start. UWRX_SPARE_DIRS=0 turns
// the pool off (the tests compare stores made with and without it).
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../native.js';
import { randomBytes } from 'node:crypto';

export const SPARE_DIRS = 'spare-dirs';
const ERRNO = os.constants.errno;

/** The set-group-ID state a directory hands to a new subdirectory: its group where the
 * bit is set ('' where it is not: the subdirectory gets the process's group). */
export function inheritedGroup(st: Stats): string {
  return st.mode & 0o2000 ? String(st.gid) : '';
}

export function spareDirsRoot(buildDir: string): string {
  return path.join(buildDir, '.tmp', SPARE_DIRS);
}

export class SparePool {
  private names: string[] | undefined;
  private next = 0;
  private serial = 0;
  private readonly prefix = `${process.pid.toString(36)}-${randomBytes(3).toString('hex')}-`;
  /** Spares made by this run, and taken by its layout. */
  made = 0;
  taken = 0;
  /** Directories the layout made itself (no spare, or none fit). */
  mkdirs = 0;
  /** Time spent making spares (ms). */
  makeMs = 0;

  private constructor(
    readonly dir: string,
    /** mode & 0o7777 of a spare (what mkdir(path, 0777) gives). */
    readonly mode: number,
    /** inheritedGroup of the pool's directory: the group state of every spare. */
    private readonly group: string,
    /** Spares there when the pool was opened. */
    readonly found: number,
  ) {}

  /** The pool of the build directory holding `attemptDir` (<build>/<step>/<attempt>), or
   * undefined where it cannot serve that attempt (turned off, another filesystem, no
   * permission). */
  static open(attemptDir: string): SparePool | undefined {
    if (process.env.UWRX_SPARE_DIRS === '0') return undefined;
    try {
      const root = spareDirsRoot(path.dirname(path.dirname(attemptDir)));
      mkdirSync(root, { recursive: true });
      const sweep = readdirSync(root).filter((n) => !/^[0-7]{3,4}$/.test(n));
      for (const name of sweep) {
        try {
          rmdirSync(path.join(root, name));
        } catch {
          // another run's, being filed now, or not empty: not ours to judge
        }
      }
      // what a mkdir gives here (the umask, a default ACL), from one made now
      const probe = path.join(root, `new-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`);
      mkdirSync(probe);
      const st = lstatSync(probe);
      const mode = st.mode & 0o7777 & ~0o2000;
      const dir = path.join(root, mode.toString(8).padStart(4, '0'));
      mkdirSync(dir, { recursive: true });
      const dst = lstatSync(dir);
      if (dst.dev !== lstatSync(attemptDir).dev) {
        rmdirSync(probe);
        return undefined;
      }
      const pool = new SparePool(dir, mode, inheritedGroup(dst), readdirSync(dir).length);
      // kept as a spare unless the pool has plenty (a run that lays out nothing adds one)
      if (inheritedGroup(st) === pool.group && pool.found < 64) {
        renameSync(probe, path.join(dir, `${pool.prefix}0`));
        pool.made++;
      } else rmdirSync(probe);
      return pool;
    } catch {
      return undefined;
    }
  }

  /** Spares in the pool now (made by this run or left by earlier ones, less those taken). */
  get available(): number {
    return this.found + this.made - this.taken;
  }

  /** Makes `n` more spares (during the run, before the layout lists them). */
  make(n: number): void {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      try {
        mkdirSync(path.join(this.dir, `${this.prefix}${++this.serial}`));
        this.made++;
      } catch {
        // a name left by a killed run of the same pid, or the pool went: the next one
      }
    }
    this.makeMs += performance.now() - start;
  }

  private list(): string[] {
    try {
      return readdirSync(this.dir).map((n) => path.join(this.dir, n));
    } catch {
      return []; // removed meanwhile: the layout makes its directories
    }
  }

  /** mkdirSync(dst, { mode }) in a parent whose inheritedGroup is `parentGroup` (undefined:
   * not known): a spare renamed there where it is exactly what that mkdir would make,
   * else that mkdir. Throws what the mkdir would (EEXIST, ENOTDIR ...). */
  mkdir(dst: Buffer, parentGroup: string | undefined, mode = 0o777): void {
    // the permission bits and group a mkdir would give there
    if (parentGroup === this.group && (mode & this.mode) === this.mode) {
      this.names ??= this.list();
      while (this.next < this.names.length) {
        const err = native().renameNoReplace(this.names[this.next]!, dst);
        if (err === 0) {
          this.next++;
          this.taken++;
          return;
        }
        // taken meanwhile by another run, or dst's parent is missing: the mkdir says which
        if (err === ERRNO.ENOENT) {
          this.next++;
          break;
        }
        // dst is there, or not in a directory: the mkdir's own error
        if (err === ERRNO.EEXIST || err === ERRNO.ENOTDIR) break;
        // another filesystem, a full directory ...: no more spares for this layout
        this.next = this.names.length;
      }
    }
    mkdirSync(dst, { mode });
    this.mkdirs++;
  }
}

/** Grows the pool while the command runs, as uwrx-init keeps versions: each kept version
 * of a path by a process is a file in files-<pid>/ in the end, below one directory per
 * component of its path; the pool is kept a little above the number of such directories (zlib's
 * configure: 1,564 of them, 1,402 taken: a version in a directory that is itself a
 * version in the same layer needs none; the final states' layers add a few). */
export class SpareFiller {
  private timer: NodeJS.Timeout | undefined;
  private offset = 0;
  private rest = Buffer.alloc(0);
  private readonly dirs = new Set<string>();
  private fd: number | undefined;

  constructor(
    private readonly pool: SparePool,
    /** <runDir>/versions/index (src/record/versions-index.ts), appended to during the run. */
    private readonly index: string,
    private readonly intervalMs = 20,
    /** Spares made at most per turn: the io thread's other actors wait meanwhile. */
    private readonly batch = 32,
  ) {}

  start(): void {
    this.timer = setTimeout(() => this.turn(), this.intervalMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** How many spares the versions kept so far call for. */
  get wanted(): number {
    const n = this.dirs.size;
    return n === 0 ? 0 : n + 16;
  }

  private turn(): void {
    try {
      this.readIndex();
      const missing = this.wanted - this.pool.available;
      if (missing > 0) this.pool.make(Math.min(missing, this.batch));
    } catch {
      // the run directory went (the run is ending): the layout falls back to mkdir
    }
    if (this.timer) this.timer = setTimeout(() => this.turn(), this.intervalMs);
  }

  private readIndex(): void {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.index, 'r');
      } catch {
        return; // no version kept yet
      }
    }
    const chunk = Buffer.allocUnsafe(1 << 16);
    for (;;) {
      const n = readSync(this.fd, chunk, 0, chunk.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      this.rest = this.rest.length ? Buffer.concat([this.rest, chunk.subarray(0, n)]) : Buffer.from(chunk.subarray(0, n));
      this.lines();
    }
  }

  // "<name>\t<pid>\t<path>\0" lines; the last may be incomplete
  private lines(): void {
    const data = this.rest;
    let start = 0;
    for (let end = data.indexOf(0, start); end >= 0; end = data.indexOf(0, start)) {
      const tab1 = data.indexOf(0x09, start);
      const tab2 = tab1 < 0 ? -1 : data.indexOf(0x09, tab1 + 1);
      if (tab2 >= 0 && tab2 < end) {
        const pid = data.toString('latin1', tab1 + 1, tab2);
        // files-<pid>/ and each directory above the file
        for (let slash = data.lastIndexOf(0x2f, end - 1); slash >= tab2 + 1; slash = data.lastIndexOf(0x2f, slash - 1)) {
          const key = `${pid}\t${data.toString('latin1', tab2 + 1, slash)}`;
          if (this.dirs.has(key)) break;
          this.dirs.add(key);
        }
      }
      start = end + 1;
    }
    this.rest = data.subarray(start);
  }
}
