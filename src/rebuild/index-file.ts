// The partial rebuild index of an attempt: <attempt>/rebuild.json (docs/record.md,
// "rebuild.json"). One entry per process on the skippable list: what it was started
// with, how it ended, whether it ran or was answered from the replayed record and why,
// and what a later replay needs to skip it: every input of it and its descendants with
// the value they saw (content hash, absence, kind, link text), its net effect on files
// and where its recorded output is. Paths and strings from the sandbox are escaped text
// (src/record/escape.ts).
//
// The file is JSON lines: a head line (version, skippable list, identities, and a key per
// entry), then one line per entry. A replay parses the head and only the entries it
// compares: the whole index of a big build is megabytes, and a replay that skips `make`
// compares one entry.
import { sha256 } from '../crypto.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../record/layout.js';
import type { OutputRange } from '../record/output-index.js';
import type { Identity } from './hashes.js';
import type { ProcessClock } from '../protocol/init-messages.js';

export const REBUILD_INDEX_FILE = 'rebuild.json';
export const REBUILD_INDEX_VERSION = 5;
/** Versions a replay can use: version 4 wrote each entry's inputs in full, version 3 was
 * the same index in one JSON object. */
const READABLE_VERSIONS: readonly number[] = [3, 4, 5];

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
  /** Where its virtual clocks ended (absent with --time real, and in older indexes): a
   * replay that skips it ends it there, so that what its parent reads next is what the
   * recorded run read. */
  clock?: ProcessClock;
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

/** What finds an entry without parsing it: its process seed and a digest of its command
 * (executable, working directory, argv). */
export type EntryKey = [seed: string | null, command: string];

export function commandDigest(p: Pick<StartedProcess, 'exe' | 'cwd' | 'argv'>): string {
  return sha256(JSON.stringify([p.exe, p.cwd, p.argv])).toString('hex').slice(0, 32);
}

interface HeadLine {
  version: number;
  skippable: string[];
  identities?: Identity[];
  keys: EntryKey[];
  /** Every distinct input of the entries (version 5); an entry's inputs are its indices. */
  inputs?: Input[];
  /** Every distinct environment of the entries (version 5); an entry's env is an index. */
  envs?: string[][];
}

/** Values written once each in the head, and named by index where they occur. */
class Table<T extends object> {
  readonly values: T[] = [];
  private readonly ids = new Map<T | string, number>();

  constructor(private readonly keyOf: (value: T) => string) {}

  /** The value's index: found by identity first (CaptureIndexer shares one array among
   * the entries with the same input), then by its key. */
  idOf(value: T): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      const key = this.keyOf(value);
      id = this.ids.get(key);
      if (id === undefined) this.ids.set(key, (id = this.values.push(value) - 1));
      this.ids.set(value, id);
    }
    return id;
  }
}

export async function writeRebuildIndex(attemptDir: string, index: RebuildIndex): Promise<void> {
  // The compiles of a build read the same headers and run with the same environment:
  // each distinct input and environment is written once, in the head (libiberty's 200
  // entries have 28,000 inputs, 1,500 of them distinct, and 69 environments; in full
  // they were 2.8 MB of its 3 MB index).
  const inputs = new Table<Input>((i) => `${i[0]}\0${i[1]}\0${i[2]}`);
  const envs = new Table<string[]>((e) => e.join('\0'));
  const entries = index.processes.map((e) => JSON.stringify({ ...e, env: envs.idOf(e.env), inputs: e.inputs.map((i) => inputs.idOf(i)) }) + '\n');
  // (the layout is this version's, whatever version the caller named)
  const head: HeadLine = {
    version: REBUILD_INDEX_VERSION,
    skippable: index.skippable,
    ...(index.identities ? { identities: index.identities } : {}),
    keys: index.processes.map((e) => [e.seed, commandDigest(e)]),
    inputs: inputs.values,
    envs: envs.values,
  };
  await writeFileAtomic(path.join(attemptDir, REBUILD_INDEX_FILE), JSON.stringify(head) + '\n' + entries.join(''));
}

/** Entry `value` of a head's table (what: the table's name, for the error). */
function fromTable<T>(table: T[], value: unknown, what: string): T {
  const found = typeof value === 'number' ? table[value] : undefined;
  if (found === undefined) throw new Error(`${what} ${JSON.stringify(value)} is not in the head's table of ${table.length}`);
  return found;
}

/** An attempt's index, its entries parsed when first asked for. */
export class RebuildIndexReader {
  readonly version: number;
  readonly skippable: string[];
  readonly identities: Identity[];
  readonly keys: EntryKey[];
  private readonly parsed: (RebuildEntry | undefined)[];
  /** Byte offsets of the entries' lines (undefined: all parsed at once, version 3). */
  private readonly starts: number[] | undefined;
  /** The inputs and environments the entries name by index (version 5; undefined:
   * written in full). */
  private readonly tables: { inputs: Input[]; envs: string[][] } | undefined;

  constructor(
    readonly file: string,
    private readonly text: Buffer,
  ) {
    const bad = (why: string) => new Error(`${file}: not a version ${REBUILD_INDEX_VERSION} rebuild index (${why})`);
    const eol = text.indexOf(10);
    let head: Partial<HeadLine> & { processes?: RebuildEntry[] };
    try {
      head = JSON.parse(text.toString('utf8', 0, eol < 0 ? text.length : eol)) as typeof head;
    } catch (err) {
      throw bad((err as Error).message);
    }
    if (typeof head !== 'object' || head === null || typeof head.version !== 'number') throw bad('no version');
    this.version = head.version;
    this.skippable = Array.isArray(head.skippable) ? head.skippable : [];
    this.identities = Array.isArray(head.identities) ? head.identities : [];
    if (Array.isArray(head.processes)) {
      // version 3: one object
      this.parsed = head.processes;
      this.keys = head.processes.map((e) => [e.seed, commandDigest(e)]);
      this.starts = undefined;
      this.tables = undefined;
      return;
    }
    if (!READABLE_VERSIONS.includes(this.version)) {
      this.keys = [];
      this.parsed = [];
      this.starts = [];
      this.tables = undefined;
      return;
    }
    if (!Array.isArray(head.keys)) throw bad('no entry keys');
    if (this.version >= 5 && (!Array.isArray(head.inputs) || !Array.isArray(head.envs))) throw bad('no input or environment table');
    this.tables = this.version >= 5 ? { inputs: head.inputs!, envs: head.envs! } : undefined;
    this.keys = head.keys;
    this.starts = [];
    for (let at = eol + 1; at > 0 && at < text.length; ) {
      this.starts.push(at);
      const next = text.indexOf(10, at);
      at = next < 0 ? -1 : next + 1;
    }
    if (this.starts.length !== this.keys.length) throw bad(`${this.keys.length} entries named, ${this.starts.length} present`);
    this.parsed = new Array<RebuildEntry | undefined>(this.keys.length);
  }

  /** Whether a replay can use it. */
  get usable(): boolean {
    return READABLE_VERSIONS.includes(this.version);
  }

  get count(): number {
    return this.keys.length;
  }

  entry(i: number): RebuildEntry {
    let e = this.parsed[i];
    if (e === undefined) {
      const start = this.starts![i]!;
      const end = this.text.indexOf(10, start);
      const tables = this.tables;
      try {
        e = JSON.parse(this.text.toString('utf8', start, end < 0 ? this.text.length : end)) as RebuildEntry;
        if (tables) {
          if (!Array.isArray(e.inputs)) throw new Error('no inputs');
          e.inputs = (e.inputs as unknown[]).map((id) => fromTable(tables.inputs, id, 'input'));
          e.env = fromTable(tables.envs, e.env, 'environment');
        }
      } catch (err) {
        throw new Error(`${this.file}: entry ${i + 1}: ${(err as Error).message}`);
      }
      this.parsed[i] = e;
    }
    return e;
  }

  entries(): RebuildEntry[] {
    return this.keys.map((_, i) => this.entry(i));
  }
}

/** The attempt's index for reading entry by entry; undefined when it has none
 * (recorded without partial rebuild). */
export function openRebuildIndex(attemptDir: string): RebuildIndexReader | undefined {
  const file = path.join(attemptDir, REBUILD_INDEX_FILE);
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return new RebuildIndexReader(file, text);
}

/** The attempt's whole index; undefined when it has none (recorded without partial
 * rebuild). */
export function readRebuildIndex(attemptDir: string): RebuildIndex | undefined {
  const reader = openRebuildIndex(attemptDir);
  if (!reader) return undefined;
  if (!reader.usable) throw new Error(`${reader.file}: a version ${reader.version} rebuild index (this uwrx reads version ${REBUILD_INDEX_VERSION})`);
  return { version: reader.version, skippable: reader.skippable, processes: reader.entries(), identities: reader.identities };
}
