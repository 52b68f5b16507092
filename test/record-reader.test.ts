// openRecord (the library's record reader, also under inspect and ui) on a real record,
// and the example script that uses it.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openRecord, RecordError, UsageError } from '../src/index.js';
import { repoRoot, scratchDir, uwrx } from './helpers/uwrx.js';

let cwd: string;
let attempt: string;

test.before(async () => {
  cwd = scratchDir('uwrx-reader-');
  // v is written by two processes: the first version in files/, the second in files-3/
  const script = 'echo one > v; sh -c "echo two > v; cat v"; echo done';
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd });
  if (run.status !== 0) throw new Error(run.stderr);
  attempt = path.join(cwd, 'build', '0', '0');
});
test.after.always(() => rmSync(cwd, { recursive: true, force: true }));

test('processes, tree, status and command', (t) => {
  const record = openRecord(attempt);
  t.is(record.step, '0');
  t.is(record.attempt, 0);
  t.deepEqual(record.command.slice(0, 2), ['sh', '-c']);
  t.true(record.status?.complete);
  t.deepEqual(record.processes().map((p) => [p.pid, p.ppid]), [
    [2, 1],
    [3, 2],
    [4, 3],
  ]);
  t.deepEqual(record.roots().map((p) => p.pid), [2]);
  t.deepEqual(record.children(3).map((p) => p.argv), [['cat', 'v']]);
  const cat = record.process(4)!;
  t.is(cat.exitCode, 0);
  t.is(cat.signal, null);
  t.is(cat.cwd, cwd);
  t.is(cat.exe, '/usr/bin/cat');
  t.true(cat.end! >= cat.start!);
  t.true(cat.start! >= record.startTime);
});

test('file operations, versions by writer, the resolution rule', (t) => {
  const record = openRecord(attempt);
  const v = path.join(cwd, 'v');
  t.deepEqual(
    record.fileOperations({ pathPrefix: v }).map((o) => [o.pid, o.operation]),
    [
      [2, 'create'],
      [3, 'write'],
    ],
  );
  const versions = record.versions(v);
  t.deepEqual(versions.map((x) => [x.layer, x.pid, x.deleted]), [
    ['files', 2, false],
    ['files-3', 3, false],
  ]);
  t.is(readFileSync(versions[0]!.file, 'utf8'), 'one\n');
  t.is(readFileSync(record.versionWrittenBy(v, 3)!.file, 'utf8'), 'two\n');
  t.is(record.versionWrittenBy(v, 4), undefined);
  // process 3 saw the first version, process 4 (after 3) the second
  const as3 = record.resolve(v, 3);
  const as4 = record.resolve(v, 4);
  t.is(as3.kind === 'found' && readFileSync(as3.file, 'utf8'), 'one\n');
  t.is(as4.kind === 'found' && readFileSync(as4.file, 'utf8'), 'two\n');
});

test('events, outputs, accesses; no network or rebuild decisions in this record', (t) => {
  const record = openRecord(attempt);
  t.false(record.traceLoaded);
  t.is(record.output(4).toString(), 'two\n');
  // (writes to fd 1 are recorded even while the shell points it at a file)
  t.regex(record.output(2, 1).toString(), /done\n$/);
  t.is(record.output(2, 2).toString(), '');
  t.true(record.traceLoaded);
  t.deepEqual(
    record.events({ pid: 3, pathPrefix: path.join(cwd, 'v') }).map((e) => e.type),
    ['open'],
  );
  t.true(record.accesses({ pid: 4 }).some((a) => a.op === 'exec' && a.path.endsWith('cat')));
  // cat read v: the access index has it, and the version it saw is process 3's
  const read = record.accesses({ pid: 4, pathPrefix: path.join(cwd, 'v') });
  t.deepEqual(read.map((a) => [a.op, a.path]), [['read', path.join(cwd, 'v')]]);
  const seen = record.resolve(read[0]!.path, 4);
  t.is(seen.kind === 'found' ? seen.layer.root : '', path.join(attempt, 'files-3'));
  t.deepEqual(record.networkExchanges(), []);
  t.deepEqual(record.rebuildDecisions(), []);
  t.deepEqual(record.networkDomains(), []);
  t.deepEqual(record.problems(), []);
  t.is(record.environment(2), undefined);
});

test('eachAccess hands over what accesses() lists, from the access index or else the trace', (t) => {
  const list = (record: ReturnType<typeof openRecord>) => {
    const out: string[] = [];
    record.eachAccess((pid, op, file) => out.push(`${pid} ${op} ${file}`));
    return out;
  };
  const fromIndex = openRecord(attempt);
  const expected = fromIndex.accesses().map((a) => `${a.pid} ${a.op} ${a.path}`);
  t.true(expected.includes(`4 read ${path.join(cwd, 'v')}`));
  t.deepEqual(list(fromIndex), expected);
  // without accesses.tsv, from the trace events
  const copy = scratchDir('uwrx-reader-noindex-');
  try {
    execFileSync('cp', ['-a', attempt, path.join(copy, '0')]);
    rmSync(path.join(copy, '0', 'accesses.tsv'));
    const fromTrace = openRecord(path.join(copy, '0'));
    const traced = list(fromTrace);
    t.deepEqual(traced, fromTrace.accesses().map((a) => `${a.pid} ${a.op} ${a.path}`));
    t.true(traced.includes(`4 read ${path.join(cwd, 'v')}`));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('a damaged process table or a non-attempt is one RecordError line', (t) => {
  const copy = scratchDir('uwrx-reader-bad-');
  try {
    execFileSync('cp', ['-a', attempt, path.join(copy, '0')]);
    writeFileSync(path.join(copy, '0', 'procs.tsv'), 'pid\tppid\n');
    const e = t.throws(() => openRecord(path.join(copy, '0')), { instanceOf: RecordError });
    t.true(e instanceof UsageError);
    t.is(e.message, `${path.join(copy, '0')}/procs.tsv line 1: unexpected header`);
    t.throws(() => openRecord(copy), { message: `${copy}: not an attempt directory (expected <build>/<step>/<attempt> with seed.txt)` });
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('the example script runs against a real record', (t) => {
  const out = execFileSync(process.execPath, [path.join(repoRoot, 'examples', 'slowest-processes.mjs'), attempt, cwd], { encoding: 'utf8' });
  const lines = out.trimEnd().split('\n');
  t.regex(lines[0]!, /^sh -c echo one > v; .*: 3 processes, complete$/);
  t.is(lines.filter((l) => l.startsWith('slow ')).length, 3);
  t.false(lines.some((l) => l.startsWith('failed')));
  t.true(lines.includes(`file    create ${cwd}/v by pid 2 (/usr/bin/dash), kept in files/`), out);
  t.true(lines.includes(`file    write ${cwd}/v by pid 3 (/usr/bin/dash), kept in files-3/`), out);
});
