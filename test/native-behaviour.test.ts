// `uwrx run --` in front of a command behaves as the command alone: real programs,
// as a user runs them, and the real filesystem left untouched.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { isRoot, removeWorkDirs, runUwrx, runners, workDir } from './helpers/sandbox-users.js';
import { afterRemovals, scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

test.after.always(removeWorkDirs);

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = scratchDir('uwrx-native-');
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the command is looked up in the caller\'s PATH', async (t) => {
  const dir = await scratch(t);
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  // a command only this PATH has, and one that shadows a system command
  await fs.writeFile(path.join(bin, 'onlyhere'), '#!/bin/sh\necho only here "$@"\n', { mode: 0o755 });
  await fs.writeFile(path.join(bin, 'true'), '#!/bin/sh\necho the first true in PATH\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const only = await uwrx(['run', '--quiet', '--', 'onlyhere', 'x'], { cwd: dir, env });
  t.is(only.status, 0, only.stderr);
  t.is(only.stdout, 'only here x\n');
  const shadow = await uwrx(['run', '--quiet', '--', 'true'], { cwd: dir, env });
  t.is(shadow.stdout, 'the first true in PATH\n');
});

test('a missing command fails as in a shell: exit 127, one line', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--quiet', '--', 'no-such-command-here'], { cwd: dir });
  t.is(out.status, 127);
  t.is(out.stdout, '');
  t.is(out.stderr, 'uwrx: no-such-command-here: No such file or directory\n');
  t.false(existsSync(path.join(dir, 'no-such-command-here')));
});

for (const r of runners) {
  test.serial(`${r.name}: the record is absent inside and the command makes its own ./build`, async (t) => {
    const dir = await workDir(r);
    const build = path.join(dir, 'build');
    // the record exists before the run (an earlier step) and holds a file the command must not reach
    const first = await runUwrx(r, dir, ['true']);
    t.is(first.code, 0, first.stderr);
    const script = [
      'test -e build && echo record visible',
      `cat ${first.attemptDir}/seed.txt 2>/dev/null && echo record readable`,
      'mkdir build && echo made > build/out && cat build/out',
      // the whole tree can be walked; nothing of the record shows up
      `find / -path /proc -prune -o -path '${build}/*' -print 2>/dev/null | grep -v '^${build}/out$'`,
      'echo walked',
    ].join('; ');
    const out = await runUwrx(r, dir, ['sh', '-c', script]);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, 'made\nwalked\n');
    // recorded like any other write; the real ./build holds only the record
    t.is(readFileSync(path.join(out.attemptDir, 'files', build, 'out'), 'utf8'), 'made\n');
    t.false(existsSync(path.join(build, 'out')));
    t.deepEqual(readdirSync(build).filter((n) => !n.startsWith('.')).sort(), ['0', '10']);
    // nothing of uwrx's own hiding is left in the record
    t.false(existsSync(path.join(first.attemptDir, 'files', build)));
    // the next step sees the command's ./build, still not the record
    const next = await runUwrx(r, dir, ['sh', '-c', 'cat build/out; ls build']);
    t.is(next.code, 0, next.stderr);
    t.is(next.stdout, 'made\nout\n');
  });
}

test.serial('cmake -B build works where ./build holds the record', async (t) => {
  const missing = ensureCommands({ cmake: 'cmake', gcc: 'gcc', make: 'make' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const r = runners[0]!;
  const dir = await workDir(r);
  await fs.writeFile(path.join(dir, 'CMakeLists.txt'), 'cmake_minimum_required(VERSION 3.10)\nproject(hello C)\nadd_executable(hello hello.c)\n');
  await fs.writeFile(path.join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello from cmake"); return 0; }\n');
  await fs.mkdir(path.join(dir, 'build'));
  const out = await runUwrx(r, dir, ['sh', '-c', 'cmake -S . -B build >/dev/null && cmake --build build >/dev/null && ./build/hello']);
  t.is(out.code, 0, out.stderr);
  t.is(out.stdout, 'hello from cmake\n');
  t.true(existsSync(path.join(out.attemptDir, 'files', dir, 'build', 'CMakeCache.txt')));
  t.false(existsSync(path.join(dir, 'build', 'CMakeCache.txt')));
});

test('processes left running after the command ended are terminated after --linger', async (t) => {
  t.timeout(60_000);
  const dir = await scratch(t);
  const out = await uwrx(['run', '--linger', '0.5', '--', 'sh', '-c', 'sleep 1000 & echo started'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout, 'started\n');
  t.regex(out.stderr, /; terminated 1 process left running after the command ended \(3 sleep\)\n$/);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.true(status.complete);
  t.is(status.status, 0);
  t.deepEqual(status.terminated, { count: 1, processes: [{ pid: 3, name: 'sleep' }] });
});

test('a process that ends within the linger time is waited for, its writes recorded', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--', 'sh', '-c', '(sleep 0.3; echo late > late.txt) & exit 0'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  t.notRegex(out.stderr, /terminated/);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.is(status.terminated, undefined);
  t.is(readFileSync(path.join(dir, 'build', '0', '0', 'files', dir, 'late.txt'), 'utf8'), 'late\n');
});

test('ssh-agent started by the command does not keep the run alive', async (t) => {
  t.timeout(60_000);
  const missing = ensureCommands({ 'ssh-agent': 'openssh-client' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = await scratch(t);
  const out = await uwrx(['run', '--linger', '0.2', '--', 'sh', '-c', 'eval "$(ssh-agent -s)" >/dev/null; test -S "$SSH_AUTH_SOCK" && echo agent up'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout, 'agent up\n');
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.is(status.terminated.count, 1);
  t.is(status.terminated.processes[0].name, 'ssh-agent');
});

test('--linger takes seconds', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--linger', 'soon', '--', 'true'], { cwd: dir });
  t.is(out.status, 2);
  t.is(out.stderr, 'uwrx run: --linger expects seconds (a number >= 0), got "soon"\n');
  t.false(existsSync(path.join(dir, 'build')));
});

test('--tmp on another filesystem than the record: the files are copied into it', async (t) => {
  const dir = await scratch(t);
  const shm = await fs.mkdtemp('/dev/shm/uwrx-tmp-');
  t.teardown(() => fs.rm(shm, { recursive: true, force: true }));
  t.not((await fs.stat(shm)).dev, (await fs.stat(dir)).dev, 'needs /dev/shm on another filesystem');
  const out = await uwrx(['run', '--quiet', '--tmp', shm, '--', 'sh', '-c', 'echo one > a; echo two > a; mkdir d; ln a d/b; rm -f /etc/hostname; echo ok'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout, 'ok\n');
  const files = path.join(dir, 'build', '0', '0', 'files');
  t.is(readFileSync(path.join(files, dir, 'a'), 'utf8'), 'two\n');
  // `ln` counts as a write of a (its link count changed): a's final version is ln's
  // (files-<pid>/, newest first), the one d/b is linked to
  const attempt = path.dirname(files);
  const versions = readdirSync(attempt).filter((n) => /^files-\d+$/.test(n)).sort((x, y) => Number(y.slice(6)) - Number(x.slice(6)));
  const finalA = [...versions.map((n) => path.join(attempt, n, dir, 'a')), path.join(files, dir, 'a')].find((f) => existsSync(f))!;
  t.is((await fs.stat(path.join(files, dir, 'd', 'b'))).ino, (await fs.stat(finalA)).ino, 'hard link kept');
  const whiteout = await fs.lstat(path.join(files, 'etc', 'hostname'));
  t.true(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'deletion kept as a whiteout');
  t.true(JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8')).complete);
  t.deepEqual(await afterRemovals(shm), [], 'the run directory is gone');
  t.true(existsSync('/etc/hostname'));
});

test('--tmp that does not exist is refused and nothing is created', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--tmp', path.join(dir, 'nonexistent', 'dir'), '--', 'true'], { cwd: dir });
  t.is(out.status, 2);
  t.is(out.stderr, `uwrx run: --tmp ${path.join(dir, 'nonexistent', 'dir')}: no such directory\n`);
  t.deepEqual(readdirSync(dir), []);
});

(isRoot ? test.serial : test.skip)('a full filesystem under the trace buffers: no SIGBUS, the record kept and marked incomplete (mounts a tmpfs: root)', async (t) => {
  const dir = await scratch(t);
  // below /dev, which the sandbox never takes from the host: a mount there does not
  // change how other runs build their root meanwhile
  const small = await fs.mkdtemp('/dev/shm/uwrx-full-');
  t.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1536k', 'uwrx-test-full', small]).status, 0);
  t.teardown(async () => {
    spawnSync('umount', [small]);
    await fs.rmdir(small);
  });
  const work = path.join(dir, 'work');
  await fs.mkdir(work);
  // the buffers in the run directory (not on /dev/shm): they are what fills --tmp here
  const env = { ...process.env, UWRX_TRACES_TMPFS: '0' };
  const out = await uwrx(['run', '--tmp', small, '--', 'sh', '-c', 'for i in 1 2 3 4; do seq 1 300000 | cat >/dev/null & done; wait; echo survived'], { cwd: work, env });
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout, 'survived\n');
  t.regex(out.stderr, /\(incomplete: no space left on the filesystem of \/dev\/shm\/uwrx-full-\w+ \(--tmp\): \d+ trace records? (and the trace of \d+ process(es)? )?lost\)\n$/);
  const attempt = path.join(work, 'build', '0', '0');
  const status = JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8'));
  t.false(status.complete);
  t.is(status.status, 0);
  t.regex(status.reason, /^no space left/);
  // what was recorded is kept: the process table and the trace
  t.true(existsSync(path.join(attempt, 'perfetto')));
  t.regex(readFileSync(path.join(attempt, 'procs.tsv'), 'utf8'), /seq\t1\t300000/);
  t.deepEqual(await afterRemovals(small), []);
});

/** Starts `uwrx run -- argv` in `dir` and resolves once its attempt exists. */
async function startRun(dir: string, argv: string[], attempt: string) {
  const child = spawn(process.execPath, [uwrxBin, 'run', '--quiet', '--', ...argv], { cwd: dir, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  while (!existsSync(path.join(dir, 'build', attempt, 'seed.txt'))) await new Promise((r) => setTimeout(r, 50));
  return { child, exited };
}

/** Starts `uwrx run -- sh -c script` in `dir`, keeps its output, and resolves once the
 * script printed "ready". */
async function startUntilReady(dir: string, script: string) {
  const child = spawn(process.execPath, [uwrxBin, 'run', '--', 'sh', '-c', script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  // 'close', not 'exit': the output may still be on its way when the process has exited
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  while (!out.stdout.includes('ready')) await new Promise((r) => setTimeout(r, 50));
  return { child, out, exited };
}

test('the default parent is the latest complete attempt; the summary names it', async (t) => {
  t.timeout(120_000);
  const dir = await scratch(t);
  const first = await uwrx(['run', '--', 'sh', '-c', 'echo first > f'], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  // step 10 is still running while step 20 starts, and is interrupted afterwards
  const running = await startRun(dir, ['sh', '-c', 'echo unfinished > f; sleep 100'], '10/0');
  const during = await uwrx(['run', '--', 'cat', 'f'], { cwd: dir });
  running.child.kill('SIGINT');
  await running.exited;
  t.is(during.stdout, 'first\n');
  t.is(during.stderr.split('\n')[0], 'uwrx run: warning: no complete attempt in build/10 (still running, interrupted or failed): building on build/0/0');
  t.regex(during.stderr, /; parent build\/0\/0; record in build\/20\/0\n$/);
  t.false(JSON.parse(readFileSync(path.join(dir, 'build', '10', '0', 'status'), 'utf8')).complete);
  // the killed attempt is passed over as well
  const after = await uwrx(['run', '--step', '15', '--', 'cat', 'f'], { cwd: dir });
  t.is(after.stdout, 'first\n');
  t.regex(after.stderr, /warning: no complete attempt in build\/10 .*: building on build\/0\/0\n/);
  t.regex(after.stderr, /; parent build\/0\/0; record in build\/15\/0\n$/);
  const next = await uwrx(['run', '--', 'cat', 'f'], { cwd: dir });
  t.is(next.stderr.split('\n').length, 2, 'no warning');
  t.regex(next.stderr, /; parent build\/20\/0; record in build\/30\/0\n$/);
});

test('no complete earlier attempt: a warning, and no parent', async (t) => {
  t.timeout(60_000);
  const dir = await scratch(t);
  const running = await startRun(dir, ['sh', '-c', 'echo unfinished > f; sleep 100'], '0/0');
  running.child.kill('SIGINT');
  await running.exited;
  const out = await uwrx(['run', '--', 'sh', '-c', 'cat f 2>/dev/null || echo none'], { cwd: dir });
  t.is(out.stdout, 'none\n');
  t.is(out.stderr.split('\n')[0], 'uwrx run: warning: no complete attempt in build/0 (still running, interrupted or failed): running without a parent');
  t.regex(out.stderr, /; record in build\/10\/0\n$/);
  t.false(existsSync(path.join(dir, 'build', '10', '0', 'parent')));
});

test('uwrx inside uwrx fails with one clear line (the kernel allows one seccomp listener)', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--', process.execPath, uwrxBin, 'run', '--', 'echo', 'hi'], { cwd: dir });
  t.is(out.status, 2);
  t.is(out.stdout, '');
  const [inner, summary, ...rest] = out.stderr.split('\n');
  t.is(inner, 'uwrx run: cannot run inside another uwrx run (or under another seccomp notification supervisor): the kernel allows one seccomp listener per process tree');
  t.regex(summary!, /^uwrx: .*exit 2; record in build\/0\/0$/);
  t.deepEqual(rest, ['']);
  // the inner run created nothing, not even in the outer record
  t.deepEqual(readdirSync(path.join(dir, 'build', '0', '0', 'files')), []);
});

test('the summary\'s "files written" counts what uwrx inspect files lists', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--', 'sh', '-c', 'echo a > a; sh -c "echo b > a"; mkdir d; touch d/x; ln -s a l; mkfifo p; rm -f /etc/hostname'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  const listed = await uwrx(['inspect', 'files', 'build/0/0'], { cwd: dir });
  const paths = listed.stdout.split('\n').filter(Boolean);
  t.deepEqual([...paths].sort(), ['/etc/hostname', ...['a', 'd', 'd/x', 'l', 'p'].map((n) => path.join(dir, n))].sort());
  t.regex(out.stderr, new RegExp(`, ${paths.length} files written, `));
  t.is(JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8')).filesWritten, paths.length);
});

test('--replay of an attempt whose step has no cmd: its own cmd, else a message that says so', async (t) => {
  const dir = await scratch(t);
  const first = await uwrx(['run', '--quiet', '--', 'echo', 'replayed'], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  await fs.rm(path.join(dir, 'build', '0', 'cmd'));
  const own = await uwrx(['run', '--quiet', '--replay', 'build/0/0'], { cwd: dir });
  t.is(own.status, 0, own.stderr);
  t.is(own.stdout, 'replayed\n');
  // the replay wrote the step's cmd again
  await fs.rm(path.join(dir, 'build', '0', 'cmd'));
  await fs.rm(path.join(dir, 'build', '0', '0', 'cmd'));
  const none = await uwrx(['run', '--replay', 'build/0/0'], { cwd: dir });
  t.is(none.status, 2);
  t.is(none.stderr, `uwrx run: --replay ${path.join(dir, 'build', '0', '0')}: no command recorded (neither the attempt nor its step has a cmd file): give one after "--"\n`);
  t.deepEqual(readdirSync(path.join(dir, 'build', '0')).sort(), ['0', '1', 'options']);
  const given = await uwrx(['run', '--quiet', '--replay', 'build/0/0', '--', 'echo', 'given'], { cwd: dir });
  t.is(given.stdout, 'given\n');
});

test('an interrupted run whose command exits 0 on SIGTERM is not reported as status 0', async (t) => {
  t.timeout(60_000);
  const dir = await scratch(t);
  const { child, out, exited } = await startUntilReady(dir, 'trap "echo stopping; exit 0" TERM; echo ready; sleep 100 & wait');
  child.kill('SIGINT');
  const ended = await exited;
  t.is(out.stdout, 'ready\nstopping\n');
  // uwrx ends by the signal that stopped it, as the command's shell would natively
  t.deepEqual(ended, { code: null, signal: 'SIGINT' }, out.stderr);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.false(status.complete);
  t.is(status.status, 130);
  t.is(status.exitCode, 0);
  t.is(status.reason, 'interrupted');
});

// Runs argv on a new terminal (python3's pty), types Ctrl-C once it printed "ready" and
// its processes all wait in the kernel (a Ctrl-C while one of them is between a fork and
// its exec, or in a call uwrx-init holds, is a race of its own: README "Limits"), and
// prints what the terminal showed after that and how the program ended, as JSON.
const CTRL_C_ON_A_TERMINAL = `
import glob, json, os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
def waits():
    # where each process of the terminal's session waits, or None while one runs or
    # waits for uwrx-init
    where = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
            if int(fields[3]) != pid: continue
            p = stat.split("/")[2]
            w = open("/proc/%s/wchan" % p).read()
        except (OSError, IndexError, ValueError):
            continue
        if fields[0] != "S" or "seccomp" in w: return None
        where[p] = w
    return where
seen, sent, start, calm, last = b"", None, time.time(), 0, None
while True:
    if sent is None and b"ready\\r\\n" in seen:
        # the same places three times 50 ms apart: nothing on its way
        now = waits()
        calm = calm + 1 if now and now == last else 0
        last = now
        if calm >= 3 or time.time() - start > 30:
            os.write(fd, b"\\x03"); sent = seen.index(b"ready\\r\\n") + 7; sent_at = time.time()
    if time.time() - start > 60: os.kill(pid, 9)
    if select.select([fd], [], [], 0.05)[0]:
        try: data = os.read(fd, 4096)
        except OSError: break
        if not data: break
        seen += data
_, status = os.waitpid(pid, 0)
after = seen[sent:].decode("utf8", "replace") if sent is not None else None
print(json.dumps({"after": after, "code": os.waitstatus_to_exitcode(status), "seconds": time.time() - sent_at if sent is not None else None}))
`;

function ctrlC(argv: string[], cwd: string): { after: string; code: number; seconds: number } {
  const r = spawnSync('python3', ['-c', CTRL_C_ON_A_TERMINAL, ...argv], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the terminal driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { after: string; code: number; seconds: number };
}

test('Ctrl-C on a terminal reaches the command as natively (make says "Interrupt", Python raises KeyboardInterrupt); one that ignores it is stopped after the grace period', async (t) => {
  t.timeout(120_000);
  const dir = await scratch(t);
  await fs.writeFile(path.join(dir, 'Makefile'), 'all:\n\t@echo ready; sleep 30; echo done\n');
  const python = ['python3', '-c', 'import time; print("ready", flush=True); time.sleep(30)'];
  // make has a race of its own here, natively too on a loaded machine: its wait reaps the
  // interrupted job before its SIGINT handler runs, which then finds no child ("wait: No
  // child processes"); either is make's answer to SIGINT, never uwrx's SIGTERM
  const makesAnswer = /^\^Cmake: \*\*\* (\[Makefile:2: all\] Interrupt|wait: No child processes\.  Stop\.)\r\n/;
  for (const argv of [['make'], python]) {
    const native = ctrlC(argv, dir);
    const under = ctrlC([process.execPath, uwrxBin, 'run', '--quiet', '--build', path.join(dir, 'b'), '--', ...argv], dir);
    if (argv[0] === 'make') {
      t.regex(native.after, makesAnswer);
      t.regex(under.after, makesAnswer, 'make: what the terminal showed after Ctrl-C');
      t.notRegex(under.after, /Terminated/);
    } else {
      t.is(under.after, native.after, 'python3: what the terminal showed after Ctrl-C');
      t.regex(under.after, /KeyboardInterrupt/);
    }
    t.is(under.code, native.code, `${argv[0]}: ended by SIGINT both ways`);
  }
  // the attempt is marked interrupted, as after any stop
  const status = JSON.parse(readFileSync(path.join(dir, 'b', '10', '0', 'status'), 'utf8'));
  t.false(status.complete);
  t.is(status.status, 130);
  t.is(status.reason, 'interrupted');
  // a command that ignores SIGINT runs on natively; under uwrx it gets SIGTERM 3 s later
  const stubborn = ctrlC([process.execPath, uwrxBin, 'run', '--quiet', '--build', path.join(dir, 'b'), '--', 'sh', '-c', 'trap "" INT; trap "echo terminated; exit 3" TERM; echo ready; sleep 30 & wait; echo finished'], dir);
  t.regex(stubborn.after, /terminated/);
  t.notRegex(stubborn.after, /finished/);
  t.true(stubborn.seconds >= 2.5 && stubborn.seconds < 20, `stopped ${stubborn.seconds} s after Ctrl-C`);
});

// timeout(1) does the same: a caller that waits for uwrx (a shell, make, a test runner)
// tells a crash from an exit status, so uwrx ends as its command did.
test('a command killed by a signal: uwrx dies of the same signal, after its output and record, without a core dump', async (t) => {
  const dir = await scratch(t);
  const script = 'echo before; kill -SEGV $$';
  // natively elsewhere: the killed sh leaves its core file where it runs
  const nativeDir = path.join(dir, 'native');
  await fs.mkdir(nativeDir);
  const native = spawnSync('sh', ['-c', `ulimit -c unlimited; exec sh -c '${script}'`], { cwd: nativeDir, encoding: 'utf8' });
  const r = spawnSync('sh', ['-c', `ulimit -c unlimited; exec "$0" "$1" run --quiet -- sh -c '${script}'`, process.execPath, uwrxBin], { cwd: dir, encoding: 'utf8' });
  t.is(r.signal, native.signal, r.stderr);
  t.is(r.signal, 'SIGSEGV');
  t.is(r.stdout, 'before\n');
  // a core of the sandboxed sh may be in the record's files; none of uwrx's own in the directory
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('core')), []);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.true(status.complete);
  t.is(status.status, 139);
  t.is(status.signal, 11);
  // SIGPIPE, which Node itself ignores, ends uwrx too
  const pipe = spawnSync(process.execPath, [uwrxBin, 'run', '--quiet', '--', 'sh', '-c', 'kill -PIPE $$'], { cwd: dir, encoding: 'utf8' });
  t.is(pipe.signal, 'SIGPIPE', pipe.stderr);
  // an exit status stays one
  const exit = spawnSync(process.execPath, [uwrxBin, 'run', '--quiet', '--', 'sh', '-c', 'exit 139'], { cwd: dir, encoding: 'utf8' });
  t.deepEqual([exit.status, exit.signal], [139, null]);
});

test('uwrx-init killed from outside: the record says so, not "interrupted"', async (t) => {
  t.timeout(60_000);
  const dir = await scratch(t);
  const { child, out, exited } = await startUntilReady(dir, 'echo ready; sleep 100');
  // uwrx's child is uwrx-init; its own child is the sandbox's pid 1
  const childrenOf = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const init = childrenOf(child.pid!).find((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'uwrx-init')!;
  const pid1 = childrenOf(init)[0]!;
  process.kill(pid1, 'SIGKILL');
  const { code } = await exited;
  t.not(code, 0, out.stderr);
  t.regex(out.stderr, /exit status unknown; .*\(incomplete: uwrx-init ended without its final report \((exit status \d+|killed by SIG[A-Z]+)\)\)/);
  t.notRegex(out.stderr, /interrupted/);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8'));
  t.false(status.complete);
  t.regex(status.reason, /^uwrx-init ended without its final report/);
});

test('a working directory inside the build directory is refused up front', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--build', '.', '--', 'pwd'], { cwd: dir });
  t.is(out.status, 2);
  t.is(out.stderr, `uwrx run: the working directory ${dir} is inside the build directory ${dir}, which the command cannot see: choose another --build or --tmp\n`);
  t.deepEqual(readdirSync(dir), []);
});

test('valgrind runs a program as it does natively: its debug symbols found, no warning of its own, the reads recorded', async (t) => {
  // valgrind needs ld.so's separate symbols, found by the build id ld.so's PT_NOTE names
  const missing = ensureCommands({ valgrind: 'valgrind', '/usr/lib/debug/.build-id': 'libc6-dbg' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const dir = await scratch(t);
  const argv = ['valgrind', '-q', '--error-exitcode=9', 'ls', '/usr/include/stdio.h'];
  const native = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  const out = await uwrx(['run', '--quiet', '--', ...argv], { cwd: dir });
  t.deepEqual({ status: out.status, stdout: out.stdout, stderr: out.stderr },
    { status: native.status, stdout: native.stdout, stderr: native.stderr });
  // valgrind makes the program's calls itself: recorded through the notification path
  const reads = await uwrx(['inspect', 'files', 'build/0/0', '--reads', '--format', 'json'], { cwd: dir });
  t.is(reads.status, 0, reads.stderr);
  const entries = JSON.parse(reads.stdout) as Array<{ path: string; op: string }>;
  t.true(entries.some((e) => e.path === '/usr/include/stdio.h' && e.op === 'stat'), reads.stdout.slice(0, 2000));
});
