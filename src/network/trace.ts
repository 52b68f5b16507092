// Trace events of the network actors (dns, connect, download, git), written into the run's
// traces/ directory like a process's, through the addon's writer. Each actor has a file
// of its own, named by a number no process gets (logical pids start at 2); the events
// carry the pid of the process they belong to (1, uwrx itself, when unknown).
import path from 'node:path';
import { native } from '../native.js';
import { encodeEvent, type TraceEvent } from '../protocol/events.js';

const CLOCK_BOOTTIME = 7;
/** traces/<n> file of each actor. */
const FILES = { dns: 0, proxy: 1 } as const;

interface TraceAddon {
  traceWriterOpen(tracesDir: string, pid: number, backlogMax?: number): object;
  traceWriterAppend(writer: object, record: Buffer): void;
  traceWriterClose(writer: object, ended: boolean): void;
  clockNs(id: number): number;
}

export class NetTrace {
  private writer: object | undefined;
  private readonly addon = native() as unknown as TraceAddon;

  constructor(tracesDir: string, actor: keyof typeof FILES) {
    this.writer = this.addon.traceWriterOpen(path.resolve(tracesDir), FILES[actor], 0);
  }

  now(): number {
    return this.addon.clockNs(CLOCK_BOOTTIME);
  }

  private write(event: TraceEvent): void {
    if (!this.writer) return;
    try {
      this.addon.traceWriterAppend(this.writer, encodeEvent(event));
    } catch {
      // a full or closed buffer loses this event only
    }
  }

  /** One lookup, on the track of the process that asked (`pid`), stamped `time` (from
   * now()): the answer goes out first, the event when its owner is known. */
  dns(pid: number, time: number, qtype: number, rcode: number, name: string, answers: string): void {
    this.write({ type: 'dns', pid, tid: pid, time, qtype, rcode, name: Buffer.from(name), answers: Buffer.from(answers) });
  }

  /** One HTTP exchange, stamped when it ended: status (or -1: failed), response bytes,
   * the URL and where a GET body was saved (relative to net/). */
  exchange(pid: number, status: number, size: number, url: string, saved: string): void {
    this.write({ type: 'download', pid, tid: pid, time: this.now(), status, size, url: Buffer.from(url), path: Buffer.from(saved) });
  }

  /** One git operation (src/network/git.ts): status 0, or -1 when refused. */
  git(pid: number, status: number, bytes: number, service: string, url: string, request: string, wants: string[]): void {
    this.write({ type: 'git', pid, tid: pid, time: this.now(), status, bytes, service: Buffer.from(service), url: Buffer.from(url), request: Buffer.from(request), wants: Buffer.from(wants.join(' ')) });
  }

  close(): void {
    if (!this.writer) return;
    const w = this.writer;
    this.writer = undefined;
    try {
      this.addon.traceWriterClose(w, true);
    } catch {
      // already closed
    }
  }
}
