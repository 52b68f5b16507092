// Partial rebuild, end to end with real gcc, ar and make: a full capture of a generated
// 33-file C project, then replays after no change, a changed source, a changed header,
// a header that shadows another on the include path, a changed environment; a failed
// compile replayed from the record.
import test, { type ExecutionContext } from 'ava';
import { appendFileSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { writeCProject, type CProject } from './helpers/c-project.js';
import { sameAsFinishedRecord as sameAsRecord } from './helpers/rebuild-index.js';
import { readRebuildIndex, type RebuildEntry } from '../src/rebuild/index-file.js';

const missing = ensureCommands({ gcc: 'gcc', make: 'make', ar: 'binutils' });

const exeName = (e: RebuildEntry) => path.basename(e.exe);
const isDriver = (e: RebuildEntry) => /gcc/.test(exeName(e));
/** The source a compile driver compiled ('' for the link). */
const sourceOf = (e: RebuildEntry) => e.argv.find((a) => a.endsWith('.c')) ?? '';
const sortedLines = (s: string) => s.split('\n').filter((l) => !l.startsWith('uwrx: ')).sort();

/** sameAsRecord for this file's project. */
const sameAsFinishedRecord = (t: ExecutionContext, attemptDir: string) => sameAsRecord(t, attemptDir, path.join(project.dir, 'build'));

function entries(attemptDir: string): RebuildEntry[] {
  const index = readRebuildIndex(attemptDir);
  if (!index) throw new Error(`${attemptDir} has no rebuild index`);
  return index.processes;
}

/** The drivers (and other top-level listed programs) that ran, by what they built. */
function ranTopLevel(attemptDir: string): string[] {
  return entries(attemptDir)
    .filter((e) => e.decision === 'ran' && (isDriver(e) || exeName(e).endsWith('-ar')))
    .map((e) => (isDriver(e) ? sourceOf(e) || 'link' : 'ar'))
    .sort();
}

function stored(attemptDir: string, project: CProject, file: string): Buffer {
  return readFileSync(path.join(attemptDir, 'files', project.dir, file));
}

let project: CProject;
let capture: { status: number | null; stdout: string; stderr: string };
let captureDir: string;

test.serial.before(async () => {
  if (missing.length > 0) return;
  project = writeCProject(scratchDir('uwrx-rebuild-'), 33);
  capture = await uwrx(['run', '--', 'make', '-j2'], { cwd: project.dir });
  captureDir = path.join(project.dir, 'build', '0', '0');
});

/** The tools are installed (CI runs as root with the Debian registry): a missing one fails. */
function toolsMissing(t: { fail(message: string): void }): boolean {
  if (missing.length === 0) return false;
  t.fail(`cannot install ${missing.join(', ')}`);
  return true;
}

test.serial('the capture records every compile driver, ar and the link as skippable', (t) => {
  if (toolsMissing(t)) return;
  t.is(capture.status, 0, capture.stderr);
  const all = entries(captureDir);
  const drivers = all.filter(isDriver);
  t.is(drivers.length, 35, 'one driver per source (33 + main.c) and the link');
  for (const e of drivers) t.is(e.unsafe, undefined, `${e.argv.join(' ')}: ${e.unsafe}`);
  const ar = all.find((e) => exeName(e).endsWith('-ar'));
  t.truthy(ar);
  t.is(ar!.unsafe, undefined);
  // a compile's inputs: its source, the headers, the failed probes on the include path
  const m1 = drivers.find((e) => sourceOf(e) === 'src/m1.c')!;
  const inputs = new Map(m1.inputs.map(([op, p, v]) => [`${op} ${p}`, v]));
  t.truthy(inputs.get(`read ${project.dir}/src/m1.c`));
  t.truthy(inputs.get(`read ${project.dir}/include/g1.h`));
  t.is(inputs.get(`missing ${project.dir}/shadow/g1.h`), '-');
  t.deepEqual(m1.outputs.filter((o) => o[1] === 'file').map((o) => o[0]), [`${project.dir}/obj/m1.o`]);
  // the compiler proper, a file of the real filesystem, is known by identity with its hash
  const cc1 = m1.inputs.find(([op, p]) => op === 'exec' && p.endsWith('/cc1'));
  t.truthy(cc1);
  const identity = readRebuildIndex(captureDir)!.identities?.find((id) => id[0] === cc1![1]);
  t.is(identity?.[4], cc1![2]);
  t.is(identity?.[1], String(statSync(cc1![1]).size));
});


test.serial('the index made beside the files\' collection is the one the finished record gives', (t) => {
  if (toolsMissing(t)) return;
  t.true(sameAsFinishedRecord(t, captureDir) > 35);
});

test.serial('a replay without changes skips every listed process with the same files, output and status', async (t) => {
  if (toolsMissing(t)) return;
  const replay = await uwrx(['run', '--replay', captureDir], { cwd: project.dir });
  const replayDir = path.join(project.dir, 'build', '0', '1');
  t.is(replay.status, capture.status);
  t.is(replay.stdout, capture.stdout);
  // make -j2 interleaves two compiles' warnings differently from run to run natively too
  t.deepEqual(sortedLines(replay.stderr), sortedLines(capture.stderr));
  const all = entries(replayDir);
  t.is(all.length, 36, 'the 35 drivers and ar: nothing below a skipped driver started');
  t.deepEqual(all.filter((e) => e.decision !== 'skipped').map((e) => `${e.exe}: ${e.reason}`), []);
  t.regex(replay.stderr, /uwrx: .* 36 skipped/);
  for (const file of ['prog', 'libproj.a', ...project.objects]) {
    t.true(stored(replayDir, project, file).equals(stored(captureDir, project, file)), file);
  }
  // the files are the skipped processes' own in the new record
  const meta = readFileSync(path.join(replayDir, 'files.meta'), 'utf8');
  t.regex(meta, new RegExp(`^${project.dir}/obj/m7.o\\t\\d+\\tcreate\\t`, 'm'));
  const inspected = await uwrx(['inspect', 'rebuild', replayDir, '--format', 'json'], { cwd: project.dir });
  t.is(inspected.status, 0, inspected.stderr);
  const rows = JSON.parse(inspected.stdout) as Array<{ pid: number; exe: string; decision: string; reason: string }>;
  t.is(rows.length, 36);
  t.deepEqual(Object.keys(rows[0]!).sort(), ['decision', 'exe', 'pid', 'reason']);
  t.true(rows.every((r) => r.decision === 'skipped' && r.reason.startsWith(`answered from ${captureDir} process `)));
  const text = await uwrx(['inspect', 'rebuild', replayDir], { cwd: project.dir });
  t.regex(text.stdout, /\n36 of 36 skipped\n$/);
  // the replay's index keeps the identities of its inputs
  t.deepEqual(readRebuildIndex(replayDir)!.identities, readRebuildIndex(captureDir)!.identities);
  const check = await uwrx(['check', replayDir], { cwd: project.dir });
  t.is(check.status, 0, check.stdout + check.stderr);
});

test.serial('a changed source runs exactly its compile, the archive and the link', async (t) => {
  if (toolsMissing(t)) return;
  const source = path.join(project.dir, 'src', 'm5.c');
  const before = readFileSync(source);
  appendFileSync(source, 'int m5_extra(void) { return 5; }\n');
  try {
    const replay = await uwrx(['run', '--replay', captureDir], { cwd: project.dir });
    t.is(replay.status, 0, replay.stderr);
    const dir = path.join(project.dir, 'build', '0', '2');
    t.deepEqual(ranTopLevel(dir), ['ar', 'link', 'src/m5.c']);
    const m5 = entries(dir).find((e) => sourceOf(e) === 'src/m5.c')!;
    t.is(m5.reason, `${project.dir}/src/m5.c changed`);
    const text = await uwrx(['inspect', 'rebuild', dir], { cwd: project.dir });
    t.regex(text.stdout, new RegExp(`^${m5.pid}\tran\t${m5.exe}\t${project.dir}/src/m5.c changed$`, 'm'));
    t.false(stored(dir, project, 'obj/m5.o').equals(stored(captureDir, project, 'obj/m5.o')));
    t.true(stored(dir, project, 'obj/m6.o').equals(stored(captureDir, project, 'obj/m6.o')));
    // with the capture as the layers below (its m6.o, the archive's members)
    t.true(sameAsFinishedRecord(t, dir) >= 3);
  } finally {
    writeFileSync(source, before);
  }
});

test.serial('a changed header recompiles exactly the files that include it', async (t) => {
  if (toolsMissing(t)) return;
  const header = path.join(project.dir, 'include', 'g1.h');
  const before = readFileSync(header);
  writeFileSync(header, before.toString().replace('#define GROUP_BASE 100', '#define GROUP_BASE 101'));
  try {
    const replay = await uwrx(['run', '--replay', captureDir], { cwd: project.dir });
    t.is(replay.status, 0, replay.stderr);
    const includers = project.sources.filter((s) => project.groupOf(s) === 'g1.h').map((s) => `src/${s}`);
    t.is(includers.length, 8);
    t.deepEqual(ranTopLevel(path.join(project.dir, 'build', '0', '3')), ['ar', 'link', ...includers].sort());
  } finally {
    writeFileSync(header, before);
  }
});

test.serial('a header added earlier on the include path recompiles the files it shadows for', async (t) => {
  if (toolsMissing(t)) return;
  // the same bytes: only the failed probe of shadow/g2.h tells the difference
  const shadow = path.join(project.dir, 'shadow', 'g2.h');
  copyFileSync(path.join(project.dir, 'include', 'g2.h'), shadow);
  try {
    const replay = await uwrx(['run', '--replay', captureDir], { cwd: project.dir });
    t.is(replay.status, 0, replay.stderr);
    const dir = path.join(project.dir, 'build', '0', '4');
    const shadowed = project.sources.filter((s) => project.groupOf(s) === 'g2.h').map((s) => `src/${s}`);
    // the objects come out the same, so the archive and the link are skipped
    t.deepEqual(ranTopLevel(dir), shadowed.sort());
    const one = entries(dir).find((e) => sourceOf(e) === shadowed[0])!;
    t.is(one.reason, `${shadow} exists now (it was absent)`);
  } finally {
    rmSync(shadow);
  }
});

test.serial('an environment variable the compiler reads makes the compiles run', async (t) => {
  if (toolsMissing(t)) return;
  const small = writeCProject(scratchDir('uwrx-rebuild-env-'), 3);
  const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
  const first = await uwrx(['run', '--', 'make'], { cwd: small.dir, env });
  t.is(first.status, 0, first.stderr);
  const captured = path.join(small.dir, 'build', '0', '0');
  const same = await uwrx(['run', '--replay', captured], { cwd: small.dir, env });
  t.deepEqual(ranTopLevel(path.join(small.dir, 'build', '0', '1')), []);
  t.regex(same.stderr, / 6 skipped/);
  for (const [name, value, attempt] of [['SOURCE_DATE_EPOCH', '1800000000', '2'], ['CPATH', '/nonexistent', '3']] as const) {
    const changed = await uwrx(['run', '--replay', captured], { cwd: small.dir, env: { ...env, [name]: value } });
    t.is(changed.status, 0, changed.stderr);
    const all = entries(path.join(small.dir, 'build', '0', attempt));
    const compiles = all.filter((e) => isDriver(e) && sourceOf(e) !== '');
    t.is(compiles.length, 4);
    for (const e of compiles) t.deepEqual([e.decision, e.reason], ['ran', `environment variable ${name} differs`]);
  }
});

test('a compile that failed replays its error text and exit status', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-fail-');
  writeFileSync(path.join(dir, 'bad.c'), 'int f(void) { return missing_name; }\n');
  const first = await uwrx(['run', '--', 'gcc', '-c', 'bad.c'], { cwd: dir });
  t.is(first.status, 1);
  t.regex(first.stderr, /missing_name/);
  const replay = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '0')], { cwd: dir });
  t.is(replay.status, 1);
  t.is(replay.stderr.replace(/^uwrx: .*\n/m, ''), first.stderr.replace(/^uwrx: .*\n/m, ''));
  const [gcc] = entries(path.join(dir, 'build', '0', '1'));
  const bad = await uwrx(['inspect', 'rebuild', path.join(dir, 'build')], { cwd: dir });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^uwrx: .*\/build: not an attempt directory/);
  t.deepEqual([gcc!.decision, gcc!.status], ['skipped', 1]);
});

// A skipped compile ends where the recorded one's clocks ended, so everything after it
// reads the recorded times: `date` between the steps, and what derives from the clocks
// (mkstemp's names, which an LTO link passes on as arguments).
test('a replay that skips a compile reads the same clocks after it as the recorded run', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-clock-');
  writeFileSync(path.join(dir, 'x.c'), 'int x(int a) { return a * 3; }\n');
  writeFileSync(path.join(dir, 'Makefile'), [
    'all: x.o', '\t@date +%s.%N', '\t@mktemp',
    'x.o: x.c', '\t@date +%s.%N', '\tgcc -O2 -c -o x.o x.c', '\t@date +%s.%N', '',
  ].join('\n'));
  const first = await uwrx(['run', '--', 'make'], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const recorded = entries(path.join(dir, 'build', '0', '0')).find(isDriver)!;
  t.is(recorded.clock?.length, 3, 'the index keeps where the compile\'s clocks ended');
  const replay = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '0')], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  t.deepEqual(entries(path.join(dir, 'build', '0', '1')).filter(isDriver).map((e) => e.decision), ['skipped']);
  // three times and a temporary file's name, each as the recorded run printed it
  const printed = (out: string) => out.split('\n').filter((l) => /^\d+\.\d{9}$|^\/tmp\/tmp\./.test(l));
  t.is(printed(first.stdout).length, 4, first.stdout);
  t.deepEqual(printed(replay.stdout), printed(first.stdout));
});

test('--skippable and --not-skippable take program names, are recorded, and a bad one is refused', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-opts-');
  for (const bad of ['', 'a/b', '*']) {
    const r = await uwrx(['run', '--skippable', bad, '--', 'true'], { cwd: dir });
    t.is(r.status, 2);
    t.regex(r.stderr, /^uwrx run: --skippable expects a program name/);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  writeFileSync(path.join(dir, 'a.c'), 'int a;\n');
  const r = await uwrx(['run', '--not-skippable', 'gcc', '--skippable', 'true', '--', 'sh', '-c', 'gcc -c a.c && /bin/true'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const options = JSON.parse(readFileSync(path.join(dir, 'build', '0', 'options'), 'utf8'));
  t.deepEqual(options.rebuild, { skippable: ['true'], notSkippable: ['gcc'] });
  const names = entries(path.join(dir, 'build', '0', '0')).map(exeName).sort();
  t.deepEqual(names, ['cc1', 'true', 'x86_64-linux-gnu-as']);
});

test('a listed program that is the whole run and ends at once is in the index as it started', async (t) => {
  if (toolsMissing(t)) return;
  // its exec runs before its question goes to Node: the run must not end without it
  for (let i = 0; i < 3; i++) {
    const dir = scratchDir('uwrx-rebuild-last-');
    const r = await uwrx(['run', '--', 'ar', '--version'], { cwd: dir, env: { ...process.env, UWRX_TEST_MARK: `run ${i}` } });
    t.is(r.status, 0, r.stderr);
    const started = entries(path.join(dir, 'build', '0', '0'));
    t.deepEqual(started.map((e) => [exeName(e), e.argv, e.cwd, e.decision]), [['x86_64-linux-gnu-ar', ['ar', '--version'], dir, 'ran']]);
    t.true(started[0]!.env.includes(`UWRX_TEST_MARK=run ${i}`));
  }
});

test('a listed program that reads /dev/urandom, /dev/zero or a fifo does not stop the run from ending', async (t) => {
  if (toolsMissing(t)) return;
  const dir = scratchDir('uwrx-rebuild-devices-');
  // gcc -flto reads /dev/urandom for its seed; reading such an input to hash it would never end
  const script = 'head -c 64 /dev/urandom >/dev/null && head -c 64 /dev/zero >/dev/null && mkfifo f && (echo hi >f &) && head -c 3 f >/dev/null';
  const r = await uwrx(['run', '--skippable', 'head', '--', 'sh', '-c', script], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const heads = entries(path.join(dir, 'build', '0', '0')).filter((e) => exeName(e) === 'head');
  t.is(heads.length, 3);
  const [urandom, zero, fifo] = heads.sort((a, b) => a.pid - b.pid);
  t.is(urandom!.unsafe, undefined);
  t.deepEqual(urandom!.inputs.filter(([, p]) => p === '/dev/urandom').map(([op, , v]) => `${op} ${v}`), [`read char-device ${statSync('/dev/urandom').rdev}`]);
  t.deepEqual(zero!.inputs.filter(([, p]) => p === '/dev/zero').map(([op, , v]) => `${op} ${v}`), [`read char-device ${statSync('/dev/zero').rdev}`]);
  t.regex(fifo!.unsafe ?? '', /\/f\b/);
  // unchanged devices: the replay skips both
  const replay = await uwrx(['run', '--replay', path.join(dir, 'build', '0', '0')], { cwd: dir });
  t.is(replay.status, 0, replay.stderr);
  const replayed = entries(path.join(dir, 'build', '0', '1')).filter((e) => exeName(e) === 'head').sort((a, b) => a.pid - b.pid);
  t.deepEqual(replayed.map((e) => e.decision), ['skipped', 'skipped', 'ran']);
});
