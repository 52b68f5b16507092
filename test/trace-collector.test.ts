// The collector's reading rules: a live buffer only up to its window, holes behind what
// was read, an ended buffer to its end and then deleted.
import test from 'ava';
import { closeSync, existsSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Collector, killProbe, type EventSink } from '../src/actors/collector.js';
import { traceAddon } from '../src/native.js';
import { TRACE_WINDOW_SIZE, decodeEvents, encodeEvent, type TraceEvent } from '../src/protocol/events.js';
import { makeRunDirs, removeTempDirs } from '../bench/trace-helpers.js';

test.after.always(removeTempDirs);

class Recorder implements EventSink {
  events: TraceEvent[] = [];
  watermarks: number[] = [];
  records(_pid: number, bytes: Buffer): void {
    this.events.push(...decodeEvents(bytes).events);
  }
  advance(watermark: number): void {
    this.watermarks.push(watermark);
  }
}

const output = (i: number): TraceEvent => ({ type: 'output', pid: 5, tid: 5, time: 0, fd: 1, flags: 0, dest_dev: 0, dest_ino: 0, data: Buffer.alloc(4000, i & 0xff) });

test('live buffers are read up to their window and punched behind; ended ones drained and deleted', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 5, 0);
  for (let i = 0; i < 1000; i++) addon.traceWriterAppend(w, encodeEvent(output(i)));
  const file = path.join(dirs.traces, '5');
  const size = statSync(file).size;
  t.true(size > 3 * TRACE_WINDOW_SIZE);

  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  const readBytes = collector.stats.bytesRead;
  t.true(readBytes <= size - TRACE_WINDOW_SIZE, 'nothing inside the live window is read');
  t.true(readBytes > size - TRACE_WINDOW_SIZE - 8192, 'everything before it is');
  t.is(sink.events.length, collector.stats.events);
  t.true(sink.events.every((e, i) => e.type === 'output' && e.data[0] === (i & 0xff)), 'complete records, in order');
  t.is(sink.watermarks.at(-1), sink.events.at(-1)!.time, 'watermark: the last time read from the live buffer');
  const allocated = statSync(file).blocks * 512;
  t.true(allocated <= size - Math.floor(readBytes / 4096) * 4096 + 4096, `holes punched (allocated ${allocated} of ${size})`);

  addon.traceWriterClose(w, true);
  collector.scan();
  t.is(sink.events.length, 1000);
  t.false(existsSync(file) || existsSync(file + '.ended'), 'the ended buffer is deleted');
  t.is(collector.stats.filesDone, 1);
  t.deepEqual(collector.stats.errors, []);
});

test('processEnded and stop() drain a buffer whose writer did not mark it ended', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 6, 0);
  for (let i = 0; i < 10; i++) addon.traceWriterAppend(w, encodeEvent({ ...output(i), pid: 6, tid: 6 }));
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  t.is(sink.events.length, 0, 'all ten records are still inside the window');
  addon.traceWriterClose(w, false);
  collector.processEnded(6);
  collector.scan();
  t.is(sink.events.length, 10, 'read up to the zero-size end mark');
  t.false(existsSync(path.join(dirs.traces, '6')));
});

test('a malformed buffer is reported, not fatal', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 8, 0);
  addon.traceWriterAppend(w, encodeEvent(output(1)));
  addon.traceWriterClose(w, true);
  // Damage the second record's place: a size that is not a multiple of 8.
  const file = path.join(dirs.traces, '8.ended');
  const fd = openSync(file, 'r+');
  const bogus = Buffer.alloc(24);
  bogus.writeUInt32LE(13, 0);
  const at = statSync(file).size;
  writeSync(fd, bogus, 0, 24, at);
  closeSync(fd);
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  t.is(sink.events.length, 1, 'the good record before the damage');
  t.false(existsSync(file), 'the broken buffer is still cleaned up');
  t.is(collector.stats.errors[0], `traces/8.ended: bad record size 13 at offset ${at}`);
  t.true(killProbe(process.pid));
});

test("a recorder buffer (<pid>.r) is final once its process's own buffer is renamed <pid>.ended", (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 9, 0);
  addon.traceWriterAppend(w, encodeEvent({ ...output(0), pid: 9, tid: 9 }));
  // struct uwrx_rec_header: magic, pid, reserved, pos, size; records from 4096
  const records = Buffer.concat([1, 2, 3].map((i) => encodeEvent({ ...output(i), pid: 9, tid: 9 })));
  const header = Buffer.alloc(4096);
  header.writeBigUInt64LE(0x3163657278727775n, 0);
  header.writeUInt32LE(9, 8);
  header.writeBigUInt64LE(BigInt(4096 + records.length), 16);
  header.writeBigUInt64LE(64n << 20n, 24);
  const recFile = path.join(dirs.traces, '9.r');
  const fd = openSync(recFile, 'w');
  writeSync(fd, header);
  writeSync(fd, records);
  closeSync(fd);

  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  t.is(sink.events.length, 0, 'a live recorder buffer this small waits');
  t.true(existsSync(recFile));
  addon.traceWriterClose(w, true);
  collector.scan();
  t.is(sink.events.length, 4, "the process buffer's record and the recorder's three, in one scan");
  t.false(existsSync(recFile), 'the recorder buffer is deleted');
  t.is(collector.stats.recorder.files, 1);
  t.deepEqual(collector.stats.errors, []);
});

// takeFile reads a finished buffer whole and removes it: a process buffer to its size, a
// recorder buffer to the end its header names (the rest of the sparse file is never
// read), whether the bytes fit the first read or not; null (the file left) above maxBytes.
test('takeFile: process and recorder buffers, short and longer than its first read, and the maxBytes limit', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const write = (name: string, bytes: Buffer, size?: number) => {
    const file = path.join(dirs.traces, name);
    const fd = openSync(file, 'w');
    writeSync(fd, bytes);
    if (size !== undefined) ftruncateSync(fd, size);
    closeSync(fd);
    return file;
  };
  const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
  for (const n of [0, 100, 16384, 16385, 100_000]) {
    const bytes = pattern(n);
    const file = write(`own-${n}`, bytes);
    t.deepEqual(addon.takeFile(file, 1 << 20, false), bytes, `process buffer of ${n} bytes`);
    t.false(existsSync(file));
  }
  for (const records of [0, 500, 12288, 12289, 60_000]) {
    const header = Buffer.alloc(4096);
    header.writeBigUInt64LE(0x3163657278727775n, 0);
    header.writeBigUInt64LE(BigInt(4096 + records), 16);
    header.writeBigUInt64LE(64n << 20n, 24);
    const bytes = Buffer.concat([header, pattern(records)]);
    // sparse to 64 MiB as uwrx-init makes them, with bytes after the records' end
    const file = write(`${records}.r`, Buffer.concat([bytes, Buffer.alloc(100, 0xee)]), 64 << 20);
    t.deepEqual(addon.takeFile(file, 1 << 20, true), bytes, `recorder buffer with ${records} bytes of records`);
    t.false(existsSync(file));
  }
  const big = write('big', pattern(50_000));
  t.is(addon.takeFile(big, 40_000, false), null);
  t.true(existsSync(big), 'left for the usual reads');
  t.is(addon.takeFile(path.join(dirs.traces, 'gone'), 1 << 20, false), undefined);
});
