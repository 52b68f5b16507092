// The merger's two record writers (native, the default, and TypeScript) must write the
// same perfetto file and accesses.tsv byte for byte: checked on the input of a real run
// (UWRX_DEBUG_MERGER_INPUT) with escaped paths, repeated accesses, several processes and
// threads, output, failed execs, signals and cut records, merged again both ways and
// compared with each other and with the record.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Merger, type MergerOptions } from '../src/actors/merger.js';
import { readMergerInput } from '../src/record/merger-input.js';
import { parseAccessIndex } from '../src/record/accesses.js';
import { readTrace } from '../src/record/trace.js';
import { encodeEvent, joinArgv, type TraceEvent } from '../src/protocol/events.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

// Names with a tab, a newline, a backslash, bytes that are not UTF-8 and UTF-8 that is
// not ASCII; each stat'ed twice by one process (repeats), listed, probed when missing,
// by processes in parallel and by threads of one process.
const SCRIPT = String.raw`
set -e
mkdir d
cd d
touch "tab$(printf '\t')x" "back\\slash" "new
line" "$(printf '\377\376')" "$(printf '\303\251t\303\251')" plain
cd ..
stat d/* d/* > /dev/null
ls -la d > /dev/null &
find d /usr/include/linux -maxdepth 1 > /dev/null &
cat d/plain d/missing-one 2> /dev/null || true
wait
python3 -c '
import os, threading
def probe(n):
    for _ in range(3):
        for name in os.listdir(b"d"):
            os.stat(b"d/" + name)
        try:
            os.stat("d/missing-%d" % n)
        except FileNotFoundError:
            pass
threads = [threading.Thread(target=probe, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
'
# the rest of a process's life: output as text and as bytes, a failed exec, a subshell
# that never execs, exit statuses and a signal, file changes, an argument list too long
# for one record
echo text out; printf 'x\377\376y' >&2
/no/such/program 2> /dev/null || true
(cd d && echo sub > sub-file) && (exit 3) || true
sh -c 'kill -9 $$' || true
mv d/plain d/moved && chmod 600 d/moved && rm d/moved && rmdir d 2> /dev/null || true
/bin/true "$(head -c 70000 /dev/zero | tr '\0' a)"
`;

function mergeAgain(log: string, out: string, options: Partial<MergerOptions>): { perfetto: Buffer; accesses: Buffer } {
  const input = readMergerInput(log);
  const merger = new Merger({ output: `${out}.perfetto`, accessIndex: `${out}.tsv`, clocks: input.clocks, ...options });
  input.replay(merger);
  const stats = merger.finish();
  if (stats.errors.length) throw new Error(stats.errors.join('; '));
  return { perfetto: readFileSync(`${out}.perfetto`), accesses: readFileSync(`${out}.tsv`) };
}

test('native and TypeScript record writers give the same record of a real run, byte for byte', async (t) => {
  const dir = scratchDir('uwrx-access-writer-');
  const log = path.join(dir, 'merger-input');
  const r = await uwrx(['run', '--fast-path', '--', 'sh', '-c', SCRIPT], {
    cwd: dir,
    env: { ...process.env, UWRX_DEBUG_MERGER_INPUT: log },
  });
  t.is(r.status, 0, r.stderr);
  const attempt = lastAttempt(dir);
  const recorded = { perfetto: readFileSync(path.join(attempt, 'perfetto')), accesses: readFileSync(path.join(attempt, 'accesses.tsv')) };

  const native = mergeAgain(log, path.join(dir, 'native'), { nativeAccesses: true });
  const ts = mergeAgain(log, path.join(dir, 'ts'), { nativeAccesses: false });
  t.true(native.perfetto.equals(ts.perfetto), 'perfetto: native and TypeScript');
  t.true(native.accesses.equals(ts.accesses), 'accesses.tsv: native and TypeScript');
  t.true(native.perfetto.equals(recorded.perfetto), 'perfetto: merged again as in the run');
  t.true(native.accesses.equals(recorded.accesses), 'accesses.tsv: merged again as in the run');

  // small chunks (a chunk fills within a run of records) and little buffering (runs cut
  // short of the watermark): still the same bytes both ways
  for (const options of [{ chunkBytes: 2048 }, { maxBuffered: 40 }]) {
    const n = mergeAgain(log, path.join(dir, 'native-small'), { ...options, nativeAccesses: true });
    const s = mergeAgain(log, path.join(dir, 'ts-small'), { ...options, nativeAccesses: false });
    t.true(n.perfetto.equals(s.perfetto), `perfetto with ${JSON.stringify(options)}`);
    t.true(n.accesses.equals(s.accesses), `accesses.tsv with ${JSON.stringify(options)}`);
  }

  // the input had what the comparison is meant to cover
  const text = recorded.accesses.toString('latin1');
  for (const escaped of ['d/tab\\tx', 'd/back\\\\slash', 'd/new\\nline', 'd/\\xff\\xfe', 'd/\u00c3\u00a9t\u00c3\u00a9']) {
    t.true(text.includes(escaped), `accesses.tsv has ${escaped}`);
  }
  const entries = parseAccessIndex(recorded.accesses.toString('utf8'));
  t.true(entries.some((e) => e.count > 1), 'repeated accesses counted');
  t.true(entries.some((e) => e.op === 'missing'), 'missing paths');
  t.true(new Set(entries.map((e) => e.pid)).size >= 5, 'several processes');
  const trace = readTrace(path.join(attempt, 'perfetto'));
  t.deepEqual(trace.problems, []);
  // (threads: every record of this run carries its process's pid as tid, so the tracks
  // of several threads are covered by merger.test.ts)
  const probed = trace.events.filter((e) => e.type === 'access' && /\/d\/missing-[0-3]$/.test(String(e.args.path)));
  t.is(new Set(probed.map((e) => String(e.args.path))).size, 4, 'the threads\' probes');
  const has = (what: string, found: (e: (typeof trace.events)[number]) => boolean) => t.true(trace.events.some(found), what);
  has('text output', (e) => e.type === 'output' && e.args.text !== undefined);
  has('binary output', (e) => e.type === 'output' && e.args.base64 !== undefined);
  has('an exit status', (e) => e.type === 'exit' && e.args.status === 3);
  has('a signal', (e) => e.type === 'exit' && e.args.signal === 9);
  has('a cut record', (e) => e.type === 'exec' && e.args.truncated === true);
  has('a rename', (e) => e.type === 'rename');
});

test('access records larger than the chunk has room for: the same bytes both ways', (t) => {
  const dir = scratchDir('uwrx-access-writer-');
  // paths of 60,000 bytes that escape to four times their length, many in a row, in
  // chunks larger than the writer's first buffer
  const events: TraceEvent[] = [{ type: 'exec', pid: 2, tid: 2, time: 10, result: 0, path: Buffer.from('/bin/x'), argv: joinArgv(['/bin/x']) } as TraceEvent];
  for (let i = 0; i < 12; i++) {
    const p = Buffer.alloc(60_000, 0x01);
    p.writeUInt32BE(i, 0);
    events.push({ type: 'access', pid: 2, tid: 2, time: 20 + i, op: 2, flags: 0, result: 0, count: 1, path: p } as TraceEvent);
  }
  const bytes = Buffer.concat(events.map((ev) => encodeEvent(ev)));
  const out = (nativeAccesses: boolean) => {
    const file = path.join(dir, String(nativeAccesses));
    const merger = new Merger({ output: `${file}.perfetto`, accessIndex: `${file}.tsv`, clocks: { boottime: 1, realtime: 2 }, chunkBytes: 8 << 20, nativeAccesses });
    merger.records(2, bytes);
    t.deepEqual(merger.finish().errors, []);
    return [readFileSync(`${file}.perfetto`), readFileSync(`${file}.tsv`)] as const;
  };
  const [np, nt] = out(true);
  const [sp, st] = out(false);
  t.true(np.equals(sp));
  t.true(nt.equals(st));
  t.is(parseAccessIndex(nt.toString('utf8')).length, 13);
});

test('a record of a type no schema knows (codes above every known one): the same error and bytes both ways', (t) => {
  const dir = scratchDir('uwrx-access-writer-');
  const exec = { type: 'exec', pid: 2, tid: 2, time: 10, result: 0, path: Buffer.from('/bin/x'), argv: joinArgv(['/bin/x']) } as TraceEvent;
  const access = (time: number, name: string) =>
    encodeEvent({ type: 'access', pid: 2, tid: 2, time, op: 2, flags: 0, result: 0, count: 1, path: Buffer.from(name) } as TraceEvent);
  for (const code of [67, 1000, 0xffff]) {
    // a well-formed record whose type code (the u16 at offset 4) names no type
    const stranger = access(30, '/b');
    stranger.writeUInt16LE(code, 4);
    const bytes = Buffer.concat([encodeEvent(exec), access(20, '/a'), stranger, access(40, '/c')]);
    const out = (nativeAccesses: boolean) => {
      const file = path.join(dir, `${code}-${nativeAccesses}`);
      const merger = new Merger({ output: `${file}.perfetto`, accessIndex: `${file}.tsv`, clocks: { boottime: 1, realtime: 2 }, nativeAccesses });
      merger.records(2, bytes);
      const { errors } = merger.finish();
      return { errors, perfetto: readFileSync(`${file}.perfetto`), tsv: readFileSync(`${file}.tsv`, 'utf8') };
    };
    const native = out(true);
    const script = out(false);
    t.is(native.errors.length, 1, `code ${code}: ${native.errors.join('; ')}`);
    t.deepEqual(native.errors, script.errors);
    t.true(native.perfetto.equals(script.perfetto), `code ${code}`);
    t.is(native.tsv, script.tsv);
    // what came before the stranger is kept (the exec and the first access), nothing after it
    t.deepEqual(parseAccessIndex(native.tsv).map((a) => a.path.toString()), ['/bin/x', '/a']);
  }
});

test('paths of every byte, valid and broken UTF-8: the same escapes both ways', (t) => {
  const dir = scratchDir('uwrx-access-writer-');
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pieces = [[0x5c], [0x7f], [0x1f], [0x20], [0x7e], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80]];
  const events: TraceEvent[] = [{ type: 'exec', pid: 2, tid: 2, time: 10, result: 0, path: Buffer.from('/bin/x'), argv: joinArgv(['/bin/x']) } as TraceEvent];
  for (let b = 0; b < 256; b++) events.push({ type: 'access', pid: 2, tid: 2, time: 20, op: 2, flags: 0, result: 0, count: 1, path: Buffer.from([0x2f, b, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, b]) } as TraceEvent);
  for (let i = 0; i < 2000; i++) {
    const bytes: number[] = [];
    for (let k = rand(12); k > 0; k--) bytes.push(...(rand(3) === 0 ? [0x20 + rand(95)] : rand(2) ? pieces[rand(pieces.length)]! : [rand(256)]));
    // results that are failed lookups, errors, and ops beyond the known ones
    const result = [0, -2, -20, -13, 3][rand(5)]!;
    events.push({ type: 'access', pid: 2, tid: 2, time: 30 + i, op: rand(8), flags: rand(3) - 1, result, count: rand(3), path: Buffer.from(bytes) } as TraceEvent);
  }
  const bytes = Buffer.concat(events.map((ev) => encodeEvent(ev)));
  const out = (nativeAccesses: boolean) => {
    const file = path.join(dir, String(nativeAccesses));
    const merger = new Merger({ output: `${file}.perfetto`, accessIndex: `${file}.tsv`, clocks: { boottime: 1, realtime: 2 }, nativeAccesses });
    merger.records(2, bytes);
    const stats = merger.finish();
    t.deepEqual(stats.errors, []);
    return [readFileSync(`${file}.perfetto`), readFileSync(`${file}.tsv`), stats] as const;
  };
  const [np, nt, ns] = out(true);
  const [sp, st, ss] = out(false);
  t.deepEqual(ns, ss);
  t.true(np.equals(sp), 'perfetto');
  t.true(nt.equals(st), 'accesses.tsv');
  t.true(ns.repeatedAccesses > 0);
});

test('every record type, held events, threads and output: the same bytes both ways', (t) => {
  const dir = scratchDir('uwrx-access-writer-');
  const b = (s: string | number[]) => Buffer.from(s as string);
  const events: TraceEvent[] = [
    { type: 'spawn', pid: 2, tid: 2, time: 5, child: 3, thread: 0, clone_flags: 0 },
    { type: 'exec', pid: 2, tid: 2, time: 10, result: 0, path: b('/bin/sh'), argv: joinArgv(['sh', '-c', 'tab\there', 'é']) },
    { type: 'spawn', pid: 2, tid: 2, time: 11, child: 7, thread: 1, clone_flags: 0x3d0f00 },
    { type: 'exec', pid: 2, tid: 2, time: 12, result: -2, path: b('/no/such'), argv: joinArgv(['/no/such']) },
    { type: 'output', pid: 2, tid: 2, time: 13, fd: 1, flags: 0, dest_dev: 5, dest_ino: 2 ** 40 + 3, data: b('text é\n') },
    { type: 'output', pid: 2, tid: 7, time: 14, fd: 2, flags: 0, dest_dev: 5, dest_ino: 7, data: b([0xff, 0xfe, 0, 1, 2]) },
    { type: 'output', pid: 2, tid: 2, time: 14, fd: 2, flags: 0, dest_dev: 5, dest_ino: 7, data: b([0xc3]) },
    { type: 'connect', pid: 2, tid: 2, time: 15, family: 2, port: 443, result: -111, addr: b([127, 0, 0, 1]) },
    { type: 'connect', pid: 2, tid: 2, time: 15, family: 10, port: 80, result: 0, addr: b([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]) },
    { type: 'connect', pid: 2, tid: 2, time: 15, family: 1, port: 0, result: 0, addr: b('/run/x\n') },
    { type: 'dns', pid: 2, tid: 2, time: 16, qtype: 1, rcode: 0, name: b('example.com'), answers: b('1.2.3.4') },
    { type: 'skip', pid: 2, tid: 2, time: 17, status: -1, path: b('/usr/bin/cc'), reason: b('inputs\\same') },
    { type: 'download', pid: 2, tid: 2, time: 18, status: 200, size: 2 ** 53 - 1, url: b('https://x/y'), path: b('/tmp/y') },
    { type: 'git', pid: 2, tid: 2, time: 18, status: 0, bytes: 9, service: b('upload-pack'), url: b('https://x/r.git'), request: b(''), wants: b('abc') },
    { type: 'open', pid: 2, tid: 2, time: 19, flags: 577, mode: 0o666, result: 3, path: b('/tmp/f') },
    { type: 'truncate', pid: 2, tid: 2, time: 19, length: 0, result: 0, path: b('/tmp/f') },
    { type: 'rename', pid: 2, tid: 2, time: 20, flags: 0, result: 0, from: b('/tmp/f'), to: b('/tmp/g') },
    { type: 'unlink', pid: 2, tid: 2, time: 20, flags: 0, result: -2, path: b('/tmp/g') },
    { type: 'mkdir', pid: 2, tid: 2, time: 21, mode: 0o755, result: 0, path: b('/tmp/d') },
    { type: 'chmod', pid: 2, tid: 2, time: 21, mode: 0o700, result: 0, path: b('/tmp/d') },
    { type: 'chown', pid: 2, tid: 2, time: 21, uid: 1, gid: 2, result: -1, path: b('/tmp/d') },
    { type: 'rmdir', pid: 2, tid: 2, time: 22, result: 0, path: b('/tmp/d') },
    { type: 'stat', pid: 2, tid: 2, time: 22, flags: 0, result: 0, path: b('/tmp') },
    { type: 'access', pid: 2, tid: 7, time: 23, op: 1, flags: 0, result: 3, count: 2, path: b('/etc/passwd') },
    { type: 'exit', pid: 2, tid: 7, time: 30, status: -1, signal: 0 },
    { type: 'exit', pid: 2, tid: 2, time: 31, status: 0, signal: 0 },
  ] as TraceEvent[];
  // a forked child that never execs: its events are held until its exit names it, and
  // more than the hold limit of another one
  const child: TraceEvent[] = [{ type: 'exit', pid: 3, tid: 3, time: 8, status: 0, signal: 9 } as TraceEvent];
  const busy: TraceEvent[] = [{ type: 'spawn', pid: 9, tid: 9, time: 1, child: 10, thread: 0, clone_flags: 0 } as TraceEvent];
  for (let i = 0; i < 70; i++) busy.push({ type: 'access', pid: 9, tid: 9, time: 2 + i, op: 2, flags: 0, result: i % 3 ? 0 : -2, count: 1, path: b(`/p/${i % 50}`) } as TraceEvent);
  const out = (nativeAccesses: boolean) => {
    const file = path.join(dir, String(nativeAccesses));
    const merger = new Merger({ output: `${file}.perfetto`, accessIndex: `${file}.tsv`, outputIndex: `${file}.out`, clocks: { boottime: 1, realtime: 2 }, chunkBytes: 700, nativeAccesses });
    merger.push(events.slice(0, 9));
    merger.push(child);
    merger.push(busy);
    merger.push(events.slice(9));
    const stats = merger.finish();
    t.deepEqual(stats.errors, []);
    return [readFileSync(`${file}.perfetto`), readFileSync(`${file}.tsv`), readFileSync(`${file}.out`), stats] as const;
  };
  const [np, nt, no, ns] = out(true);
  const [sp, st, so, ss] = out(false);
  t.deepEqual(ns, ss);
  t.true(np.equals(sp), 'perfetto');
  t.true(nt.equals(st), 'accesses.tsv');
  t.true(no.equals(so), 'output.bin');
  t.is(ns.processes, 4);
  const trace = readTrace(path.join(dir, 'true.perfetto'));
  t.deepEqual(trace.problems, []);
  t.is(trace.events.filter((e) => e.type === 'connect').length, 3);
});
