// A small protobuf writer and reader for the Perfetto messages uwrx emits. Field numbers
// are named once, here (source: shared/reference/perfetto.md).

export const WireType = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

export const Fields = {
  Trace: { packet: 1 },
  TracePacket: {
    processTree: 2,
    clockSnapshot: 6,
    timestamp: 8,
    trustedPacketSequenceId: 10,
    trackEvent: 11,
    internedData: 12,
    sequenceFlags: 13,
    compressedPackets: 50,
    timestampClockId: 58,
    trackDescriptor: 60,
    firstPacketOnSequence: 87,
  },
  ClockSnapshot: { clocks: 1, primaryTraceClock: 2 },
  Clock: { clockId: 1, timestamp: 2 },
  TrackDescriptor: { uuid: 1, name: 2, process: 3, thread: 4, parentUuid: 5 },
  ProcessDescriptor: { pid: 1, cmdline: 2, processName: 6 },
  ThreadDescriptor: { pid: 1, tid: 2, threadName: 5 },
  TrackEvent: { debugAnnotations: 4, type: 9, nameIid: 10, trackUuid: 11, name: 23 },
  DebugAnnotation: {
    nameIid: 1,
    boolValue: 2,
    uintValue: 3,
    intValue: 4,
    stringValue: 6,
    name: 10,
    arrayValues: 12,
  },
  InternedData: { eventNames: 2, debugAnnotationNames: 3 },
  /** EventName and DebugAnnotationName share this shape. */
  InternedName: { iid: 1, name: 2 },
  ProcessTree: { processes: 1 },
  ProcessTreeProcess: { pid: 1, ppid: 2, cmdline: 3 },
} as const;

export const SequenceFlags = { incrementalStateCleared: 1, needsIncrementalState: 2 } as const;
export const TrackEventType = { sliceBegin: 1, sliceEnd: 2, instant: 3 } as const;
export const BuiltinClock = { realtime: 1, monotonic: 3, boottime: 6 } as const;

/** Bytes a nested message's length takes: a fixed-width (redundant) varint, so the length
 * can be patched in after the body is written without moving it. */
const NESTED_LEN_BYTES = 4;
const NESTED_MAX = 1 << (7 * NESTED_LEN_BYTES);

export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Unsigned varint; numbers up to 2^53, bigints for the full 64-bit range. */
  varint(v: number | bigint): this {
    this.room(10);
    if (typeof v === 'bigint') {
      let x = BigInt.asUintN(64, v);
      while (x >= 0x80n) {
        this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
        x >>= 7n;
      }
      this.buf[this.pos++] = Number(x);
      return this;
    }
    if (v < 0) return this.varint(BigInt(v));
    if (v < 0x80000000) {
      // the usual small value, in 32-bit integer steps
      while (v >= 0x80) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.pos++] = v;
      return this;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  /** uint32/uint64/enum; negative int32/int64 are encoded as 10-byte two's complement. */
  uint(field: number, v: number | bigint): this {
    return this.tag(field, WireType.varint).varint(v);
  }

  int(field: number, v: number | bigint): this {
    return this.uint(field, v);
  }

  bool(field: number, v: boolean): this {
    return this.uint(field, v ? 1 : 0);
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WireType.bytes).varint(b.length);
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  string(field: number, s: string): this {
    const n = Buffer.byteLength(s);
    this.tag(field, WireType.bytes).varint(n);
    this.room(n);
    this.buf.write(s, this.pos);
    this.pos += n;
    return this;
  }

  /** Length-delimited nested message written by body(). */
  message(field: number, body: (w: this) => void): this {
    const at = this.beginMessage(field);
    body(this);
    return this.endMessage(at);
  }

  /** Opens a nested message (as message() does, for hot paths without a closure);
   * returns where its length goes, for endMessage. */
  beginMessage(field: number): number {
    this.tag(field, WireType.bytes);
    this.room(NESTED_LEN_BYTES);
    const at = this.pos;
    this.pos += NESTED_LEN_BYTES;
    return at;
  }

  endMessage(at: number): this {
    const len = this.pos - at - NESTED_LEN_BYTES;
    if (len >= NESTED_MAX) throw new RangeError(`protobuf message too large: ${len} bytes`);
    for (let i = 0; i < NESTED_LEN_BYTES; i++) {
      const last = i === NESTED_LEN_BYTES - 1;
      this.buf[at + i] = ((len >>> (7 * i)) & 0x7f) | (last ? 0 : 0x80);
    }
    return this;
  }

  /** Opens a length-delimited field whose length is written, as the shortest varint,
   * by endBytes (room for two length bytes is kept, the body moves if it needs another
   * size): a packet written straight into its chunk. Returns where the body starts. */
  beginBytes(field: number): number {
    this.tag(field, WireType.bytes);
    this.room(2);
    this.pos += 2;
    return this.pos;
  }

  endBytes(bodyStart: number): this {
    const len = this.pos - bodyStart;
    const n = varintLength(len);
    if (n !== 2) {
      this.room(n);
      this.buf.copyWithin(bodyStart - 2 + n, bodyStart, this.pos);
      this.pos += n - 2;
    }
    let at = bodyStart - 2;
    let v = len;
    while (v >= 0x80) {
      this.buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[at] = v;
    return this;
  }

  /** A bytes field holding src[start, end). */
  bytesOf(field: number, src: Uint8Array, start: number, end: number): this {
    const n = end - start;
    this.tag(field, WireType.bytes).varint(n);
    this.room(n);
    // a short copy (a path) costs less byte by byte than through a subarray view
    if (n <= 128) for (let i = start; i < end; i++) this.buf[this.pos++] = src[i]!;
    else {
      this.buf.set(src.subarray(start, end), this.pos);
      this.pos += n;
    }
    return this;
  }

  /** The whole buffer, written bytes and room after them, for a writer in native code
   * (then setLength); valid until the next write that needs more room. */
  get backing(): Buffer {
    return this.buf;
  }

  /** Makes room for n more bytes. */
  reserve(n: number): void {
    this.room(n);
  }

  /** The length after bytes were written into backing directly. */
  setLength(n: number): void {
    if (n < 0 || n > this.buf.length) throw new RangeError(`ProtoWriter length ${n} outside its buffer`);
    this.pos = n;
  }

  /** The bytes written so far (a view; valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
  }
}

/** Bytes of the shortest varint of a length (below 2^31). */
function varintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

export interface ProtoField {
  field: number;
  wireType: number;
  /** varint / fixed values */
  value: bigint;
  /** length-delimited payload bounds (absolute offsets into the buffer) */
  start: number;
  end: number;
}

export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError';
}

/** Iterates the fields of one message in buf[start, end); throws ProtoDecodeError on
 * truncation or an unknown wire type. */
export function* readFields(buf: Uint8Array, start = 0, end = buf.length): Generator<ProtoField> {
  let at = start;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= end) throw new ProtoDecodeError(`truncated varint at offset ${at}`);
      const b = buf[at++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
      if (shift > 63n) throw new ProtoDecodeError(`varint too long at offset ${at}`);
    }
  };
  while (at < end) {
    const fieldStart = at;
    const key = varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new ProtoDecodeError(`field number 0 at offset ${fieldStart}`);
    if (wireType === WireType.varint) {
      yield { field, wireType, value: varint(), start: 0, end: 0 };
    } else if (wireType === WireType.bytes) {
      const len = Number(varint());
      if (at + len > end) throw new ProtoDecodeError(`truncated field ${field} at offset ${fieldStart}: needs ${len} bytes, ${end - at} left`);
      yield { field, wireType, value: 0n, start: at, end: at + len };
      at += len;
    } else if (wireType === WireType.fixed64 || wireType === WireType.fixed32) {
      const n = wireType === WireType.fixed64 ? 8 : 4;
      if (at + n > end) throw new ProtoDecodeError(`truncated field ${field} at offset ${fieldStart}`);
      let v = 0n;
      for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
      at += n;
      yield { field, wireType, value: v, start: 0, end: 0 };
    } else {
      throw new ProtoDecodeError(`unsupported wire type ${wireType} at offset ${fieldStart}`);
    }
  }
}

/** The fields of one message, like readFields, without allocating per field: values are
 * numbers (exact below 2^53; `signed` is the int64 reading of a varint, which negative
 * int fields need). For decoding large traces. */
export class FieldCursor {
  field = 0;
  wireType = 0;
  value = 0;
  signed = 0;
  start = 0;
  end = 0;
  private at: number;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    private readonly limit = buf.length,
  ) {
    this.at = start;
  }

  /** Moves to the next field; false at the end of the message. */
  next(): boolean {
    if (this.at >= this.limit) return false;
    const fieldStart = this.at;
    const key = this.varint();
    this.field = Math.floor(key / 8);
    this.wireType = key % 8;
    this.start = this.end = 0;
    if (this.field === 0) throw new ProtoDecodeError(`field number 0 at offset ${fieldStart}`);
    if (this.wireType === WireType.varint) {
      this.value = this.varint();
    } else if (this.wireType === WireType.bytes) {
      const len = this.varint();
      if (this.at + len > this.limit) throw new ProtoDecodeError(`truncated field ${this.field} at offset ${fieldStart}: needs ${len} bytes, ${this.limit - this.at} left`);
      this.start = this.at;
      this.end = this.at + len;
      this.value = this.signed = 0;
      this.at += len;
    } else if (this.wireType === WireType.fixed64 || this.wireType === WireType.fixed32) {
      const n = this.wireType === WireType.fixed64 ? 8 : 4;
      if (this.at + n > this.limit) throw new ProtoDecodeError(`truncated field ${this.field} at offset ${fieldStart}`);
      let v = 0;
      for (let i = n - 1; i >= 0; i--) v = v * 256 + this.buf[this.at + i]!;
      this.value = this.signed = v;
      this.at += n;
    } else {
      throw new ProtoDecodeError(`unsupported wire type ${this.wireType} at offset ${fieldStart}`);
    }
    return true;
  }

  /** A varint as a number; sets `signed` too. Seven bytes or fewer (49 bits) need no
   * bigint; longer ones (large or negative values) take the exact path. */
  private varint(): number {
    const buf = this.buf;
    const begin = this.at;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.at >= this.limit) throw new ProtoDecodeError(`truncated varint at offset ${this.at}`);
      const b = buf[this.at++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        this.signed = result;
        return result;
      }
      scale *= 128;
    }
    this.at = begin;
    let big = 0n;
    let shift = 0n;
    for (;;) {
      if (this.at >= this.limit) throw new ProtoDecodeError(`truncated varint at offset ${this.at}`);
      const b = buf[this.at++]!;
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7n;
      if (shift > 63n) throw new ProtoDecodeError(`varint too long at offset ${this.at}`);
    }
    this.signed = Number(BigInt.asIntN(64, big));
    return Number(BigInt.asUintN(64, big));
  }
}
