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
// That directory links back to the run directory (.run) and names the uwrx process that
// made it (.owner), so a later run can free the buffers of a killed uwrx: they are moved
// back into its run directory (where `uwrx check --repair` finds them, as it would had
// they never been on the tmpfs), or removed once that run directory is gone.
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, statfsSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { traceAddon } from '../native.js';

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

/** The subdirectory of a buffers' directory where uwrx-init links the buffers of
 * prepared execs (TRACE_EXEC_DIR in src/native/init/init.h): second names, not buffers. */
export const EXEC_LINKS = 'exec';

/** The link in a buffers' directory on the tmpfs back to its run directory. */
const OWNER_LINK = '.run';
/** The file there that names the uwrx process that made it: "<pid> <start time> <pid
 * namespace>" (its start time in clock ticks since boot, /proc/<pid>/stat field 22, so a
 * reused pid is not taken for it; the namespace the pid is one of). */
const OWNER_FILE = '.owner';

/** The start time (clock ticks after boot) of process `pid`, or undefined when there is no
 * such process (in our pid namespace) or it has died and waits to be reaped (a zombie:
 * its descriptors and memory are gone, and a killed uwrx's parent may take its time). */
function startTimeOf(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // the command name (field 2) may hold spaces and parentheses: fields after the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** This process as OWNER_FILE names it; undefined when /proc does not say. */
function ownIdentity(): string | undefined {
  const start = startTimeOf('self');
  const ns = pidNamespace();
  return start && ns ? `${process.pid} ${start} ${ns}\n` : undefined;
}

/** Whether the uwrx that made buffers' directory `dir` is gone: true only when its
 * OWNER_FILE names a process of our pid namespace that no longer exists (or whose pid
 * now names a later process). Undefined when that cannot be told (no file: an older uwrx,
 * or one still making it; another pid namespace, whose processes we do not see).
 * `ourNamespace`: pidNamespace(), read once per sweep. */
function ownerGone(dir: string, ourNamespace: string | undefined): boolean | undefined {
  let fields: string[];
  try {
    fields = readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim().split(' ');
  } catch {
    return undefined;
  }
  const [pid, start, ns] = fields;
  if (!pid || !/^[1-9][0-9]*$/.test(pid) || !start || !ns || ns !== ourNamespace) return undefined;
  return startTimeOf(Number(pid)) !== start;
}

/** Moves the buffers of a killed uwrx from `dir` on the tmpfs into its run directory,
 * where <runDir>/traces linked to them, and removes `dir`: their memory is freed and
 * `uwrx check --repair` still recovers them. Copied into a new directory there first and
 * put in place by a rename, so a sweep stopped half-way (or another run sweeping at the
 * same time) leaves the buffers where the link finds them. Anything unexpected leaves
 * them as they are. */
function moveBack(dir: string, runDir: string): void {
  const link = path.join(runDir, 'traces');
  let linked: boolean;
  try {
    const st = lstatSync(link);
    // a directory: a sweep moved them already
    if (st.isDirectory()) return void rmSync(dir, { recursive: true, force: true });
    linked = st.isSymbolicLink() && readlinkSync(link) === dir;
  } catch {
    linked = false; // no link: a sweep stopped between its unlink and its rename
  }
  if (!linked && lstatSync(link, { throwIfNoEntry: false })) return;
  let copy: string | undefined;
  try {
    copy = mkdtempSync(path.join(runDir, '.traces-'));
    for (const name of readdirSync(dir)) {
      if (name === OWNER_LINK || name === OWNER_FILE || name === EXEC_LINKS) continue;
      traceAddon().copyBuffer(path.join(dir, name), path.join(copy, name));
    }
    try {
      unlinkSync(link);
    } catch {
      // gone already (another sweep): the rename below says who was first
    }
    renameSync(copy, link);
    copy = undefined;
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // no room, or another sweep was first: the buffers stay where they are
    if (copy) rmSync(copy, { recursive: true, force: true });
  }
}

/** Frees the buffers' directories on the tmpfs of uwrx processes that are gone: a uwrx
 * killed (SIGKILL) leaves its run directory for `uwrx check --repair`, and nothing else
 * would free their memory. Where the run directory is still there, the buffers move into
 * it (moveBack); where it is gone (its user or a repair removed it), they are removed.
 * Never a live run's: a directory whose owner cannot be told gone is freed only once its
 * run directory is gone (a live run's directory exists before its buffers' directory
 * does), and only this user's directories are looked at (root also frees other users'
 * whose run directory is gone). */
function sweepOrphans(): void {
  let names: string[];
  try {
    names = readdirSync(SHM).filter((n) => n.startsWith('uwrx-run-'));
  } catch {
    return;
  }
  const uid = process.getuid?.();
  const ourNamespace = pidNamespace();
  for (const name of names) {
    const dir = path.join(SHM, name);
    try {
      // root frees another user's only once its run directory is gone: buffers it moved
      // into that run directory would be root's, which the user's repair cannot read
      const mine = statSync(dir).uid === uid;
      if (!mine && uid !== 0) continue;
      const runDir = readlinkSync(path.join(dir, OWNER_LINK));
      const gone = mine ? ownerGone(dir, ourNamespace) : undefined;
      if (gone === false) continue;
      if (!lstatSync(runDir, { throwIfNoEntry: false })) rmSync(dir, { recursive: true, force: true });
      else if (gone) moveBack(dir, runDir);
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
      // who made it before where it belongs: a sweep looks at a directory with its link only
      const identity = ownIdentity();
      if (identity) writeFileSync(path.join(dir, OWNER_FILE), identity);
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
