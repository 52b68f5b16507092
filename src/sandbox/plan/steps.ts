// The step list the plan builders append to, and what they share: the input, the host
// view and where the new root is.
import path from 'node:path';
import type { PlanStep } from '../../protocol/init-messages.js';
import type { HostView } from '../host.js';
import type { PlanInput } from '../plan.js';

// mount(2) flags
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;

export class StepList {
  readonly steps: PlanStep[] = [];

  push(step: PlanStep): void {
    this.steps.push(step);
  }

  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null, bestEffort = false, ahead = false): void {
    this.steps.push({ op: 'mount', source, target, fstype, flags, data, ...(bestEffort ? { bestEffort } : {}), ...(ahead ? { ahead } : {}) });
  }

  /** The overlay `data` over `hostDir`, attached at its first change; until then a
   * read-only bind of `hostDir` at `target` (init/lazy.c). Its filesystem is made ahead. */
  lazy(hostDir: string, target: string, data: string): void {
    this.steps.push({ op: 'lazy', name: hostDir, source: 'overlay', target, path: hostDir, fstype: 'overlay', flags: 0, data, ahead: true });
  }

  mkdir(p: string, mode: number): void {
    this.steps.push({ op: 'mkdir', path: p, mode });
  }

  bindReadOnly(source: string, target: string, bestEffort = false): void {
    this.mount(source, target, null, MS_BIND, null, bestEffort);
    this.steps.push({ op: 'readonly', path: target, flags: 0, ...(bestEffort ? { bestEffort } : {}) });
  }
}

export interface BuildContext {
  readonly input: PlanInput;
  readonly host: HostView;
  readonly steps: StepList;
  /** <runDir>/root: the sandbox's / before pivot_root. */
  readonly newRoot: string;
  /** Existing hidden paths, outermost only. */
  readonly hidden: string[];
  /** The host's mount points (mountinfo, read once per plan), in its order. */
  readonly hostMounts: readonly string[];
  /** Planning for root: the full id range is mapped, modes are the host's. */
  readonly root: boolean;
}

export function inRoot(ctx: BuildContext, p: string): string {
  return joinPath(ctx.newRoot, p);
}

/** A path that path.normalize would change: an empty one, a `.` or `..` part, `//`, or a
 * trailing `/`. */
const UNNORMAL = /^$|(^|\/)\.\.?(\/|$)|\/\/|\/$/;

/** path.join(dir, p), for the plan's few hundred joins of paths that are normal already
 * (absolute host paths, directory entries): path.join normalises what it joins, a loop
 * over every character that costs more than the rest of the plan's work on the path. */
export function joinPath(dir: string, p: string): string {
  if (UNNORMAL.test(dir) || UNNORMAL.test(p)) return path.join(dir, p);
  return p.startsWith('/') ? dir + p : `${dir}/${p}`;
}

export function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}
