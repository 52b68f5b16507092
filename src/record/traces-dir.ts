// Where a run's per-process trace buffers live (<runDir>/traces).
//
// Every traced process creates its buffer, reserves its blocks, cuts and renames it at
// its end, and the collector deletes it: five metadata changes per process. On a
// journaling filesystem (ext4) each is a journal transaction: measured here about
// 0.5 ms of CPU per short process over the whole run, and waits of up to a millisecond
// each while the journal commits. On a tmpfs they are memory operations. So when
// /dev/shm is a tmpfs with room to spare, <runDir>/traces is a symbolic link to a
// private directory there; otherwise it is a plain directory. Everything that reads the
// buffers (the collector, `uwrx check --repair` after a crash) goes through the link.
// That directory links back to the run directory (.run), so a later run can free the
// buffers of a killed run whose run directory was removed.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import path from 'node:path';

const SHM = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
/** A buffer holds at most its window and the unread backlog (about 5 MiB) and most hold
 * 64 KiB; a run may use the tmpfs when this much of it is free (a container's default
 * 64 MiB /dev/shm is not enough for a parallel build that writes much output). */
const MIN_FREE_BYTES = 1024 ** 3;

/** Set UWRX_TRACES_TMPFS=0 to keep the buffers in the run directory. */
function tmpfsWanted(): boolean {
  return process.env.UWRX_TRACES_TMPFS !== '0';
}

function roomyTmpfs(dir: string): boolean {
  try {
    const s = statfsSync(dir);
    return s.type === TMPFS_MAGIC && s.bavail * s.bsize >= MIN_FREE_BYTES;
  } catch {
    return false;
  }
}

/** The link in a buffers' directory on the tmpfs back to its run directory. */
const OWNER_LINK = '.run';

/** Removes the buffers' directories on the tmpfs whose run directory is gone: a uwrx
 * killed (SIGKILL) leaves its run directory for `uwrx check --repair`; once that or its
 * user removed it, nothing else would free their memory. A live run's directory exists
 * before its buffers' directory does. */
function sweepOrphans(): void {
  let names: string[];
  try {
    names = readdirSync(SHM).filter((n) => n.startsWith('uwrx-run-'));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(SHM, name);
    try {
      const owner = readlinkSync(path.join(dir, OWNER_LINK));
      try {
        lstatSync(owner);
      } catch {
        rmSync(dir, { recursive: true, force: true });
      }
    } catch {
      /* not ours (another user's, or no owner link yet): left alone */
    }
  }
}

/** Makes <runDir>/traces and returns the real directory the buffers go to. */
/** Whether /dev/shm is a tmpfs with the room a run wants for its buffers (where they go
 * unless UWRX_TRACES_TMPFS=0). */
export function shmHasRoom(): boolean {
  return roomyTmpfs(SHM);
}

export async function makeTracesDir(runDir: string): Promise<string> {
  const link = path.join(runDir, 'traces');
  if (tmpfsWanted() && shmHasRoom()) {
    sweepOrphans();
    let dir: string | undefined;
    try {
      // (synchronous calls: see record/layout.ts)
      dir = mkdtempSync(path.join(SHM, `uwrx-${path.basename(runDir)}-`));
      symlinkSync(path.resolve(runDir), path.join(dir, OWNER_LINK));
      symlinkSync(dir, link);
      return dir;
    } catch {
      // not writable for us after all: the run directory serves
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }
  mkdirSync(link);
  return link;
}

/** The buffers' real directory when <runDir>/traces links outside the run directory. */
export function tracesOutside(runDir: string): string | undefined {
  const link = path.join(runDir, 'traces');
  try {
    return lstatSync(link).isSymbolicLink() ? readlinkSync(link) : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the buffers' directory when <runDir>/traces links outside the run
 * directory (removing the run directory takes the link only). */
export function removeTracesDir(runDir: string): void {
  const dir = tracesOutside(runDir);
  if (dir) rmSync(dir, { recursive: true, force: true });
}
