// Starts uwrx-init with the plan and follows the sandbox until every process ended.
// uwrx-init's messages go to the listeners and request handlers the run registered
// (the run features'); only the sandbox's own life cycle (started, done, failed) is
// handled here.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { SocketTransport, type Envelope } from '../actors/transport.js';
import { EnvironmentError } from '../errors.js';
import { removeTree } from '../fs.js';
import { helperPath, native } from '../native.js';
import { MSG_DONE, MSG_FAILED, MSG_PLAN, MSG_STARTED, MSG_TERMINATE, type DoneBody } from '../protocol/init-messages.js';
import { computePlan, parentStores, prepareParentLayers, type SandboxPlan } from './plan.js';
import { writeCombinedLdso } from '../reproducibility/ldso-combine.js';
import type { Sandbox, SandboxOptions, SandboxOutcome } from './index.js';
import { timing } from '../timing.js';

export function launchSandbox(options: SandboxOptions): Sandbox {
  let child: ChildProcess | undefined;
  let transport: SocketTransport | undefined;
  let interrupted = false;
  let pendingGrace: number | undefined;
  let cleaning: Promise<void> | undefined;

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

  const done = (async (): Promise<SandboxOutcome> => {
    const plan = planFor(options);
    await prepareRunDir(plan);
    timing('sandbox plan computed, run directory prepared');

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
    const listeners = options.on ?? {};
    const requests = options.requests ?? {};
    transport.onMessage((m: Envelope) => {
      if (m.id !== undefined && requests[m.type]) {
        void answer(transport!, m, requests[m.type]!);
        return;
      }
      const listener = listeners[m.type];
      if (listener) {
        listener(m.body);
        return;
      }
      switch (m.type) {
        case MSG_DONE:
          outcome = m.body as DoneBody;
          break;
        case MSG_FAILED:
          failure = m.error ?? 'sandbox setup failed';
          break;
        case MSG_STARTED:
          timing('uwrx-init started the command');
          break;
        default:
          // A message nobody handles means Node and uwrx-init disagree on the protocol.
          failure ??= `uwrx-init sent an unknown message "${m.type}"`;
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
    // The mounts are gone with uwrx-init: what is not the record goes now, while the
    // record's writer takes the uppers.
    cleaning = removeScaffolding(plan);
    if (failure) throw new EnvironmentError(`sandbox: ${failure}`);
    const left = { overlays: plan.overlays, ...(plan.init.files ? { files: plan.init.files } : {}) };
    if (!outcome) {
      // uwrx-init did not finish (killed): the tree is gone with its pid namespace
      return { status: code ?? 128 + (signal ? signalNumber(signal) : 9), exitCode: null, signal: null, incomplete: true, ...left };
    }
    return { status: outcome.status, exitCode: outcome.code, signal: outcome.signal, incomplete: interrupted, ...left };
  })();

  return {
    done,
    async cleanup() {
      await cleaning;
      await removeTree(options.runDir);
      timing('run directory cleaned');
    },
    terminate(graceMs = 3000) {
      interrupted = true;
      sendTerminate(graceMs);
    },
  };
}

/** Answers a request of uwrx-init with its handler's result (or error). */
async function answer(transport: SocketTransport, m: Envelope, handler: (body: any) => unknown): Promise<void> {
  let reply: Envelope;
  try {
    const body = await handler(m.body);
    reply = body === undefined ? { type: m.type, re: m.id! } : { type: m.type, re: m.id!, body };
  } catch (err) {
    reply = { type: m.type, re: m.id!, error: err instanceof Error ? err.message : String(err) };
  }
  try {
    transport.send(reply);
  } catch {
    // uwrx-init is gone: nobody waits for the answer any more
  }
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
    const dirs = layer.upperDirs ?? [];
    for (const d of dirs) await fs.mkdir(d.path, { recursive: true });
    // modes last, deepest first: a directory may deny its owner the writes made above
    for (const d of [...dirs].reverse()) {
      await fs.chmod(d.path, d.mode);
      await fs.utimes(d.path, d.atime, d.mtime);
    }
    // the upper's root directory gives the mount point its owner and mode
    await fs.chmod(layer.upper, layer.mode);
    if (root) {
      const st = await fs.stat(layer.mountPoint);
      await fs.chown(layer.upper, st.uid, st.gid);
    }
  }
}

/** The sandbox's root and the overlays' work directories; the uppers stay for the
 * record. Concurrently: the libuv pool overlaps their syscalls. */
async function removeScaffolding(plan: SandboxPlan): Promise<void> {
  await Promise.all([
    ...plan.overlays.map((layer) => removeTree(layer.work)),
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
    ...(options.handlerThreads !== undefined ? { handlerThreads: options.handlerThreads } : {}),
    ...(options.repro ? { repro: options.repro } : {}),
    ...(options.tracesDir ? { tracesDir: options.tracesDir } : {}),
    parents: parentStores(options.attemptDir),
  });
}
