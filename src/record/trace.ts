// Reads an attempt's `perfetto` file back into processes and events (the inverse of the
// merger), noting every rule of the format it finds broken.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { unescapeBytes } from './escape.js';
import { FieldCursor, Fields, ProtoDecodeError, SequenceFlags, TrackEventType, readFields, type ProtoField } from '../protocol/perfetto.js';
import { OUTPUT_BASE64, OUTPUT_TEXT } from '../protocol/trace-messages.js';
import { errnoText } from '../fs.js';

export type ArgValue = number | string | boolean | string[];

export interface RecordedEvent {
  /** ns, the trace clock (CLOCK_BOOTTIME). */
  time: number;
  pid: number;
  tid: number;
  type: string;
  args: Record<string, ArgValue>;
}

export interface RecordedProcess {
  pid: number;
  ppid: number;
  /** Arguments as escaped text (src/record/escape.ts). */
  cmdline: string[];
  name: string;
  start: number | undefined;
  end: number | undefined;
  status: number | undefined;
  signal: number | undefined;
  threads: number[];
}

export interface RecordedTrace {
  processes: Map<number, RecordedProcess>;
  events: RecordedEvent[];
  /** Broken format rules, one line each. */
  problems: string[];
  packets: number;
}

interface Track {
  pid: number;
  tid: number | undefined;
}

interface SeqState {
  valid: boolean;
  names: Map<number, string>;
  annotationNames: Map<number, string>;
}

const P = Fields.TracePacket;
const text = (buf: Uint8Array, s: number, e: number): string => Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8');

/** Reads and checks a perfetto file. Decoding stops at the first undecodable byte; what was
 * read until then is returned with the problem. */
export function readTrace(file: string): RecordedTrace {
  const steps = decodeSteps(file);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** readTrace in steps: yields to the event loop after each top-level packet (a chunk of
 * up to ~384 KiB of packets), so an interactive view stays responsive while it reads. */
export async function readTraceAsync(file: string): Promise<RecordedTrace> {
  const steps = decodeSteps(file);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function* decodeSteps(file: string): Generator<void, RecordedTrace> {
  const result: RecordedTrace = { processes: new Map(), events: [], problems: [], packets: 0 };
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    result.problems.push(`perfetto: cannot read ${file}: ${errnoText(err)}`);
    return result;
  }
  const reader = new TraceReader(result);
  try {
    if (data.length > 0 && data[0] !== 0x0a) throw new ProtoDecodeError('does not start with a TracePacket (byte 0 is not 0x0A)');
    for (const f of readFields(data)) {
      reader.readTopLevel(data, f);
      yield;
    }
  } catch (err) {
    if (!(err instanceof ProtoDecodeError)) throw err;
    result.problems.push(`perfetto: ${err.message}`);
  }
  reader.finish();
  return result;
}

class TraceReader {
  private readonly tracks = new Map<number, Track>();
  private readonly seqs = new Map<number, SeqState>();
  private readonly unresolved: { uuid: number; ev: RecordedEvent; kind: number }[] = [];
  private lastTime = 0;

  constructor(private readonly out: RecordedTrace) {}

  readTraceBytes(buf: Uint8Array, nested: boolean): void {
    for (const f = new FieldCursor(buf); f.next(); ) this.readTopLevel(buf, f, nested);
  }

  readTopLevel(buf: Uint8Array, f: Pick<ProtoField, 'field' | 'wireType' | 'start' | 'end'>, nested = false): void {
    if (f.field !== Fields.Trace.packet || f.wireType !== 2) {
      throw new ProtoDecodeError(`expected a TracePacket, found field ${f.field}`);
    }
    this.readPacket(buf, f.start, f.end, nested);
  }

  private proc(pid: number): RecordedProcess {
    let p = this.out.processes.get(pid);
    if (!p) {
      p = { pid, ppid: 0, cmdline: [], name: '', start: undefined, end: undefined, status: undefined, signal: undefined, threads: [] };
      this.out.processes.set(pid, p);
    }
    return p;
  }

  private readPacket(buf: Uint8Array, start: number, end: number, nested: boolean): void {
    this.out.packets++;
    let time: number | undefined;
    let seqId = 0;
    let flags = 0;
    let interned: [number, number] | undefined;
    let trackEvent: [number, number] | undefined;
    const later: (() => void)[] = [];
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      switch (f.field) {
        case P.timestamp: time = f.value; break;
        case P.trustedPacketSequenceId: seqId = f.value; break;
        case P.sequenceFlags: flags = f.value; break;
        case P.internedData: interned = [f.start, f.end]; break;
        case P.trackEvent: trackEvent = [f.start, f.end]; break;
        case P.trackDescriptor: { const [s, e] = [f.start, f.end]; later.push(() => this.readTrackDescriptor(buf, s, e)); break; }
        case P.processTree: { const [s, e] = [f.start, f.end]; later.push(() => this.readProcessTree(buf, s, e)); break; }
        case P.compressedPackets: {
          if (nested) throw new ProtoDecodeError('compressed_packets inside compressed_packets');
          let inflated: Buffer;
          try {
            inflated = inflateSync(buf.subarray(f.start, f.end));
          } catch (err) {
            throw new ProtoDecodeError(`compressed_packets do not inflate: ${(err as Error).message}`);
          }
          this.readTraceBytes(inflated, true);
          break;
        }
        default: break;
      }
    }
    if (time === undefined) time = this.lastTime;
    this.lastTime = time;
    let seq: SeqState | undefined;
    if (seqId !== 0) {
      seq = this.seqs.get(seqId);
      if (!seq) {
        seq = { valid: false, names: new Map(), annotationNames: new Map() };
        this.seqs.set(seqId, seq);
      }
      if (flags & SequenceFlags.incrementalStateCleared) {
        seq.valid = true;
        seq.names.clear();
        seq.annotationNames.clear();
      }
      if (flags & SequenceFlags.needsIncrementalState && !seq.valid) {
        this.out.problems.push(`perfetto: sequence ${seqId}: packet needs incremental state before the sequence was cleared`);
      }
    }
    if (interned) {
      if (!seq) this.out.problems.push('perfetto: interned data without a sequence id');
      else this.readInterned(buf, interned[0], interned[1], seq);
    }
    for (const fn of later) fn();
    if (trackEvent) this.readTrackEvent(buf, trackEvent[0], trackEvent[1], time, seq, seqId);
  }

  private readInterned(buf: Uint8Array, start: number, end: number, seq: SeqState): void {
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      const table =
        f.field === Fields.InternedData.eventNames ? seq.names
        : f.field === Fields.InternedData.debugAnnotationNames ? seq.annotationNames
        : undefined;
      if (!table) continue;
      let iid = 0;
      let name = '';
      for (const e = new FieldCursor(buf, f.start, f.end); e.next(); ) {
        if (e.field === Fields.InternedName.iid) iid = e.value;
        else if (e.field === Fields.InternedName.name) name = text(buf, e.start, e.end);
      }
      table.set(iid, name);
    }
  }

  private readTrackDescriptor(buf: Uint8Array, start: number, end: number): void {
    let uuid = 0;
    let track: Track | undefined;
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      if (f.field === Fields.TrackDescriptor.uuid) uuid = f.value;
      else if (f.field === Fields.TrackDescriptor.process) {
        let pid = 0;
        const cmdline: string[] = [];
        let name = '';
        for (const e = new FieldCursor(buf, f.start, f.end); e.next(); ) {
          if (e.field === Fields.ProcessDescriptor.pid) pid = e.signed;
          else if (e.field === Fields.ProcessDescriptor.cmdline) cmdline.push(text(buf, e.start, e.end));
          else if (e.field === Fields.ProcessDescriptor.processName) name = text(buf, e.start, e.end);
        }
        const p = this.proc(pid);
        if (p.name && p.start !== undefined) this.out.problems.push(`perfetto: process ${pid} described twice`);
        p.cmdline = cmdline;
        p.name = name;
        track = { pid, tid: undefined };
      } else if (f.field === Fields.TrackDescriptor.thread) {
        let pid = 0;
        let tid = 0;
        for (const e = new FieldCursor(buf, f.start, f.end); e.next(); ) {
          if (e.field === Fields.ThreadDescriptor.pid) pid = e.signed;
          else if (e.field === Fields.ThreadDescriptor.tid) tid = e.signed;
        }
        this.proc(pid).threads.push(tid);
        track = { pid, tid };
      }
    }
    if (track) {
      if (track.pid <= 0 || track.tid === 0) this.out.problems.push(`perfetto: track ${uuid} has pid/tid 0`);
      this.tracks.set(uuid, track);
    }
  }

  private readProcessTree(buf: Uint8Array, start: number, end: number): void {
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      if (f.field !== Fields.ProcessTree.processes) continue;
      let pid = 0;
      let ppid = 0;
      const cmdline: string[] = [];
      for (const e = new FieldCursor(buf, f.start, f.end); e.next(); ) {
        if (e.field === Fields.ProcessTreeProcess.pid) pid = e.signed;
        else if (e.field === Fields.ProcessTreeProcess.ppid) ppid = e.signed;
        else if (e.field === Fields.ProcessTreeProcess.cmdline) cmdline.push(text(buf, e.start, e.end));
      }
      const p = this.proc(pid);
      p.ppid = ppid;
      if (p.cmdline.length === 0) p.cmdline = cmdline;
    }
  }

  private readTrackEvent(buf: Uint8Array, start: number, end: number, time: number, seq: SeqState | undefined, seqId: number): void {
    let type = 0;
    let uuid = 0;
    let name: string | undefined;
    const args: Record<string, ArgValue> = {};
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      if (f.field === Fields.TrackEvent.type) type = f.value;
      else if (f.field === Fields.TrackEvent.trackUuid) uuid = f.value;
      else if (f.field === Fields.TrackEvent.name) name = text(buf, f.start, f.end);
      else if (f.field === Fields.TrackEvent.nameIid) {
        const iid = f.value;
        name = seq?.names.get(iid);
        if (name === undefined) this.out.problems.push(`perfetto: sequence ${seqId}: event name iid ${iid} not interned`);
      } else if (f.field === Fields.TrackEvent.debugAnnotations) {
        const [key, value] = this.readAnnotation(buf, f.start, f.end, seq, seqId);
        if (key !== undefined) args[key] = value;
      }
    }
    const ev: RecordedEvent = { time, pid: 0, tid: 0, type: name ?? '', args };
    const track = this.tracks.get(uuid);
    if (!track) this.unresolved.push({ uuid, ev, kind: type });
    else this.place(track, ev, type);
  }

  private place(track: Track, ev: RecordedEvent, type: number): void {
    ev.pid = track.pid;
    ev.tid = track.tid ?? track.pid;
    const p = this.proc(track.pid);
    if (type === TrackEventType.instant) this.out.events.push(ev);
    else if (type === TrackEventType.sliceBegin) p.start = ev.time;
    else if (type === TrackEventType.sliceEnd) {
      p.end = ev.time;
      if (typeof ev.args.status === 'number') p.status = ev.args.status;
      if (typeof ev.args.signal === 'number') p.signal = ev.args.signal;
    }
  }

  private readAnnotation(buf: Uint8Array, start: number, end: number, seq: SeqState | undefined, seqId: number): [string | undefined, ArgValue] {
    let key: string | undefined;
    let value: ArgValue = '';
    const array: string[] = [];
    let isArray = false;
    for (const f = new FieldCursor(buf, start, end); f.next(); ) {
      switch (f.field) {
        case Fields.DebugAnnotation.name: key = text(buf, f.start, f.end); break;
        case Fields.DebugAnnotation.nameIid: {
          key = seq?.annotationNames.get(f.value);
          if (key === undefined) this.out.problems.push(`perfetto: sequence ${seqId}: annotation name iid ${f.value} not interned`);
          break;
        }
        case Fields.DebugAnnotation.boolValue: value = f.value !== 0; break;
        case Fields.DebugAnnotation.uintValue: value = f.value; break;
        case Fields.DebugAnnotation.intValue: value = f.signed; break;
        case Fields.DebugAnnotation.stringValue: value = text(buf, f.start, f.end); break;
        case Fields.DebugAnnotation.arrayValues: {
          isArray = true;
          const [, v] = this.readAnnotation(buf, f.start, f.end, seq, seqId);
          array.push(String(v));
          break;
        }
        default: break;
      }
    }
    return [key, isArray ? array : value];
  }

  finish(): void {
    for (const { uuid, ev, kind } of this.unresolved) {
      const track = this.tracks.get(uuid);
      if (!track) this.out.problems.push(`perfetto: event "${ev.type}" at ${ev.time} on track ${uuid}, which has no descriptor`);
      else this.place(track, ev, kind);
    }
    this.out.events.sort((a, b) => a.time - b.time);
  }
}

/** The exact bytes of a recorded output event. */
export function outputBytes(ev: RecordedEvent): Buffer {
  const t = ev.args[OUTPUT_TEXT];
  if (typeof t === 'string') return Buffer.from(t, 'utf8');
  const b = ev.args[OUTPUT_BASE64];
  if (typeof b === 'string') return Buffer.from(b, 'base64');
  return Buffer.alloc(0);
}

/** A path argument (escaped text in the trace) as bytes. */
export function pathBytes(value: ArgValue | undefined): Buffer {
  return typeof value === 'string' ? unescapeBytes(value) : Buffer.alloc(0);
}
