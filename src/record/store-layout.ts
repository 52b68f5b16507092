// Lays out files/ and files-<pid>/ from the attempt's history, so that the resolution
// rule (src/record/resolve.ts) gives each process the state it saw and, above all, gives
// the final state after the run.
//
// Input: files/ holding the overlays' uppers (the final state, whiteouts and opaque
// directories as overlayfs left them), the versions uwrx-init kept (a writer's version
// that another process replaced: a file, a symlink, or absent; src/record/versions-index.ts),
// and files.meta. Paths written by one process and never removed as directories are already
// where they belong. For every other path ("special"), each writer's version gets a layer:
//
// - the first writer's version goes to files/ (layer 0), except for a path that was a
//   directory at some time: there files/ holds only the first directory made at the path
//   in the attempt, so that the first versions of what lay inside it have a place;
// - every other version goes to files-<its writer>/;
// - nothing lies lower than the directory it was in: a version made inside a directory
//   incarnation that lives in files-<m>/ goes to files-<m>/ at least;
// - the final state lies at least as high as every other version of the path, and, when
//   the path ends absent (or not a directory), at least as high as anything below it, so
//   its whiteout hides them all. Where two versions meet in one layer the later wins; a
//   file version that is lost that way is listed in files.skipped.
//
// A directory removed and made again is opaque where it is made again; when the final
// directory is another incarnation than files/ holds, the upper's whole subtree moves to
// the final layer (renames only).
import { chmodSync, linkSync, lstatSync, mkdirSync, renameSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../fs.js';
import { native } from '../native.js';
import { escapeBytes } from './escape.js';
import type { FileMetaEntry } from './files-meta.js';
import { isRemoval, parentKey, replayHistory, versionsOf, type Kind, type OpState, type PathHistory } from './history.js';
import { isWhiteout, layersFor, resolveBytes } from './resolve.js';
import { inheritedGroup, type SparePool } from './spare-dirs.js';
import { readVersionsIndex } from './versions-index.js';

const OPAQUE = 'user.overlay.opaque';

interface Node {
  h: PathHistory;
  versions: OpState[];
  final: OpState;
  firstPid: number;
  /** inc of the directory files/ holds for this path (-1: none). */
  baseInc: number;
  /** Layer of each version, by pid (the final's is finalLayer). */
  layer: Map<number, number>;
  finalLayer: number;
  /** Highest layer of any version at or below this path. */
  subtreeMax: number;
  ancestors: Node[];
  existedBefore?: boolean;
}

export interface LayoutResult {
  /** `<escaped path>\t<pid>` of versions that have no place. */
  skipped: string[];
}

/** `move` renames a preserved version into the store (or copies it where the run's
 * directory is on another filesystem).
 *
 * The layout's calls are synchronous: it runs in the storage actor's thread, which has
 * nothing else to do meanwhile, and a configure's record takes thousands of small calls
 * (a layer per writing process), each of which cost a promise and a thread-pool round
 * trip when made asynchronously.
 *
 * `spares`: directories made beforehand, renamed into place where the layout would make
 * one (src/record/spare-dirs.ts); the store is the same without. */
export async function layoutStore(
  attemptDir: string,
  entries: FileMetaEntry[],
  versionsDir: string,
  move: (src: Buffer, dst: Buffer) => void,
  spares?: SparePool,
): Promise<LayoutResult> {
  const below = layersFor(attemptDir).filter((l) => l.depth !== 0);
  const kindBefore = (p: Buffer): Kind => {
    const r = resolveBytes(below, p);
    if (r.kind === 'absent') return 'absent';
    return lstatSync(r.file).isDirectory() ? 'dir' : 'file';
  };
  const histories = replayHistory(entries, kindBefore);
  const nodes = new Map<string, Node>();
  for (const h of histories.values()) {
    const versions = versionsOf(h);
    const special = versions.length >= 2 || (h.dirish && h.ops.some((o) => isRemoval(o.op)));
    if (!special) continue;
    const first = h.ops[0]!;
    nodes.set(h.key, {
      h,
      versions,
      final: versions[versions.length - 1]!,
      firstPid: first.pid,
      baseInc: !h.dirish ? -2 : first.kind === 'dir' ? first.inc : -1,
      layer: new Map(),
      finalLayer: 0,
      subtreeMax: 0,
      ancestors: [],
    });
  }
  // parents before children (a path's ancestors are its prefixes)
  const ordered = [...nodes.values()].sort((a, b) => Buffer.compare(a.h.path, b.h.path));
  for (const n of ordered) {
    for (let k = parentKey(n.h.key); k !== undefined; k = parentKey(k)) {
      const a = nodes.get(k);
      if (a) n.ancestors.push(a);
    }
  }

  const base = (n: Node, v: OpState): number => {
    if (v.pid !== n.firstPid) return v.pid;
    if (n.baseInc === -2) return 0;
    return v.kind === 'dir' && v.inc === n.baseInc ? 0 : v.pid;
  };
  // the layer of the directory incarnation of ancestor `a` current at `seq`
  const layerAt = (a: Node, seq: number): number => {
    let op: OpState | undefined;
    for (const o of a.h.ops) if (o.seq <= seq) op = o;
    if (!op || op.kind !== 'dir') return 0;
    const v = a.versions.find((x) => x.pid === op!.pid)!;
    if (v.kind !== 'dir' || v.inc !== op.inc) return 0;
    return v === a.final ? a.finalLayer : a.layer.get(v.pid)!;
  };
  const ancestorLayer = (n: Node, seq: number): number => Math.max(0, ...n.ancestors.map((a) => layerAt(a, seq)));

  for (const n of ordered) {
    let top = 0;
    for (const v of n.versions) {
      if (v === n.final) continue;
      const l = Math.max(base(n, v), ancestorLayer(n, v.seq));
      n.layer.set(v.pid, l);
      top = Math.max(top, l);
    }
    n.finalLayer = Math.max(base(n, n.final), top, ancestorLayer(n, Number.POSITIVE_INFINITY));
    n.subtreeMax = n.finalLayer;
  }
  // a path that ends absent (or a file) hides everything below it: its final goes higher
  for (const n of [...ordered].reverse()) {
    if (n.final.kind !== 'dir') n.finalLayer = Math.max(n.finalLayer, n.subtreeMax);
    n.subtreeMax = Math.max(n.subtreeMax, n.finalLayer);
    const parent = n.ancestors[0];
    if (parent) parent.subtreeMax = Math.max(parent.subtreeMax, n.subtreeMax);
  }

  const preserved = await readVersionsIndex(versionsDir);
  const store = new Store(attemptDir, spares);
  const skipped: string[] = [];
  const skip = (n: Node, pid: number) => skipped.push(`${escapeBytes(n.h.path)}\t${pid}\n`);
  const existedBefore = (n: Node): boolean => {
    if (n.existedBefore === undefined) {
      const first = n.h.ops[0]!.op;
      n.existedBefore = first === 'create' || first === 'mkdir' ? false : (n.h.before ?? kindBefore(n.h.path)) !== 'absent';
    }
    return n.existedBefore;
  };
  const needsOpaque = (n: Node, inc: number) => inc >= 2 || (inc >= 1 && existedBefore(n));

  try {
    for (const n of ordered) {
      try {
        placeNode(n);
      } catch (err) {
        // a history this layout did not foresee: what could not be placed is listed, the
        // rest of the record is kept
        for (const v of n.versions) skip(n, v.pid);
        if (process.env.UWRX_DEBUG) console.error(`uwrx: laying out ${escapeBytes(n.h.path)}: ${String(err)}`);
      }
    }
  } finally {
    store.done();
  }
  return { skipped };

  function placeNode(n: Node): void {
    // 1. the final state, from the upper
    const impliedAbsent = n.ancestors.some((a) => a.final.kind !== 'dir');
    const { layer: srcLayer, file: src } = store.current(n.h.path);
    const st = lstatOrNull(src);
    const finalKind: Kind = !st || isWhiteout(st) ? 'absent' : st.isDirectory() ? 'dir' : 'file';
    const dst = store.at(n.finalLayer, n.h.path);
    if (finalKind === 'absent') {
      // nothing in the upper over a path the layers below hold: the run left it as it was
      const untouched = !st && kindBefore(n.h.path) !== 'absent';
      if (!impliedAbsent && !untouched && store.makeParents(n.finalLayer, n.h.path)) {
        if (!st || srcLayer !== n.finalLayer) removeAny(dst);
        if (st && srcLayer !== n.finalLayer) renameSync(src, dst);
        else if (!st) store.whiteout(dst);
      }
    } else if (finalKind === 'file') {
      if (srcLayer !== n.finalLayer) {
        if (store.makeParents(n.finalLayer, n.h.path)) {
          removeAny(dst);
          renameSync(src, dst);
        } else skip(n, n.final.pid);
      }
    } else if (srcLayer !== n.finalLayer) {
      const sameIncarnation = srcLayer === 0 && n.baseInc === n.final.inc && n.final.kind === 'dir';
      if (store.makeParents(n.finalLayer, n.h.path)) {
        if (sameIncarnation) {
          store.mkdirUnlessThere(dst);
          chmodSync(dst, st!.mode & 0o7777);
        } else {
          removeAny(dst);
          renameSync(src, dst);
          store.replacedDir(dst);
          store.moved(n.h.key, n.finalLayer);
          if (needsOpaque(n, n.final.inc)) store.setOpaque(dst);
        }
      }
    }

    // 2. the versions before it, in the order they were made (the later wins a layer)
    for (const v of n.versions) {
      if (v === n.final) continue;
      const layer = n.layer.get(v.pid)!;
      if (layer === n.finalLayer) {
        if (v.kind === 'file') skip(n, v.pid);
        continue;
      }
      const to = store.at(layer, n.h.path);
      if (!store.makeParents(layer, n.h.path)) {
        // inside something absent or a file in that layer: nothing to show there
        if (v.kind === 'file') skip(n, v.pid);
        continue;
      }
      const there = lstatOrNull(to);
      if (v.kind === 'dir') {
        if (there && !there.isDirectory()) rmSync(to, { force: true });
        if (!there || !there.isDirectory()) store.mkdir(to, 0o755);
        if (needsOpaque(n, v.inc)) store.setOpaque(to);
        continue;
      }
      if (there?.isDirectory()) {
        // it holds other paths' versions: keep them
        if (v.kind === 'file') skip(n, v.pid);
        continue;
      }
      if (v.kind === 'absent') {
        if (there) rmSync(to, { force: true });
        store.whiteout(to);
        continue;
      }
      const version = preserved.get(v.pid, n.h.key);
      if (!version) continue;
      if (there) rmSync(to, { force: true });
      if (version.kind === 'absent') store.whiteout(to);
      else move(Buffer.from(version.file), to);
    }
  }
}

function lstatOrNull(p: string | Buffer): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (isErrno(err, 'ENOTDIR')) return null;
    throw err;
  }
}

function removeAny(p: Buffer): void {
  rmSync(p, { recursive: true, force: true });
}

/** The attempt's layers on disk, and where the upper's subtrees were moved. */
class Store {
  private readonly movedTo = new Map<string, number>();
  /** Directories known to be there, with the group state they hand down (inheritedGroup;
   * undefined: not known), which says whether a spare may stand for a new one in them. */
  private readonly madeDirs = new Map<string, string | undefined>();
  private readonly attemptGroup: string | undefined;
  private sharedWhiteout: string | undefined;
  private scratch = 0;
  constructor(
    private readonly attemptDir: string,
    private readonly spares?: SparePool,
  ) {
    if (spares) this.attemptGroup = inheritedGroup(lstatSync(attemptDir));
  }

  root(layer: number): string {
    return path.join(this.attemptDir, layer === 0 ? 'files' : `files-${layer}`);
  }

  at(layer: number, p: Buffer): Buffer {
    return Buffer.concat([Buffer.from(this.root(layer)), p]);
  }

  /** Where the upper's version of `p` is now: files/, or where an ancestor was moved. */
  current(p: Buffer): { layer: number; file: Buffer } {
    for (let k: string | undefined = p.toString('latin1'); k !== undefined; k = parentKey(k)) {
      const layer = this.movedTo.get(k);
      if (layer !== undefined) return { layer, file: this.at(layer, p) };
    }
    return { layer: 0, file: this.at(0, p) };
  }

  moved(key: string, layer: number): void {
    this.movedTo.set(key, layer);
  }

  /** Creates the directories above `p` in `layer`; false when a whiteout, a file or a
   * symlink is in the way. */
  makeParents(layer: number, p: Buffer): boolean {
    const file = this.at(layer, p);
    const dir = file.subarray(0, file.lastIndexOf(0x2f));
    // one mkdir per directory missing below the deepest one known to be there (most
    // versions lie in directories made for an earlier one): a recursive mkdir would
    // probe up and down, a thread-pool call each
    const ends: number[] = [];
    let group = this.attemptGroup;
    for (let end = dir.length; end > this.attemptDir.length; end = dir.lastIndexOf(0x2f, end - 1)) {
      const key = dir.toString('latin1', 0, end);
      if (this.madeDirs.has(key)) {
        group = this.madeDirs.get(key);
        break;
      }
      ends.push(end);
    }
    for (const end of ends.reverse()) {
      const sub = dir.subarray(0, end);
      try {
        this.makeDir(sub, group);
      } catch (err) {
        if (isErrno(err, 'ENOTDIR')) return false;
        if (!isErrno(err, 'EEXIST')) throw err;
        const st = lstatOrNull(sub);
        if (!st?.isDirectory()) return false;
        group = this.spares ? inheritedGroup(st) : undefined;
      }
      this.madeDirs.set(sub.toString('latin1'), group);
    }
    return true;
  }

  /** The upper's directory now at `p`: what it hands down is not known. */
  replacedDir(p: Buffer): void {
    const key = p.toString('latin1');
    if (this.madeDirs.has(key)) this.madeDirs.set(key, undefined);
  }

  /** mkdir of `p`, whose parent makeParents has made (or found). */
  mkdir(p: Buffer, mode?: number): void {
    this.makeDir(p, this.madeDirs.get(p.toString('latin1', 0, p.lastIndexOf(0x2f))), mode);
  }

  mkdirUnlessThere(p: Buffer): void {
    try {
      this.mkdir(p);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }

  /** A new directory in a parent that hands down `group`: a spare where there is one. */
  private makeDir(p: Buffer, group: string | undefined, mode = 0o777): void {
    if (this.spares) this.spares.mkdir(p, group, mode);
    else mkdirSync(p, { mode });
  }

  /** A whiteout at `file`: a hard link to one whiteout made for the layout (overlayfs
   * knows a whiteout by its type and device number, and links its own the same way), as
   * on ext4 a new inode costs far more than a new name. A fresh one where linking fails
   * (the link limit). */
  whiteout(file: Buffer): void {
    if (this.sharedWhiteout) {
      try {
        linkSync(this.sharedWhiteout, file);
        return;
      } catch (err) {
        if (!isErrno(err, 'EMLINK')) throw err;
      }
      unlinkSync(this.sharedWhiteout);
    }
    this.sharedWhiteout = path.join(this.attemptDir, `.whiteout-${this.scratch++}`);
    native().makeWhiteout(this.sharedWhiteout);
    linkSync(this.sharedWhiteout, file);
  }

  /** The layout's own scratch goes. */
  done(): void {
    if (this.sharedWhiteout) rmSync(this.sharedWhiteout, { force: true });
    this.sharedWhiteout = undefined;
  }

  setOpaque(dir: Buffer): void {
    const name = dir.toString('utf8');
    if (Buffer.from(name).equals(dir)) native().setXattr(name, OPAQUE, Buffer.from('y'));
  }
}
