// The rebuild policy: may this process be answered from the replayed record? It is
// matched with the replayed process at the same place in the process tree (same process
// seed) and compared input by input with what it would see now, through the sandbox's
// root as the host sees it. The first difference is the reason it runs.
import { existsSync, readlinkSync, statSync, type Stats } from 'node:fs';
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

export class ReplayPolicy {
  /** Entries (their place in the index) by process seed. */
  private readonly bySeed = new Map<string, number[]>();
  /** Entries by command (executable, working directory, argv). */
  private readonly byCommand = new Map<string, number[]>();
  /** Entries a skip was already answered from: each recorded process stands for one. */
  private readonly used = new Set<number>();
  private readonly livePaths = new Map<string, string | Buffer>();
  private liveRoot: string | undefined;

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
  decide(p: StartedProcess, root: string | undefined): Decision {
    const run = (reason: string): Decision => ({ skip: false, reason });
    if (root === undefined) return run('the sandbox is not visible');
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
      exists = !knownAbsent(dir, dirs) && existsSync(this.livePath(dir, root));
      dirs.set(dir, exists);
    }
    return !exists;
  }

  /** Why the input would be seen otherwise now; undefined when it is the same. */
  private differs([op, file, value]: Input, root: string): string | undefined {
    const live = this.livePath(file, root);
    switch (op) {
      case 'missing': {
        // a failed probe followed links: a dangling link is still absent
        return existsSync(live) ? `${file} exists now (it was absent)` : undefined;
      }
      case 'stat': {
        const st = plainStatOrNull(live);
        if (!st) return `${file} is absent now`;
        return kindOf(st) === value ? undefined : `${file} is a ${kindOf(st)} now (it was a ${value})`;
      }
      case 'readlink': {
        let text: string;
        try {
          text = readlinkSync(live, { encoding: 'buffer' }).toString('latin1');
        } catch {
          return `the link ${file} is gone`;
        }
        return text === value ? undefined : `the link ${file} changed`;
      }
      case 'readdir':
        return listingHash(live) === value ? undefined : `the entries of ${file} changed`;
      case 'read':
      case 'exec': {
        const st = statOrNull(live);
        if (!st) return `${file} is absent now`;
        const hash = this.hashes.liveContentOf(file, live, st);
        return hash === value ? undefined : `${file} changed`;
      }
    }
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
