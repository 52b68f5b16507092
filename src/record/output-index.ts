// The output index (docs/record.md, "output.bin"): every byte the processes wrote to
// stdout and stderr, in the trace's order, as records of
//   u32 LE pid, u8 fd, u32 LE length, u64 LE dest dev, u64 LE dest ino, then the bytes,
// dest being the stat of what the fd named (a pipe, a terminal, a file).
// Written by the merger next to the trace, so that the output of some processes (a
// skipped compile's warnings) is read by offset instead of by decoding the whole trace.
import { closeSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { EVENT_HEADER, OUTPUT_RECORD, readU64, writeU64 } from '../protocol/events.js';

export const OUTPUT_INDEX_FILE = 'output.bin';
export const OUTPUT_RECORD_HEADER = 25;
/** Bytes read at a time when scanning the headers. */
const OUTPUT_SCAN_CHUNK = 1 << 20;
/** Largest file put in the order of time in memory (larger ones are read record by record). */
const SORT_IN_MEMORY = 32 << 20;
/** Bytes written at a time when putting the file in order. */
const SORT_WRITE_CHUNK = 1 << 20;

/** Buffer.copy for `n` bytes; a loop for a few, where copy's own cost is larger. */
function copyBytes(from: Buffer, at: number, to: Buffer, toAt: number, n: number): void {
  if (n > 64) {
    from.copy(to, toAt, at, at + n);
    return;
  }
  for (let i = 0; i < n; i++) to[toAt + i] = from[at + i]!;
}

function writeAll(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
}

/** A run of whole records: byte offset in output.bin and length. */
export type OutputRange = [offset: number, length: number];

/** Records arrive in the merger's order, which is the order of time except where a live
 * process's buffer was read late (the collector reads a running process's last window
 * only when it ends: a make's own lines come after its children's). The file is put in
 * the order of time when it closes, so that a process tree's output replays interleaved
 * as it was written. */
export class OutputIndexWriter {
  private readonly fd: number;
  private buffer = Buffer.alloc(1 << 16);
  private used = 0;
  private closed = false;
  /** Each record's time and size, in the order written (records lie back to back: an
   * offset is the sizes before it): in typed arrays grown by doubling (a tuple per write
   * was work for the garbage collector). */
  private times = new Float64Array(1024);
  private sizes = new Uint32Array(1024);
  private count = 0;
  private written = 0;
  private inOrder = true;

  /** `sortInMemory`: the largest file put in order in memory (SORT_IN_MEMORY). */
  constructor(
    private readonly file: string,
    private readonly sortInMemory = SORT_IN_MEMORY,
  ) {
    this.fd = openSync(file, 'w');
  }

  /** `dev`, `ino`: what the fd named; `time`: the write's (trace) time. */
  add(pid: number, fd: number, dev: number, ino: number, data: Buffer, time = 0): void {
    const at = this.reserve(data.length, time);
    if (at < 0) return;
    const b = this.buffer;
    b.writeUInt32LE(pid, at);
    b[at + 4] = fd;
    b.writeUInt32LE(data.length, at + 5);
    writeU64(b, at + 9, dev);
    writeU64(b, at + 17, ino);
    data.copy(b, at + OUTPUT_RECORD_HEADER);
  }

  /** add() of the trace record of type output (src/protocol/events.ts) at `at` in
   * `buf`, `size` bytes, its fields read where the record holds them (a run's every
   * write passes here: no decoded event, no number made of the destination's device and
   * inode, no copy call for a short line). False, adding nothing, when it is not a whole
   * output record. */
  addRecord(buf: Buffer, at = 0, size = buf.length - at): boolean {
    const R = OUTPUT_RECORD;
    if (size < R.dataAt || buf.readUInt16LE(at + EVENT_HEADER.type) !== R.code) return false;
    const length = buf.readUInt32LE(at + R.lengthAt);
    if (R.dataAt + length > size) return false;
    const to = this.reserve(length, readU64(buf, at + EVENT_HEADER.time));
    if (to < 0) return true;
    const b = this.buffer;
    b.writeUInt32LE(buf.readUInt32LE(at + EVENT_HEADER.pid), to);
    b[to + 4] = buf[at + R.fd]!;
    b.writeUInt32LE(length, to + 5);
    // the device and inode, side by side in both
    copyBytes(buf, at + R.dest, b, to + 9, 16);
    copyBytes(buf, at + R.dataAt, b, to + OUTPUT_RECORD_HEADER, length);
    return true;
  }

  /** Room for a record of `length` bytes written at `time`: its offset in the buffer, or
   * -1 when nothing is to be written (closed, or no bytes). */
  private reserve(length: number, time: number): number {
    if (this.closed || length === 0) return -1;
    if (this.count > 0 && time < this.times[this.count - 1]!) this.inOrder = false;
    const need = OUTPUT_RECORD_HEADER + length;
    if (this.count === this.times.length) {
      const grow = <T extends Float64Array | Uint32Array>(a: T): T => {
        const bigger = new (a.constructor as new (n: number) => T)(a.length * 2);
        bigger.set(a);
        return bigger;
      };
      this.times = grow(this.times);
      this.sizes = grow(this.sizes);
    }
    this.times[this.count] = time;
    this.sizes[this.count++] = need;
    if (this.used + need > this.buffer.length) this.flush();
    if (need > this.buffer.length) this.buffer = Buffer.alloc(need);
    const at = this.used;
    this.used += need;
    return at;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    closeSync(this.fd);
    this.closed = true;
    if (!this.inOrder) this.sortByTime();
  }

  /** Rewrites the file with its records in the order of time (equal times: as written).
   * Whole buffers at a time: a configure script's 5,000 records (a line of config.log
   * each) cost 10,000 system calls when read and written one by one, some 50 ms on the
   * io thread, on the finish's critical path. */
  private sortByTime(): void {
    const { times, sizes } = this;
    const order = Array.from({ length: this.count }, (_, i) => i).sort((a, b) => times[a]! - times[b]! || a - b);
    const offsets = new Float64Array(this.count);
    for (let i = 1; i < this.count; i++) offsets[i] = offsets[i - 1]! + sizes[i - 1]!;
    const tmp = `${this.file}.sorting`;
    const from = openSync(this.file, 'r');
    const to = openSync(tmp, 'w');
    try {
      // the file read whole where it is small enough to hold, else record by record
      const whole = this.written <= this.sortInMemory ? Buffer.allocUnsafe(this.written) : undefined;
      if (whole) {
        for (let at = 0; at < whole.length; ) {
          const n = readSync(from, whole, at, whole.length - at, at);
          if (n <= 0) throw new Error(`${this.file}: ${whole.length - at} bytes at ${at} are not there`);
          at += n;
        }
      }
      const out = Buffer.allocUnsafe(SORT_WRITE_CHUNK);
      let used = 0;
      const flushOut = () => {
        writeAll(to, out.subarray(0, used));
        used = 0;
      };
      for (const i of order) {
        const offset = offsets[i]!;
        const size = sizes[i]!;
        if (used + size > out.length) flushOut();
        if (whole) {
          if (size > out.length) writeAll(to, whole.subarray(offset, offset + size));
          else used += whole.copy(out, used, offset, offset + size);
          continue;
        }
        const b = size <= out.length ? out.subarray(used, used + size) : Buffer.allocUnsafe(size);
        if (readSync(from, b, 0, size, offset) !== size) throw new Error(`${this.file}: a record at ${offset} is not there`);
        if (size <= out.length) used += size;
        else writeAll(to, b);
      }
      flushOut();
    } finally {
      closeSync(from);
      closeSync(to);
    }
    renameSync(tmp, this.file);
  }

  private flush(): void {
    this.written += this.used;
    let at = 0;
    while (at < this.used) at += writeSync(this.fd, this.buffer, at, this.used - at);
    this.used = 0;
  }
}

/** For each process of `owners` (pid -> the keys its output belongs to), the runs of its
 * records in the file that `belongs` (when given) accepts for the key, adjacent ones
 * joined, in file order. A missing file yields null. */
export function outputRanges<K>(
  file: string,
  owners: ReadonlyMap<number, readonly K[]>,
  belongs?: (key: K, fd: number, dest: string) => boolean,
): Map<K, OutputRange[]> | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const ranges = new Map<K, OutputRange[]>();
  // the headers are read from large chunks: one read per record cost a system call for
  // each line a configure script's compilers wrote to config.log
  const chunk = Buffer.allocUnsafe(OUTPUT_SCAN_CHUNK);
  let chunkStart = 0;
  let chunkEnd = 0;
  try {
    for (let at = 0; ; ) {
      if (at + OUTPUT_RECORD_HEADER > chunkEnd) {
        chunkStart = at;
        chunkEnd = at + readSync(fd, chunk, 0, chunk.length, at);
        if (at + OUTPUT_RECORD_HEADER > chunkEnd) break;
      }
      const h = at - chunkStart;
      const length = OUTPUT_RECORD_HEADER + chunk.readUInt32LE(h + 5);
      const keys = owners.get(chunk.readUInt32LE(h));
      // the destination's text only for a record that has an owner: most have none
      const dest = keys && belongs ? `${chunk.readBigUInt64LE(h + 9)}:${chunk.readBigUInt64LE(h + 17)}` : '';
      for (const key of keys ?? []) {
        if (belongs && !belongs(key, chunk[h + 4]!, dest)) continue;
        const list = ranges.get(key);
        const last = list?.[list.length - 1];
        if (last && last[0] + last[1] === at) last[1] += length;
        else if (list) list.push([at, length]);
        else ranges.set(key, [[at, length]]);
      }
      at += length;
    }
  } finally {
    closeSync(fd);
  }
  return ranges;
}

/** The records in `ranges` of the file, as uwrx-init serves a skipped process's output
 * (u8 fd, u32 LE length, bytes: the pid left out); `bytesOnly`: the bytes alone, as
 * the processes wrote them. */
export function readOutput(file: string, ranges: readonly OutputRange[], bytesOnly = false): Buffer {
  if (ranges.length === 0) return Buffer.alloc(0);
  const fd = openSync(file, 'r');
  const parts: Buffer[] = [];
  try {
    for (const [offset, length] of ranges) {
      const bytes = Buffer.alloc(length);
      if (readSync(fd, bytes, 0, length, offset) !== length) throw new Error(`${file}: ${length} bytes at ${offset} are not there`);
      for (let at = 0; at < length; ) {
        const size = at + OUTPUT_RECORD_HEADER <= length ? OUTPUT_RECORD_HEADER + bytes.readUInt32LE(at + 5) : Infinity;
        if (at + size > length) throw new Error(`${file}: a record at ${offset + at} runs past its range`);
        if (!bytesOnly) parts.push(bytes.subarray(at + 4, at + 9));
        parts.push(bytes.subarray(at + OUTPUT_RECORD_HEADER, at + size));
        at += size;
      }
    }
  } finally {
    closeSync(fd);
  }
  return Buffer.concat(parts);
}

/** What process `pid` (every process: undefined) wrote to stdout and stderr, in the
 * order of its writes, from the attempt's output index; null without one. The trace
 * has the same records, but one a live process's buffer gave late carries the time the
 * merger had reached by then, so read back from the trace it can land after writes
 * that followed it. */
export function outputOf(attemptDir: string, pid?: number): Buffer | null {
  const file = path.join(attemptDir, OUTPUT_INDEX_FILE);
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (pid === undefined) return readOutput(file, size > 0 ? [[0, size]] : [], true);
  const ranges = outputRanges(file, new Map([[pid, [pid]]]));
  return ranges === null ? null : readOutput(file, ranges.get(pid) ?? [], true);
}
