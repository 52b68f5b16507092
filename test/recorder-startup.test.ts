// What the in-process recorder costs a process that records nothing (/bin/true, `sh -c :`):
// every exec loads the library, so its mappings and start-up calls are paid per process.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RECORDER_LIBRARY } from '../src/reproducibility/recorder.js';
import type { AccessRow } from '../src/inspect/reads.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';
import { shmHasRoom } from '../src/record/traces-dir.js';

const missingStrace = ensureCommands({ strace: 'strace' });
const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

interface Load { offset: number; vaddr: number; filesz: number; memsz: number; flags: number }

/** The PT_LOAD program headers of a 64-bit little-endian ELF file. */
function loads(elf: Buffer): Load[] {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const out: Load[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (elf.readUInt32LE(at) !== 1 /* PT_LOAD */) continue;
    out.push({
      flags: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 8)),
      vaddr: Number(elf.readBigUInt64LE(at + 16)),
      filesz: Number(elf.readBigUInt64LE(at + 32)),
      memsz: Number(elf.readBigUInt64LE(at + 40)),
    });
  }
  return out;
}

// ld.so maps an object's .bss that reaches past the page of its last file byte with a
// mapping of its own: one more mmap in every process, and one more to unmap at its exit.
test('the recorder library loads as two segments, its writable data and .bss within one page', (t) => {
  const segs = loads(readFileSync(RECORDER_LIBRARY));
  t.is(segs.length, 2, JSON.stringify(segs));
  const rw = segs.find((s) => (s.flags & 2) !== 0);
  t.truthy(rw, 'a writable segment');
  const pageEnd = (n: number) => Math.ceil(n / 4096) * 4096;
  t.is(pageEnd(rw!.vaddr + rw!.memsz), pageEnd(rw!.vaddr + rw!.filesz), `.bss past the data page: ${JSON.stringify(rw)}`);
});

/** Whether the CPU offers user-space FSGSBASE (the kernel's HWCAP2_FSGSBASE, shown as the
 * "fsgsbase" flag in /proc/cpuinfo): the shim's hook then reads the thread pointer itself. */
function cpuHasFsgsbase(): boolean {
  return /^flags\s*:.*\bfsgsbase\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

/** A scratch directory for one test (removed after the file), with probe.txt in it when asked. */
function startupDir(probe = false): string {
  const dir = scratchDir('uwrx-startup-');
  scratch.push(dir);
  if (probe) writeFileSync(path.join(dir, 'probe.txt'), 'probe\n');
  return dir;
}

/** strace's lines (-qq, `calls` traced) of /bin/true under uwrx with the fast path. */
async function straceOfTrue(t: ExecutionContext, calls: string): Promise<string[]> {
  const dir = startupDir();
  const r = await uwrx(['run', '--quiet', '--fast-path', '--', 'strace', '-qq', '-e', `trace=${calls}`, '/bin/true'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  return r.stderr.split('\n').filter((l) => l.trim() !== '');
}

// A process that records nothing maps nothing for the records' tables; one that records
// (cat of a file) maps them once and counts repeats as before (recorder.test.ts).
test.serial('fast path: /bin/true maps the recorder library with two mmaps and no tables; only the shim and the recorder ask for its pid, and nothing asks whether the shim mapped its page', async (t) => {
  if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
  const lines = await straceOfTrue(t, 'openat,mmap,getpid,rseq,mincore');
  const log = lines.join('\n');
  const open = lines.findIndex((l) => l.includes('/dev/.uwrx-rec.so'));
  t.true(open >= 0, log);
  // the library's mappings: up to the next open (ld.so's cache), its own 8 KiB allocation aside
  const next = lines.findIndex((l, i) => i > open && /^openat\(/.test(l));
  const libMaps = lines.slice(open + 1, next).filter((l) => /^mmap\(/.test(l) && !/MAP_ANONYMOUS/.test(l));
  const libAnon = lines.slice(open + 1, next).filter((l) => /^mmap\(.*MAP_FIXED\|MAP_ANONYMOUS/.test(l));
  t.is(libMaps.length, 2, log);
  t.deepEqual(libAnon, [], log);
  // once ld.so has loaded everything (it registers the thread's rseq area), the
  // recorder's set-up maps nothing, and its first check reuses the set-up's getpid
  const loaded = lines.findIndex((l) => /^rseq\(/.test(l));
  t.true(loaded > open, log);
  t.deepEqual(lines.slice(loaded + 1).filter((l) => /^mmap\(/.test(l)), [], log);
  t.is(lines.slice(loaded + 1).filter((l) => /^getpid\(/.test(l)).length, 1, log);
  // while ld.so loads the exec's libraries (no thread pointer yet) the hook records its
  // opens without asking whose buffer it is: the shim asked once, first, for the name of
  // a prepared exec's buffer (uwrx_recorder.h), and the control call or that buffer's
  // header told it nothing else. The hook reads the thread pointer with rdfsbase: a CPU
  // without FSGSBASE makes it ask getpid for each record instead.
  const early = lines.slice(0, loaded).filter((l) => /^getpid\(/.test(l));
  if (cpuHasFsgsbase()) t.true(early.length === 1 && /^getpid\(/.test(lines[1]!), log);
  else t.log('this CPU has no FSGSBASE: the hook asks getpid while ld.so loads');
  // the recorder learns that the shim mapped its state page from the auxiliary vector
  t.deepEqual(lines.filter((l) => /^mincore\(/.test(l)), [], log);
});

// ld.so maps the preload list, parses it and unmaps it: the shim's hook reads it onto its
// state page instead, so no process pays a mapping, a page fault and an munmap for it.
test.serial('fast path: ld.so reads the preload list without a mapping of it', async (t) => {
  if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
  const lines = await straceOfTrue(t, 'openat,mmap,munmap,pread64,close');
  const log = lines.join('\n');
  const open = lines.findIndex((l) => /^openat\(AT_FDCWD, "\/dev\/\.uwrx-preload".* = \d+$/.test(l));
  t.true(open >= 0, log);
  const fd = /= (\d+)$/.exec(lines[open]!)![1];
  const until = lines.findIndex((l, i) => i > open && l.startsWith(`close(${fd})`));
  t.true(until > open, log);
  const between = lines.slice(open + 1, until);
  t.deepEqual(between.filter((l) => /^mmap\(/.test(l)), [], log);
  t.is(between.filter((l) => l.startsWith(`pread64(${fd}, "/dev/.uwrx-rec.so`)).length, 1, log);
  // the one munmap left is ld.so's of its cache, as natively
  t.is(lines.filter((l) => /^munmap\(/.test(l)).length, 1, log);
});

// The gate block (gate, state page, recorder buffer) goes below ld.so where ld.so is at the
// top of the address space (no randomization, the default), sharing its page tables; else
// (a big stack limit moves ld.so down, as randomization does) at the far address. Calls
// are made from the gate either way.
test.serial('fast path: the gate block is near ld.so without randomization, far with a big stack limit', async (t) => {
  if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
  const dir = startupDir(true);
  const trace = 'strace -i -qq -e trace=mmap,openat cat probe.txt';
  for (const [script, gate] of [[trace, '0x7fffc0000000'], [`ulimit -s unlimited; ${trace}`, '0x757700000000']] as const) {
    const r = await uwrx(['run', '--quiet', '--fast-path', '--', 'sh', '-c', script], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, 'probe\n');
    const lines = r.stderr.split('\n');
    t.true(lines.some((l) => l.includes(`mmap(${gate}, 8192, PROT_READ|PROT_WRITE,`) && l.endsWith(`= ${gate}`)), r.stderr);
    const ip = `[0000${gate.slice(2, -1)}2]`; // after the gate's syscall instruction
    t.true(lines.some((l) => l.startsWith(ip) && l.includes('probe.txt')), `${ip}\n${r.stderr}`);
  }
});

// The recorder buffer's mapping is advised MADV_RANDOM only where a fault could read ahead:
// not on tmpfs. The buffers live on /dev/shm when it is a roomy tmpfs (trace-run.test.ts),
// else (and with UWRX_TRACES_TMPFS=0) in the run directory.
const isTmpfs = (dir: string): boolean => statfsSync(dir).type === 0x01021994;
const shmRoomy = shmHasRoom();
for (const inRunDir of [false, true]) {
  test.serial(`fast path: the shim advises the recorder buffer's mapping only off tmpfs (${inRunDir ? 'UWRX_TRACES_TMPFS=0' : 'default'})`, async (t) => {
    if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
    const dir = startupDir();
    const env = inRunDir ? { ...process.env, UWRX_TRACES_TMPFS: '0' } : process.env;
    const r = await uwrx(['run', '--quiet', '--build', path.join(dir, 'build'), '--fast-path', '--', 'strace', '-qq', '-e', 'trace=madvise', '/bin/true'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    const onTmpfs = (!inRunDir && shmRoomy) || isTmpfs(dir);
    const advised = r.stderr.split('\n').filter((l) => /^madvise\(0x[0-9a-f]+, 67108864, MADV_RANDOM\)/.test(l));
    t.is(advised.length, onTmpfs ? 0 : 1, r.stderr);
  });
}

// A forked child leaves its parent's buffer mapped until it sets up its own recorder: a
// child that execs at once (a shell's command substitution) makes no munmap for it; one that
// records by itself (a subshell's `test`) unmaps it then, and its accesses are recorded.
test.serial('fast path: a forked child unmaps its parent\'s buffer only when it records itself', async (t) => {
  if (missingStrace.length > 0) return t.fail(`cannot install ${missingStrace.join(', ')}`);
  const dir = startupDir(true);
  // dash runs a plain command in a vfork child; a command substitution forks, then execs
  const script = 'a=$(/bin/true); b=$(/bin/true); ( test -e probe.txt && test -e probe.txt ); :';
  const r = await uwrx(['run', '--build', path.join(dir, 'build'), '--fast-path', '--', 'strace', '-f', '-qq', '-e', 'trace=munmap', 'sh', '-c', script], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const unmaps = r.stderr.split('\n').filter((l) => /munmap\(0x[0-9a-f]+, 67108864\)/.test(l));
  t.is(unmaps.length, 1, r.stderr);
  const attempt = /record in (\S+)/.exec(r.stderr)?.[1];
  t.truthy(attempt, r.stderr);
  const out = await uwrx(['inspect', 'files', path.resolve(dir, attempt!), '--reads', '--format', 'json'], { cwd: dir });
  t.is(out.status, 0, out.stderr);
  const rows = (JSON.parse(out.stdout) as AccessRow[]).filter((row) => row.path === path.join(dir, 'probe.txt'));
  t.is(rows.length, 1, JSON.stringify(rows));
  t.is(rows[0]!.count, 2, JSON.stringify(rows));
});

// ldd runs ld.so in its listing mode: nothing of the program runs, so the listing must
// be the native one (the vDSO, no recorder library), and its reads are still recorded.
test('ldd, LD_TRACE_LOADED_OBJECTS and ld.so --list print what they print natively', async (t) => {
  const dir = scratchDir('uwrx-listing-');
  scratch.push(dir);
  const script = 'ldd /bin/true; LD_TRACE_LOADED_OBJECTS=1 /bin/true; /lib64/ld-linux-x86-64.so.2 --list /bin/true; ' +
    '/lib64/ld-linux-x86-64.so.2 --inhibit-cache --list /bin/true; echo ran-$(/bin/true && echo yes)';
  const stripped = (s: string) => s.replace(/ \(0x[0-9a-f]+\)/g, '');
  const native = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  const r = await uwrx(['run', '--quiet', '--', 'sh', '-c', script], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(stripped(r.stdout), stripped(native.stdout));
  t.regex(r.stdout, /linux-vdso\.so\.1/);
  t.notRegex(r.stdout, /uwrx/);
  t.regex(r.stdout, /ran-yes/);
  // the listing processes' reads of libc are in the record like any other process's
  const reads = JSON.parse((await uwrx(['inspect', 'files', path.join(dir, 'build', '0', '0'), '--reads', '--format', 'json'], { cwd: dir })).stdout) as AccessRow[];
  const listers = reads.filter((a) => a.path.endsWith('/libc.so.6') && /ld-linux|\/true$/.test(a.exe));
  t.true(listers.length >= 4, JSON.stringify(listers));
});

// The combined ld.so reads uwrx's preload list in place of /etc/ld.so.preload; the
// libraries that file names (the host's, or written during the run) are preloaded after
// uwrx's all the same, listed by ldd, and the file's read or absence is recorded.
test('/etc/ld.so.preload written during a run preloads its libraries, and ldd lists them', async (t) => {
  const dir = scratchDir('uwrx-preload-');
  scratch.push(dir);
  writeFileSync(path.join(dir, 'pre.c'), '#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { fputs("preloaded\\n", stderr); }\n');
  const lib = path.join(dir, 'pre.so');
  const built = spawnSync('gcc', ['-shared', '-fPIC', '-o', lib, path.join(dir, 'pre.c')], { encoding: 'utf8' });
  t.is(built.status, 0, built.stderr);
  const script = `/bin/true; echo ${lib} > /etc/ld.so.preload; /bin/true; ldd /bin/true | grep -c ${lib}; ` +
    `echo /nonexistent/x.so >> /etc/ld.so.preload; /bin/echo two; rm /etc/ld.so.preload; /bin/true; echo end`;
  const r = await uwrx(['run', '--quiet', '--', 'sh', '-c', script], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '1\ntwo\nend\n');
  // true, ldd's bash and grep, then echo with a second name that cannot be loaded, then rm
  const lines = r.stderr.split('\n').filter(Boolean);
  t.deepEqual(lines.filter((l) => l === 'preloaded').length, 5, r.stderr);
  t.true(lines.some((l) => /object '\/nonexistent\/x\.so' from \/etc\/ld\.so\.preload cannot be preloaded/.test(l)), r.stderr);
  t.false(lines.some((l) => /uwrx-rec/.test(l)), r.stderr);
  const reads = JSON.parse((await uwrx(['inspect', 'files', path.join(dir, 'build', '0', '0'), '--reads', '--format', 'json'], { cwd: dir })).stdout) as AccessRow[];
  const ofList = (exe: RegExp) => reads.filter((a) => a.path === '/etc/ld.so.preload' && exe.test(a.exe)).map((a) => a.op);
  t.deepEqual(ofList(/\/true$/), ['missing', 'read', 'missing']);
  t.true(reads.some((a) => a.path === lib && a.op === 'read' && /\/echo$/.test(a.exe)));
  t.false(existsSync('/etc/ld.so.preload') && readFileSync('/etc/ld.so.preload', 'utf8').includes(lib));
});
