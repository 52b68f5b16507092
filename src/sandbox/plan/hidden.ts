// What the command must not see: the record (the build directory) and the run's own
// directory (live uppers, trace buffers). They are absent inside: a whiteout in the
// upper of the overlay they lie in, so the command may create a directory of the same
// name (its own ./build), recorded like any other write; nothing where the sandbox
// builds the directory itself; an empty read-only directory only where a parent layer
// merges a directory of its own with them.
import path from 'node:path';
import type { FilesPlan } from '../../protocol/init-messages.js';
import { lstatSyncOrNull } from '../../fs.js';
import { isOpaque, isWhiteout } from '../../record/resolve.js';
import type { HostView } from '../host.js';
import type { OverlayLayer, UpperDir } from '../plan.js';
import { callerMode } from './root.js';
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, inRoot, isUnder, type BuildContext } from './steps.js';

/** Filesystems the sandbox makes afresh: nothing of the host's shows there. */
const FRESH_TOP = ['/proc', '/sys', '/dev'];

/** Existing hidden paths, outermost only (a path inside another is hidden with it). */
export function normaliseHidden(host: HostView, hide: string[]): string[] {
  const existing = [...new Set(hide.map((h) => path.resolve(h)))].filter((h) => host.stat(h)?.isDirectory() ?? false);
  return existing.filter((h) => !existing.some((o) => o !== h && isUnder(h, o))).sort();
}

export function buildHidden(ctx: BuildContext, overlays: OverlayLayer[], files: FilesPlan): void {
  const { host } = ctx;
  const caller = { uid: host.uid, gid: host.gid };
  for (const h of ctx.hidden) {
    if (FRESH_TOP.some((top) => isUnder(h, top))) continue;
    // the innermost overlay holding it; none: not built into the new root, so absent
    const index = overlays.reduce((best, o, i) =>
      isUnder(h, o.mountPoint) && h !== o.mountPoint && (best < 0 || o.mountPoint.length > overlays[best]!.mountPoint.length) ? i : best, -1);
    if (index < 0) continue;
    const layer = overlays[index]!;
    const lowerDirs = files.overlays[index]!.lowers.map((l) => l.dir);
    const seen = realSeenThrough(lowerDirs, path.relative(layer.mountPoint, h));
    if (seen === 'hidden') continue;
    if (seen === 'merged') {
      ctx.steps.mount('uwrx-hidden', inRoot(ctx, h), 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=0755');
      continue;
    }
    // the upper's directories on the way, as the lower ones (owner, mode, times)
    const dirs = new Map((layer.upperDirs ?? []).map((d) => [d.path, d]));
    for (let d = path.dirname(h); d !== layer.mountPoint && isUnder(d, layer.mountPoint); d = path.dirname(d)) {
      const upperPath = path.join(layer.upper, path.relative(layer.mountPoint, d));
      // as the command would see it: a parent's copy (its times as that step ended) above the host's
      const st = parentCopy(lowerDirs, path.relative(layer.mountPoint, d)) ?? host.stat(d);
      if (dirs.has(upperPath) || !st) continue;
      const dir: UpperDir = {
        path: upperPath,
        mode: ctx.root ? st.mode & 0o7777 : callerMode(d, st, caller, host.access.bind(host)),
        hostMode: st.mode & 0o7777,
        atime: st.atimeMs / 1000,
        mtime: st.mtimeMs / 1000,
        ...(ctx.root ? { uid: st.uid, gid: st.gid } : {}),
      };
      dirs.set(upperPath, dir);
    }
    if (dirs.size > 0) {
      layer.upperDirs = [...dirs.values()].sort((a, b) => a.path.split('/').length - b.path.split('/').length || (a.path < b.path ? -1 : 1));
    }
    (layer.whiteouts ??= []).push(path.join(layer.upper, path.relative(layer.mountPoint, h)));
  }
}

/** The topmost parent layer's directory at `rel`, if a layer has one. */
function parentCopy(layers: string[], rel: string) {
  for (const layer of layers) {
    const st = lstatSyncOrNull(path.join(layer, rel));
    if (st?.isDirectory()) return st;
  }
  return null;
}

/** Whether the real directory at `rel` (below an overlay's mount point) shows through the
 * parents' layers (top first) as overlayfs merges them: 'hidden' when a whiteout, a
 * non-directory or an opaque directory of a layer covers it on the way down, 'merged'
 * when a layer has a directory of its own there, 'shown' when no layer has anything. */
function realSeenThrough(layers: string[], rel: string): 'hidden' | 'merged' | 'shown' {
  const names = rel.split('/');
  for (let i = 1; i <= names.length; i++) {
    const prefix = names.slice(0, i).join('/');
    for (const layer of layers) {
      const p = path.join(layer, prefix);
      const st = lstatSyncOrNull(p);
      if (!st) continue;
      if (isWhiteout(st) || !st.isDirectory() || isOpaque(p)) return 'hidden';
      if (i === names.length) return 'merged';
    }
  }
  return 'shown';
}
