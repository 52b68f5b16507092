// Tools that lean on the kernel in ways a build rarely does (namespaces of their own,
// ptrace, file locks, sessions, pseudo-terminals, LD_PRELOAD, timers) print and exit
// under `uwrx run --` as they do without it. Each case runs natively and under uwrx in
// the same directory and compares stdout, stderr and the exit status.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

interface Case {
  name: string;
  /** command -> Debian package, installed when missing */
  needs: Record<string, string>;
  /** run by sh -c in a scratch directory (with ./crash, a program that crashes, where gcc is needed) */
  script: string;
  /** what both runs print (checked once, on the native run: the case tests something) */
  expect: RegExp;
}

const cases: Case[] = [
  {
    name: 'timeout ends a command at its time limit with status 124, and by KILL with 137',
    needs: { timeout: 'coreutils' },
    script: 'timeout 0.3 sleep 5; echo rc=$?; timeout -s KILL 0.2 sh -c \'trap "" TERM; sleep 3\'; echo rc=$?',
    expect: /^rc=124\nrc=137\n$/,
  },
  {
    name: 'flock: a lock held by one process is refused to another',
    needs: { flock: 'util-linux' },
    script: 'flock lockfile sh -c \'flock -n lockfile true; echo inner=$?\'; flock -n lockfile true; echo after=$?',
    expect: /^inner=1\nafter=0\n$/,
  },
  {
    name: 'setsid: a command in a session of its own',
    needs: { setsid: 'util-linux', ps: 'procps' },
    script: 'setsid -w sh -c \'test "$(ps -o sid= -p $$)" -eq $$ && echo leads its session\'; echo rc=$?',
    expect: /^leads its session\nrc=0\n$/,
  },
  {
    name: 'unshare: a user namespace and a mount namespace inside the sandbox',
    needs: { unshare: 'util-linux' },
    script: 'unshare -r id -u; unshare -rm sh -c \'mount -t tmpfs none /mnt && touch /mnt/x && ls /mnt\'; echo rc=$?',
    expect: /^0\nx\nrc=0\n$/,
  },
  {
    name: 'bubblewrap: a sandbox inside the sandbox',
    needs: { bwrap: 'bubblewrap' },
    script: 'bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp sh -c \'echo inside > /tmp/f && cat /tmp/f\'; echo rc=$?',
    expect: /^inside\nrc=0\n$/,
  },
  {
    // (as root the chown is real as well: its library still answers through its daemon)
    name: 'fakeroot: its LD_PRELOAD library and daemon answer for the owner of a file',
    needs: { fakeroot: 'fakeroot' },
    script: 'fakeroot sh -c \'touch owned && chown 123:456 owned && stat -c "%u %g" owned && id -u\'',
    expect: /^123 456\n0\n$/,
  },
  {
    name: 'gdb runs a program under ptrace and stops at its crash',
    needs: { gdb: 'gdb', gcc: 'gcc' },
    script: 'gdb -q -batch -ex run -ex "info registers rip" ./crash 2>&1 | grep -c -e SIGSEGV -e "^rip"',
    expect: /^2\n$/,
  },
  {
    name: 'expect drives a program through a pseudo-terminal',
    needs: { expect: 'expect' },
    script: 'expect -c \'spawn sh -c "tty >/dev/null && echo on a terminal"; expect "on a terminal"; puts matched\' | tr -d "\\r"',
    expect: /^spawn sh -c tty >\/dev\/null && echo on a terminal\non a terminal\nmatched\n$/,
  },
];

for (const c of cases) {
  test(c.name, async (t) => {
    const missing = ensureCommands(c.needs);
    if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
    const dir = scratchDir('uwrx-tools-');
    t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, 'crash.c'), 'int main(void) { volatile int *p = 0; return *p; }\n');
    if (c.needs.gcc) t.is(spawnSync('gcc', ['-g', '-o', 'crash', 'crash.c'], { cwd: dir }).status, 0);
    // under uwrx first: its writes go to the record, and the native run starts from the same files
    const under = await uwrx(['run', '--quiet', '--', 'sh', '-c', c.script], { cwd: dir });
    const native = spawnSync('sh', ['-c', c.script], { cwd: dir, encoding: 'utf8' });
    t.regex(native.stdout, c.expect, native.stderr);
    t.is(under.stdout, native.stdout, under.stderr);
    t.is(under.stderr, native.stderr);
    t.is(under.status, native.status);
  });
}
