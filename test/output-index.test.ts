// The output index (output.bin): records written in order, the runs of a set of
// processes' records found by offset, and read back as uwrx-init serves them.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OutputIndexWriter, outputRanges, readOutput } from '../src/record/output-index.js';
import { scratchDir } from './helpers/uwrx.js';

const served = (fd: number, text: string) => {
  const head = Buffer.alloc(5);
  head[0] = fd;
  head.writeUInt32LE(Buffer.byteLength(text), 1);
  return Buffer.concat([head, Buffer.from(text)]);
};

test('records of a process tree are found by offset and read back in order, stdout and stderr interleaved', (t) => {
  const file = path.join(scratchDir('uwrx-output-index-'), 'output.bin');
  const w = new OutputIndexWriter(file);
  w.add(2, 1, Buffer.from('make: cc a.c\n'));
  w.add(3, 2, Buffer.from('a.c:1: warning\n'));
  w.add(4, 1, Buffer.from('driver out\n'));
  w.add(3, 1, Buffer.from('a.o done\n'));
  w.add(5, 2, Buffer.alloc(0)); // nothing written: no record
  w.add(3, 2, Buffer.from('a.c:2: error\n'));
  w.add(2, 1, Buffer.alloc(100_000, 'x')); // larger than the writer's buffer
  w.close();
  const bytes = readFileSync(file);
  t.is(bytes.length, 6 * 9 + 13 + 15 + 11 + 9 + 13 + 100_000);

  // key "cc": processes 3 and 4 (a driver and its child); key "make": process 2
  const ranges = outputRanges(file, new Map([[3, ['cc']], [4, ['cc']], [2, ['make']]]))!;
  t.deepEqual(ranges.get('cc'), [[22, 24 + 20 + 18 + 22]]);
  t.deepEqual(ranges.get('make'), [[0, 22], [22 + 84, 100_009]]);
  t.deepEqual(
    readOutput(file, ranges.get('cc')!),
    Buffer.concat([served(2, 'a.c:1: warning\n'), served(1, 'driver out\n'), served(1, 'a.o done\n'), served(2, 'a.c:2: error\n')]),
  );
  t.is(readOutput(file, ranges.get('make')!).length, 5 + 13 + 5 + 100_000);
  t.deepEqual(readOutput(file, []), Buffer.alloc(0));
  t.is(outputRanges(path.join(path.dirname(file), 'absent.bin'), new Map()), null);
  t.throws(() => readOutput(file, [[22, 30]]), { message: /runs past its range/ });
});
