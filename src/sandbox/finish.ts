// After the sandbox ends: each overlay's upper becomes part of <attempt>/files/ by
// renames (never copies), whiteouts and opaque markers kept as overlayfs left them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { OverlayLayer } from './plan.js';
import type { FilesPlan } from '../protocol/init-messages.js';
import { unescapeBytes } from '../record/escape.js';
import { native } from '../native.js';
import { moveAcross } from '../record/move.js';

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
    await moveAcross(src, dst);
    return;
  }
  const s = await fs.lstat(src);
  if (s.isDirectory() && d.isDirectory()) {
    for (const name of await fs.readdir(src)) await mergeMove(path.join(src, name), path.join(dst, name));
    await fs.rmdir(src);
    return;
  }
  if (d.isDirectory()) await fs.rm(dst, { recursive: true, force: true });
  await moveAcross(src, dst);
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

/** files.meta into the attempt, then the preserved versions (src/native/init/files.c):
 * for each path several processes wrote, files/X gets the first writer's version,
 * files-<q>/X each later writer's, files-<last>/X the live upper's final state (a
 * whiteout when the path ended absent). Paths with one writer are not listed: the uppers'
 * renames already put them in files/. Runs after collectUppers. */
export async function collectFileRecord(plan: FilesPlan, attemptDir: string): Promise<void> {
  const meta = path.join(attemptDir, 'files.meta');
  try {
    await moveAcross(plan.meta, meta);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.writeFile(meta, '');
  }
  let index: string;
  try {
    index = await fs.readFile(path.join(plan.versions, 'index.tsv'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const inStore = (dir: string, rel: Buffer) => Buffer.concat([Buffer.from(dir), rel]);
  let scratch = 0;
  // A version whose directory was later replaced by a file (or the other way round) has
  // no place in a per-path store; such paths are listed in files.skipped, not dropped silently.
  const skipped: string[] = [];
  for (const line of index.split('\n')) {
    if (!line) continue;
    const [escaped, first, last, preserved] = line.split('\t') as [string, string, string, string];
    const rel = unescapeBytes(escaped);
    const current = inStore(path.join(attemptDir, 'files'), rel);
    const lastDst = inStore(path.join(attemptDir, `files-${last}`), rel);
    if (!(await mkdirParent(lastDst))) {
      skipped.push(`${escaped}\t${last}\n`);
      continue;
    }
    if (await lstatOrNull(current)) await fs.rename(current, lastDst);
    else {
      // a whiteout made at a plain name and renamed: the path need not be UTF-8
      const tmp = path.join(attemptDir, `.whiteout-${scratch++}`);
      native().makeWhiteout(tmp);
      await fs.rename(tmp, lastDst);
    }
    for (const q of preserved.split(',')) {
      const src = inStore(path.join(plan.versions, q), rel);
      const dst = inStore(path.join(attemptDir, q === first ? 'files' : `files-${q}`), rel);
      if (!(await lstatOrNull(src))) continue;
      if (!(await mkdirParent(dst))) {
        skipped.push(`${escaped}\t${q}\n`);
        continue;
      }
      if (await lstatOrNull(dst)) await fs.rm(dst, { recursive: true, force: true });
      await moveAcross(src, dst);
    }
  }
  if (skipped.length > 0) await fs.writeFile(path.join(attemptDir, 'files.skipped'), skipped.join(''));
}

/** Creates the parent directories of `file`; false when a non-directory is in the way. */
async function mkdirParent(file: Buffer): Promise<boolean> {
  const slash = file.lastIndexOf(0x2f);
  if (slash <= 0) return true;
  try {
    await fs.mkdir(file.subarray(0, slash) as unknown as string, { recursive: true });
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') return false;
    throw err;
  }
}
