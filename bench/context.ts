// What every workload and mode of one benchmark invocation shares.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchContext {
  /** Repository root (bench sources, bin/uwrx). */
  repo: string;
  /** Long-lived cache: extracted sources, configured trees, compiled bench programs. */
  cache: string;
  /** Scratch directory of this invocation, removed at the end. */
  scratch: string;
  quick: boolean;
  /** Per measured run; a run past it is killed and its mode marked failed. */
  timeoutMs: number;
  log(line: string): void;
  /** Removals made when the invocation ends (run.ts): the records of uwrx runs, which a
   * user keeps. Not between workloads: on ext4 without a journal each inode allocation
   * skips, one by one, the inodes freed near it in the last minutes, and the thousands of
   * inodes of a workload's records, freed just before the next workload, made its uwrx
   * runs' file creations pay for them (docs/benchmarks.md, Notes). */
  atEnd: Array<() => Promise<void>>;
}

/** dist/bench/context.js lives two levels below the repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function defaultCacheDir(): string {
  if (process.env['UWRX_BENCH_CACHE']) return process.env['UWRX_BENCH_CACHE'];
  const base = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(base, 'uwrx-bench');
}
