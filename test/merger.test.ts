// The merger's ways of writing a record: access records straight from their bytes
// (collector deliveries; native or TypeScript) and decoded events (push). Both must give the same perfetto
// file and access index byte for byte, and pending records must come out in the order
// of a stable sort by time whatever runs they arrived in.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Merger, type MergerOptions } from '../src/actors/merger.js';
import { encodeEvent, joinArgv, EVENT_FLAG_TRUNCATED, type TraceEvent } from '../src/protocol/events.js';
import { readTrace } from '../src/record/trace.js';
import { parseAccessIndex } from '../src/record/accesses.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'uwrx-merger-test-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

let dirs = 0;
function mergerIn(options: Partial<MergerOptions> = {}): { merger: Merger; dir: string } {
  const dir = path.join(scratch, String(dirs++));
  const merger = new Merger({
    output: `${dir}.perfetto`,
    accessIndex: `${dir}.accesses.tsv`,
    clocks: { boottime: 1_000, realtime: 2_000 },
    ...options,
  });
  return { merger, dir };
}

const exec = (pid: number, time: number, prog: string): TraceEvent =>
  ({ type: 'exec', pid, tid: pid, time, result: 0, path: Buffer.from(prog), argv: joinArgv([prog, '-x']) }) as TraceEvent;
const access = (pid: number, tid: number, time: number, op: number, file: Buffer | string, result = 0, count = 1, flags0 = 0): TraceEvent =>
  ({ type: 'access', pid, tid, time, op, flags: -100, result, count, path: Buffer.from(file), ...(flags0 ? { flags0 } : {}) }) as TraceEvent;
const exit = (pid: number, time: number): TraceEvent => ({ type: 'exit', pid, tid: pid, time, status: 0, signal: 0 }) as TraceEvent;
const spawn = (pid: number, time: number, child: number, thread = 0): TraceEvent =>
  ({ type: 'spawn', pid, tid: pid, time, child, thread, clone_flags: 0 }) as TraceEvent;

/** What one process's buffer would hold: the events encoded back to back. */
const bytesOf = (events: TraceEvent[]): Buffer => Buffer.concat(events.map((ev) => encodeEvent(ev)));

test('access records written from their bytes give the same trace and index as decoded events', (t) => {
  const own = '/dev/.uwrx-rec.so';
  const p2: TraceEvent[] = [
    spawn(2, 100, 3),
    exec(2, 110, '/usr/bin/find'),
    access(2, 2, 120, 2, '/usr'),
    access(2, 2, 121, 5, '/usr/lib'),
    access(2, 2, 122, 2, '/usr/lib', 0, 3), // another operation on the same path
    access(2, 2, 123, 2, '/usr', 0, 4), // a repeat: counted, not written again
    access(2, 2, 124, 1, '/usr/include/missing.h', -2), // missing
    access(2, 2, 125, 3, '/usr/share/a\tb\\c\nd'), // escaped
    access(2, 2, 126, 2, Buffer.from([0x2f, 0x78, 0xff, 0xc3, 0xa9])), // not UTF-8, then é
    access(2, 2, 127, 4, '/usr/bin/cc', -13), // negative result
    access(2, 2, 128, 1, own), // uwrx's own file
    spawn(2, 129, 1_000_002, 1),
    access(2, 1_000_002, 130, 2, '/usr/thread'), // another thread
    access(2, 2, 131, 2, '/usr/long', 0, 1, EVENT_FLAG_TRUNCATED),
    exit(2, 140),
  ];
  const p3: TraceEvent[] = [
    // before its exec: held until the process is named
    access(3, 3, 101, 2, '/etc/ld.so.cache'),
    exec(3, 105, '/bin/sh'),
    access(3, 3, 120, 2, '/usr'), // same time as pid 2's: arrival order decides
    access(3, 3, 121, 2, '/usr/lib'),
    access(3, 3, 122, 2, 'relative/../path'),
    exit(3, 150),
  ];
  const raw = mergerIn();
  raw.merger.records(2, bytesOf(p2.slice(0, 6)));
  raw.merger.records(3, bytesOf(p3));
  raw.merger.advance(121);
  raw.merger.records(2, bytesOf(p2.slice(6)));
  const rawStats = raw.merger.finish();
  const decoded = mergerIn();
  decoded.merger.push(p2.slice(0, 6));
  decoded.merger.push(p3);
  decoded.merger.advance(121);
  decoded.merger.push(p2.slice(6));
  const decodedStats = decoded.merger.finish();

  // and from their bytes by the TypeScript access writer
  const ts = mergerIn({ nativeAccesses: false });
  ts.merger.records(2, bytesOf(p2.slice(0, 6)));
  ts.merger.records(3, bytesOf(p3));
  ts.merger.advance(121);
  ts.merger.records(2, bytesOf(p2.slice(6)));
  t.deepEqual(ts.merger.finish(), rawStats);
  t.deepEqual(readFileSync(`${ts.dir}.perfetto`), readFileSync(`${raw.dir}.perfetto`));
  t.deepEqual(readFileSync(`${ts.dir}.accesses.tsv`), readFileSync(`${raw.dir}.accesses.tsv`));

  t.deepEqual(rawStats, decodedStats);
  t.deepEqual(rawStats.errors, []);
  t.deepEqual(readFileSync(`${raw.dir}.perfetto`), readFileSync(`${decoded.dir}.perfetto`));
  t.is(readFileSync(`${raw.dir}.accesses.tsv`, 'utf8'), readFileSync(`${decoded.dir}.accesses.tsv`, 'utf8'));

  // and what they hold is what was recorded
  const entries = parseAccessIndex(readFileSync(`${raw.dir}.accesses.tsv`, 'utf8'));
  const lines = entries.map((e) => `${e.pid} ${e.op} ${JSON.stringify(e.path.toString('latin1'))} ${e.count}`);
  t.deepEqual(lines, [
    '3 stat "/etc/ld.so.cache" 1',
    '3 exec "/bin/sh" 1',
    '2 exec "/usr/bin/find" 1',
    '2 stat "/usr" 5',
    '3 stat "/usr" 1',
    '2 readdir "/usr/lib" 1',
    '3 stat "/usr/lib" 1',
    '2 stat "/usr/lib" 3',
    '3 stat "relative/../path" 1',
    '2 missing "/usr/include/missing.h" 1',
    '2 stat "/usr/share/a\\tb\\\\c\\nd" 1',
    `2 stat ${JSON.stringify(Buffer.from([0x2f, 0x78, 0xff, 0xc3, 0xa9]).toString('latin1'))} 1`,
    '2 readlink "/usr/bin/cc" 1',
    '2 stat "/usr/thread" 1',
    '2 stat "/usr/long" 1',
  ]);
  const trace = readTrace(`${raw.dir}.perfetto`);
  t.deepEqual(trace.problems, []);
  const paths = trace.events.filter((e) => e.type === 'access').map((e) => `${e.pid}:${e.tid} ${String(e.args.path)} ${e.args.result}`);
  t.deepEqual(paths, [
    '3:3 /etc/ld.so.cache 0',
    '2:2 /usr 0',
    '3:3 /usr 0',
    '2:2 /usr/lib 0',
    '3:3 /usr/lib 0',
    '2:2 /usr/lib 0',
    '3:3 relative/../path 0',
    '2:2 /usr/include/missing.h -2',
    '2:2 /usr/share/a\\tb\\\\c\\nd 0',
    '2:2 /x\\xffé 0',
    '2:2 /usr/bin/cc -13',
    '2:1000002 /usr/thread 0',
    '2:2 /usr/long 0',
  ]);
  t.is(trace.events.find((e) => e.args.path === '/usr/long')?.args.truncated, true);
});

test('pending records come out in time order, ties in arrival order, whatever runs they came in', (t) => {
  // deterministic pseudo-random times: several processes, deliveries that interleave,
  // go back in time within a delivery, and tie across processes
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const deliveries: { pid: number; events: TraceEvent[] }[] = [];
  const all: TraceEvent[] = [];
  for (let pid = 2; pid <= 6; pid++) {
    const first = [exec(pid, 10 + pid, `/bin/p${pid}`)];
    deliveries.push({ pid, events: first });
    all.push(...first);
  }
  for (let d = 0; d < 40; d++) {
    const pid = 2 + rand(5);
    const events: TraceEvent[] = [];
    for (let i = 0; i < 1 + rand(60); i++) events.push(access(pid, pid, 100 + rand(400), 2, `/f/${d}/${i}`));
    deliveries.push({ pid, events });
    all.push(...events);
  }
  const expected = all
    .map((ev, order) => ({ ev, order }))
    .sort((a, b) => a.ev.time - b.ev.time || a.order - b.order)
    .map(({ ev }) => `${ev.pid} ${ev.type === 'access' ? ev.path.toString() : ev.type}`);
  for (const maxBuffered of [1_000_000, 50]) {
    const { merger, dir } = mergerIn({ maxBuffered });
    for (const { pid, events } of deliveries) merger.records(pid, bytesOf(events));
    merger.advance(Infinity);
    merger.finish();
    const trace = readTrace(`${dir}.perfetto`);
    t.deepEqual(trace.problems, []);
    const got = trace.events.map((e) => `${e.pid} ${e.type === 'access' ? String(e.args.path) : e.type}`);
    if (maxBuffered > all.length) t.deepEqual(got, expected, 'one advance: a stable sort by time');
    else {
      // forced out before the watermark: each process's events still in its own order
      t.is(got.length, expected.length);
      for (let pid = 2; pid <= 6; pid++) {
        const mine = (list: string[]) => list.filter((s) => s.startsWith(`${pid} `));
        t.deepEqual(mine(got).sort(), mine(expected).sort(), `pid ${pid}: every event`);
      }
    }
  }
});

test('a malformed record keeps the records before it and is reported', (t) => {
  const { merger, dir } = mergerIn();
  const good = bytesOf([exec(2, 10, '/bin/true'), access(2, 2, 11, 2, '/a')]);
  const bad = Buffer.alloc(24);
  bad.writeUInt32LE(24, 0);
  bad.writeUInt16LE(999, 4);
  merger.records(2, Buffer.concat([good, bad, bytesOf([access(2, 2, 12, 2, '/b')])]));
  const stats = merger.finish();
  t.deepEqual(stats.errors, [`traces/2: unknown record type 999 at offset ${good.length}`]);
  t.deepEqual(
    parseAccessIndex(readFileSync(`${dir}.accesses.tsv`, 'utf8')).map((e) => e.path.toString()),
    ['/bin/true', '/a'],
  );
});
