// Progress of a long run, shown in the terminal's title: processes running, done and
// failed, bytes of trace recorded, time. The command's own output goes straight to the
// terminal, so a line drawn among it would mix with its lines; the title never does.
// The title from before the run is pushed on the terminal's title stack and restored at
// the end (on every way out: the run ending, a signal, an error).
//
// It is a run feature like any other (src/features/feature.ts): it listens to uwrx-init's
// spawn and exit messages and asks the collector how much it has read.
import { defineFeature, type RunFeature } from '../features/feature.js';
import { MSG_EXIT, MSG_SPAWN, type ExitBody, type SpawnBody } from '../protocol/init-messages.js';
import { COLLECTOR_MESSAGES, type TraceProgress } from '../protocol/trace-messages.js';

export interface ProgressCounts {
  running: number;
  done: number;
  failed: number;
  /** Bytes of trace events recorded so far; undefined while unknown. */
  bytes: number | undefined;
  elapsedMs: number;
}

/** The status text for some counts (also what tests compare). */
export function formatProgress(c: ProgressCounts): string {
  const parts = [`${c.running} running`, `${c.done} done`, `${c.failed} failed`];
  if (c.bytes !== undefined) parts.push(`${formatBytes(c.bytes)} recorded`);
  parts.push(`${Math.floor(c.elapsedMs / 1000)} s`);
  return `uwrx: ${parts.join(', ')}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const PUSH_TITLE = '\x1b[22;0t';
const POP_TITLE = '\x1b[23;0t';
const title = (text: string): string => `\x1b]2;${text.replace(/[\x00-\x1f\x7f]/g, ' ')}\x07`;

/** Process events of a run, in the shape both the CLI and the run features see them. */
export type ProgressEvent =
  | { type: 'spawn'; pid: number }
  | { type: 'exit'; pid: number; exitCode: number | null; signal: number | null };

export class Progress {
  private readonly live = new Set<number>();
  private done = 0;
  private failed = 0;
  private bytes: number | undefined;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private shown = '';
  private active = false;

  /** `out`: the terminal (stderr). `intervalMs`: how often the title is redrawn. */
  constructor(
    private readonly out: NodeJS.WritableStream & { fd?: number },
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    if (this.active) return;
    this.active = true;
    this.out.write(PUSH_TITLE);
    this.draw();
    this.timer = setInterval(() => this.draw(), this.intervalMs);
    this.timer.unref();
  }

  event(e: ProgressEvent): void {
    if (e.type === 'spawn') {
      this.live.add(e.pid);
      return;
    }
    this.live.delete(e.pid);
    this.done++;
    if (e.signal !== null || (e.exitCode !== null && e.exitCode !== 0)) this.failed++;
  }

  setBytes(bytes: number): void {
    this.bytes = bytes;
  }

  counts(): ProgressCounts {
    return { running: this.live.size, done: this.done, failed: this.failed, bytes: this.bytes, elapsedMs: Date.now() - this.started };
  }

  private draw(): void {
    const text = formatProgress(this.counts());
    if (text === this.shown) return;
    this.shown = text;
    this.out.write(title(text));
  }

  /** Gives the terminal its title back. Safe to call more than once. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    this.out.write(POP_TITLE);
  }
}

/** How often the collector is asked for the bytes recorded. */
const POLL_MS = 500;

/** The progress display as a run feature drawing on `out`; `stop` gives the title back
 * and may be called from any way out of the run (it is also called when the run ends). */
export function progressFeature(out: NodeJS.WritableStream): { feature: RunFeature; stop: () => void } {
  const progress = new Progress(out);
  let poll: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (poll) clearInterval(poll);
    progress.stop();
  };
  const feature = defineFeature({
    name: 'progress',
    create: () => ({
      record(run) {
        progress.start();
        let asking = false;
        poll = setInterval(() => {
          if (asking || !run.supervisor.live.includes('collector')) return;
          asking = true;
          run.supervisor
            .request<TraceProgress>('collector', COLLECTOR_MESSAGES.progress, undefined, { timeoutMs: 2000 })
            .then((p) => progress.setBytes(p.bytes), () => undefined)
            .finally(() => (asking = false));
        }, POLL_MS);
        poll.unref();
      },
      on: {
        [MSG_SPAWN]: (b: SpawnBody) => progress.event({ type: 'spawn', pid: b.pid }),
        [MSG_EXIT]: (b: ExitBody) => progress.event({ type: 'exit', pid: b.pid, exitCode: b.code, signal: b.signal }),
      },
      finish: stop,
    }),
  });
  return { feature, stop };
}
