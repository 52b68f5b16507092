// Times of files under uwrx (docs/record.md, "Timestamps in stat results"): the virtual
// time of the change for what an attempt changes, so make sees the order of changes
// inside one run; times a program sets itself are kept; a parent's files keep their times
// along a chain of steps; real files keep their own; the same on --replay.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { ensureCommands } from './helpers/packages.js';

async function runOk(cwd: string, args: string[]): Promise<string> {
  const r = await uwrx(['run', '-q', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return r.stdout;
}

function scratch(t: { teardown(fn: () => void): void }): string {
  const cwd = scratchDir('uwrx-filetimes-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  return cwd;
}

test.serial('make; edit a source; make, in one run: the second make rebuilds', async (t) => {
  ensureCommands({ make: 'make', cc: 'gcc' });
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'Makefile'), 'a.o: a.c\n\tcc -c a.c -o a.o\n');
  const script = "echo 'int a;' > a.c; make; echo 'int x;' >> a.c; make; make";
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  t.deepEqual(out.trim().split('\n'), ['cc -c a.c -o a.o', 'cc -c a.c -o a.o', "make: 'a.o' is up to date."]);
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});

test.serial('explicit times are kept; other changes read the virtual time of the change, the same on --replay', async (t) => {
  const cwd = scratch(t);
  const script = [
    'touch -d 2030-01-01T00:00:00Z f; stat -c %Y f',
    'touch g; sleep 0.2; touch h; stat -c %.9Y g h',
    'mv g k; stat -c %.9Y k',
    'touch -m -d @1000000000.5 f; stat -c %.9Y f',
  ].join('; ');
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  const [f, g, h, k, f2] = out.trim().split('\n');
  t.is(f, '1893456000');
  t.true(Number(h) - Number(g) >= 0.2, `h (${h}) is 0.2 s of virtual time after g (${g})`);
  t.is(k, g, 'a rename keeps the time');
  t.is(f2, '1000000000.500000000');
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});

test.serial('a directory shows the time of the last entry made, removed or renamed in it, as natively', async (t) => {
  const cwd = scratch(t);
  const script = [
    'mkdir d; : > d/f; stat -c %.9Y d d/f',
    'touch d/f; stat -c %.9Y d', // a file's own change leaves its directory alone
    'rm d/f; stat -c %.9Y d',
    ': > d/g; mv d/g d/h; stat -c %.9Y d d/h',
  ].join('; ');
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  const [made, f, touched, removed, renamed, h] = out.trim().split('\n').map(Number);
  t.is(made, f, 'a new entry: the directory shows the time the entry was made');
  t.is(touched, made);
  t.true(removed! > made!, `a removal moves the directory on (${made} -> ${removed})`);
  t.true(renamed! > removed!, `a rename moves the directory on (${removed} -> ${renamed})`);
  t.true(renamed! > h!, 'the renamed file keeps its own time');
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});

test.serial('times that cp -a sets are kept, on directories too; a link or an extended attribute changes no time', async (t) => {
  const cwd = scratch(t);
  mkdirSync(path.join(cwd, 'src', 'd'), { recursive: true });
  writeFileSync(path.join(cwd, 'src', 'd', 'f'), 'text\n');
  linkSync(path.join(cwd, 'src', 'd', 'f'), path.join(cwd, 'src', 'd', 'hard'));
  for (const p of ['src/d/f', 'src/d', 'src']) utimesSync(path.join(cwd, p), OLD, OLD);
  // cp -a writes each file, sets its times, then its ACL (an extended attribute), links
  // the second name, and sets each directory's times after filling it
  const script = [
    'cp -a src copy; stat -c "%n %Y" copy copy/d copy/d/f copy/d/hard',
    'mkdir e; touch -d 2020-01-01T00:00:00Z e; stat -c %Y e; touch e/x; stat -c %Y e',
  ].join('; ');
  const out = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', script]);
  const lines = out.trim().split('\n');
  const old = String(OLD.getTime() / 1000);
  t.deepEqual(lines.slice(0, 5), [`copy ${old}`, `copy/d ${old}`, `copy/d/f ${old}`, `copy/d/hard ${old}`, old]);
  t.not(lines[5], old, 'a new entry moves the directory on, as natively');
  t.is(await runOk(cwd, ['--replay', 'build/0/0']), out);
});

test.serial('directories that hold the record show their own times until the command adds an entry, in process and notified', async (t) => {
  // uwrx makes the working directory and its parents in an upper layer to hide ./build
  // there; natively they show the host's times, and so they do here
  for (const fastPath of ['--fast-path', '--no-fast-path']) {
    const cwd = path.join(scratch(t), 'project');
    mkdirSync(path.join(cwd, 'build'), { recursive: true });
    for (const p of [cwd, path.dirname(cwd)]) utimesSync(p, OLD, OLD);
    const out = await runOk(cwd, [fastPath, '--step', '0', '--', 'sh', '-c', 'stat -c %Y . ..; touch new; stat -c %Y .']);
    const old = String(OLD.getTime() / 1000);
    const [dot, dotdot, after] = out.trim().split('\n');
    t.deepEqual([dot, dotdot], [old, old], fastPath);
    t.not(after, old, `${fastPath}: a new entry moves the directory on, as natively`);
    const status = JSON.parse(readFileSync(path.join(cwd, 'build/0/0/status'), 'utf8')) as { notifications: Record<string, number> };
    // in process: the two stats before the change; the one after it is notified
    if (fastPath === '--fast-path') t.is(status.notifications['statx'], 1, JSON.stringify(status.notifications));
  }
});

test.serial('a directory that got new entries shows the next step the time it showed at the end of its own', async (t) => {
  const cwd = path.join(scratch(t), 'project');
  mkdirSync(path.join(cwd, 'd'), { recursive: true });
  for (const p of ['d', '.']) utimesSync(path.join(cwd, p), OLD, OLD);
  // d and the working directory (a parent of ./build) get entries; e is made
  const first = await runOk(cwd, ['--step', '0', '--', 'sh', '-c', 'touch d/new; mkdir -p e/f; stat -c "%n %.9Y" d e e/f . ..']);
  const next = await runOk(cwd, ['--step', '1', '--parent', 'build/0/0', '--', 'stat', '-c', '%n %.9Y', 'd', 'e', 'e/f', '.', '..']);
  t.deepEqual(next.trim().split('\n'), first.trim().split('\n'));
  const old = String(OLD.getTime() / 1000);
  t.false(first.includes(` ${old}.`), 'the changed directories moved on');
});

test.serial('the directories uwrx makes keep their times to the nanosecond, in a step and the next', async (t) => {
  // a time Node's utimes sets 1.03 us early: its double of seconds, cut to the microsecond
  const exact = '1577836800.036819033';
  const cwd = path.join(scratch(t), 'project');
  mkdirSync(path.join(cwd, 'build'), { recursive: true });
  spawnSync('touch', ['-m', '-d', `@${exact}`, cwd, path.dirname(cwd)]);
  // the working directory holds ./build (hidden by a whiteout, removed when the run ends)
  const show = ['stat', '-c', '%n %.9Y', '.', '..'];
  const first = await runOk(cwd, ['--step', '0', '--', ...show]);
  t.deepEqual(first.trim().split('\n'), [`. ${exact}`, `.. ${exact}`]);
  t.is(await runOk(cwd, ['--step', '1', '--parent', 'build/0/0', '--', ...show]), first);
});

// Along a chain of steps: a parent's files keep the times they showed in the parent, and
// a source edited on disk after a step is newer than everything that step built.

const OLD = new Date('2020-01-01T00:00:00Z');

function project(cwd: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(path.join(cwd, name), text);
    utimesSync(path.join(cwd, name), OLD, OLD); // a checkout older than any run
  }
}

/** Commands a step ran (make and ninja echo them), ninja's progress prefix removed. */
function commands(out: string): string[] {
  return out.split('\n').filter((l) => /\bcc /.test(l)).map((l) => l.replace(/^\[\d+\/\d+\] /, ''));
}

test.serial('make along steps: the next step finds the build up to date; a source edited on disk in between is rebuilt alone', async (t) => {
  ensureCommands({ make: 'make', cc: 'gcc' });
  const cwd = scratch(t);
  project(cwd, {
    'main.c': 'int f(void);\nint g(void);\nint main(void) { return f() + g(); }\n',
    'f.c': 'int f(void) { return 0; }\n',
    'g.c': 'int g(void) { return 0; }\n',
    Makefile: 'app: main.o f.o g.o\n\tcc -o app $^\n%.o: %.c\n\tcc -c -o $@ $<\n',
  });
  t.is(commands(await runOk(cwd, ['--step', '0', '--', 'make'])).length, 4);
  t.deepEqual(commands(await runOk(cwd, ['--step', '10', '--', 'make'])), []);
  writeFileSync(path.join(cwd, 'f.c'), 'int f(void) { return 1; }\n'); // now: newer than T0 of step 10
  const rebuilt = await runOk(cwd, ['--step', '20', '--', 'make']);
  t.deepEqual(commands(rebuilt), ['cc -c -o f.o f.c', 'cc -o app main.o f.o g.o']);
  t.deepEqual(commands(await runOk(cwd, ['--step', '30', '--', 'make'])), [], 'and the step after that has nothing to do');
  // the times a step shows are the ones it recorded: a replay of step 20 rebuilds the same
  t.is(await runOk(cwd, ['--replay', 'build/20/0']), rebuilt);
});

const NINJA_FILE = `rule cc
  command = cc -MD -MF $out.d -c $in -o $out
  depfile = $out.d
  deps = gcc
rule link
  command = cc $in -o $out
build main.o: cc main.c
build g.o: cc g.c
build app: link main.o g.o
`;

test.serial('ninja along steps: no work at the next step (its deps log agrees with the times); an edited header rebuilds its users', async (t) => {
  ensureCommands({ ninja: 'ninja-build', cc: 'gcc' });
  const cwd = scratch(t);
  project(cwd, {
    'a.h': '#define A 0\n',
    'main.c': '#include "a.h"\nint g(void);\nint main(void) { return A + g(); }\n',
    'g.c': 'int g(void) { return 0; }\n',
    'build.ninja': NINJA_FILE,
  });
  t.is(commands(await runOk(cwd, ['--step', '0', '--', 'ninja'])).length, 3);
  const next = await runOk(cwd, ['--step', '10', '--', 'ninja', '-d', 'explain']);
  t.regex(next, /no work to do/);
  t.notRegex(next, /out of date|dirty/, next);
  writeFileSync(path.join(cwd, 'a.h'), '#define A 0\n#define B 1\n');
  const rebuilt = await runOk(cwd, ['--step', '20', '--', 'ninja']);
  t.deepEqual(commands(rebuilt), ['cc -MD -MF main.o.d -c main.c -o main.o', 'cc main.o g.o -o app']);
  t.regex(await runOk(cwd, ['--step', '30', '--', 'ninja']), /no work to do/);
});

test.serial("python's bytecode caches of the standard library stay valid: none stale, none written", async (t) => {
  const cwd = scratch(t);
  const argv = ['python3', '-v', '-c', 'import json, multiprocessing, email, http.client'];
  const stale = (text: string) => text.split('\n').filter((l) => /bytecode is stale|bad mtime/.test(l)).length;
  const native = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  t.regex(native.stderr, /code object from .*json/, 'the caches exist natively');
  const r = await uwrx(['run', '-q', '--step', '0', '--', ...argv], { cwd });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /code object from .*json/, 'and are used inside');
  t.true(stale(r.stderr) <= stale(native.stderr), `${stale(r.stderr)} stale caches inside, ${stale(native.stderr)} natively`);
  const written = readFileSync(path.join(cwd, 'build/0/0/files.meta'), 'utf8').split('\n').filter((l) => /\.pyc\t/.test(l));
  t.deepEqual(written, [], 'no bytecode written into the record');
});

// Each stat twice: the first of a changed file is notified, and publishes the file's time
// for the recorders; the second is answered in process and must show the same.
const STAT_PROBE = `
import os, sys
def show(tag, p=None, fd=None):
    for _ in range(2):
        st = os.fstat(fd) if fd is not None else os.stat(p, follow_symlinks=False)
        print(tag, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
def write(p, text):
    with open(p, 'w') as f: f.write(text)
write('x', 'one'); show('new', 'x')
write('x', 'two'); show('rewritten', 'x')
os.utime('x', ns=(1000000000123, 2000000000456)); show('explicit', 'x')
with open('x', 'a') as f: f.write('more')
show('appended', 'x')
os.mkdir('d'); write('d/f', 'f'); show('dir', 'd'); show('in dir', 'd/f')
os.rename('d', 'e'); show('dir renamed', 'e'); show('moved with its dir', 'e/f')
os.link('e/f', 'e/g'); show('two names', 'e/f'); show('two names', 'e/g')
os.unlink('e/g'); show('one name again', 'e/f'); show('dir after unlink', 'e')
write('y', 'y'); write('z', 'z'); show('before', 'y'); os.rename('z', 'y'); show('replaced', 'y')
os.symlink('y', 'l'); show('symlink', 'l')
fd = os.open('e/f', os.O_RDONLY); show('fd', fd=fd); os.close(fd)
os.mkdir('e/sub'); show('dir grew', 'e'); os.rmdir('e/sub'); show('dir shrank', 'e')
os.symlink('e', 'le'); show('through a link', 'le/f'); os.rename('le', 'le2'); show('link renamed', 'le2/f')
os.makedirs('p/q'); write('p/q/r', 'r'); show('deep', 'p/q/r'); os.rename('p', 'p2'); show('deep moved', 'p2/q/r')
write('w', 'w'); show('file to move', 'w'); os.rename('w', 'v'); show('file renamed', 'v')
write('w2', 'w'); show('file to fail', 'w2')
try: os.rename('w2', 'nodir/w2')
except OSError: pass
show('rename failed', 'w2')
for _ in range(50): os.stat('x')
`;

test.serial('stats of changed files answered in process show what the notification path shows; a renamed directory keeps its files\' times', async (t) => {
  const cwd = scratch(t);
  writeFileSync(path.join(cwd, 'probe.py'), STAT_PROBE);
  // Debian's python3 itself, not a version manager's shim in front of it (its shell
  // scripts make stats of their own)
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const script = `${python} probe.py; stat -c '%n %.9X %.9Y %.9Z %.9W %h' x x e e e/f e/f y y l l`;
  const fast = await runOk(cwd, ['--fast-path', '--step', '0', '--', 'sh', '-c', script]);
  // the same times on the notification path alone (a replay keeps the virtual clock)
  t.is(await runOk(cwd, ['--no-fast-path', '--replay', 'build/0/0', '--', 'sh', '-c', script]), fast);
  const lines = fast.trim().split('\n');
  const shown = (tag: string) => lines.filter((l) => l.startsWith(tag + ' ')).map((l) => l.slice(tag.length + 1));
  for (const tag of ['new', 'rewritten', 'explicit', 'appended', 'in dir', 'moved with its dir', 'fd', 'dir grew', 'link renamed', 'deep moved', 'file renamed', 'rename failed']) {
    const [first, second] = shown(tag);
    t.is(first, second, tag);
  }
  t.not(shown('new')[0], shown('rewritten')[0], 'a write moves the file on');
  t.regex(shown('explicit')[0]!, /^1000000000123 2000000000456 /, 'times a program set stay');
  t.is(shown('moved with its dir')[0], shown('in dir')[0], "a file keeps its time when its directory is renamed");
  t.is(shown('deep moved')[0], shown('deep')[0], 'and when a directory above it is');
  t.is(shown('link renamed')[0], shown('through a link')[0]);
  t.is(shown('file renamed')[0], shown('file to move')[0], 'a renamed file keeps its time');
  t.is(shown('rename failed')[0], shown('file to fail')[0], 'and so does one whose rename failed');
  const status = JSON.parse(readFileSync(path.join(cwd, 'build/0/0/status'), 'utf8')) as { notifications: Record<string, number> };
  // 50 stats of an unchanged x at the end, and every second stat above: in process
  const notified = (status.notifications['newfstatat'] ?? 0) + (status.notifications['statx'] ?? 0);
  t.true(notified < 40, `${notified} stats notified: ${JSON.stringify(status.notifications)}`);
});

test.serial('a birth time the filesystem does not know stays zero, in process and notified; a known one shows the time shown', async (t) => {
  // ext4 reports a zero birth time for files made without one (the machine's image): cargo
  // hashes the compiler's birth time into .rustc_info.json's fingerprint, which then
  // differed from native. A file made now has a birth time: it follows the shown time.
  const candidates = ['/usr/bin/env', '/bin/sh', '/usr/bin/make', '/etc/hostname', '/usr/lib/os-release'].filter(existsSync);
  const native = spawnSync('stat', ['-c', '%W', ...candidates], { encoding: 'utf8' }).stdout.trim().split('\n');
  const unknown = candidates.filter((_, i) => native[i] === '0');
  if (unknown.length === 0) t.log('no file here without a birth time: only the known case is checked');
  for (const fastPath of ['--fast-path', '--no-fast-path']) {
    const cwd = scratch(t);
    writeFileSync(path.join(cwd, 'made'), 'x');
    const out = await runOk(cwd, [fastPath, '--', 'sh', '-c', `stat -c '%W' ${unknown.join(' ')}; echo new > new; stat -c '%W %Y' made new`]);
    const lines = out.trim().split('\n');
    t.deepEqual(lines.slice(0, unknown.length), unknown.map(() => '0'), fastPath);
    for (const line of lines.slice(unknown.length)) {
      const [birth, modified] = line.split(' ');
      t.not(birth, '0', `${fastPath}: ${line}`);
      t.is(birth, modified, `${fastPath}: a known birth time shows the time shown`);
    }
  }
});
