// The record holds what happened, and only that: calls that fail leave no line, files
// that appear without an open (sockets, copy-ups by xattrs and links) have one, and
// `uwrx check` passes on real workloads. Renames the overlays would refuse behave as on
// one filesystem. The real filesystem stays untouched throughout.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseFilesMeta } from '../src/record/files-meta.js';
import { resolveFile } from '../src/record/resolve.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function project(): string {
  const dir = scratchDir('uwrx-fidelity-');
  scratch.push(dir);
  return dir;
}

interface Attempt {
  cwd: string;
  dir: string;
  stdout: string;
  stderr: string;
}

async function run(cwd: string, script: string, step = '0'): Promise<Attempt> {
  const r = await uwrx(['run', '-q', '--step', step, '--', 'sh', '-c', script], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
  return { cwd, dir: path.join(cwd, 'build', step, '0'), stdout: r.stdout, stderr: r.stderr };
}

/** files.meta lines of paths below `under`, as "<relative path> <operation>". */
function ops(a: Attempt, under = a.cwd): string[] {
  return parseFilesMeta(readFileSync(path.join(a.dir, 'files.meta'), 'utf8'))
    .filter((e) => e.path.toString().startsWith(under + '/'))
    .map((e) => `${path.relative(under, e.path.toString())} ${e.operation}`);
}

async function checkOk(t: { is: (a: unknown, b: unknown, m?: string) => void }, a: Attempt): Promise<void> {
  const r = await uwrx(['check', a.dir], { cwd: a.cwd });
  t.is(r.status, 0, r.stdout + r.stderr);
}

const varTmp = '/var/tmp';
// one real filesystem under both: natively a rename between them works
const oneFilesystem = existsSync(varTmp) && statSync(scratchDirParent()).dev === statSync(varTmp).dev;
function scratchDirParent(): string {
  const d = scratchDir('uwrx-fidelity-probe-');
  rmSync(d, { recursive: true });
  return path.dirname(d);
}

test('calls that fail leave no line in files.meta', async (t) => {
  const cwd = project();
  mkdirSync(path.join(cwd, 'full'));
  writeFileSync(path.join(cwd, 'full/x'), 'x');
  writeFileSync(path.join(cwd, 'real'), 'real\n');
  const script = [
    'echo x > nodir/f',
    'mkdir nodir/sub',
    'mkdir ro && chmod 555 ro',
    // without the capabilities that override permissions, as an ordinary user
    'setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search,-fowner,-chown sh -c "echo y > ro/f; mkdir ro/d; chown 1 real"',
    'rmdir full',
    `python3 -c 'import os
try: os.unlink("ro")
except OSError: pass
try: os.rename("nothere", "dst")
except OSError: pass
try: os.link("real", "nodir/link")
except OSError: pass
try: os.link("real", "/var/tmp/uwrx-test-never-linked")
except OSError as e: print(e.errno == 18)'`,
    'true',
  ].join('; ');
  const a = await run(cwd, script);
  t.regex(a.stderr, /nodir\/f: Directory nonexistent/);
  t.regex(a.stderr, /ro\/f: Permission denied/);
  t.is(a.stdout, 'True\n', 'a hard link cannot span two top-level directories (EXDEV)');
  t.deepEqual(ops(a), ['ro mkdir', 'ro chmod']);
  t.deepEqual(ops(a, varTmp), []);
  await checkOk(t, a);
  t.is(readFileSync(path.join(cwd, 'real'), 'utf8'), 'real\n');
  t.true(existsSync(path.join(cwd, 'full/x')));
});

test('a renamed directory, a unix socket, xattrs and hard links of real files are all in files.meta', async (t) => {
  const cwd = project();
  writeFileSync(path.join(cwd, 'real'), 'real\n');
  writeFileSync(path.join(cwd, 'real2'), 'real2\n');
  const script = [
    'mkdir n1 && touch n1/x && mv n1 n2',
    `python3 -c 'import os, socket
socket.socket(socket.AF_UNIX).bind("sock")
os.setxattr("real", "user.test", b"1")'`,
    'ln real2 hl',
  ].join('; ');
  const a = await run(cwd, script);
  t.deepEqual(ops(a), [
    'n1 mkdir', 'n1/x create', 'n1/x write', 'n1 rename_from', 'n2 rename_to',
    'sock create', 'real write', 'hl create', 'real2 write',
  ]);
  await checkOk(t, a);
  t.true(statSync(path.join(a.dir, 'files', cwd, 'sock')).isSocket());
  t.is(readFileSync(path.join(a.dir, 'files', cwd, 'n2/x'), 'utf8'), '');
  t.false(existsSync(path.join(cwd, 'sock')));
  t.false(existsSync(path.join(cwd, 'hl')));
});

(oneFilesystem ? test : test.skip)('rename between top-level directories and of a real directory, as on one filesystem', async (t) => {
  const cwd = project();
  writeFileSync(path.join(cwd, 'real'), 'real\n');
  mkdirSync(path.join(cwd, 'realdir/sub'), { recursive: true });
  writeFileSync(path.join(cwd, 'realdir/sub/f'), 'f\n');
  const away = path.join(varTmp, `uwrx-test-${randomBytes(6).toString('hex')}`);
  const script = `python3 -c 'import os, sys
os.rename("real", sys.argv[1])
os.mkdir("made")
os.rename("made", sys.argv[1] + ".dir")
os.rename("realdir", "moved")
print(open(sys.argv[1]).read(), end="")
print(open("moved/sub/f").read(), end="")
print(os.path.exists("real"), os.path.exists("realdir"), os.path.isdir(sys.argv[1] + ".dir"))' ${away}`;
  const a = await run(cwd, script);
  t.is(a.stdout, 'real\nf\nFalse False True\n');
  t.deepEqual(ops(a), ['real rename_from', 'made mkdir', 'made rename_from', 'realdir rename_from', 'moved rename_to']);
  t.deepEqual(ops(a, varTmp), [`${path.basename(away)} rename_to`, `${path.basename(away)}.dir rename_to`]);
  await checkOk(t, a);
  // the record has the moved files; the real ones are where they were
  const seen = (p: string) => {
    const r = resolveFile(a.dir, p);
    return r.kind === 'found' ? readFileSync(r.file, 'utf8') : null;
  };
  t.is(seen(away), 'real\n');
  t.is(seen(path.join(cwd, 'moved/sub/f')), 'f\n');
  t.is(seen(path.join(cwd, 'real')), null);
  t.is(seen(path.join(cwd, 'realdir/sub/f')), null);
  t.is(readFileSync(path.join(cwd, 'real'), 'utf8'), 'real\n');
  t.is(readFileSync(path.join(cwd, 'realdir/sub/f'), 'utf8'), 'f\n');
  t.false(existsSync(away));
  // the next step sees the moves
  const next = await run(cwd, `cat ${away} moved/sub/f; ls realdir 2>&1 | wc -l`, '10');
  t.is(next.stdout, 'real\nf\n1\n');
});

test('git: init, add, commit, branch, checkout, merge, gc, clone; check passes on the record', async (t) => {
  const missing = ensureCommands({ git: 'git' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = project();
  const script = [
    'git init -q r && cd r && git config user.email u@example.com && git config user.name u',
    'for i in 1 2 3; do echo $i > f$i; mkdir -p d$i/e; echo $i > d$i/e/g; done',
    'git add . && git commit -qm one && git branch b && git checkout -q b',
    'echo b >> f1 && git rm -q -r d2 && git commit -qam two',
    'git checkout -q -',
    'git merge -q b',
    'git gc -q && git repack -adq',
    'cd .. && git clone -q r r2 && git clone -q --no-local r r3',
  ].join(' && ');
  const a = await run(cwd, script);
  await checkOk(t, a);
  const next = await run(cwd, 'cd r3 && git fsck 2>/dev/null && git log --format=%s && ls ../r', '10');
  t.is(next.stdout, 'two\none\nd1\nd3\nf1\nf2\nf3\n');
  await checkOk(t, { ...next, dir: path.join(cwd, 'build/10/0') });
});

test('cmake and ninja: configure, build, install; check passes on the record', async (t) => {
  const missing = ensureCommands({ cmake: 'cmake', ninja: 'ninja-build', cc: 'gcc' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = project();
  mkdirSync(path.join(cwd, 'src'));
  writeFileSync(
    path.join(cwd, 'src/CMakeLists.txt'),
    'cmake_minimum_required(VERSION 3.10)\nproject(t C)\nadd_library(f STATIC f.c)\nadd_executable(app main.c)\n' +
      'target_link_libraries(app f)\ninstall(TARGETS app DESTINATION bin)\n',
  );
  writeFileSync(path.join(cwd, 'src/f.c'), 'int f(void) { return 7; }\n');
  writeFileSync(path.join(cwd, 'src/main.c'), 'int f(void);\nint main(void) { return f() == 7 ? 0 : 1; }\n');
  const a = await run(cwd, 'cmake -S src -B out -G Ninja > /dev/null && ninja -C out > /dev/null && ./out/app && cmake --install out --prefix inst > /dev/null');
  await checkOk(t, a);
  t.true(existsSync(path.join(a.dir, 'files', cwd, 'inst/bin/app')));
  t.false(existsSync(path.join(cwd, 'out')));
});

test('a hard link to a real file has its inode number; git clones a real local repository', async (t) => {
  const missing = ensureCommands({ git: 'git', tar: 'tar' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = project();
  writeFileSync(path.join(cwd, 'real'), 'real\n');
  mkdirSync(path.join(cwd, 'src'));
  // the repository is real: made outside uwrx
  for (const args of [['init', '-q'], ['-c', 'user.email=u@example.com', '-c', 'user.name=u', 'commit', '-q', '--allow-empty', '-m', 'one']]) {
    execFileSync('git', args, { cwd: path.join(cwd, 'src') });
  }
  const a = await run(cwd, 'ln real hl && stat -c %i real hl && find . -samefile real | sort && tar cf t.tar real hl && tar tvf t.tar | cut -c1 && git clone -q src dst && git -C dst log --format=%s');
  const [ino1, ino2, ...rest] = a.stdout.trim().split('\n');
  t.is(ino1, ino2);
  t.deepEqual(rest, ['./hl', './real', '-', 'h', 'one']);
  await checkOk(t, a);
  t.false(existsSync(path.join(cwd, 'hl')));
  t.false(existsSync(path.join(cwd, 'dst')));
});

test('everyday tools (cp -a, tar, sed -i, install, ln -sfn, chmod -R, mv, venv): check passes, the next step sees the result', async (t) => {
  const cwd = project();
  mkdirSync(path.join(cwd, 'srcdir/a/b'), { recursive: true });
  writeFileSync(path.join(cwd, 'srcdir/a/b/f'), 'x\n');
  writeFileSync(path.join(cwd, 'srcdir/g'), 'y\n');
  const script = [
    'python3 -m venv venv > /dev/null',
    'cp -a srcdir copy',
    'tar cf t.tar srcdir && mkdir ex && tar xf t.tar -C ex',
    'sed -i s/x/z/ srcdir/a/b/f',
    'install -D -m 755 srcdir/g inst/bin/g',
    'ln -sf g srcdir/lnk && ln -sfn a srcdir/lnk',
    'touch srcdir/a',
    'chmod -R go-w copy',
    'rm -rf ex/srcdir/a',
    'mv copy/a copy/a2',
    'mkfifo ff && rm ff',
  ].join(' && ');
  const a = await run(cwd, script);
  await checkOk(t, a);
  const next = await run(cwd, 'ls copy ex/srcdir; cat copy/a2/b/f srcdir/a/b/f; readlink srcdir/lnk; test -x venv/bin/python && echo venv', '10');
  t.is(next.stdout, 'copy:\na2\ng\n\nex/srcdir:\ng\nx\nz\na\nvenv\n');
  t.is(readFileSync(path.join(cwd, 'srcdir/a/b/f'), 'utf8'), 'x\n');
  t.false(existsSync(path.join(cwd, 'copy')));
});
