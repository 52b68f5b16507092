// Collector: drains the per-process trace buffers in <runDir>/traces/ while the run goes
// on, so tmp use stays bounded however much a process writes.
//
// A live process's file is only final before its mapped window (size - 1 MiB): read that
// far and punch holes behind what was read. An ended process's file (renamed <pid>.ended
// by the writer, reported through processEnded(), or found dead by isAlive) is read to the
// end and deleted. Complete records go to the sink (the merger) in file order, undecoded:
// finding record boundaries takes only their headers, so draining stays cheap whatever
// the merger costs.
import { closeSync, fstatSync, openSync, readSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { traceAddon } from '../native.js';
import { isErrno } from '../fs.js';
import { defineActor } from './actor.js';
import type { ActorSpec } from './supervisor.js';
import { EVENT_MAX_SIZE, TRACE_WINDOW_SIZE, scanRecords } from '../protocol/events.js';
import { COLLECTOR_MESSAGES, MERGER_MESSAGES, type AdvanceBody, type RecordsBody, type TraceProgress } from '../protocol/trace-messages.js';

export interface EventSink {
  /** Complete records (events.ts layout) of process `pid`'s buffer, in file order. */
  records(pid: number, bytes: Buffer): void;
  /** No event at or before this time (ns) is still to come from a live process read so far. */
  advance(watermark: number): void;
}

export interface CollectorOptions {
  /** The run's private directory; buffers are in <runDir>/traces/. */
  runDir: string;
  sink: EventSink;
  /** Liveness of a process by the pid its file is named after. Default: alive until its
   * file is renamed <pid>.ended or processEnded() is called (logical pids are not host
   * pids). killProbe suits writers whose file names are host pids. */
  isAlive?: (pid: number) => boolean;
  /** Period of the background scan started by start(). */
  intervalMs?: number;
  /** Punch holes (default); off only to measure what it saves. */
  punch?: boolean;
}

export interface CollectorStats {
  scans: number;
  events: number;
  bytesRead: number;
  filesDone: number;
  /** Problems found in buffers (a malformed record ends that file's reading). */
  errors: string[];
}

interface Buffered {
  pid: number;
  name: string;
  fd: number;
  readOff: number;
  punchedTo: number;
  ended: boolean;
  lastTime: number;
  broken: boolean;
}

const ENDED_SUFFIX = '.ended';
const PAGE = 4096;
const READ_CHUNK = 4 << 20;

/** kill(pid, 0): the process exists (EPERM counts as existing). */
export function killProbe(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

export class Collector {
  readonly dir: string;
  private readonly files = new Map<number, Buffered>();
  private readonly endedPids = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private maxTime = 0;
  readonly stats: CollectorStats = { scans: 0, events: 0, bytesRead: 0, filesDone: 0, errors: [] };

  constructor(private readonly options: CollectorOptions) {
    this.dir = path.join(options.runDir, 'traces');
  }

  /** The sandbox saw process `pid` end: its buffer is complete once its writer closed it. */
  processEnded(pid: number): void {
    this.endedPids.add(pid);
    const f = this.files.get(pid);
    if (f) f.ended = true;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.scan(), this.options.intervalMs ?? 20);
  }

  /** Stops scanning, drains every buffer as ended (the run is over) and deletes them. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.scan(true);
  }

  /** One pass over traces/; returns the number of events handed to the sink. */
  scan(final = false): number {
    this.stats.scans++;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return 0;
      throw err;
    }
    for (const name of names) this.track(name);
    let count = 0;
    for (const f of [...this.files.values()].sort((a, b) => a.pid - b.pid)) {
      if (!f.ended && (final || this.endedPids.has(f.pid) || !(this.options.isAlive?.(f.pid) ?? true))) f.ended = true;
      count += this.drain(f);
    }
    let watermark = Infinity;
    for (const f of this.files.values()) if (!f.ended && f.lastTime > 0) watermark = Math.min(watermark, f.lastTime);
    this.options.sink.advance(watermark === Infinity ? this.maxTime : watermark);
    return count;
  }

  private track(name: string): void {
    const ended = name.endsWith(ENDED_SUFFIX);
    const base = ended ? name.slice(0, -ENDED_SUFFIX.length) : name;
    if (!/^[0-9]+$/.test(base)) return;
    const pid = Number(base);
    const known = this.files.get(pid);
    if (known) {
      if (ended) {
        known.ended = true;
        known.name = name;
      }
      return;
    }
    let fd: number;
    try {
      fd = openSync(path.join(this.dir, name), 'r+');
    } catch (err) {
      // Renamed between readdir and open: the next scan finds the new name.
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    this.files.set(pid, { pid, name, fd, readOff: 0, punchedTo: 0, ended, lastTime: 0, broken: false });
  }

  private drain(f: Buffered): number {
    const size = fstatSync(f.fd).size;
    const limit = f.ended ? size : size - TRACE_WINDOW_SIZE;
    let count = 0;
    let atEnd = false;
    while (!f.broken && f.readOff < limit) {
      const want = Math.min(limit - f.readOff, READ_CHUNK);
      // A fresh buffer per read, never from the shared pool: the sink may keep it or
      // transfer its ArrayBuffer to another thread.
      const buf = Buffer.allocUnsafeSlow(want);
      const got = readSync(f.fd, buf, 0, want, f.readOff);
      if (got <= 0) break;
      const result = scanRecords(buf, 0, got);
      if (result.count > 0) {
        f.lastTime = result.lastTime;
        this.maxTime = Math.max(this.maxTime, f.lastTime);
        this.options.sink.records(f.pid, buf.subarray(0, result.next));
        count += result.count;
      }
      this.stats.bytesRead += result.next;
      f.readOff += result.next;
      if (result.bad) {
        this.stats.errors.push(`traces/${f.name}: ${result.bad.replace(/offset (\d+)/, (_, n: string) => `offset ${f.readOff - result.next + Number(n)}`)}`);
        f.broken = true;
        break;
      }
      if (result.atEnd) {
        atEnd = true;
        break;
      }
      // A record cut by the read limit: wait for more, unless it cannot be a record.
      if (result.next === 0) {
        if (got >= EVENT_MAX_SIZE || f.ended) {
          this.stats.errors.push(`traces/${f.name}: no complete record at offset ${f.readOff}`);
          f.broken = true;
        }
        break;
      }
    }
    this.stats.events += count;
    if (f.ended && (atEnd || f.readOff >= limit || f.broken)) this.finishFile(f);
    else if (this.options.punch !== false) this.punch(f, Math.min(f.readOff, Math.max(limit, 0)));
    return count;
  }

  private punch(f: Buffered, upTo: number): void {
    const to = Math.floor(upTo / PAGE) * PAGE;
    if (to <= f.punchedTo) return;
    traceAddon().punchHole(f.fd, f.punchedTo, to - f.punchedTo);
    f.punchedTo = to;
  }

  private finishFile(f: Buffered): void {
    closeSync(f.fd);
    try {
      unlinkSync(path.join(this.dir, f.name));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      // Renamed to .ended after we last listed the directory.
      try {
        unlinkSync(path.join(this.dir, `${f.pid}${ENDED_SUFFIX}`));
      } catch {
        /* already gone */
      }
    }
    this.files.delete(f.pid);
    this.stats.filesDone++;
  }
}

// ---- The collector as an actor (worker thread) -----------------------------------------

export interface CollectorActorOptions {
  runDir: string;
  intervalMs?: number;
  /** Probe liveness with kill(pid, 0): only when buffer names are host pids. */
  killProbe?: boolean;
}

/** What the collector's finish request answers. */
export interface TraceFinishStats {
  collector: CollectorStats;
  merger: unknown;
}

export default defineActor<CollectorActorOptions>('collector', (ctx) => {
  const merger = ctx.peer('merger');
  const collector = new Collector({
    runDir: ctx.options.runDir,
    intervalMs: ctx.options.intervalMs,
    isAlive: ctx.options.killProbe ? killProbe : undefined,
    sink: {
      // The read buffer is the collector's own (allocUnsafeSlow): moved, not copied.
      records: (pid, bytes) => merger.notify(MERGER_MESSAGES.records, { pid, bytes } satisfies RecordsBody, [bytes.buffer as ArrayBuffer]),
      advance: (watermark) =>
        merger.notify(MERGER_MESSAGES.advance, { watermark: Number.isFinite(watermark) ? watermark : null } satisfies AdvanceBody),
    },
  });
  collector.start();
  return {
    handlers: {
      [COLLECTOR_MESSAGES.processEnded]: (body: { pid: number }) => collector.processEnded(body.pid),
      [COLLECTOR_MESSAGES.progress]: (): TraceProgress => ({ events: collector.stats.events, bytes: collector.stats.bytesRead }),
      [COLLECTOR_MESSAGES.finish]: async (): Promise<TraceFinishStats> => {
        collector.stop();
        // Generous: merging a long run's backlog can take a while.
        const merged = await merger.request(MERGER_MESSAGES.finish, undefined, { timeoutMs: 600_000 });
        return { collector: collector.stats, merger: merged };
      },
    },
    stop() {
      collector.stop();
    },
  };
});

/**
 * The two actors of the trace pipeline, for Supervisor.start (merger first: the collector
 * links to it). When the run's processes are done: request COLLECTOR_MESSAGES.finish
 * from 'collector'; it answers { collector, merger } stats once `perfetto` is written.
 */
export function traceActorSpecs(options: { runDir: string; attemptDir: string; intervalMs?: number; killProbe?: boolean }): ActorSpec[] {
  return [
    { name: 'merger', module: new URL('./merger.js', import.meta.url), options: { output: path.join(options.attemptDir, 'perfetto') } },
    {
      name: 'collector',
      module: new URL('./collector.js', import.meta.url),
      options: { runDir: options.runDir, intervalMs: options.intervalMs, killProbe: options.killProbe },
      connect: ['merger'],
    },
  ];
}
