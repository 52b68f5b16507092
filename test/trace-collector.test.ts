// The collector's reading rules: a live buffer only up to its window, holes behind what
// was read, an ended buffer to its end and then deleted.
import test from 'ava';
import { appendFileSync, closeSync, existsSync, ftruncateSync, openSync, readSync, readdirSync, readlinkSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Collector, killProbe, type EventSink } from '../src/actors/collector.js';
import { REC_DATA_OFFSET } from '../src/protocol/events.js';
import { TAKE_GONE, TAKE_TOO_LARGE, traceAddon } from '../src/native.js';
import { TRACE_DATA_OFFSET, TRACE_LOG, TRACE_WINDOW_SIZE, decodeEvents, encodeEvent, type TraceEvent } from '../src/protocol/events.js';
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

/** A live buffer of process 5 holding 1000 output records; `size`: the records' bytes
 * (from TRACE_DATA_OFFSET, after the here empty recorder region). */
function liveBuffer() {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 5, 0);
  for (let i = 0; i < 1000; i++) addon.traceWriterAppend(w, encodeEvent(output(i)));
  const file = path.join(dirs.traces, '5');
  return { dirs, addon, w, file, size: statSync(file).size - TRACE_DATA_OFFSET };
}

test('live buffers are read up to their window and punched behind, from the scan after the one that found them (livePollMs 0); ended ones drained and deleted', (t) => {
  const { dirs, addon, w, file, size } = liveBuffer();
  t.true(size > 3 * TRACE_WINDOW_SIZE);

  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, livePollMs: 0 });
  collector.scan();
  t.is(collector.stats.bytesRead, 0, 'a buffer found live waits a scan: most are finished by then');
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

test('a live buffer is opened once it outlived livePollMs and looked at once per livePollMs, not at every scan', async (t) => {
  const { dirs, addon, w, file, size } = liveBuffer();
  const sink = new Recorder();
  const pollMs = 600;
  const collector = new Collector({ runDir: dirs.runDir, sink, livePollMs: pollMs });
  // the descriptors on this buffer (other tests run meanwhile), the writer's among them
  const onFile = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    }).length;
  const writers = onFile();
  const opened = () => onFile() > writers;
  collector.scan();
  collector.scan();
  t.false(opened(), 'not opened before livePollMs passed');
  t.is(collector.stats.bytesRead, 0);
  await new Promise((resolve) => setTimeout(resolve, pollMs + 50));
  const openedAt = performance.now();
  collector.scan();
  t.true(opened(), 'opened once it passed');
  const first = collector.stats.bytesRead;
  t.true(first > size - TRACE_WINDOW_SIZE - 8192 && first <= size - TRACE_WINDOW_SIZE, 'read up to its window');
  for (let i = 1000; i < 1300; i++) addon.traceWriterAppend(w, encodeEvent(output(i)));
  collector.scan();
  // (a machine loaded enough to take pollMs over the appends makes the scan a due look)
  if (performance.now() - openedAt < pollMs) t.is(collector.stats.bytesRead, first, 'what it wrote since waits for the next look');
  await new Promise((resolve) => setTimeout(resolve, pollMs + 50));
  collector.scan();
  t.true(collector.stats.bytesRead > first, 'and is read livePollMs after the last');
  addon.traceWriterClose(w, true);
  collector.scan();
  t.is(sink.events.length, 1300, 'an ended buffer is read to its end at once');
  t.true(sink.events.every((e, i) => e.type === 'output' && e.data[0] === (i & 0xff)), 'complete records, in order');
  t.false(existsSync(file) || existsSync(file + '.ended'), 'closed and deleted');
  t.deepEqual(collector.stats.errors, []);
});

test('a buffer found live and finished by the next scan is taken whole, never opened before', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 8, 0);
  for (let i = 0; i < 10; i++) addon.traceWriterAppend(w, encodeEvent({ ...output(i), pid: 8, tid: 8 }));
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  collector.scan();
  t.is(fds(), before, 'the live buffer is not opened at the scan that found it');
  t.is(sink.events.length, 0);
  addon.traceWriterClose(w, true);
  const closed = fds();
  collector.scan();
  t.is(fds(), closed);
  t.is(sink.events.length, 10);
  t.true(sink.events.every((e, i) => e.type === 'output' && e.data[0] === i));
  t.false(existsSync(path.join(dirs.traces, '8')) || existsSync(path.join(dirs.traces, '8.ended')));
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

/** A recorder region's first bytes (struct uwrx_rec_header: magic, pid, reserved, pos,
 * size) and records from REC_DATA_OFFSET on, as the in-process recorder leaves them. */
function region(pid: number, records: Buffer): Buffer {
  const header = Buffer.alloc(REC_DATA_OFFSET);
  header.writeBigUInt64LE(0x3163657278727775n, 0);
  header.writeUInt32LE(pid, 8);
  header.writeBigUInt64LE(BigInt(REC_DATA_OFFSET + records.length), 16);
  header.writeBigUInt64LE(BigInt(TRACE_DATA_OFFSET), 24);
  return Buffer.concat([header, records]);
}

/** Puts a recorder region at the start of the buffer file `file` (its records stay). */
function writeRegion(file: string, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, undefined, 0);
  closeSync(fd);
}

test("a buffer's recorder region is read with its records once the buffer is renamed <pid>.ended, in one file", (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 9, 0);
  addon.traceWriterAppend(w, encodeEvent({ ...output(0), pid: 9, tid: 9 }));
  const records = Buffer.concat([1, 2, 3].map((i) => encodeEvent({ ...output(i), pid: 9, tid: 9 })));
  const file = path.join(dirs.traces, '9');
  writeRegion(file, region(9, records));

  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  t.is(sink.events.length, 0, 'a live region this small waits');
  addon.traceWriterClose(w, true);
  t.deepEqual(readdirSync(dirs.traces), ['9.ended'], 'one file per process');
  collector.scan();
  t.is(sink.events.length, 4, "the process's record and the recorder's three, in one scan");
  t.deepEqual(sink.events.map((e) => e.type === 'output' && e.data[0]), [0, 1, 2, 3]);
  t.false(existsSync(file + '.ended'), 'the buffer is deleted');
  t.is(collector.stats.recorder.files, 1);
  t.deepEqual(collector.stats.errors, []);
});

// A scan lists traces/ and looks at every open live buffer: both in one addon call each.
test('listBuffers names the buffer files by pid, ended or live, and the pool\'s by index; pollBuffers gives each live one its size and recorder end', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  for (const name of ['7', '12.ended', '0', 'free.0', 'free.01', 'free.1.ended', 'big', '007', '3.endedx', '4.', '99999999999', '2147483647']) {
    closeSync(openSync(path.join(dirs.traces, name), 'w'));
  }
  const listed = new Int32Array(10);
  t.is(addon.listBuffers(dirs.traces, listed), 10);
  const pairs = Array.from({ length: 5 }, (_, i) => [listed[2 * i]!, listed[2 * i + 1]!]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  t.deepEqual(pairs, [[0, 0], [0, 2], [7, 0], [12, 1], [2147483647, 0]]);
  const short = new Int32Array(3);
  t.is(addon.listBuffers(dirs.traces, short), 10, 'the room needed, when more than given');
  t.is(short[2], 0, 'no pair cut in half');
  t.is(addon.listBuffers(path.join(dirs.traces, 'gone'), listed), -1);
  // a collector's scan over more files than its first list holds finds every one
  for (let pid = 100; pid < 400; pid++) closeSync(openSync(path.join(dirs.traces, `${pid}.ended`), 'w'));
  const many = new Collector({ runDir: dirs.runDir, sink: new Recorder(), pool: false });
  many.scan();
  t.is(many.stats.filesDone, 300 + 1, 'the 300 empty ended buffers and 12.ended taken');

  const w = addon.traceWriterOpen(dirs.traces, 13, 0);
  addon.traceWriterAppend(w, encodeEvent({ ...output(0), pid: 13, tid: 13 }));
  const file = path.join(dirs.traces, '13');
  const records = Buffer.concat([1, 2].map((i) => encodeEvent({ ...output(i), pid: 13, tid: 13 })));
  const withRegion = openSync(file, 'r');
  const plain = openSync(path.join(dirs.traces, '7'), 'r');
  const out = new Float64Array(4);
  addon.pollBuffers(Int32Array.of(withRegion, plain), out);
  t.deepEqual([...out], [statSync(file).size, 0, 0, 0], 'no recorder header yet: nothing in the region');
  writeRegion(file, region(13, records));
  addon.pollBuffers(Int32Array.of(withRegion, plain), out);
  t.deepEqual([...out], [statSync(file).size, REC_DATA_OFFSET + records.length, 0, 0], "the header's write position");
  closeSync(plain);
  addon.pollBuffers(Int32Array.of(withRegion, plain), out);
  t.deepEqual([...out.subarray(2)], [-1, -1], 'a closed descriptor: -1, for the caller to ask again');
  closeSync(withRegion);
  addon.traceWriterClose(w, true);
});

// The collector actor transfers each batch's buffers to the merger as soon as 4 MiB wait,
// from inside sink.records: a buffer taken whole must not be read after it went.
// Buffers taken whole in one scan come as views of one ArrayBuffer (one native call for
// all of them): a sink moves them at advance(), once the scan has handed every one on.
test("buffers taken in one scan are handed on whole, with their region counts, to a sink that moves them at advance()", (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  for (const pid of [12, 13]) {
    const w = addon.traceWriterOpen(dirs.traces, pid, 0);
    addon.traceWriterAppend(w, encodeEvent({ ...output(0), pid, tid: pid }));
    const head = region(pid, Buffer.concat([1, 2].map((i) => encodeEvent({ ...output(i), pid, tid: pid }))));
    head.writeBigUInt64LE(7n, 40); // calls answered in process
    writeRegion(path.join(dirs.traces, String(pid)), head);
    addon.traceWriterClose(w, true);
  }
  let events = 0;
  const held: Buffer[] = [];
  const sink: EventSink = {
    records(_pid, bytes) {
      events += decodeEvents(bytes).events.length;
      held.push(bytes);
    },
    advance() {
      const moved = [...new Set(held.map((b) => b.buffer as ArrayBuffer))];
      structuredClone(moved, { transfer: moved }); // detaches them, as postMessage does
      held.length = 0;
    },
  };
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.scan();
  t.is(events, 6);
  t.is(collector.stats.recorder.files, 2);
  t.is(collector.stats.recorder.fast, 14);
  t.deepEqual(collector.stats.errors, []);
  t.deepEqual(readdirSync(dirs.traces), []);
});

test('a live recorder region is read once enough records wait, and punched behind', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 11, 0);
  addon.traceWriterAppend(w, encodeEvent({ ...output(0), pid: 11, tid: 11 }));
  const many = 1100; // 4 KiB records: more than the 4 MiB a live region waits for
  const records = Buffer.concat(Array.from({ length: many }, (_, i) => encodeEvent({ ...output(i), pid: 11, tid: 11 })));
  const file = path.join(dirs.traces, '11');
  writeRegion(file, region(11, records));
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, livePollMs: 0 });
  collector.scan();
  t.is(sink.events.length, 0, 'found live: read from the next scan on');
  collector.scan();
  t.is(sink.events.length, many, 'all committed records of the live region');
  t.true(statSync(file).blocks * 512 < records.length / 2, 'holes punched behind them');
  addon.traceWriterClose(w, true);
  collector.scan();
  t.is(sink.events.length, many + 1, 'read once: the rest when the process ends');
  t.is(collector.stats.recorder.files, 1);
  t.deepEqual(collector.stats.errors, []);
});

// takeFile reads a finished buffer whole and removes it: its records from
// TRACE_DATA_OFFSET to its size, its recorder region (if any) to the end its header names
// (the rest of the sparse region is never read), whether the bytes fit a first read or
// not; null (the file left) above maxBytes.
test('takeFile: records and recorder regions, short and longer than its first read, and the maxBytes limit', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const write = (name: string, records: Buffer, head?: Buffer) => {
    const file = path.join(dirs.traces, name);
    const fd = openSync(file, 'w');
    // bytes after the region's records' end, as a recorder may leave uncommitted
    if (head) writeSync(fd, Buffer.concat([head, Buffer.alloc(100, 0xee)]), 0, undefined, 0);
    if (records.length) writeSync(fd, records, 0, undefined, TRACE_DATA_OFFSET);
    else if (head) ftruncateSync(fd, TRACE_DATA_OFFSET);
    closeSync(fd);
    return file;
  };
  const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
  const sizes = [0, 100, 16384, 16385, 100_000];
  const regions = [undefined, 0, 500, 12288, 12289, 60_000];
  for (const n of sizes) {
    for (const r of regions) {
      const records = pattern(n);
      const head = r === undefined ? undefined : region(1, pattern(r));
      const file = write(`${n}-${r}`, records, head);
      const taken = addon.takeFile(file, 1 << 20);
      t.truthy(taken);
      t.deepEqual(taken![0], records, `records of ${n} bytes, region ${r}`);
      t.deepEqual(taken![1], head, `region with ${r} bytes of records`);
      t.false(existsSync(file));
    }
  }
  const big = write('big', pattern(50_000));
  t.is(addon.takeFile(big, 40_000), null);
  t.true(existsSync(big), 'left for the usual reads');
  const bigRegion = write('big-region', pattern(10), region(1, pattern(50_000)));
  t.is(addon.takeFile(bigRegion, 40_000), null);
  t.true(existsSync(bigRegion));
  t.is(addon.takeFile(path.join(dirs.traces, 'gone'), 1 << 20), undefined);
});

// takeFiles takes many finished buffers in one call, as takeFile takes one: each file's
// parts are views into the one Buffer it returns, a file gone or too large says so in
// its layout slots (the large one left in place), the others removed.
test('takeFiles: many buffers in one call, the same parts as takeFile, gone and too large ones named', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));
  const cases: Array<{ name: string; records: Buffer; head?: Buffer }> = [];
  let seed = 0;
  for (const n of [0, 100, 16384, 16385, 100_000]) {
    for (const r of [undefined, 0, 500, 8192, 8193, 60_000]) {
      const records = pattern(n, seed++);
      const head = r === undefined ? undefined : region(1, pattern(r, seed++));
      const name = `${n}-${r}`;
      const fd = openSync(path.join(dirs.traces, name), 'w');
      if (head) writeSync(fd, Buffer.concat([head, Buffer.alloc(100, 0xee)]), 0, undefined, 0);
      if (records.length) writeSync(fd, records, 0, undefined, TRACE_DATA_OFFSET);
      else if (head) ftruncateSync(fd, TRACE_DATA_OFFSET);
      closeSync(fd);
      cases.push({ name, records, head });
    }
  }
  const big = path.join(dirs.traces, 'big');
  const bigFd = openSync(big, 'w');
  writeSync(bigFd, pattern(300_000, 1), 0, undefined, TRACE_DATA_OFFSET);
  closeSync(bigFd);
  const names = [...cases.map((c) => c.name), 'gone', 'big'];
  const layout = new Int32Array(names.length * 4);
  const bytes = addon.takeFiles(dirs.traces, names, 200_000, layout);
  cases.forEach((c, i) => {
    const [at, length, regionAt, regionLength] = layout.subarray(4 * i, 4 * i + 4);
    t.deepEqual(bytes.subarray(at!, at! + length!), c.records, `records of ${c.name}`);
    if (c.head) t.deepEqual(bytes.subarray(regionAt!, regionAt! + regionLength!), c.head, `region of ${c.name}`);
    else t.is(regionLength, -1, `no region in ${c.name}`);
  });
  t.is(layout[4 * cases.length + 1], TAKE_GONE);
  t.is(layout[4 * cases.length + 5], TAKE_TOO_LARGE);
  t.deepEqual(readdirSync(dirs.traces), ['big'], 'the taken files removed, the large one left');
});

// With a pool, takeFiles returns a finished buffer (<pid>.ended) to uwrx-init as
// free.<n> instead of deleting it: reset to zeros (its recorder header and records, and
// its own records, overwritten; at least TRACE_DATA_OFFSET long), so the process that
// takes it next shows nothing of this one. A buffer still named live, one whose region
// or records held more than 64 KiB, and one past the pool's bound are deleted.
test('takeFiles with a pool: finished buffers reset to zeros and renamed free.<n>; live, large and surplus ones deleted', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => ((i * 7 + seed) & 0xff) | 1));
  const write = (name: string, records: Buffer, head?: Buffer) => {
    const fd = openSync(path.join(dirs.traces, name), 'w');
    if (head) writeSync(fd, head, 0, undefined, 0);
    if (records.length) writeSync(fd, records, 0, undefined, TRACE_DATA_OFFSET);
    closeSync(fd);
  };
  write('5.ended', pattern(100, 1), region(5, pattern(500, 2)));
  write('6.ended', pattern(20_000, 3));
  write('7', pattern(100, 4), region(7, pattern(500, 5)));
  write('8.ended', pattern(100, 6), region(8, pattern(70_000, 7)));
  write('11.ended', pattern(70_000, 11));
  write('12.ended', Buffer.alloc(0));
  const pool = Int32Array.of(0, 3);
  const names = ['5.ended', '6.ended', '7', '8.ended', '11.ended', '12.ended'];
  const layout = new Int32Array(names.length * 4);
  const bytes = addon.takeFiles(dirs.traces, names, 1 << 20, layout, pool);
  t.deepEqual(bytes.subarray(layout[0]!, layout[0]! + layout[1]!), pattern(100, 1), 'the records read before the reset');
  t.deepEqual(bytes.subarray(layout[2]!, layout[2]! + layout[3]!), region(5, pattern(500, 2)));
  t.deepEqual(bytes.subarray(layout[4]!, layout[4]! + layout[5]!), pattern(20_000, 3));
  t.is(pool[0], 3, 'three returned');
  t.deepEqual(readdirSync(dirs.traces).sort(), ['free.0', 'free.1', 'free.2'], 'the live one and the ones with a large part deleted');
  for (const name of ['free.0', 'free.1', 'free.2']) {
    const file = path.join(dirs.traces, name);
    const size = statSync(file).size;
    t.true(size >= TRACE_DATA_OFFSET, `${name}: the recorder region before its end`);
    const fd = openSync(file, 'r');
    const head = Buffer.alloc(8192, 0xff);
    t.is(readSync(fd, head, 0, head.length, 0), head.length);
    const rest = Buffer.alloc(size - TRACE_DATA_OFFSET, 0xff);
    t.is(readSync(fd, rest, 0, rest.length, TRACE_DATA_OFFSET), rest.length);
    closeSync(fd);
    t.true(head.every((b) => b === 0), `${name}: the recorder header and records read as zeros`);
    t.true(rest.every((b) => b === 0), `${name}: the records read as zeros`);
  }
  // what a collector makes of a pooled buffer: nothing, as of a new, empty one
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, pool: false });
  for (const name of ['free.0', 'free.1', 'free.2']) renameSync(path.join(dirs.traces, name), path.join(dirs.traces, `3${name.slice(5)}.ended`));
  collector.scan();
  t.deepEqual(sink.events, []);
  t.deepEqual(collector.stats.errors, []);
  t.is(collector.stats.filesDone, 3);
  // the pool's bound: with three waiting, the next one is deleted
  for (const name of ['free.0', 'free.1', 'free.2']) write(name, Buffer.alloc(0));
  write('9.ended', pattern(100, 8), region(9, pattern(500, 9)));
  addon.takeFiles(dirs.traces, ['9.ended'], 1 << 20, layout, pool);
  t.is(pool[0], 3);
  t.deepEqual(readdirSync(dirs.traces).sort(), ['free.0', 'free.1', 'free.2']);
  // once free.0 is taken there is room again
  unlinkSync(path.join(dirs.traces, 'free.0'));
  write('10.ended', pattern(100, 10));
  addon.takeFiles(dirs.traces, ['10.ended'], 1 << 20, layout, pool);
  t.is(pool[0], 4);
  t.deepEqual(readdirSync(dirs.traces).sort(), ['free.1', 'free.2', 'free.3']);
});

// The pool's bound from the caller's listing ([next, max, oldest]): uwrx-init takes
// free.<n> in order, so free.<next - max> still waits exactly when oldest <= next - max.
// No look at the directory: a stale listing only errs on the full side.
test('takeFiles with a pool and the listing\'s oldest free.<n>: the bound without a look at the directory', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const layout = new Int32Array(4);
  const finished = (name: string) => {
    const fd = openSync(path.join(dirs.traces, name), 'w');
    writeSync(fd, Buffer.from('not a record'), 0, undefined, TRACE_DATA_OFFSET);
    closeSync(fd);
  };
  // three returned before, free.0 in the listing: full, even though it is gone by now
  const pool = Int32Array.of(3, 3, 0);
  finished('9.ended');
  addon.takeFiles(dirs.traces, ['9.ended'], 1 << 20, layout, pool);
  t.is(pool[0], 3, 'not returned');
  t.deepEqual(readdirSync(dirs.traces), [], 'deleted');
  // free.0 taken by the listing: room for one, which is then the newest waiting
  pool[2] = 1;
  finished('10.ended');
  finished('11.ended');
  addon.takeFiles(dirs.traces, ['10.ended', '11.ended'], 1 << 20, new Int32Array(8), pool);
  t.is(pool[0], 4, 'one returned, then full again');
  t.deepEqual(readdirSync(dirs.traces), ['free.3']);
  // a collector's scan sets oldest from its listing (next when none waits)
  const collector = new Collector({ runDir: dirs.runDir, sink: new Recorder(), pool: true });
  collector.scan();
  const state = (collector as unknown as { pool: Int32Array }).pool;
  t.is(state[2], 0, 'none returned by this collector yet: its next');
  state[0] = 6;
  collector.scan();
  t.is(state[2], 3, 'free.3 waits');
  unlinkSync(path.join(dirs.traces, 'free.3'));
  collector.scan();
  t.is(state[2], 6, 'none waits');
});

test('a collector with a pool returns finished buffers to it and deletes what waits there at stop()', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, pool: true });
  for (const pid of [21, 22, 23]) {
    const w = addon.traceWriterOpen(dirs.traces, pid, 0);
    addon.traceWriterAppend(w, encodeEvent({ ...output(pid), pid, tid: pid }));
    addon.traceWriterClose(w, true);
  }
  collector.scan();
  t.deepEqual(sink.events.map((e) => e.pid), [21, 22, 23]);
  t.is(collector.stats.pooled, 3);
  t.deepEqual(readdirSync(dirs.traces).sort(), ['free.0', 'free.1', 'free.2']);
  collector.stop();
  t.deepEqual(readdirSync(dirs.traces), [], 'the pool emptied');
  t.deepEqual(collector.stats.errors, []);
});

// uwrx-init tells a buffer's end, and its take of a pooled buffer free.<n>, by entries
// appended to traces/log ([pid, 0] and [pid, n + 1], u32 LE), not by renames: the
// collector reads the log's new part before each listing, takes a buffer whose end is
// logged whole as it takes <pid>.ended (pooled: its writer closed it), reads a free.<n>
// the log gives a pid as that pid's buffer, leaves unlogged ones live, and reads an entry
// only once all of it is there.
test('the buffer log: ends and takes of pooled buffers told without renames; entries read whole', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, pool: true });
  const state = (collector as unknown as { pool: Int32Array }).pool;
  const log = path.join(dirs.traces, TRACE_LOG);
  const entry = (pid: number, what: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(pid);
    b.writeUInt32LE(what, 4);
    return b;
  };
  const buffer = (pid: number, name = String(pid)) => {
    const w = addon.traceWriterOpen(dirs.traces, pid, 0);
    addon.traceWriterAppend(w, encodeEvent({ ...output(pid), pid, tid: pid }));
    // closed as live: the end is told by the log alone
    addon.traceWriterClose(w, false);
    if (name !== String(pid)) renameSync(path.join(dirs.traces, String(pid)), path.join(dirs.traces, name));
  };
  collector.scan();
  t.is(collector.stats.filesDone, 0, 'no log yet: nothing to do');
  for (const pid of [31, 32, 33]) buffer(pid);
  appendFileSync(log, Buffer.concat([entry(31, 0), entry(33, 0)]));
  collector.scan();
  t.deepEqual(sink.events.map((e) => e.pid), [31, 33], 'the buffers whose end is logged, taken in the scan that found them');
  t.is(collector.stats.pooled, 2, 'and pooled: their writer closed them');
  t.deepEqual(readdirSync(dirs.traces).sort(), ['32', 'free.0', 'free.1', TRACE_LOG]);
  t.is(state[2], 0, 'free.0 waits');
  // 34 takes free.0 (written as it is), 35 free.1: in the listing they are theirs, not waiting
  unlinkSync(path.join(dirs.traces, 'free.0'));
  buffer(34, 'free.0');
  unlinkSync(path.join(dirs.traces, 'free.1'));
  buffer(35, 'free.1');
  // 32's end, 34's take, 35's take and half of 35's end: 35 stays live until the rest is written
  appendFileSync(log, Buffer.concat([entry(32, 0), entry(34, 1), entry(34, 0), entry(35, 2), entry(35, 0).subarray(0, 5)]));
  collector.scan();
  t.deepEqual(sink.events.map((e) => e.pid), [31, 33, 32, 34], "free.0 read as 34's");
  t.is(state[2], 2, 'none waited at the listing: free.0 and free.1 were taken');
  t.deepEqual(readdirSync(dirs.traces).sort(), ['free.1', 'free.2', 'free.3', TRACE_LOG], "free.0 returned under the next name; free.1 still 35's");
  appendFileSync(log, entry(35, 0).subarray(5));
  collector.scan();
  t.is(state[2], 2, 'free.2 waits (32 returned)');
  t.deepEqual(sink.events.map((e) => e.pid), [31, 33, 32, 34, 35]);
  t.is(collector.stats.pooled, 5);
  t.is(collector.stats.filesDone, 5);
  t.deepEqual(collector.stats.errors, []);
  collector.stop();
  t.deepEqual(readdirSync(dirs.traces), [TRACE_LOG], "the pool emptied; the log is the run directory's");
});

// A reused buffer's records may be followed by fewer zeros than a record header (the
// previous process's records were a little longer): the zero size ends them all the same.
test('records followed by fewer zero bytes than a header end there, without a problem', (t) => {
  const dirs = makeRunDirs();
  const records = Buffer.concat([1, 2].map((i) => encodeEvent({ ...output(i), pid: 14, tid: 14 })));
  const fd = openSync(path.join(dirs.traces, '14.ended'), 'w');
  writeSync(fd, Buffer.concat([records, Buffer.alloc(8)]), 0, undefined, TRACE_DATA_OFFSET);
  closeSync(fd);
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink, pool: false });
  collector.scan();
  t.is(sink.events.length, 2);
  t.deepEqual(collector.stats.errors, []);
  t.deepEqual(readdirSync(dirs.traces), []);
});

test('the background scan slows down while scans find nothing and is back at 20 ms with the first records', async (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const sink = new Recorder();
  const collector = new Collector({ runDir: dirs.runDir, sink });
  collector.start();
  await new Promise((r) => setTimeout(r, 1000));
  // 20, 40, 80 and then 100 ms: about 12 scans in a second, where 20 ms would make 50
  const idle = collector.stats.scans;
  // short processes, one every 10 ms: each scan finds the records of those that ended
  let pid = 100;
  const writing = setInterval(() => {
    const w = addon.traceWriterOpen(dirs.traces, pid++, 0);
    addon.traceWriterAppend(w, encodeEvent(output(1)));
    addon.traceWriterClose(w, true);
  }, 10);
  // the first records come at the next scan, at most 100 ms away (later on a loaded
  // machine, whose timers fire late: waited for, up to a second)
  const writingSince = Date.now();
  while (sink.events.length === 0 && Date.now() - writingSince < 1000) await new Promise((r) => setTimeout(r, 10));
  const firstMs = Date.now() - writingSince;
  const first = sink.events.length;
  const before = collector.stats.scans;
  await new Promise((r) => setTimeout(r, 400));
  clearInterval(writing);
  const busy = collector.stats.scans - before;
  collector.stop();
  t.true(idle >= 5 && idle <= 16, `${idle} scans in an idle second`);
  t.true(first > 0, `records found within a second (${firstMs} ms)`);
  t.true(busy >= 10, `${busy} scans in 400 ms of records`);
  t.is(sink.events.length, pid - 100, 'every process\'s record');
});
