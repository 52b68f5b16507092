// Flattening: overlayfs takes at most 500 lower layers, and a long parent chain (each
// parent adds files/ and a files-<pid>/ per later writer) can exceed that. Flattening
// merges a stack of layers into one directory that shows the same thing when laid over
// the real filesystem: files are hard links (no copies), whiteouts stay whiteouts (they
// still hide real files), opaque directories stay opaque.
import { lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, linkSync, symlinkSync, copyFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native.js';
import { isOpaque, isWhiteout } from './resolve.js';
import { lstatSyncOrNull } from '../fs.js';

/** Most lower layers one overlayfs mount accepts. */
export const OVERLAY_MAX_LOWER_LAYERS = 500;

const OPAQUE = 'user.overlay.opaque';

/** Merges `layers` (directory roots, top first) into the empty or absent directory `dest`. */
export function flattenLayers(layers: string[], dest: string): void {
  mkdirSync(dest, { recursive: true });
  for (const layer of [...layers].reverse()) {
    if (lstatSyncOrNull(layer)?.isDirectory()) applyDirectory(layer, dest);
  }
}

function applyDirectory(src: string, dst: string): void {
  for (const name of readdirSync(src)) {
    applyEntry(path.join(src, name), path.join(dst, name));
  }
}

function applyEntry(src: string, dst: string): void {
  const st = lstatSync(src);
  const existing = lstatSyncOrNull(dst);
  if (st.isDirectory()) {
    const opaque = isOpaque(src);
    if (existing && (!existing.isDirectory() || opaque)) rmSync(dst, { recursive: true, force: true });
    if (!existing || !existing.isDirectory() || opaque) {
      mkdirSync(dst);
      chmodSync(dst, st.mode & 0o7777);
      // A directory that replaced a whiteout or a file hides what the real filesystem has there.
      if (opaque || (existing && !existing.isDirectory())) native().setXattr(dst, OPAQUE, Buffer.from('y'));
    }
    applyDirectory(src, dst);
    return;
  }
  if (existing) rmSync(dst, { recursive: true, force: true });
  if (isWhiteout(st)) native().makeWhiteout(dst);
  else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
  else {
    try {
      linkSync(src, dst);
    } catch {
      copyFileSync(src, dst);
      chmodSync(dst, st.mode & 0o7777);
    }
  }
}
