// Trace event schema: the one definition of what a record in tmp/traces/<pid> holds.
// src/native/include/uwrx_events.h mirrors it for the C writers; test/trace-schema.test.ts
// fails when the two drift.
//
// Record layout (little endian, every record starts 8-byte aligned):
//   header   u32 size (whole record, padding included, multiple of 8; 0 = end of data)
//            u16 type, u16 flags, u32 pid, u32 tid, u64 time_ns (CLOCK_BOOTTIME)
//   fixed    the type's fields, laid out like a C struct (natural alignment)
//   blobs    for each blob of the type, in order: u32 length, then the bytes
//   padding  zeros up to the next multiple of 8

export const EVENT_HEADER_SIZE = 24;
/** Where the header's fields lie in a record (the layout above). */
export const EVENT_HEADER = { type: 4, flags: 6, pid: 8, tid: 12, time: 16 } as const;
/** No record is larger; larger payloads are split (output) or truncated (argv). */
export const EVENT_MAX_SIZE = 65536;
/** The writer's mapped window; a live file's last TRACE_WINDOW_SIZE bytes may still change. */
export const TRACE_WINDOW_SIZE = 1 << 20;
/** Where a buffer file's records start: the 64 MiB before are its process's in-process
 * recorder region (src/native/include/uwrx_recorder.h), a hole when it records nothing. */
export const TRACE_DATA_OFFSET = 64 << 20;
/** That region's header (struct uwrx_rec_header): its magic, and where its records
 * start (UWRX_REC_DATA_OFFSET, in the header page's tail). */
export const REC_MAGIC = 0x3163657278727775n;
export const REC_DATA_OFFSET = 3776;
/** uwrx-init's buffer log in the traces directory (tracebuf.h UWRX_TRACE_LOG): entries
 * of two u32 LE, [pid, 0] once pid's buffer is final and closed (instead of a rename to
 * <pid>.ended), [pid, n + 1] once pid took pooled buffer free.<n> under that name
 * (instead of a rename to <pid>). */
export const TRACE_LOG = 'log';
export const TRACE_LOG_ENTRY = 8;
/** Pooled buffers: free.<n> (tracebuf.h UWRX_TRACE_POOL_PREFIX). */
export const TRACE_POOL_PREFIX = 'free.';
/** A time (ns) not known yet. Zero, written as -0: times are past 2^31 ns, so a field
 * that starts as the small integer 0 changes representation (to a double) on its first
 * real time, and V8 then throws away every optimized function that used the object. */
export const NO_TIME = -0;
/** Header flag: a blob was cut to fit EVENT_MAX_SIZE. */
export const EVENT_FLAG_TRUNCATED = 1;
/** Output flag: more bytes of the same write follow in the next output record. */
export const OUTPUT_FLAG_MORE = 1;

/** `op` of an access event (src/native/include/uwrx_recorder.h UWRX_ACCESS_*). */
export const ACCESS_OPS = { 1: 'read', 2: 'stat', 3: 'access', 4: 'readlink', 5: 'readdir' } as const;

export type FieldType = 'u32' | 'i32' | 'u64' | 'i64';
export type EventCategory = 'process' | 'file' | 'network' | 'output' | 'rebuild';

export interface EventDef {
  readonly code: number;
  readonly name: string;
  readonly category: EventCategory;
  readonly fields: readonly (readonly [string, FieldType])[];
  /** Byte strings; 'argv' holds NUL-terminated arguments, 'data' raw output bytes. */
  readonly blobs: readonly string[];
}

export const EVENT_DEFS = [
  // Written by the parent: a new process (or thread, when `thread` is 1) was created.
  { code: 1, name: 'spawn', category: 'process', fields: [['child', 'u32'], ['thread', 'u32'], ['clone_flags', 'u64']], blobs: [] },
  { code: 2, name: 'exec', category: 'process', fields: [['result', 'i64']], blobs: ['path', 'argv'] },
  // status: exit code; signal: the killing signal or 0.
  { code: 3, name: 'exit', category: 'process', fields: [['status', 'i32'], ['signal', 'i32']], blobs: [] },
  // result: fd or -errno, as for every result below.
  { code: 16, name: 'open', category: 'file', fields: [['flags', 'i32'], ['mode', 'u32'], ['result', 'i64']], blobs: ['path'] },
  { code: 17, name: 'stat', category: 'file', fields: [['flags', 'i32'], ['result', 'i64']], blobs: ['path'] },
  { code: 18, name: 'unlink', category: 'file', fields: [['flags', 'i32'], ['result', 'i64']], blobs: ['path'] },
  { code: 19, name: 'rename', category: 'file', fields: [['flags', 'i32'], ['result', 'i64']], blobs: ['from', 'to'] },
  { code: 20, name: 'mkdir', category: 'file', fields: [['mode', 'u32'], ['result', 'i64']], blobs: ['path'] },
  { code: 21, name: 'rmdir', category: 'file', fields: [['result', 'i64']], blobs: ['path'] },
  { code: 22, name: 'chmod', category: 'file', fields: [['mode', 'u32'], ['result', 'i64']], blobs: ['path'] },
  { code: 23, name: 'chown', category: 'file', fields: [['uid', 'u32'], ['gid', 'u32'], ['result', 'i64']], blobs: ['path'] },
  { code: 24, name: 'truncate', category: 'file', fields: [['length', 'i64'], ['result', 'i64']], blobs: ['path'] },
  // A read access (open for reading, stat, access, readlink, opendir): op is one of
  // ACCESS_OPS; flags the call's open flags, access mode or AT_* flags; count the times
  // the process made this access (repeats counted in process by the recorder, else 1).
  { code: 25, name: 'access', category: 'file', fields: [['op', 'u32'], ['flags', 'i32'], ['result', 'i64'], ['count', 'u32']], blobs: ['path'] },
  // addr: 4 (AF_INET) or 16 (AF_INET6) address bytes, or a unix socket path.
  { code: 32, name: 'connect', category: 'network', fields: [['family', 'u32'], ['port', 'u32'], ['result', 'i64']], blobs: ['addr'] },
  // answers: the addresses returned, comma separated text.
  { code: 33, name: 'dns', category: 'network', fields: [['qtype', 'u32'], ['rcode', 'u32']], blobs: ['name', 'answers'] },
  // dest_dev, dest_ino: the stat of what fd named (a pipe, terminal or file; 0 unknown)
  { code: 48, name: 'output', category: 'output', fields: [['fd', 'u32'], ['flags', 'u32'], ['dest_dev', 'u64'], ['dest_ino', 'u64']], blobs: ['data'] },
  // A process answered from the record instead of running (partial rebuild).
  { code: 64, name: 'skip', category: 'rebuild', fields: [['status', 'i32']], blobs: ['path', 'reason'] },
  { code: 65, name: 'download', category: 'network', fields: [['status', 'i32'], ['size', 'u64']], blobs: ['url', 'path'] },
  // A git operation served from a mirror: status 0, or -1 when the client was refused;
  // bytes sent; request (advertise, ls-refs, fetch ...); wants space separated.
  { code: 66, name: 'git', category: 'network', fields: [['status', 'i32'], ['bytes', 'u64']], blobs: ['service', 'url', 'request', 'wants'] },
] as const satisfies readonly EventDef[];

type Defs = (typeof EVENT_DEFS)[number];
export type EventName = Defs['name'];

type FieldNames<D> = D extends { fields: readonly (readonly [infer N, FieldType])[] } ? N & string : never;
type BlobNames<D> = D extends { blobs: readonly (infer B)[] } ? B & string : never;

interface EventBase {
  pid: number;
  tid: number;
  /** CLOCK_BOOTTIME nanoseconds (exact below 2^53, about 104 days of uptime). */
  time: number;
  /** Header flags (EVENT_FLAG_*). */
  flags0?: number;
}

/** A decoded record: the header plus the type's fields (numbers) and blobs (bytes). */
export type TraceEvent = {
  [D in Defs as D['name']]: EventBase & { type: D['name'] } & { [F in FieldNames<D>]: number } & {
    [B in BlobNames<D>]: Buffer;
  };
}[EventName];

export type EventOf<N extends EventName> = Extract<TraceEvent, { type: N }>;

export interface FieldLayout {
  name: string;
  type: FieldType;
  offset: number;
}

export interface EventLayout {
  def: EventDef;
  fields: FieldLayout[];
  /** Size of the fixed part, C struct rules (natural alignment, tail padding). */
  fixedSize: number;
}

const fieldSize = (t: FieldType): number => (t === 'u32' || t === 'i32' ? 4 : 8);
const align = (n: number, a: number): number => (n + a - 1) & ~(a - 1);

function layoutOf(def: EventDef): EventLayout {
  let offset = 0;
  let maxAlign = 1;
  const fields: FieldLayout[] = [];
  for (const [name, type] of def.fields) {
    const size = fieldSize(type);
    offset = align(offset, size);
    fields.push({ name, type, offset });
    offset += size;
    maxAlign = Math.max(maxAlign, size);
  }
  return { def, fields, fixedSize: align(offset, maxAlign) };
}

export const EVENT_LAYOUTS: ReadonlyMap<number, EventLayout> = new Map(EVENT_DEFS.map((d) => [d.code, layoutOf(d)]));
const layoutByName = new Map([...EVENT_LAYOUTS.values()].map((l) => [l.def.name, l]));

export function eventDef(name: string): EventDef | undefined {
  return layoutByName.get(name)?.def;
}

/** Encodes one record (the same bytes the C writer produces). Blobs that would push the
 * record past EVENT_MAX_SIZE are cut and the record flagged EVENT_FLAG_TRUNCATED. */
export function encodeEvent(event: TraceEvent): Buffer {
  const layout = layoutByName.get(event.type);
  if (!layout) throw new Error(`unknown trace event type "${event.type}"`);
  const values = event as unknown as Record<string, number | Buffer>;
  const blobs = layout.def.blobs.map((b) => (values[b] as Buffer | undefined) ?? Buffer.alloc(0));
  let flags = event.flags0 ?? 0;
  let room = EVENT_MAX_SIZE - 8 - EVENT_HEADER_SIZE - align(layout.fixedSize, 8) - 4 * blobs.length;
  const cut = blobs.map((b) => {
    const take = Math.min(b.length, Math.max(room, 0));
    room -= take;
    if (take < b.length) flags |= EVENT_FLAG_TRUNCATED;
    return take;
  });
  const fixedEnd = EVENT_HEADER_SIZE + align(layout.fixedSize, 8);
  const size = align(fixedEnd + cut.reduce((s, n) => s + 4 + n, 0), 8);
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(size, 0);
  buf.writeUInt16LE(layout.def.code, EVENT_HEADER.type);
  buf.writeUInt16LE(flags, EVENT_HEADER.flags);
  buf.writeUInt32LE(event.pid, EVENT_HEADER.pid);
  buf.writeUInt32LE(event.tid, EVENT_HEADER.tid);
  writeU64(buf, EVENT_HEADER.time, event.time);
  for (const f of layout.fields) {
    const v = Number(values[f.name] ?? 0);
    const at = EVENT_HEADER_SIZE + f.offset;
    if (f.type === 'u32') buf.writeUInt32LE(v >>> 0, at);
    else if (f.type === 'i32') buf.writeInt32LE(v | 0, at);
    else if (f.type === 'u64') writeU64(buf, at, v);
    else buf.writeBigInt64LE(BigInt(Math.trunc(v)), at);
  }
  let at = fixedEnd;
  blobs.forEach((b, i) => {
    buf.writeUInt32LE(cut[i]!, at);
    b.copy(buf, at + 4, 0, cut[i]);
    at += 4 + cut[i]!;
  });
  return buf;
}

/** A u64 LE from a number below 2^53 (times, device and inode numbers as decoded). */
export function writeU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32LE(v % 0x100000000 >>> 0, at);
  buf.writeUInt32LE(Math.floor(v / 0x100000000) >>> 0, at + 4);
}

export function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 0x100000000;
}

export class TraceFormatError extends Error {
  override name = 'TraceFormatError';
}

/**
 * Decodes the complete records in buf[start, end). Blobs are views into buf: copy buf
 * first if it is reused. Returns the events and the offset just
 * past the last complete record: a record cut by `end` is left for the next read, a zero
 * size marks the end of written data. Malformed records throw TraceFormatError.
 */
export function decodeEvents(
  buf: Buffer,
  start = 0,
  end = buf.length,
  into: TraceEvent[] = [],
): { events: TraceEvent[]; next: number; atEnd: boolean } {
  let at = start;
  // a zero size ends the records even with less than a header after it (a reused
  // buffer's records are followed by zeros: tracebuf.h, the pool)
  while (at + 4 <= end) {
    const size = buf.readUInt32LE(at);
    if (size === 0) return { events: into, next: at, atEnd: true };
    if (size % 8 !== 0 || size < EVENT_HEADER_SIZE || size > EVENT_MAX_SIZE) {
      throw new TraceFormatError(`bad record size ${size} at offset ${at}`);
    }
    if (at + size > end) break;
    into.push(decodeRecord(buf, at, size));
    at += size;
  }
  return { events: into, next: at, atEnd: false };
}

/**
 * Finds the complete records in buf[start, end) by their headers alone (no decoding):
 * where they end, how many there are and the last one's time. Same contract as
 * decodeEvents for cut records and the zero-size end mark; a malformed header stops the
 * walk there and is described in `bad` (the records before it are still good).
 */
export function scanRecords(
  buf: Buffer,
  start = 0,
  end = buf.length,
): { next: number; count: number; lastTime: number; atEnd: boolean; bad?: string } {
  let at = start;
  let count = 0;
  let lastTime = 0;
  // a zero size ends the records even with less than a header after it (a reused
  // buffer's records are followed by zeros: tracebuf.h, the pool)
  while (at + 4 <= end) {
    const size = buf.readUInt32LE(at);
    if (size === 0) return { next: at, count, lastTime, atEnd: true };
    if (size % 8 !== 0 || size < EVENT_HEADER_SIZE || size > EVENT_MAX_SIZE) {
      return { next: at, count, lastTime, atEnd: false, bad: `bad record size ${size} at offset ${at}` };
    }
    if (at + size > end) break;
    lastTime = readU64(buf, at + EVENT_HEADER.time);
    count++;
    at += size;
  }
  return { next: at, count, lastTime, atEnd: false };
}

/**
 * Finds the complete records in buf[start, end) like decodeEvents, checking each as
 * decodeEvents would (type known, blobs inside the record) without decoding it: appends
 * each record's offset and time to `offsets` and `times`. A malformed record ends the
 * walk; it is described in `bad` (the records before it are good).
 */
export function locateRecords(
  buf: Buffer,
  start: number,
  end: number,
  offsets: number[],
  times: number[],
): { next: number; atEnd: boolean; bad?: string } {
  let at = start;
  // a zero size ends the records even with less than a header after it (a reused
  // buffer's records are followed by zeros: tracebuf.h, the pool)
  while (at + 4 <= end) {
    const size = buf.readUInt32LE(at);
    if (size === 0) return { next: at, atEnd: true };
    if (size % 8 !== 0 || size < EVENT_HEADER_SIZE || size > EVENT_MAX_SIZE) {
      return { next: at, atEnd: false, bad: `bad record size ${size} at offset ${at}` };
    }
    if (at + size > end) break;
    try {
      checkRecord(buf, at, size);
    } catch (err) {
      if (!(err instanceof TraceFormatError)) throw err;
      return { next: at, atEnd: false, bad: err.message };
    }
    offsets.push(at);
    times.push(readU64(buf, at + EVENT_HEADER.time));
    at += size;
  }
  return { next: at, atEnd: false };
}

/** The record's layout, once its type is known and its blobs lie inside it. */
function checkRecord(buf: Buffer, at: number, size: number): EventLayout {
  const code = buf.readUInt16LE(at + EVENT_HEADER.type);
  const layout = EVENT_LAYOUTS.get(code);
  if (!layout) throw new TraceFormatError(`unknown record type ${code} at offset ${at}`);
  let p = at + EVENT_HEADER_SIZE + align(layout.fixedSize, 8);
  const limit = at + size;
  for (const b of layout.def.blobs) {
    if (p + 4 > limit) throw new TraceFormatError(`record at offset ${at}: blob "${b}" past record end`);
    const len = buf.readUInt32LE(p);
    if (p + 4 + len > limit) throw new TraceFormatError(`record at offset ${at}: blob "${b}" past record end`);
    p += 4 + len;
  }
  return layout;
}

/** Decodes the record at `at` (its size already checked: see locateRecords). */
export function decodeRecord(buf: Buffer, at: number, size: number): TraceEvent {
  const layout = checkRecord(buf, at, size);
  const ev: Record<string, unknown> = {
    type: layout.def.name,
    pid: buf.readUInt32LE(at + EVENT_HEADER.pid),
    tid: buf.readUInt32LE(at + EVENT_HEADER.tid),
    time: readU64(buf, at + EVENT_HEADER.time),
  };
  const flags0 = buf.readUInt16LE(at + EVENT_HEADER.flags);
  if (flags0) ev.flags0 = flags0;
  const base = at + EVENT_HEADER_SIZE;
  for (const f of layout.fields) {
    const p = base + f.offset;
    ev[f.name] =
      f.type === 'u32' ? buf.readUInt32LE(p)
      : f.type === 'i32' ? buf.readInt32LE(p)
      : f.type === 'u64' ? readU64(buf, p)
      : buf.readInt32LE(p + 4) * 0x100000000 + buf.readUInt32LE(p);
  }
  let p = base + align(layout.fixedSize, 8);
  for (const b of layout.def.blobs) {
    const len = buf.readUInt32LE(p);
    ev[b] = buf.subarray(p + 4, p + 4 + len);
    p += 4 + len;
  }
  return ev as unknown as TraceEvent;
}

/** Where an output record (the type 'output') holds its fields, from its start: for
 * readers that take them in place (the output index gets every one of a run's writes). */
export const OUTPUT_RECORD = (() => {
  const layout = layoutByName.get('output')!;
  const at = (name: string) => EVENT_HEADER_SIZE + layout.fields.find((f) => f.name === name)!.offset;
  const lengthAt = EVENT_HEADER_SIZE + align(layout.fixedSize, 8);
  // the destination's device and inode side by side, as the output index keeps them
  const dest = at('dest_dev');
  if (at('dest_ino') !== dest + 8) throw new Error('output record: dest_ino does not follow dest_dev');
  return { code: layout.def.code, fd: at('fd'), dest, lengthAt, dataAt: lengthAt + 4 };
})();

/** argv blob (NUL-terminated strings) to its arguments. */
export function splitArgv(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < blob.length; i++) {
    if (blob[i] === 0) {
      out.push(blob.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < blob.length) out.push(blob.subarray(start));
  return out;
}

export function joinArgv(args: readonly (string | Uint8Array)[]): Buffer {
  return Buffer.concat(args.flatMap((a) => [Buffer.from(a as string), Buffer.from([0])]));
}
