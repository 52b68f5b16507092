// Starts uwrx-init with the plan and follows the sandbox until every process ended.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
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
import { computePlan, parentStores, prepareParentLayers, type SandboxPlan } from './plan.js';
import { writeCombinedLdso } from '../reproducibility/ldso-combine.js';
import { ProcessTable } from './process-table.js';
import type { Sandbox, SandboxEvent, SandboxOptions, SandboxResult } from './index.js';

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
    await prepareRunDir(plan);
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

    const filesDir = await collectUppers(plan.overlays, options.attemptDir);
    if (plan.init.files) await collectFileRecord(plan.init.files, options.attemptDir);
    await table.write(options.attemptDir);
    await cleanRunDir(plan);
    if (failure) throw new EnvironmentError(`sandbox: ${failure}`);
    const filesWritten = await countRegularFiles(filesDir);
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
      incomplete: interrupted,
      processes: table.size,
      filesWritten,
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

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 9;
}

async function prepareRunDir(plan: SandboxPlan): Promise<void> {
  await fs.mkdir(plan.newRoot, { recursive: true });
  if (plan.ldso) await writeCombinedLdso(plan.ldso.real, plan.ldso.combined);
  prepareParentLayers(plan);
  const root = process.getuid!() === 0;
  for (const layer of plan.overlays) {
    await fs.mkdir(layer.upper, { recursive: true });
    await fs.mkdir(layer.work, { recursive: true });
    // the upper's root directory gives the mount point its owner and mode
    const st = await fs.stat(layer.mountPoint);
    await fs.chmod(layer.upper, st.mode & 0o7777);
    if (root) await fs.chown(layer.upper, st.uid, st.gid);
  }
}

async function cleanRunDir(plan: SandboxPlan): Promise<void> {
  for (const layer of plan.overlays) await removeTree(path.dirname(layer.work));
  await fs.rm(plan.newRoot, { recursive: true, force: true });
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
    ...(options.repro ? { repro: options.repro } : {}),
    parents: parentStores(options.attemptDir),
  });
}
