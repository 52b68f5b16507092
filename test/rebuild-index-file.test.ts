// The rebuild index file (rebuild.json): JSON lines written and read back, entries parsed
// one by one, the older one-object layout still read, and a damaged or foreign file
// refused with its name.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import {
  REBUILD_INDEX_FILE,
  REBUILD_INDEX_VERSION,
  commandDigest,
  openRebuildIndex,
  readRebuildIndex,
  writeRebuildIndex,
  type RebuildEntry,
  type RebuildIndex,
} from '../src/rebuild/index-file.js';

function entry(pid: number, argv: string[]): RebuildEntry {
  return {
    pid,
    seed: pid % 2 ? `${pid}`.padStart(64, '0') : null,
    exe: '/usr/bin/gcc',
    argv,
    cwd: '/src',
    env: ['A=1', 'B=line\\nbreak'],
    decision: 'ran',
    reason: 'not a replay',
    status: 0,
    inputs: [['read', '/src/a.c', 'ab'.repeat(32)], ['missing', '/inc/a.h', '-']],
    outputs: [['/src/a.o', 'file', '/build/0/0/files/src/a.o', 0o644]],
    stdio: { pids: [pid], ranges: [[0, 10]] },
  };
}

const index: RebuildIndex = {
  version: REBUILD_INDEX_VERSION,
  skippable: ['gcc', 'make'],
  processes: [entry(2, ['gcc', '-c', 'a.c']), entry(3, ['gcc', '-c', 'b c.c']), entry(4, ['gcc', '-o', 'x'])],
  identities: [['/usr/bin/gcc', '10', '1', '2', 'cd'.repeat(32)]],
};

test('an index is written one entry per line and read back whole or entry by entry', async (t) => {
  const dir = scratchDir();
  await writeRebuildIndex(dir, index);
  const text = readFileSync(path.join(dir, REBUILD_INDEX_FILE), 'utf8');
  t.is(text.split('\n').length, index.processes.length + 2, 'a head line, one line per entry, a final newline');
  t.deepEqual(readRebuildIndex(dir), index);
  const reader = openRebuildIndex(dir)!;
  t.is(reader.count, 3);
  t.deepEqual(reader.keys[1], [index.processes[1]!.seed, commandDigest(index.processes[1]!)]);
  t.deepEqual(reader.entry(2), index.processes[2]);
  t.deepEqual(reader.identities, index.identities);
  t.true(reader.usable);
  t.is(openRebuildIndex(path.join(dir, 'nothing-here')), undefined);
});

test("each distinct input and environment is written once, in the head, and entries name theirs by index", async (t) => {
  const dir = scratchDir();
  await writeRebuildIndex(dir, index);
  const lines = readFileSync(path.join(dir, REBUILD_INDEX_FILE), 'utf8').split('\n');
  const head = JSON.parse(lines[0]!) as { inputs: unknown[]; envs: unknown[] };
  t.deepEqual(head.inputs, index.processes[0]!.inputs, 'the three entries share two inputs');
  t.deepEqual(head.envs, [index.processes[0]!.env], 'and one environment');
  t.like(JSON.parse(lines[2]!), { inputs: [0, 1], env: 0 });
  // an index naming an input or environment the head lacks is refused with the entry named
  const bad = [lines[0], lines[1], lines[2]!.replace('"inputs":[0,1]', '"inputs":[0,7]'), lines[3]!.replace('"env":0', '"env":"x"'), ''];
  writeFileSync(path.join(dir, REBUILD_INDEX_FILE), bad.join('\n'));
  const reader = openRebuildIndex(dir)!;
  t.deepEqual(reader.entry(0), index.processes[0]);
  t.throws(() => reader.entry(1), { message: /entry 2: input 7 is not in the head's table of 2/ });
  t.throws(() => reader.entry(2), { message: /entry 3: environment "x" is not in the head's table of 1/ });
});

test('an index of version 4 (inputs written in full in each entry) is read the same', (t) => {
  const dir = scratchDir();
  const head = { version: 4, skippable: index.skippable, identities: index.identities, keys: index.processes.map((e) => [e.seed, commandDigest(e)]) };
  writeFileSync(path.join(dir, REBUILD_INDEX_FILE), [head, ...index.processes].map((v) => JSON.stringify(v) + '\n').join(''));
  const reader = openRebuildIndex(dir)!;
  t.true(reader.usable);
  t.deepEqual(reader.entries(), index.processes);
});

test('an index in the older one-object layout (version 3) is read the same', (t) => {
  const dir = scratchDir();
  writeFileSync(path.join(dir, REBUILD_INDEX_FILE), JSON.stringify({ ...index, version: 3 }) + '\n');
  const reader = openRebuildIndex(dir)!;
  t.true(reader.usable);
  t.deepEqual(reader.entries(), index.processes);
  t.deepEqual(reader.keys.map((k) => k[1]), index.processes.map(commandDigest));
});

test('a damaged index or one of an unknown version is refused with the file named', async (t) => {
  const dir = scratchDir();
  await writeRebuildIndex(dir, index);
  const file = path.join(dir, REBUILD_INDEX_FILE);
  const lines = readFileSync(file, 'utf8').split('\n');
  writeFileSync(file, lines.slice(0, 3).join('\n') + '\n');
  t.throws(() => openRebuildIndex(dir), { message: new RegExp(`^${file}: .*3 entries named, 2 present`) });
  writeFileSync(file, [lines[0], lines[1], '{"pid": 3, trunc', lines[3]].join('\n') + '\n');
  t.throws(() => openRebuildIndex(dir)!.entry(1), { message: new RegExp(`^${file}: entry 2: `) });
  writeFileSync(file, '{"version": 99, "keys": []}\n');
  t.false(openRebuildIndex(dir)!.usable);
  t.throws(() => readRebuildIndex(dir), { message: new RegExp(`${file}: a version 99 rebuild index`) });
  writeFileSync(file, 'not json\n');
  t.throws(() => openRebuildIndex(dir), { message: new RegExp(`^${file}: not a version ${REBUILD_INDEX_VERSION} rebuild index`) });
});

test('inspect rebuild names a damaged index in one line; a replay of it runs everything and says why', async (t) => {
  const dir = scratchDir();
  const r = await uwrx(['run', '--', 'sh', '-c', 'true'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const attempt = path.join(dir, 'build', '0', '0');
  writeFileSync(path.join(attempt, REBUILD_INDEX_FILE), '{"version": 99}\n');
  const inspect = await uwrx(['inspect', 'rebuild', attempt], { cwd: dir });
  t.is(inspect.status, 2);
  t.regex(inspect.stderr, /a version 99 rebuild index \(this uwrx reads version \d+\)/);
  const replay = await uwrx(['run', '--skippable', 'sh', '--replay', attempt], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  const rows = await uwrx(['inspect', 'rebuild', '--format', 'json', path.join(dir, 'build', '0', '1')], { cwd: dir });
  t.is(rows.status, 0, rows.stderr);
  const parsed = JSON.parse(rows.stdout) as { decision: string; reason: string }[];
  t.true(parsed.length > 0);
  t.true(parsed.every((row) => row.decision === 'ran' && /version 99/.test(row.reason)), rows.stdout);
});

test('a replay whose recorded entry is damaged runs that process and names the damage', async (t) => {
  const dir = scratchDir();
  const r = await uwrx(['run', '--skippable', 'sh', '--', 'sh', '-c', 'echo hi'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const attempt = path.join(dir, 'build', '0', '0');
  const file = path.join(attempt, REBUILD_INDEX_FILE);
  const lines = readFileSync(file, 'utf8').split('\n');
  t.is(lines.length, 3, 'a head line and the entry of sh');
  writeFileSync(file, [lines[0], lines[1]!.slice(0, 40), ''].join('\n'));
  const replay = await uwrx(['run', '--replay', attempt], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  t.regex(replay.stdout, /^hi$/m);
  const rows = await uwrx(['inspect', 'rebuild', '--format', 'json', path.join(dir, 'build', '0', '1')], { cwd: dir });
  const parsed = JSON.parse(rows.stdout) as { decision: string; reason: string }[];
  t.is(parsed.length, 1);
  t.is(parsed[0]!.decision, 'ran');
  t.regex(parsed[0]!.reason, /the replayed rebuild index is damaged: .*rebuild\.json: entry 1: /);
});
