// Spare directories: empty directories made while the command runs, which the store
// layout (src/record/store-layout.ts) renames into files-<pid>/ instead of making its
// directories after the run (some 1,400 for zlib's configure). On ext4 without a
// journal a new inode passes over every inode of its group freed within the last minute
// (fs/ext4/ialloc.c, recently_deleted), so right after a build's removals (and the
// previous record's, where a build directory is removed and made again) a mkdir costs
// 30-400 us, on the finish's critical path; a rename costs some 20 us. While the command
// runs, the io thread that makes them is mostly idle.
//
// The pool is <build>/.tmp/spare-dirs/<mode>/<run>/: <run> one directory per run that
// made spares (<pid>-<random>, removed when the run's layout took them all), <mode>
// (octal) what mkdir(path, 0777) gives under this process's umask. A spare is the
// directory the layout's mkdir would have made: its mode (checked on the first spare a
// run makes), its group and set-group-ID bit (compared with what the parent hands down,
// see mkdir). Spares are taken with renameat2(RENAME_NOREPLACE), atomic: runs sharing a
// build directory never take the same one, and an empty directory already in the record
// is not replaced. What a run leaves stays for the next run in the build directory
// (removing it would free more inodes); a killed run leaves whole spares (a mkdir or a
// rename is one call). UWRX_SPARE_DIRS=0 turns the pool off (the tests compare stores
// made with and without it).
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../native.js';
import { forEachVersionLine } from './versions-index.js';
import { monotonicMs } from '../monotonic.js';

export const SPARE_DIRS = 'spare-dirs';
const ERRNO = os.constants.errno;

/** The set-group-ID state a directory hands to a new subdirectory: its group where the
 * bit is set ('' where it is not: the subdirectory gets the process's group). */
export function inheritedGroup(st: Stats): string {
  return st.mode & 0o2000 ? String(st.gid) : '';
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

export function spareDirsRoot(buildDir: string): string {
  return path.join(buildDir, '.tmp', SPARE_DIRS);
}

/** The spares under a pool's mode directory (<mode>/<run>/<n>); none where it is not. */
function spareDirsIn(dir: string): string[] {
  const out: string[] = [];
  let runs: string[];
  try {
    runs = readdirSync(dir);
  } catch {
    return out;
  }
  for (const run of runs) {
    try {
      for (const n of readdirSync(path.join(dir, run))) out.push(path.join(dir, run, n));
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

export class SparePool {
  private names: string[] | undefined;
  private next = 0;
  private serial = 0;
  /** This run's directory of spares, <mode>/<pid>-<random> (the addon's getrandom:
   * node:crypto costs a short run its loading). */
  private readonly own: string;
  private ownMade = false;
  /** inheritedGroup of the pool's directory (the group state of every spare), once it is
   * there; null: the pool cannot serve this attempt (another filesystem ...). */
  private group: string | null | undefined;
  /** Spares made by this run, and taken by its layout. */
  made = 0;
  taken = 0;
  /** Directories the layout made itself (no spare, or none fit). */
  mkdirs = 0;
  /** Time spent making spares (ms). */
  makeMs = 0;

  private constructor(
    private readonly attemptDir: string,
    readonly dir: string,
    /** mode & 0o777 of a spare: what mkdir(path, 0777) gives under the umask. */
    readonly mode: number,
    /** Spares there when the pool was opened. */
    readonly found: number,
  ) {
    this.own = path.join(dir, `${process.pid.toString(36)}-${native().randomBytes(4).toString('hex')}`);
  }

  /** The pool of the build directory holding `attemptDir` (<build>/<step>/<attempt>), or
   * undefined when it is turned off. Nothing is made yet: a run that lays out nothing
   * costs a readdir. */
  static open(attemptDir: string): SparePool | undefined {
    if (process.env.UWRX_SPARE_DIRS === '0') return undefined;
    // the umask without changing it (process.umask() sets it twice, racing other threads)
    const umask = /^Umask:\s*([0-7]+)$/m.exec(readFileOr('/proc/self/status'))?.[1];
    if (umask === undefined) return undefined;
    const mode = 0o777 & ~parseInt(umask, 8);
    const dir = path.join(spareDirsRoot(path.dirname(path.dirname(attemptDir))), mode.toString(8).padStart(4, '0'));
    return new SparePool(attemptDir, dir, mode, spareDirsIn(dir).length);
  }

  /** Spares in the pool now (made by this run or left by earlier ones, less those taken). */
  get available(): number {
    return this.found + this.made - this.taken;
  }

  /** The pool's directory made and looked at, once: on the attempt's filesystem, and its
   * spares made as a mkdir makes them (checked on the first one: a default ACL gives
   * another mode than the umask says). It has the top-directory flag: each run's
   * directory of spares goes to a block group of its own choosing (ext4's Orlov spread
   * from a hash of its random name), most often one where no inode was freed lately,
   * and its spares go there too. In the build directory's own group, just emptied by the
   * removals before the run, 1,400 mkdirs cost 220-460 ms of CPU; there, about 50. */
  private usable(): boolean {
    if (this.group === undefined) {
      this.group = null;
      try {
        mkdirSync(this.dir, { recursive: true });
        native().setTopDir(this.dir); // where it cannot be set, the spares cost what a mkdir costs
        const st = lstatSync(this.dir);
        if (st.dev === lstatSync(this.attemptDir).dev) this.group = inheritedGroup(st);
      } catch {
        // no pool: the layout makes its directories
      }
    }
    return this.group !== null;
  }

  /** Makes `n` more spares (during the run, before the layout lists them). */
  make(n: number): void {
    if (!this.usable()) return;
    const start = monotonicMs();
    if (!this.ownMade) {
      try {
        mkdirSync(this.own);
        this.ownMade = true;
      } catch {
        this.group = null;
        return;
      }
    }
    for (let i = 0; i < n; i++) {
      const spare = path.join(this.own, String(++this.serial));
      try {
        mkdirSync(spare);
        this.made++;
      } catch {
        continue; // the pool went: nothing for this layout
      }
      if (this.made === 1 && (lstatSync(spare).mode & 0o777) !== this.mode) {
        // not what the layout's mkdirs make: no pool for this run, and not this one for the next
        rmdirSync(spare);
        this.made--;
        this.group = null;
        break;
      }
    }
    this.makeMs += monotonicMs() - start;
  }

  /** After the layout: this run's directory goes where its spares all went. */
  done(): void {
    if (!this.ownMade) return;
    try {
      rmdirSync(this.own);
    } catch {
      // spares left for the next run
    }
  }

  /** mkdirSync(dst, { mode }) in a parent whose inheritedGroup is `parentGroup` (undefined:
   * not known): a spare renamed there where it is exactly what that mkdir would make,
   * else that mkdir. Throws what the mkdir would (EEXIST, ENOTDIR ...). */
  mkdir(dst: Buffer, parentGroup: string | undefined, mode = 0o777): void {
    // the permission bits and group a mkdir would give there
    if (this.found + this.made > 0 && (mode & this.mode) === this.mode && this.usable() && parentGroup === this.group) {
      this.names ??= spareDirsIn(this.dir);
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

/** The longest delay between SpareFiller turns, reached while turns find no new version. */
const IDLE_MAX_MS = 100;

/** Grows the pool while the command runs, as uwrx-init keeps versions: a version of a
 * path by a process other than its first writer is a file in files-<pid>/ in the end,
 * below one directory per component of its path. The pool is kept an eighth above the
 * number of such directories (the final states' layers and the directories made again
 * add some; zlib's configure: 1,253 counted, 1,402 taken; libiberty's make: 132 and 150):
 * a spare too many costs a mkdir beside the command, one too few a mkdir after it. */
export class SpareFiller {
  private timer: NodeJS.Timeout | undefined;
  private offset = 0;
  private rest = Buffer.alloc(0);
  private readonly dirs = new Set<string>();
  private readonly paths = new Set<string>();
  private fd: number | undefined;
  private chunk: Buffer | undefined;
  /** The next turn's delay: intervalMs while versions come in, doubled (up to
   * IDLE_MAX_MS) while turns find none. */
  private period: number;

  constructor(
    private readonly pool: SparePool,
    /** <runDir>/versions/index (src/record/versions-index.ts), appended to during the run. */
    private readonly index: string,
    private readonly intervalMs = 20,
    /** Spares made at most per turn: the io thread's other actors wait meanwhile. */
    private readonly batch = 32,
  ) {
    this.period = intervalMs;
  }

  start(): void {
    this.timer = setTimeout(() => this.turn(), this.period);
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
    return n === 0 ? 0 : n + (n >> 3) + 16;
  }

  private turn(): void {
    let busy = false;
    try {
      busy = this.readIndex();
      const missing = this.wanted - this.pool.available;
      if (missing > 0) {
        this.pool.make(Math.min(missing, this.batch));
        busy = true;
      }
    } catch {
      // the run directory went (the run is ending): the layout falls back to mkdir
    }
    // most commands keep no version for long stretches (a storm of short processes keeps
    // none): a turn then costs a failed open or an empty read, 50 a second at intervalMs
    this.period = busy ? this.intervalMs : Math.min(2 * this.period, Math.max(this.intervalMs, IDLE_MAX_MS));
    if (this.timer) this.timer = setTimeout(() => this.turn(), this.period);
  }

  /** Reads the index's new lines; true when there were any. */
  private readIndex(): boolean {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.index, 'r');
      } catch {
        return false; // no version kept yet
      }
    }
    const chunk = (this.chunk ??= Buffer.allocUnsafe(1 << 16));
    let read = false;
    for (;;) {
      const n = readSync(this.fd, chunk, 0, chunk.length, this.offset);
      if (n <= 0) break;
      read = true;
      this.offset += n;
      this.rest = this.rest.length ? Buffer.concat([this.rest, chunk.subarray(0, n)]) : Buffer.from(chunk.subarray(0, n));
      this.lines();
    }
    return read;
  }

  // the index's whole lines (src/record/versions-index.ts); the last may be incomplete
  private lines(): void {
    const data = this.rest;
    const rest = forEachVersionLine(data, ({ tab1, tab2, end }) => {
      if (tab2 < 0) return;
      const pid = data.toString('latin1', tab1 + 1, tab2);
      const file = data.toString('latin1', tab2 + 1, end);
      // the first version kept of a path is mostly its first writer's, in files/
      if (!this.paths.has(file)) this.paths.add(file);
      else {
        // files-<pid>/ and each directory above the file
        for (let slash = data.lastIndexOf(0x2f, end - 1); slash >= tab2 + 1; slash = data.lastIndexOf(0x2f, slash - 1)) {
          const key = `${pid}\t${data.toString('latin1', tab2 + 1, slash)}`;
          if (this.dirs.has(key)) break;
          this.dirs.add(key);
        }
      }
    });
    this.rest = data.subarray(rest);
  }
}
