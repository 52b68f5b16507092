// The access index (docs/record.md, "accesses.tsv"): every path each process read,
// probed, listed, executed or changed, once per process, operation and path, in the
// order of first access, with the number of times it happened. Written by the merger
// from the trace events; read by `uwrx inspect files --reads` and partial rebuild
// without decoding the Perfetto file.
import { closeSync, openSync, writeSync } from 'node:fs';
import { escapeBytes, isPlain, isPlainText, unescapeBytes } from './escape.js';
import { ACCESS_OPS, type TraceEvent } from '../protocol/events.js';
import { native } from '../native.js';

export const ACCESS_INDEX_OPS = [
  'read', 'missing', 'stat', 'readdir', 'readlink', 'exec', 'write', 'delete', 'rename_from', 'rename_to', 'mkdir', 'rmdir', 'chmod',
  'chown',
] as const;
export type AccessOp = (typeof ACCESS_INDEX_OPS)[number];

export interface AccessEntry {
  pid: number;
  op: AccessOp;
  path: Buffer;
  /** How often the process did this (the first time is the one kept in the trace). */
  count: number;
}

/** The index's file in an attempt directory. */
export const ACCESS_INDEX_FILE = 'accesses.tsv';
export const ACCESS_INDEX_HEADER = 'pid\top\tpath\tcount\n';
const ENOENT = -2;
const ENOTDIR = -20;

/** uwrx's own files in the sandbox (the recorder and its preload list, which the dynamic
 * linker reads in every process): not the program's accesses. */
export const UWRX_OWN = Buffer.from('/dev/.uwrx-', 'latin1');

/** The index entries one event stands for (none for events that touch no path). */
export function accessesOf(ev: TraceEvent): Array<{ op: AccessOp; path: Buffer }> {
  switch (ev.type) {
    case 'access': {
      if (isUwrxOwn(ev.path, 0, ev.path.length)) return [];
      return [{ op: accessOp(ev.op, ev.result), path: ev.path }];
    }
    case 'exec':
      return ev.result >= 0 ? [{ op: 'exec', path: ev.path }] : [];
    case 'open':
    case 'truncate':
      return [{ op: 'write', path: ev.path }];
    case 'unlink':
      return [{ op: 'delete', path: ev.path }];
    case 'rename':
      return [{ op: 'rename_from', path: ev.from }, { op: 'rename_to', path: ev.to }];
    case 'mkdir':
    case 'rmdir':
    case 'chmod':
    case 'chown':
      return [{ op: ev.type, path: ev.path }];
    default:
      return [];
  }
}

/** What the merger needs of an access index: this module's AccessIndex, or the same
 * table in native code (access-writer.ts), which must give the same file byte for byte. */
export interface AccessTable {
  /** Adds the event's accesses; true when one of them is new (the event is a first).
   * False for repeats and for accesses that are uwrx's own. */
  add(ev: TraceEvent): boolean;
  /** `times` accesses of the path in buf[start, end); true when the entry is new. */
  addAccess(pid: number, op: AccessOp, buf: Uint8Array, start: number, end: number, times: number): boolean;
  readonly size: number;
  /** Writes accesses.tsv (created or truncated). */
  writeFile(file: string): void;
}

/** AccessTable.add, from addAccess. */
export function addEventAccesses(table: AccessTable, ev: TraceEvent): boolean {
  let fresh = false;
  // an access event may stand for several accesses (counted in process)
  const times = ev.type === 'access' ? Math.max(ev.count, 1) : 1;
  for (const { op, path } of accessesOf(ev)) {
    if (table.addAccess(ev.pid, op, path, 0, path.length, times)) fresh = true;
  }
  return fresh;
}

/**
 * Collects entries in first-access order, one per process, operation and path, with their
 * counts. A file storm brings one entry per access (find: 170,000), so entries live in
 * flat arrays and their paths in one byte arena, found again through an open-addressing
 * table keyed by a hash of the bytes: no string or object per access.
 */
export class AccessIndex implements AccessTable {
  private count = 0;
  private hashes = new Int32Array(1024);
  private pids = new Int32Array(1024);
  private ops = new Uint8Array(1024);
  private pathStarts = new Int32Array(1024);
  private pathEnds = new Int32Array(1024);
  private counts = new Float64Array(1024);
  /** entry + 1 per slot, 0 for a free slot; at most half full. */
  private slots = new Int32Array(2048);
  private arena = Buffer.allocUnsafe(1 << 16);
  private arenaUsed = 0;

  add(ev: TraceEvent): boolean {
    return addEventAccesses(this, ev);
  }

  addAccess(pid: number, op: AccessOp, buf: Uint8Array, start: number, end: number, times: number): boolean {
    const opCode = OP_CODES.get(op)!;
    let h = Math.imul(FNV_OFFSET ^ pid, FNV_PRIME);
    h = Math.imul(h ^ opCode, FNV_PRIME);
    for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
    const mask = this.slots.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const at = this.slots[slot]!;
      if (at === 0) {
        this.slots[slot] = this.append(h, pid, opCode, buf, start, end, times) + 1;
        if (this.count * 2 > this.slots.length) this.rehash();
        return true;
      }
      const e = at - 1;
      if (this.hashes[e] === h && this.pids[e] === pid && this.ops[e] === opCode && this.samePath(e, buf, start, end)) {
        this.counts[e]! += times;
        return false;
      }
    }
  }

  get size(): number {
    return this.count;
  }

  writeFile(file: string): void {
    const fd = openSync(file, 'w');
    try {
      this.formatInto((bytes) => {
        let off = 0;
        while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      });
    } finally {
      closeSync(fd);
    }
  }

  /** The file's bytes in pieces of up to about 1 MiB, in order (each piece is only
   * valid during the call). */
  formatInto(write: (bytes: Buffer) => void): void {
    let piece = Buffer.allocUnsafe(1 << 20);
    let used = piece.write(ACCESS_INDEX_HEADER, 0, 'latin1');
    for (let e = 0; e < this.count; e++) {
      const start = this.pathStarts[e]!;
      const end = this.pathEnds[e]!;
      const path = isPlain(this.arena, start, end) ? undefined : Buffer.from(escapeBytes(this.arena.subarray(start, end)), 'utf8');
      const op = OP_BYTES[this.ops[e]!]!;
      // two numbers of at most 16 digits, three tabs and a newline
      const need = 36 + op.length + (path ? path.length : end - start);
      if (used + need > piece.length) {
        write(piece.subarray(0, used));
        used = 0;
        if (need > piece.length) piece = Buffer.allocUnsafe(need);
      }
      used = writeDecimal(piece, used, this.pids[e]!);
      piece[used++] = TAB;
      for (let i = 0; i < op.length; i++) piece[used++] = op[i]!;
      piece[used++] = TAB;
      if (path) used += path.copy(piece, used);
      else for (let i = start; i < end; i++) piece[used++] = this.arena[i]!;
      piece[used++] = TAB;
      used = writeDecimal(piece, used, this.counts[e]!);
      piece[used++] = NEWLINE;
    }
    if (used > 0) write(piece.subarray(0, used));
  }

  private samePath(e: number, buf: Uint8Array, start: number, end: number): boolean {
    const from = this.pathStarts[e]!;
    if (this.pathEnds[e]! - from !== end - start) return false;
    const arena = this.arena;
    for (let i = 0; i < end - start; i++) if (arena[from + i] !== buf[start + i]) return false;
    return true;
  }

  private append(hash: number, pid: number, opCode: number, buf: Uint8Array, start: number, end: number, times: number): number {
    if (this.count === this.hashes.length) this.growEntries();
    const len = end - start;
    if (this.arenaUsed + len > this.arena.length) {
      const next = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + len));
      this.arena.copy(next, 0, 0, this.arenaUsed);
      this.arena = next;
    }
    const e = this.count++;
    this.hashes[e] = hash;
    this.pids[e] = pid;
    this.ops[e] = opCode;
    this.pathStarts[e] = this.arenaUsed;
    for (let i = start; i < end; i++) this.arena[this.arenaUsed++] = buf[i]!;
    this.pathEnds[e] = this.arenaUsed;
    this.counts[e] = times;
    return e;
  }

  private growEntries(): void {
    const n = this.hashes.length * 2;
    const grow = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: new (n: number) => T): T => {
      const b = new make(n);
      b.set(a);
      return b;
    };
    this.hashes = grow(this.hashes, Int32Array);
    this.pids = grow(this.pids, Int32Array);
    this.ops = grow(this.ops, Uint8Array);
    this.pathStarts = grow(this.pathStarts, Int32Array);
    this.pathEnds = grow(this.pathEnds, Int32Array);
    this.counts = grow(this.counts, Float64Array);
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let slot = this.hashes[e]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = e + 1;
    }
    this.slots = slots;
  }
}

const OP_BYTES = ACCESS_INDEX_OPS.map((op) => Buffer.from(op, 'latin1'));
const TAB = 0x09;
const NEWLINE = 0x0a;

/** Writes the decimal digits of a non-negative integer at `at`; returns the end. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  if (n < 10) {
    buf[at] = 0x30 + n;
    return at + 1;
  }
  const digits = String(n);
  for (let i = 0; i < digits.length; i++) buf[at + i] = digits.charCodeAt(i);
  return at + digits.length;
}

export const OP_CODES: ReadonlyMap<AccessOp, number> = new Map<AccessOp, number>(ACCESS_INDEX_OPS.map((op, i) => [op, i]));
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** The index operation of an access record: what a failed lookup or a check tells. */
export function accessOp(op: number, result: number): AccessOp {
  if (result === ENOENT || result === ENOTDIR) return 'missing';
  const name = ACCESS_OPS[op as keyof typeof ACCESS_OPS];
  // an access check tells what a stat tells: whether (and as what) the path exists
  return name === undefined || name === 'access' ? 'stat' : name;
}

/** True for a path of uwrx's own files (UWRX_OWN) in buf[start, end). */
export function isUwrxOwn(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < UWRX_OWN.length) return false;
  for (let i = 0; i < UWRX_OWN.length; i++) if (buf[start + i] !== UWRX_OWN[i]) return false;
  return true;
}

export class AccessIndexError extends Error {}

/** Parses a whole accesses.tsv; throws AccessIndexError naming the first bad line. */
export function parseAccessIndex(text: string): AccessEntry[] {
  return parseLines(text, unescapeBytes);
}


/** parseAccessIndex with each path as its canonical escaped text (escapeBytes), the form
 * the record's other files use; most paths are that already and are not decoded. */
export function parseAccessIndexEscaped(text: string): Array<Omit<AccessEntry, 'path'> & { path: string }> {
  return parseLines(text, escapedPath);
}

/** The entries of parseAccessIndexEscaped handed to `visit` one by one, in order, with no
 * object made for them: partial rebuild reads a build's tens of thousands once. */
export function forEachAccessEscaped(text: string, visit: (pid: number, op: AccessOp, path: string, count: number) => void): void {
  scanLines(text, escapedPath, visit);
}

/** accesses.tsv as rows of three numbers: the pid, the operation's index in
 * ACCESS_INDEX_OPS and the index of its path in `paths` (the canonical escaped text, as
 * parseAccessIndexEscaped gives it; the same path may have two indexes when the file
 * spells it in two ways). The rebuild index reads a build's tens of thousands of lines
 * once, after the command, when V8 runs this code unoptimized: the native scan makes no
 * string or object per line. Throws AccessIndexError as parseAccessIndex does. */
export interface AccessRows {
  paths: string[];
  rows: ArrayLike<number>;
}

export function accessIndexRows(text: Buffer): AccessRows {
  const scanned = native().scanAccessIndex(text, ACCESS_INDEX_HEADER, ACCESS_INDEX_OPS);
  if (scanned) {
    try {
      return { paths: scanned.paths.map(escapedPath), rows: scanned.rows };
    } catch {
      // a malformed escape: the reading below names its line
    }
  }
  // the reference reading: the same rows, or the error naming the first bad line
  const paths: string[] = [];
  const index = new Map<string, number>();
  const rows: number[] = [];
  scanLines(text.toString('utf8'), escapedPath, (pid, op, path) => {
    let i = index.get(path);
    if (i === undefined) {
      index.set(path, (i = paths.length));
      paths.push(path);
    }
    rows.push(pid, OP_INDEX.get(op)!, i);
  });
  return { paths, rows };
}

/** The rows of the merger's table (AccessWriter.rows) as accessIndexRows gives the
 * same rows of the file. */
export function tableRows(raw: { rows: Int32Array; paths: string[] }): AccessRows {
  return { paths: raw.paths.map(escapedPath), rows: raw.rows };
}

const OP_INDEX: ReadonlyMap<string, number> = new Map(ACCESS_INDEX_OPS.map((op, i) => [op, i]));

const escapedPath = (field: string): string => (isPlainText(field) ? field : escapeBytes(unescapeBytes(field)));

const OP_NAMES: ReadonlySet<string> = new Set(ACCESS_INDEX_OPS);

function parseLines<P>(text: string, pathOf: (field: string) => P): Array<Omit<AccessEntry, 'path'> & { path: P }> {
  const out: Array<Omit<AccessEntry, 'path'> & { path: P }> = [];
  scanLines(text, pathOf, (pid, op, path, count) => out.push({ pid, op, path, count }));
  return out;
}

/** One pass over the text with indexOf, no array per line: a build's index has tens of
 * thousands of lines and partial rebuild reads it after the command ended. */
function scanLines<P>(text: string, pathOf: (field: string) => P, visit: (pid: number, op: AccessOp, path: P, count: number) => void): void {
  if (!text.startsWith(ACCESS_INDEX_HEADER)) throw new AccessIndexError('accesses.tsv: missing header line');
  for (let at = ACCESS_INDEX_HEADER.length, line = 2; at < text.length; line++) {
    let eol = text.indexOf('\n', at);
    if (eol < 0) eol = text.length;
    const t1 = text.indexOf('\t', at);
    const t2 = t1 < 0 || t1 > eol ? -1 : text.indexOf('\t', t1 + 1);
    const t3 = t2 < 0 || t2 > eol ? -1 : text.indexOf('\t', t2 + 1);
    const t4 = t3 < 0 || t3 > eol ? -1 : text.indexOf('\t', t3 + 1);
    if (t3 < 0 || t3 > eol || (t4 >= 0 && t4 < eol)) {
      const found = text.slice(at, eol).split('\t').length;
      throw new AccessIndexError(`${where(line)}: expected 4 tab-separated fields, found ${found}`);
    }
    const pid = positiveNumber(text, at, t1);
    if (pid === undefined) throw new AccessIndexError(`${where(line)}: pid "${text.slice(at, t1)}" is not a logical pid`);
    const op = text.slice(t1 + 1, t2);
    if (!OP_NAMES.has(op)) throw new AccessIndexError(`${where(line)}: unknown operation "${op}"`);
    const count = positiveNumber(text, t3 + 1, eol);
    if (count === undefined) throw new AccessIndexError(`${where(line)}: count "${text.slice(t3 + 1, eol)}" is not a positive number`);
    let path: P;
    try {
      path = pathOf(text.slice(t2 + 1, t3));
    } catch (err) {
      throw new AccessIndexError(`${where(line)}: ${(err as Error).message}`);
    }
    visit(pid, op as AccessOp, path, count);
    at = eol + 1;
  }
}

const where = (line: number) => `accesses.tsv line ${line}`;

/** The number text[start, end) spells in decimal without a leading zero (/^[1-9][0-9]*$/). */
function positiveNumber(text: string, start: number, end: number): number | undefined {
  if (end <= start || text.charCodeAt(start) === 0x30) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}
