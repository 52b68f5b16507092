// The rebuild policy: may this process be answered from the replayed record? It is
// matched with the replayed process at the same place in the process tree (same process
// seed) and compared input by input with what it would see now, through the sandbox's
// root as the host sees it. The first difference is the reason it runs.
import { existsSync, lstatSync, readlinkSync, statSync, type BigIntStats, type Stats } from 'node:fs';
import { unescapeBytes } from '../record/escape.js';
import { HashCache, kindOf, listingHash, statOrNull } from './hashes.js';
import type { StartedProcess } from './capture.js';
import { commandDigest, type Input, type RebuildEntry, type RebuildIndexReader } from './index-file.js';

/** Environment variables left out of the comparison: they name things of one make or
 * terminal session (jobserver fds or fifo, the terminal) and no compiler's result
 * depends on them. uwrx's own (UWRX_*) are left out too. */
export const ENV_IGNORED: readonly string[] = [
  'MAKEFLAGS', 'MFLAGS', 'GNUMAKEFLAGS', 'MAKE_TERMOUT', 'MAKE_TERMERR', 'TERM', 'COLUMNS', 'LINES', 'OLDPWD', 'SHLVL', '_',
];

export type Decision = { skip: false; reason: string } | { skip: true; entry: RebuildEntry; reason: string };

/** The sandbox's overlays when a process starts: mount point and whether a process of
 * the run has asked to change anything below it (uwrx-init marks that before the call
 * runs, and never clears it). */
export type OverlayState = ReadonlyArray<readonly [mountPoint: string, touched: boolean]>;

/** What an input is now: its recorded form (a hash, a kind, a link's text, "present"),
 * null when absent. */
type Now = string | null;

export class ReplayPolicy {
  /** Entries (their place in the index) by process seed. */
  private readonly bySeed = new Map<string, number[]>();
  /** Entries by command (executable, working directory, argv). */
  private readonly byCommand = new Map<string, number[]>();
  /** Entries a skip was already answered from: each recorded process stands for one. */
  private readonly used = new Set<number>();
  private readonly livePaths = new Map<string, string | Buffer>();
  private liveRoot: string | undefined;
  /** What inputs are now, for paths in overlays no process of this run has touched and
   * with no symbolic link on the way (so no change elsewhere reaches them): such a path
   * is as the layers below show it until its overlay is touched, so it is looked at
   * once per run instead of once per compared process (the toolchain's headers are
   * compared for every compile). By operation, then path: the value and its mount point. */
  private readonly settled = new Map<Input[0], Map<string, { now: Now; mount: string }>>();
  /** Directories of the sandbox known to be no symbolic link (checked once). */
  private readonly plainDirs = new Set<string>();
  /** The overlays of the decision being made (mount points, longest first) and the
   * untouched ones; none: nothing is settled. */
  private mounts: string[] = [];
  private mountPoints = new Set<string>();
  /** mountOf's answers by directory (undefined: outside every overlay). */
  private readonly mountOfDir = new Map<string, string | undefined>();
  private untouched = new Set<string>();

  constructor(
    readonly replayedDir: string,
    private readonly index: RebuildIndexReader,
    private readonly hashes: HashCache,
  ) {
    index.keys.forEach(([seed, command], i) => {
      if (seed !== null) push(this.bySeed, seed, i);
      push(this.byCommand, command, i);
    });
  }

  /** The recorded twin is the process at the same place in the tree (same seed) with
   * the same arguments. Under make -j the place of a command in make's children
   * depends on which job ended first, so without such a twin the recorded processes
   * that ran the same command (executable, directory, argv) are tried, in pid order:
   * their inputs are compared all the same, so the outputs replayed are those of the
   * same command on the same inputs. */
  decide(p: StartedProcess, root: string | undefined, overlays?: OverlayState | null): Decision {
    const run = (reason: string): Decision => ({ skip: false, reason });
    if (root === undefined) return run('the sandbox is not visible');
    this.useOverlays(overlays ?? [], root);
    const entry = (i: number) => this.index.entry(i);
    const atPlace = p.seed === null ? [] : (this.bySeed.get(p.seed) ?? []);
    const twin = atPlace.find((i) => !this.used.has(i) && sameList(entry(i).argv, p.argv));
    const sameCommand = (this.byCommand.get(commandDigest(p)) ?? []).filter((i) => i !== twin && !this.used.has(i));
    const candidates = twin === undefined ? sameCommand : [twin, ...sameCommand];
    let first: string | undefined;
    for (const i of candidates) {
      const why = this.differsFrom(entry(i), p, root);
      if (why === undefined) {
        this.used.add(i);
        return { skip: true, entry: entry(i), reason: `answered from ${this.replayedDir} process ${entry(i).pid}` };
      }
      first ??= why;
    }
    if (first !== undefined) return run(first);
    const other = atPlace[0];
    if (other !== undefined) return run(`its arguments differ from those of recorded process ${entry(other).pid}`);
    return run('no recorded process ran this command');
  }

  /** The first difference between the recorded process and this one; undefined: none. */
  private differsFrom(entry: RebuildEntry, p: StartedProcess, root: string): string | undefined {
    if (entry.unsafe) return `not skippable: ${entry.unsafe}`;
    if (entry.status === null) return `recorded process ${entry.pid} did not exit normally`;
    if (entry.exe !== p.exe) return `its executable differs: ${p.exe} (recorded ${entry.exe})`;
    if (entry.cwd !== p.cwd) return `its working directory differs: ${p.cwd} (recorded ${entry.cwd})`;
    const envDiff = firstEnvDifference(entry.env, p.env);
    if (envDiff) return `environment variable ${envDiff} differs`;
    // most failed probes are of paths in directories that do not exist either (an
    // include path, a locale): one look at each directory per comparison
    const dirs = new Map<string, boolean>();
    for (const input of entry.inputs) {
      const why = input[0] === 'missing' && this.absentDirectory(input[1], root, dirs) ? undefined : this.differs(input, root);
      if (why) return why;
    }
    return undefined;
  }

  private useOverlays(overlays: OverlayState, root: string): void {
    if (this.liveRoot !== undefined && this.liveRoot !== root) {
      // another sandbox: nothing known about this one
      this.settled.clear();
      this.plainDirs.clear();
    }
    const mounts = overlays.map(([m]) => m).sort((a, b) => b.length - a.length);
    if (!sameList(mounts, this.mounts)) {
      this.mountOfDir.clear();
      this.mountPoints = new Set(mounts);
    }
    this.mounts = mounts;
    this.untouched = new Set(overlays.filter(([, touched]) => !touched).map(([m]) => m));
  }

  /** The overlay `file` is in (longest mount point), undefined outside every overlay.
   * Looked up by the file's directory (inputs come many to a directory), unless the file
   * is a mount point itself. */
  private mountOf(file: string): string | undefined {
    if (this.mountPoints.has(file)) return file;
    const slash = file.lastIndexOf('/');
    const dir = slash <= 0 ? '/' : file.slice(0, slash);
    if (this.mountOfDir.has(dir)) return this.mountOfDir.get(dir);
    const mount = this.mounts.find((m) => m === '/' || dir === m || dir.startsWith(m + '/'));
    this.mountOfDir.set(dir, mount);
    return mount;
  }

  /** What `op` finds at `file` now: remembered while its overlay stays untouched. One
   * lstat of the path answers both whether it is a link and, when it is not, what it
   * is (most inputs are plain files or absent). */
  private now(op: Input[0], file: string, root: string): Now {
    let settled = this.settled.get(op);
    if (!settled) this.settled.set(op, (settled = new Map()));
    const known = settled.get(file);
    if (known && this.untouched.has(known.mount)) return known.now;
    const live = this.livePath(file, root);
    // times matter only for a file's identity (read, exec): plain numbers elsewhere
    const own = op === 'read' || op === 'exec' ? bigLstatOrNull(live) : plainLstatOrNull(live);
    const link = own !== null && own.isSymbolicLink();
    const now = valueNow(op, file, live, this.hashes, link ? undefined : own);
    const mount = this.mountOf(file);
    if (mount !== undefined && this.untouched.has(mount) && !link && this.dirsWithoutLinks(file, root)) settled.set(file, { now, mount });
    return now;
  }

  /** No directory on the way to `file` is a symbolic link (a link could lead into an
   * overlay that changed); an absent one ends the walk (nothing below it can be a
   * link). */
  private dirsWithoutLinks(file: string, root: string): boolean {
    // a directory is added after every one above it: its own entry answers for all
    const slash = file.lastIndexOf('/');
    if (slash <= 0 || this.plainDirs.has(file.slice(0, slash))) return true;
    for (let at = file.indexOf('/', 1); at >= 0; at = file.indexOf('/', at + 1)) {
      const prefix = file.slice(0, at);
      if (this.plainDirs.has(prefix)) continue;
      let st: Stats | undefined;
      try {
        st = lstatSync(this.livePath(prefix, root), { throwIfNoEntry: false });
      } catch {
        return false;
      }
      if (st === undefined) return true;
      if (st.isSymbolicLink()) return false;
      this.plainDirs.add(prefix);
    }
    return true;
  }

  /** The path as the host reaches it in the sandbox (the same few paths recur in
   * every comparison). */
  private livePath(file: string, root: string): string | Buffer {
    let live = this.livePaths.get(file);
    if (live === undefined || this.liveRoot !== root) {
      if (this.liveRoot !== root) this.livePaths.clear();
      this.liveRoot = root;
      // escaped text without a backslash is the path's bytes as UTF-8 already
      live = file.includes('\\') ? Buffer.concat([Buffer.from(root), unescapeBytes(file)]) : root + file;
      this.livePaths.set(file, live);
    }
    return live;
  }

  /** Whether the directory of `file` (or one above it) is absent now, so that `file`
   * is too; `dirs` remembers the answers of this comparison. */
  private absentDirectory(file: string, root: string, dirs: Map<string, boolean>): boolean {
    const slash = file.lastIndexOf('/');
    if (slash <= 0) return false;
    const dir = file.slice(0, slash);
    let exists = dirs.get(dir);
    if (exists === undefined) {
      exists = !knownAbsent(dir, dirs) && this.now('missing', dir, root) !== null;
      dirs.set(dir, exists);
    }
    return !exists;
  }

  /** Why the input would be seen otherwise now; undefined when it is the same. */
  private differs([op, file, value]: Input, root: string): string | undefined {
    // a device was read on the host's side: the sandbox's own devices (uwrx's
    // deterministic /dev/urandom, the host's others bound in) stand for the host's
    const now = isDevice(value) ? this.hashes.contentOf(unescapeBytes(file)) : this.now(op, file, root);
    switch (op) {
      case 'missing':
        return now !== null ? `${file} exists now (it was absent)` : undefined;
      case 'stat':
        if (now === null) return `${file} is absent now`;
        return now === value ? undefined : `${file} is a ${now} now (it was a ${value})`;
      case 'readlink':
        if (now === null) return `the link ${file} is gone`;
        return now === value ? undefined : `the link ${file} changed`;
      case 'readdir':
        return now === value ? undefined : `the entries of ${file} changed`;
      case 'read':
      case 'exec':
        if (now === null) return `${file} is absent now`;
        return now === value ? undefined : `${file} changed`;
    }
  }
}

const isDevice = (value: string) => value.startsWith('char-device ') || value.startsWith('block-device ');

/** What `op` finds at the live path now, in the form inputs are recorded in. `own`:
 * the path's lstat when it is no symbolic link (null: absent); undefined: unknown. */
function valueNow(op: Input[0], file: string, live: string | Buffer, hashes: HashCache, own?: Stats | BigIntStats | null): Now {
  switch (op) {
    case 'missing':
      // a failed probe followed links: a dangling link is still absent (and a directory
      // a probe's path is in is looked at the same way)
      if (own !== undefined) return own === null ? null : 'present';
      return existsSync(live) ? 'present' : null;
    case 'stat': {
      const st = own !== undefined ? own : plainStatOrNull(live);
      return st ? kindOf(st) : null;
    }
    case 'readlink':
      // what is no link has no link text (readlink fails)
      if (own !== undefined) return null;
      try {
        return readlinkSync(live, { encoding: 'buffer' }).toString('latin1');
      } catch {
        return null;
      }
    case 'readdir':
      return listingHash(live);
    case 'read':
    case 'exec': {
      // now() gives read and exec the BigInt lstat
      const st = own !== undefined ? (own as BigIntStats | null) : statOrNull(live);
      // an unreadable file has no hash: it differs from every recorded one
      return st ? (hashes.liveContentOf(file, live, st) ?? 'unreadable') : null;
    }
  }
}

/** lstat with BigInt times (identities compare nanoseconds); null when absent. */
function bigLstatOrNull(file: string | Buffer): BigIntStats | null {
  try {
    return lstatSync(file, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

function plainLstatOrNull(file: string | Buffer): Stats | null {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** statOrNull without BigInts (cheaper; enough for the kind of file). */
function plainStatOrNull(file: string | Buffer): Stats | null {
  try {
    return statSync(file, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** A directory above `dir` is known to be absent. */
function knownAbsent(dir: string, dirs: ReadonlyMap<string, boolean>): boolean {
  for (let at = dir.lastIndexOf('/'); at > 0; at = dir.lastIndexOf('/', at - 1)) {
    if (dirs.get(dir.slice(0, at)) === false) return true;
  }
  return false;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    const name = eq < 0 ? kv : kv.slice(0, eq);
    if (!ENV_IGNORED.includes(name) && !name.startsWith('UWRX_')) m.set(name, eq < 0 ? '' : kv.slice(eq + 1));
  }
  return m;
}

/** The first variable (by name) set differently, or undefined. */
export function firstEnvDifference(recorded: readonly string[], now: readonly string[]): string | undefined {
  const a = envMap(recorded);
  const b = envMap(now);
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  return names.find((n) => a.get(n) !== b.get(n));
}
