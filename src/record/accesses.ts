// The access index (docs/record.md, "accesses.tsv"): every path each process read,
// probed, listed, executed or changed, once per process, operation and path, in the
// order of first access, with the number of times it happened. Written by the merger
// from the trace events; read by `uwrx inspect files --reads` and partial rebuild
// without decoding the Perfetto file.
import { escapeBytes, unescapeBytes } from './escape.js';
import { ACCESS_OPS, type TraceEvent } from '../protocol/events.js';

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

export const ACCESS_INDEX_HEADER = 'pid\top\tpath\tcount\n';
const ENOENT = -2;
const ENOTDIR = -20;

/** uwrx's own files in the sandbox (the recorder and its preload list, which the dynamic
 * linker reads in every process): not the program's accesses. */
const UWRX_OWN = Buffer.from('/dev/.uwrx-', 'latin1');

/** The index entries one event stands for (none for events that touch no path). */
export function accessesOf(ev: TraceEvent): Array<{ op: AccessOp; path: Buffer }> {
  switch (ev.type) {
    case 'access': {
      if (ev.path.subarray(0, UWRX_OWN.length).equals(UWRX_OWN)) return [];
      if (ev.result === ENOENT || ev.result === ENOTDIR) return [{ op: 'missing', path: ev.path }];
      const name = ACCESS_OPS[ev.op as keyof typeof ACCESS_OPS];
      // an access check tells what a stat tells: whether (and as what) the path exists
      const op: AccessOp = name === undefined || name === 'access' ? 'stat' : name;
      return [{ op, path: ev.path }];
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

/** Collects entries in first-access order, one per process, operation and path. */
export class AccessIndex {
  private readonly entries = new Map<string, AccessEntry>();

  /** Adds the event's accesses; true when one of them is new (the event is a first).
   * False for repeats and for accesses that are uwrx's own. */
  add(ev: TraceEvent): boolean {
    let fresh = false;
    // an access event may stand for several accesses (counted in process)
    const times = ev.type === 'access' ? Math.max(ev.count, 1) : 1;
    for (const { op, path } of accessesOf(ev)) {
      const key = `${ev.pid}\0${op}\0${path.toString('latin1')}`;
      const known = this.entries.get(key);
      if (known) known.count += times;
      else {
        this.entries.set(key, { pid: ev.pid, op, path, count: times });
        fresh = true;
      }
    }
    return fresh;
  }

  get size(): number {
    return this.entries.size;
  }

  format(): string {
    const lines = [ACCESS_INDEX_HEADER];
    for (const e of this.entries.values()) lines.push(`${e.pid}\t${e.op}\t${escapeBytes(e.path)}\t${e.count}\n`);
    return lines.join('');
  }
}

export class AccessIndexError extends Error {}

/** Parses a whole accesses.tsv; throws AccessIndexError naming the first bad line. */
export function parseAccessIndex(text: string): AccessEntry[] {
  return parseLines(text, unescapeBytes);
}

/** Printable ASCII but the backslash: a path field that is its own canonical escape. */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

/** parseAccessIndex with each path as its canonical escaped text (escapeBytes), the form
 * the record's other files use; most paths are that already and are not decoded. */
export function parseAccessIndexEscaped(text: string): Array<Omit<AccessEntry, 'path'> & { path: string }> {
  return parseLines(text, (field) => (PLAIN.test(field) ? field : escapeBytes(unescapeBytes(field))));
}

function parseLines<P>(text: string, pathOf: (field: string) => P): Array<Omit<AccessEntry, 'path'> & { path: P }> {
  if (!text.startsWith(ACCESS_INDEX_HEADER)) throw new AccessIndexError('accesses.tsv: missing header line');
  const lines = text.slice(ACCESS_INDEX_HEADER.length).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line, i) => {
    const where = `accesses.tsv line ${i + 2}`;
    const fields = line.split('\t');
    if (fields.length !== 4) throw new AccessIndexError(`${where}: expected 4 tab-separated fields, found ${fields.length}`);
    const [pid, op, path, count] = fields as [string, string, string, string];
    if (!/^[1-9][0-9]*$/.test(pid)) throw new AccessIndexError(`${where}: pid "${pid}" is not a logical pid`);
    if (!(ACCESS_INDEX_OPS as readonly string[]).includes(op)) throw new AccessIndexError(`${where}: unknown operation "${op}"`);
    if (!/^[1-9][0-9]*$/.test(count)) throw new AccessIndexError(`${where}: count "${count}" is not a positive number`);
    try {
      return { pid: Number(pid), op: op as AccessOp, path: pathOf(path), count: Number(count) };
    } catch (err) {
      throw new AccessIndexError(`${where}: ${(err as Error).message}`);
    }
  });
}
