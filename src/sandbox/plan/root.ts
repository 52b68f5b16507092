// The sandbox's root: a tmpfs holding one overlayfs per top-level directory of the host
// (lower: the parents' layers, then the host directory; upper: the attempt's live upper),
// rebuilt entry by entry where a directory has mounts below it.
import path from 'node:path';
import { constants as fsConstants } from 'node:fs';
import type { FilesPlan } from '../../protocol/init-messages.js';
import { OVERLAY_MAX_LOWER_LAYERS } from '../../record/flatten.js';
import { layerTimes } from '../../reproducibility/time.js';
import { versionsDirOf } from '../../record/versions-index.js';
import type { HostStat, HostView } from '../host.js';
import type { OverlayLayer, ParentStore, SandboxPlan, UpperDir } from '../plan.js';
import { MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, inRoot, isUnder, joinPath, type BuildContext } from './steps.js';

/** Seconds between the squashed stat times of two layers. */
export const LAYER_INTERVAL_NS = 1_000_000_000;
/** overlayfs reads its options from one page. */
const MOUNT_DATA_MAX = 4000;
/** The run directory's parents of the overlays' upper and work directories (an upper
 * and its work directory must not contain each other). */
export const UPPER_DIR = 'upper';
export const WORK_DIR = 'work';
/** Filesystems that get their own fresh instance instead of an overlay. */
export const SPECIAL_TOP = new Set(['proc', 'sys', 'dev']);

/** Mount points listed in mountinfo (octal escapes decoded), in file order. */
export function mountPoints(mountinfo: string): string[] {
  const points: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    points.push(fields[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return points;
}

// overlayfs splits its options at ',' and layers at ':'
function overlayPathOk(p: string): boolean {
  return !/[,:\\]/.test(p);
}

export interface RootPlan {
  overlays: OverlayLayer[];
  files: FilesPlan;
  flatten: NonNullable<SandboxPlan['flatten']>;
}

export function buildRoot(ctx: BuildContext): RootPlan {
  const { input, host, steps, root } = ctx;
  const caller = { uid: host.uid, gid: host.gid };
  const access = host.access.bind(host);
  const overlays: OverlayLayer[] = [];
  // where commands usually write (upperDirsFor), not needed as root
  const likelyWritten = root ? [] : [input.cwd, input.env.HOME, input.env.TMPDIR, '/var/tmp', ...pathsIn(input.argv)]
    .filter((p): p is string => !!p && path.isAbsolute(p))
    .map((p) => path.resolve(p));
  // Unprivileged, the sandbox's own directories belong to the caller: their owner bits
  // carry the caller's rights on the host, so the kernel refuses inside what it refuses
  // outside (writing /etc), while uwrx-init (owner with capabilities) still builds them.
  const viewMode = (p: string, st: HostStat) => (root ? st.mode & 0o7777 : callerMode(p, st, caller, access));
  const parents = input.parents ?? [];
  const flatten: RootPlan['flatten'] = [];
  const files: FilesPlan = {
    meta: path.join(input.runDir, 'files.meta'),
    versions: versionsDirOf(input.runDir),
    layers: parents.length,
    intervalNs: LAYER_INTERVAL_NS,
    overlays: [],
  };
  if (input.repro) {
    const times = layerTimes(input.repro.t0Ns, BigInt(LAYER_INTERVAL_NS), parents, input.hostNewestNs);
    files.wallOffsetNs = String(times.wallOffsetNs);
    files.recordedSinceNs = String(times.recordedSinceNs);
    files.recordedNewestNs = String(times.recordedNewestNs);
  }
  // A parent has a files-<q>/ per later writer, most holding one path: a readdir of each
  // spares a stat per root and overlay.
  const topCache = new Map<string, Set<string>>();
  const topEntries = (dir: string) => {
    let names = topCache.get(dir);
    if (!names) topCache.set(dir, (names = new Set(host.readdir(dir))));
    return names;
  };
  // The sandbox's own directories that are neither the record nor the new root (the
  // skeleton, the real directories' mount points, an empty layer) live on one tmpfs: on
  // the build directory's filesystem each would be an inode allocated and a block freed
  // per run.
  let scaffoldRoot: string | undefined;
  const scaffold = (name: string) => {
    if (!scaffoldRoot) {
      scaffoldRoot = path.join(input.runDir, 'scaffold');
      steps.mkdir(scaffoldRoot, 0o755);
      steps.mount('uwrx-scaffold', scaffoldRoot, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0755');
    }
    const dir = joinPath(scaffoldRoot, name);
    steps.mkdir(dir, 0o755);
    return dir;
  };
  let emptyDir: string | undefined;
  let realRoot: string | undefined;
  /** `skeleton`: the lowest layer is that directory instead of the host's (a directory
   * rebuilt entry by entry, whose placeholders the entries are mounted over). */
  const overlay = (mountPoint: string, st: HostStat, bestEffort: boolean, skeleton?: string, lazyOk = false) => {
    const index = overlays.length;
    // upper/<n> and work/<n> side by side: every directory made on the build directory's
    // filesystem is an inode allocated now and a block freed (and discarded) at the end
    const upper = joinPath(joinPath(input.runDir, UPPER_DIR), String(index));
    const layer: OverlayLayer = {
      mountPoint,
      upper,
      work: joinPath(joinPath(input.runDir, WORK_DIR), String(index)),
      mode: viewMode(mountPoint, st),
      hostMode: st.mode & 0o7777,
      ...(root ? { owner: { uid: st.uid, gid: st.gid } } : {}),
    };
    if (!root) {
      // the parents' own layers for this mount point
      const layers = parents.flatMap((p) => p.roots.map((r) => path.join(r, mountPoint)));
      const dirs = upperDirsFor(host, mountPoint, upper, likelyWritten, caller, ctx.hidden, layers);
      if (dirs.length > 0) layer.upperDirs = dirs;
    }
    overlays.push(layer);
    const lowers = parentLowers(host, parents, mountPoint, joinPath(joinPath(input.runDir, 'flat'), String(index)), flatten,
      (dirs) => `lowerdir=${[...dirs, mountPoint].join(':')},upperdir=${layer.upper},workdir=${layer.work},userxattr`,
      topEntries);
    // renames between overlays of one real filesystem are carried out by uwrx-init
    files.overlays.push({ mountPoint, upper: layer.upper, lowers, ...(st.dev !== undefined ? { device: st.dev } : {}) });
    let real = skeleton ?? mountPoint;
    if (lowers.length > 0 && !skeleton) {
      // overlayfs refuses a lower layer inside another one on the same filesystem (ELOOP),
      // and the parents' stores usually live below the real directory: the real directory
      // enters through an overlay of its own (a different superblock), stacked once.
      emptyDir ??= scaffold('empty');
      realRoot ??= scaffold('real');
      real = joinPath(realRoot, String(index));
      steps.mkdir(real, 0o755);
      steps.mount('overlay', real, 'overlay', MS_RDONLY, `lowerdir=${mountPoint}:${emptyDir},userxattr`, bestEffort);
    }
    // Over the host's directory alone (no skeleton, no parents' layers), the overlay
    // depends on no earlier step: its filesystem is made ahead, beside the others (each
    // costs 0.3-2 ms, mostly inode allocations in its work directory).
    const ahead = real === mountPoint;
    const data = `lowerdir=${[...lowers.map((l) => l.dir), real].join(':')},upperdir=${layer.upper},workdir=${layer.work},userxattr`;
    // Over the host's directory alone with nothing made in its upper, the tree starts as a
    // read-only bind of it: a walk through a fresh overlay costs several times the native
    // one (its own dentry and inode per path). The overlay is attached at the first change
    // below it (init/lazy.c); the command's starting cwd is in an overlay from the start.
    if (lazyOk && ahead && lowers.length === 0 && !layer.upperDirs && !ctx.hidden.some((h) => isUnder(h, mountPoint)) &&
        !isUnder(input.cwd, mountPoint)) {
      steps.lazy(mountPoint, inRoot(ctx, mountPoint), data);
      return;
    }
    steps.mount('overlay', inRoot(ctx, mountPoint), 'overlay', 0, data, bestEffort, ahead);
  };

  // Nothing mounted inside may propagate back to the host.
  steps.mount(null, '/', null, MS_REC | MS_PRIVATE, null);
  const rootStat = host.stat('/');
  if (!rootStat) throw new Error('cannot stat / on the host');
  steps.mount('uwrx-root', ctx.newRoot, 'tmpfs', MS_NOSUID | MS_NODEV, `mode=0${viewMode('/', rootStat).toString(8)}`);

  // overlayfs refuses a lower directory with mounts below it inside a user namespace
  // (they are locked), so such a directory is rebuilt entry by entry and each mount
  // below gets an overlay of its own. Entries of a rebuilt directory may vanish before
  // uwrx-init mounts them (temporary files): their steps are best effort.
  const points = ctx.hostMounts
    .filter((p) => p !== '/' && ![...SPECIAL_TOP].some((s) => isUnder(p, '/' + s)))
    .filter((p) => !ctx.hidden.some((h) => isUnder(p, h)) && !isUnder(p, input.runDir));
  const hasMountsBelow = (dir: string) => points.some((p) => p !== dir && isUnder(p, dir));
  // An entry is built in two parts: its placeholder in the new root (a directory, an
  // empty file, a symlink), then what is mounted over it.
  // Placeholders below the top level go to the scaffold's tmpfs, never through an
  // overlay already mounted (that would write them to its upper, i.e. into the record).
  let skeletonRoot: string | undefined;
  const skeleton = (real: string) => {
    skeletonRoot ??= scaffold('skeleton');
    return joinPath(skeletonRoot, real);
  };
  const placeholder = (real: string, top: boolean): HostStat | null => {
    if (ctx.hidden.includes(real)) return null; // absent inside (plan/hidden.ts)
    const target = top ? inRoot(ctx, real) : skeleton(real);
    const st = host.lstat(real);
    if (!st) return null;
    if (st.isSymbolicLink()) {
      const link = host.readlink(real);
      if (link !== null) {
        steps.push({ op: 'symlink', target: link, path: target });
        steps.push({ op: 'times', source: real, path: target, flags: 1 });
      }
      return null;
    }
    if (st.isDirectory()) {
      const special = top && SPECIAL_TOP.has(path.basename(real));
      steps.mkdir(target, special ? st.mode & 0o7777 : viewMode(real, st));
      return special || !overlayPathOk(real) ? null : st;
    }
    if (st.isFile()) {
      steps.push({ op: 'file', path: target, mode: 0o644 });
      return st;
    }
    return null;
  };
  const mountEntry = (real: string, st: HostStat, top: boolean) => {
    const bestEffort = !top;
    if (st.isFile()) return steps.bindReadOnly(real, inRoot(ctx, real), bestEffort);
    if (!hasMountsBelow(real)) return overlay(real, st, bestEffort && !points.includes(real), undefined, top && input.lazyRoot !== false);
    // The placeholders of its entries form the lowest layer of an overlay of its own, so
    // what the command creates here is written and recorded like anywhere else; the
    // entries are then mounted over their placeholders.
    const lowest = skeleton(real);
    if (top) steps.mkdir(lowest, 0o755); // below the top, its own placeholder
    const entries = host.readdir(real).map((name) => joinPath(real, name)).map((p) => [p, placeholder(p, false)] as const);
    overlay(real, st, bestEffort && !points.includes(real), lowest);
    for (const [p, est] of entries) if (est) mountEntry(p, est, false);
  };
  const addEntry = (real: string, top: boolean) => {
    const st = placeholder(real, top);
    if (st) mountEntry(real, st, top);
  };
  for (const entry of host.readdir('/')) addEntry('/' + entry, true);
  return { overlays, files, flatten };
}

/** The parents' directories for one overlay, top first, each with its layer number
 * (nearest parent: the highest). Each parent's layers are merged into one directory when
 * all of them would pass overlayfs's limits (layer count, one page of options), and all
 * parents into one when even that is too much. */
function parentLowers(
  host: HostView,
  parents: ParentStore[],
  mountPoint: string,
  flatDir: string,
  flatten: RootPlan['flatten'],
  data: (dirs: string[]) => string,
  topEntries: (root: string) => Set<string>,
): Array<{ dir: string; layer: number }> {
  const perParent = parents.map((p, c) => ({
    layer: parents.length - c,
    dirs: p.roots
      .filter((r) => topEntries(r).has(mountPoint.split('/')[1]!))
      .map((r) => path.join(r, mountPoint))
      .filter((d) => host.stat(d)?.isDirectory() ?? false),
  }));
  const all = perParent.flatMap((p) => p.dirs.map((dir) => ({ dir, layer: p.layer })));
  const fits = (dirs: string[]) =>
    dirs.length < OVERLAY_MAX_LOWER_LAYERS && data(dirs).length <= MOUNT_DATA_MAX && dirs.every(overlayPathOk);
  if (fits(all.map((l) => l.dir))) return all;
  const merged = perParent
    .filter((p) => p.dirs.length > 0)
    .map((p) => ({ dir: path.join(flatDir, String(p.layer)), layer: p.layer, layers: p.dirs }));
  if (fits(merged.map((m) => m.dir))) {
    for (const m of merged) flatten.push({ layers: m.layers, dest: m.dir });
    return merged.map(({ dir, layer }) => ({ dir, layer }));
  }
  if (all.length === 0) return [];
  const dest = path.join(flatDir, 'all');
  flatten.push({ layers: all.map((l) => l.dir), dest });
  return [{ dir: dest, layer: parents.length }];
}

/** The mode of a directory the sandbox shows owned by the caller: owner bits are the
 * caller's own rights on the host (by `access` when given, i.e. access(2) for the
 * process planning, which counts supplementary groups and ACLs; else from the mode
 * bits), group and other bits as on the host. */
export function callerMode(
  p: string,
  st: Pick<HostStat, 'mode' | 'uid' | 'gid'>,
  caller: { uid: number; gid: number },
  access?: (p: string, mode: number) => boolean,
): number {
  const can = (mode: number, bit: number): boolean => {
    if (access) return access(p, mode);
    const shift = st.uid === caller.uid ? 6 : st.gid === caller.gid ? 3 : 0;
    return ((st.mode >> shift) & bit) !== 0;
  };
  const owner =
    (can(fsConstants.R_OK, 4) ? 0o400 : 0) | (can(fsConstants.W_OK, 2) ? 0o200 : 0) | (can(fsConstants.X_OK, 1) ? 0o100 : 0);
  return (st.mode & 0o7077) | owner;
}

/** Directories below an overlay's mount point to create in its upper before the run
 * (unprivileged runs): those whose owner or group the sandbox does not map and below
 * which the command is likely to write, i.e. the chains down to `likely` (cwd, HOME,
 * TMPDIR, /var/tmp, paths in the command line) and, under a world-writable mount point,
 * the directories there the caller may write (a root-made `mktemp -d` in /tmp). Each
 * gets the caller's view of its mode (callerMode). */
function upperDirsFor(host: HostView, mountPoint: string, upper: string, likely: string[], caller: { uid: number; gid: number },
  hidden: string[], parentLayers: string[]): UpperDir[] {
  const access = host.access.bind(host);
  const unmapped = (st: HostStat) => st.uid !== caller.uid || st.gid !== caller.gid;
  const chosen = new Map<string, HostStat>();
  for (const p of likely) {
    if (p === mountPoint || !isUnder(p, mountPoint)) continue;
    const names = path.relative(mountPoint, p).split('/');
    const chain: Array<[string, HostStat]> = [];
    let deepest = -1;
    for (let i = 0, d = mountPoint; i < names.length; i++) {
      d = path.join(d, names[i]!);
      const st = host.lstat(d);
      if (!st || !st.isDirectory() || !overlayPathOk(d)) break;
      chain.push([d, st]);
      if (unmapped(st)) deepest = i;
    }
    for (const [d, st] of chain.slice(0, deepest + 1)) chosen.set(d, st);
  }
  // in a shared directory like /tmp, the directories others made for everyone
  const mountStat = host.stat(mountPoint);
  const shared = mountStat && mountStat.mode & 0o002 ? host.readdir(mountPoint) : [];
  for (const name of shared) {
    const d = path.join(mountPoint, name);
    const st = host.lstat(d);
    if (!st || !st.isDirectory()) continue;
    // world- or group-writable first: access(2) only for the few such directories
    if (unmapped(st) && (st.mode & 0o022) !== 0 && callerMode(d, st, caller, access) & 0o200) chosen.set(d, st);
  }
  // A parent layer with anything on the way (a whiteout, an opaque directory, or a copy
  // of the caller's own, which copies up fine) decides what the path is: left alone.
  const inParents = (d: string) => {
    const names = path.relative(mountPoint, d).split('/');
    return parentLayers.some((l) => names.some((_, i) => host.lstat(path.join(l, ...names.slice(0, i + 1))) !== null));
  };
  return [...chosen.entries()]
    .filter(([d]) => !hidden.some((h) => isUnder(d, h)) && !inParents(d))
    .sort(([a], [b]) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1))
    .map(([d, st]) => ({
      path: path.join(upper, path.relative(mountPoint, d)),
      mode: callerMode(d, st, caller, access),
      hostMode: st.mode & 0o7777,
      atime: st.atimeMs / 1000,
      mtime: st.mtimeMs / 1000,
    }));
}

/** Absolute paths named in a command line, also inside `sh -c` scripts and after `=`
 * (a bounded number: this is a guess of where the command will write). */
function pathsIn(argv: string[]): string[] {
  const found = new Set<string>();
  for (const arg of argv) {
    for (const m of arg.matchAll(/(?:^|[\s=:'"])(\/[^\s'"`;&|<>()$*?:=]+)/g)) {
      if (found.size >= 64) return [...found];
      found.add(m[1]!);
    }
  }
  return [...found];
}
