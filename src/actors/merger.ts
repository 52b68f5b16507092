// Merger: turns the collected trace events of all processes into the attempt's `perfetto`
// file. Events are ordered by timestamp across processes (up to the collector's
// watermark), each process is one Perfetto sequence (its events carry their own times:
// a process's records come from two writers read apart, and one part can arrive after
// newer records of the other were written; Perfetto orders events by timestamp, and a
// slice's end is never before what its sequence holds), names are interned per
// sequence, and packets are written in zlib
// compressed_packets chunks. By default the ordering and the packets are native code
// (src/record/access-writer.ts) and this class keeps the chunk, the output index and the
// file; its own record path is the reference the native one must match byte for byte.
import { closeSync, openSync, writeSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { constants as zlibConstants, deflateSync } from 'node:zlib';
import { AccessIndex, accessOp, isUwrxOwn, type AccessTable } from '../record/accesses.js';
import { ACCESS_RECORD as ACCESS, AccessWriter, IO } from '../record/access-writer.js';
import { OutputIndexWriter } from '../record/output-index.js';
import { escapeBytes, escapeRange, isPlain } from '../record/escape.js';
import { MergerInputLog } from '../record/merger-input.js';
import { defineActor } from './actor.js';
import { EVENT_FLAG_TRUNCATED, EVENT_HEADER, EVENT_LAYOUTS, NO_TIME, decodeRecord, encodeEvent, eventDef, locateRecords, splitArgv, type TraceEvent } from '../protocol/events.js';
import { BuiltinClock, Fields, ProtoWriter, SequenceFlags, TrackEventType } from '../protocol/perfetto.js';
import { MERGER_MESSAGES, OUTPUT_BASE64, OUTPUT_TEXT, type AdvanceBody, type RecordsBody } from '../protocol/trace-messages.js';

const P = Fields.TracePacket;
const TE = Fields.TrackEvent;
const DA = Fields.DebugAnnotation;

/** The packet sequence of the merger's own packets (clock snapshot, process tree). */
export const GLOBAL_SEQUENCE = 1;
/** Process P's packets go on sequence P + SEQUENCE_BASE. */
export const SEQUENCE_BASE = 1;
/** Events of a process held back until its first exec names it (bounded). */
const HOLD_MAX = 64;

export interface MergerOptions {
  /** The attempt's perfetto file (created or truncated). */
  output: string;
  /** Clock readings (ns) for the ClockSnapshot: BOOTTIME (the records' clock) and REALTIME. */
  clocks: { boottime: number; realtime: number };
  /** Uncompressed bytes per compressed_packets chunk (Perfetto asks for < 512 KB). */
  chunkBytes?: number;
  /** Events kept for reordering before the oldest are written regardless of watermark. */
  maxBuffered?: number;
  /** zlib level. 3, not the usual 6: on real traces 3 compresses at about 150 MB/s to
   * 7% more bytes, where 6 runs at 80 MB/s and at 30 MB/s on repetitive output such as
   * `seq`, which then makes the merger the slowest part of a run. */
  level?: number;
  /** Where to write the access index (src/record/accesses.ts); absent: none. Read
   * accesses repeated by a process (same operation and path) are then counted there
   * instead of written to the trace again. */
  accessIndex?: string;
  /** Where to write the output index (src/record/output-index.ts); absent: none. */
  outputIndex?: string;
  /** Every record's packets and the access index in native code
   * (src/record/access-writer.ts), the default; false: all in TypeScript (the same
   * bytes, several times slower). */
  nativeAccesses?: boolean;
}

export interface MergeStats {
  events: number;
  processes: number;
  packets: number;
  bytesWritten: number;
  /** Read accesses counted in the access index instead of written again. */
  repeatedAccesses: number;
  errors: string[];
}

interface Sequence {
  id: number;
  started: boolean;
  eventNames: Map<string, number>;
  annotationNames: Map<string, number>;
  lastTime: number;
  /** The interned ids an access event uses, once all are interned on this sequence. */
  accessIids: AccessIids | undefined;
}

interface AccessIids {
  name: number;
  /** Annotation name ids in the access layout's field order. */
  fields: number[];
  path: number;
}

interface Proc {
  pid: number;
  ppid: number;
  argv: Buffer[] | undefined;
  execPath: Buffer | undefined;
  seq: Sequence;
  uuid: number;
  described: boolean;
  held: TraceEvent[];
  threads: Map<number, number>;
  sliceOpen: boolean;
  ended: boolean;
  lastTime: number;
}

/**
 * Records waiting to be written: one process's records as one delivery brought them, in
 * buffer order, cut wherever time goes back, so every run is non-decreasing in time.
 * Writing the runs merged by (time, arrival) gives the order of a stable sort of all
 * pending records by time, without an object per record: records stay in their bytes
 * until written (decoded objects only for events pushed as such).
 */
interface Run {
  /** Arrival order: ties in time go to the earlier run. */
  order: number;
  /** The process whose buffer the records came from. */
  pid: number;
  buf: Buffer | undefined;
  offsets: Uint32Array;
  events: TraceEvent[] | undefined;
  times: Float64Array;
  /** The next record to write, and the end, as indexes into offsets/events and times. */
  next: number;
  end: number;
}

export class Merger {
  private readonly fd: number;
  private readonly chunk = new ProtoWriter(1 << 20);
  /** Packets are written straight into the chunk (between beginPacket and endPacket). */
  private readonly packet = this.chunk;
  private packetStart = 0;
  private readonly frame = new ProtoWriter(64);
  /** trackEvent's annotation name ids (reused: no array per event). */
  private readonly annotationIids: number[] = [];
  private readonly procs = new Map<number, Proc>();
  private readonly global: Sequence;
  private runs: Run[] = [];
  private pendingCount = 0;
  private order = 0;
  private watermark = NO_TIME;
  private nextUuid = 1;
  private closed = false;
  readonly stats: MergeStats = { events: 0, processes: 0, packets: 0, bytesWritten: 0, repeatedAccesses: 0, errors: [] };
  private readonly accesses: AccessTable | undefined;
  private readonly native: AccessWriter | undefined;
  private readonly outputs: OutputIndexWriter | undefined;
  private readonly chunkBytes: number;
  private readonly maxBuffered: number;
  private readonly level: number;

  constructor(private readonly options: MergerOptions) {
    this.chunkBytes = options.chunkBytes ?? 384 * 1024;
    this.maxBuffered = options.maxBuffered ?? 200_000;
    this.level = options.level ?? 3;
    this.fd = openSync(options.output, 'w');
    if (options.nativeAccesses ?? true) {
      this.native = new AccessWriter(options.accessIndex !== undefined, this.chunkBytes, {
        maxBuffered: this.maxBuffered,
        sequenceBase: SEQUENCE_BASE,
        sync: (pos, need) => {
          this.chunk.setLength(pos);
          if (need === 0) this.flushChunk();
          else this.chunk.reserve(need);
          return this.chunk.backing;
        },
        ...(options.outputIndex && {
          output: (records: Buffer) => {
            for (let at = 0; at + 8 <= records.length; ) {
              const size = records.readUInt32LE(at);
              if (size < 8 || at + size > records.length) throw new Error(`merger: a batch of output records is cut at ${at}`);
              // not a whole output record: decoding it throws what is wrong with it
              if (this.outputs?.addRecord(records, at, size) === false) decodeRecord(records, at, size);
              at += size;
            }
          },
        }),
      });
    }
    if (options.accessIndex) this.accesses = this.native ?? new AccessIndex();
    if (options.outputIndex) this.outputs = new OutputIndexWriter(options.outputIndex);
    this.global = newSequence(GLOBAL_SEQUENCE);
    this.writeClockSnapshot();
  }

  /** Records read from one process's buffer (collector), in file order. A malformed
   * record drops itself and the rest of this batch, reported in stats.errors. */
  records(pid: number, bytes: Buffer): void {
    if (this.native && !this.closed) {
      // the native writer keeps the records until they are written
      const bad = this.nativeCall(() => this.native!.records(bytes, this.chunk.backing));
      if (bad >= 0) this.stats.errors.push(`traces/${pid}: ${locateRecords(bytes, bad, bytes.length, [], []).bad ?? `bad record at offset ${bad}`}`);
      return;
    }
    let offsets: Uint32Array;
    let times: Float64Array;
    let bad: string | undefined;
    if (this.native) {
      const found = this.native.locate(bytes);
      ({ offsets, times } = found);
      if (found.bad >= 0) bad = locateRecords(bytes, found.bad, bytes.length, [], []).bad ?? `bad record at offset ${found.bad}`;
    } else {
      const o: number[] = [];
      const t: number[] = [];
      bad = locateRecords(bytes, 0, bytes.length, o, t).bad;
      offsets = Uint32Array.from(o);
      times = Float64Array.from(t);
    }
    if (bad) this.stats.errors.push(`traces/${pid}: ${bad}`);
    if (this.closed) {
      this.stats.errors.push(`${times.length} events arrived after the trace was finished`);
      return;
    }
    this.addRuns(pid, bytes, offsets, undefined, times);
  }

  /** Events of one process, in its buffer's order. */
  push(events: readonly TraceEvent[]): void {
    // the native writer takes records: the events as their writer would have written them
    if (this.native && !this.closed) return this.records(events[0]?.pid ?? 0, Buffer.concat(events.map((ev) => encodeEvent(ev))));
    if (this.closed) {
      this.stats.errors.push(`${events.length} events arrived after the trace was finished`);
      return;
    }
    this.addRuns(events[0]?.pid ?? 0, undefined, NO_OFFSETS, [...events], Float64Array.from(events, (ev) => ev.time));
  }

  private addRuns(pid: number, buf: Buffer | undefined, offsets: Uint32Array, events: TraceEvent[] | undefined, times: Float64Array): void {
    let start = 0;
    for (let i = 1; i <= times.length; i++) {
      if (i < times.length && times[i]! >= times[i - 1]!) continue;
      this.runs.push({ order: this.order++, pid, buf, offsets, events, times, next: start, end: i });
      start = i;
    }
    this.pendingCount += times.length;
    if (this.pendingCount > 2 * this.maxBuffered) this.advance(this.watermark);
  }

  /** Writes every buffered event at or before `watermark` (ns), in timestamp order; if
   * too many remain buffered, the oldest are written anyway. */
  advance(watermark: number): void {
    if (this.native) return void this.nativeCall(() => this.native!.advance(watermark, this.chunk.backing));
    this.watermark = watermark;
    if (this.pendingCount === 0) return;
    let cut = 0;
    for (const run of this.runs) cut += upperBound(run.times, run.next, run.end, watermark) - run.next;
    if (this.pendingCount - cut > this.maxBuffered) cut = this.pendingCount - (this.maxBuffered >> 1);
    this.writeOldest(cut);
  }

  /** Writes the `count` oldest pending records: the runs merged through a heap keyed by
   * (next record's time, run order); a run keeps the turn while it stays the oldest. */
  private writeOldest(count: number): void {
    const heap = new RunHeap(this.runs.filter((r) => r.next < r.end));
    let left = count;
    while (left > 0) {
      const run = heap.top();
      const second = heap.second();
      // the run stays first while its records are older than the second's next (or as
      // old, when it arrived first)
      const limit = second === undefined ? Infinity : second.times[second.next]!;
      const wins = second === undefined || run.order < second.order;
      while (left > 0 && run.next < run.end) {
        const t = run.times[run.next]!;
        if (t > limit || (t === limit && !wins)) break;
        const i = run.next++;
        left--;
        if (run.events) this.emit(run.events[i]!);
        else this.emitRecord(run.buf!, run.offsets[i]!);
      }
      if (run.next < run.end) heap.siftDown(0);
      else heap.removeTop();
    }
    this.pendingCount -= count;
    this.runs = this.runs.filter((r) => r.next < r.end);
  }

  /** The access index's rows from row `from` on (AccessWriter.rows); null without the
   * native index. */
  accessRows(from: number): { rows: Int32Array; paths: string[] } | null {
    return this.native && this.options.accessIndex ? this.native.rows(from) : null;
  }

  /** Writes everything left, the process tree, and closes the file. */
  finish(): MergeStats {
    if (this.closed) return this.stats;
    this.advance(Infinity);
    if (this.native) this.stats.processes = this.nativeCall(() => this.native!.finish(this.chunk.backing, GLOBAL_SEQUENCE, this.global.lastTime));
    for (const proc of this.procs.values()) {
      if (!proc.described) this.describe(proc);
      if (proc.sliceOpen) this.endSlice(proc, proc.lastTime, undefined);
    }
    if (!this.native) this.writeProcessTree();
    this.flushChunk();
    closeSync(this.fd);
    this.closed = true;
    if (this.accesses && this.options.accessIndex) this.accesses.writeFile(this.options.accessIndex);
    this.outputs?.close();
    if (!this.native) this.stats.processes = this.procs.size;
    return this.stats;
  }

  private proc(pid: number): Proc {
    let proc = this.procs.get(pid);
    if (!proc) {
      proc = {
        pid,
        // uwrx itself, until a spawn record names the parent (as in procs.tsv).
        ppid: 1,
        argv: undefined,
        execPath: undefined,
        seq: newSequence(pid + SEQUENCE_BASE),
        uuid: this.nextUuid++,
        described: false,
        held: [],
        threads: new Map(),
        sliceOpen: false,
        ended: false,
        lastTime: NO_TIME,
      };
      this.procs.set(pid, proc);
    }
    return proc;
  }

  /** A call of the native writer that writes packets into the chunk from its length on,
   * and the counts of what it wrote. */
  private nativeCall<T>(call: () => T): T {
    const io = this.native!.io;
    io[IO.pos] = this.chunk.length;
    io[IO.events] = io[IO.packets] = io[IO.repeats] = 0;
    try {
      return call();
    } finally {
      this.chunk.setLength(Math.min(io[IO.pos]!, this.chunk.backing.length));
      this.stats.events += io[IO.events]!;
      this.stats.packets += io[IO.packets]!;
      this.stats.repeatedAccesses += io[IO.repeats]!;
    }
  }

  /** The record at `at` of buf: an access event takes the direct path when it can (its
   * process described, its thread known, its names interned), every other record is
   * decoded and takes emit(). Both give the same packets. */
  private emitRecord(buf: Buffer, at: number): void {
    if (buf.readUInt16LE(at + EVENT_HEADER.type) !== ACCESS.code || !this.emitAccess(buf, at)) {
      this.emit(decodeRecord(buf, at, buf.readUInt32LE(at)));
    }
  }

  /** An access record written from its bytes (what emit() and annotationsOf() make of
   * it); false, with nothing done, when it needs emit(). */
  private emitAccess(buf: Buffer, at: number): boolean {
    if (buf.readUInt16LE(at + EVENT_HEADER.flags) & EVENT_FLAG_TRUNCATED) return false;
    const pid = buf.readUInt32LE(at + EVENT_HEADER.pid);
    const proc = this.procs.get(pid);
    if (!proc || !proc.described) return false;
    const iids = proc.seq.accessIids ?? accessIidsOf(proc.seq);
    if (!iids) return false;
    const track = proc.threads.get(buf.readUInt32LE(at + EVENT_HEADER.tid));
    if (track === undefined) return false;
    const pathStart = at + ACCESS.pathLength + 4;
    const pathEnd = pathStart + buf.readUInt32LE(at + ACCESS.pathLength);
    if (this.accesses) {
      const result = readI64(buf, at + ACCESS.result);
      const fresh =
        !isUwrxOwn(buf, pathStart, pathEnd) &&
        this.accesses.addAccess(pid, accessOp(buf.readUInt32LE(at + ACCESS.op), result), buf, pathStart, pathEnd, Math.max(buf.readUInt32LE(at + ACCESS.count), 1));
      if (!fresh) {
        // the first access of this path by this process is in the trace; the index counts the rest
        this.stats.repeatedAccesses++;
        return true;
      }
    }
    this.stats.events++;
    const seq = proc.seq;
    // Its own time, also when it is older than the sequence's last: a process's records
    // come from two writers (uwrx-init's part of its buffer and its recorder's region),
    // read at different times, and one part can reach the merger after newer records of
    // the other were written. Perfetto orders a trace's events by their timestamps.
    const time = readTime(buf, at + 16);
    if (time > proc.lastTime) proc.lastTime = time;
    this.beginPacket(seq, time, true);
    const p = this.packet;
    const event = p.beginMessage(P.trackEvent);
    p.uint(TE.type, TrackEventType.instant);
    p.uint(TE.trackUuid, track);
    p.uint(TE.nameIid, iids.name);
    for (let i = 0; i < ACCESS.fields.length; i++) {
      const f = ACCESS.fields[i]!;
      const v =
        f.type === 'u32' ? buf.readUInt32LE(at + f.at)
        : f.type === 'i32' ? buf.readInt32LE(at + f.at)
        : f.type === 'i64' ? readI64(buf, at + f.at)
        : readTime(buf, at + f.at);
      const a = p.beginMessage(TE.debugAnnotations);
      p.uint(DA.nameIid, iids.fields[i]!);
      // Signed fields: negative numbers are -errno results and must stay signed.
      writeAnnotationValue(p, f.type.startsWith('i') && v < 0 ? v : Math.max(v, 0));
      p.endMessage(a);
    }
    const a = p.beginMessage(TE.debugAnnotations);
    p.uint(DA.nameIid, iids.path);
    if (isPlain(buf, pathStart, pathEnd)) p.bytesOf(DA.stringValue, buf, pathStart, pathEnd);
    else p.string(DA.stringValue, escapeRange(buf, pathStart, pathEnd));
    p.endMessage(a);
    p.endMessage(event);
    this.endPacket(seq, time);
    return true;
  }

  private emit(ev: TraceEvent): void {
    if (this.accesses && !this.accesses.add(ev) && ev.type === 'access') {
      // the first access of this path by this process is in the trace; the index counts the rest
      this.stats.repeatedAccesses++;
      return;
    }
    this.stats.events++;
    if (ev.type === 'output') this.outputs?.add(ev.pid, ev.fd, ev.dest_dev, ev.dest_ino, ev.data, ev.time);
    const proc = this.proc(ev.pid);
    if (ev.type === 'spawn' && !ev.thread) {
      const child = this.proc(ev.child);
      if (child.ppid === 1) child.ppid = ev.pid;
      // Where its lifetime starts if its own buffer holds nothing.
      if (child.lastTime === 0) child.lastTime = ev.time;
      // A forked child runs its parent's program until it execs.
      if (!child.argv && proc.argv) {
        child.argv = proc.argv;
        child.execPath = proc.execPath;
      }
    }
    if (ev.type === 'exec' && ev.result >= 0 && !proc.described) {
      proc.argv = splitArgv(ev.argv);
      proc.execPath = ev.path;
    }
    if (!proc.described) {
      proc.held.push(ev);
      const named = ev.type === 'exec' && ev.result >= 0;
      if (named || ev.type === 'exit' || proc.held.length >= HOLD_MAX) this.describe(proc);
      return;
    }
    this.writeEvent(proc, ev);
  }

  /** Emits the process track (first packet of its sequence), opens its lifetime slice, then
   * the events held back while waiting for its name. */
  private describe(proc: Proc): void {
    proc.described = true;
    const held = proc.held;
    proc.held = [];
    const start = held[0]?.time ?? proc.lastTime;
    const argv = proc.argv ?? [];
    const name = processName(proc);
    this.beginPacket(proc.seq, start, false);
    const p = this.packet;
    const track = p.beginMessage(P.trackDescriptor);
    p.uint(Fields.TrackDescriptor.uuid, proc.uuid);
    const process = p.beginMessage(Fields.TrackDescriptor.process);
    p.int(Fields.ProcessDescriptor.pid, proc.pid);
    for (const a of argv) writeName(p, Fields.ProcessDescriptor.cmdline, escapeBytes(a));
    writeName(p, Fields.ProcessDescriptor.processName, name);
    p.endMessage(process);
    p.endMessage(track);
    this.endPacket(proc.seq, start);
    this.trackEvent(proc.seq, start, proc.uuid, TrackEventType.sliceBegin, name, [['pid', proc.pid]]);
    proc.sliceOpen = true;
    proc.lastTime = start;
    for (const ev of held) this.writeEvent(proc, ev);
  }

  private writeEvent(proc: Proc, ev: TraceEvent): void {
    const time = ev.time; // its own, as in the access path above
    if (time > proc.lastTime) proc.lastTime = time;
    const track = this.threadTrack(proc, ev.tid, time);
    this.trackEvent(proc.seq, time, track, TrackEventType.instant, ev.type, annotationsOf(ev));
    if (ev.type === 'exit' && proc.sliceOpen) {
      this.endSlice(proc, time, [
        ['status', ev.status],
        ['signal', ev.signal],
      ]);
      proc.ended = true;
    }
  }

  private endSlice(proc: Proc, time: number, annotations: Annotation[] | undefined): void {
    proc.sliceOpen = false;
    this.trackEvent(proc.seq, Math.max(time, proc.seq.lastTime), proc.uuid, TrackEventType.sliceEnd, undefined, annotations ?? []);
  }

  private threadTrack(proc: Proc, tid: number, time: number): number {
    let uuid = proc.threads.get(tid);
    if (uuid !== undefined) return uuid;
    uuid = this.nextUuid++;
    proc.threads.set(tid, uuid);
    const name = tid === proc.pid ? processName(proc) : `${processName(proc)} [${tid}]`;
    this.beginPacket(proc.seq, time, false);
    const p = this.packet;
    const track = p.beginMessage(P.trackDescriptor);
    p.uint(Fields.TrackDescriptor.uuid, uuid);
    p.uint(Fields.TrackDescriptor.parentUuid, proc.uuid);
    const thread = p.beginMessage(Fields.TrackDescriptor.thread);
    p.int(Fields.ThreadDescriptor.pid, proc.pid);
    p.int(Fields.ThreadDescriptor.tid, tid);
    writeName(p, Fields.ThreadDescriptor.threadName, name);
    p.endMessage(thread);
    p.endMessage(track);
    this.endPacket(proc.seq, time);
    return uuid;
  }

  private trackEvent(
    seq: Sequence,
    time: number,
    track: number,
    type: number,
    name: string | undefined,
    annotations: Annotation[],
  ): void {
    // Names new on this sequence go in the packet's interned data, the event's name first
    // and then the annotations' in their order (no closure or array per event: this runs
    // for every event that is not an access).
    let nameIid = 0;
    let newName = false;
    if (name !== undefined) {
      nameIid = seq.eventNames.get(name) ?? 0;
      if (nameIid === 0) {
        nameIid = seq.eventNames.size + 1;
        seq.eventNames.set(name, nameIid);
        newName = true;
      }
    }
    const annIids = this.annotationIids;
    const firstNew = seq.annotationNames.size + 1;
    for (let i = 0; i < annotations.length; i++) {
      const n = annotations[i]![0];
      let iid = seq.annotationNames.get(n);
      if (iid === undefined) {
        iid = seq.annotationNames.size + 1;
        seq.annotationNames.set(n, iid);
      }
      annIids[i] = iid;
    }
    const lastNew = seq.annotationNames.size;
    this.beginPacket(seq, time, true);
    const p = this.packet;
    if (newName || lastNew >= firstNew) {
      const interned = p.beginMessage(P.internedData);
      if (newName) {
        const e = p.beginMessage(Fields.InternedData.eventNames);
        p.uint(Fields.InternedName.iid, nameIid);
        writeName(p, Fields.InternedName.name, name!);
        p.endMessage(e);
      }
      // the new annotation names, each at its first use
      for (let i = 0; i < annotations.length; i++) {
        const iid = annIids[i]!;
        if (iid < firstNew || annIids.indexOf(iid) < i) continue;
        const e = p.beginMessage(Fields.InternedData.debugAnnotationNames);
        p.uint(Fields.InternedName.iid, iid);
        writeName(p, Fields.InternedName.name, annotations[i]![0]);
        p.endMessage(e);
      }
      p.endMessage(interned);
    }
    const event = p.beginMessage(P.trackEvent);
    p.uint(TE.type, type);
    p.uint(TE.trackUuid, track);
    if (nameIid) p.uint(TE.nameIid, nameIid);
    for (let i = 0; i < annotations.length; i++) {
      const a = p.beginMessage(TE.debugAnnotations);
      p.uint(DA.nameIid, annIids[i]!);
      writeAnnotationValue(p, annotations[i]![1]);
      p.endMessage(a);
    }
    p.endMessage(event);
    this.endPacket(seq, time);
  }

  private beginPacket(seq: Sequence, time: number, usesInterning: boolean): void {
    const p = this.packet;
    this.packetStart = p.beginBytes(Fields.Trace.packet);
    p.uint(P.timestamp, time);
    p.uint(P.trustedPacketSequenceId, seq.id);
    let flags = usesInterning ? SequenceFlags.needsIncrementalState : 0;
    if (!seq.started) {
      flags |= SequenceFlags.incrementalStateCleared;
      p.bool(P.firstPacketOnSequence, true);
      seq.started = true;
    }
    if (flags) p.uint(P.sequenceFlags, flags);
  }

  private endPacket(seq: Sequence, time: number): void {
    seq.lastTime = Math.max(seq.lastTime, time);
    this.chunk.endBytes(this.packetStart);
    this.stats.packets++;
    if (this.chunk.length >= this.chunkBytes) this.flushChunk();
  }

  private writeClockSnapshot(): void {
    const { boottime, realtime } = this.options.clocks;
    this.beginPacket(this.global, boottime, false);
    this.packet.message(P.clockSnapshot, (w) => {
      w.message(Fields.ClockSnapshot.clocks, (c) => c.uint(Fields.Clock.clockId, BuiltinClock.boottime).uint(Fields.Clock.timestamp, boottime));
      w.message(Fields.ClockSnapshot.clocks, (c) => c.uint(Fields.Clock.clockId, BuiltinClock.realtime).uint(Fields.Clock.timestamp, realtime));
      w.uint(Fields.ClockSnapshot.primaryTraceClock, BuiltinClock.boottime);
    });
    this.endPacket(this.global, boottime);
  }

  /** Parent links: ProcessDescriptor has no ppid, ProcessTree does. Written last, when
   * every spawn record (kept in the parent's buffer) has been seen. */
  private writeProcessTree(): void {
    let time = this.global.lastTime;
    for (const p of this.procs.values()) time = Math.max(time, p.lastTime);
    this.beginPacket(this.global, time, false);
    this.packet.message(P.processTree, (w) => {
      for (const proc of [...this.procs.values()].sort((a, b) => a.pid - b.pid)) {
        w.message(Fields.ProcessTree.processes, (p) => {
          p.int(Fields.ProcessTreeProcess.pid, proc.pid);
          p.int(Fields.ProcessTreeProcess.ppid, proc.ppid);
          for (const a of proc.argv ?? []) p.string(Fields.ProcessTreeProcess.cmdline, escapeBytes(a));
        });
      }
    });
    this.endPacket(this.global, time);
  }

  private flushChunk(): void {
    if (this.chunk.length === 0) return;
    const view = this.chunk.view();
    const how = compressionFor(view);
    if (how === 'store') {
      // the chunk's packets are already framed as Trace.packet fields: written as they are
      this.write(view);
      this.chunk.reset();
      return;
    }
    const compressed = deflateSync(view, how === 'entropy' ? { level: 1, strategy: zlibConstants.Z_HUFFMAN_ONLY } : { level: this.level });
    const f = this.frame;
    f.reset();
    f.tag(Fields.Trace.packet, 2).varint(compressed.length + lengthOfTagAndLen(P.compressedPackets, compressed.length));
    f.tag(P.compressedPackets, 2).varint(compressed.length);
    this.write(f.view());
    this.write(compressed);
    this.chunk.reset();
  }

  private write(buf: Buffer): void {
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.stats.bytesWritten += buf.length;
  }
}

/** Bytes taken from the start, middle and end of a chunk to judge it. */
const SAMPLE_SLICE = 4096;

/** How to write a chunk, judged by a fast compression of three slices of it:
 * - 'store': deflate gains nothing (output of random or already compressed data, a tarball
 *   to stdout); deflating it runs at 15-40 MB/s for no gain and would make the merger the
 *   bottleneck.
 * - 'entropy': the gain is in the symbol statistics, not in repeats: binary output is kept
 *   as base64 text, which Huffman coding alone brings back to about its raw size at over
 *   100 MB/s, where a full deflate finds no matches at about 25 MB/s.
 * - 'full': text with repeats (the usual trace): the configured level. */
export function compressionFor(chunk: Buffer): 'store' | 'entropy' | 'full' {
  if (chunk.length <= 3 * SAMPLE_SLICE) return 'full';
  const mid = (chunk.length >> 1) - (SAMPLE_SLICE >> 1);
  const sample = Buffer.concat([
    chunk.subarray(0, SAMPLE_SLICE),
    chunk.subarray(mid, mid + SAMPLE_SLICE),
    chunk.subarray(chunk.length - SAMPLE_SLICE),
  ]);
  const ratio = deflateSync(sample, { level: 1 }).length / sample.length;
  return ratio >= 0.9 ? 'store' : ratio >= 0.7 ? 'entropy' : 'full';
}

/** UTF-8 bytes of the strings written again and again (interned names, each process's
 * name and arguments, mostly the same few programs), so each is encoded once. */
const nameBytes = new Map<string, Buffer>();
const NAME_BYTES_MAX = 4096;

function writeName(p: ProtoWriter, field: number, s: string): void {
  let b = nameBytes.get(s);
  if (b === undefined) {
    b = Buffer.from(s, 'utf8');
    if (nameBytes.size < NAME_BYTES_MAX) nameBytes.set(s, b);
  }
  p.bytesOf(field, b, 0, b.length);
}

type AnnotationValue = number | string | boolean | string[];
type Annotation = [string, AnnotationValue];

function writeAnnotationValue(a: ProtoWriter, value: AnnotationValue): void {
  if (typeof value === 'boolean') a.bool(DA.boolValue, value);
  else if (typeof value === 'number') {
    if (value < 0) a.int(DA.intValue, BigInt(value));
    else a.uint(DA.uintValue, value);
  } else if (typeof value === 'string') a.string(DA.stringValue, value);
  else {
    for (const s of value) {
      const e = a.beginMessage(DA.arrayValues);
      writeName(a, DA.stringValue, s);
      a.endMessage(e);
    }
  }
}

/** Every schema field and blob of an event, as debug annotations (inspect reads them back). */
function annotationsOf(ev: TraceEvent): Annotation[] {
  const layout = EVENT_LAYOUTS.get(eventDef(ev.type)!.code)!;
  const values = ev as unknown as Record<string, number | Buffer>;
  const out: Annotation[] = [];
  for (const f of layout.fields) {
    const v = values[f.name] as number;
    // Signed fields: negative numbers are -errno results and must stay signed.
    out.push([f.name, f.type.startsWith('i') && v < 0 ? v : Math.max(v, 0)]);
  }
  for (const b of layout.def.blobs) {
    const bytes = values[b] as Buffer;
    if (b === 'argv') out.push([b, splitArgv(bytes).map((a) => escapeBytes(a))]);
    else if (b === 'data') out.push(isUtf8(bytes) ? [OUTPUT_TEXT, bytes.toString('utf8')] : [OUTPUT_BASE64, bytes.toString('base64')]);
    else if (b === 'addr' && ev.type === 'connect') out.push([b, formatAddress(ev.family, bytes)]);
    else out.push([b, escapePath(bytes)]);
  }
  if (ev.flags0 && ev.flags0 & EVENT_FLAG_TRUNCATED) out.push(['truncated', true]);
  return out;
}

/** escapeBytes, with a fast path for the usual plain-ASCII path. */
function escapePath(bytes: Buffer): string {
  const s = bytes.toString('latin1');
  return PLAIN.test(s) ? s : escapeBytes(bytes);
}
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

function formatAddress(family: number, addr: Buffer): string {
  if (family === 2 && addr.length === 4) return [...addr].join('.');
  if (family === 10 && addr.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(addr.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  return escapeBytes(addr);
}

function processName(proc: Proc): string {
  const exe = proc.argv?.[0] ?? proc.execPath;
  if (!exe || exe.length === 0) return `pid ${proc.pid}`;
  const s = escapeBytes(exe);
  return s.slice(s.lastIndexOf('/') + 1) || s;
}

function newSequence(id: number): Sequence {
  return { id, started: false, eventNames: new Map(), annotationNames: new Map(), lastTime: NO_TIME, accessIids: undefined };
}

/** The sequence's ids for an access event's names, once every one is interned there
 * (the first access event of a process interns them, through trackEvent). */
function accessIidsOf(seq: Sequence): AccessIids | undefined {
  const name = seq.eventNames.get('access');
  const fields = ACCESS.fields.map((f) => seq.annotationNames.get(f.name));
  const path = seq.annotationNames.get(ACCESS.path);
  if (name === undefined || path === undefined || fields.some((iid) => iid === undefined)) return undefined;
  seq.accessIids = { name, fields: fields as number[], path };
  return seq.accessIids;
}

/** A non-negative u64 field (exact below 2^53). */
function readTime(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x100000000;
}

function readI64(buf: Buffer, at: number): number {
  return buf.readInt32LE(at + 4) * 0x100000000 + buf.readUInt32LE(at);
}

const NO_OFFSETS = new Uint32Array(0);

/** A min-heap of runs by (next record's time, arrival order). */
class RunHeap {
  constructor(private readonly items: Run[]) {
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  top(): Run {
    return this.items[0]!;
  }

  /** The run that comes after the top one. */
  second(): Run | undefined {
    const [, a, b] = this.items;
    return a && b ? (before(b, a) ? b : a) : a;
  }

  removeTop(): void {
    const last = this.items.pop()!;
    if (this.items.length === 0) return;
    this.items[0] = last;
    this.siftDown(0);
  }

  siftDown(i: number): void {
    const items = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l]!, items[m]!)) m = l;
      if (r < items.length && before(items[r]!, items[m]!)) m = r;
      if (m === i) return;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
  }
}

function before(a: Run, b: Run): boolean {
  const ta = a.times[a.next]!;
  const tb = b.times[b.next]!;
  return ta < tb || (ta === tb && a.order < b.order);
}

/** The first index in times[lo, hi) (non-decreasing) whose time is after `time`. */
function upperBound(times: Float64Array, lo: number, hi: number, time: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! <= time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lengthOfTagAndLen(field: number, len: number): number {
  const w = new ProtoWriter(16);
  w.tag(field, 2).varint(len);
  return w.length;
}

// ---- The merger as an actor (worker thread) --------------------------------------------

export interface MergerActorOptions {
  /** The attempt's perfetto file. */
  output: string;
  /** The attempt's access index (MergerOptions.accessIndex). */
  accessIndex?: string;
  /** The attempt's output index (MergerOptions.outputIndex). */
  outputIndex?: string;
  /** Defaults to the clocks read when the actor starts. */
  clocks?: { boottime: number; realtime: number };
}

export default defineActor<MergerActorOptions>('merger', async (ctx) => {
  // Loaded lazily: the addon is only needed when no clocks were given.
  const clocks = ctx.options.clocks ?? (await import('../native.js')).readTraceClocks();
  const merger = new Merger({
    output: ctx.options.output,
    clocks,
    ...(ctx.options.accessIndex ? { accessIndex: ctx.options.accessIndex } : {}),
    ...(ctx.options.outputIndex ? { outputIndex: ctx.options.outputIndex } : {}),
    // UWRX_NATIVE_ACCESSES=0: the TypeScript writer, to compare against
    nativeAccesses: process.env.UWRX_NATIVE_ACCESSES !== '0',
  });
  const inputLog = process.env.UWRX_DEBUG_MERGER_INPUT ? new MergerInputLog(process.env.UWRX_DEBUG_MERGER_INPUT, clocks) : undefined;
  const advance = (body: AdvanceBody) => {
    inputLog?.advance(body.watermark ?? Infinity);
    merger.advance(body.watermark ?? Infinity);
  };
  ctx.on(MERGER_MESSAGES.records, (body: RecordsBody) => {
    body.pids.forEach((pid, i) => {
      const bytes = Buffer.from(body.bytes[i]!.buffer, body.bytes[i]!.byteOffset, body.bytes[i]!.byteLength);
      inputLog?.records(pid, bytes);
      merger.records(pid, bytes);
    });
    if (body.watermark !== undefined) advance({ watermark: body.watermark });
  });
  ctx.on(MERGER_MESSAGES.advance, advance);
  const finish = (): MergeStats => {
    inputLog?.close();
    return merger.finish();
  };
  return {
    handlers: {
      [MERGER_MESSAGES.finish]: finish,
      [MERGER_MESSAGES.rows]: (body: { from: number }) => merger.accessRows(body.from),
    },
    stop() {
      // A run cut short still leaves a readable (if partial) trace.
      finish();
    },
  };
});
