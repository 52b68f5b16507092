// UWRX_DEBUG_MERGER_INPUT=FILE: the merger of a run also writes what it was given (the
// trace clocks, every delivery of records and every advance, in order) to FILE, so the
// same input can be merged again outside a run: to compare the merger's two access
// writers on a real trace, or to profile the merger alone.
//
// Format: items back to back, little endian: 'C' f64 boottime, f64 realtime | 'R' u32
// pid, u32 length, the records | 'A' f64 watermark (Infinity for none).
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

export interface MergerInputSink {
  records(pid: number, bytes: Buffer): void;
  advance(watermark: number): void;
}

export class MergerInputLog implements MergerInputSink {
  private readonly fd: number;
  private closed = false;

  constructor(file: string, clocks: { boottime: number; realtime: number }) {
    this.fd = openSync(file, 'w');
    const head = Buffer.alloc(17);
    head.write('C', 0, 'latin1');
    head.writeDoubleLE(clocks.boottime, 1);
    head.writeDoubleLE(clocks.realtime, 9);
    this.write(head);
  }

  records(pid: number, bytes: Buffer): void {
    const head = Buffer.alloc(9);
    head.write('R', 0, 'latin1');
    head.writeUInt32LE(pid, 1);
    head.writeUInt32LE(bytes.length, 5);
    this.write(head);
    this.write(bytes);
  }

  advance(watermark: number): void {
    const item = Buffer.alloc(9);
    item.write('A', 0, 'latin1');
    item.writeDoubleLE(watermark, 1);
    this.write(item);
  }

  close(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }

  private write(buf: Buffer): void {
    if (this.closed) return;
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
  }
}

export class MergerInputError extends Error {}

/** Reads a log: its clocks, and a replay that hands its deliveries to a sink in order. */
export function readMergerInput(file: string): { clocks: { boottime: number; realtime: number }; replay(sink: MergerInputSink): void } {
  const buf = readFileSync(file);
  if (buf.length < 17 || buf.toString('latin1', 0, 1) !== 'C') throw new MergerInputError(`${file}: not a merger input log`);
  const clocks = { boottime: buf.readDoubleLE(1), realtime: buf.readDoubleLE(9) };
  return {
    clocks,
    replay(sink) {
      let at = 17;
      while (at < buf.length) {
        const kind = buf.toString('latin1', at, at + 1);
        if (kind === 'R' && at + 9 <= buf.length) {
          const len = buf.readUInt32LE(at + 5);
          if (at + 9 + len > buf.length) break;
          sink.records(buf.readUInt32LE(at + 1), buf.subarray(at + 9, at + 9 + len));
          at += 9 + len;
        } else if (kind === 'A' && at + 9 <= buf.length) {
          sink.advance(buf.readDoubleLE(at + 1));
          at += 9;
        } else break;
      }
      if (at !== buf.length) throw new MergerInputError(`${file}: malformed item at offset ${at}`);
    },
  };
}
