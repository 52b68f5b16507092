// What happened to each path of an attempt, replayed from files.meta (which lists the
// operations in the order they happened): the state each writer left a path in, and
// which incarnation of a directory that was. The store layout (src/record/layout-store.ts)
// and `uwrx check` both read the record through this.
import type { FileMetaEntry, FileOperation } from './files-meta.js';

export type Kind = 'file' | 'dir' | 'absent';

/** The state of a path right after one operation. `inc` numbers the directories that
 * were made at this path (mkdir, a directory renamed here): 0 is one that was there
 * before the attempt, 1 the first made in it, and so on. */
export interface OpState {
  pid: number;
  op: FileOperation;
  /** Line index in files.meta (the order things happened). */
  seq: number;
  kind: Kind;
  inc: number;
}

export interface PathHistory {
  key: string;
  path: Buffer;
  ops: OpState[];
  /** The path was a directory at some point (before or after an operation). */
  dirish: boolean;
  /** The kind the path had before the attempt, when an operation told (undefined: not known). */
  before?: Kind;
}

const REMOVALS: ReadonlySet<FileOperation> = new Set(['delete', 'rmdir', 'rename_from']);
const CREATIONS: ReadonlySet<FileOperation> = new Set(['create', 'mkdir', 'rename_to']);

export function isRemoval(op: FileOperation): boolean {
  return REMOVALS.has(op);
}

export function isCreation(op: FileOperation): boolean {
  return CREATIONS.has(op);
}

/** A map key for a path (bytes kept exactly). */
export function pathKey(p: Buffer): string {
  return p.toString('latin1');
}

/** The parent directory's key, undefined for "/". */
export function parentKey(key: string): string | undefined {
  if (key === '/' || !key.startsWith('/')) return undefined;
  const slash = key.lastIndexOf('/');
  return slash <= 0 ? '/' : key.slice(0, slash);
}

/** Replays files.meta. `kindBefore(path)` tells what a path was before the attempt; it is
 * asked only where the lines do not tell (a rename's source, a chmod of an older file). */
export function replayHistory(entries: FileMetaEntry[], kindBefore: (p: Buffer) => Kind): Map<string, PathHistory> {
  const paths = new Map<string, PathHistory>();
  const current = new Map<string, { kind: Kind; inc: number }>();
  const incs = new Map<string, number>();
  // what a rename moves: the kind of its source, per process (the two lines are adjacent)
  const moving = new Map<number, Kind>();
  const nextInc = (key: string): number => {
    const n = (incs.get(key) ?? 0) + 1;
    incs.set(key, n);
    return n;
  };
  entries.forEach((e, seq) => {
    const key = pathKey(e.path);
    let h = paths.get(key);
    if (!h) paths.set(key, (h = { key, path: e.path, ops: [], dirish: false }));
    const now = (): { kind: Kind; inc: number } => {
      const c = current.get(key);
      if (c) return c;
      const kind = kindBefore(e.path);
      h!.before = kind;
      return { kind, inc: 0 };
    };
    let after: { kind: Kind; inc: number };
    switch (e.operation) {
      case 'create':
        if (h.ops.length === 0) h.before = 'absent';
        after = { kind: 'file', inc: current.get(key)?.inc ?? 0 };
        break;
      case 'write': {
        // a directory's new times or attributes leave it a directory
        const was = current.get(key);
        after = was?.kind === 'dir' ? was : { kind: 'file', inc: was?.inc ?? 0 };
        break;
      }
      case 'mkdir':
        if (h.ops.length === 0) h.before = 'absent';
        after = { kind: 'dir', inc: nextInc(key) };
        break;
      case 'delete':
        if (h.ops.length === 0) h.before = 'file';
        after = { kind: 'absent', inc: current.get(key)?.inc ?? 0 };
        break;
      case 'rmdir':
        if (h.ops.length === 0) h.before = 'dir';
        h.dirish = true;
        after = { kind: 'absent', inc: current.get(key)?.inc ?? 0 };
        break;
      case 'rename_from': {
        const was = now();
        moving.set(e.pid, was.kind === 'absent' ? 'file' : was.kind);
        if (was.kind === 'dir') h.dirish = true;
        after = { kind: 'absent', inc: was.inc };
        break;
      }
      case 'rename_to': {
        const kind = moving.get(e.pid) ?? 'file';
        moving.delete(e.pid);
        after = kind === 'dir' ? { kind, inc: nextInc(key) } : { kind, inc: current.get(key)?.inc ?? 0 };
        break;
      }
      default: {
        // chmod, chown: the path stays what it was
        const was = now();
        after = was.kind === 'absent' ? { kind: 'file', inc: was.inc } : was;
      }
    }
    if (after.kind === 'dir') h.dirish = true;
    current.set(key, after);
    h.ops.push({ pid: e.pid, op: e.operation, seq, kind: after.kind, inc: after.inc });
  });
  return paths;
}

/** One version per writer: the state after its last operation, in the order of those
 * operations (the last is the final state). */
export function versionsOf(h: PathHistory): OpState[] {
  const last = new Map<number, OpState>();
  for (const op of h.ops) last.set(op.pid, op);
  return [...last.values()].sort((a, b) => a.seq - b.seq);
}

/** What the lines say about each path at the end of the attempt: 'file', 'dir', 'absent',
 * or undefined where they cannot tell (a directory renamed or made over it later may
 * hold anything; a rename's target may be either kind). */
export function expectedFinal(paths: Map<string, PathHistory>): Map<string, Kind | undefined> {
  const out = new Map<string, Kind | undefined>();
  for (const h of paths.values()) {
    const last = h.ops[h.ops.length - 1]!;
    let kind: Kind | undefined = last.kind;
    if (last.op === 'rename_to' || last.op === 'chmod' || last.op === 'chown') kind = kind === 'absent' ? 'absent' : undefined;
    // a later change of an ancestor decides instead
    for (let k = parentKey(h.key); k !== undefined && kind !== 'absent'; k = parentKey(k)) {
      const a = paths.get(k);
      if (!a) continue;
      const later = a.ops.filter((op) => op.seq > last.seq);
      if (later.length === 0) continue;
      if (later.some((op) => op.op === 'rename_to')) kind = undefined;
      else if (later.some((op) => isRemoval(op.op) || op.op === 'mkdir' || op.op === 'create')) kind = 'absent';
      if (kind === undefined) break;
    }
    out.set(h.key, kind);
  }
  return out;
}
