// The resolution rule: which version of a file a process sees.
//   Process P sees X as files-<q>/X with the largest q < P; else files/X; else the
//   parents' layers (the same rule over their stores, nearest parent first, each
//   parent's own parents after it); else the real filesystem. A whiteout at the winning
//   position means "absent"; a whiteout or an opaque directory on the way down hides the
//   layers below, as in overlayfs.
import { readdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { native } from '../native.js';
import { lstatSyncOrNull } from '../fs.js';

export type Resolution =
  | { kind: 'absent'; layer?: Layer }
  | { kind: 'found'; file: string; layer: Layer };

export interface Layer {
  /** Attempt directory holding the layer. */
  attemptDir: string;
  /** files/ or files-<pid>/ root. */
  root: string;
  /** Writer pid for a files-<pid>/ layer, undefined for files/. */
  pid?: number;
  /** 0 for the attempt itself, 1 + index along the parent chain for parents. */
  depth: number;
  /** The real filesystem (no attempt). */
  real?: boolean;
}

const OPAQUE_XATTRS = ['user.overlay.opaque', 'trusted.overlay.opaque'];

export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** True when overlayfs would treat `dir` as opaque (hiding lower layers' contents). */
export function isOpaque(dir: string): boolean {
  for (const name of OPAQUE_XATTRS) {
    const v = native().getXattr(dir, name);
    if (v && v.toString() === 'y') return true;
  }
  return false;
}

/** Version directories files-<pid> of an attempt, largest pid first. */
export function versionPids(attemptDir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(attemptDir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^files-([1-9][0-9]*)$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
}

/** Parent attempts in resolution order: parent/0 and its ancestors, then parent/1 ... */
export function parentChain(attemptDir: string, seen = new Set<string>()): string[] {
  const out: string[] = [];
  const dir = path.join(attemptDir, 'parent');
  for (let i = 0; ; i++) {
    let target: string;
    try {
      target = path.resolve(dir, readlinkSync(path.join(dir, String(i))));
    } catch {
      break;
    }
    if (seen.has(target)) continue;
    seen.add(target);
    out.push(target, ...parentChain(target, seen));
  }
  return out;
}

/** Layers process `asOfPid` of `attemptDir` sees, top first (real filesystem last). */
export function layersFor(attemptDir: string, asOfPid = Number.POSITIVE_INFINITY): Layer[] {
  return [...attemptLayers(attemptDir, 0, asOfPid), ...layersBelow(attemptDir)];
}

/** The layers below the attempt's own, top first: its parents' and the real filesystem.
 * Known before the attempt's own files are in place. */
export function layersBelow(attemptDir: string): Layer[] {
  const layers = parentChain(attemptDir).flatMap((p, i) => attemptLayers(p, i + 1, Number.POSITIVE_INFINITY));
  layers.push({ attemptDir: '', root: '/', depth: -1, real: true });
  return layers;
}

function attemptLayers(dir: string, depth: number, limit: number): Layer[] {
  const layers: Layer[] = [];
  for (const pid of versionPids(dir)) {
    if (pid < limit) layers.push({ attemptDir: dir, root: path.join(dir, `files-${pid}`), pid, depth });
  }
  layers.push({ attemptDir: dir, root: path.join(dir, 'files'), depth });
  return layers;
}

/** What process `asOfPid` (default: after the run) sees at absolute path `file`, given
 * as text or as its bytes (a path need not be UTF-8). */
export function resolveFile(attemptDir: string, file: string | Buffer, asOfPid = Number.POSITIVE_INFINITY): Resolution {
  if (file[0] !== (typeof file === 'string' ? '/' : 0x2f)) throw new Error(`resolveFile: "${file.toString()}" is not an absolute path`);
  const layers = layersFor(attemptDir, asOfPid);
  if (typeof file === 'string') return resolveInLayers(layers, file);
  const r = resolveBytes(layers, file);
  return r.kind === 'found' ? { kind: 'found', file: r.file.toString(), layer: r.layer } : r;
}

/** The rule over the given layers (top first). */
export function resolveInLayers(layers: Layer[], file: string): Resolution {
  const normal = path.normalize(file);
  let split: SplitPath | undefined;
  for (const layer of layers) {
    // the host's root (the last layer, which always decides): the normalized path
    // itself, without its bytes split and joined again (a rebuild index resolves
    // thousands of paths there, after the command)
    if (layer.real && layer.root === '/') {
      const full = normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
      return lstatSyncOrNull(full) ? { kind: 'found', file: full, layer } : { kind: 'absent' };
    }
    const hit = lookInLayer(layer, (split ??= splitPath(Buffer.from(normal))));
    if (hit === 'continue') continue;
    return hit.kind === 'found' ? { kind: 'found', file: hit.file.toString(), layer: hit.layer } : hit;
  }
  return { kind: 'absent' };
}

/** The rule in one layer at a time, for `file`: the resolution a layer gives when it
 * decides (the path is there, or a whiteout or an opaque directory hides it), undefined
 * when the lookup goes on to the layers below. The rule over a list of layers is the
 * first of them that decides. */
export function layerLookup(file: string): (layer: Layer) => Resolution | undefined {
  const split = splitPath(Buffer.from(path.normalize(file)));
  return (layer) => {
    const hit = lookInLayer(layer, split);
    if (hit === 'continue') return undefined;
    return hit.kind === 'found' ? { kind: 'found', file: hit.file.toString(), layer: hit.layer } : hit;
  };
}

export type ByteResolution = { kind: 'absent'; layer?: Layer } | { kind: 'found'; file: Buffer; layer: Layer };

/** The rule for a path given as bytes (paths need not be UTF-8). */
export function resolveBytes(layers: Layer[], file: Buffer): ByteResolution {
  const split = splitPath(file);
  for (const layer of layers) {
    const hit = lookInLayer(layer, split);
    if (hit === 'continue') continue;
    return hit;
  }
  return { kind: 'absent' };
}

/** A path's components, and the keys of its ancestors in a settled layer's memo (the
 * first i components as latin1, i >= 1): made once per path, not once per layer. */
interface SplitPath {
  parts: Buffer[];
  prefixes: string[];
}

function splitPath(file: Buffer): SplitPath {
  const parts: Buffer[] = [];
  const prefixes: string[] = [];
  let key = '';
  // from slash to slash with indexOf: a byte-by-byte loop costs more, run in V8's
  // interpreter after the command (compiler-tuning.ts), for the thousands of paths of
  // a build's rebuild index
  for (let start = 0; start <= file.length; ) {
    let end = file.indexOf(0x2f, start);
    if (end < 0) end = file.length;
    if (end > start && !(end - start === 1 && file[start] === 0x2e)) {
      const part = file.subarray(start, end);
      parts.push(part);
      key += '/' + part.toString('latin1');
      prefixes.push(key);
    }
    start = end + 1;
  }
  return { parts, prefixes };
}

// one buffer written in place: a rebuild index joins a path for each of the thousands of
// lookups in a build's layers, and a buffer for each piece cost the collector more
function joinBytes(root: string, parts: Buffer[]): Buffer {
  if (parts.length === 0) return Buffer.from(root);
  const base = root.endsWith('/') ? root.slice(0, -1) : root;
  let length = Buffer.byteLength(base);
  for (const p of parts) length += 1 + p.length;
  const out = Buffer.allocUnsafe(length);
  let at = out.write(base, 0);
  for (const p of parts) {
    out[at++] = 0x2f;
    at += p.copy(out, at);
  }
  return out;
}

function lookInLayer(layer: Layer, { parts, prefixes }: SplitPath): ByteResolution | 'continue' {
  if (layer.real) {
    const full = joinBytes(layer.root, parts);
    return lstatSyncOrNull(full) ? { kind: 'found', file: full, layer } : { kind: 'absent' };
  }
  const memo = settled.get(layer);
  // Ancestors first: a whiteout or a non-directory hides everything below it; an opaque
  // directory hides the lower layers' contents of that directory.
  let opaque = false;
  let parent: DirLook | undefined;
  for (let i = 1; i < parts.length; i++) {
    parent = dirLook(memo, layer.root, parts, i, prefixes[i - 1]!);
    if (parent.kind === 'absent') return opaque ? { kind: 'absent', layer } : 'continue';
    if (parent.kind === 'hides') return { kind: 'absent', layer };
    if (parent.kind === 'dir' && parent.opaque) opaque = true;
  }
  // a settled layer's directory is listed once: most names looked up are not there
  if (memo && parent?.kind === 'dir' && !namesOf(parent, layer.root, parts).has(parts[parts.length - 1]!.toString('latin1'))) {
    return opaque ? { kind: 'absent', layer } : 'continue';
  }
  const full = joinBytes(layer.root, parts);
  const st = lstatSyncOrNull(full);
  if (st) return isWhiteout(st) ? { kind: 'absent', layer } : { kind: 'found', file: full, layer };
  return opaque ? { kind: 'absent', layer } : 'continue';
}

/** What a directory of a settled layer is: absent, hiding what is below it (a whiteout
 * or not a directory), or a directory, opaque or not, with its names once listed. */
type DirLook = { kind: 'absent' | 'hides' } | { kind: 'dir'; opaque: boolean; names?: Set<string> };

/** Layers of finished attempts, whose contents no longer change, with what is known of
 * their directories. */
const settled = new WeakMap<Layer, Map<string, DirLook>>();

/** Marks the layers of finished attempts (the real filesystem excepted) as settled: their
 * directories are looked at once, however many paths are resolved in them. A build's
 * record has one layer per writing process, each holding the build directory's
 * ancestors, and its index resolves thousands of paths through them. */
export function settleLayers(layers: Layer[]): Layer[] {
  for (const l of layers) if (!l.real && !settled.has(l)) settled.set(l, new Map());
  return layers;
}

/** The directory of the first `depth` parts in a layer, remembered in `memo` under `key`
 * (relative to the layer's root) when the layer is settled. */
function dirLook(memo: Map<string, DirLook> | undefined, root: string, parts: Buffer[], depth: number, key: string): DirLook {
  let look = memo?.get(key);
  if (!look) {
    const dir = joinBytes(root, parts.slice(0, depth));
    const st = lstatSyncOrNull(dir);
    look = !st ? { kind: 'absent' } : isWhiteout(st) || !st.isDirectory() ? { kind: 'hides' } : { kind: 'dir', opaque: isOpaque(dir.toString()) };
    memo?.set(key, look);
  }
  return look;
}

/** The names in the directory that holds the last of `parts`, listed once. */
function namesOf(dir: DirLook & { kind: 'dir' }, root: string, parts: Buffer[]): Set<string> {
  if (!dir.names) {
    try {
      // the names as latin1 text straight away (one string per byte): no buffer per name
      dir.names = new Set(readdirSync(joinBytes(root, parts.slice(0, -1)), { encoding: 'latin1' }));
    } catch {
      dir.names = new Set();
    }
  }
  return dir.names;
}
