// Moving a finished run's files into the record: a rename where the run directory (--tmp)
// shares the record's filesystem, a copy that keeps everything overlayfs left (whiteouts,
// opaque markers in extended attributes, modes, times, hard links) where it does not.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** rename(2) of `src` to `dst`; across filesystems (EXDEV) a `cp -a` and a removal. */
export async function moveAcross(src: string | Buffer, dst: string | Buffer): Promise<void> {
  try {
    await fs.rename(src, dst);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  await fs.rm(dst, { recursive: true, force: true });
  try {
    // cp treats its arguments as bytes: paths need not be UTF-8
    await run('cp', ['-a', '--no-target-directory', '--', src as string, dst as string], { encoding: 'buffer' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`copy ${String(src)} to ${String(dst)} across filesystems: ${stderr || (err as Error).message}`);
  }
  await fs.rm(src, { recursive: true, force: true });
}
