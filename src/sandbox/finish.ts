// After the sandbox ends: each overlay's upper becomes part of <attempt>/files/ by
// renames (never copies), whiteouts and opaque markers kept as overlayfs left them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { OverlayLayer } from './plan.js';
import type { FilesPlan } from '../protocol/init-messages.js';
import { parseFilesMeta } from '../record/files-meta.js';
import { layoutStore } from '../record/store-layout.js';

async function lstatOrNull(p: string | Buffer) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    // ENOTDIR: an ancestor is now a file, so the path does not exist in that tree.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Moves `src` to `dst`; where both are directories their entries are merged (the
 * entries of `src` win), so layers meeting at a mount point combine. */
export async function mergeMove(src: string, dst: string): Promise<void> {
  const d = await lstatOrNull(dst);
  if (!d) {
    await fs.mkdir(path.dirname(dst), { recursive: true });
    await fs.rename(src, dst);
    return;
  }
  const s = await fs.lstat(src);
  if (s.isDirectory() && d.isDirectory()) {
    for (const name of await fs.readdir(src)) await mergeMove(path.join(src, name), path.join(dst, name));
    await fs.rmdir(src);
    return;
  }
  if (d.isDirectory()) await fs.rm(dst, { recursive: true, force: true });
  await fs.rename(src, dst);
}

/** Moves every upper into files/<mount point>; returns the files/ directory. */
export async function collectUppers(overlays: OverlayLayer[], attemptDir: string): Promise<string> {
  const files = path.join(attemptDir, 'files');
  await fs.mkdir(files, { recursive: true });
  // outer mounts first, so a nested mount's writes merge into (and win over) its parent's
  const ordered = [...overlays].sort((a, b) => a.mountPoint.split('/').length - b.mountPoint.split('/').length);
  for (const layer of ordered) {
    let entries: string[];
    try {
      entries = await fs.readdir(layer.upper);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (entries.length === 0) continue;
    await mergeMove(layer.upper, path.join(files, layer.mountPoint));
  }
  return files;
}

export async function countRegularFiles(dir: string): Promise<number> {
  let count = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  for (const e of entries) {
    if (e.isFile()) count++;
    else if (e.isDirectory()) count += await countRegularFiles(path.join(dir, e.name));
  }
  return count;
}

/** Removes a tree even where overlayfs left directories without permissions (work/work
 * is mode 000). */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    await makeWritable(dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  try {
    await fs.chmod(dir, 0o700);
  } catch {
    return;
  }
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await makeWritable(path.join(dir, e.name));
}

/** files.meta into the attempt, then files/ and files-<pid>/ laid out from the history
 * (src/record/store-layout.ts) with the versions uwrx-init preserved. Runs after
 * collectUppers. */
export async function collectFileRecord(plan: FilesPlan, attemptDir: string): Promise<void> {
  const meta = path.join(attemptDir, 'files.meta');
  try {
    await fs.rename(plan.meta, meta);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.writeFile(meta, '');
  }
  const entries = parseFilesMeta(await fs.readFile(meta, 'utf8'));
  const { skipped } = await layoutStore(attemptDir, entries, plan.versions);
  // versions that have no place in a per-path store are listed, not dropped silently
  if (skipped.length > 0) await fs.writeFile(path.join(attemptDir, 'files.skipped'), skipped.join(''));
}
