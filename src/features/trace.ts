// Trace: uwrx-init writes each process's events into a buffer in <runDir>/traces; the
// collector drains them while the run goes on and the merger writes `perfetto` once
// the tree has ended. Unreadable buffers count as problems of the run.
import path from 'node:path';
import { traceActorSpecs, type TraceFinishStats } from '../actors/collector.js';
import { COLLECTOR_MESSAGES } from '../protocol/trace-messages.js';
import { makeTracesDir } from '../record/traces-dir.js';
import { timing } from '../timing.js';
import { defineFeature } from './feature.js';

/** Longest the trace pipeline may take to drain and write `perfetto` after the tree ended. */
const FINISH_TIMEOUT_MS = 10 * 60 * 1000;

export default defineFeature({
  name: 'trace',
  // the network's actors close their trace files when they finish
  finishAfter: ['network'],
  create() {
    let fileCalls: { inProcess: number; notified: number } | undefined;
    let notifications: Record<string, number> | undefined;
    let notificationUs: Record<string, number> | undefined;
    let cpuUs: { command: number; init: number } | undefined;
    let tracesDir: string | undefined;
    return {
      async record(run) {
        tracesDir = await makeTracesDir(run.runDir);
      },
      // the real directory: uwrx-init opens it after its mounts have changed
      plan: (run) => ({ tracesDir: tracesDir ?? path.join(run.runDir, 'traces') }),
      actors: (run) => traceActorSpecs({ runDir: run.runDir, attemptDir: run.paths.attemptDir }),
      async finish(run, { sandbox, actorFailure }) {
        // A failed actor means a stopped pipeline: there is nothing to finish.
        if (actorFailure) return;
        const stats = await run.supervisor.request<TraceFinishStats>('collector', COLLECTOR_MESSAGES.finish, undefined, {
          timeoutMs: FINISH_TIMEOUT_MS,
        });
        // where the file calls were answered: in process (--fast-path) or notified
        if (sandbox.fileNotifications !== undefined) {
          fileCalls = { inProcess: stats.collector.recorder?.fast ?? 0, notified: sandbox.fileNotifications };
        }
        notifications = sandbox.notifications;
        notificationUs = sandbox.notificationUs;
        cpuUs = sandbox.cpuUs;
        const errors = [...stats.collector.errors, ...((stats.merger as { errors?: string[] }).errors ?? [])];
        if (errors.length > 0) run.problem({ kind: 'trace', count: errors.length, detail: errors[0] });
        timing('trace merged (perfetto written)');
      },
      status: () => ({
        ...(fileCalls ? { fileCalls } : {}),
        ...(notifications ? { notifications } : {}),
        ...(notificationUs ? { notificationUs } : {}),
        ...(cpuUs ? { cpuMs: cpuMs(cpuUs) } : {}),
      }),
    };
  },
});

/** Where a run's CPU time went, milliseconds of user and system time: the command's
 * processes, uwrx-init, and this process (Node's start-up, the actors' threads and the
 * record's writing, up to the status). */
function cpuMs(cpuUs: { command: number; init: number }): { command: number; init: number; supervisor: number } {
  const own = process.cpuUsage();
  const ms = (us: number) => Math.round(us / 100) / 10;
  return { command: ms(cpuUs.command), init: ms(cpuUs.init), supervisor: ms(own.user + own.system) };
}
