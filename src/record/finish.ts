// After the sandbox ends: each overlay's upper becomes part of <attempt>/files/ by
// renames (copies only where a rename cannot cross filesystems), whiteouts and opaque
// markers kept as overlayfs left them; then files.meta and the preserved versions.
// The storage actor (src/actors/storage.ts) is the one caller.
import { promises as fs, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { OverlayLayer } from '../sandbox/plan.js';
import type { FilesPlan } from '../protocol/init-messages.js';
import { native } from '../native.js';
import { parseFilesMeta } from './files-meta.js';
import { layoutStore } from './store-layout.js';
import type { SparePool } from './spare-dirs.js';
import { isErrno, lstatOrNull, readdirOrEmpty } from '../fs.js';
import { childProcess } from '../builtins.js';

/** rename(2), or a copy then removal where `src` and `dst` are on different filesystems
 * (a --tmp on another filesystem than the build directory). cp -a keeps what the record
 * needs: modes, times, whiteouts (device 0/0) and the opaque markers (xattrs). */
async function move(src: string | Buffer, dst: string | Buffer): Promise<void> {
  try {
    await fs.rename(src, dst);
  } catch (err) {
    if (!isErrno(err, 'EXDEV')) throw err;
    await copyArchive(src, dst);
    await fs.rm(src, { recursive: true, force: true });
  }
}

/** move, in one synchronous call where a rename does it (for the store layout's many
 * preserved versions, src/record/store-layout.ts). */
function moveSync(src: Buffer, dst: Buffer): void {
  try {
    renameSync(src, dst);
  } catch (err) {
    if (!isErrno(err, 'EXDEV')) throw err;
    try {
      childProcess().execFileSync('cp', ['-a', '--no-target-directory', '--', String(src), String(dst)], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
      throw new Error(`copying ${String(src)} to ${String(dst)}: ${stderr || (e as Error).message}`);
    }
    rmSync(src, { recursive: true, force: true });
  }
}

function copyArchive(src: string | Buffer, dst: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    childProcess().execFile('cp', ['-a', '--no-target-directory', '--', String(src), String(dst)], (err, _out, stderr) => {
      if (err) reject(new Error(`copying ${String(src)} to ${String(dst)}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Moves `src` to `dst`; where both are directories their entries are merged (the
 * entries of `src` win), so layers meeting at a mount point combine. */
export async function mergeMove(src: string, dst: string): Promise<void> {
  const d = await lstatOrNull(dst);
  if (!d) {
    await fs.mkdir(path.dirname(dst), { recursive: true });
    await move(src, dst);
    return;
  }
  const s = await fs.lstat(src);
  if (s.isDirectory() && d.isDirectory()) {
    for (const name of await fs.readdir(src)) await mergeMove(path.join(src, name), path.join(dst, name));
    await fs.rmdir(src);
    return;
  }
  if (d.isDirectory()) await fs.rm(dst, { recursive: true, force: true });
  await move(src, dst);
}

/** After the run, the uppers' directories made before it (OverlayLayer.upperDirs):
 * those the command left untouched and empty go (files/ holds only what it wrote), the
 * others get back the host's mode, which the record keeps (and which lets the uppers be
 * moved). */
export async function settleUpperDirs(overlays: OverlayLayer[]): Promise<void> {
  const restore = async (dir: string, viewMode: number, hostMode: number) => {
    if (viewMode === hostMode) return;
    const st = await fs.lstat(dir);
    if ((st.mode & 0o7777) === viewMode) await fs.chmod(dir, hostMode);
  };
  for (const layer of overlays) {
    for (const d of [...(layer.upperDirs ?? [])].reverse()) {
      try {
        const st = await fs.lstat(d.path);
        const untouched = (st.mode & 0o7777) === d.mode && Math.abs(st.mtimeMs / 1000 - d.mtime) < 1e-3;
        if (untouched && (await fs.readdir(d.path)).length === 0) {
          const parent = path.dirname(d.path);
          const pst = await fs.lstat(parent, { bigint: true });
          const mode = Number(pst.mode & 0o7777n);
          await fs.chmod(parent, mode | 0o300);
          try {
            await fs.rmdir(d.path);
          } finally {
            await fs.chmod(parent, mode);
            native().setTimesNs(parent, pst.atimeNs, pst.mtimeNs);
          }
        } else {
          await restore(d.path, d.mode, d.hostMode);
        }
      } catch {
        // gone or changed by the command: it stays as it is
      }
    }
    await restore(layer.upper, layer.mode, layer.hostMode).catch(() => undefined);
  }
}

/** Moves every upper into files/<mount point>; returns the files/ directory. */
export async function collectUppers(overlays: OverlayLayer[], attemptDir: string): Promise<string> {
  const files = path.join(attemptDir, 'files');
  await fs.mkdir(files, { recursive: true });
  // outer mounts first, so a nested mount's writes merge into (and win over) its parent's
  const ordered = [...overlays].sort((a, b) => a.mountPoint.split('/').length - b.mountPoint.split('/').length);
  const attemptDev = (await fs.stat(attemptDir)).dev;
  // most uppers are empty: all are looked at at once, not one thread-pool call after another
  const written = await Promise.all(ordered.map(async (layer) => (await readdirOrEmpty(layer.upper)).length > 0));
  for (const [i, layer] of ordered.entries()) {
    if (!written[i]) continue;
    let upper = layer.upper;
    if ((await fs.stat(upper)).dev !== attemptDev) {
      // another filesystem (--tmp): one copy of the whole upper first, so hard links
      // between its files stay links, then renames as usual
      upper = path.join(attemptDir, `.upper-${ordered.indexOf(layer)}`);
      await copyArchive(layer.upper, upper);
      await fs.rm(layer.upper, { recursive: true, force: true });
    }
    await mergeMove(upper, path.join(files, layer.mountPoint));
  }
  return files;
}

export async function countRegularFiles(dir: string): Promise<number> {
  let count = 0;
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0;
    throw err;
  }
  for (const e of entries) {
    if (e.isFile()) count++;
    else if (e.isDirectory()) count += await countRegularFiles(path.join(dir, e.name));
  }
  return count;
}

/** files.meta into the attempt, then files/ and files-<pid>/ laid out from the history
 * (src/record/store-layout.ts) with the versions uwrx-init preserved. Runs after
 * collectUppers. */
export async function collectFileRecord(plan: FilesPlan, attemptDir: string, spares?: SparePool): Promise<void> {
  const meta = path.join(attemptDir, 'files.meta');
  try {
    await move(plan.meta, meta);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    await fs.writeFile(meta, '');
  }
  const entries = parseFilesMeta(await fs.readFile(meta, 'utf8'));
  const { skipped } = await layoutStore(attemptDir, entries, plan.versions, moveSync, spares);
  // versions that have no place in a per-path store are listed, not dropped silently
  if (skipped.length > 0) await fs.writeFile(path.join(attemptDir, 'files.skipped'), skipped.join(''));
}
