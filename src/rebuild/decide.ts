// The rebuild policy: may this process be answered from the replayed record? It is
// matched with the replayed process at the same place in the process tree (same process
// seed) and compared input by input with what it would see now, through the sandbox's
// root as the host sees it. The first difference is the reason it runs.
import { readlinkSync, type BigIntStats } from 'node:fs';
import { unescapeBytes } from '../record/escape.js';
import { HashCache, kindOf, listingHash, statOrNull } from './hashes.js';
import type { StartedProcess } from './capture.js';
import type { Input, RebuildEntry, RebuildIndex } from './index-file.js';

/** Environment variables left out of the comparison: they name things of one make or
 * terminal session (jobserver fds or fifo, the terminal) and no compiler's result
 * depends on them. */
export const ENV_IGNORED: readonly string[] = [
  'MAKEFLAGS', 'MFLAGS', 'GNUMAKEFLAGS', 'MAKE_TERMOUT', 'MAKE_TERMERR', 'TERM', 'COLUMNS', 'LINES', 'OLDPWD', 'SHLVL', '_',
];

export type Decision = { skip: false; reason: string } | { skip: true; entry: RebuildEntry; reason: string };

export class ReplayPolicy {
  private readonly bySeed = new Map<string, RebuildEntry[]>();

  constructor(
    readonly replayedDir: string,
    index: RebuildIndex,
    private readonly hashes: HashCache,
  ) {
    for (const e of index.processes) {
      if (e.seed === null) continue;
      const list = this.bySeed.get(e.seed) ?? [];
      list.push(e);
      this.bySeed.set(e.seed, list);
    }
  }

  decide(p: StartedProcess, root: string | undefined): Decision {
    const run = (reason: string): Decision => ({ skip: false, reason });
    if (root === undefined) return run('the sandbox is not visible');
    const candidates = p.seed === null ? [] : (this.bySeed.get(p.seed) ?? []);
    const entry = candidates.find((e) => sameList(e.argv, p.argv)) ?? candidates[0];
    if (!entry) return run('no recorded process at this place in the process tree');
    if (!sameList(entry.argv, p.argv)) return run(`its arguments differ from those of recorded process ${entry.pid}`);
    if (entry.unsafe) return run(`not skippable: ${entry.unsafe}`);
    if (entry.status === null) return run(`recorded process ${entry.pid} did not exit normally`);
    if (entry.exe !== p.exe) return run(`its executable differs: ${p.exe} (recorded ${entry.exe})`);
    if (entry.cwd !== p.cwd) return run(`its working directory differs: ${p.cwd} (recorded ${entry.cwd})`);
    const envDiff = firstEnvDifference(entry.env, p.env);
    if (envDiff) return run(`environment variable ${envDiff} differs`);
    for (const input of entry.inputs) {
      const why = this.differs(input, root);
      if (why) return run(why);
    }
    return { skip: true, entry, reason: `answered from ${this.replayedDir} process ${entry.pid}` };
  }

  /** Why the input would be seen otherwise now; undefined when it is the same. */
  private differs([op, file, value]: Input, root: string): string | undefined {
    const live = Buffer.concat([Buffer.from(root), unescapeBytes(file)]);
    switch (op) {
      case 'missing': {
        const st = lstatOrNull(live);
        return st ? `${file} exists now (it was absent)` : undefined;
      }
      case 'stat': {
        const st = statOrNull(live);
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
        const hash = this.hashes.contentOf(live, st);
        return hash === value ? undefined : `${file} changed`;
      }
    }
  }
}

/** A failed probe followed links: a dangling link is still absent. */
function lstatOrNull(file: Buffer): BigIntStats | null {
  return statOrNull(file);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    const name = eq < 0 ? kv : kv.slice(0, eq);
    if (!ENV_IGNORED.includes(name)) m.set(name, eq < 0 ? '' : kv.slice(eq + 1));
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
