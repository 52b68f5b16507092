// The sandbox as data: which mounts, binds and directories make the command's view of
// the machine. uwrx-init carries the steps out in order (src/native/init/plan.c);
// renderPlan prints them, so the sandbox can be read before it runs. The plan is a
// function of its inputs and of a view of the host (host.ts), built in pieces:
// plan/root.ts (the overlays of the root), plan/dev.ts (/proc, /sys, /dev),
// plan/repro.ts (reproducibility), plan/hidden.ts (what the command must not see).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { InitPlan, PlanStep } from '../protocol/init-messages.js';
import { flattenLayers } from '../record/flatten.js';
import { parentChain, versionPids } from '../record/resolve.js';
import { NEWEST_FILE, T0_FILE, TIME_MODE_CODE, TIME_MODES, readNsFileSync, type TimeMode } from '../reproducibility/time.js';
import { realHost, type HostView } from './host.js';
import { buildKernelFilesystems } from './plan/dev.js';
import { buildHidden, normaliseHidden } from './plan/hidden.js';
import { buildRepro } from './plan/repro.js';
import { buildRoot, mountPoints } from './plan/root.js';
import { buildNetwork } from './plan/network.js';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, StepList, isUnder, type BuildContext } from './plan/steps.js';

export { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC } from './plan/steps.js';
export { callerMode, mountPoints, LAYER_INTERVAL_NS } from './plan/root.js';
export { realHost, hostPtys, type HostView, type HostStat } from './host.js';

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
  /** The mount point's owner, given to the upper's root directory (runs as root). */
  owner?: { uid: number; gid: number };
  /** Directories created in the upper before the run (parents first): unprivileged, the
   * kernel cannot copy up a directory whose owner or group is not mapped (EOVERFLOW), so
   * those the command is likely to write below exist in the upper already; and the
   * directories leading to a whiteout. */
  upperDirs?: UpperDir[];
  /** Whiteouts made in the upper before the run: the record and the run directory are
   * absent inside, so the command may create a directory of the same name (its own
   * ./build). Removed when the run ends, unless the command replaced them. */
  whiteouts?: string[];
}

export interface UpperDir {
  path: string;
  mode: number;
  hostMode: number;
  /** The lower directory's times, in seconds. */
  atime: number;
  mtime: number;
  /** The lower directory's owner, given to the upper's copy (runs as root). */
  uid?: number;
  gid?: number;
}

export interface SandboxPlan {
  init: InitPlan;
  overlays: OverlayLayer[];
  newRoot: string;
  /** Parent layers merged into one directory each before the run (too many for overlayfs). */
  flatten?: Array<{ layers: string[]; dest: string }>;
  /** The combined ld.so (shim + real ld.so) to write at `combined` before the run;
   * `preload`: the preload list to write there, read by the combined ld.so (the in-process
   * recorder). */
  ldso?: { real: string; combined: string; preload?: { path: string; content: string } };
}

/** Reproducibility settings of a run (docs/reproducibility.md). */
export interface ReproInput {
  /** Root seed, 64 hex digits. */
  seed: string;
  t0Ns: bigint;
  timeMode: TimeMode;
  timeStepNs?: bigint;
  /** Keep address-space randomization in the command tree (default off: glibc mixes stack
   * addresses into temp names, so they would differ on replay). */
  aslr?: boolean;
  /** Bind the combined ld.so over the dynamic linker (default true). */
  shim?: boolean;
  /** The dynamic linker path programs name in PT_INTERP (default the x86_64 glibc one). */
  interpreter?: string;
  /** Preload the in-process recorder into every dynamic process (needs the shim). */
  recorder?: boolean;
}

/** uwrx-init's notification handler threads: one per CPU the run may use, so that a
 * wide parallel build is not serialised behind one thread answering every call (each
 * notification holds a handler for 5-15 us). uwrx-init caps the count at 16. */
export function defaultHandlerThreads(): number {
  return Math.min(16, Math.max(1, availableParallelism()));
}

export interface PlanInput {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  runDir: string;
  hide: string[];
  handlerThreads?: number;
  graceMs?: number;
  /** See InitPlan.lingerMs. */
  lingerMs?: number;
  /** Deterministic randomness, time, hostname and the ld.so shim; absent: none of it. */
  repro?: ReproInput;
  /** Where uwrx-init writes the processes' trace buffers; absent: no trace events. */
  tracesDir?: string;
  /** The parents' stores, nearest first (parentStores()): lower layers above the real
   * filesystem. */
  parents?: ParentStore[];
  /** The network's pieces (src/network/feature.ts): steps once lo is up, and files bound
   * read-only over host paths (resolv.conf, CA bundles). */
  network?: NetworkPlan;
  /** See InitPlan.replayPids. */
  replayPids?: number[];
  /** A replay: the newest time of a host file the replayed run looked at that changed
   * since (src/reproducibility/replay-clock.ts); the wall clocks start after it. */
  hostNewestNs?: bigint;
  /** Executable names whose exec uwrx-init holds and asks about (partial rebuild,
   * src/features/rebuild.ts); absent or empty: none. */
  skippable?: string[];
  /** Those execs wait for the answer (InitPlan.rebuildWait). */
  rebuildWait?: boolean;
  /** The replayed attempt: a skipped exec's outputs are copied from its stored versions,
   * so uwrx-init opens it before the sandbox hides the record. */
  replayedDir?: string;
  /** false: every top-level tree is an overlay from the start (plan/root.ts, lazy). */
  lazyRoot?: boolean;
}

export interface NetworkPlan {
  steps: PlanStep[];
  binds: Array<{ source: string; target: string }>;
  /** Files bound where the sandbox has none (in its private /dev). */
  created: Array<{ source: string; target: string }>;
}

/** One parent attempt's store: its layer roots, top first (files-<q> highest q first,
 * then files/), i.e. its final state. */
export interface ParentStore {
  attemptDir: string;
  roots: string[];
  /** Its T0 (t0.txt) and the newest time its files showed at its end (newest.txt);
   * absent when the attempt lacks the file. */
  t0Ns?: bigint;
  newestNs?: bigint;
  /** When it started (its status's startedAt, to the millisecond); absent when unknown. */
  startedNs?: bigint;
}

/** An attempt's start from its status file (T0 is whole seconds: too coarse to tell a
 * file written just before the attempt from one edited after it). */
function startedNsOf(attemptDir: string): bigint | undefined {
  try {
    const status = JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as { startedAt?: unknown };
    const ms = typeof status.startedAt === 'string' ? Date.parse(status.startedAt) : NaN;
    return Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : undefined;
  } catch {
    return undefined;
  }
}

/** The stores of an attempt's parent chain (parent/0 and its ancestors, then parent/1 ...). */
export function parentStores(attemptDir: string): ParentStore[] {
  return parentChain(attemptDir).map((dir) => {
    const t0Ns = readNsFileSync(path.join(dir, T0_FILE));
    const newestNs = readNsFileSync(path.join(dir, NEWEST_FILE));
    const startedNs = startedNsOf(dir);
    return {
      attemptDir: dir,
      roots: [...versionPids(dir).map((q) => path.join(dir, `files-${q}`)), path.join(dir, 'files')],
      ...(t0Ns !== undefined ? { t0Ns } : {}),
      ...(newestNs !== undefined ? { newestNs } : {}),
      ...(startedNs !== undefined ? { startedNs } : {}),
    };
  });
}

/** The sandbox for these inputs, as data. Reads the host only through `host` (default:
 * this machine), so the same inputs give the same plan. */
export function computePlan(input: PlanInput, host: HostView = realHost()): SandboxPlan {
  const ctx: BuildContext = {
    input,
    host,
    steps: new StepList(),
    newRoot: path.join(input.runDir, 'root'),
    hidden: normaliseHidden(host, input.hide),
    hostMounts: mountPoints(host.mountinfo()),
    root: host.uid === 0,
  };
  // The record's own files are opened first, while the run directory is still visible.
  ctx.steps.push({ op: 'files' });
  if (input.tracesDir) ctx.steps.push({ op: 'traces', path: input.tracesDir });
  if (input.replayedDir) ctx.steps.push({ op: 'replayed', path: input.replayedDir });
  const { overlays, files, flatten } = buildRoot(ctx);
  buildKernelFilesystems(ctx);
  ctx.steps.push({ op: 'loopback' });
  buildNetwork(ctx);
  ctx.steps.push({ op: 'hostname', name: 'uwrx' });
  const ldso = buildRepro(ctx);
  buildHidden(ctx, overlays, files);
  eagerWhereMounted(ctx);
  // the new root shows the host's times: its entries are all made by now
  ctx.steps.push({ op: 'times', source: '/', path: ctx.newRoot, flags: 0 });
  ctx.steps.push({ op: 'readonly', path: ctx.newRoot, flags: 0 });
  ctx.steps.push({ op: 'pivot', path: ctx.newRoot });

  const root = ctx.root;
  const env = Object.entries(input.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return {
    newRoot: ctx.newRoot,
    overlays,
    ...(ldso ? { ldso } : {}),
    ...(flatten.length ? { flatten } : {}),
    init: {
      argv: input.argv,
      env,
      cwd: input.cwd,
      // Unprivileged: programs keep their own identity; root maps every id to itself.
      uidMap: root ? '0 0 4294967295' : `${host.uid} ${host.uid} 1`,
      gidMap: root ? '0 0 4294967295' : `${host.gid} ${host.gid} 1`,
      denySetgroups: !root,
      steps: ctx.steps.steps,
      handlerThreads: input.handlerThreads ?? defaultHandlerThreads(),
      ...(ldso?.preload ? { recorder: true } : {}),
      graceMs: input.graceMs ?? 3000,
      ...(input.lingerMs !== undefined ? { lingerMs: input.lingerMs } : {}),
      ...(input.tracesDir ? { tracesDir: input.tracesDir } : {}),
      ...(input.repro
        ? {
            seed: input.repro.seed,
            t0Ns: String(input.repro.t0Ns),
            timeMode: TIME_MODE_CODE[input.repro.timeMode],
            ...(input.repro.timeStepNs !== undefined ? { timeStepNs: Number(input.repro.timeStepNs) } : {}),
            aslr: input.repro.aslr ?? false,
            // every timed wait notified, for the tests' comparison (clock events: uwrx_recorder.h)
            ...(process.env.UWRX_INPROCESS_WAITS === '0' ? { inProcessWaits: false } : {}),
          }
        : {}),
      files,
      ...(input.replayPids ? { replayPids: input.replayPids } : {}),
      ...(input.skippable?.length ? { skippable: input.skippable } : {}),
      ...(input.skippable?.length && input.rebuildWait ? { rebuildWait: true } : {}),
    },
  };
}

/** Carries out the plan's flattening (hard links, no copies). */
export function prepareParentLayers(plan: SandboxPlan): void {
  for (const job of plan.flatten ?? []) flattenLayers(job.layers, job.dest);
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
  if (plan.seed) lines.push(`seed ${plan.seed}; t0 ${plan.t0Ns} ns; time ${TIME_MODES[plan.timeMode ?? 0] ?? plan.timeMode}; address-space randomization ${plan.aslr ? 'on' : 'off'}`);
  if (plan.files) lines.push(`files.meta ${plan.files.meta}; versions ${plan.files.versions}; parent layers ${plan.files.layers}`);
  if (plan.replayPids) lines.push(`replayed logical pids: ${plan.replayPids.length / 3} tree keys`);
  for (const o of overlays) {
    if (o.mode !== o.hostMode) lines.push(`upper ${o.upper} ${o.mode.toString(8)} (for ${o.mountPoint}, ${o.hostMode.toString(8)} on the host)`);
    for (const d of o.upperDirs ?? []) lines.push(`upper dir ${d.path} ${d.mode.toString(8)}`);
    for (const w of o.whiteouts ?? []) lines.push(`upper whiteout ${w} (hidden inside)`);
  }
  // a step that may fail without failing the run says so
  plan.steps.forEach((s, i) => lines.push(`${String(i).padStart(3)} ${renderStep(s)}${s.ahead ? ' (made ahead)' : ''}${s.bestEffort ? ' (best effort)' : ''}`));
  return lines.join('\n') + '\n';
}

/** A lazy tree (plan/root.ts) below which a later step makes something (a placeholder,
 * a directory, a filesystem): the overlay attached over the bind later would hide it,
 * so the tree is an overlay from the start. Read-only binds over existing files are
 * mounted again over the overlay when it is attached (init/lazy.c). */
function eagerWhereMounted(ctx: BuildContext): void {
  const steps = ctx.steps.steps;
  const carried = (t: PlanStep) => t.op === 'readonly' || (t.op === 'mount' && t.fstype === null && (t.flags & MS_BIND) !== 0);
  steps.forEach((s, i) => {
    if (s.op !== 'lazy') return;
    const below = steps.slice(i + 1).some((t) => !carried(t) && [ 'path' in t ? t.path : undefined, 'target' in t ? t.target : undefined ]
      .some((p) => typeof p === 'string' && p !== s.target && isUnder(p, s.target)));
    if (below) steps[i] = { op: 'mount', source: s.source, target: s.target, fstype: s.fstype, flags: s.flags, data: s.data, ahead: true };
  });
}

/** One step as `--dry-run` prints it. */
function renderStep(s: PlanStep): string {
  switch (s.op) {
    case 'files':
      return 'files (open files.meta and versions)';
    case 'traces':
      return `traces ${s.path}`;
    case 'replayed':
      return `replayed ${s.path} (kept open: skipped outputs are copied from it)`;
    case 'mount': {
      const flags = FLAG_NAMES.filter(([bit]) => s.flags & bit).map(([, name]) => name).join(',');
      return `mount ${s.fstype ?? '-'} ${s.source ?? '-'} -> ${s.target}${flags ? ` [${flags}]` : ''}${s.data ? ` ${s.data}` : ''}`;
    }
    case 'lazy':
      return `lazy ${s.name} -> ${s.target} read-only, then ${s.fstype} ${s.data} at its first change`;
    case 'mkdir':
    case 'file':
      return `${s.op} ${s.path} ${s.mode.toString(8)}`;
    case 'symlink':
      return `symlink ${s.path} -> ${s.target}`;
    case 'times':
      return `times of ${s.path} from ${s.source}${s.flags & 1 ? ' (the link itself)' : ''}`;
    case 'readonly':
      return `readonly ${s.path}${s.flags ? ' (recursive)' : ''}`;
    case 'pivot':
      return `pivot_root ${s.path}`;
    case 'loopback':
      return 'loopback up';
    case 'hostname':
      return `hostname ${s.name}`;
    case 'domainname':
      return `domainname ${s.name}`;
    case 'devrandom':
      return `devrandom ${s.path}${s.flags ? ' (/dev/random)' : ''}`;
    case 'pty':
      return `pty ${s.path} <- ${s.source}`;
    case 'pidmax':
      return `pid_max ${s.flags} in ${s.path}`;
    case 'netaddr':
      return `address ${s.path}/${s.flags} on lo`;
    case 'netroute':
      return `local route ${s.path}/${s.flags} on lo`;
    case 'netsocket':
      return `${s.name} socket ${s.path} port ${s.flags} for the network actors`;
  }
}
