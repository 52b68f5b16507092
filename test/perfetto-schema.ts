// An independent Perfetto decoder for the tests: protobufjs message types built from the
// field numbers in shared/reference/perfetto.md (not from src/protocol/perfetto.ts).
import protobuf from 'protobufjs';
import { inflateSync } from 'node:zlib';

type FieldSpec = [name: string, id: number, type: string, rule?: 'repeated'];

const MESSAGES: Record<string, FieldSpec[]> = {
  Trace: [['packet', 1, 'TracePacket', 'repeated']],
  TracePacket: [
    ['timestamp', 8, 'uint64'],
    ['timestamp_clock_id', 58, 'uint32'],
    ['trusted_packet_sequence_id', 10, 'uint32'],
    ['sequence_flags', 13, 'uint32'],
    ['first_packet_on_sequence', 87, 'bool'],
    ['interned_data', 12, 'InternedData'],
    ['track_event', 11, 'TrackEvent'],
    ['track_descriptor', 60, 'TrackDescriptor'],
    ['clock_snapshot', 6, 'ClockSnapshot'],
    ['process_tree', 2, 'ProcessTree'],
    ['compressed_packets', 50, 'bytes'],
  ],
  ClockSnapshot: [
    ['clocks', 1, 'Clock', 'repeated'],
    ['primary_trace_clock', 2, 'uint32'],
  ],
  Clock: [
    ['clock_id', 1, 'uint32'],
    ['timestamp', 2, 'uint64'],
  ],
  TrackDescriptor: [
    ['uuid', 1, 'uint64'],
    ['parent_uuid', 5, 'uint64'],
    ['name', 2, 'string'],
    ['process', 3, 'ProcessDescriptor'],
    ['thread', 4, 'ThreadDescriptor'],
  ],
  ProcessDescriptor: [
    ['pid', 1, 'int32'],
    ['cmdline', 2, 'string', 'repeated'],
    ['process_name', 6, 'string'],
  ],
  ThreadDescriptor: [
    ['pid', 1, 'int32'],
    ['tid', 2, 'int64'],
    ['thread_name', 5, 'string'],
  ],
  TrackEvent: [
    ['type', 9, 'int32'],
    ['track_uuid', 11, 'uint64'],
    ['name_iid', 10, 'uint64'],
    ['name', 23, 'string'],
    ['debug_annotations', 4, 'DebugAnnotation', 'repeated'],
  ],
  DebugAnnotation: [
    ['name_iid', 1, 'uint64'],
    ['name', 10, 'string'],
    ['bool_value', 2, 'bool'],
    ['uint_value', 3, 'uint64'],
    ['int_value', 4, 'int64'],
    ['string_value', 6, 'string'],
    ['array_values', 12, 'DebugAnnotation', 'repeated'],
  ],
  InternedData: [
    ['event_names', 2, 'EventName', 'repeated'],
    ['debug_annotation_names', 3, 'DebugAnnotationName', 'repeated'],
  ],
  EventName: [
    ['iid', 1, 'uint64'],
    ['name', 2, 'string'],
  ],
  DebugAnnotationName: [
    ['iid', 1, 'uint64'],
    ['name', 2, 'string'],
  ],
  ProcessTree: [['processes', 1, 'Process', 'repeated']],
  Process: [
    ['pid', 1, 'int32'],
    ['ppid', 2, 'int32'],
    ['cmdline', 3, 'string', 'repeated'],
  ],
};

const root = new protobuf.Root();
const ns = root.define('perfetto.protos');
for (const [name, fields] of Object.entries(MESSAGES)) {
  const type = new protobuf.Type(name);
  for (const [fname, id, ftype, rule] of fields) type.add(new protobuf.Field(fname, id, ftype, rule));
  ns.add(type);
}
root.resolveAll();

const Trace = root.lookupType('perfetto.protos.Trace');

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Packet = Record<string, any>;

export interface DecodedFile {
  /** The file's own packets (each should hold only compressed_packets). */
  outer: Packet[];
  /** Every packet, compressed ones inflated, in file order. */
  packets: Packet[];
}

export function decodePerfetto(bytes: Uint8Array): DecodedFile {
  const toObject = (m: protobuf.Message): Packet =>
    Trace.toObject(m, { longs: Number, bytes: Buffer, arrays: true, defaults: false }) as Packet;
  const outer = (toObject(Trace.decode(bytes)).packet ?? []) as Packet[];
  const packets: Packet[] = [];
  for (const p of outer) {
    if (p.compressed_packets) {
      const inner = toObject(Trace.decode(inflateSync(p.compressed_packets as Buffer)));
      packets.push(...((inner.packet ?? []) as Packet[]));
    } else packets.push(p);
  }
  return { outer, packets };
}

export interface ResolvedEvent {
  time: number;
  seq: number;
  type: number;
  track: number;
  name: string | undefined;
  args: Record<string, unknown>;
}

/** Track events with interned names resolved per sequence (clears honoured). */
export function resolveEvents(packets: Packet[]): ResolvedEvent[] {
  const names = new Map<number, Map<number, string>>();
  const annNames = new Map<number, Map<number, string>>();
  const out: ResolvedEvent[] = [];
  for (const p of packets) {
    const seq = p.trusted_packet_sequence_id ?? 0;
    if ((p.sequence_flags ?? 0) & 1) {
      names.set(seq, new Map());
      annNames.set(seq, new Map());
    }
    for (const e of p.interned_data?.event_names ?? []) names.get(seq)!.set(e.iid, e.name);
    for (const e of p.interned_data?.debug_annotation_names ?? []) annNames.get(seq)!.set(e.iid, e.name);
    const te = p.track_event;
    if (!te) continue;
    const value = (a: Packet): unknown =>
      a.array_values?.length ? a.array_values.map(value) : a.string_value ?? a.uint_value ?? a.int_value ?? a.bool_value;
    const args: Record<string, unknown> = {};
    for (const a of te.debug_annotations ?? []) args[a.name ?? annNames.get(seq)?.get(a.name_iid) ?? '?'] = value(a);
    out.push({
      time: p.timestamp,
      seq,
      type: te.type,
      track: te.track_uuid,
      name: te.name ?? (te.name_iid ? names.get(seq)?.get(te.name_iid) : undefined),
      args,
    });
  }
  return out;
}
