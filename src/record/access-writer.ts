// The merger's hot path in native code (src/native/addon/accesses.cc): the access index
// (the same table as accesses.ts AccessIndex) and the Perfetto packets of access records
// (what the merger's emitAccess writes), a run of one process's records per call. A file
// storm is nearly all access records (find /usr: 150,000), at about 10 us each in
// TypeScript. Both implementations write the same bytes; the merger keeps the TypeScript
// one as the reference (MergerOptions.nativeAccesses: false).
import { closeSync, openSync } from 'node:fs';
import { native } from '../native.js';
import { EVENT_HEADER_SIZE, EVENT_LAYOUTS, type TraceEvent } from '../protocol/events.js';
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

/** Slots of AccessWriter.io (accesses.cc Io). In: lastTime, pos. Out: all. */
export const IO = { lastTime: 0, pos: 1, events: 2, packets: 3, repeats: 4, reason: 5, emitted: 6, need: 7 } as const;
/** Why emit stopped (io[IO.reason]): at the span's end; at a record it does not take
 * (another type, another process, a thread without a track, a truncated record); for
 * room in the chunk (io[IO.need] bytes); after a packet that filled the chunk. */
export const STOP = { done: 0, other: 1, room: 2, full: 3 } as const;

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
  }): object;
  accessWriterLocate(w: object, records: Buffer): [Uint32Array, Float64Array, number];
  accessWriterAdd(w: object, pid: number, op: number, buf: Uint8Array, start: number, end: number, times: number): boolean;
  accessWriterSize(w: object): number;
  accessWriterWriteIndex(w: object, fd: number, header: string): void;
  accessWriterEmit(w: object, records: Buffer, at: number, n: number, chunk: Buffer, proc: Float64Array): number;
}

export class AccessWriter implements AccessTable {
  /** The call's inputs and results (IO). */
  readonly io = new Float64Array(8);
  private readonly addon = native() as unknown as AccessAddon;
  private readonly handle: object;

  /** withIndex: keep the access index (repeats are then counted, not written);
   * chunkBytes: emit stops after the packet that brings the chunk to this length. */
  constructor(withIndex: boolean, chunkBytes: number) {
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

  /**
   * Writes the packets of the n records at records[at...] (whole records, back to back,
   * of the process `proc` describes: procInfo) into chunk from io[IO.pos], as long as
   * they are access records it can take; returns how many it took. io[IO.lastTime] is
   * the sequence's last time going in and coming out.
   */
  emit(records: Buffer, at: number, n: number, chunk: Buffer, proc: Float64Array): number {
    return this.addon.accessWriterEmit(this.handle, records, at, n, chunk, proc);
  }
}

/** What emit needs of a process: pid, its sequence id, the interned ids of the access
 * event's name, path and fields (in ACCESS_RECORD.fields order), and its threads' tracks. */
export function procInfo(
  pid: number,
  sequence: number,
  iids: { name: number; path: number; fields: readonly number[] },
  threads: ReadonlyMap<number, number>,
): Float64Array {
  const info = new Float64Array(5 + iids.fields.length + 2 * threads.size);
  info.set([pid, sequence, iids.name, iids.path, ...iids.fields, threads.size]);
  let i = 5 + iids.fields.length;
  for (const [tid, uuid] of threads) {
    info[i++] = tid;
    info[i++] = uuid;
  }
  return info;
}
