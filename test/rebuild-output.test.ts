// Partial rebuild of processes that move files and update their own outputs (ar's
// temporary archive renamed over the old one, ranlib, mv of another's file), and of a
// skipped compile whose stdout and stderr interleave: replayed in the recorded order.
import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { openRecord } from '../src/record/reader.js';
import { readRebuildIndex, type RebuildEntry } from '../src/rebuild/index-file.js';

const missing = ensureCommands({ gcc: 'gcc', ar: 'binutils' });

function toolsMissing(t: { fail(message: string): void }): boolean {
  if (missing.length === 0) return false;
  t.fail(`cannot install ${missing.join(', ')}`);
  return true;
}

function entries(attemptDir: string): RebuildEntry[] {
  const index = readRebuildIndex(attemptDir);
  if (!index) throw new Error(`${attemptDir} has no rebuild index`);
  return index.processes;
}

/** Decision per command line (argv joined), for the listed programs named. */
function decisions(attemptDir: string, names: RegExp): string[] {
  return entries(attemptDir)
    .filter((e) => names.test(path.basename(e.exe)))
    .map((e) => `${e.argv.join(' ')}: ${e.decision}`)
    .sort();
}

test('an archive updated in place and moved files are replayed with the right contents', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-move-');
  writeFileSync(path.join(dir, 'a.c'), 'int a(void) { return 1; }\n');
  writeFileSync(path.join(dir, 'b.c'), 'int b(void) { return 2; }\n');
  writeFileSync(path.join(dir, 'text'), 'first\n');
  execFileSync('gcc', ['-c', 'a.c', 'b.c'], { cwd: dir });
  // ar writes a temporary archive and renames it over lib.a; the second ar and ranlib
  // read the archive they replace; mv moves a file sh wrote, without reading it
  const script = 'rm -f lib.a && ar rc lib.a a.o && ar r lib.a b.o && ranlib lib.a && cat text > moved.tmp && mv moved.tmp moved';
  const first = await uwrx(['run', '--skippable', 'mv', '--', 'sh', '-c', script], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const captured = path.join(dir, 'build', '0', '0');
  const listed = /(^|-)(ar|ranlib|mv)$/;
  for (const e of entries(captured).filter((e) => listed.test(path.basename(e.exe)))) t.is(e.unsafe, undefined, e.argv.join(' '));
  const arOutputs = entries(captured).find((e) => e.argv.join(' ') === 'ar r lib.a b.o')!.outputs;
  t.true(arOutputs.some(([, kind]) => kind === 'absent'), 'ar renamed a temporary archive');
  /** A file as the attempt left it (the resolution rule). */
  const left = (attempt: string, file: string): Buffer => {
    const r = openRecord(path.join(dir, 'build', attempt)).resolve(path.join(dir, file));
    if (r.kind !== 'found') throw new Error(`${file} is not in ${attempt}`);
    return readFileSync(r.file);
  };
  const storedLib = (attempt: string) => left(`0/${attempt}`, 'lib.a');
  const storedMoved = (attempt: string) => left(`0/${attempt}`, 'moved').toString();

  const same = await uwrx(['run', '--replay', captured], { cwd: dir });
  t.is(same.status, 0, same.stderr);
  t.deepEqual(decisions(path.join(dir, 'build', '0', '1'), listed), [
    'ar r lib.a b.o: skipped', 'ar rc lib.a a.o: skipped', 'mv moved.tmp moved: skipped', 'ranlib lib.a: skipped',
  ]);
  t.true(storedLib('1').equals(storedLib('0')));
  t.is(storedMoved('1'), 'first\n');
  // the skipped mv removed the file it moved (files/ keeps the version sh wrote)
  const meta = readFileSync(path.join(dir, 'build', '0', '1', 'files.meta'), 'utf8').trim().split('\n');
  t.regex(meta.filter((l) => l.startsWith(`${dir}/moved.tmp\t`)).pop()!, /\tdelete\t/);

  // a replay of that replay: what it skips names versions stored in 0/0, outside the
  // attempt replayed (their bytes are sent along), and the files come out the same
  const again = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '1')], { cwd: dir });
  t.is(again.status, 0, again.stderr);
  t.deepEqual(decisions(path.join(dir, 'build', '0', '2'), listed), [
    'ar r lib.a b.o: skipped', 'ar rc lib.a a.o: skipped', 'mv moved.tmp moved: skipped', 'ranlib lib.a: skipped',
  ]);
  t.true(entries(path.join(dir, 'build', '0', '1')).some((e) => e.outputs.some(([, kind, source]) => kind === 'file' && source!.includes('/0/0/'))));
  t.true(storedLib('2').equals(storedLib('0')));
  t.is(storedMoved('2'), 'first\n');

  // a changed member: the archive is updated and indexed again; the moved text changed
  execFileSync('sh', ['-c', 'echo "int b(void) { return 3; }" > b.c && gcc -c b.c'], { cwd: dir });
  writeFileSync(path.join(dir, 'text'), 'second\n');
  const changed = await uwrx(['run', '--replay', captured], { cwd: dir });
  t.is(changed.status, 0, changed.stderr);
  t.deepEqual(decisions(path.join(dir, 'build', '0', '3'), listed), [
    'ar r lib.a b.o: ran', 'ar rc lib.a a.o: skipped', 'mv moved.tmp moved: ran', 'ranlib lib.a: ran',
  ]);
  const mv = entries(path.join(dir, 'build', '0', '3')).find((e) => e.argv[0] === 'mv')!;
  t.is(mv.reason, `${dir}/moved.tmp changed`);
  t.is(storedMoved('3'), 'second\n');
  // the same archive as a full build of the changed tree
  const full = await uwrx(['run', '--', 'sh', '-c', script], { cwd: dir });
  t.is(full.status, 0, full.stderr);
  const fullLib = left('10/0', 'lib.a');
  t.true(storedLib('3').equals(fullLib));
  t.false(storedLib('3').equals(storedLib('0')));
});

test('a skipped compile writes its stdout and stderr in the order it wrote them', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-interleave-');
  // more preprocessed text than stdout's buffer between the diagnostics, so that the
  // preprocessor's stdout and its stderr alternate
  const block = (tag: string) => Array.from({ length: 600 }, (_, i) => `int ${tag}_${i} = ${i};`).join('\n');
  const source = [block('head'), '#warning "first diagnostic"', block('middle'), '#error "second diagnostic"', block('tail'), ''].join('\n');
  writeFileSync(path.join(dir, 'mixed.c'), source);
  const command = ['sh', '-c', 'gcc -E mixed.c 2>&1; echo "exit $?"'];
  const first = await uwrx(['run', '--', ...command], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const out = first.stdout;
  const warning = out.indexOf('first diagnostic');
  const error = out.indexOf('second diagnostic');
  t.true(warning > out.indexOf('head_0 = 0') && warning < out.indexOf('middle_599'), 'the warning comes amid stdout');
  t.true(error > out.indexOf('middle_0 = 0') && error < out.indexOf('tail_599'), 'the error comes amid stdout');
  t.regex(out, /exit 1\n$/);

  const replay = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '0')], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  const gcc = entries(path.join(dir, 'build', '0', '1')).filter((e) => /gcc/.test(path.basename(e.exe)));
  t.deepEqual(gcc.map((e) => [e.decision, e.status]), [['skipped', 1]]);
  t.is(replay.stdout, first.stdout);
});

test('only what went to its own stdout and stderr is replayed: gcc -pipe, files and pipes inside a skipped make', async (t) => {
  if (toolsMissing(t)) return;
  const missingMake = ensureCommands({ make: 'make' });
  if (missingMake.length > 0) return t.fail(`cannot install ${missingMake.join(', ')}`);
  const dir = scratchDir('uwrx-rebuild-dest-');
  writeFileSync(path.join(dir, 'x.c'), '#warning "x is old"\nint x(void) { return 1; }\n');
  writeFileSync(
    path.join(dir, 'Makefile'),
    'all: x.o y.txt\n\techo all done\nx.o: x.c\n\tgcc -pipe -c x.c -o x.o\ny.txt: x.c\n\techo built > y.txt\n\tcat x.c | wc -l\n',
  );
  const captured = await uwrx(['run', '--skippable', 'make', '--', 'make'], { cwd: dir });
  t.is(captured.status, 0, captured.stderr);
  t.regex(captured.stderr, /warning: #warning "x is old"/);
  t.notRegex(captured.stdout, /\.text|\.globl/, 'the assembly went to as');
  const replay = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '0'), '--', 'make'], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  t.deepEqual(decisions(path.join(dir, 'build', '0', '1'), /^make$/), ['make: skipped']);
  t.is(replay.stdout, captured.stdout, 'make, echo and wc: the same lines, nothing of cc1 or of y.txt');
  const own = (s: string) => s.split('\n').filter((l) => !l.startsWith('uwrx: ')).join('\n');
  t.is(own(replay.stderr), own(captured.stderr));
  const left = (attempt: string, file: string) => {
    const r = openRecord(path.join(dir, 'build', '0', attempt)).resolve(path.join(dir, file));
    if (r.kind !== 'found') throw new Error(`${file} is not in ${attempt}`);
    return readFileSync(r.file);
  };
  t.is(left('1', 'y.txt').toString(), 'built\n');
  t.true(left('1', 'x.o').equals(left('0', 'x.o')));

  // the driver alone: its warning is its output, cc1's assembly is not
  const gccDir = scratchDir('uwrx-rebuild-pipe-');
  writeFileSync(path.join(gccDir, 'x.c'), '#warning "x is old"\nint x(void) { return 1; }\n');
  const gcc = ['gcc', '-pipe', '-c', 'x.c', '-o', 'x.o'];
  const first = await uwrx(['run', '--', ...gcc], { cwd: gccDir });
  const again = await uwrx(['run', '--replay', path.join(gccDir, 'build', '0', '0'), '--', ...gcc], { cwd: gccDir });
  t.deepEqual(decisions(path.join(gccDir, 'build', '0', '1'), /gcc/), [`${gcc.join(' ')}: skipped`]);
  t.is(again.stdout, '');
  t.is(own(again.stderr), own(first.stderr));
});

test('a skip whose stored output is gone from the record runs the process instead, and says why', async (t) => {
  const dir = scratchDir('uwrx-rebuild-lost-');
  writeFileSync(path.join(dir, 'text'), 'kept\n');
  const first = await uwrx(['run', '--skippable', 'cp', '--', 'cp', 'text', 'copy'], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const captured = path.join(dir, 'build', '0', '0');
  const stored = entries(captured).find((e) => path.basename(e.exe) === 'cp')!.outputs.find(([file]) => file === path.join(dir, 'copy'))![2]!;
  rmSync(stored);
  const replay = await uwrx(['run', '--replay', captured], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  const cp = entries(path.join(dir, 'build', '0', '1')).find((e) => path.basename(e.exe) === 'cp')!;
  t.is(cp.decision, 'ran');
  t.is(cp.reason, `could not replay it: its stored version ${stored} is missing`);
  const r = openRecord(path.join(dir, 'build', '0', '1')).resolve(path.join(dir, 'copy'));
  t.is(r.kind, 'found');
  if (r.kind === 'found') t.is(readFileSync(r.file, 'utf8'), 'kept\n');
});

test('an input another process rewrites after its reader ended is recorded as the reader saw it; a replay skips the reader', async (t) => {
  const dir = scratchDir('uwrx-rebuild-later-');
  writeFileSync(path.join(dir, 'before'), 'zero\n');
  // each cp ends before a later process rewrites the file it copied: one file from the
  // real filesystem, one the run made; the last cp copies the last version
  const script = [
    'cp before a.out', 'sh -c "echo one > before"', 'sh -c "echo two > made"', 'cp made b.out', 'sh -c "echo three > made"', 'cp made c.out',
  ].join(' && ');
  const first = await uwrx(['run', '--skippable', 'cp', '--', 'sh', '-c', script], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const captured = path.join(dir, 'build', '0', '0');
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const cps = entries(captured).filter((e) => path.basename(e.exe) === 'cp');
  const read = (e: RebuildEntry) => e.inputs.filter(([op, file]) => op === 'read' && /\/(before|made)$/.test(file)).map(([, file, hash]) => [path.basename(file), hash]);
  t.deepEqual(cps.map(read), [[['before', sha('zero\n')]], [['made', sha('two\n')]], [['made', sha('three\n')]]]);
  for (const e of cps) t.is(e.unsafe, undefined, e.argv.join(' '));
  // the replay's shells rewrite the same files in the same order: each cp is skipped
  const again = await uwrx(['run', '--replay', 'build/0/0'], { cwd: dir });
  t.is(again.status, 0, again.stderr);
  const replayed = path.join(dir, 'build', '0', '1');
  t.deepEqual(decisions(replayed, /^cp$/), ['cp before a.out: skipped', 'cp made b.out: skipped', 'cp made c.out: skipped']);
  const record = openRecord(replayed);
  for (const [file, text] of [['a.out', 'zero\n'], ['b.out', 'two\n'], ['c.out', 'three\n']] as const) {
    const r = record.resolve(path.join(dir, file));
    t.is(r.kind === 'found' ? readFileSync(r.file, 'utf8') : undefined, text, file);
  }
});
