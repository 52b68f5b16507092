// The output index (output.bin): records written in order, the runs of a set of
// processes' records found by offset, and read back as uwrx-init serves them.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OutputIndexWriter, outputRanges, readOutput } from '../src/record/output-index.js';
import { encodeEvent, type TraceEvent } from '../src/protocol/events.js';
import { scratchDir } from './helpers/uwrx.js';

const served = (fd: number, text: string) => {
  const head = Buffer.alloc(5);
  head[0] = fd;
  head.writeUInt32LE(Buffer.byteLength(text), 1);
  return Buffer.concat([head, Buffer.from(text)]);
};

const H = 25; // record header

test('records of a process tree are found by offset and read back in order, stdout and stderr interleaved', (t) => {
  const file = path.join(scratchDir('uwrx-output-index-'), 'output.bin');
  const w = new OutputIndexWriter(file);
  w.add(2, 1, 34, 5, Buffer.from('make: cc a.c\n'));
  w.add(3, 2, 34, 5, Buffer.from('a.c:1: warning\n'));
  w.add(4, 1, 34, 5, Buffer.from('driver out\n'));
  w.add(3, 1, 34, 5, Buffer.from('a.o done\n'));
  w.add(5, 2, 34, 5, Buffer.alloc(0)); // nothing written: no record
  w.add(3, 2, 34, 5, Buffer.from('a.c:2: error\n'));
  w.add(2, 1, 34, 5, Buffer.alloc(100_000, 'x')); // larger than the writer's buffer
  w.close();
  const bytes = readFileSync(file);
  t.is(bytes.length, 6 * H + 13 + 15 + 11 + 9 + 13 + 100_000);
  t.is(bytes.readBigUInt64LE(9), 34n);
  t.is(bytes.readBigUInt64LE(17), 5n);

  // key "cc": processes 3 and 4 (a driver and its child); key "make": process 2
  const ranges = outputRanges(file, new Map([[3, ['cc']], [4, ['cc']], [2, ['make']]]))!;
  t.deepEqual(ranges.get('cc'), [[H + 13, 4 * H + 15 + 11 + 9 + 13]]);
  t.deepEqual(ranges.get('make'), [[0, H + 13], [5 * H + 13 + 15 + 11 + 9 + 13, H + 100_000]]);
  t.deepEqual(
    readOutput(file, ranges.get('cc')!),
    Buffer.concat([served(2, 'a.c:1: warning\n'), served(1, 'driver out\n'), served(1, 'a.o done\n'), served(2, 'a.c:2: error\n')]),
  );
  t.is(readOutput(file, ranges.get('make')!).length, 5 + 13 + 5 + 100_000);
  t.deepEqual(readOutput(file, []), Buffer.alloc(0));
  t.is(outputRanges(path.join(path.dirname(file), 'absent.bin'), new Map()), null);
  t.throws(() => readOutput(file, [[H + 13, 30]]), { message: /runs past its range/ });
});

test('only what went where the owner\'s own stdout and stderr went is its output', (t) => {
  const file = path.join(scratchDir('uwrx-output-index-'), 'output.bin');
  const w = new OutputIndexWriter(file);
  w.add(3, 2, 34, 5, Buffer.from('warning\n')); // the driver's terminal
  w.add(4, 1, 15, 9001, Buffer.from('\t.text\n')); // cc1 -pipe: the pipe to as
  w.add(3, 1, 34, 5, Buffer.from('done\n'));
  w.close();
  const dest = new Map([['gcc', ['34:5', '34:5']]]);
  const ranges = outputRanges(file, new Map([[3, ['gcc']], [4, ['gcc']]]), (key, fd, d) => dest.get(key)![fd - 1] === d)!;
  t.deepEqual(readOutput(file, ranges.get('gcc')!), Buffer.concat([served(2, 'warning\n'), served(1, 'done\n')]));
  t.deepEqual(ranges.get('gcc'), [[0, H + 8], [2 * H + 8 + 7, H + 5]]);
});

test('records that arrive out of time order are put in the order of time when the file closes', (t) => {
  const file = path.join(scratchDir('uwrx-output-index-'), 'output.bin');
  const w = new OutputIndexWriter(file);
  // a child's lines reach the merger before its running parent's earlier one
  w.add(3, 1, 34, 5, Buffer.from('child first\n'), 200);
  w.add(3, 1, 34, 5, Buffer.alloc(70_000, 'c'), 300); // larger than the writer's buffer
  w.add(2, 1, 34, 5, Buffer.from('parent earlier\n'), 100);
  w.add(2, 1, 34, 5, Buffer.from('parent later\n'), 300); // equal times keep their order
  w.close();
  const ranges = outputRanges(file, new Map([[2, ['all']], [3, ['all']]]))!;
  t.deepEqual(
    readOutput(file, ranges.get('all')!),
    Buffer.concat([served(1, 'parent earlier\n'), served(1, 'child first\n'), served(1, 'c'.repeat(70_000)), served(1, 'parent later\n')]),
  );
});

test('headers are found across the scan\'s 1 MiB reads: records that straddle one, and one larger than one', (t) => {
  const file = path.join(scratchDir('uwrx-output-index-'), 'output.bin');
  const w = new OutputIndexWriter(file);
  // 3,000 records of 400 bytes: some header lies across every 1 MiB boundary up to 1.2 MB
  for (let i = 0; i < 3000; i++) w.add(2 + (i % 2), 1, 34, 5, Buffer.alloc(400 - H, i % 2 ? 'b' : 'a'));
  w.add(4, 2, 34, 5, Buffer.alloc(3 << 20, 'z')); // a record larger than a read
  w.add(2, 1, 34, 5, Buffer.from('last\n'));
  w.close();
  const ranges = outputRanges(file, new Map([[2, ['even']], [3, ['odd']], [4, ['big']]]))!;
  t.is(ranges.get('even')!.length, 1501);
  t.is(ranges.get('odd')!.length, 1500);
  t.deepEqual(ranges.get('odd')![1000], [2001 * 400, 400]);
  t.deepEqual(ranges.get('big'), [[3000 * 400, H + (3 << 20)]]);
  t.deepEqual(ranges.get('even')![1500], [3000 * 400 + H + (3 << 20), H + 5]);
  t.deepEqual(readOutput(file, ranges.get('even')!.slice(-1)), served(1, 'last\n'));
});

test('a file put in the order of time is the same read whole or record by record, with records larger than a write', (t) => {
  const dir = scratchDir('uwrx-output-index-');
  // each odd line a step back in time, and a record of 1.5 MiB (more than the 1 MiB
  // written at a time) early in time but written last
  const time = (i: number) => (i % 2 ? i - 1.5 : i);
  const files = [0, 32 << 20].map((inMemory) => {
    const file = path.join(dir, `output-${inMemory}.bin`);
    const w = new OutputIndexWriter(file, inMemory);
    for (let i = 0; i < 4000; i++) w.add(2, 1, 34, 5, Buffer.from(`line ${i}\n`), time(i));
    w.add(3, 2, 34, 5, Buffer.alloc(3 << 19, 'z'), 10.5);
    w.close();
    return file;
  });
  t.deepEqual(readFileSync(files[0]!), readFileSync(files[1]!));
  const lines = [...Array(4000).keys()].sort((a, b) => time(a) - time(b));
  const ranges = outputRanges(files[0]!, new Map([[2, ['lines']], [3, ['big']]]))!;
  t.deepEqual(readOutput(files[0]!, ranges.get('lines')!), Buffer.concat(lines.map((i) => served(1, `line ${i}\n`))));
  // after the 12 lines of times below 10.5 (0 to 11)
  const before = lines.slice(0, 12).reduce((n, i) => n + H + `line ${i}\n`.length, 0);
  t.deepEqual(ranges.get('big'), [[before, H + (3 << 19)]]);
});

test("an output record of the trace is added as its decoded fields are, taken in place", (t) => {
  const dir = scratchDir('uwrx-output-index-');
  const writes: Array<[number, number, number, number, string, number]> = [
    [2, 1, 0xfd01, 2 ** 40 + 7, 'line one\n', 1_700_000_000_123_456_789],
    [3, 2, 9, 12345, 'x'.repeat(50_000), 1_700_000_000_000_000_000], // earlier: put in order at close
    [2, 1, 0xfd01, 2 ** 40 + 7, '', 1_700_000_000_200_000_000], // nothing written: no record
  ];
  const decoded = new OutputIndexWriter(path.join(dir, 'decoded.bin'));
  const raw = new OutputIndexWriter(path.join(dir, 'raw.bin'));
  for (const [pid, fd, dev, ino, text, time] of writes) {
    decoded.add(pid, fd, dev, ino, Buffer.from(text), time);
    const ev = { type: 'output', pid, tid: pid, time, fd, flags: 0, dest_dev: dev, dest_ino: ino, data: Buffer.from(text) } as TraceEvent;
    t.true(raw.addRecord(encodeEvent(ev)));
  }
  const exec = encodeEvent({ type: 'exit', pid: 2, tid: 2, time: 1, status: 0 } as unknown as TraceEvent);
  t.false(raw.addRecord(exec), 'another type of record');
  const cut = encodeEvent({ type: 'output', pid: 2, tid: 2, time: 1, fd: 1, flags: 0, dest_dev: 1, dest_ino: 1, data: Buffer.from('cut short') } as TraceEvent);
  t.false(raw.addRecord(cut.subarray(0, cut.length - 16)), 'a record whose bytes are cut short');
  decoded.close();
  raw.close();
  const bytes = readFileSync(path.join(dir, 'raw.bin'));
  t.deepEqual(bytes, readFileSync(path.join(dir, 'decoded.bin')));
  t.is(bytes.length, 2 * H + 9 + 50_000);
  t.is(bytes.readUInt32LE(0), 3, 'the earlier write first');
  t.is(bytes.readBigUInt64LE(H + 50_000 + 17), 2n ** 40n + 7n);
});
