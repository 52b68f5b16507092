// Starts uwrx-init with the plan and follows the sandbox until every process ended.
// uwrx-init's messages go to the listeners and request handlers the run registered
// (the run features'); only the sandbox's own life cycle (started, done, failed) is
// handled here.
import { chmodSync, lstatSync, unlinkSync, writeFileSync, type BigIntStats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InitBridge } from '../actors/init-bridge.js';
import { SocketTransport } from '../actors/transport.js';
import { EnvironmentError } from '../errors.js';
import { DirCalls, removeTree } from '../fs.js';
import { tracesOutside } from '../record/traces-dir.js';
import { helperPath, native } from '../native.js';
import {
  MSG_DONE,
  MSG_FAILED,
  MSG_NET_FD,
  MSG_PLAN,
  MSG_STARTED,
  MSG_STATS,
  MSG_TERMINATE,
  MSG_TEST_DEFER,
  type DoneBody,
  type FailedBody,
  type NetFdBody,
  type StatsBody,
  type TestDeferBody,
} from '../protocol/init-messages.js';
import { computePlan, parentStores, prepareParentLayers, type SandboxPlan } from './plan.js';
import { writeCombinedLdso } from '../reproducibility/ldso-combine.js';
import { PRELOAD_LIST } from '../reproducibility/recorder.js';
import type { Sandbox, SandboxOptions, SandboxOutcome } from './index.js';
import { timing } from '../timing.js';
import { HelperProcess, type HelperSlot } from './helper-process.js';
import { removeRunDir } from './run-dir-removal.js';

export function launchSandbox(options: SandboxOptions): Sandbox {
  let child: HelperProcess | undefined;
  let bridge: InitBridge | undefined;
  let interrupted = false;
  let pendingGrace: number | undefined;

  /** uwrx-init has its plan: a terminate before that waits for it. */
  let planSent = false;
  const sendTerminate = (graceMs: number) => {
    if (!child || !planSent) {
      pendingGrace = graceMs;
      return;
    }
    try {
      bridge?.notify(MSG_TERMINATE, { graceMs });
    } catch {
      // channel already closed: the signal below still reaches uwrx-init
    }
    child.kill('SIGTERM');
    // uwrx-init kills the tree itself after graceMs; this is the backstop if it cannot
    setTimeout(() => child?.exitCode === null && child.kill('SIGKILL'), graceMs + 2000).unref();
  };

  const done = (async (): Promise<SandboxOutcome> => {
    const plan = planFor(options);
    timing('sandbox plan computed');
    // the run directory is made on the thread pool while uwrx-init is spawned, which
    // waits for the plan sent once both are done
    const runDirMade = prepareRunDir(plan);
    runDirMade.catch(() => undefined);

    const [ours, theirs] = native().socketPair();
    // network sockets come on a socket of their own: fds need SOCK_SEQPACKET + SCM_RIGHTS
    const [netOurs, netTheirs] = options.network ? native().seqpacketPair() : [-1, -1];
    const { stdio, args } = initStdio(options.passFds ?? [], theirs, netTheirs);
    try {
      child = new HelperProcess(helperPath('uwrx-init'), args, stdio, '/');
    } catch (err) {
      native().closeFd(ours);
      if (netOurs >= 0) native().closeFd(netOurs);
      throw err instanceof EnvironmentError ? err : new EnvironmentError(`uwrx-init could not be started: ${(err as Error).message}`);
    } finally {
      native().closeFd(theirs);
      if (netTheirs >= 0) native().closeFd(netTheirs);
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child!.on('error', reject);
      child!.on('exit', (code, signal) => resolve({ code, signal }));
    });
    exited.catch(() => undefined);
    const netFds = new Map<number, number>();
    /** The fd uwrx-init sent with `id` (queued before the message naming it), added to
     * the message as `fd` for its listener. */
    const withFd = (b: NetFdBody): NetFdBody => {
      for (;;) {
        const fd = netFds.get(b.id);
        if (fd !== undefined) {
          netFds.delete(b.id);
          return { ...b, fd };
        }
        const got = netOurs >= 0 ? native().recvFd(netOurs) : null;
        if (!got) return b;
        netFds.set(got.id, got.fd);
      }
    };
    const transport = SocketTransport.fromFd(ours);
    const socket = transport.socket;
    bridge = new InitBridge(transport);
    let failure: string | undefined;
    let outcome: DoneBody | undefined;
    let doneReceived!: () => void;
    const doneMessage = new Promise<void>((resolve) => (doneReceived = resolve));
    for (const [type, listener] of Object.entries(options.on ?? {})) {
      bridge.on(type, type === MSG_NET_FD ? (b: NetFdBody) => listener(withFd(b)) : listener);
    }
    for (const [type, handler] of Object.entries(options.requests ?? {})) bridge.handle(type, handler);
    bridge
      .on(MSG_DONE, (b: DoneBody) => {
        outcome = b;
        doneReceived();
        if (plan.init.testDeferral && b.deferred) {
          const d = b.deferred;
          process.stderr.write(`uwrx: deferred answers: ${d.open} open, ${d.answered} answered, ${d.dropped} dropped\n`);
        }
      })
      .on(MSG_FAILED, (b: FailedBody) => (failure = b.message || 'sandbox setup failed'))
      .on(MSG_STARTED, () => timing('uwrx-init started the command'))
      // a message nobody handles means Node and uwrx-init disagree on the protocol
      .onError((err) => (failure ??= err.message));
    if (plan.init.testDeferral) serveDeferralTest(bridge);
    if (child.pid !== undefined) options.onInitPid?.(child.pid);
    // the plan (some 17 KB of msgpack: a few ms of CPU) is encoded while the thread pool
    // makes the run directory, not after
    const planMessage = SocketTransport.encode({ type: MSG_PLAN, body: plan.init });
    let whiteouts: Map<string, string>;
    try {
      whiteouts = await runDirMade;
      await options.ready?.();
    } catch (err) {
      // uwrx-init, without a plan, goes with its channel
      socket.destroy();
      child.kill('SIGKILL');
      throw err;
    }
    timing('run directory prepared');
    // the actors' requests to uwrx-init (served once this resolves) come after the plan
    options.onInitBridge?.(bridge);
    // nothing went to uwrx-init before: the plan is its first message
    transport.sendEncoded(planMessage);
    planSent = true;
    if (pendingGrace !== undefined) sendTerminate(pendingGrace);
    options.onPlanSent?.();

    const closed = new Promise<void>((resolve) => bridge!.onClose(() => resolve()));
    // DONE is pid 1's last word: every process is gone and everything is written. Its
    // exit then tears the mount namespace down, which takes long for a big tree (each
    // overlay's dentries are freed and its upper filesystem synced: 0.5 s after a find
    // over /usr), and nothing of the record waits for it: it finishes on its own, also
    // after uwrx has exited.
    const exit = await Promise.race([doneMessage.then(() => undefined), Promise.all([exited, closed]).then(([e]) => e)]);
    if (exit === undefined) {
      child.unref();
      socket.destroy();
    }
    const { code, signal } = exit ?? { code: null, signal: null };
    if (netOurs >= 0) native().closeFd(netOurs);
    timing('uwrx-init exited');
    await dropWhiteouts(whiteouts);
    if (failure) throw new EnvironmentError(`sandbox: ${failure}`);
    const left = { overlays: plan.overlays, ...(plan.init.files ? { files: plan.init.files } : {}) };
    if (!outcome) {
      // uwrx-init did not finish (killed): the tree is gone with its pid namespace. Unless
      // the run was being stopped, that is a failure of its own, and the record says so
      // (not "interrupted": nobody interrupted it)
      const how = signal ? `killed by ${signal}` : `exit status ${code}`;
      return {
        status: code ?? 128 + (signal ? signalNumber(signal) : 9),
        exitCode: null,
        signal: null,
        incomplete: true,
        ...left,
        ...(interrupted ? {} : { problem: `uwrx-init ended without its final report (${how})` }),
      };
    }
    const lost = traceLoss(outcome, options.runDir);
    const terminated = lingering(outcome);
    return {
      status: outcome.status,
      exitCode: outcome.code,
      signal: outcome.signal,
      incomplete: interrupted || lost !== undefined,
      ...left,
      ...(outcome.fileNotifications !== undefined ? { fileNotifications: Number(outcome.fileNotifications) } : {}),
      ...(outcome.notifications !== undefined ? { notifications: numbersByName(outcome.notifications) } : {}),
      ...(outcome.notificationUs !== undefined ? { notificationUs: numbersByName(outcome.notificationUs) } : {}),
      ...(outcome.cpuUs !== undefined ? { cpuUs: { command: Number(outcome.cpuUs.command), init: Number(outcome.cpuUs.init) } } : {}),
      ...(outcome.newestFileNs !== undefined ? { newestFileNs: BigInt(outcome.newestFileNs) } : {}),
      ...(terminated ? { terminated } : {}),
      ...(lost ? { problem: lost } : {}),
    };
  })();

  return {
    done,
    // What is not the record goes once the record's writer took the uppers, without
    // waiting for the removal (src/sandbox/run-dir-removal.ts). (The mounts may still be
    // on their way out: removing what they name does not hinder that.)
    async cleanup() {
      // the trace buffers' directory (on /dev/shm: memory) goes before uwrx exits, on the
      // thread pool: not rmSync on this thread, which loads its own module first
      const traces = tracesOutside(options.runDir);
      const buffersGone = traces === undefined ? undefined : removeTree(traces);
      await Promise.all([buffersGone, removeRunDir(options.runDir)]);
      timing('run directory handed over for removal');
    },
    terminate(graceMs = 3000) {
      interrupted = true;
      sendTerminate(graceMs);
    },
    noteInterrupt() {
      interrupted = true;
    },
  };
}

/** uwrx-init's stdio and command line: the caller's 0-2; the descriptors passed to the
 * command at their own numbers (uwrx-init keeps them open, inheritable, for the command);
 * its control socket and, with the network, the socket network sockets come over, in
 * the lowest numbers from 3 left free (3 and 4 when nothing is passed; the lowest, not
 * above the passed ones, which may lie at the descriptor limit). */
function initStdio(passFds: number[], control: number, net: number): { stdio: HelperSlot[]; args: string[] } {
  const slots = new Map(passFds.map((fd) => [fd, fd]));
  const free = (from: number): number => {
    let fd = from;
    while (slots.has(fd)) fd++;
    return fd;
  };
  const controlFd = free(3);
  slots.set(controlFd, control);
  const netFd = net >= 0 ? free(controlFd + 1) : -1;
  if (net >= 0) slots.set(netFd, net);
  const stdio: HelperSlot[] = [0, 1, 2];
  const top = Math.max(...slots.keys());
  for (let fd = 3; fd <= top; fd++) stdio.push(slots.get(fd) ?? 'ignore');
  const args = passFds.length === 0 ? [] : ['--control-fd', String(controlFd), ...(net >= 0 ? ['--net-fd', String(netFd)] : [])];
  return { stdio, args };
}

/** The Node end of uwrx-init's deferral test feature (UWRX_TEST_DEFERRAL=1, for uwrx's
 * own tests): answers each deferred call `ms` later with its value plus 1000 times the
 * deferred answers uwrx-init holds at that moment (asked over the same channel), so a
 * test sees both directions work while the call waits. */
function serveDeferralTest(bridge: InitBridge): void {
  bridge.handle(MSG_TEST_DEFER, async (b: TestDeferBody) => {
    // unref: a caller killed meanwhile must not keep uwrx waiting for this timer
    await new Promise((resolve) => setTimeout(resolve, Number(b.ms)).unref());
    const stats = await bridge.request<StatsBody>(MSG_STATS);
    return { value: Number(b.value) + 1000 * Number(stats.deferred.open) };
  });
}

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 9;
}

/** Makes the run directory's tree; resolves with the whiteouts it made, each with its
 * identity (inode and change time). Its directories (a few hundred small calls: some 10
 * ms of ext4's inode allocation) are made in one thread-pool job, while the main thread
 * spawns uwrx-init; the combined ld.so is copied on the thread pool beside them. */
function prepareRunDir(plan: SandboxPlan): Promise<Map<string, string>> {
  const calls = new DirCalls().mkdir(plan.newRoot, { recursive: true });
  // the uppers' and work directories' parents once, then each directory by one mkdir
  for (const dir of new Set(plan.overlays.flatMap((o) => [path.dirname(o.upper), path.dirname(o.work)]))) {
    calls.mkdir(dir, { recursive: true });
  }
  for (const layer of plan.overlays) {
    calls.mkdir(layer.upper).mkdir(layer.work);
    const dirs = layer.upperDirs ?? [];
    for (const d of dirs) {
      calls.mkdir(d.path, { recursive: true });
      if (d.uid !== undefined && d.gid !== undefined) calls.chown(d.path, d.uid, d.gid);
    }
    for (const w of layer.whiteouts ?? []) calls.whiteout(w);
    // modes last, deepest first: a directory may deny its owner the writes made above
    for (const d of [...dirs].reverse()) calls.chmod(d.path, d.mode).utimes(d.path, d.atime, d.mtime);
    // the upper's root directory gives the mount point its owner and mode
    calls.chmod(layer.upper, layer.mode);
    if (layer.owner) calls.chown(layer.upper, layer.owner.uid, layer.owner.gid);
  }
  const made = calls.run();
  made.catch(() => undefined);
  // beside the job: the combined ld.so copied on the thread pool, the parents' layers
  // merged where too many for overlayfs (under the run directory's flat/, which the
  // job does not touch)
  let ldso: Promise<void> | undefined;
  if (plan.ldso) {
    const preload = plan.ldso.preload;
    if (preload) writeFileSync(preload.path, preload.content);
    ldso = writeCombinedLdso(plan.ldso.real, plan.ldso.combined, undefined, preload ? PRELOAD_LIST : undefined);
    ldso.catch(() => undefined);
  }
  prepareParentLayers(plan);
  return ldso ? Promise.all([made, ldso]).then(([whiteouts]) => whiteouts) : made;
}

/** Removes the whiteouts prepareRunDir made that are still there (a command that made
 * and removed a directory of that name left a whiteout of its own, which is kept), and
 * gives their directories back the times they had. */
async function dropWhiteouts(made: Map<string, string>): Promise<void> {
  // a few calls per whiteout (two in a run: the record's and the run directory's),
  // synchronous: through the thread pool they were some ten round trips before the finish
  for (const [w, id] of made) {
    let st: BigIntStats | undefined;
    try {
      st = lstatSync(w, { bigint: true });
    } catch {
      st = undefined;
    }
    if (!st || identity(st) !== id) continue;
    const dir = path.dirname(w);
    const parent = lstatSync(dir, { bigint: true });
    // the directory may deny its owner writes (the caller's rights on the host)
    const mode = Number(parent.mode & 0o7777n);
    chmodSync(dir, mode | 0o300);
    try {
      unlinkSync(w);
    } finally {
      chmodSync(dir, mode);
      native().setTimesNs(dir, parent.atimeNs, parent.mtimeNs);
    }
  }
}

function identity(st: BigIntStats): string {
  return `${st.ino}:${st.ctimeNs}`;
}

/** What the trace buffers could not hold, in one sentence (undefined: nothing lost). */
function traceLoss(outcome: DoneBody, runDir: string): string | undefined {
  const records = outcome.traceLostRecords ?? 0;
  const buffers = outcome.traceLostBuffers ?? 0;
  if (records === 0 && buffers === 0) return undefined;
  const why = outcome.traceErrno === os.constants.errno.ENOSPC ? 'no space left' : `errno ${outcome.traceErrno}`;
  const outside = tracesOutside(runDir);
  const what = [
    records ? `${records} trace record${records === 1 ? '' : 's'}` : '',
    buffers ? `the trace of ${buffers} process${buffers === 1 ? '' : 'es'}` : '',
  ].filter(Boolean).join(' and ');
  return outside
    ? `${why} on the filesystem of ${path.dirname(outside)} (trace buffers): ${what} lost`
    : `${why} on the filesystem of ${path.dirname(runDir)} (--tmp): ${what} lost`;
}

/** The processes terminated after the linger time. */
function lingering(outcome: DoneBody): SandboxOutcome['terminated'] {
  const processes = outcome.terminated ?? [];
  const count = outcome.terminatedCount ?? processes.length;
  return count === 0 ? undefined : { count, processes };
}

/** The plan uwrx-init will execute for these options (also what `uwrx run --dry-run` prints). */
export function planFor(options: SandboxOptions): SandboxPlan {
  const plan = computePlan({
    argv: options.argv,
    cwd: options.cwd,
    env: options.env,
    runDir: options.runDir,
    hide: options.hide,
    ...(options.handlerThreads !== undefined ? { handlerThreads: options.handlerThreads } : {}),
    ...(options.lingerMs !== undefined ? { lingerMs: options.lingerMs } : {}),
    ...(options.repro ? { repro: options.repro } : {}),
    ...(options.tracesDir ? { tracesDir: options.tracesDir } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.replayPids ? { replayPids: options.replayPids } : {}),
    ...(options.hostNewestNs !== undefined ? { hostNewestNs: options.hostNewestNs } : {}),
    ...(options.skippable ? { skippable: options.skippable } : {}),
    ...(options.rebuildWait ? { rebuildWait: true } : {}),
    ...(options.replayedDir ? { replayedDir: options.replayedDir } : {}),
    parents: parentStores(options.attemptDir),
  });
  // a test switch, deliberately not an option: it enables a feature only tests use
  if (process.env.UWRX_TEST_DEFERRAL === '1') plan.init.testDeferral = true;
  return plan;
}

/** DoneBody.notifications (or notificationUs) with every count a number (msgpack may
 * decode large ones as bigint), in descending order. */
function numbersByName(counts: Record<string, number | bigint>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([name, n]) => [name, Number(n)] as const).sort((a, b) => b[1] - a[1]));
}
