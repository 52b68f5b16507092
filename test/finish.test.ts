// Finishing an attempt whose history is not one file per path: directories removed,
// replaced by files and made again. The store must resolve to what each process saw,
// above all to the final state, and `uwrx check` must agree.
import test from 'ava';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseFilesMeta } from '../src/record/files-meta.js';
import { resolveFile } from '../src/record/resolve.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

async function run(script: string, step = '0'): Promise<{ cwd: string; dir: string }> {
  const cwd = scratchDir();
  scratch.push(cwd);
  const r = await uwrx(['run', '-q', '--step', step, '--', 'sh', '-c', script], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
  return { cwd, dir: path.join(cwd, `build/${step}/0`) };
}

/** The pid of the process that did `operation` on `name` (relative to cwd). */
function pidOf(a: { cwd: string; dir: string }, name: string, operation: string): number {
  const entries = parseFilesMeta(readFileSync(path.join(a.dir, 'files.meta'), 'utf8'));
  const e = entries.find((m) => m.path.toString() === path.join(a.cwd, name) && m.operation === operation);
  if (!e) throw new Error(`no ${operation} of ${name}`);
  return e.pid;
}

/** 'dir', file contents, or null (absent) as process `pid` saw `name`. */
function seen(a: { cwd: string; dir: string }, name: string, pid?: number): string | null {
  const r = resolveFile(a.dir, path.join(a.cwd, name), pid);
  if (r.kind === 'absent') return null;
  try {
    return readFileSync(r.file, 'utf8');
  } catch {
    return 'dir';
  }
}

async function checkOk(t: { is: (a: unknown, b: unknown, m?: string) => void }, a: { cwd: string; dir: string }) {
  const r = await uwrx(['check', a.dir], { cwd: a.cwd });
  t.is(r.status, 0, r.stdout + r.stderr);
}

test('a directory made, filled and removed in one step is gone for the next step', async (t) => {
  const a = await run('mkdir -p e/sub && touch e/sub/x && rm -rf e');
  const touch = pidOf(a, 'e/sub/x', 'create');
  const rm = pidOf(a, 'e', 'rmdir');
  t.is(seen(a, 'e'), null);
  t.is(seen(a, 'e/sub/x'), null);
  t.is(seen(a, 'e/sub/x', rm), '', 'rm saw the file touch made');
  t.is(seen(a, 'e', touch + 1), 'dir');
  await checkOk(t, a);
  // the next step builds on this one: e is not there
  const next = await uwrx(['run', '-q', '--step', '10', '--', 'sh', '-c', 'mkdir e && echo made'], { cwd: a.cwd });
  t.is(next.status, 0, next.stderr);
  t.is(next.stdout, 'made\n');
  const byPid = await uwrx(['inspect', 'files', a.dir, '--by-pid', String(rm + 1)], { cwd: a.cwd });
  t.true(byPid.stdout.split('\n').includes(`${path.join(a.cwd, 'e')}\tabsent (files-${rm}/)\t-`), byPid.stdout);
  // a record without the removal (e still there after the run) is caught
  rmSync(path.join(a.dir, `files-${rm}`), { recursive: true });
  const bad = await uwrx(['check', a.dir], { cwd: a.cwd });
  t.is(bad.status, 1);
  t.true(bad.stdout.includes(`files: ${path.join(a.cwd, 'e')} resolves to dir after the run, but files.meta says absent`), bad.stdout);
});

test('a directory replaced by a file and by a directory again', async (t) => {
  const a = await run('mkdir d; touch d/f; rm -rf d; sh -c "echo file > d"; rm d; mkdir d; touch d/g');
  const [mk1, rm1, file, rm2, mk2, g] = [
    pidOf(a, 'd', 'mkdir'), pidOf(a, 'd', 'rmdir'), pidOf(a, 'd', 'create'), pidOf(a, 'd', 'delete'),
    pidOf(a, 'd/g', 'create') - 1, pidOf(a, 'd/g', 'create'),
  ];
  t.true(mk1 < rm1 && rm1 < file && file < rm2 && rm2 < mk2 && mk2 < g);
  t.is(seen(a, 'd/f', rm1), '', 'rm saw d/f');
  t.is(seen(a, 'd', rm1 + 1), null);
  t.is(seen(a, 'd', file + 1), 'file\n');
  t.is(seen(a, 'd', rm2 + 1), null);
  t.is(seen(a, 'd', mk2 + 1), 'dir');
  t.is(seen(a, 'd/f', mk2 + 1), null, 'the new d does not hold the old d/f');
  t.is(seen(a, 'd/g'), '');
  t.is(seen(a, 'd/f'), null);
  await checkOk(t, a);
});

test('a directory replaced by a file written by the shell (a lower pid) ends as the file', async (t) => {
  const a = await run('mkdir -p d/out; echo x > d/out/f; rm -rf d; echo file > d');
  t.is(seen(a, 'd'), 'file\n');
  const rm = pidOf(a, 'd', 'rmdir');
  t.is(seen(a, 'd/out/f', rm), 'x\n', 'rm saw the directory with its file');
  await checkOk(t, a);
});

test('rmdir of a directory that existed before the run, with files written in it', async (t) => {
  const cwd = scratchDir();
  scratch.push(cwd);
  const { mkdirSync, writeFileSync, existsSync } = await import('node:fs');
  mkdirSync(path.join(cwd, 'old'));
  writeFileSync(path.join(cwd, 'old/a'), 'real\n');
  const r = await uwrx(['run', '-q', '--step', '0', '--', 'sh', '-c', 'sh -c "echo new > old/a"; rm -rf old; mkdir old; touch old/b'], { cwd });
  t.is(r.status, 0, r.stderr);
  const a = { cwd, dir: path.join(cwd, 'build/0/0') };
  const rm = pidOf(a, 'old', 'rmdir');
  t.is(seen(a, 'old/a', rm), 'new\n');
  t.is(seen(a, 'old/a', rm + 1), null);
  t.is(seen(a, 'old/a'), null);
  t.is(seen(a, 'old/b'), '');
  t.is(readFileSync(path.join(cwd, 'old/a'), 'utf8'), 'real\n', 'the real file is untouched');
  t.false(existsSync(path.join(cwd, 'old/b')));
  await checkOk(t, a);
});
