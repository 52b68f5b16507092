// Collector: drains the per-process trace buffers in <runDir>/traces/ while the run goes
// on, so tmp use stays bounded however much a process writes.
//
// A buffer file holds the process's records from TRACE_DATA_OFFSET on and, before them,
// the in-process recorder's region (its header at 0 says where its records end; a hole
// when the process records nothing in process): one file per process.
// A live process's records are only final before its mapped window (size - 1 MiB): read
// that far and punch holes behind what was read. An ended process's file (its end in the
// writer's buffer log, renamed <pid>.ended by the writer, reported through processEnded(),
// or found dead by isAlive) is read to the end and deleted. A buffer is named <pid>, or
// free.<n> when the log says pid took that pooled one. A buffer is opened only once it
// outlived a scan: most are taken whole once finished (takeFile). Complete records go to the sink (the merger) in file order, undecoded:
// finding record boundaries takes only their headers, so draining stays cheap whatever
// the merger costs.
import { actorModule } from './modules.js';
import { closeSync, fstatSync, openSync, readSync, statfsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { TAKE_GONE, TAKE_TOO_LARGE, traceAddon } from '../native.js';
import { isErrno } from '../fs.js';
import { IO_THREAD, defineActor } from './actor.js';
import { tuneCompiler } from './compiler-tuning.js';
import { rideWakeUps } from './wake-ups.js';
import type { ActorSpec } from './supervisor.js';
import { EVENT_MAX_SIZE, NO_TIME, REC_DATA_OFFSET, REC_MAGIC, TRACE_DATA_OFFSET, TRACE_LOG, TRACE_LOG_ENTRY, TRACE_POOL_PREFIX, TRACE_WINDOW_SIZE, scanRecords } from '../protocol/events.js';
import { COLLECTOR_MESSAGES, MERGER_MESSAGES, type AdvanceBody, type RecordsBody, type TraceProgress } from '../protocol/trace-messages.js';
import { monotonicMs } from '../monotonic.js';

export interface EventSink {
  /** Complete records (events.ts layout) of process `pid`'s buffer, in file order.
   * Records of buffers taken whole in one scan are views of one ArrayBuffer: a sink
   * that moves them (a transfer) does so at advance(), once the scan is over. */
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
  /** Period of the background scan started by start(); default: SCAN_MS, longer while
   * scans find nothing (SCAN_IDLE_MAX_MS). */
  intervalMs?: number;
  /** Punch holes (default); off only to measure what it saves. */
  punch?: boolean;
  /** How long a live buffer waits between looks (LIVE_POLL_MS): before its first, it is
   * not opened. 0: it is opened at the scan after the one that found it and looked at on
   * every scan from then on. */
  livePollMs?: number;
  /** Return finished buffers to uwrx-init's pool (tracebuf.h UWRX_TRACE_POOL_PREFIX)
   * instead of deleting them. Default: when the buffers are on a tmpfs, where deleting a
   * buffer frees its pages and a new one's are zeroed again on first touch. */
  pool?: boolean;
}

export interface CollectorStats {
  scans: number;
  events: number;
  bytesRead: number;
  filesDone: number;
  /** Finished buffers returned to uwrx-init's pool instead of deleted. */
  pooled: number;
  /** In-process recorder regions (the start of a buffer file): calls answered in process,
   * interposed calls sent down the notification path, records that did not fit. */
  recorder: { files: number; fast: number; slow: number; dropped: number };
  /** Problems found in buffers (a malformed record ends that file's reading). */
  errors: string[];
}

interface Buffered {
  pid: number;
  name: string;
  /** -1 for a buffer not opened: taken whole (takeFile) once finished, opened if it is
   * still live LIVE_POLL_MS after the scan that found it. */
  fd: number;
  /** When a scan found it, and when its size and recorder region were last looked at
   * (monotonicMs()): a live one is looked at again LIVE_POLL_MS later. */
  seenAt: number;
  lookedAt: number;
  /** stats.scans of the scan that found it. */
  seenScan: number;
  /** What this scan's takeFiles made of it (a finished buffer not opened): its parts, or
   * TAKE_GONE / TAKE_TOO_LARGE; undefined when not taken. */
  parts: [Buffer, Buffer | undefined] | number | undefined;
  readOff: number;
  punchedTo: number;
  ended: boolean;
  /** Its writer closed it (named <pid>.ended, or its end in the buffer log): final, and
   * fit for the pool. */
  closed: boolean;
  /** The pooled free.<n> it is (the log said pid took it); -1: named by its pid. */
  slot: number;
  lastTime: number;
  broken: boolean;
  /** This scan's pollBuffers of an open live buffer: its size and its recorder region's
   * committed end; -1: not polled (drain asks itself). */
  polledSize: number;
  polledRegion: number;
  /** The recorder region: next offset to read (from REC_DATA_OFFSET), holes punched up
   * to, and a malformed record found (the records after it are not read). */
  recOff: number;
  recPunchedTo: number;
  recBroken: boolean;
}

/** The scan period while scans find records. */
const SCAN_MS = 20;
/** The longest period, reached by doubling while scans find none: a scan that finds
 * nothing still lists the directory, reads the buffer log and polls the live buffers
 * (some 0.35 ms of CPU on a loaded machine: 18 ms a second at 20 ms, as much as the rest
 * of the io thread's work in a build whose compiles write few records), and the records
 * of a compile are read a MiB at a time, so most scans while one runs find none. The
 * first scan that finds records goes back to SCAN_MS. */
const SCAN_IDLE_MAX_MS = 100;
/** How often a live buffer is looked at (its size, its recorder region's end), and how
 * long one found live waits before it is opened: most processes of a build live less (a
 * buffer taken whole once finished costs one call among many, one opened costs an open,
 * fstats, reads, a close and an unlink), and a compile's records are read a MiB at a
 * time, so most looks at a live buffer find nothing. Two system calls a live buffer at
 * every scan were most of a scan's work while compiles ran. A writer's records past its
 * window wait at most this long to be read and punched. */
const LIVE_POLL_MS = 100;
/** A scan rides a wake-up of its thread (wake-ups.ts: uwrx-init's notices, every 10-20 ms
 * while processes run, on the main thread where the collector runs on a machine of few
 * CPUs) once this part of its period has passed, instead of waking the thread at its own
 * timer. */
const RIDE_FROM = 0.75;
/** The timer's period while scans ride wake-ups: a scan after their end waits as long
 * as one of a tree that runs no new process does (SCAN_IDLE_MAX_MS). */
const RIDE_WATCH_MS = SCAN_IDLE_MAX_MS;

const ENDED_SUFFIX = '.ended';
/** struct uwrx_rec_header: magic u64, pid u32, library_calls u32, pos, size, dropped, fast, slow (u64). */
const REC_MAGIC_LOW = Number(REC_MAGIC & 0xffffffffn);
const REC_MAGIC_HIGH = Number(REC_MAGIC >> 32n);
const REC_HEADER_SIZE = 56;
const RECORDER_LIVE_READ = 4 << 20;
const PAGE = 4096;
/** Where holes may be punched in a recorder region: past the header's page. */
const FIRST_RECORDS_PAGE = Math.ceil(REC_DATA_OFFSET / PAGE) * PAGE;
const READ_CHUNK = 4 << 20;
/** Finished buffers taken per takeFiles call: their parts' offsets in its one Buffer
 * are int32 (each at most 2 x (REC_DATA_OFFSET + READ_CHUNK) bytes). */
const TAKE_BATCH = 128;
/** Pooled buffers waiting at most (each holds at most 128 KiB of zeroed pages: 8 MiB).
 * A scan returns the buffers of the processes that ended since the last (20 ms: about
 * 30 in a shell loop of short processes), which the next ones take one by one. */
export const POOL_MAX = 64;
export const POOL_PREFIX = TRACE_POOL_PREFIX;
const TMPFS_MAGIC = 0x01021994;

function onTmpfs(dir: string): boolean {
  try {
    return statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** A u64 header field (read on every scan: no BigInt; exact below 2^53). */
function u64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x100000000;
}

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
  /** Pids whose end the buffer log told and whose buffers no scan has tracked yet. */
  private readonly closedPids = new Set<number>();
  /** free.<n> -> the pid that took it (the buffer log), until its buffer is done. */
  private readonly slotOwners = new Map<number, number>();
  /** The buffer log: its descriptor (-1: not there yet), the offset read to, a read buffer. */
  private logFd = -1;
  private logOff = 0;
  private logBuf: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Ends the scans' ride on the thread's wake-ups (start). */
  private unride: (() => void) | undefined;
  /** drainRegion's header: read where pollBuffers says enough records wait, and once at
   * the end of a buffer opened while live. */
  private readonly recorderHeader = Buffer.alloc(REC_HEADER_SIZE);
  /** listBuffers' [pid, kind] pairs, reused from scan to scan (grown when short). */
  private listed = new Int32Array(256);
  /** pollBuffers' descriptors and answers, reused likewise. */
  private pollFds = new Int32Array(16);
  private polled = new Float64Array(32);
  private maxTime = NO_TIME;
  private readonly livePollMs: number;
  /** The current scan's start (monotonicMs()). */
  private now = 0;
  /** takeFiles' pool state: [the next free.<n> to name, POOL_MAX, the lowest free.<n> the
   * scan's listing showed]; undefined: no pool. */
  private pool: Int32Array | undefined;
  readonly stats: CollectorStats = { scans: 0, events: 0, bytesRead: 0, filesDone: 0, pooled: 0, recorder: { files: 0, fast: 0, slow: 0, dropped: 0 }, errors: [] };

  constructor(private readonly options: CollectorOptions) {
    // names inside are joined to it by hand: path.join per file costs more than the open
    this.dir = path.join(options.runDir, 'traces');
    this.livePollMs = options.livePollMs ?? LIVE_POLL_MS;
    if (options.pool ?? onTmpfs(this.dir)) this.pool = Int32Array.of(0, POOL_MAX, 0);
  }

  /** The sandbox saw process `pid` end: its buffer is complete once its writer closed it. */
  processEnded(pid: number): void {
    this.endedPids.add(pid);
    const f = this.files.get(pid);
    if (f) f.ended = true;
  }

  // The recorder region of a process is final once the process ended, when the sandbox
  // logs its buffer as ended: both parts reach the merger in the same scan and
  // merge in time order. A live one is read (up to its first uncommitted record) only
  // once RECORDER_LIVE_READ bytes wait, to bound tmp use.

  start(): void {
    if (this.timer) return;
    const fixed = this.options.intervalMs;
    let period = fixed ?? SCAN_MS;
    let scannedAt = monotonicMs();
    /** A scan rode a wake-up since the timer was set; one is about to. */
    let rode = false;
    let riding = false;
    const scanNow = () => {
      scannedAt = monotonicMs();
      const found = this.scan();
      if (fixed === undefined) period = found > 0 ? SCAN_MS : Math.min(2 * period, SCAN_IDLE_MAX_MS);
    };
    // Node's timer wakes the thread at the first expiry it was given, even when the timer
    // was cleared or set later since: while scans ride wake-ups the timer is not moved at
    // each scan, only set far ahead to see the wake-ups end
    const timed = () => {
      if (monotonicMs() - scannedAt >= period) scanNow();
      this.timer = setTimeout(timed, rode ? RIDE_WATCH_MS : period);
      rode = false;
    };
    this.timer = setTimeout(timed, period);
    // a fixed period (tests) stays exact
    if (fixed !== undefined) return;
    this.unride = rideWakeUps(() => {
      if (riding || !this.timer || monotonicMs() - scannedAt < period * RIDE_FROM) return;
      riding = true;
      setImmediate(() => {
        riding = false;
        if (!this.timer) return;
        scanNow();
        rode = true;
      });
    });
  }

  /** Stops scanning, drains every buffer as ended (the run is over) and deletes them. */
  stop(): void {
    this.unride?.();
    this.unride = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    // the run's processes are done: what this scan takes is deleted, not pooled
    if (this.pool) this.pool[1] = 0;
    this.scan(true);
    this.emptyPool();
    if (this.logFd >= 0) closeSync(this.logFd);
    this.logFd = -1;
  }

  /** The buffer log's new entries: ends into closedPids, takes into slotOwners. Read
   * before the directory is listed: an entry is written once its buffer is final (an end)
   * or opened (a take), so that buffer is in the listing unless done already. */
  private readLog(): void {
    if (this.logFd < 0) {
      try {
        this.logFd = openSync(`${this.dir}/${TRACE_LOG}`, 'r');
      } catch (err) {
        // no writer keeps one (yet): buffers are named by their pids and end by .ended names
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
        throw err;
      }
    }
    const buf = (this.logBuf ??= Buffer.allocUnsafeSlow(16 << 10));
    for (;;) {
      const got = readSync(this.logFd, buf, 0, buf.length, this.logOff);
      // whole entries only (each is one append; a reader never sees part of one, but
      // stays on entry boundaries anyway)
      const whole = got - (got % TRACE_LOG_ENTRY);
      for (let at = 0; at < whole; at += TRACE_LOG_ENTRY) {
        const pid = buf.readUInt32LE(at);
        const what = buf.readUInt32LE(at + 4);
        if (what === 0) this.closedPids.add(pid);
        else this.slotOwners.set(what - 1, pid);
      }
      this.logOff += whole;
      if (got < buf.length) return;
    }
  }

  /** Deletes the pooled buffers not taken (the run's processes are done). */
  private emptyPool(): void {
    const pool = this.pool;
    if (!pool) return;
    for (let n = Math.max(0, pool[0]! - POOL_MAX); n < pool[0]!; n++) {
      try {
        unlinkSync(`${this.dir}/${POOL_PREFIX}${n}`);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
  }

  /** One pass over traces/; returns the number of events handed to the sink. */
  scan(final = false): number {
    this.stats.scans++;
    this.now = monotonicMs();
    this.readLog();
    let n = traceAddon().listBuffers(this.dir, this.listed);
    if (n < 0) return 0;
    if (n > this.listed.length) n = traceAddon().listBuffers(this.dir, (this.listed = new Int32Array(n * 2)));
    if (n < 0) return 0;
    const listed = this.listed;
    // the pool's buffers still waiting (uwrx-init takes them in order): how full the pool
    // is, without a look at the directory per buffer returned
    const pool = this.pool;
    let oldest = pool ? pool[0]! : 0;
    const owners = this.slotOwners;
    for (let i = 0; i < n && i < listed.length; i += 2) {
      const kind = listed[i + 1];
      if (kind !== 2) this.track(listed[i]!, kind === 1);
      else {
        // a pooled buffer a process took (the log said so), or one still waiting
        const owner = owners.size > 0 ? owners.get(listed[i]!) : undefined;
        if (owner !== undefined) this.track(owner, false, listed[i]!);
        else if (listed[i]! < oldest) oldest = listed[i]!;
      }
    }
    if (pool) pool[2] = oldest;
    let count = 0;
    const files = [...this.files.values()].sort((a, b) => a.pid - b.pid);
    const finished: Buffered[] = [];
    const live: Buffered[] = [];
    const closedPids = this.closedPids;
    for (const f of files) {
      if (closedPids.size > 0 && closedPids.delete(f.pid)) f.ended = f.closed = true;
      if (!f.ended && (final || this.endedPids.has(f.pid) || !(this.options.isAlive?.(f.pid) ?? true))) f.ended = true;
      if (f.ended && f.fd < 0) finished.push(f);
      else if (!f.ended && f.fd >= 0 && this.due(f.lookedAt)) live.push(f);
    }
    this.takeAll(finished);
    this.poll(live);
    for (const f of files) count += this.drain(f);
    let watermark = Infinity;
    for (const f of this.files.values()) if (!f.ended && f.lastTime > 0) watermark = Math.min(watermark, f.lastTime);
    this.options.sink.advance(watermark === Infinity ? this.maxTime : watermark);
    return count;
  }

  private track(pid: number, ended: boolean, slot = -1): void {
    const name = slot >= 0 ? `${POOL_PREFIX}${slot}` : ended ? `${pid}${ENDED_SUFFIX}` : String(pid);
    const known = this.files.get(pid);
    if (known) {
      if (ended) {
        known.ended = known.closed = true;
        known.name = name;
      }
      return;
    }
    // not opened yet: most buffers found live belong to short processes, finished by
    // the next scan and then taken whole in one call (opened now, the same buffer would
    // cost an open, fstats, reads, a close and an unlink)
    this.files.set(pid, {
      pid, name, fd: -1, seenAt: this.now, lookedAt: -Infinity, seenScan: this.stats.scans, parts: undefined, readOff: TRACE_DATA_OFFSET, punchedTo: TRACE_DATA_OFFSET, ended, closed: ended, slot, lastTime: NO_TIME, broken: false,
      polledSize: -1, polledRegion: -1, recOff: REC_DATA_OFFSET, recPunchedTo: FIRST_RECORDS_PAGE, recBroken: false,
    });
  }

  /** The finished buffers not opened yet (most short processes'), each read whole and
   * removed, in one native call per TAKE_BATCH of them: their parts are views of one
   * Buffer, for drain to hand on in pid order. */
  private takeAll(list: Buffered[]): void {
    const addon = traceAddon();
    for (let i = 0; i < list.length; i += TAKE_BATCH) {
      const batch = list.slice(i, i + TAKE_BATCH);
      const layout = new Int32Array(batch.length * 4);
      const closed = Uint8Array.from(batch, (f) => (f.closed ? 1 : 0));
      const bytes = addon.takeFiles(this.dir, batch.map((f) => f.name), REC_DATA_OFFSET + READ_CHUNK, layout, this.pool, closed);
      for (let j = 0; j < batch.length; j++) {
        const at = layout[4 * j]!;
        const length = layout[4 * j + 1]!;
        const regionAt = layout[4 * j + 2]!;
        const regionLength = layout[4 * j + 3]!;
        batch[j]!.parts = length < 0 ? length : [bytes.subarray(at, at + length), regionLength < 0 ? undefined : bytes.subarray(regionAt, regionAt + regionLength)];
      }
    }
    if (this.pool) this.stats.pooled = this.pool[0]!;
  }

  /** The open live buffers' sizes and recorder positions in one addon call: most have
   * nothing new to read at a scan (a compiler's records are read a MiB at a time), and
   * an fstat and a header read each from JavaScript cost more than the calls. */
  private poll(live: Buffered[]): void {
    if (live.length === 0) return;
    if (this.pollFds.length < live.length) {
      this.pollFds = new Int32Array(live.length * 2);
      this.polled = new Float64Array(live.length * 4);
    }
    const fds = this.pollFds.subarray(0, live.length);
    for (let i = 0; i < live.length; i++) {
      fds[i] = live[i]!.fd;
      live[i]!.lookedAt = this.now;
    }
    const out = this.polled;
    traceAddon().pollBuffers(fds, out);
    for (let i = 0; i < live.length; i++) {
      live[i]!.polledSize = out[2 * i]!;
      live[i]!.polledRegion = out[2 * i + 1]!;
    }
  }

  /** A finished buffer not opened yet: its parts as takeAll took them. Opened to be read
   * as usual when a part is larger than one read (undefined); false when it is gone. */
  private take(f: Buffered): [Buffer, Buffer | undefined] | false | undefined {
    let parts = f.parts;
    f.parts = undefined;
    if (parts === undefined) {
      const one = traceAddon().takeFile(`${this.dir}/${f.name}`, REC_DATA_OFFSET + READ_CHUNK);
      parts = one === null ? TAKE_TOO_LARGE : (one ?? TAKE_GONE);
    }
    if (typeof parts === 'object') return parts;
    const fd = parts === TAKE_TOO_LARGE ? this.openBuffer(f.name) : undefined;
    if (fd === undefined) return false;
    f.fd = fd;
    return undefined;
  }

  private openBuffer(name: string): number | undefined {
    try {
      return openSync(`${this.dir}/${name}`, 'r+');
    } catch (err) {
      // Renamed between readdir and open: the next scan finds the new name.
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Committed records of an open buffer's recorder region, up to its header's write
   * position (nothing without a header: the region is a hole). */
  private drainRegion(f: Buffered): number {
    const polled = f.polledRegion;
    f.polledRegion = -1;
    // polled live: fewer than RECORDER_LIVE_READ bytes wait (none without a header)
    if (!f.ended && polled >= 0 && polled - f.recOff < RECORDER_LIVE_READ) return 0;
    const header = this.recorderHeader;
    if (readSync(f.fd, header, 0, REC_HEADER_SIZE, 0) < REC_HEADER_SIZE || (header.readUInt32LE(0) === 0 && header.readUInt32LE(4) === 0)) return 0;
    if (header.readUInt32LE(0) !== REC_MAGIC_LOW || header.readUInt32LE(4) !== REC_MAGIC_HIGH) {
      if (f.ended) this.stats.errors.push(`traces/${f.name}: not a recorder region`);
      return 0;
    }
    const limit = Math.min(u64(header, 16), u64(header, 24), TRACE_DATA_OFFSET);
    if (!f.ended && limit - f.recOff < RECORDER_LIVE_READ) return 0;
    let count = 0;
    while (!f.recBroken && f.recOff < limit) {
      const want = Math.min(limit - f.recOff, READ_CHUNK);
      const buf = Buffer.allocUnsafeSlow(want);
      const got = readSync(f.fd, buf, 0, want, f.recOff);
      if (got <= 0) break;
      const result = scanRecords(buf, 0, got);
      if (result.count > 0) {
        this.maxTime = Math.max(this.maxTime, result.lastTime);
        this.options.sink.records(f.pid, buf.subarray(0, result.next));
        count += result.count;
      }
      this.stats.bytesRead += result.next;
      f.recOff += result.next;
      if (result.bad) {
        this.stats.errors.push(`traces/${f.name}: recorder region: ${result.bad}`);
        f.recBroken = true;
      }
      // a record not committed yet (or one its writer never finished)
      if (result.atEnd || result.next === 0) break;
    }
    this.stats.events += count;
    if (f.ended) this.recorderDone(f, header);
    else if (this.options.punch !== false) {
      const to = Math.floor(f.recOff / PAGE) * PAGE;
      if (to > f.recPunchedTo) {
        traceAddon().punchHole(f.fd, f.recPunchedTo, to - f.recPunchedTo);
        f.recPunchedTo = to;
      }
    }
    return count;
  }

  /** drainRegion over a region taken whole: the same records, errors and counts. */
  private takenRegion(f: Buffered, bytes: Buffer): number {
    if (bytes.length < REC_HEADER_SIZE || bytes.readUInt32LE(0) !== REC_MAGIC_LOW || bytes.readUInt32LE(4) !== REC_MAGIC_HIGH) {
      this.stats.errors.push(`traces/${f.name}: not a recorder region`);
      return 0;
    }
    // the header's counts first: the sink may move the bytes away (a batch transferred
    // to the merger detaches them)
    this.recorderDone(f, bytes);
    let count = 0;
    if (bytes.length > REC_DATA_OFFSET) {
      const data = bytes.subarray(REC_DATA_OFFSET);
      const result = scanRecords(data, 0, data.length);
      if (result.count > 0) {
        this.maxTime = Math.max(this.maxTime, result.lastTime);
        this.options.sink.records(f.pid, data.subarray(0, result.next));
        count = result.count;
      }
      this.stats.bytesRead += result.next;
      if (result.bad) this.stats.errors.push(`traces/${f.name}: recorder region: ${result.bad}`);
    }
    this.stats.events += count;
    return count;
  }

  /** The counts of a recorder region read to its end (header: its first bytes). */
  private recorderDone(f: Buffered, header: Buffer): void {
    const r = this.stats.recorder;
    r.files++;
    const dropped = u64(header, 32);
    r.dropped += dropped;
    r.fast += u64(header, 40);
    r.slow += u64(header, 48);
    if (dropped > 0) this.stats.errors.push(`traces/${f.name}: ${dropped} records did not fit the recorder region`);
  }

  /** A buffer's records, then its recorder region's; an ended one is then removed. */
  private drain(f: Buffered): number {
    if (f.fd < 0 && !f.ended) {
      // live: opened (and read from) once it outlived LIVE_POLL_MS; a scan finds it
      // live a first time (the next one, with livePollMs 0)
      if (this.livePollMs > 0 ? !this.due(f.seenAt) : f.seenScan === this.stats.scans) return 0;
      const fd = this.openBuffer(f.name);
      // renamed <pid>.ended meanwhile: the next scan takes it
      if (fd === undefined) return 0;
      f.fd = fd;
      f.lookedAt = this.now;
    } else if (!f.ended && f.polledSize < 0) {
      // live and open, not looked at this scan (LIVE_POLL_MS)
      return 0;
    }
    if (f.fd < 0) {
      const parts = this.take(f);
      if (parts === false) {
        this.done(f);
        return 0;
      }
      if (parts) return this.taken(f, parts[0]) + (parts[1] ? this.takenRegion(f, parts[1]) : 0);
    }
    const size = f.polledSize >= 0 ? f.polledSize : fstatSync(f.fd).size;
    f.polledSize = -1;
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
    const done = f.ended && (atEnd || f.readOff >= limit || f.broken);
    if (!done && this.options.punch !== false) this.punch(f, Math.min(f.readOff, Math.max(limit, TRACE_DATA_OFFSET)));
    // an ended file's region is read once, to its end, before the file goes
    if (!f.ended || done) count += this.drainRegion(f);
    if (done) this.finishFile(f);
    return count;
  }

  /** drain over a finished buffer's records taken whole: the same records, errors and
   * counts (offsets in messages are file offsets). */
  private taken(f: Buffered, bytes: Buffer): number {
    const length = bytes.length; // before the sink may move the bytes away
    const result = scanRecords(bytes, 0, length);
    if (result.count > 0) {
      f.lastTime = result.lastTime;
      this.maxTime = Math.max(this.maxTime, f.lastTime);
      this.options.sink.records(f.pid, bytes.subarray(0, result.next));
    }
    this.stats.bytesRead += result.next;
    if (result.bad) this.stats.errors.push(`traces/${f.name}: ${result.bad.replace(/offset (\d+)/, (_, n: string) => `offset ${TRACE_DATA_OFFSET + Number(n)}`)}`);
    else if (!result.atEnd && result.next < length) this.stats.errors.push(`traces/${f.name}: no complete record at offset ${TRACE_DATA_OFFSET + result.next}`);
    this.stats.events += result.count;
    this.done(f);
    return result.count;
  }

  /** LIVE_POLL_MS (livePollMs) passed since `since`. */
  private due(since: number): boolean {
    return this.now - since >= this.livePollMs;
  }

  /** A buffer read to its end and gone (deleted, or returned to the pool under a new name). */
  private done(f: Buffered): void {
    this.files.delete(f.pid);
    if (f.slot >= 0) this.slotOwners.delete(f.slot);
    this.stats.filesDone++;
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
      unlinkSync(`${this.dir}/${f.name}`);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      // Renamed to .ended after we last listed the directory.
      try {
        unlinkSync(`${this.dir}/${f.pid}${ENDED_SUFFIX}`);
      } catch {
        /* already gone */
      }
    }
    this.done(f);
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
  // A scan's records go in one message, sent before its advance: a message per buffer
  // cost a postMessage and a dispatch per process. The merger shares this thread
  // (traceActorSpecs), so the message is handed over after the scan whenever it is
  // sent: sending part of a scan early would hold no less memory.
  let batch: RecordsBody = { pids: [], bytes: [] };
  /** The watermark last sent (undefined: none yet). */
  let sentWatermark: number | null | undefined;
  const sendBatch = (watermark?: number | null) => {
    if (batch.pids.length === 0) return false;
    if (watermark !== undefined) batch.watermark = watermark;
    // The read buffers are the collector's own (allocUnsafeSlow, takeFiles): moved, not
    // copied; the buffers taken in one call share their ArrayBuffer.
    merger.notify(MERGER_MESSAGES.records, batch, [...new Set(batch.bytes.map((b) => b.buffer as ArrayBuffer))]);
    batch = { pids: [], bytes: [] };
    return true;
  };
  const collector = new Collector({
    runDir: ctx.options.runDir,
    intervalMs: ctx.options.intervalMs,
    isAlive: ctx.options.killProbe ? killProbe : undefined,
    sink: {
      records: (pid, bytes) => {
        batch.pids.push(pid);
        batch.bytes.push(bytes);
      },
      advance: (watermark) => {
        // with the scan's records when there are any: one message a scan; without records
        // only a watermark that moved (most scans while long compiles run find nothing,
        // and the same watermark again writes nothing)
        const w = Number.isFinite(watermark) ? watermark : null;
        if (!sendBatch(w) && w !== sentWatermark) merger.notify(MERGER_MESSAGES.advance, { watermark: w } satisfies AdvanceBody);
        sentWatermark = w;
      },
    },
  });
  collector.start();
  // the collector runs from before the command starts until its processes are done
  tuneCompiler('command');
  return {
    handlers: {
      [COLLECTOR_MESSAGES.processEnded]: (body: { pid: number }) => collector.processEnded(body.pid),
      [COLLECTOR_MESSAGES.progress]: (): TraceProgress => ({ events: collector.stats.events, bytes: collector.stats.bytesRead }),
      [COLLECTOR_MESSAGES.finish]: async (): Promise<TraceFinishStats> => {
        tuneCompiler('finish');
        collector.stop();
        // Generous: merging a long run's backlog can take a while.
        const merged = await merger.request(MERGER_MESSAGES.finish, undefined, { timeoutMs: 600_000 });
        return { collector: collector.stats, merger: merged };
      },
    },
    stop() {
      tuneCompiler('default');
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
    {
      name: 'merger',
      module: actorModule('merger'),
      options: {
        output: path.join(options.attemptDir, 'perfetto'),
        accessIndex: path.join(options.attemptDir, 'accesses.tsv'),
        outputIndex: path.join(options.attemptDir, 'output.bin'),
      },
      thread: IO_THREAD,
      startsLate: true,
    },
    {
      name: 'collector',
      module: actorModule('collector'),
      options: { runDir: options.runDir, intervalMs: options.intervalMs, killProbe: options.killProbe },
      connect: ['merger'],
      thread: IO_THREAD,
      // the buffers wait on disk until it starts
      startsLate: true,
    },
  ];
}
