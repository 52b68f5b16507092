// What the command must not see: the record (the build directory) and the run's own
// directory (live uppers, trace buffers) become empty read-only directories inside.
import path from 'node:path';
import type { HostView } from '../host.js';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, inRoot, isUnder, type BuildContext } from './steps.js';

/** Existing hidden paths, outermost only (a path inside another is hidden with it). */
export function normaliseHidden(host: HostView, hide: string[]): string[] {
  const existing = [...new Set(hide.map((h) => path.resolve(h)))].filter((h) => host.stat(h)?.isDirectory() ?? false);
  return existing.filter((h) => !existing.some((o) => o !== h && isUnder(h, o))).sort();
}

export function buildHidden(ctx: BuildContext): void {
  for (const h of ctx.hidden) {
    ctx.steps.mount('uwrx-hidden', inRoot(ctx, h), 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=0755');
  }
}
