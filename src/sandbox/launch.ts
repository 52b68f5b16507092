// Starts uwrx-init with the plan and follows the sandbox until every process ended.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, type BigIntStats } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SocketTransport, type Envelope } from '../actors/transport.js';
import { EnvironmentError } from '../errors.js';
import { helperPath, native } from '../native.js';
import {
  MSG_DONE,
  MSG_EXEC,
  MSG_EXIT,
  MSG_FAILED,
  MSG_PLAN,
  MSG_SPAWN,
  MSG_STARTED,
  MSG_TERMINATE,
  type DoneBody,
  type ExecBody,
  type ExitBody,
  type SpawnBody,
} from '../protocol/init-messages.js';
import { collectFileRecord, collectUppers, countRegularFiles, removeTree } from './finish.js';
import { computePlan, hostPtys, parentStores, prepareParentLayers, type SandboxPlan } from './plan.js';
import { writeCombinedLdso } from '../reproducibility/ldso-combine.js';
import { ProcessTable } from './process-table.js';
import type { Sandbox, SandboxEvent, SandboxOptions, SandboxResult } from './index.js';
import { timing } from '../timing.js';

const decoder = new TextDecoder('utf-8');
const text = (b: Uint8Array | null | undefined) => (b ? decoder.decode(b) : '');

export function launchSandbox(options: SandboxOptions): Sandbox {
  let child: ChildProcess | undefined;
  let transport: SocketTransport | undefined;
  let interrupted = false;
  let pendingGrace: number | undefined;

  const sendTerminate = (graceMs: number) => {
    if (!child) {
      pendingGrace = graceMs;
      return;
    }
    try {
      transport?.send({ type: MSG_TERMINATE, body: { graceMs } });
    } catch {
      // channel already closed: the signal below still reaches uwrx-init
    }
    child.kill('SIGTERM');
    // uwrx-init kills the tree itself after graceMs; this is the backstop if it cannot
    setTimeout(() => child?.exitCode === null && child.kill('SIGKILL'), graceMs + 2000).unref();
  };

  const done = (async (): Promise<SandboxResult> => {
    const plan = planFor(options);
    const whiteouts = await prepareRunDir(plan);
    timing('sandbox plan computed, run directory prepared');
    const table = new ProcessTable();
    const emit = (e: SandboxEvent) => options.onEvent?.(e);

    const [ours, theirs] = native().socketPair();
    try {
      child = spawn(helperPath('uwrx-init'), [], {
        stdio: ['inherit', 'inherit', 'inherit', theirs],
        cwd: '/',
        env: {},
      });
    } finally {
      native().closeFd(theirs);
    }
    const socket = new net.Socket({ fd: ours, readable: true, writable: true });
    transport = new SocketTransport(socket);
    let failure: string | undefined;
    let outcome: DoneBody | undefined;
    transport.onMessage((m: Envelope) => {
      switch (m.type) {
        case MSG_SPAWN: {
          const b = m.body as SpawnBody;
          table.spawn(b);
          emit({ type: 'spawn', pid: b.pid, ppid: b.ppid, time: Number(b.time) });
          break;
        }
        case MSG_EXEC: {
          const b = m.body as ExecBody;
          table.exec(b);
          emit({
            type: 'exec',
            pid: b.pid,
            argv: b.argv.map(text),
            cwd: text(b.cwd),
            path: text(b.path),
            time: Number(b.time),
          });
          break;
        }
        case MSG_EXIT: {
          const b = m.body as ExitBody;
          table.exit(b);
          emit({ type: 'exit', pid: b.pid, exitCode: b.code, signal: b.signal, time: Number(b.time) });
          break;
        }
        case MSG_DONE:
          outcome = m.body as DoneBody;
          break;
        case MSG_FAILED:
          failure = m.error ?? 'sandbox setup failed';
          break;
        case MSG_STARTED:
          timing('uwrx-init started the command');
          break;
      }
    });
    transport.send({ type: MSG_PLAN, body: plan.init });
    if (pendingGrace !== undefined) sendTerminate(pendingGrace);

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child!.on('error', reject);
      child!.on('exit', (code, signal) => resolve({ code, signal }));
    });
    const closed = new Promise<void>((resolve) => transport!.onClose(() => resolve()));
    const { code, signal } = await exited;
    await closed;
    timing('uwrx-init exited');

    await dropWhiteouts(whiteouts);
    await settleUpperDirs(plan);
    const filesDir = await collectUppers(plan.overlays, options.attemptDir);
    if (plan.init.files) await collectFileRecord(plan.init.files, options.attemptDir);
    await table.write(options.attemptDir);
    timing('record collected (uppers, files.meta, process table)');
    await cleanRunDir(plan);
    timing('run directory cleaned');
    if (failure) throw new EnvironmentError(`sandbox: ${failure}`);
    // what `uwrx inspect files` lists: each path files.meta names, once
    const filesWritten = plan.init.files ? await countPathsInMeta(options.attemptDir) : await countRegularFiles(filesDir);
    const lost = outcome ? traceLoss(outcome, options.runDir) : undefined;
    if (!outcome) {
      // uwrx-init did not finish (killed): the tree is gone with its pid namespace
      return {
        status: code ?? 128 + (signal ? signalNumber(signal) : 9),
        exitCode: null,
        signal: null,
        incomplete: true,
        processes: table.size,
        filesWritten,
      };
    }
    return {
      status: outcome.status,
      exitCode: outcome.code,
      signal: outcome.signal,
      incomplete: interrupted || lost !== undefined,
      processes: table.size,
      filesWritten,
      terminated: lingering(outcome, table),
      ...(lost ? { problem: lost } : {}),
    };
  })();

  return {
    done,
    terminate(graceMs = 3000) {
      interrupted = true;
      sendTerminate(graceMs);
    },
  };
}

/** Distinct paths in the attempt's files.meta (the files `uwrx inspect files` lists). */
async function countPathsInMeta(attemptDir: string): Promise<number> {
  let text: string;
  try {
    text = await fs.readFile(path.join(attemptDir, 'files.meta'), 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  // the path is the first field, escaped (no raw tab or newline inside)
  return new Set(text.split('\n').filter(Boolean).map((line) => line.slice(0, line.indexOf('\t')))).size;
}

/** What the trace buffers could not hold, in one sentence (undefined: nothing lost). */
function traceLoss(outcome: DoneBody, runDir: string): string | undefined {
  const records = outcome.traceLostRecords ?? 0;
  const buffers = outcome.traceLostBuffers ?? 0;
  if (records === 0 && buffers === 0) return undefined;
  const why = outcome.traceErrno === os.constants.errno.ENOSPC ? 'no space left' : `errno ${outcome.traceErrno}`;
  const what = [
    records ? `${records} trace record${records === 1 ? '' : 's'}` : '',
    buffers ? `the trace of ${buffers} process${buffers === 1 ? '' : 'es'}` : '',
  ].filter(Boolean).join(' and ');
  return `${why} on the filesystem of ${path.dirname(runDir)} (--tmp): ${what} lost`;
}

/** The processes terminated after the linger time, with their command names. */
function lingering(outcome: DoneBody, table: ProcessTable): SandboxResult['terminated'] {
  const pids = outcome.terminated ?? [];
  const count = outcome.terminatedCount ?? pids.length;
  if (count === 0) return undefined;
  return {
    count,
    processes: pids.map(({ pid, name }) => {
      const argv = table.argvOf(pid);
      return { pid, ...(argv.length > 0 ? { argv } : {}), name };
    }),
  };
}

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 9;
}

/** Makes the run directory's tree; returns the whiteouts it made, each with its identity
 * (inode and change time). */
async function prepareRunDir(plan: SandboxPlan): Promise<Map<string, string>> {
  const whiteouts = new Map<string, string>();
  await fs.mkdir(plan.newRoot, { recursive: true });
  if (plan.ldso) await writeCombinedLdso(plan.ldso.real, plan.ldso.combined);
  prepareParentLayers(plan);
  for (const layer of plan.overlays) {
    await fs.mkdir(layer.upper, { recursive: true });
    await fs.mkdir(layer.work, { recursive: true });
    const dirs = layer.upperDirs ?? [];
    for (const d of dirs) {
      await fs.mkdir(d.path, { recursive: true });
      if (d.uid !== undefined && d.gid !== undefined) await fs.chown(d.path, d.uid, d.gid);
    }
    for (const w of layer.whiteouts ?? []) {
      native().makeWhiteout(w);
      whiteouts.set(w, identity(await fs.lstat(w, { bigint: true })));
    }
    // modes last, deepest first: a directory may deny its owner the writes made above
    for (const d of [...dirs].reverse()) {
      await fs.chmod(d.path, d.mode);
      await fs.utimes(d.path, d.atime, d.mtime);
    }
    // the upper's root directory gives the mount point its owner and mode
    await fs.chmod(layer.upper, layer.mode);
    if (layer.owner) await fs.chown(layer.upper, layer.owner.uid, layer.owner.gid);
  }
  return whiteouts;
}

/** After the run, the uppers' directories made by prepareRunDir: those the command left
 * untouched and empty go (files/ holds only what it wrote), the others get back the
 * host's mode, which the record keeps (and which lets the uppers be moved). */
async function settleUpperDirs(plan: SandboxPlan): Promise<void> {
  const restore = async (dir: string, viewMode: number, hostMode: number) => {
    if (viewMode === hostMode) return;
    const st = await fs.lstat(dir);
    if ((st.mode & 0o7777) === viewMode) await fs.chmod(dir, hostMode);
  };
  for (const layer of plan.overlays) {
    for (const d of [...(layer.upperDirs ?? [])].reverse()) {
      try {
        const st = await fs.lstat(d.path);
        const untouched = (st.mode & 0o7777) === d.mode && Math.abs(st.mtimeMs / 1000 - d.mtime) < 1e-3;
        if (untouched && (await fs.readdir(d.path)).length === 0) {
          const parent = path.dirname(d.path);
          const pst = await fs.lstat(parent);
          await fs.chmod(parent, (pst.mode & 0o7777) | 0o300);
          try {
            await fs.rmdir(d.path);
          } finally {
            await fs.chmod(parent, pst.mode & 0o7777);
            await fs.utimes(parent, pst.atime, pst.mtime);
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

/** Removes the whiteouts prepareRunDir made that are still there (a command that made
 * and removed a directory of that name left a whiteout of its own, which is kept), and
 * gives their directories back the times they had. */
async function dropWhiteouts(made: Map<string, string>): Promise<void> {
  for (const [w, id] of made) {
    const st = await fs.lstat(w, { bigint: true }).catch(() => undefined);
    if (!st || identity(st) !== id) continue;
    const dir = path.dirname(w);
    const parent = await fs.lstat(dir);
    // the directory may deny its owner writes (the caller's rights on the host)
    await fs.chmod(dir, (parent.mode & 0o7777) | 0o300);
    try {
      await fs.unlink(w);
    } finally {
      await fs.chmod(dir, parent.mode & 0o7777);
      await fs.utimes(dir, parent.atime, parent.mtime);
    }
  }
}

function identity(st: BigIntStats): string {
  return `${st.ino}:${st.ctimeNs}`;
}

async function cleanRunDir(plan: SandboxPlan): Promise<void> {
  // independent trees: removed concurrently (the libuv pool overlaps their syscalls)
  await Promise.all([
    ...plan.overlays.map((layer) => removeTree(path.dirname(layer.work))),
    fs.rm(plan.newRoot, { recursive: true, force: true }),
  ]);
}

/** The plan uwrx-init will execute for these options (also what `uwrx run --dry-run` prints). */
export function planFor(options: SandboxOptions): SandboxPlan {
  return computePlan({
    argv: options.argv,
    cwd: options.cwd,
    env: options.env,
    runDir: options.runDir,
    hide: options.hide,
    uid: process.getuid!(),
    gid: process.getgid!(),
    ...(options.handlerThreads !== undefined ? { handlerThreads: options.handlerThreads } : {}),
    ...(options.lingerMs !== undefined ? { lingerMs: options.lingerMs } : {}),
    ...(options.repro ? { repro: options.repro } : {}),
    parents: parentStores(options.attemptDir),
    ptys: hostPtys(),
  });
}
