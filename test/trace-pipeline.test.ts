// The trace pipeline end to end: buffers written by the C writer (as uwrx-init's handlers
// will), drained by the collector while they are written, merged into `perfetto`, read
// back by an independent decoder and by `uwrx inspect`.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { inspect } from '../src/inspect/index.js';
import { Supervisor } from '../src/actors/runtime.js';
import { traceActorSpecs, type CollectorStats } from '../src/actors/collector.js';
import { COLLECTOR_MESSAGES } from '../src/protocol/trace-messages.js';
import type { MergeStats } from '../src/actors/merger.js';
import { decodePerfetto, resolveEvents } from './perfetto-schema.js';
import { allocatedBytes, finishPipeline, makeRunDirs, pipeline, traceDriver, type RunDirs, removeTempDirs } from '../bench/trace-helpers.js';

test.after.always(removeTempDirs);

const run = promisify(execFile);

/** Runs the driver's command tree with the collector scanning concurrently. */
async function recordTree(): Promise<RunDirs> {
  const dirs = makeRunDirs();
  const p = pipeline(dirs, { intervalMs: 5 });
  p.collector.start();
  await run(traceDriver(), ['tree', dirs.traces, dirs.expect], { maxBuffer: 1 << 20 });
  finishPipeline(p);
  return dirs;
}

let tree: Promise<RunDirs> | undefined;
const recordedTree = (): Promise<RunDirs> => (tree ??= recordTree());

async function capture(fn: (out: NodeJS.WritableStream) => Promise<number>): Promise<{ status: number; bytes: Buffer }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const status = await fn(out);
  out.end();
  return { status, bytes: Buffer.concat(chunks) };
}

test('perfetto decodes with an independent decoder: tracks, tree, ordering, compression', async (t) => {
  const dirs = await recordedTree();
  t.deepEqual(readdirSync(dirs.traces), [], 'ended buffers are deleted');
  const bytes = readFileSync(path.join(dirs.attemptDir, 'perfetto'));
  t.is(bytes[0], 0x0a, 'starts with a TracePacket');
  const { outer, packets } = decodePerfetto(bytes);
  t.true(outer.length >= 2, 'several compressed chunks (the 5 MiB write alone needs them)');
  for (const p of outer) t.deepEqual(Object.keys(p), ['compressed_packets'], 'the file holds only compressed_packets');

  // One process track per process, with its logical pid and cmdline.
  const procTracks = packets.filter((p) => p.track_descriptor?.process).map((p) => p.track_descriptor);
  t.deepEqual(
    procTracks.map((d) => [d.process.pid, d.process.cmdline]).sort((a, b) => a[0] - b[0]),
    [
      [2, ['sh', '-c', 'cc -o out3.o & cat']],
      [3, ['cc', '-o', 'out3.o']],
      [4, ['cat', '-o', 'out4.o']],
    ],
  );
  // Parent/child structure.
  const tree = packets.find((p) => p.process_tree)!.process_tree.processes;
  t.deepEqual(
    tree.map((p: { pid: number; ppid?: number }) => [p.pid, p.ppid ?? 0]),
    [[2, 1], [3, 2], [4, 2]],
  );
  // Every sequence starts by clearing its state and never goes back in time.
  const last = new Map<number, number>();
  for (const p of packets) {
    const seq = p.trusted_packet_sequence_id;
    t.truthy(seq, 'every packet is on a sequence');
    if (!last.has(seq)) t.is(p.sequence_flags & 1, 1, `sequence ${seq} starts with INCREMENTAL_STATE_CLEARED`);
    t.true(p.timestamp >= (last.get(seq) ?? 0), `sequence ${seq} non-decreasing`);
    last.set(seq, p.timestamp);
  }
  t.truthy(packets[0].clock_snapshot, 'a clock snapshot comes first');
  t.deepEqual(packets[0].clock_snapshot.clocks.map((c: { clock_id: number }) => c.clock_id), [6, 1]);

  // Every track an event uses is described; thread tracks belong to their process.
  const tracks = new Map<number, { pid: number }>();
  for (const p of packets) {
    const d = p.track_descriptor;
    if (d) tracks.set(d.uuid, { pid: (d.process ?? d.thread).pid });
  }
  const events = resolveEvents(packets);
  for (const e of events) t.true(tracks.has(e.track), `track ${e.track} described`);

  // The known command tree's events are all there.
  const of = (pid: number, name: string) =>
    events.filter((e) => e.name === name && e.type === 3 && tracks.get(e.track)!.pid === pid).map((e) => e.args);
  for (const pid of [3, 4]) {
    t.true(of(pid, 'open').some((a) => a.path === `/work/out${pid}.tmp` && a.result === 4 && a.flags === 0o1101));
    t.true(of(pid, 'open').some((a) => a.path === '/usr/include/stdio.h' && a.result === 3));
    t.deepEqual(of(pid, 'rename').map((a) => [a.from, a.to]), [[`/work/out${pid}.tmp`, `/work/out${pid}.o`]]);
    t.deepEqual(of(pid, 'unlink').map((a) => a.path), ['/work/stale.d']);
    t.deepEqual(of(pid, 'stat').map((a) => [a.path, a.result]), [['/work/missing.h', -2]]);
    t.deepEqual(of(pid, 'chmod').map((a) => a.mode), [0o755]);
    t.deepEqual(of(pid, 'connect').map((a) => [a.addr, a.port, a.result]), [['127.0.0.1', 443, -111]]);
    t.deepEqual(of(pid, 'exit').map((a) => a.status), [pid === 4 ? 1 : 0]);
  }
  t.deepEqual(of(2, 'spawn').map((a) => a.child), [3, 4]);
  t.deepEqual(of(2, 'truncate').map((a) => a.path), ['/work/log']);
  // A lifetime slice per process: BEGIN then END on the process track.
  for (const d of procTracks) {
    const slices = events.filter((e) => e.track === d.uuid).map((e) => e.type);
    t.deepEqual(slices, [1, 2], `process ${d.process.pid} lifetime slice`);
  }
});

test('inspect output reproduces each process\'s bytes exactly (binary, 5 MiB write)', async (t) => {
  const dirs = await recordedTree();
  for (const pid of [3, 4]) {
    const expected = readFileSync(path.join(dirs.expect, `output-${pid}`));
    const { status, bytes } = await capture((out) => inspect('output', dirs.attemptDir, { format: 'text', pid }, out));
    t.is(status, 0);
    t.is(bytes.length, expected.length, `pid ${pid} byte count`);
    t.true(bytes.equals(expected), `pid ${pid} bytes identical`);
  }
  t.true(readFileSync(path.join(dirs.expect, 'output-4')).length > 5 << 20);
});

test('inspect events and procs show the recorded tree', async (t) => {
  const dirs = await recordedTree();
  const procs = await capture((out) => inspect('procs', dirs.attemptDir, { format: 'json' }, out));
  const list = JSON.parse(procs.bytes.toString()) as { pid: number; ppid: number; status: number; cmdline: string[] }[];
  t.deepEqual(list.map((p) => [p.pid, p.ppid, p.status, p.cmdline[0]]), [[2, 1, 0, 'sh'], [3, 2, 0, 'cc'], [4, 2, 1, 'cat']]);
  const events = await capture((out) => inspect('events', dirs.attemptDir, { format: 'text', pid: 3 }, out));
  const text = events.bytes.toString();
  t.regex(text, / 3 rename flags=0 result=0 from=\/work\/out3.tmp to=\/work\/out3.o\n/);
  t.regex(text, / 3 exec result=0 path=\/usr\/bin\/cc argv=\["cc" "-o" "out3.o"\]\n/);
  t.notRegex(text, / 4 /);
  const files = await capture((out) => inspect('files', dirs.attemptDir, { format: 'text', who: true, byPid: 3 }, out));
  t.deepEqual(files.bytes.toString().trim().split('\n'), [
    '/work/out3.tmp\t3\tcreate\t/usr/bin/cc',
    '/work/out3.tmp\t3\trename_from\t/usr/bin/cc',
    '/work/out3.o\t3\trename_to\t/usr/bin/cc',
    '/work/out3.o\t3\tchmod\t/usr/bin/cc',
    '/work/stale.d\t3\tdelete\t/usr/bin/cc',
    '/work/objdir\t3\tmkdir\t/usr/bin/cc',
  ]);
});

test('a process writing over 200 MiB of events keeps its buffer under 8 MiB on disk (collector and merger actors)', async (t) => {
  const dirs = makeRunDirs();
  const supervisor = new Supervisor();
  await supervisor.start(traceActorSpecs({ runDir: dirs.runDir, attemptDir: dirs.attemptDir, intervalMs: 5 }));
  try {
    const pid = 9;
    const file = path.join(dirs.traces, String(pid));
    let maxAllocated = 0;
    const sampler = setInterval(() => (maxAllocated = Math.max(maxAllocated, allocatedBytes(file))), 2);
    // Full speed: the writer waits for the collector when it falls behind.
    const child = spawn(traceDriver(), ['flood', dirs.traces, String(pid), '210', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    // 'close': the driver's stdout (its counts) is read once it ended
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(sampler);
    t.is(code, 0);
    const stats = await supervisor.request<{ collector: CollectorStats; merger: MergeStats }>('collector', COLLECTOR_MESSAGES.finish, undefined, { timeoutMs: 110_000 });
    const [events, bytes, writerMax, throttledMs] = stdout.trim().split(' ').map(Number) as [number, number, number, number];
    maxAllocated = Math.max(maxAllocated, writerMax);
    t.true(bytes > 210 * (1 << 20), `wrote ${bytes} bytes of events`);
    t.is(stats.collector.events, events, 'every event was collected');
    t.is(stats.merger.events, events, 'every event was merged');
    t.deepEqual([...stats.collector.errors, ...stats.merger.errors], []);
    t.log(`max allocated ${(maxAllocated / 2 ** 20).toFixed(2)} MiB while writing ${(bytes / 2 ** 20).toFixed(0)} MiB; perfetto ${(stats.merger.bytesWritten / 2 ** 20).toFixed(1)} MiB; writer waited ${throttledMs} ms`);
    t.true(maxAllocated > 0, 'the sampler saw the file');
    t.true(maxAllocated < 8 << 20, `allocated ${maxAllocated} bytes`);
    t.deepEqual(readdirSync(dirs.traces), []);
  } finally {
    await supervisor.stop();
  }
});
