// Read accesses in the record: every way a program reads, probes, lists or executes a
// file ends up in the access index (`uwrx inspect files --reads`), through the
// in-process recorder (--fast-path) or the seccomp notification path, which also covers
// statically linked programs and calls the recorder does not interpose.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx, uwrxBin, fromGate } from './helpers/uwrx.js';
import type { AccessRow } from '../src/inspect/reads.js';

const missingStrace = ensureCommands({ strace: 'strace' });
const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function workDir(): string {
  const dir = scratchDir('uwrx-reads-');
  scratch.push(dir);
  return dir;
}

/** Runs argv under uwrx in cwd; returns the attempt's accesses (inspect --reads, json). */
async function reads(cwd: string, argv: string[], fastPath: boolean): Promise<{ rows: AccessRow[]; attempt: string }> {
  const r = await uwrx(['run', '--build', path.join(cwd, 'build'), fastPath ? '--fast-path' : '--no-fast-path', '--', ...argv], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
  const m = /record in (\S+)/.exec(r.stderr);
  if (!m) throw new Error(`no attempt in: ${r.stderr}`);
  const attempt = path.resolve(cwd, m[1]!);
  const out = await uwrx(['inspect', 'files', attempt, '--reads', '--format', 'json'], { cwd });
  if (out.status !== 0) throw new Error(`inspect exited ${out.status}: ${out.stderr}`);
  return { rows: JSON.parse(out.stdout) as AccessRow[], attempt };
}

/** "<op> <path relative to base>" of one process's accesses below base. */
function opsOf(rows: AccessRow[], pid: number, base: string): string[] {
  return rows.filter((r) => r.pid === pid && r.path.startsWith(base + '/')).map((r) => `${r.op} ${path.relative(base, r.path)}`);
}

const MODES = [
  { name: 'fast path', fastPath: true },
  { name: 'notification path', fastPath: false },
] as const;

for (const mode of MODES) {
  test.serial(`${mode.name}: opens, fopen, fortified and raw syscalls, stats, threads, fork (also a raw one), vfork and posix_spawn are recorded, each as its own process's`, async (t) => {
    const probe = buildDriver('access_probe', ['test/native/access_probe.c'], ['-D_FORTIFY_SOURCE=2', '-pthread']);
    const dir = workDir();
    const data = path.join(dir, 'data');
    mkdirSync(path.join(data, 'listed'), { recursive: true });
    for (const name of ['fortify', 'fopen', 'openat2', 'syscall', 'stat', 'access', 'thread', 'fork', 'vfork', 'spawn', 'rawfork', 'spawnopen', 'after']) {
      writeFileSync(path.join(data, `${name}.txt`), `${name}\n`);
    }
    symlinkSync('fopen.txt', path.join(data, 'link'));
    const { rows } = await reads(dir, [probe, data], mode.fastPath);
    const probePid = rows.find((r) => r.op === 'exec' && r.path === probe)?.pid;
    t.truthy(probePid, 'the probe exec is in the index');
    const own = opsOf(rows, probePid!, data);
    for (const expected of [
      'read fortify.txt', 'read fopen.txt', 'read openat2.txt', 'read syscall.txt', 'stat stat.txt', 'missing missing-stat.txt',
      'missing missing-open.txt', 'readdir listed', 'read thread.txt', 'read after.txt',
    ]) {
      t.true(own.includes(expected), `${expected} by the probe in ${JSON.stringify(own)}`);
    }
    // access checks and readlinks are not notified: only the recorder sees them
    for (const inProcess of ['stat access.txt', 'readlink link']) t.is(own.includes(inProcess), mode.fastPath, `${inProcess} in ${JSON.stringify(own)}`);
    for (const child of ['fork.txt', 'vfork.txt', 'rawfork.txt', 'spawnopen.txt']) {
      const by = rows.filter((r) => r.path === path.join(data, child) && r.op === 'read').map((r) => r.pid);
      t.is(by.length, 1, `${child} read once: ${JSON.stringify(by)}`);
      t.not(by[0], probePid, `${child} is the child's read, not the probe's`);
    }
    const spawned = rows.find((r) => r.path === path.join(data, 'spawn.txt') && r.op === 'read');
    t.is(path.basename(spawned?.exe ?? ''), 'cat', 'posix_spawn: cat read spawn.txt');
    t.false(rows.some((r) => r.path.startsWith('/dev/.uwrx-')), 'uwrx\'s own files are not in the record');
  });

  test.serial(`${mode.name}: gcc's header search records the probed, missing and found headers`, async (t) => {
    const dir = workDir();
    mkdirSync(path.join(dir, 'inc1'));
    mkdirSync(path.join(dir, 'inc2'));
    writeFileSync(path.join(dir, 'inc2', 'h.h'), '#define ANSWER 42\n');
    writeFileSync(path.join(dir, 'x.c'), '#include <h.h>\nint answer(void) { return ANSWER; }\n');
    const { rows } = await reads(dir, ['gcc', '-I', 'inc1', '-I', 'inc2', '-c', 'x.c'], mode.fastPath);
    const cc1 = rows.filter((r) => r.exe.endsWith('/cc1'));
    t.true(cc1.length > 0, 'cc1 ran');
    const ops = cc1.filter((r) => r.path.startsWith(dir + '/')).map((r) => `${r.op} ${path.relative(dir, r.path)}`);
    t.true(ops.includes('read x.c'), JSON.stringify(ops));
    t.true(ops.includes('read inc2/h.h'), JSON.stringify(ops));
    t.true(ops.includes('missing inc1/h.h'), JSON.stringify(ops));
    t.false(ops.includes('missing inc2/h.h'), JSON.stringify(ops));
  });
}

test.serial('a statically linked program (busybox-static) is recorded through the notification path', async (t) => {
  const missing = ensureCommands({ '/bin/busybox': 'busybox-static' });
  if (missing.length > 0) {
    t.log('busybox-static cannot be installed here (needs root and apt-get)');
    t.fail('busybox-static is not installed');
    return;
  }
  const dir = workDir();
  writeFileSync(path.join(dir, 'busy.txt'), 'busy\n');
  const { rows } = await reads(dir, ['sh', '-c', '/bin/busybox cat busy.txt && ! /bin/busybox ls nothere 2>/dev/null'], true);
  const busy = rows.filter((r) => r.exe === '/bin/busybox' && r.path.startsWith(dir + '/')).map((r) => `${r.op} ${path.relative(dir, r.path)}`);
  t.true(busy.includes('read busy.txt'), JSON.stringify(busy));
  t.true(busy.includes('missing nothere'), JSON.stringify(busy));
});

test.serial('fast path: a program that blocks every signal, handles SIGSYS and closes every fd runs as natively and is recorded', async (t) => {
  const probe = buildDriver('access_probe', ['test/native/access_probe.c'], ['-D_FORTIFY_SOURCE=2', '-pthread']);
  const dir = workDir();
  const data = path.join(dir, 'data');
  mkdirSync(data);
  for (const name of ['before-hostile', 'hostile']) writeFileSync(path.join(data, `${name}.txt`), 'x\n');
  const { rows } = await reads(dir, [probe, data, 'hostile'], true);
  const probePid = rows.find((r) => r.op === 'exec' && r.path === probe)?.pid;
  const own = opsOf(rows, probePid!, data);
  t.deepEqual(own, ['read before-hostile.txt', 'read hostile.txt', 'missing hostile-missing.txt']);
});

// Rust's standard library calls statx(0, NULL, 0, mask, NULL) after a failed stat and
// expects EFAULT: the recorder once read that NULL path and killed every Rust program
// (cargo) that looked for a missing file.
for (const mode of MODES) {
  test.serial(`${mode.name}: a NULL or unmapped path or buffer gives EFAULT as natively`, async (t) => {
    const probe = buildDriver('bad_pointer_probe', ['test/native/bad_pointer_probe.c']);
    const native = spawnSync(probe, { encoding: 'utf8' });
    t.is(native.status, 0, native.stderr);
    t.regex(native.stdout, /^statx-rust-probe -1 14$/m, 'natively EFAULT');
    const dir = workDir();
    const r = await uwrx(['run', '--build', path.join(dir, 'build'), mode.fastPath ? '--fast-path' : '--no-fast-path', '--', probe], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, native.stdout);
  });
}

// Python's os.stat(path) and os.fstat(fd) go through the recorder's stat and fstat
// (answered in process where the shared rule allows); the raw system call through
// ctypes is a syscall instruction in libc the recorder never sees: the notification
// path answers it. Both must agree on every kind of file: real, copied up, created by
// the run, from a parent step, directories, the overlay's root, outside the overlays.
const STAT_BOTH_WAYS = `
import ctypes, os, struct, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
def raw_stat(p, follow):
    buf = ctypes.create_string_buffer(144)
    r = libc.syscall(262, -100, p.encode(), buf, 0 if follow else 0x100)  # newfstatat(AT_FDCWD, ...)
    assert r == 0, (p, ctypes.get_errno())
    f = struct.unpack('QQQIIIiQqqqqqqqqq', buf.raw[:120])
    return (f[3], f[1], f[0], f[2], f[8], f[11] * 10**9 + f[12], f[13] * 10**9 + f[14], f[15] * 10**9 + f[16])
def show(p, follow):
    st = os.stat(p, follow_symlinks=follow)
    fd = os.open(p, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
    fst = os.fstat(fd)
    os.close(fd)
    key = lambda s: (s.st_mode, s.st_ino, s.st_dev, s.st_nlink, s.st_size, s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)
    ref = raw_stat(p, follow)
    print(p, follow, key(st) == ref and key(fst) == ref, key(st), key(fst), ref)
    # coreutils stat asks with statx; %.9Z is the change time in ns
    out = subprocess.run(['stat', '-c', '%i %s %.9X %.9Y %.9Z', p], capture_output=True, text=True).stdout.split() if follow else None
    if out:
        ns = lambda v: int(v.replace('.', ''))
        mine = (int(out[0]), int(out[1]), ns(out[2]), ns(out[3]), ns(out[4]))
        theirs = (ref[1], ref[4], ref[5], ref[6], ref[7])
        print(p, 'statx', mine == theirs, mine, theirs)
open('new.txt', 'w').write('new')
os.chmod('chmod.txt', 0o600)
for p in ('real.txt', 'chmod.txt', 'new.txt', 'parent.txt', '.', 'sub', '/tmp', '/dev/null', '/usr/bin/env'):
    show(p, True)
show('link', False)
`;

test.serial('fast path: stats answered in process show what the notification path shows', async (t) => {
  const dir = workDir();
  for (const name of ['real.txt', 'chmod.txt']) writeFileSync(path.join(dir, name), `${name}\n`);
  mkdirSync(path.join(dir, 'sub'));
  symlinkSync('real.txt', path.join(dir, 'link'));
  const build = path.join(dir, 'build');
  const first = await uwrx(['run', '--build', build, '--', 'sh', '-c', 'echo parent > parent.txt'], { cwd: dir });
  t.is(first.status, 0, first.stderr);
  const r = await uwrx(['run', '--build', build, '--fast-path', '--', 'python3', '-c', STAT_BOTH_WAYS], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 19, r.stdout);
  for (const line of lines) t.regex(line, /^\S+ (True|False|statx) True /, line);
  const attempt = /record in (\S+)/.exec(r.stderr)?.[1];
  const status = JSON.parse(readFileSync(path.resolve(dir, attempt ?? 'none', 'status'), 'utf8')) as { fileCalls: { inProcess: number } };
  t.true(status.fileCalls.inProcess > 0, 'some stats were answered in process');
});

/** Where an attempt's file calls were answered (its status file). */
function fileCalls(cwd: string, stderr: string): { inProcess: number; notified: number } {
  const attempt = /record in (\S+)/.exec(stderr)?.[1];
  const status = JSON.parse(readFileSync(path.resolve(cwd, attempt ?? 'none', 'status'), 'utf8')) as {
    fileCalls: { inProcess: number; notified: number };
  };
  return status.fileCalls;
}

/** File calls of `probe LOOPS files...` under --fast-path, less those of the same probe
 * with no loops; and its output lines. `probe`: a program, or a command's first words. */
async function loopCalls(dir: string, probe: string | string[], loops: number, files: string[]) {
  const command = typeof probe === 'string' ? [probe] : probe;
  const runOnce = async (n: number) => {
    const r = await uwrx(['run', '--build', path.join(dir, `build-${path.basename(command.at(-1)!)}-${n}`), '--fast-path', '--', ...command, String(n), ...files], { cwd: dir });
    if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
    return { calls: fileCalls(dir, r.stderr), lines: r.stdout.trim().split('\n') };
  };
  const base = await runOnce(0);
  const loop = await runOnce(loops);
  return {
    inProcess: loop.calls.inProcess - base.calls.inProcess,
    notified: loop.calls.notified - base.calls.notified,
    lines: loop.lines,
  };
}

// opendir and stdio's buffers stat their descriptor with libc's internal fstatat, which no
// symbol lookup reaches: the recorder redirects libc's fstatat before main. With a thread
// started by a library constructor before that, it leaves libc alone and the same calls
// are notified; either way they show what the notification path shows.
test.serial('fast path: libc\'s internal fstat (opendir, stdio) is answered in process, or notified when threads ran first', async (t) => {
  const dir = workDir();
  const lib = buildDriver('libthreadctor.so', ['test/native/thread_ctor.c'], ['-shared', '-fPIC', '-pthread']);
  const plain = buildDriver('libc_fstat_probe', ['test/native/libc_fstat_probe.c']);
  const threaded = buildDriver('libc_fstat_probe_threaded', ['test/native/libc_fstat_probe.c'], [
    '-Wl,--no-as-needed', lib, `-Wl,-rpath,${path.dirname(lib)}`,
  ]);
  writeFileSync(path.join(dir, 'own.txt'), 'own\n');
  const loops = 100;
  // /usr/bin and /usr/bin/env are old real files: the shared rule answers their stats in
  // process; own.txt and the scratch directory are too new for it (uwrx-init answers)
  const files = ['/usr/bin/env', path.join(dir, 'own.txt')];
  const fast = await loopCalls(dir, plain, loops, files);
  const slow = await loopCalls(dir, threaded, loops, files);
  for (const line of [...fast.lines, ...slow.lines]) t.regex(line, /^\S+ same /, line);
  t.is(fast.lines.length, files.length);
  t.is(slow.lines.length, files.length);
  // per loop: opendir's fstat of /usr/bin and stdio's fstat of /usr/bin/env
  t.true(fast.inProcess - slow.inProcess >= 2 * loops, `in process: ${JSON.stringify({ fast, slow })}`);
  t.true(slow.notified - fast.notified >= 2 * loops, `notified: ${JSON.stringify({ fast, slow })}`);
});

// libc's syscall() passes by every wrapper the recorder interposes: libuv makes each
// stat of Node (fs.stat, module lookups) so, as statx. The recorder's syscall() answers
// the numbers it covers as the wrappers do and makes any other as libc does.
/** The directory syscall_probe reads: file.txt and a symlink to it. */
function syscallProbeData(dir: string): string {
  const data = path.join(dir, 'data');
  mkdirSync(data);
  writeFileSync(path.join(data, 'file.txt'), 'hello\n');
  symlinkSync('file.txt', path.join(data, 'link'));
  return data;
}

for (const mode of MODES) {
  test.serial(`${mode.name}: calls made through syscall() give what they give natively and are recorded`, async (t) => {
    const probe = buildDriver('syscall_probe', ['test/native/syscall_probe.c']);
    const dir = workDir();
    const data = syscallProbeData(dir);
    const argv = [probe, '0', '/usr/bin/env', data];
    const native = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    t.is(native.status, 0, native.stderr);
    t.regex(native.stdout, /^statx 0 same 1 size 6$/m);
    const r = await uwrx(['run', '--build', path.join(dir, 'build'), mode.fastPath ? '--fast-path' : '--no-fast-path', '--', ...argv], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, native.stdout);
    const attempt = path.resolve(dir, /record in (\S+)/.exec(r.stderr)![1]!);
    const out = await uwrx(['inspect', 'files', attempt, '--reads', '--format', 'json'], { cwd: dir });
    const rows = JSON.parse(out.stdout) as AccessRow[];
    const probePid = rows.find((row) => row.op === 'exec' && row.path === probe)?.pid;
    const own = opsOf(rows, probePid!, data);
    for (const expected of ['stat file.txt', 'stat link', 'missing missing-statx', 'missing missing-lstat', 'read file.txt', 'missing missing-open']) {
      t.true(own.includes(expected), `${expected} in ${JSON.stringify(own)}`);
    }
    // access checks and readlinks are not notified: only the recorder sees them
    for (const inProcess of ['missing missing-access', 'readlink link']) t.is(own.includes(inProcess), mode.fastPath, `${inProcess} in ${JSON.stringify(own)}`);
  });
}

test.serial('fast path: stats made through syscall(), by a C program and by Node, are answered in process', async (t) => {
  const dir = workDir();
  const probe = buildDriver('syscall_probe', ['test/native/syscall_probe.c']);
  const data = syscallProbeData(dir);
  const loops = 200;
  // /usr/bin/env is an old real file: the shared rule answers its stats in process
  const c = await loopCalls(dir, probe, loops, ['/usr/bin/env', data]);
  t.true(c.inProcess >= loops, JSON.stringify(c));
  t.true(c.notified < loops / 10, JSON.stringify(c));
  const script = path.join(dir, 'stats.cjs');
  writeFileSync(script, [
    "const fs = require('node:fs');",
    'const [loops, file, missing] = [Number(process.argv[2]), process.argv[3], process.argv[4]];',
    'for (let i = 0; i < loops; i++) { fs.statSync(file); fs.statSync(missing, { throwIfNoEntry: false }); }',
    "console.log('done');",
  ].join('\n'));
  const node = await loopCalls(dir, [process.execPath, script], loops, ['/usr/bin/env', path.join(dir, 'missing')]);
  t.deepEqual(node.lines, ['done']);
  t.true(node.inProcess >= 2 * loops, JSON.stringify(node));
  t.true(node.notified < loops / 10, JSON.stringify(node));
});

// A tree of the root gets its overlay at its first change, or when a process changes into
// it (init/lazy.c): a process already running then learns the new mount as well as the
// processes started later do, so its stats there stay in process, the tree's own top
// directory's too. The new overlay's mount id may be one freed below all the others (the
// kernel hands out the smallest free).
test.serial('fast path: stats after a chdir into a tree that gets its overlay meanwhile stay in process', async (t) => {
  const dir = workDir();
  const probe = buildDriver('cwd_stat_probe', ['test/native/cwd_stat_probe.c']);
  const loops = 100;
  const trees = ['/usr/bin', 'env', '/var', 'lib', '/etc', 'passwd', '/var', '.'];
  const calls = await loopCalls(dir, probe, loops, trees);
  t.deepEqual(calls.lines, [`found ${(loops * trees.length) / 2}`]);
  t.true(calls.inProcess >= (loops * trees.length) / 2, JSON.stringify(calls));
  t.true(calls.notified < loops / 10, JSON.stringify(calls));
});

// Files outside the overlays (a pipe, a socket, /dev, /proc) are shown as the kernel shows
// them on the notification path too, so the recorder answers their stats in process
// (uwrx_stat_shows_kernel): the same values, and no notification per call.
test.serial('fast path: stats of pipes, sockets, /dev and /proc are answered in process and show what the kernel shows', async (t) => {
  const dir = workDir();
  const probe = buildDriver('kernel_stat_probe', ['test/native/kernel_stat_probe.c']);
  const loops = 200;
  const run = async (n: number) => {
    const r = await uwrx(['run', '--build', path.join(dir, `build-${n}`), '--fast-path', '--', probe, String(n)], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    return { calls: fileCalls(dir, r.stderr), lines: r.stdout.trim().split('\n') };
  };
  const base = await run(0);
  const loop = await run(loops);
  t.deepEqual(loop.lines, ['pipe same', 'socket same', '/dev/null same', '/dev/null same', '/proc/self/status same']);
  t.deepEqual(base.lines, loop.lines);
  // five files, `loops` stats each: all of them in process
  t.true(loop.calls.inProcess - base.calls.inProcess >= 5 * loops, JSON.stringify({ base, loop }));
  t.true(loop.calls.notified - base.calls.notified < loops / 10, JSON.stringify({ base, loop }));
});

// The command inherits the caller's standard descriptors: a host /dev/null or terminal
// lies on a mount of the caller's namespace that no path in the sandbox reaches, and both
// paths show it as the kernel does, so its stats are answered in process (stdio's fstat
// of each process's output). A host file whose path lies within an overlay (a log in the
// working directory) stays on the notification path, which decides by that path.
test.serial('fast path: stats of standard descriptors from outside the sandbox show what the kernel shows; in process when no overlay holds their path', async (t) => {
  const dir = workDir();
  const probe = buildDriver('kernel_stat_probe', ['test/native/kernel_stat_probe.c']);
  const hostFile = path.join(dir, 'input.txt');
  writeFileSync(hostFile, 'input\n');
  const loops = 200;
  const run = (stdin: string, n: number) => {
    const fd = openSync(stdin, 'r');
    try {
      const r = spawnSync(process.execPath, [uwrxBin, 'run', '--build', path.join(dir, `build-${path.basename(stdin)}-${n}`), '--fast-path', '--', probe, String(n), 'stdin'], {
        cwd: dir,
        stdio: [fd, 'pipe', 'pipe'],
        encoding: 'utf8',
      });
      t.is(r.status, 0, r.stderr);
      return { calls: fileCalls(dir, r.stderr), line: r.stdout.trim() };
    } finally {
      closeSync(fd);
    }
  };
  for (const [stdin, inProcess] of [['/dev/null', true], [hostFile, false]] as const) {
    const base = run(stdin, 0);
    const loop = run(stdin, loops);
    t.is(loop.line, 'stdin same', stdin);
    const counts = JSON.stringify({ stdin, base, loop });
    if (inProcess) {
      t.true(loop.calls.inProcess - base.calls.inProcess >= loops, counts);
      t.true(loop.calls.notified - base.calls.notified < loops / 10, counts);
    } else {
      t.true(loop.calls.notified - base.calls.notified >= loops, counts);
    }
  }
});

// Another library's constructor may call libc before the recorder's constructor runs
// (libselinux's reads /proc/filesystems in sed, mkdir, mv): the recorder redirects libc's
// entries at its set-up there, so malloc's getrandom and stdio's fstat are answered in
// process too (strace -i shows each call's address: the gate's, or libc's when notified).
test.serial('fast path: libc is redirected before a library constructor that calls it ahead of the recorder\'s own', async (t) => {
  if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
  const dir = workDir();
  const lib = buildDriver('libearlyctor.so', ['test/native/early_ctor.c'], ['-shared', '-fPIC']);
  const probe = buildDriver('early_ctor_main', ['test/native/early_ctor_main.c'], [
    '-Wl,--no-as-needed', lib, `-Wl,-rpath,${path.dirname(lib)}`,
  ]);
  const r = await uwrx(['run', '--quiet', '--fast-path', '--', 'strace', '-f', '-qq', '-i', '-e', 'trace=getrandom,newfstatat,statx', probe], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'early read\n');
  const lines = r.stderr.split('\n').filter((l) => /\b(getrandom|newfstatat|statx)\(/.test(l));
  t.true(lines.some((l) => /\bgetrandom\(/.test(l)), r.stderr);
  const notified = lines.filter((l) => !fromGate(l));
  t.deepEqual(notified, [], r.stderr);
});

// Redirecting libc's entries costs a short process more than it saves when the program
// makes none of those calls, so uwrx-init leaves libc alone in the later images of a
// program whose redirected images made fewer than two (init/redirects.c). Such an image's
// internal calls are notified, and recorded the same.
test.serial('fast path: libc is left alone in later images of a program whose first image made no redirected calls; the record is the same', async (t) => {
  const dir = workDir();
  const probe = buildDriver('libc_fstat_probe', ['test/native/libc_fstat_probe.c']);
  const loops = 50;
  const files = ['/usr/bin/env'];
  const loud = `${probe} ${loops} ${files.join(' ')}`;
  const quiet = `${probe} 0 ${files.join(' ')} >/dev/null`;
  // without arguments the probe prints its usage to stderr, one write: below what pays
  const idle = `${probe} 2>/dev/null`;
  const run = async (script: string) => {
    const r = await uwrx(['run', '--build', path.join(dir, 'build'), '--fast-path', '--', 'sh', '-c', script], { cwd: dir });
    const attempt = path.resolve(dir, /record in (\S+)/.exec(r.stderr)?.[1] ?? 'none');
    const out = await uwrx(['inspect', 'files', attempt, '--reads', '--format', 'json'], { cwd: dir });
    const rows = JSON.parse(out.stdout) as AccessRow[];
    // the last process of the probe, its reads below /usr/bin, with their counts
    const pids = rows.filter((r) => r.op === 'exec' && r.path === probe).map((r) => r.pid);
    const last = pids[pids.length - 1];
    const own = rows.filter((r) => r.pid === last && r.path.startsWith('/usr/bin')).map((r) => `${r.op} ${r.path} ${r.count}`).sort();
    return { calls: fileCalls(dir, r.stderr), stdout: r.stdout, own };
  };
  const leftAlone = await run(`${idle}; ${loud}`);
  const leftAloneBase = await run(`${idle}; ${quiet}`);
  const redirected = await run(`${loud}; ${loud}`);
  const redirectedBase = await run(`${loud}; ${quiet}`);
  // "<file> same [...] [...]": libc's fstat showed what the system call shows (device
  // numbers differ between runs)
  const verdicts = (out: string) => out.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '));
  t.deepEqual(verdicts(leftAlone.stdout), ['/usr/bin/env same']);
  t.deepEqual(verdicts(redirected.stdout), ['/usr/bin/env same', '/usr/bin/env same']);
  t.deepEqual(leftAlone.own, redirected.own);
  // per loop: opendir's fstat of /usr/bin and stdio's fstat of /usr/bin/env, notified
  // when libc is left alone, answered in process when it is redirected
  const notified = leftAlone.calls.notified - leftAloneBase.calls.notified;
  const notifiedRedirected = redirected.calls.notified - redirectedBase.calls.notified;
  t.true(notified - notifiedRedirected >= 2 * loops, JSON.stringify({ leftAlone, leftAloneBase, redirected, redirectedBase }));
});

// Loading the recorder library costs a short process more than the notifications it
// saves when the program makes almost no calls it answers (init/redirects.c): the later
// images of such a program get none (but every 16th, which looks again), and their calls
// are notified and recorded the same.
test.serial('fast path: later images of a program that made almost no calls into the recorder library load none; their reads are recorded the same', async (t) => {
  const dir = workDir();
  const probe = buildDriver('library_probe', ['test/native/library_probe.c']);
  writeFileSync(path.join(dir, 'data.txt'), 'data\n');
  const script = `for i in $(seq 20); do ${probe} data.txt || echo failed; done`;
  for (const fastPath of [true, false]) {
    const build = path.join(dir, `build-${fastPath}`);
    const r = await uwrx(['run', '--build', build, fastPath ? '--fast-path' : '--no-fast-path', '--', 'sh', '-c', script], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    const said = r.stdout.trim().split('\n');
    t.is(said.length, 20, r.stdout);
    if (fastPath) {
      // the first image had it, and so does each 16th after; the others none
      t.is(said[0], 'library', r.stdout);
      t.true(said.filter((s) => s === 'none').length >= 17, r.stdout);
    } else {
      t.deepEqual([...new Set(said)], ['none']);
    }
    const attempt = path.resolve(dir, /record in (\S+)/.exec(r.stderr)?.[1] ?? 'none');
    const out = await uwrx(['inspect', 'files', attempt, '--reads', '--format', 'json'], { cwd: dir });
    t.is(out.status, 0, out.stderr);
    const rows = JSON.parse(out.stdout) as AccessRow[];
    const pids = rows.filter((row) => row.op === 'exec' && row.path === probe).map((row) => row.pid);
    t.is(pids.length, 20);
    for (const pid of pids) t.deepEqual(opsOf(rows, pid, dir), ['read data.txt'], `process ${pid}`);
  }
});

// Paths relative to a directory descriptor are recorded with the directory's path as it is
// at the call, on both paths: a descriptor number reused for another directory, and a
// directory renamed while open, give their new paths.
test.serial('fast path: stats relative to a directory descriptor record that directory\'s path, also after reuse, duplication and renames by any process', async (t) => {
  const probe = buildDriver('dirfd_probe', ['test/native/dirfd_probe.c']);
  const dir = workDir();
  for (const fastPath of [true, false]) {
    // a tree per run: the probe renames what it made, and a later run sees the earlier's
    const base = path.join(dir, String(fastPath));
    const tree = path.join(base, 'tree');
    mkdirSync(path.join(tree, 'a'), { recursive: true });
    mkdirSync(path.join(tree, 'b'));
    const { rows } = await reads(base, [probe, tree], fastPath);
    const pid = rows.find((r) => r.op === 'exec' && r.path === probe)?.pid;
    // below the tree: ld.so's look for /etc/ld.so.preload is the process's too
    const missing = rows.filter((r) => r.pid === pid && r.op === 'missing' && r.path.startsWith(tree + '/')).map((r) => path.relative(tree, r.path)).sort();
    t.deepEqual(missing, ['a/in-a-1', 'a/in-a-2', 'b/in-b', 'b/in-b-2', 'd/in-d', 'e/in-e', 'f/g/in-g', 'h/g/in-h-g', 'h/g/in-h-g-2', 'h/in-h'],
      `fast path ${fastPath}`);
  }
});

// setlocale opens a dozen locale files and probes as many, through libc's internal open
// that no symbol lookup reaches: redirected like fstatat, every program that sets its
// locale makes them in process. The record is the same on both paths.
test.serial('fast path: libc\'s own opens (setlocale\'s locale files) are answered in process and recorded', async (t) => {
  const dir = workDir();
  const runs = 20;
  const loop = `i=0; while [ $i -lt ${runs} ]; do env LC_ALL=C.UTF-8 /usr/bin/printf x >/dev/null; i=$((i+1)); done`;
  const summary = async (fastPath: boolean) => {
    const { rows, attempt } = await reads(dir, ['sh', '-c', loop], fastPath);
    const calls = (JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8')) as { fileCalls: { inProcess: number; notified: number } }).fileCalls;
    const locale = rows.filter((r) => r.exe === '/usr/bin/printf' && r.path.startsWith('/usr/lib/locale/'));
    const pids = new Set(locale.map((r) => r.pid));
    const kinds = [...new Set(locale.map((r) => `${r.op} ${r.path}`))].sort();
    const opens = locale.filter((r) => r.op === 'read' || r.op === 'missing').reduce((n, r) => n + r.count, 0);
    return { calls, pids: pids.size, kinds, opens };
  };
  const fast = await summary(true);
  const slow = await summary(false);
  t.is(fast.pids, runs, 'every printf read its locale');
  t.true(fast.kinds.length >= 2, JSON.stringify(fast.kinds));
  t.deepEqual(fast.kinds, slow.kinds, 'the same accesses on both paths');
  // notified, the locale opens alone would outnumber every notified file call
  t.true(fast.opens >= 2 * runs, `${fast.opens} locale opens`);
  t.true(fast.calls.notified * 2 < fast.opens, `notified: ${JSON.stringify({ fast: fast.calls, opens: fast.opens })}`);
});

// The dynamic linker's own opens and stats (its preload list, the recorder, ld.so.cache,
// libc, the program's libraries, dlopen) go through the shim's hook in the combined
// ld.so: recorded in process, so a short program makes no notified file call at all. In
// a forked child the hook's buffer is the parent's: dlopen's opens there are notified,
// and recorded all the same.
test.serial('fast path: the dynamic linker\'s opens are recorded in process; in a forked child through the notification path until its recorder sets up', async (t) => {
  const probe = buildDriver('dlopen_probe', ['test/native/dlopen_probe.c'], ['-ldl']);
  const dir = workDir();
  const plain = await reads(dir, ['/bin/true'], true);
  const status = JSON.parse(readFileSync(path.join(plain.attempt, 'status'), 'utf8')) as { fileCalls: { inProcess: number; notified: number } };
  t.is(status.fileCalls.notified, 0, `no file call of /bin/true was notified: ${JSON.stringify(status.fileCalls)}`);
  const trueReads = plain.rows.filter((r) => r.exe.endsWith('/true')).map((r) => `${r.op} ${r.path}`);
  for (const lib of ['read /etc/ld.so.cache', 'read /lib/x86_64-linux-gnu/libc.so.6']) t.true(trueReads.includes(lib), `${lib} in ${JSON.stringify(trueReads)}`);
  t.false(plain.rows.some((r) => r.path.startsWith('/dev/.uwrx-')), 'uwrx\'s own files are not in the record');

  const { rows } = await reads(dir, [probe, 'libz.so.1', 'liblzma.so.5', 'libbz2.so.1'], true);
  const probePid = rows.find((r) => r.op === 'exec' && r.path === probe)?.pid;
  const by = (lib: string) => rows.filter((r) => r.op === 'read' && path.basename(r.path) === lib).map((r) => r.pid);
  t.deepEqual(by('libz.so.1'), [probePid!], 'the process\'s dlopen');
  for (const lib of ['liblzma.so.5', 'libbz2.so.1']) {
    t.is(by(lib).length, 1, `a child's dlopen of ${lib}`);
    t.not(by(lib)[0], probePid, `recorded for the child: ${lib}`);
  }
  t.not(by('liblzma.so.5')[0], by('libbz2.so.1')[0], 'two children');
});

test.serial('repeated accesses are counted once per process and path in accesses.tsv', async (t) => {
  const dir = workDir();
  writeFileSync(path.join(dir, 'again.txt'), 'x\n');
  const { rows, attempt } = await reads(dir, ['sh', '-c', 'cat again.txt again.txt again.txt >/dev/null'], true);
  const again = rows.filter((r) => r.path === path.join(dir, 'again.txt') && r.op === 'read');
  t.is(again.length, 1);
  t.is(again[0]!.count, 3);
  const index = readFileSync(path.join(attempt, 'accesses.tsv'), 'utf8');
  t.true(index.startsWith('pid\top\tpath\tcount\n'));
});

test('inspect files --reads on an attempt without an access index fails with one line, exit 2', async (t) => {
  const dir = workDir();
  mkdirSync(path.join(dir, 'attempt'));
  const r = await uwrx(['inspect', 'files', path.join(dir, 'attempt'), '--reads'], { cwd: dir });
  t.is(r.status, 2);
  t.regex(r.stderr, /has no accesses\.tsv/);
  t.is(r.stderr.trim().split('\n').length, 1);
});

// A directory with a mount below it is rebuilt entry by entry, an overlay per entry: the
// in-process stat rule must know all of them, however many there are.
const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;
asRoot('fast path: successful stats stay in process when the root has hundreds of overlays (a directory with a mount below it)', async (t) => {
  const dir = workDir();
  const many = path.join(dir, 'many');
  for (let i = 0; i < 120; i++) mkdirSync(path.join(many, `d${i}`), { recursive: true });
  mkdirSync(path.join(many, 'mnt'));
  const probe = 'i=0; while [ $i -lt 30 ]; do stat /usr/include/stdio.h >/dev/null; i=$((i+1)); done';
  const run = (mount: boolean, build: string, extra: string[] = []) => {
    // a private mount namespace: the tmpfs is seen by this uwrx alone
    const script = `${mount ? `mount -t tmpfs uwrx-test ${many}/mnt && ` : ''}exec "$0" "$@"`;
    return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, process.execPath, uwrxBin, 'run', '--build', path.join(dir, build), ...extra, '--', 'sh', '-c', probe], { cwd: dir, encoding: 'utf8' });
  };
  const plan = run(true, 'plan', ['--dry-run']);
  t.is(plan.status, 0, plan.stderr);
  const overlays = plan.stdout.split('\n').filter((l) => / mount overlay overlay -> /.test(l)).length;
  t.true(overlays > 120, `${overlays} overlays`);
  const calls = (build: string) => (JSON.parse(readFileSync(path.join(dir, build, '0', '0', 'status'), 'utf8')) as { fileCalls: { inProcess: number; notified: number } }).fileCalls;
  for (const [mount, build] of [[false, 'plain'], [true, 'split']] as const) {
    const r = run(mount, build);
    t.is(r.status, 0, r.stderr);
  }
  const plain = calls('plain');
  const split = calls('split');
  // 30 stat runs, each stats stdio.h: notified all, the difference would be 30 and more
  t.true(Math.abs(split.notified - plain.notified) < 10, `notified: ${JSON.stringify({ plain, split })}`);
});
