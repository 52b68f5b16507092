import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { combineLdso, ldsoCacheDir, writeCombinedLdso } from '../src/reproducibility/ldso-combine.js';
import { LDSO_PATH, measureShimExecCost } from '../src/reproducibility/shim-bench.js';
import { buildDriver, driverDir, nativeDir } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';

execFileSync('make', ['-s', '-C', nativeDir, 'out/uwrx-shim'], { stdio: 'inherit' });
const shim = join(nativeDir, 'out/uwrx-shim');
// The probe twice: with the shim as its PT_INTERP (no mount needed), and as usual.
const probeShimmed = buildDriver('probe-shimmed', ['test/native/repro_probe.c'], [`-Wl,--dynamic-linker=${shim}`]);
const probe = buildDriver('probe', ['test/native/repro_probe.c']);
const stub = buildDriver('control_stub', ['test/native/control_stub.c']);
// The combined form: the real ld.so with the shim appended as a segment.
const work = mkdtempSync(join(tmpdir(), 'uwrx-shim-test-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const combined = join(work, 'ld-combined.so');
writeFileSync(combined, combineLdso(readFileSync(LDSO_PATH), readFileSync(shim)));
chmodSync(combined, 0o755);
const probeCombined = buildDriver('probe-combined', ['test/native/repro_probe.c'], [`-Wl,--dynamic-linker=${combined}`]);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function field(output: string, key: string): string | undefined {
  return output.split('\n').find((l) => l.startsWith(key + '='))?.slice(key.length + 1);
}

function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

const hasReadelf = ensureCommands({ readelf: 'binutils' }).length === 0;
(hasReadelf ? test : test.skip)(`the shim needs no relocation processing and carries its marker note${hasReadelf ? '' : ' (needs readelf, not installable here)'}`, (t) => {
  t.regex(execFileSync('readelf', ['-r', shim]).toString(), /no relocations/);
  t.regex(execFileSync('readelf', ['-n', shim]).toString(), /uwrx\s+0x00000004/);
});

test('with ld.so\'s own opens and stats sent to the shim\'s hook, the combined ld.so runs programs as before', (t) => {
  // outside uwrx the hook gets no recorder buffer: every call is made as it was, through
  // the rewritten sites, their stubs and the hook (registers, red zone, dlopen)
  const bytes = combineLdso(readFileSync(LDSO_PATH), readFileSync(shim), true);
  const info = bytes.indexOf(Buffer.from('uwrx-shim-info1\0', 'latin1'));
  t.true(bytes.readUInt32LE(info + 24) > 0, 'some of ld.so\'s system calls were rewritten');
  // ld.so's check that /etc/ld.so.preload exists among them: its own path stays
  // and its mmap and munmap (the preload list), after them
  t.deepEqual([...bytes.hooked].sort((a, b) => a - b), [9, 11, 21, 257, 262]);
  t.true(bytes.includes(Buffer.from('/etc/ld.so.preload\0')));
  const hooked = join(work, 'ld-hooked.so');
  writeFileSync(hooked, bytes);
  chmodSync(hooked, 0o755);
  t.deepEqual(run(hooked, ['/bin/echo', 'hi']), { status: 0, stdout: 'hi\n', stderr: '' });
  t.regex(run(hooked, ['--list', '/bin/ls']).stdout, /libc\.so\.6 => /);
  const py = run(hooked, ['/usr/bin/python3', '-c', 'import ctypes, json; ctypes.CDLL("libz.so.1"); print(json.dumps([1]))']);
  t.deepEqual(py, { status: 0, stdout: '[1]\n', stderr: '' });
});

test('run directly, the shim runs a program as ld.so would', (t) => {
  t.deepEqual(run(shim, ['/bin/echo', 'hi']), { status: 0, stdout: 'hi\n', stderr: '' });
  const listed = run(shim, ['--list', '/bin/true']);
  t.is(listed.status, 0);
  t.regex(listed.stdout, /libc\.so\.6 => /);
  t.is(run(shim, ['/bin/sh', '-c', 'exit 7']).status, 7);
});

test('as the interpreter: no vDSO, real clock syscalls, kernel AT_RANDOM kept outside uwrx', (t) => {
  const plain = run(probe, []);
  const shimmed = run(probeShimmed, []);
  t.is(shimmed.status, 0, shimmed.stderr);
  t.not(field(plain.stdout, 'vdso'), '0');
  t.is(field(shimmed.stdout, 'vdso'), '0');
  // Not under uwrx the control call fails with ENOSYS: AT_RANDOM stays the kernel's.
  t.regex(field(shimmed.stdout, 'at_random') ?? '', /^[0-9a-f]{32}$/);
  t.not(field(shimmed.stdout, 'at_random'), field(run(probeShimmed, []).stdout, 'at_random'));
  if (!hasTool('strace')) return;
  const traced = (p: string) => run('strace', ['-f', '-e', 'trace=clock_gettime,gettimeofday,time', p]).stderr;
  const real = traced(probeShimmed);
  t.regex(real, /clock_gettime\(CLOCK_REALTIME/);
  t.regex(real, /clock_gettime\(CLOCK_MONOTONIC/);
  t.regex(real, /gettimeofday\(/);
  t.regex(real, /time\(NULL\)/);
  t.notRegex(traced(probe), /clock_gettime\(CLOCK_REALTIME/); // the vDSO answers
});

test('under a control handler: AT_RANDOM comes from it, a skip replays output and status', (t) => {
  const bytes = '00112233445566778899aabbccddeeff';
  const ran = run(stub, [bytes, '0', probeShimmed]);
  t.is(ran.status, 0, ran.stderr);
  t.is(field(ran.stdout, 'at_random'), bytes);
  t.regex(ran.stderr, /control: op=1\n/);
  const direct = run(stub, [bytes, '0', shim, probe]);
  t.is(field(direct.stdout, 'at_random'), bytes, 'also when the shim is run as a program');
  const skipped = run(stub, [bytes, String(0x100 | 42), probeShimmed]);
  t.is(skipped.status, 42);
  t.is(skipped.stdout, 'recorded stdout\n');
  t.regex(skipped.stderr, /recorded stderr\n/);
});

test('combined ld.so: one more PT_LOAD at the end, entry in the shim, ld.so otherwise intact', (t) => {
  const ldso = readFileSync(LDSO_PATH);
  const out = readFileSync(combined);
  t.true(out.subarray(0x40, ldso.length).equals(ldso.subarray(0x40)));
  t.throws(() => combineLdso(out, readFileSync(shim)), { message: 'ld.so: already combined with the uwrx shim' });
  if (hasTool('readelf')) {
    // every header ld.so has is kept (its PT_NOTE names the build id that debuggers and
    // valgrind find its symbols by), and one PT_LOAD more
    const types = (file: string) => execFileSync('readelf', ['-lW', file]).toString().split('\n')
      .filter((l) => /^\s+[A-Z_]+\s+0x/.test(l)).map((l) => l.trim().split(/\s+/)[0]!);
    const before = types(LDSO_PATH);
    const after = types(combined);
    t.true(before.includes('NOTE'));
    t.deepEqual([...after].sort(), [...before, 'LOAD'].sort());
    t.is(execFileSync('readelf', ['-nW', combined]).toString().match(/Build ID: \w+/)?.[0],
      execFileSync('readelf', ['-nW', LDSO_PATH]).toString().match(/Build ID: \w+/)?.[0]);
    const headers = execFileSync('readelf', ['-lW', combined]).toString();
    const loads = headers.split('\n').filter((l) => /^\s+LOAD/.test(l));
    t.regex(loads.at(-1)!, /R E 0x1000$/);
    t.regex(execFileSync('readelf', ['--dyn-syms', '-W', combined]).toString(), /_dl_catch_exception@@GLIBC_PRIVATE/);
  }
});

test('combined ld.so: direct runs, interpreter runs, and AT_RANDOM from the control call', (t) => {
  t.deepEqual(run(combined, ['/bin/echo', 'hi']), { status: 0, stdout: 'hi\n', stderr: '' });
  t.regex(run(combined, ['--list', '/bin/true']).stdout, /libc\.so\.6 => /);
  const shimmed = run(probeCombined, []);
  t.is(shimmed.status, 0, shimmed.stderr);
  t.is(field(shimmed.stdout, 'vdso'), '0');
  const bytes = 'ffeeddccbbaa99887766554433221100';
  t.is(field(run(stub, [bytes, '0', probeCombined]).stdout, 'at_random'), bytes);
  t.is(field(run(stub, [bytes, '0', combined, probe]).stdout, 'at_random'), bytes);
  t.is(run(stub, [bytes, String(0x100 | 3), probeCombined]).stdout, 'recorded stdout\n');
});

test.serial('the combined ld.so is made once per ld.so and shim, kept in the per-user cache, and copied for each run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'uwrx-ldso-cache-'));
  const saved = process.env.XDG_CACHE_HOME;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  process.env.XDG_CACHE_HOME = join(dir, 'cache');
  const cacheDir = ldsoCacheDir();
  t.is(cacheDir, join(dir, 'cache', 'uwrx'));
  const realLdso = join(dir, 'ld.so');
  copyFileSync(LDSO_PATH, realLdso);
  await writeCombinedLdso(realLdso, join(dir, 'first'), shim);
  t.true(readFileSync(join(dir, 'first')).equals(readFileSync(combined)));
  t.is(statSync(join(dir, 'first')).mode & 0o777, 0o755);
  const [entry, ...others] = readdirSync(cacheDir);
  t.deepEqual(others, []);
  // a hit copies the cached bytes: what the cache holds is what the run gets
  const cached = join(cacheDir, entry!);
  const marked = Buffer.from(readFileSync(cached));
  marked[marked.length - 1] ^= 0xff;
  writeFileSync(cached, marked);
  await writeCombinedLdso(realLdso, join(dir, 'second'), shim);
  t.true(readFileSync(join(dir, 'second')).equals(marked));
  // another ld.so (here: the same bytes, changed on disk) gets its own entry
  utimesSync(realLdso, new Date(0), new Date(0));
  await writeCombinedLdso(realLdso, join(dir, 'third'), shim);
  t.true(readFileSync(join(dir, 'third')).equals(readFileSync(combined)));
  t.is(readdirSync(cacheDir).length, 2);
  // a preload list is part of the key
  await writeCombinedLdso(realLdso, join(dir, 'fourth'), shim, '/dev/.uwrx-preload');
  t.is(readdirSync(cacheDir).length, 3);
  t.false(readFileSync(join(dir, 'fourth')).equals(readFileSync(combined)));
  // an unwritable cache is no error
  process.env.XDG_CACHE_HOME = join(dir, 'first'); // a file: no directory can be made there
  await writeCombinedLdso(realLdso, join(dir, 'fifth'), shim);
  t.true(readFileSync(join(dir, 'fifth')).equals(readFileSync(combined)));
});

function inMountNamespace(script: string, env: NodeJS.ProcessEnv) {
  const unshare = process.getuid?.() === 0 ? ['-m'] : ['-Urm'];
  return run('unshare', [...unshare, '--propagation', 'private', 'sh', '-c', script], env);
}

// Binding over the dynamic linker needs a private mount namespace of our own.
const canUnshare = inMountNamespace('true', process.env).status === 0;
const nsTest = (title: string, body: (t: import('ava').ExecutionContext) => void | Promise<void>) =>
  canUnshare ? test(title, body) : test.skip(`${title} (needs unshare -m, which fails here)`, body);

nsTest('bind-mounted over the dynamic linker in a private mount namespace, programs run', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'uwrx-shim-ns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const realLdso = join(dir, 'ld.so');
  copyFileSync(LDSO_PATH, realLdso);
  const env = { ...process.env, UWRX_LDSO: realLdso, SHIM: shim, PROBE: probe };
  const script = `set -e
mount --bind "$SHIM" ${LDSO_PATH}
/bin/true
ls / >/dev/null
python3 -c 'print(1)'
gcc --version | head -n 1
"$PROBE"
${LDSO_PATH} --list /bin/true | grep -c libc.so.6`;
  const r = inMountNamespace(script, env);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^1\n/);
  t.regex(r.stdout, /^gcc /m);
  t.is(field(r.stdout, 'vdso'), '0', 'an ordinary binary (PT_INTERP ' + LDSO_PATH + ') lost its vDSO');
  t.regex(r.stdout, /^1$/m);
});

nsTest('combined ld.so bound over the dynamic linker: programs run and C and C++ programs link', (t) => {
  const env = { ...process.env, COMBINED: combined, WORK: work };
  const script = `set -e
mount --bind "$COMBINED" ${LDSO_PATH}
/bin/true
python3 -c 'print(1)'
printf '#include <stdio.h>\\nint main(void){puts("linked");return 0;}\\n' > "$WORK/hello.c"
cc -o "$WORK/hello" "$WORK/hello.c"
"$WORK/hello"
printf 'int main(){return 0;}\\n' > "$WORK/x.cc"
g++ -o "$WORK/x" "$WORK/x.cc"
"$WORK/x"
cc -o "$WORK/probe" "$PROBE_SRC"
"$WORK/probe"
if command -v strace >/dev/null; then strace -f -e trace=clock_gettime "$WORK/probe" 2>&1 >/dev/null | grep -c 'clock_gettime(CLOCK_MONOTONIC'; fi`;
  const r = inMountNamespace(script, { ...env, PROBE_SRC: join(driverDir, 'repro_probe.c') });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^1\nlinked\n/);
  t.is(field(r.stdout, 'vdso'), '0');
  if (hasTool('strace')) t.regex(r.stdout, /\n1\n$/, 'clock_gettime(CLOCK_MONOTONIC) is a real syscall');
});

nsTest('the shim cost benchmark runs', async (t) => {
  for (const form of ['combined', 'private-path'] as const) {
    const r = await measureShimExecCost({ runs: 40, rounds: 2, form });
    t.log(
      `${form}: ${r.runs} execs of ${r.program}: wall ${r.withoutShimUs.toFixed(0)} -> ${r.withShimUs.toFixed(0)} us (x${r.ratio.toFixed(3)}), ` +
        `CPU ${r.withoutShimCpuUs.toFixed(0)} -> ${r.withShimCpuUs.toFixed(0)} us (x${r.cpuRatio.toFixed(3)})`,
    );
    t.true(r.ratio > 0 && r.cpuRatio > 0);
  }
});
