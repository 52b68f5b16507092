// The partial rebuild index of an attempt: <attempt>/rebuild.json (docs/record.md,
// "rebuild.json"). One entry per process on the skippable list: what it was started
// with, how it ended, whether it ran or was answered from the replayed record and why,
// and what a later replay needs to skip it: every input of it and its descendants with
// the value they saw (content hash, absence, kind, link text), its net effect on files
// and where its recorded output is. Paths and strings from the sandbox are escaped text
// (src/record/escape.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../record/layout.js';
import type { OutputRange } from '../record/output-index.js';
import type { Identity } from './hashes.js';

export const REBUILD_INDEX_FILE = 'rebuild.json';
export const REBUILD_INDEX_VERSION = 3;

/** What a process saw at a path:
 *   read, exec   the content's SHA-256 (hex), or "dir" for a directory
 *   missing      "-": the path did not exist (a failed probe)
 *   stat         the kind: file, dir, other
 *   readlink     the link's text (escaped)
 *   readdir      SHA-256 of the sorted entry names (only of directories no layer of the
 *                record changed) */
export type InputOp = 'read' | 'exec' | 'missing' | 'stat' | 'readlink' | 'readdir';
export type Input = [op: InputOp, path: string, value: string];

/** The state a path was left in: a file with the bytes of `source` (a stored version,
 * absolute host path) and `mode`, a directory, or nothing. */
export type Output = [path: string, kind: 'file' | 'dir' | 'absent', source: string | null, mode: number];

/** A process on the skippable list as it started (from uwrx-init's question). */
export interface StartedProcess {
  pid: number;
  /** The process seed (hex): the process's place in the tree (docs/reproducibility.md). */
  seed: string | null;
  exe: string;
  argv: string[];
  cwd: string | null;
  env: string[];
  /** What its stdout and stderr named when it started ("dev:ino"; null: closed): the
   * output of its descendants that went there is its output. Absent: all of it. */
  stdio_dest?: [string | null, string | null];
}

export interface RebuildEntry extends StartedProcess {
  decision: 'ran' | 'skipped';
  /** Why: the first input that differed, or what made skipping unsafe, or for a skip
   * the replayed attempt and pid it was answered from. */
  reason: string;
  /** Exit status (null: killed or unknown). */
  status: number | null;
  /** Why a later replay must not skip it; absent when it may. */
  unsafe?: string;
  inputs: Input[];
  outputs: Output[];
  /** Its output and its descendants': their pids, and the runs of their records in this
   * attempt's output index (output.bin, src/record/output-index.ts), in order. */
  stdio: { pids: number[]; ranges: OutputRange[] };
}

export interface RebuildIndex {
  version: number;
  /** The skippable list of the run. */
  skippable: string[];
  processes: RebuildEntry[];
  /** Files of the real filesystem among the inputs, by identity with their hash
   * (src/rebuild/hashes.ts): a replay reads none that did not change. */
  identities?: Identity[];
}

export async function writeRebuildIndex(attemptDir: string, index: RebuildIndex): Promise<void> {
  await writeFileAtomic(path.join(attemptDir, REBUILD_INDEX_FILE), JSON.stringify(index) + '\n');
}

/** The attempt's index; undefined when it has none (recorded without partial rebuild). */
export function readRebuildIndex(attemptDir: string): RebuildIndex | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(attemptDir, REBUILD_INDEX_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const index = JSON.parse(text) as RebuildIndex;
  if (!Array.isArray(index.processes)) {
    throw new Error(`${path.join(attemptDir, REBUILD_INDEX_FILE)}: not a version ${REBUILD_INDEX_VERSION} rebuild index`);
  }
  return index;
}
