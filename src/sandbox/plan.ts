// The sandbox as data: which mounts, binds and directories make the command's view of
// the machine. uwrx-init carries the steps out in order (src/native/init/plan.c);
// renderPlan prints them, so the sandbox can be read before it runs.
import { accessSync, constants as fsConstants, fstatSync, readFileSync, readdirSync, readlinkSync, lstatSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { BEST_EFFORT_OPS, type FilesPlan, type InitPlan, type PlanStep } from '../protocol/init-messages.js';
import { flattenLayers, OVERLAY_MAX_LOWER_LAYERS } from '../record/flatten.js';
import { parentChain, versionPids } from '../record/resolve.js';
import { TIME_MODE_CODE, TIME_MODES, type TimeMode } from '../reproducibility/time.js';

// mount(2) flags
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;

/** One overlayfs of the sandbox: `mountPoint` as the command sees it, its writes land in
 * `upper` (renamed into files/<mountPoint> when the run ends). */
export interface OverlayLayer {
  mountPoint: string;
  upper: string;
  work: string;
  /** Mode of the upper's root directory, which the mount point shows inside. */
  mode: number;
  /** The mount point's mode on the host, which the record keeps. */
  hostMode: number;
  /** Directories created in the upper before the run (parents first): unprivileged, the
   * kernel cannot copy up a directory whose owner or group is not mapped (EOVERFLOW), so
   * those the command is likely to write below exist in the upper already. */
  upperDirs?: UpperDir[];
}

export interface UpperDir {
  path: string;
  mode: number;
  hostMode: number;
  /** The lower directory's times, in seconds. */
  atime: number;
  mtime: number;
}

export interface SandboxPlan {
  init: InitPlan;
  overlays: OverlayLayer[];
  newRoot: string;
  /** Parent layers merged into one directory each before the run (too many for overlayfs). */
  flatten?: Array<{ layers: string[]; dest: string }>;
  /** The combined ld.so (shim + real ld.so) to write at `combined` before the run. */
  ldso?: { real: string; combined: string };
}

/** Reproducibility settings of a run (docs/reproducibility.md). */
export interface ReproInput {
  /** Root seed, 64 hex digits. */
  seed: string;
  t0Ns: bigint;
  timeMode: TimeMode;
  timeStepNs?: bigint;
  /** Bind the combined ld.so over the dynamic linker (default true). */
  shim?: boolean;
  /** The dynamic linker path programs name in PT_INTERP (default the x86_64 glibc one). */
  interpreter?: string;
}

export interface PlanInput {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  runDir: string;
  hide: string[];
  uid: number;
  gid: number;
  handlerThreads?: number;
  graceMs?: number;
  /** Contents of /proc/self/mountinfo (read when absent). */
  mountinfo?: string;
  /** Deterministic randomness, time, hostname and the ld.so shim; absent: none of it. */
  repro?: ReproInput;
  /** The parents' stores, nearest first (parentStores()): lower layers above the real
   * filesystem. */
  parents?: ParentStore[];
  /** Pseudo-terminals of the host's /dev/pts the command's stdin/stdout/stderr are
   * (hostPtys()): they keep their name inside. */
  ptys?: number[];
}

/** One parent attempt's store: its layer roots, top first (files-<q> highest q first,
 * then files/), i.e. its final state. */
export interface ParentStore {
  attemptDir: string;
  roots: string[];
}

/** The stores of an attempt's parent chain (parent/0 and its ancestors, then parent/1 ...). */
export function parentStores(attemptDir: string): ParentStore[] {
  return parentChain(attemptDir).map((dir) => ({
    attemptDir: dir,
    roots: [...versionPids(dir).map((q) => path.join(dir, `files-${q}`)), path.join(dir, 'files')],
  }));
}

/** Seconds between the squashed stat times of two layers. */
export const LAYER_INTERVAL_NS = 1_000_000_000;
/** overlayfs reads its options from one page. */
const MOUNT_DATA_MAX = 4000;

/** Filesystems that get their own fresh instance instead of an overlay. */
const SPECIAL_TOP = new Set(['proc', 'sys', 'dev']);
/** Device nodes bound from the host into the sandbox's /dev. */
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

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

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

// overlayfs splits its options at ',' and layers at ':'
function overlayPathOk(p: string): boolean {
  return !/[,:\\]/.test(p);
}

export function computePlan(input: PlanInput): SandboxPlan {
  const newRoot = path.join(input.runDir, 'root');
  const steps: PlanStep[] = [];
  const overlays: OverlayLayer[] = [];
  const inRoot = (p: string) => path.join(newRoot, p);
  const hidden = normaliseHidden(input.hide);
  const root = input.uid === 0;
  const caller = { uid: input.uid, gid: input.gid };
  // where commands usually write (upperDirsFor), not needed as root
  const likelyWritten = root ? [] : [input.cwd, input.env.HOME, input.env.TMPDIR, '/var/tmp', ...pathsIn(input.argv)]
    .filter((p): p is string => !!p && path.isAbsolute(p))
    .map((p) => path.resolve(p));
  // Unprivileged, the sandbox's own directories belong to the caller: their owner bits
  // carry the caller's rights on the host, so the kernel refuses inside what it refuses
  // outside (writing /etc), while uwrx-init (owner with capabilities) still builds them.
  const viewMode = (p: string, st?: Stats) => {
    const s = st ?? statSync(p);
    return root ? s.mode & 0o7777 : callerMode(p, s, caller);
  };

  const mount = (source: string | null, target: string, fstype: string | null, flags: number, data: string | null) =>
    steps.push({ op: 'mount', source, target, fstype, flags, data });
  const parents = input.parents ?? [];
  const flatten: NonNullable<SandboxPlan['flatten']> = [];
  const files: FilesPlan = {
    meta: path.join(input.runDir, 'files.meta'),
    versions: path.join(input.runDir, 'versions'),
    layers: parents.length,
    intervalNs: LAYER_INTERVAL_NS,
    overlays: [],
  };
  // A parent has a files-<q>/ per later writer, most holding one path: a readdir of each
  // spares a stat per root and overlay.
  const topCache = new Map<string, Set<string>>();
  const topEntries = (root: string) => {
    let names = topCache.get(root);
    if (!names) topCache.set(root, (names = new Set(listDir(root))));
    return names;
  };
  const overlay = (mountPoint: string) => {
    const index = overlays.length;
    const upper = path.join(input.runDir, 'ovl', String(index), 'upper');
    const layer: OverlayLayer = {
      mountPoint,
      upper,
      work: path.join(input.runDir, 'ovl', String(index), 'work'),
      mode: viewMode(mountPoint),
      hostMode: statSync(mountPoint).mode & 0o7777,
    };
    if (!root) {
      // the parents' own layers for this mount point
      const layers = parents.flatMap((p) => p.roots.map((r) => path.join(r, mountPoint)));
      const dirs = upperDirsFor(mountPoint, upper, likelyWritten, caller, hidden, layers);
      if (dirs.length > 0) layer.upperDirs = dirs;
    }
    overlays.push(layer);
    const lowers = parentLowers(parents, mountPoint, path.join(input.runDir, 'flat', String(index)), flatten,
      (dirs) => `lowerdir=${[...dirs, mountPoint].join(':')},upperdir=${layer.upper},workdir=${layer.work},userxattr`,
      topEntries);
    // renames between overlays of one real filesystem are carried out by uwrx-init
    files.overlays.push({ mountPoint, upper: layer.upper, lowers, device: statSync(mountPoint).dev });
    let real = mountPoint;
    if (lowers.length > 0) {
      // overlayfs refuses a lower layer inside another one on the same filesystem (ELOOP),
      // and the parents' stores usually live below the real directory: the real directory
      // enters through an overlay of its own (a different superblock), stacked once.
      if (!emptyDir) {
        emptyDir = path.join(input.runDir, 'empty');
        steps.push({ op: 'mkdir', path: emptyDir, mode: 0o755 });
        mount('uwrx-empty', emptyDir, 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=0755');
      }
      real = path.join(input.runDir, 'real', String(index));
      steps.push({ op: 'mkdir', path: path.dirname(real), mode: 0o755 });
      steps.push({ op: 'mkdir', path: real, mode: 0o755 });
      mount('overlay', real, 'overlay', MS_RDONLY, `lowerdir=${mountPoint}:${emptyDir},userxattr`);
    }
    mount('overlay', inRoot(mountPoint), 'overlay', 0,
      `lowerdir=${[...lowers.map((l) => l.dir), real].join(':')},upperdir=${layer.upper},workdir=${layer.work},userxattr`);
  };
  let emptyDir: string | undefined;
  const bindReadOnly = (source: string, target: string) => {
    mount(source, target, null, MS_BIND, null);
    steps.push({ op: 'readonly', path: target, flags: 0 });
  };

  // Nothing mounted inside may propagate back to the host.
  mount(null, '/', null, MS_REC | MS_PRIVATE, null);
  mount('uwrx-root', newRoot, 'tmpfs', MS_NOSUID | MS_NODEV, `mode=0${viewMode('/').toString(8)}`);

  // overlayfs refuses a lower directory with mounts below it inside a user namespace
  // (they are locked), so such a directory is rebuilt entry by entry and each mount
  // below gets an overlay of its own.
  const points = mountPoints(input.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((p) => p !== '/' && ![...SPECIAL_TOP].some((s) => isUnder(p, '/' + s)))
    .filter((p) => !hidden.some((h) => isUnder(p, h)) && !isUnder(p, input.runDir));
  const hasMountsBelow = (dir: string) => points.some((p) => p !== dir && isUnder(p, dir));
  const addEntry = (real: string, top: boolean) => {
    const target = inRoot(real);
    let st;
    try {
      st = lstatSync(real);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) {
      steps.push({ op: 'symlink', target: readlinkSync(real), path: target });
    } else if (st.isDirectory()) {
      const special = top && SPECIAL_TOP.has(path.basename(real));
      steps.push({ op: 'mkdir', path: target, mode: special ? st.mode & 0o7777 : viewMode(real, st) });
      if (special) return;
      if (!overlayPathOk(real)) return;
      if (!hasMountsBelow(real)) overlay(real);
      else for (const name of listDir(real)) addEntry(path.join(real, name), false);
    } else if (st.isFile()) {
      steps.push({ op: 'file', path: target, mode: 0o644 });
      bindReadOnly(real, target);
    }
  };
  for (const entry of readdirSync('/').sort()) addEntry('/' + entry, true);

  // Fresh kernel filesystems for the new pid and net namespaces.
  mount('proc', inRoot('/proc'), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  mount('sysfs', inRoot('/sys'), 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  const dev = inRoot('/dev');
  mount('uwrx-dev', dev, 'tmpfs', MS_NOSUID, 'mode=0755');
  for (const node of DEV_NODES) {
    steps.push({ op: 'file', path: path.join(dev, node), mode: 0o666 });
    mount('/dev/' + node, path.join(dev, node), null, MS_BIND, null);
  }
  steps.push({ op: 'mkdir', path: path.join(dev, 'pts'), mode: 0o755 });
  mount('devpts', path.join(dev, 'pts'), 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=620');
  steps.push({ op: 'symlink', target: 'pts/ptmx', path: path.join(dev, 'ptmx') });
  // The terminal the command runs on keeps its name (ttyname, `tty`): the same index is
  // taken in the new instance and the host's pty bound over it.
  for (const n of input.ptys ?? []) steps.push({ op: 'pty', source: `/dev/pts/${n}`, path: path.join(dev, 'pts', String(n)) });
  steps.push({ op: 'mkdir', path: path.join(dev, 'shm'), mode: 0o755 });
  mount('uwrx-shm', path.join(dev, 'shm'), 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777');
  steps.push({ op: 'symlink', target: '/proc/self/fd', path: path.join(dev, 'fd') });
  ['stdin', 'stdout', 'stderr'].forEach((name, fd) =>
    steps.push({ op: 'symlink', target: `/proc/self/fd/${fd}`, path: path.join(dev, name) }),
  );

  steps.push({ op: 'loopback' });
  steps.push({ op: 'hostname', name: 'uwrx' });

  let ldso: SandboxPlan['ldso'];
  if (input.repro) {
    // Each open of these reads its own deterministic stream; mounted over the host's nodes
    // bound above, which stay in place if FUSE is unavailable.
    steps.push({ op: 'devrandom', path: path.join(dev, 'urandom'), flags: 0 });
    steps.push({ op: 'devrandom', path: path.join(dev, 'random'), flags: 1 });
    // "(none)", the kernel's own default: programs treat a set NIS domain specially.
    steps.push({ op: 'domainname', name: '(none)' });
    // The combined ld.so over the real file the interpreter path leads to: a bind on the
    // symlink's target covers every name of it, and mount(2) would resolve an absolute
    // symlink against the host's root here, before pivot_root.
    const real = input.repro.shim === false ? undefined : realFile(input.repro.interpreter ?? DEFAULT_INTERPRETER);
    if (real) {
      ldso = { real, combined: path.join(input.runDir, 'ld.so') };
      bindReadOnly(ldso.combined, inRoot(real));
    }
  }

  // The record and the live uppers: an empty read-only directory inside.
  for (const h of hidden) {
    mount('uwrx-hidden', inRoot(h), 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=0755');
  }
  steps.push({ op: 'readonly', path: newRoot, flags: 0 });
  steps.push({ op: 'pivot', path: newRoot });

  const env = Object.entries(input.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  // Trace buffers of the processes, when the run has a traces/ directory (src/run.ts).
  const tracesDir = isDirectory(path.join(input.runDir, 'traces')) ? path.join(input.runDir, 'traces') : undefined;
  // The record's own files are opened first, while the run directory is still visible.
  steps.unshift({ op: 'files' }, ...(tracesDir ? [{ op: 'traces' as const, path: tracesDir }] : []));
  return {
    newRoot,
    overlays,
    ...(ldso ? { ldso } : {}),
    ...(flatten.length ? { flatten } : {}),
    init: {
      argv: input.argv,
      env,
      cwd: input.cwd,
      // Unprivileged: programs keep their own identity; root maps every id to itself.
      uidMap: root ? '0 0 4294967295' : `${input.uid} ${input.uid} 1`,
      gidMap: root ? '0 0 4294967295' : `${input.gid} ${input.gid} 1`,
      denySetgroups: !root,
      steps,
      handlerThreads: input.handlerThreads ?? 1,
      graceMs: input.graceMs ?? 3000,
      ...(tracesDir ? { tracesDir } : {}),
      ...(input.repro
        ? {
            seed: input.repro.seed,
            t0Ns: String(input.repro.t0Ns),
            timeMode: TIME_MODE_CODE[input.repro.timeMode],
            ...(input.repro.timeStepNs !== undefined ? { timeStepNs: Number(input.repro.timeStepNs) } : {}),
          }
        : {}),
      files,
    },
  };
}

/** The parents' directories for one overlay, top first, each with its layer number
 * (nearest parent: the highest). Each parent's layers are merged into one directory when
 * all of them would pass overlayfs's limits (layer count, one page of options), and all
 * parents into one when even that is too much. */
function parentLowers(
  parents: ParentStore[],
  mountPoint: string,
  flatDir: string,
  flatten: NonNullable<SandboxPlan['flatten']>,
  data: (dirs: string[]) => string,
  topEntries: (root: string) => Set<string>,
): Array<{ dir: string; layer: number }> {
  const perParent = parents.map((p, c) => ({
    layer: parents.length - c,
    dirs: p.roots.filter((r) => topEntries(r).has(mountPoint.split('/')[1]!)).map((r) => path.join(r, mountPoint)).filter(isDirectory),
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


/** Carries out the plan's flattening (hard links, no copies). */
export function prepareParentLayers(plan: SandboxPlan): void {
  for (const job of plan.flatten ?? []) flattenLayers(job.layers, job.dest);
}

/** The mode of a directory the sandbox shows owned by the caller: owner bits are the
 * caller's own rights on the host (by access(2) when planning for this process, which
 * counts supplementary groups and ACLs), group and other bits as on the host. */
export function callerMode(p: string, st: Stats, caller: { uid: number; gid: number }): number {
  const can = (mode: number, bit: number): boolean => {
    if (caller.uid === process.getuid?.()) {
      try {
        accessSync(p, mode);
        return true;
      } catch {
        return false;
      }
    }
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
function upperDirsFor(mountPoint: string, upper: string, likely: string[], caller: { uid: number; gid: number },
  hidden: string[], parentLayers: string[]): UpperDir[] {
  const unmapped = (st: Stats) => st.uid !== caller.uid || st.gid !== caller.gid;
  const chosen = new Map<string, Stats>();
  for (const p of likely) {
    if (p === mountPoint || !isUnder(p, mountPoint)) continue;
    const names = path.relative(mountPoint, p).split('/');
    const chain: Array<[string, Stats]> = [];
    let deepest = -1;
    for (let i = 0, d = mountPoint; i < names.length; i++) {
      d = path.join(d, names[i]!);
      let st: Stats;
      try {
        st = lstatSync(d);
      } catch {
        break;
      }
      if (!st.isDirectory() || !overlayPathOk(d)) break;
      chain.push([d, st]);
      if (unmapped(st)) deepest = i;
    }
    for (const [d, st] of chain.slice(0, deepest + 1)) chosen.set(d, st);
  }
  // in a shared directory like /tmp, the directories others made for everyone
  let shared: Dirent[] = [];
  try {
    if (statSync(mountPoint).mode & 0o002) shared = readdirSync(mountPoint, { withFileTypes: true });
  } catch {
    // unreadable: nothing to add
  }
  for (const e of shared) {
    if (!e.isDirectory()) continue;
    const d = path.join(mountPoint, e.name);
    let st: Stats;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    // world- or group-writable first: access(2) only for the few such directories
    if (unmapped(st) && (st.mode & 0o022) !== 0 && callerMode(d, st, caller) & 0o200) chosen.set(d, st);
  }
  // A parent layer with anything on the way (a whiteout, an opaque directory, or a copy
  // of the caller's own, which copies up fine) decides what the path is: left alone.
  const inParents = (d: string) => {
    const names = path.relative(mountPoint, d).split('/');
    return parentLayers.some((l) => names.some((_, i) => existsNoFollow(path.join(l, ...names.slice(0, i + 1)))));
  };
  return [...chosen.entries()]
    .filter(([d]) => !hidden.some((h) => isUnder(d, h)) && !inParents(d))
    .sort(([a], [b]) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1))
    .map(([d, st]) => ({
      path: path.join(upper, path.relative(mountPoint, d)),
      mode: callerMode(d, st, caller),
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

function existsNoFollow(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Indexes of the host's /dev/pts pseudo-terminals on fds 0-2 of this process (the fds
 * uwrx-init and the command inherit). */
export function hostPtys(): number[] {
  const found = new Set<number>();
  for (const fd of [0, 1, 2]) {
    try {
      const st = fstatSync(fd);
      if (!st.isCharacterDevice()) continue;
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      const m = /^\/dev\/pts\/(\d+)$/.exec(link);
      if (!m) continue;
      const named = statSync(link);
      if (named.ino === st.ino && named.dev === st.dev && named.rdev === st.rdev) found.add(Number(m[1]));
    } catch {
      // closed fd, or not a terminal of this mount namespace
    }
  }
  return [...found].sort((a, b) => a - b);
}

/** PT_INTERP of x86_64 glibc programs. */
const DEFAULT_INTERPRETER = '/lib64/ld-linux-x86-64.so.2';

/** The regular file `p` leads to, or undefined when there is none. */
function realFile(p: string): string | undefined {
  try {
    const real = realpathSync(p);
    return statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Entries of a directory; none when the caller may not read it (nor could the command). */
function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Existing hidden paths, outermost only (a path inside another is hidden with it). */
function normaliseHidden(hide: string[]): string[] {
  const existing = [...new Set(hide.map((h) => path.resolve(h)))].filter((h) => {
    try {
      return statSync(h).isDirectory();
    } catch {
      return false;
    }
  });
  return existing.filter((h) => !existing.some((o) => o !== h && isUnder(h, o))).sort();
}

const FLAG_NAMES: Array<[number, string]> = [
  [MS_RDONLY, 'ro'], [MS_NOSUID, 'nosuid'], [MS_NODEV, 'nodev'], [MS_NOEXEC, 'noexec'],
  [MS_BIND, 'bind'], [MS_REC, 'rec'], [MS_PRIVATE, 'private'],
];

/** The plan as text, one step per line (a `--dry-run` view of the sandbox); with the
 * overlays, also what Node prepares in their uppers before the steps run. */
export function renderPlan(plan: InitPlan, overlays: OverlayLayer[] = []): string {
  const lines = [
    `argv ${JSON.stringify(plan.argv)}`,
    `cwd ${plan.cwd}`,
    `uid_map ${plan.uidMap}; gid_map ${plan.gidMap}${plan.denySetgroups ? '; setgroups deny' : ''}`,
  ];
  if (plan.seed) lines.push(`seed ${plan.seed}; t0 ${plan.t0Ns} ns; time ${TIME_MODES[plan.timeMode ?? 0] ?? plan.timeMode}`);
  if (plan.files) lines.push(`files.meta ${plan.files.meta}; versions ${plan.files.versions}; parent layers ${plan.files.layers}`);
  for (const o of overlays) {
    if (o.mode !== o.hostMode) lines.push(`upper ${o.upper} ${o.mode.toString(8)} (for ${o.mountPoint}, ${o.hostMode.toString(8)} on the host)`);
    for (const d of o.upperDirs ?? []) lines.push(`upper dir ${d.path} ${d.mode.toString(8)}`);
  }
  plan.steps.forEach((s, i) => {
    const n = String(i).padStart(3);
    const line = lines.length;
    switch (s.op) {
      case 'files':
        lines.push(`${n} files (open files.meta and versions)`);
        break;
      case 'traces':
        lines.push(`${n} traces ${s.path}`);
        break;
      case 'mount': {
        const flags = FLAG_NAMES.filter(([bit]) => s.flags & bit).map(([, name]) => name).join(',');
        lines.push(`${n} mount ${s.fstype ?? '-'} ${s.source ?? '-'} -> ${s.target}${flags ? ` [${flags}]` : ''}${s.data ? ` ${s.data}` : ''}`);
        break;
      }
      case 'mkdir':
      case 'file':
        lines.push(`${n} ${s.op} ${s.path} ${s.mode.toString(8)}`);
        break;
      case 'symlink':
        lines.push(`${n} symlink ${s.path} -> ${s.target}`);
        break;
      case 'readonly':
        lines.push(`${n} readonly ${s.path}${s.flags ? ' (recursive)' : ''}`);
        break;
      case 'pivot':
        lines.push(`${n} pivot_root ${s.path}`);
        break;
      case 'loopback':
        lines.push(`${n} loopback up`);
        break;
      case 'hostname':
        lines.push(`${n} hostname ${s.name}`);
        break;
      case 'domainname':
        lines.push(`${n} domainname ${s.name}`);
        break;
      case 'devrandom':
        lines.push(`${n} devrandom ${s.path}${s.flags ? ' (/dev/random)' : ''}`);
        break;
      case 'pty':
        lines.push(`${n} pty ${s.path} <- ${s.source}`);
        break;
    }
    if (s.bestEffort || BEST_EFFORT_OPS.has(s.op)) lines[line] += ' (best effort)';
  });
  return lines.join('\n') + '\n';
}
