// `uwrx check` on a good attempt and on damaged copies of it, and `uwrx inspect` views.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { check, inspect } from '../src/inspect/index.js';
import { UsageError } from '../src/errors.js';
import { formatProcessTable, type ProcessRecord } from '../src/sandbox/process-table.js';
import { finishPipeline, makeRunDirs, pipeline, traceDriver, removeTempDirs } from '../bench/trace-helpers.js';

test.after.always(removeTempDirs);

function proc(pid: number, ppid: number, ordinal: number, argv: string[], exitCode: number): ProcessRecord {
  return {
    pid,
    ppid,
    key: `${ppid}.${ordinal}`,
    start: 1000n * BigInt(pid),
    end: 9000n,
    exitCode,
    signal: null,
    cwd: Buffer.from('/work'),
    exe: Buffer.from(`/usr/bin/${argv[0]}`),
    argv: argv.map((a) => Buffer.from(a)),
  };
}

const TABLE = [proc(2, 1, 0, ['sh', '-c', 'cc -o out3.o & cat'], 0), proc(3, 2, 0, ['cc', '-o', 'out3.o'], 0), proc(4, 2, 1, ['cat', '-o', 'out4.o'], 1)];

let good: string | undefined;

/** A recorded tree plus the files a finished run stores beside `perfetto`. */
function goodAttempt(): string {
  if (good) return good;
  const dirs = makeRunDirs();
  const p = pipeline(dirs);
  execFileSync(traceDriver(), ['tree', dirs.traces, dirs.expect]);
  finishPipeline(p);
  const a = dirs.attemptDir;
  // what a finished run writes beside the trace
  writeFileSync(path.join(a, 'seed.txt'), `${'0'.repeat(64)}\n`);
  const status = { complete: true, status: 0, exitCode: 0, signal: null, startedAt: '', endedAt: '', processes: 3, filesWritten: 2 };
  writeFileSync(path.join(a, 'status'), JSON.stringify(status));
  writeFileSync(path.join(a, 'procs.tsv'), formatProcessTable(TABLE));
  writeFileSync(
    path.join(a, 'files.meta'),
    ['/work/out3.o\t3\tcreate\t/usr/bin/cc', '/work/out4.o\t4\tcreate\t/usr/bin/cat', '/work/stale.d\t3\tdelete\t/usr/bin/cc', ''].join('\n'),
  );
  mkdirSync(path.join(a, 'files', 'work'), { recursive: true });
  writeFileSync(path.join(a, 'files', 'work', 'out3.o'), 'obj3');
  writeFileSync(path.join(a, 'files', 'work', 'out4.o'), 'obj4');
  good = a;
  return a;
}

/** A damaged copy of the good attempt. */
function copyOf(damage: (dir: string) => void): string {
  const dir = makeRunDirs('uwrx-check-').attemptDir;
  cpSync(goodAttempt(), dir, { recursive: true });
  damage(dir);
  return dir;
}

async function capture(fn: (out: NodeJS.WritableStream) => Promise<number>): Promise<{ status: number; text: string }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const status = await fn(out);
  out.end();
  return { status, text: Buffer.concat(chunks).toString() };
}

test('check exits 0 on a good attempt', async (t) => {
  const r = await capture((out) => check(goodAttempt(), out));
  t.is(r.text, 'ok: 3 processes, 509 events\n');
  t.is(r.status, 0);
});

test('check names a truncated perfetto file', async (t) => {
  const dir = copyOf((d) => {
    const file = path.join(d, 'perfetto');
    truncateSync(file, Math.floor(readFileSync(file).length / 2));
  });
  const r = await capture((out) => check(dir, out));
  t.is(r.status, 1);
  t.regex(r.text, /^perfetto: truncated field 1 at offset \d+: needs \d+ bytes, \d+ left$/m);
});

test('check names a missing perfetto file and a missing process table', async (t) => {
  const dir = copyOf((d) => {
    rmSync(path.join(d, 'procs.tsv'));
    rmSync(path.join(d, 'perfetto'));
  });
  const r = await capture((out) => check(dir, out));
  t.is(r.status, 1);
  t.regex(r.text, /^perfetto: cannot read .*perfetto: ENOENT$/m);
  t.regex(r.text, /^procs.tsv: process table missing \(ENOENT: .*procs.tsv\)$/m);
});

test('check names a process the table lacks', async (t) => {
  const dir = copyOf((d) => writeFileSync(path.join(d, 'procs.tsv'), formatProcessTable(TABLE.slice(0, 2))));
  const r = await capture((out) => check(dir, out));
  t.is(r.status, 1);
  t.regex(r.text, /^procs.tsv: process 4 is in the trace but not in the process table$/m);
});

test('check names a corrupted files.meta', async (t) => {
  const broken = copyOf((d) => writeFileSync(path.join(d, 'files.meta'), '/work/out3.o\t3\tcreate\t/usr/bin/cc\n/work/out4.o\t4\tcreate\n'));
  let r = await capture((out) => check(broken, out));
  t.is(r.status, 1);
  t.regex(r.text, /^files.meta line 2: expected 4 tab-separated fields, found 3$/m);

  const inconsistent = copyOf((d) => {
    writeFileSync(path.join(d, 'files.meta'), '/work/out3.o\t3\tcreate\t/usr/bin/cc\n/work/gone.o\t9\twrite\t/usr/bin/cc\n');
  });
  r = await capture((out) => check(inconsistent, out));
  t.is(r.status, 1);
  t.deepEqual(r.text.trim().split('\n'), [
    'files.meta line 2: process 9 is not in the process table',
    'files.meta line 2: /work/gone.o (write by 9) has no stored version in files/ or files-9/',
    'files: /work/gone.o resolves to absent after the run, but files.meta says file (line 2: write by 9)',
    'files/work/out4.o: not in files.meta',
  ]);
});

test('inspect views: json events, files from files.meta, unknown pid', async (t) => {
  const a = goodAttempt();
  const ev = await capture((out) => inspect('events', a, { format: 'json', pid: 4 }, out));
  const events = JSON.parse(ev.text) as { type: string; pid: number; path?: string }[];
  t.true(events.every((e) => e.pid === 4));
  t.true(events.some((e) => e.type === 'unlink' && e.path === '/work/stale.d'));
  const files = await capture((out) => inspect('files', a, { format: 'text' }, out));
  t.is(files.text, '/work/out3.o\n/work/out4.o\n/work/stale.d\n');
  const who = await capture((out) => inspect('files', a, { format: 'json', who: true, byPid: 4 }, out));
  t.deepEqual(JSON.parse(who.text), [{ path: '/work/out4.o', pid: 4, operation: 'create', exec: '/usr/bin/cat' }]);
  await t.throwsAsync(() => inspect('output', a, { format: 'text', pid: 77 }, new PassThrough()), { instanceOf: UsageError, message: 'no process 77 in this trace' });
  const procs = await capture((out) => inspect('procs', a, { format: 'text' }, out));
  t.deepEqual(procs.text.split('\n').slice(0, 2), ['PID\tPPID\tSTATUS\tSTART\tDURATION\tCMDLINE', '2\t1\t0\t0.000000\t0.000007\tsh -c cc -o out3.o & cat']);
  await t.throwsAsync(() => inspect('procs', path.join(a, 'nope'), { format: 'text' }, new PassThrough()), { instanceOf: UsageError });
});
