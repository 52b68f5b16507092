// The merger's record path in native code (src/native/addon/accesses.cc): the access
// index (the same table as accesses.ts AccessIndex) and the Perfetto packets of every
// record (what the merger's emit() writes: process tracks, threads, lifetime slices,
// interned names), a run of records per call. A file storm is nearly all access records
// (find /usr: 150,000), at about 10 us each in TypeScript; a storm of short processes
// costs about 200 us of TypeScript per process. Both implementations write the same
// bytes; the merger keeps the TypeScript one as the reference (MergerOptions.nativeAccesses:
// false).
import { closeSync, openSync } from 'node:fs';
import { native } from '../native.js';
import { EVENT_HEADER_SIZE, EVENT_LAYOUTS, type TraceEvent } from '../protocol/events.js';
import { OUTPUT_BASE64, OUTPUT_TEXT } from '../protocol/trace-messages.js';
import { ACCESS_INDEX_HEADER, ACCESS_INDEX_OPS, OP_CODES, UWRX_OWN, accessOp, addEventAccesses, type AccessOp, type AccessTable } from './accesses.js';

/** Where an access record keeps what its packet needs (offsets from the record's start,
 * from the schema in events.ts). */
export const ACCESS_RECORD = (() => {
  const layout = [...EVENT_LAYOUTS.values()].find((l) => l.def.name === 'access')!;
  const at = (name: string) => EVENT_HEADER_SIZE + layout.fields.find((f) => f.name === name)!.offset;
  return {
    code: layout.def.code,
    op: at('op'),
    result: at('result'),
    count: at('count'),
    /** The path blob's length; its bytes follow. */
    pathLength: EVENT_HEADER_SIZE + ((layout.fixedSize + 7) & ~7),
    fields: layout.fields.map((f) => ({ name: f.name, type: f.type, at: EVENT_HEADER_SIZE + f.offset })),
    path: layout.def.blobs[0]!,
  };
})();

const FIELD_TYPE_CODES = { u32: 0, i32: 1, i64: 2, u64: 3 } as const;

/** Slots of AccessWriter.io (accesses.cc Io). In: pos (the chunk's length). Out: pos and
 * what the last call wrote: events, packets, repeats (accesses counted, not written). */
export const IO = { pos: 0, events: 1, packets: 2, repeats: 3 } as const;

/** What the native writer needs to take over the merger's record path. */
export interface TraceWriterOptions {
  /** Records kept for reordering before the oldest are written (MergerOptions.maxBuffered). */
  maxBuffered: number;
  /** Process P's packets go on sequence P + sequenceBase. */
  sequenceBase: number;
  /** Called for room in the chunk (need > 0) or to flush it (need 0), with the chunk's
   * length so far; returns the chunk's buffer afterwards. */
  sync(pos: number, need: number): Buffer;
  /** Called with the output records of each write of packets (copies, back to back, in
   * the order of their packets), for the output index; absent: none is kept. */
  output?: (records: Buffer) => void;
}

interface AccessAddon {
  accessWriterNew(options: {
    withIndex: boolean;
    accessCode: number;
    layout: Int32Array;
    opCodes: Uint8Array;
    statCode: number;
    missingCode: number;
    opNames: readonly string[];
    ownPrefix: Buffer;
    chunkBytes: number;
    recordTypes: Int32Array;
    io: Float64Array;
    schema?: Array<{ code: number; name: string; fixedEnd: number; fields: Array<{ name: string; at: number; type: number }>; blobs: readonly string[] }>;
    outputText?: string;
    outputBase64?: string;
    withOutputs?: boolean;
    maxBuffered?: number;
    sequenceBase?: number;
    sync?: (pos: number, need: number) => Buffer;
    output?: (records: Buffer) => void;
  }): object;
  accessWriterLocate(w: object, records: Buffer): [Uint32Array, Float64Array, number];
  accessWriterAdd(w: object, pid: number, op: number, buf: Uint8Array, start: number, end: number, times: number): boolean;
  accessWriterSize(w: object): number;
  accessWriterWriteIndex(w: object, fd: number, header: string): void;
  accessWriterRows(w: object, from: number): { rows: Int32Array; paths: string[] };
  traceWriterRecords(w: object, records: Buffer, chunk: Buffer): number;
  traceWriterAdvance(w: object, watermark: number, chunk: Buffer): void;
  traceWriterFinish(w: object, chunk: Buffer, globalSequence: number, globalLastTime: number): number;
}

export class AccessWriter implements AccessTable {
  /** The call's inputs and results (IO). */
  readonly io = new Float64Array(8);
  private readonly addon = native() as unknown as AccessAddon;
  private readonly handle: object;

  /** withIndex: keep the access index (repeats are then counted, not written);
   * chunkBytes: a chunk is flushed after the packet that brings it to this length;
   * trace: write every record's packets (emit, finish), not only the access index. */
  constructor(withIndex: boolean, chunkBytes: number, trace?: TraceWriterOptions) {
    const maxOp = 16;
    const opCodes = new Uint8Array(maxOp);
    for (let op = 0; op < maxOp; op++) opCodes[op] = OP_CODES.get(accessOp(op, 0))!;
    this.handle = this.addon.accessWriterNew({
      withIndex,
      accessCode: ACCESS_RECORD.code,
      layout: Int32Array.from([
        ACCESS_RECORD.op,
        ACCESS_RECORD.result,
        ACCESS_RECORD.count,
        ACCESS_RECORD.pathLength,
        ...ACCESS_RECORD.fields.flatMap((f) => [f.at, FIELD_TYPE_CODES[f.type]]),
      ]),
      opCodes,
      statCode: OP_CODES.get('stat')!,
      missingCode: OP_CODES.get('missing')!,
      opNames: ACCESS_INDEX_OPS,
      ownPrefix: UWRX_OWN,
      chunkBytes,
      // every record type's fixed part (header included, 8-aligned) and blob count
      recordTypes: Int32Array.from([...EVENT_LAYOUTS.values()].flatMap((l) => [l.def.code, EVENT_HEADER_SIZE + ((l.fixedSize + 7) & ~7), l.def.blobs.length])),
      io: this.io,
      ...(trace && {
        schema: [...EVENT_LAYOUTS.values()].map((l) => ({
          code: l.def.code,
          name: l.def.name,
          fixedEnd: EVENT_HEADER_SIZE + ((l.fixedSize + 7) & ~7),
          fields: l.fields.map((f) => ({ name: f.name, at: EVENT_HEADER_SIZE + f.offset, type: FIELD_TYPE_CODES[f.type] })),
          blobs: l.def.blobs,
        })),
        outputText: OUTPUT_TEXT,
        outputBase64: OUTPUT_BASE64,
        withOutputs: trace.output !== undefined,
        maxBuffered: trace.maxBuffered,
        sequenceBase: trace.sequenceBase,
        sync: trace.sync,
        output: trace.output ?? (() => {}),
      }),
    });
  }

  /** locateRecords (events.ts) over all of records: each whole record's offset and
   * time; bad is the offset of a malformed record that ended the walk, or -1 (run
   * locateRecords from there for its description). */
  locate(records: Buffer): { offsets: Uint32Array; times: Float64Array; bad: number } {
    const [offsets, times, bad] = this.addon.accessWriterLocate(this.handle, records);
    return { offsets, times, bad };
  }

  add(ev: TraceEvent): boolean {
    return addEventAccesses(this, ev);
  }

  addAccess(pid: number, op: AccessOp, buf: Uint8Array, start: number, end: number, times: number): boolean {
    return this.addon.accessWriterAdd(this.handle, pid, OP_CODES.get(op)!, buf, start, end, times);
  }

  get size(): number {
    return this.addon.accessWriterSize(this.handle);
  }

  writeFile(file: string): void {
    const fd = openSync(file, 'w');
    try {
      this.addon.accessWriterWriteIndex(this.handle, fd, ACCESS_INDEX_HEADER);
    } finally {
      closeSync(fd);
    }
  }

  /** The index's rows from row `from` on, as accessIndexRows reads them from the file
   * (before its paths' escapes are made canonical). */
  rows(from: number): { rows: Int32Array; paths: string[] } {
    return this.addon.accessWriterRows(this.handle, from);
  }

  /** The merger's records(): the whole records of `records` wait to be written (the
   * buffer is kept, and must not change, until they are; packets may be written into
   * chunk from io[IO.pos] when too many wait). Returns the offset of a malformed record
   * that ended them, or -1. */
  records(records: Buffer, chunk: Buffer): number {
    return this.addon.traceWriterRecords(this.handle, records, chunk);
  }

  /** The merger's advance(): the waiting records up to `watermark`, written into chunk
   * from io[IO.pos]. */
  advance(watermark: number, chunk: Buffer): void {
    this.addon.traceWriterAdvance(this.handle, watermark, chunk);
  }

  /** The merger's finish(): every process described and its slice ended, then the process
   * tree on the global sequence; returns the number of processes. */
  finish(chunk: Buffer, globalSequence: number, globalLastTime: number): number {
    return this.addon.traceWriterFinish(this.handle, chunk, globalSequence, globalLastTime);
  }
}
