// The trace event schema is defined once (src/protocol/events.ts); the C header must say
// the same thing, and the C writer must produce what the TypeScript decoder reads.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../src/native.js';
import {
  EVENT_DEFS,
  EVENT_FLAG_TRUNCATED,
  EVENT_HEADER_SIZE,
  EVENT_LAYOUTS,
  EVENT_MAX_SIZE,
  OUTPUT_FLAG_MORE,
  TRACE_DATA_OFFSET,
  TRACE_WINDOW_SIZE,
  decodeEvents,
  encodeEvent,
  joinArgv,
  splitArgv,
  type TraceEvent,
} from '../src/protocol/events.js';
import { traceAddon } from '../src/native.js';
import { makeRunDirs, removeTempDirs } from '../bench/trace-helpers.js';

test.after.always(removeTempDirs);

const headerFile = path.join(packageRoot, 'src', 'native', 'include', 'uwrx_events.h');
const header = readFileSync(headerFile, 'utf8');
const C_TYPES: Record<string, string> = { uint32_t: 'u32', int32_t: 'i32', uint64_t: 'u64', int64_t: 'i64' };

function defines(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of header.matchAll(/^#define\s+(UWRX_\w+)\s+(.+?)\s*$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

function structs(): Map<string, [string, string][]> {
  const out = new Map<string, [string, string][]>();
  for (const m of header.matchAll(/struct\s+uwrx_ev_(\w+)\s*\{([^}]*)\}/g)) {
    const body = m[2]!.replace(/\/\*[\s\S]*?\*\//g, '');
    const fields = [...body.matchAll(/(\w+)\s+(\w+)\s*;/g)].map((f) => [f[2]!, C_TYPES[f[1]!] ?? f[1]!] as [string, string]);
    out.set(m[1]!, fields);
  }
  return out;
}

test('the C header defines the same constants, codes, fields and blobs as the schema', (t) => {
  const defs = defines();
  t.is(defs.get('UWRX_EV_HEADER_SIZE'), String(EVENT_HEADER_SIZE));
  t.is(defs.get('UWRX_EV_MAX_SIZE'), String(EVENT_MAX_SIZE));
  t.is(defs.get('UWRX_TRACE_WINDOW_SIZE'), String(TRACE_WINDOW_SIZE));
  t.is(defs.get('UWRX_TRACE_DATA_OFFSET'), String(TRACE_DATA_OFFSET));
  t.is(defs.get('UWRX_EV_FLAG_TRUNCATED'), String(EVENT_FLAG_TRUNCATED));
  t.is(defs.get('UWRX_OUTPUT_FLAG_MORE'), String(OUTPUT_FLAG_MORE));
  const st = structs();
  for (const def of EVENT_DEFS) {
    const NAME = def.name.toUpperCase();
    t.is(defs.get(`UWRX_EV_${NAME}`), String(def.code), `code of ${def.name}`);
    t.is(defs.get(`UWRX_EV_${NAME}_BLOBS`), JSON.stringify(def.blobs.join(',')), `blobs of ${def.name}`);
    t.deepEqual(st.get(def.name), def.fields.map(([n, ty]) => [n, ty]), `fields of ${def.name}`);
  }
  const tsNames = new Set(EVENT_DEFS.map((d) => d.name.toUpperCase()));
  const cCodes = [...defs.keys()].filter((k) => /^UWRX_EV_[A-Z0-9]+$/.test(k) && !/^UWRX_EV_(HEADER_SIZE|MAX_SIZE)$/.test(k));
  for (const k of cCodes) t.true(tsNames.has(k.slice('UWRX_EV_'.length)), `${k} is in the C header but not in the schema`);
  t.deepEqual(st.get('header'), [['size', 'u32'], ['type', 'uint16_t'], ['flags', 'uint16_t'], ['pid', 'u32'], ['tid', 'u32'], ['time_ns', 'u64']]);
});

test('the compiled C structs have the layout the schema computes', (t) => {
  const dir = makeRunDirs('uwrx-layout-').expect;
  const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "uwrx_events.h"', 'int main(void) {'];
  lines.push('printf("header %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct uwrx_ev_header), offsetof(struct uwrx_ev_header, size), offsetof(struct uwrx_ev_header, type), offsetof(struct uwrx_ev_header, flags), offsetof(struct uwrx_ev_header, pid), offsetof(struct uwrx_ev_header, tid), offsetof(struct uwrx_ev_header, time_ns));');
  for (const def of EVENT_DEFS) {
    const s = `struct uwrx_ev_${def.name}`;
    const offs = def.fields.map(([n]) => `offsetof(${s}, ${n})`);
    lines.push(`printf("${def.name} %zu${' %zu'.repeat(offs.length)}\\n", sizeof(${s})${offs.map((o) => ', ' + o).join('')});`);
  }
  lines.push('return 0; }');
  writeFileSync(path.join(dir, 'layout.c'), lines.join('\n'));
  execFileSync('cc', ['-Wall', '-Wextra', '-Werror', `-I${path.dirname(headerFile)}`, '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
  const got = new Map(
    execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => {
        const [name, ...nums] = l.split(' ');
        return [name!, nums.map(Number)] as const;
      }),
  );
  t.deepEqual(got.get('header'), [EVENT_HEADER_SIZE, 0, 4, 6, 8, 12, 16]);
  for (const layout of EVENT_LAYOUTS.values()) {
    t.deepEqual(got.get(layout.def.name), [layout.fixedSize, ...layout.fields.map((f) => f.offset)], layout.def.name);
  }
});

function sample(type: string, i: number): TraceEvent {
  const base = { pid: 7, tid: 7 + (i % 2), time: 1_000_000 + i };
  const p = Buffer.from(`/work/dir ${i}/f\xff.c`, 'latin1');
  switch (type) {
    case 'spawn': return { ...base, type, child: 9, thread: 0, clone_flags: 0x11 };
    case 'exec': return { ...base, type, result: 0, path: Buffer.from('/bin/sh'), argv: joinArgv(['sh', '-c', 'echo "a b"']) };
    case 'exit': return { ...base, type, status: 3, signal: 0 };
    case 'open': return { ...base, type, flags: 0o101, mode: 0o644, result: -2, path: p };
    case 'stat': return { ...base, type, flags: 0x100, result: 0, path: p };
    case 'unlink': return { ...base, type, flags: 0, result: -13, path: p };
    case 'rename': return { ...base, type, flags: 0, result: 0, from: p, to: Buffer.from('/work/to') };
    case 'mkdir': return { ...base, type, mode: 0o755, result: -17, path: p };
    case 'rmdir': return { ...base, type, result: 0, path: p };
    case 'chmod': return { ...base, type, mode: 0o4755, result: 0, path: p };
    case 'chown': return { ...base, type, uid: 1000, gid: 4294967295, result: 0, path: p };
    case 'truncate': return { ...base, type, length: 2 ** 40 + 3, result: 0, path: p };
    case 'access': return { ...base, type, op: 1, flags: 0o2000000, result: -2, count: 3, path: p };
    case 'connect': return { ...base, type, family: 2, port: 443, result: -111, addr: Buffer.from([127, 0, 0, 1]) };
    case 'dns': return { ...base, type, qtype: 1, rcode: 0, name: Buffer.from('example.com'), answers: Buffer.from('127.1.2.3') };
    case 'output': return { ...base, type, fd: 2, flags: 0, dest_dev: 34, dest_ino: 2 ** 40 + 5, data: Buffer.from([0, 1, 2, 255, 10]) };
    case 'skip': return { ...base, type, status: 0, path: Buffer.from('/usr/bin/cc'), reason: Buffer.from('inputs unchanged') };
    case 'download': return { ...base, type, status: 200, size: 12345, url: Buffer.from('https://example.com/x.tgz'), path: Buffer.from('net/example.com/x.tgz') };
    case 'git': return { ...base, type, status: 0, bytes: 4321, service: Buffer.from('git-upload-pack'), url: Buffer.from('https://example.com:443/lib.git'), request: Buffer.from('fetch'), wants: Buffer.from('refs/heads/main') };
    default: throw new Error(type);
  }
}

test('every event type round-trips through the TypeScript encoder and decoder', (t) => {
  const events = EVENT_DEFS.map((d, i) => sample(d.name, i));
  const buf = Buffer.concat(events.map(encodeEvent));
  const { events: back, next } = decodeEvents(buf);
  t.is(next, buf.length);
  t.deepEqual(back, events);
  t.deepEqual(splitArgv((back[1] as Extract<TraceEvent, { type: 'exec' }>).argv).map(String), ['sh', '-c', 'echo "a b"']);
});

test('an over-long blob is cut to the maximum record size and flagged', (t) => {
  const argv = joinArgv(Array.from({ length: 20000 }, (_, i) => `arg${i}`));
  const rec = encodeEvent({ type: 'exec', pid: 2, tid: 2, time: 1, result: 0, path: Buffer.from('/bin/x'), argv });
  t.true(rec.length <= EVENT_MAX_SIZE);
  const [ev] = decodeEvents(rec).events;
  t.is(ev!.flags0, EVENT_FLAG_TRUNCATED);
});

/** A buffer file's records: from TRACE_DATA_OFFSET on (the recorder region before). */
function recordsOf(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const data = Buffer.alloc(Math.max(0, size - TRACE_DATA_OFFSET));
    readAll(fd, data);
    return data;
  } finally {
    closeSync(fd);
  }
}
function readAll(fd: number, data: Buffer): void {
  for (let got = 0; got < data.length; ) {
    const n = readSync(fd, data, got, data.length - got, TRACE_DATA_OFFSET + got);
    if (n <= 0) throw new Error('short read');
    got += n;
  }
}

test('a buffer starts empty, written record by record, then maps a small window and grows it to the full one in place', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 9, 0);
  const live = path.join(dirs.traces, '9');
  t.is(statSync(live).size, 0, 'a buffer costs nothing until a record arrives');
  const small = [encodeEvent(sample('exec', 1)), encodeEvent(sample('exit', 2))];
  addon.traceWriterAppend(w, small[0]!);
  addon.traceWriterAppend(w, small[1]!);
  t.is(statSync(live).size, TRACE_DATA_OFFSET + small[0]!.length + small[1]!.length, 'small records are written as they come, nothing mapped');
  t.true(statSync(live).blocks * 512 <= 4096, 'and take the pages they fill, no more');
  const ev = sample('output', 1);
  if (ev.type === 'output') ev.data = Buffer.alloc(EVENT_MAX_SIZE / 2, 1);
  addon.traceWriterAppend(w, encodeEvent(ev));
  const first = statSync(live).size - TRACE_DATA_OFFSET;
  t.true(first < TRACE_WINDOW_SIZE, 'a large record maps the small first window');
  t.true(first >= EVENT_MAX_SIZE, 'the largest record fits the first window');
  addon.traceWriterAppend(w, encodeEvent(ev));
  t.is(statSync(live).size, TRACE_DATA_OFFSET + TRACE_WINDOW_SIZE, 'grown in place: still nothing final before the window');
  addon.traceWriterClose(w, true);
  const data = recordsOf(path.join(dirs.traces, '9.ended'));
  const { events, next } = decodeEvents(data);
  t.is(next, data.length, 'an ended file is cut to its records');
  t.deepEqual(events.map((e) => e.type), ['exec', 'exit', 'output', 'output']);
});

test('a buffer closed while still written record by record holds exactly its records', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 10, 0);
  const records = [encodeEvent(sample('spawn', 1)), encodeEvent(sample('exec', 2)), encodeEvent(sample('exit', 3))];
  for (const r of records) addon.traceWriterAppend(w, r);
  addon.traceWriterClose(w, true);
  const data = recordsOf(path.join(dirs.traces, '10.ended'));
  t.is(data.length, records.reduce((n, r) => n + r.length, 0));
  t.deepEqual(decodeEvents(data).events.map((e) => ({ ...e, time: 0 })), ['spawn', 'exec', 'exit'].map((type, i) => ({ ...sample(type, i + 1), time: 0, pid: 10 })));
});

test('the C writer stores records the decoder reads back, across many windows', (t) => {
  const dirs = makeRunDirs();
  const addon = traceAddon();
  const w = addon.traceWriterOpen(dirs.traces, 7, 0);
  const written: TraceEvent[] = [];
  for (let i = 0; i < 6000; i++) {
    const ev = sample(EVENT_DEFS[i % EVENT_DEFS.length]!.name, i);
    // Sizes up to the maximum, so records land right at window ends.
    if (ev.type === 'output') ev.data = Buffer.alloc((i * 977) % (EVENT_MAX_SIZE - 64), i & 0xff);
    addon.traceWriterAppend(w, encodeEvent(ev));
    written.push(ev);
  }
  const live = path.join(dirs.traces, '7');
  const size = statSync(live).size;
  t.true(size > 10 * TRACE_WINDOW_SIZE, 'the window moved many times');
  t.is((size - TRACE_WINDOW_SIZE) % 4096, 0, 'windows start on pages');
  addon.traceWriterClose(w, true);
  t.deepEqual(readdirSync(dirs.traces), ['7.ended']);
  const data = recordsOf(path.join(dirs.traces, '7.ended'));
  const { events, next } = decodeEvents(data);
  t.is(next, data.length, 'an ended file is cut to its records');
  t.is(events.length, written.length);
  let last = 0;
  events.forEach((ev, i) => {
    t.true(ev.time >= last, 'times are non-decreasing in a file');
    last = ev.time;
    t.deepEqual({ ...ev, time: 0 }, { ...written[i]!, time: 0, pid: 7 });
  });
});
