// What a later replay needs to skip a process, computed from the finished record: the
// inputs of the process and all its descendants with the values they saw, the state it
// left each path it changed in, and whether skipping it would be safe at all.
//
// Inputs are the reads, executions, failed probes, stats and link reads of the subtree
// (accesses.tsv), except paths the subtree created itself before it read them (its
// temporary files). A value is the version the resolution rule gives for the reading
// process (docs/record.md), hashed once per version. Safety (when in doubt, run):
//   - the subtree listed a path it wrote, or read a path it wrote whose version before
//     it is not known (a known one, like the archive ranlib updates, is an input);
//   - another process wrote one of its inputs or outputs while it ran: what it saw or
//     left depends on scheduling;
//   - it did not exit normally, or a version it wrote is missing from the record.
import { readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { openRecord, type AttemptRecord, type RecordFileOperation, type RecordProcess } from '../record/reader.js';
import { unescapeBytes } from '../record/escape.js';
import { ACCESS_INDEX_OPS, type AccessRows } from '../record/accesses.js';
import { layerLookup, layersBelow, layersFor, resolveInLayers, settleLayers, type Layer, type Resolution } from '../record/resolve.js';
import { HashCache, kindOf, listingHash, type Kind } from './hashes.js';
import type { Input, Output, RebuildEntry, StartedProcess } from './index-file.js';

export type { StartedProcess };

const REMOVALS = new Set(['delete', 'rmdir', 'rename_from']);
const CONTENT_WRITES = new Set(['create', 'write', 'rename_to']);
/** The looks, one bit each: what an entry took of a path already. */
const LOOK_OPS = ['read', 'exec', 'missing', 'stat', 'readlink', 'readdir'] as const;
type LookOp = (typeof LOOK_OPS)[number];
const LOOK_BITS: Readonly<Record<string, number>> = Object.fromEntries(LOOK_OPS.map((op, i) => [op, 1 << i]));
/** The index in LOOK_OPS of each look. */
const LOOK_KINDS: Readonly<Record<string, number>> = Object.fromEntries(LOOK_OPS.map((op, i) => [op, i]));
/** Files that describe the reading process itself (its maps, status, fds): not inputs
 * but what a replay of it reproduces; a later run sees its own. */
const OWN_PROC = /^\/proc\/(self|thread-self|[0-9]+)(\/|$)/;

/** A look a process took, as one small integer: its path's id (a small number, so that
 * the per-look work of every entry indexes arrays instead of hashing path strings again:
 * a build's compiles read the same headers, libiberty's 200 take 28,000 looks) times 8
 * plus its kind (the index in LOOK_OPS). An integer, not an object: the looks live until
 * the index is written, and tens of thousands of objects cost the collector more than
 * reading them. */
type Look = number;
const lookOf = (id: number, kind: number): Look => id * 8 + kind;
const lookId = (look: Look): number => look >>> 3;
const lookKind = (look: Look): number => look & 7;

/** What an index takes from the trace alone (procs.tsv, accesses.tsv): it can be read as
 * soon as the trace is finished, while the record's files are still being collected. */
export interface TraceLooks {
  readonly record: AttemptRecord;
  readonly procs: Map<number, RecordProcess>;
  /** The looks of each process (LOOK_BITS, not at its own /proc files), in order. */
  readonly looksByPid: Map<number, Look[]>;
  /** Ids of the paths looked at, and the paths by id. */
  readonly pathIds: Map<string, number>;
  readonly paths: string[];
  /** The layers below the attempt and what they give for paths looked at (resolveBelow),
   * when resolved already (resolveLooksBelow). */
  below?: { layers: Layer[]; resolutions: Map<string, Resolution> };
}

/** The looks of the access index's rows (accessIndexRows), taken in pieces: the rows
 * of the merger's table while the run goes on (the table only grows: a row never changes
 * place), the rest once the trace is finished, so that after the command only the last
 * processes' rows are left to read. The same looks, ids and order as the whole file. */
export class LookRows {
  readonly looksByPid = new Map<number, Look[]>();
  readonly pathIds = new Map<string, number>();
  readonly paths: string[] = [];
  /** Rows taken so far. */
  taken = 0;
  private lastPid = -1;
  private lastList: Look[] = [];
  private readonly kindOfOp = ACCESS_INDEX_OPS.map((op) => LOOK_KINDS[op] ?? -1);

  idOf(file: string): number {
    let id = this.pathIds.get(file);
    if (id === undefined) {
      this.pathIds.set(file, (id = this.paths.length));
      this.paths.push(file);
    }
    return id;
  }

  // a process's looks come in runs of rows: the list of the last one is at hand
  add(pid: number, look: Look): void {
    if (pid !== this.lastPid) {
      let list = this.looksByPid.get(pid);
      if (!list) this.looksByPid.set(pid, (list = []));
      this.lastPid = pid;
      this.lastList = list;
    }
    this.lastList.push(look);
  }

  /** The rows of `table` that follow those taken, which are its first `from` rows (0:
   * the table holds only rows not taken yet). */
  addRows(table: AccessRows, from = 0): void {
    // each path of the table is checked once: its id, -1 not yet, -2 a process's own file
    const { rows } = table;
    const kindOfOp = this.kindOfOp;
    const ids = new Int32Array(table.paths.length).fill(-1);
    for (let i = from * 3; i < rows.length; i += 3) {
      const kind = kindOfOp[rows[i + 1]!]!;
      if (kind < 0) continue;
      const at = rows[i + 2]!;
      let id = ids[at]!;
      if (id === -1) {
        const file = table.paths[at]!;
        ids[at] = id = isOwnProc(file) ? -2 : this.idOf(file);
      }
      if (id !== -2) this.add(rows[i]!, lookOf(id, kind));
    }
    this.taken += Math.max(0, rows.length / 3 - from);
  }
}

const isOwnProc = (file: string) => file.startsWith('/proc/') && OWN_PROC.test(file);

/** The looks of the finished trace of `attemptDir` (throws a RecordError for a damaged
 * process table or access index). Needs neither files.meta nor the version directories.
 * `taken`: the access index's rows read already, all of them when `complete` (the
 * merger's table, whose rows the file holds); the file's other rows are read. */
export function readTraceLooks(attemptDir: string, taken?: { rows: LookRows; complete: boolean }): TraceLooks {
  const record = openRecord(attemptDir);
  const procs = new Map<number, RecordProcess>();
  for (const p of record.processes()) procs.set(p.pid, p);
  let looks = taken?.rows ?? new LookRows();
  if (!taken?.complete) {
    const table = record.accessRows();
    if (table) {
      looks.addRows(table, looks.taken);
    } else {
      // no access index: the accesses in the trace
      looks = new LookRows();
      record.eachAccess((pid, op, file) => {
        const kind = LOOK_KINDS[op];
        if (kind !== undefined && !isOwnProc(file)) looks.add(pid, lookOf(looks.idOf(file), kind));
      });
    }
  }
  return { record, procs, looksByPid: looks.looksByPid, pathIds: looks.pathIds, paths: looks.paths };
}

/** The looks at versions (not failed probes or listings) resolved in the layers below
 * the attempt (its parents', the real filesystem), which its own files do not change:
 * done while they are collected. A path the attempt changed is resolved too, for an
 * lstat or two: which ones it changed, files.meta tells once it is collected. */
export function resolveLooksBelow(attemptDir: string, looks: TraceLooks): void {
  const layers = settleLayers(layersBelow(attemptDir));
  const resolutions = new Map<string, Resolution>();
  const versions = (1 << LOOK_KINDS.read!) | (1 << LOOK_KINDS.exec!) | (1 << LOOK_KINDS.stat!) | (1 << LOOK_KINDS.readlink!);
  const wanted = new Uint8Array(looks.paths.length);
  for (const list of looks.looksByPid.values()) {
    for (const look of list) if ((1 << lookKind(look)) & versions) wanted[lookId(look)] = 1;
  }
  for (let id = 0; id < wanted.length; id++) {
    if (!wanted[id]) continue;
    const file = looks.paths[id]!;
    resolutions.set(file, resolveInLayers(layers, unescapeBytes(file).toString('utf8')));
  }
  looks.below = { layers, resolutions };
}

export class CaptureIndexer {
  private readonly record: AttemptRecord;
  private readonly procs: Map<number, RecordProcess>;
  private readonly looksByPid: Map<number, Look[]>;
  /** Ids of the paths looked at, and by id: the operations on the path (undefined: this
   * attempt did not change it), its resolution and hash in the layers below. */
  private readonly pathIds: Map<string, number>;
  private readonly paths: string[];
  private readonly opsById: (RecordFileOperation[] | undefined)[] = [];
  private readonly belowById: (Resolution | undefined)[] = [];
  private readonly belowHashById: (string | null | undefined)[] = [];
  /** By look (id and kind), the input it is for every entry, when its path is one this
   * attempt did not change (a probe of a header, a read of one): one array shared by the
   * entries, not one each (libiberty's 200 entries have 26,000 inputs). */
  private readonly sharedInputs: (Input | undefined)[] = [];
  /** The looks an entry took of each path (LOOK_BITS), valid where the stamp is its own. */
  private seenBits = new Uint8Array(0);
  private seenStamp = new Int32Array(0);
  private stamp = 0;
  private readonly opsByPath = new Map<string, RecordFileOperation[]>();
  /** The paths each process changed, and each path's place in opsByPath's order. */
  private readonly changedBy = new Map<number, Set<string>>();
  private readonly pathOrder = new Map<string, number>();
  /** The smallest pid that changed each path. */
  private readonly firstChanger = new Map<string, number>();
  /** The layers below this attempt (parents, real filesystem), top first. */
  private readonly below: Layer[];
  /** The layers of this attempt, top first: files-<pid>/ by falling pid, then files/. */
  private readonly own: Layer[];
  /** Resolutions in the layers below this attempt, and the hashes of those versions. */
  private readonly belowResolutions: Map<string, Resolution>;
  private readonly belowHashes = new Map<string, string | null>();
  /** For paths this attempt changed, what each layer of this attempt gives as far as it
   * was looked at (null: it does not decide): the processes that read a path see ever
   * fewer of the layers (a build's compiles all read config.h), and each layer is looked
   * at once per path. */
  private readonly changedLooks = new Map<string, { lookup: (layer: Layer) => Resolution | undefined; looked: (Resolution | null | undefined)[] }>();
  /** What each version found is: a version never changes while the index is made. */
  private readonly kinds = new Map<string, Kind>();

  /** `hidden`: directories the sandbox hides (the record, the run directory). `looks`:
   * readTraceLooks of the same attempt, when read already. */
  constructor(
    readonly attemptDir: string,
    private readonly hashes: HashCache,
    private readonly hidden: readonly string[] = [],
    looks: TraceLooks = readTraceLooks(attemptDir),
  ) {
    ({ record: this.record, procs: this.procs, looksByPid: this.looksByPid, pathIds: this.pathIds, paths: this.paths } = looks);
    for (const o of this.record.fileOperations()) {
      const list = this.opsByPath.get(o.path) ?? [];
      list.push(o);
      this.opsByPath.set(o.path, list);
      if (!this.pathOrder.has(o.path)) this.pathOrder.set(o.path, this.pathOrder.size);
      const first = this.firstChanger.get(o.path);
      if (first === undefined || o.pid < first) this.firstChanger.set(o.path, o.pid);
      const mine = this.changedBy.get(o.pid) ?? new Set<string>();
      mine.add(o.path);
      this.changedBy.set(o.pid, mine);
    }
    for (const [file, id] of this.pathIds) this.opsById[id] = this.opsByPath.get(file);
    this.seenBits = new Uint8Array(this.pathIds.size);
    this.seenStamp = new Int32Array(this.pathIds.size);
    const all = settleLayers(layersFor(attemptDir));
    this.own = all.filter((l) => l.depth === 0);
    this.below = looks.below?.layers ?? all.filter((l) => l.depth !== 0);
    this.belowResolutions = looks.below?.resolutions ?? new Map();
  }

  /** The resolution rule for process `pid`; a path this attempt never changed comes from
   * the layers below it, without a look at each of its version directories. So does one
   * that only processes after `pid` changed: files/ holds the first writer's version,
   * which the rule gives every process, also those that ran before it (pids are in order
   * of start, and a writer that ran at the same time makes the entry unsafe). */
  private resolve(file: string, pid: number): Resolution {
    const first = this.firstChanger.get(file);
    if (first === undefined || first > pid) return this.resolveBelow(file);
    // process `pid` sees the layers of the processes before it and files/ (layersFor
    // with `pid`), the last ones of this.own: the first of those that decides, else the
    // layers below
    let looks = this.changedLooks.get(file);
    if (!looks) this.changedLooks.set(file, (looks = { lookup: layerLookup(unescapeBytes(file).toString('utf8')), looked: [] }));
    const own = this.own;
    let i = 0;
    while (i < own.length && own[i]!.pid !== undefined && own[i]!.pid! >= pid) i++;
    for (; i < own.length; i++) {
      let r = looks.looked[i];
      if (r === undefined) looks.looked[i] = r = looks.lookup(own[i]!) ?? null;
      if (r !== null) return r;
    }
    return this.resolveBelow(file);
  }

  /** resolveBelow for a path looked at, by its id. */
  private resolveBelowId(id: number): Resolution {
    let r = this.belowById[id];
    if (!r) this.belowById[id] = r = this.resolveBelow(this.paths[id]!);
    return r;
  }

  /** The resolution in the layers below this attempt: the same for every process (the
   * compiles of a build read the same headers). */
  private resolveBelow(file: string): Resolution {
    let r = this.belowResolutions.get(file);
    if (!r) this.belowResolutions.set(file, (r = resolveInLayers(this.below, unescapeBytes(file).toString('utf8'))));
    return r;
  }

  /** kindOf the version at `file` (a path on the host); throws when there is none. */
  private kindAt(file: string): Kind {
    let kind = this.kinds.get(file);
    if (kind === undefined) this.kinds.set(file, (kind = kindOf(statSync(file))));
    return kind;
  }

  private hashOf(file: string, r: Resolution & { kind: 'found' }): string | null {
    return r.layer.real ? this.hashes.realContentOf(file, r.file) : this.hashes.contentOf(r.file);
  }

  /** The hash of a version found in the layers below this attempt, each looked at once. */
  private hashBelow(file: string, r: Resolution & { kind: 'found' }): string | null {
    let hash = this.belowHashes.get(r.file);
    if (hash === undefined) {
      hash = this.hashOf(file, r);
      this.belowHashes.set(r.file, hash);
    }
    return hash;
  }

  /** The entry of a process that ran in this attempt. */
  entry(started: StartedProcess, decision: 'ran', reason: string): RebuildEntry {
    const base = { ...started, decision, reason, status: null, inputs: [], outputs: [] };
    const p = this.procs.get(started.pid);
    if (!p) return { ...base, unsafe: 'not in the process table', stdio: { pids: [started.pid], ranges: [] } };
    const subtree = this.subtree(p.pid);
    const stdio = { pids: subtree, ranges: [] };
    const status = p.signal === null ? p.exitCode : null;
    const unsafe = (why: string): RebuildEntry => ({ ...base, status, unsafe: why, stdio });
    if (p.signal !== null) return unsafe(`killed by signal ${p.signal}`);
    if (p.exitCode === null || p.end === null || p.start === null) return unsafe('its end was not recorded');
    const members = new Set(subtree);
    // its ancestors wait for it (fork, exec, wait): what they do to a path (the compiler
    // driver makes a temporary file its child fills) happens before or after it
    const ancestors = new Set<number>();
    for (let q = this.procs.get(p.ppid); q && !ancestors.has(q.pid); q = this.procs.get(q.ppid)) ancestors.add(q.pid);
    const span = { start: p.start, end: p.end, ancestors };
    for (const pid of subtree) {
      const m = this.procs.get(pid);
      if (!m || m.end === null) return unsafe(`descendant ${pid} did not end`);
      if (m.signal !== null) return unsafe(`descendant ${pid} was killed by signal ${m.signal}`);
    }

    // the subtree's own changes, path by path, in the order they happened
    const changed = new Map<string, RecordFileOperation[]>();
    const touched = new Set<string>();
    for (const pid of subtree) for (const file of this.changedBy.get(pid) ?? []) touched.add(file);
    for (const file of [...touched].sort((a, b) => this.pathOrder.get(a)! - this.pathOrder.get(b)!)) {
      const ops = this.opsByPath.get(file)!;
      const mine = ops.filter((o) => members.has(o.pid));
      const other = this.concurrentWriter(ops, members, span);
      if (other !== undefined) return unsafe(`it wrote ${file}, which process ${other} also wrote while it ran`);
      changed.set(file, mine);
    }

    const inputs: Input[] = [];
    // the looks taken of each path (LOOK_BITS): one input per look and path
    const stamp = ++this.stamp;
    const seenBits = this.seenBits;
    const seenStamp = this.seenStamp;
    const seen = (file: string): number => {
      const id = this.pathIds.get(file);
      return id !== undefined && seenStamp[id] === stamp ? seenBits[id]! : 0;
    };
    for (const pid of subtree) {
      const looks = this.looksByPid.get(pid);
      if (!looks) continue;
      for (const look of looks) {
        const id = lookId(look);
        const kind = lookKind(look);
        const bit = 1 << kind;
        const had = seenStamp[id] === stamp ? seenBits[id]! : 0;
        if (had & bit) continue;
        seenStamp[id] = stamp;
        seenBits[id] = had | bit;
        const op: LookOp = LOOK_OPS[kind]!;
        const file = this.paths[id]!;
        const ops = this.opsById[id];
        if (ops === undefined) {
          const shared = this.sharedInputs[look];
          if (shared !== undefined) {
            inputs.push(shared);
            continue;
          }
        }
        if (ops !== undefined && changed.has(file)) {
          const before = this.stateBefore(file, members);
          if (before === null) {
            // its own temporary file, or a probe before it made the path
            if (op === 'missing') inputs.push(['missing', file, '-']);
            continue;
          }
          if (op === 'stat' && before !== undefined) {
            inputs.push(['stat', file, this.kindAt(before)]);
            continue;
          }
          if (op === 'missing' && before !== undefined) continue; // after it removed the path
          // it updated a file (ranlib, ar r): what it read first is the version before it
          const hash = before === undefined || (op !== 'read' && op !== 'exec') ? null : this.hashes.contentOf(before);
          if (hash === null) return unsafe(`it read ${file}, which it also wrote`);
          inputs.push([op as 'read' | 'exec', file, hash]);
          continue;
        }
        if (op === 'readdir') {
          const listing = this.listingOf(file, members);
          if (listing === undefined) return unsafe(`it listed the directory ${file}, which the record changed`);
          inputs.push(['readdir', file, listing]);
          continue;
        }
        const writer = ops === undefined ? undefined : this.concurrentWriter(ops, members, span);
        if (writer !== undefined) return unsafe(`it read ${file} while process ${writer} wrote it`);
        // what follows depends on the path alone when this attempt did not change it
        const push = (input: Input): void => {
          if (ops === undefined) this.sharedInputs[look] = input;
          inputs.push(input);
        };
        if (op === 'missing') {
          push(['missing', file, '-']);
          continue;
        }
        const r = ops === undefined ? this.resolveBelowId(id) : this.resolve(file, pid);
        if (r.kind === 'absent') return unsafe(`the version of ${file} it saw is not in the record`);
        if (op === 'readlink') {
          try {
            push(['readlink', file, readlinkSync(r.file, { encoding: 'buffer' }).toString('latin1')]);
          } catch {
            return unsafe(`the link ${file} it read is not in the record`);
          }
          continue;
        }
        if (op === 'stat') {
          try {
            push(['stat', file, this.kindAt(r.file)]);
          } catch {
            return unsafe(`the version of ${file} it saw is not in the record`);
          }
          continue;
        }
        let hash: string | null | undefined;
        if (ops !== undefined) hash = this.hashOf(file, r);
        else if ((hash = this.belowHashById[id]) === undefined) this.belowHashById[id] = hash = this.hashBelow(file, r);
        if (hash === null) return unsafe(`the version of ${file} it saw is not in the record`);
        push([op as 'read' | 'exec', file, hash]);
      }
    }

    // a file it moved without reading it (mv, or a rename of another's temporary file):
    // the content it moved is an input
    for (const [file, ops] of changed) {
      if (!ops.some((o) => o.operation === 'rename_from')) continue;
      const before = this.stateBefore(file, members);
      if (before === null) continue; // its own file
      const hash = before === undefined ? null : this.hashes.contentOf(before);
      if (hash === null || hash === 'dir') return unsafe(`it moved ${file}, whose version before it is not in the record`);
      if (!(seen(file) & LOOK_BITS.read!)) inputs.push(['read', file, hash]);
    }

    const outputs: Output[] = [];
    for (const [file, ops] of changed) {
      const last = ops[ops.length - 1]!;
      if (REMOVALS.has(last.operation)) {
        outputs.push([file, 'absent', null, 0]);
        continue;
      }
      const writes = ops.filter((o) => CONTENT_WRITES.has(o.operation) || o.operation === 'mkdir');
      const writer = writes.length > 0 ? writes[writes.length - 1]!.pid : last.pid;
      const version = this.record.versionWrittenBy(file, writer);
      const source = version && !version.deleted ? version.file : undefined;
      const resolved = source ?? (() => {
        const r = this.resolve(file, writer + 1);
        return r.kind === 'found' ? r.file : undefined;
      })();
      if (resolved === undefined) return unsafe(`its version of ${file} is not in the record`);
      const st = statSync(resolved);
      if (st.isDirectory()) outputs.push([file, 'dir', null, st.mode & 0o7777]);
      else if (st.isFile()) outputs.push([file, 'file', resolved, st.mode & 0o7777]);
      else return unsafe(`it left ${file} as neither a file nor a directory`);
    }
    return { ...base, status: p.exitCode, inputs, outputs, stdio };
  }

  /** What `file` was before the subtree first changed it: null when absent, else the
   * host path of that version when it is known (undefined: it existed). Operations of
   * others before the subtree's first one tell; without any, the layers below this
   * attempt (parents, real filesystem) do. */
  private stateBefore(file: string, members: Set<number>): string | undefined | null {
    const ops = this.opsByPath.get(file) ?? [];
    const first = ops.findIndex((o) => members.has(o.pid));
    const earlier = ops.slice(0, first < 0 ? 0 : first);
    if (earlier.length > 0) {
      const last = earlier[earlier.length - 1]!;
      if (REMOVALS.has(last.operation)) return null;
      const v = this.record.versionWrittenBy(file, last.pid);
      return v && !v.deleted ? v.file : undefined;
    }
    const r = this.resolveBelow(file);
    return r.kind === 'found' ? r.file : null;
  }

  /** The listing of a directory as it was before the subtree `members` ran, when it
   * lies in the real filesystem alone and no process outside the subtree changed it, as
   * listingHash gives it; undefined otherwise. What the subtree itself then saw in it is
   * that listing and its own changes (make reads the directory it builds in), so the
   * listing before is the input. */
  private listingOf(dir: string, members: ReadonlySet<number>): string | undefined {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    for (const [k, ops] of this.opsByPath) {
      if ((k === dir || k.startsWith(prefix)) && ops.some((o) => !members.has(o.pid))) return undefined;
    }
    const r = this.resolve(dir, Number.POSITIVE_INFINITY);
    if (r.kind !== 'found' || !r.layer.real) return undefined;
    const absent = new Set(this.hidden.filter((h) => path.dirname(h) === path.resolve(dir)).map((h) => path.basename(h)));
    return listingHash(r.file, absent) ?? undefined;
  }

  /** Pids of the process and its descendants, in pid order. */
  subtree(pid: number): number[] {
    const out: number[] = [];
    const walk = (q: number): void => {
      out.push(q);
      for (const c of this.record.children(q)) walk(c.pid);
    };
    walk(pid);
    return out.sort((a, b) => a - b);
  }

  /** A process outside `members` that changed the path while the subtree ran. */
  private concurrentWriter(
    ops: readonly RecordFileOperation[],
    members: Set<number>,
    span: { start: number; end: number; ancestors: Set<number> },
  ): number | undefined {
    for (const o of ops) {
      if (members.has(o.pid) || span.ancestors.has(o.pid)) continue;
      const q = this.procs.get(o.pid);
      const start = q?.start ?? Number.NEGATIVE_INFINITY;
      const end = q?.end ?? Number.POSITIVE_INFINITY;
      if (start < span.end && end > span.start) return o.pid;
    }
    return undefined;
  }
}

/** A path of the index as the bytes the file system takes. */
export function pathBytes(escaped: string): Buffer {
  return unescapeBytes(escaped);
}
