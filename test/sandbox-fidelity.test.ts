// Inside the sandbox, programs meet the host as they know it: the same rights on the
// same directories, writes below directories other users made for everyone, the same
// terminal name. Each check runs real commands as root and as an unprivileged user.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs, existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callerMode } from '../src/sandbox/plan.js';
import { ensureCommands } from './helpers/packages.js';
import { latestAttempt, removeLater, removeWorkDirs, runUwrx, runners, uwrxArgv, workDir, type Runner } from './helpers/sandbox-users.js';

test.after.always(removeWorkDirs);

// script(1) gives a command a terminal of the host's /dev/pts.
const hasScript = ensureCommands({ script: 'bsdutils' }).length === 0;
const withScript = hasScript ? test.serial : test.serial.skip;

/** Runs `sh -c script` on the host as the runner. */
function onHost(r: Runner, script: string): string {
  const [cmd, ...args] = [...r.prefix, 'sh', '-c', script];
  const out = spawnSync(cmd!, args, { cwd: '/', encoding: 'utf8' });
  return out.stdout;
}

/** A directory made by the test's own user (root when the runner is unprivileged). */
async function othersDir(mode: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'uwrx-fidelity-'));
  removeLater(dir);
  await fs.chmod(dir, mode);
  return dir;
}

const shared = ['/etc', '/usr', '/tmp', '/var/tmp'];

test('owner bits carry the caller\'s rights; group and other bits stay', (t) => {
  const stat = (uid: number, gid: number, mode: number) => ({ uid, gid, mode: 0o40000 | mode }) as Parameters<typeof callerMode>[1];
  // a caller other than this process: judged from the mode bits
  const caller = { uid: 4242, gid: 4242 };
  t.is(callerMode('/x', stat(0, 0, 0o755), caller), 0o555);
  t.is(callerMode('/x', stat(0, 0, 0o1777), caller), 0o1777);
  t.is(callerMode('/x', stat(0, 0, 0o700), caller), 0o000);
  t.is(callerMode('/x', stat(0, 4242, 0o2775), caller), 0o2775);
  t.is(callerMode('/x', stat(4242, 0, 0o500), caller), 0o500);
});

for (const r of runners) {
  test.serial(`${r.name}: the top-level directories grant what they grant on the host`, async (t) => {
    const dir = await workDir(r);
    // `test -w` asks access(2); touch tries for real (only inside: outside it would write)
    const probe = shared.map((p) => `test -w ${p} && echo ${p} w || echo ${p} -`).join('; ');
    const expected = onHost(r, probe);
    t.regex(expected, /\/tmp w/);
    const touch = shared.map((p) => `touch ${p}/uwrx-fidelity-probe 2>/dev/null && echo ${p} w || echo ${p} -`).join('; ');
    const out = await runUwrx(r, dir, ['sh', '-c', `${probe}; ${touch}; ls -ldn ${shared.join(' ')}`]);
    t.is(out.code, 0, out.stderr);
    const lines = out.stdout.split('\n');
    t.is(lines.slice(0, shared.length).join('\n') + '\n', expected);
    t.is(lines.slice(shared.length, 2 * shared.length).join('\n') + '\n', expected);
    if (r.uid !== 0) t.regex(expected, /\/etc -/);
    else t.regex(expected, /\/etc w/);
    // modes as on the host, but for the owner's bits of an unprivileged caller's own
    // directories (they carry the caller's rights)
    const hostLs = onHost(r, `ls -ldn ${shared.join(' ')}`).split('\n');
    const inside = lines.slice(2 * shared.length);
    for (let i = 0; i < shared.length; i++) {
      const [hostMode, , hostUid] = hostLs[i]!.split(/\s+/);
      const [mode, , uid] = inside[i]!.split(/\s+/);
      if (r.uid === 0) {
        t.is(mode, hostMode, shared[i]);
        t.is(uid, hostUid, shared[i]);
      } else {
        t.is(mode!.slice(4), hostMode!.slice(4), shared[i]);
        t.true([String(r.uid), '65534'].includes(uid!), `${shared[i]} owner ${uid}`);
      }
    }
    const files = path.join(out.attemptDir, 'files');
    t.is(existsSync(path.join(files, 'etc/uwrx-fidelity-probe')), r.uid === 0);
    t.true(existsSync(path.join(files, 'tmp/uwrx-fidelity-probe')));
    // the record keeps the host's modes
    t.is((await fs.stat(path.join(files, 'tmp'))).mode & 0o7777, (await fs.stat('/tmp')).mode & 0o7777);
    t.false(existsSync('/tmp/uwrx-fidelity-probe'));
  });

  test.serial(`${r.name}: writes below directories of other owners (copy-up)`, async (t) => {
    // a world-writable directory another user made, one the command leaves alone, and a
    // working directory of the runner's inside a directory it may not write
    const open = await othersDir(0o1777);
    const untouched = await othersDir(0o777);
    const parent = await othersDir(0o755);
    const cwd = path.join(parent, 'w');
    await fs.mkdir(cwd);
    await fs.chown(cwd, r.uid, r.gid);
    // deeper: named in the command line only
    const deep = path.join(await othersDir(0o755), 'a', 'b');
    await fs.mkdir(deep, { recursive: true, mode: 0o777 });
    await fs.chmod(deep, 0o777);
    const script = [
      `echo a > ${open}/f && mkdir ${open}/sub && echo b > ${open}/sub/g`,
      'echo c > /var/tmp/uwrx-fidelity-' + path.basename(cwd) + path.basename(parent),
      'echo d > out',
      `echo e > ${deep}/h`,
      `touch ${parent}/denied 2>/dev/null && echo parent-written || echo parent-denied`,
    ].join(' && ');
    const out = await runUwrx(r, cwd, ['sh', '-c', script]);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, r.uid === 0 ? 'parent-written\n' : 'parent-denied\n');
    const files = path.join(latestAttempt(path.join(cwd, 'build')), 'files');
    t.is(readFileSync(path.join(files, open, 'f'), 'utf8'), 'a\n');
    t.is(readFileSync(path.join(files, open, 'sub/g'), 'utf8'), 'b\n');
    t.is(readFileSync(path.join(files, cwd, 'out'), 'utf8'), 'd\n');
    t.is(readFileSync(path.join(files, deep, 'h'), 'utf8'), 'e\n');
    t.is((await fs.stat(path.join(files, path.dirname(deep)))).mode & 0o7777, 0o755);
    t.is(readFileSync(path.join(files, 'var/tmp', 'uwrx-fidelity-' + path.basename(cwd) + path.basename(parent)), 'utf8'), 'c\n');
    // the directories keep the host's modes in the record; untouched ones are absent
    t.is((await fs.stat(path.join(files, open))).mode & 0o7777, 0o1777);
    t.is((await fs.stat(path.join(files, parent))).mode & 0o7777, 0o755);
    t.false(existsSync(path.join(files, untouched)));
    t.false(existsSync(path.join(open, 'f')));
    t.false(existsSync(path.join(cwd, 'out')));
  });

  withScript(`${r.name}: the terminal keeps its name, new terminals work${hasScript ? '' : ' (needs script(1), not installable here)'}`, async (t) => {
    const dir = await workDir(r);
    const inner = 'tty; script -qec tty /dev/null; python3 -c "import os, pty; m, s = pty.openpty(); print(os.ttyname(s))"';
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const line = `tty; ${uwrxArgv(dir, ['sh', '-c', inner]).map(quote).join(' ')}`;
    // script(1) gives the whole line a pty of the host's /dev/pts
    const [cmd, ...args] = [...r.prefix, 'script', '-qec', line, '/dev/null'];
    const child = spawn(cmd!, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    t.is(code, 0, stdout);
    const lines = stdout.replace(/\^@|[\r\0]/g, '').split('\n').filter((l) => l && !l.startsWith('uwrx:'));
    t.is(lines.length, 4, stdout);
    t.regex(lines[0]!, /^\/dev\/pts\/\d+$/);
    t.is(lines[1], lines[0]);
    for (const fresh of lines.slice(2)) {
      t.regex(fresh, /^\/dev\/pts\/\d+$/);
      t.not(fresh, lines[0]);
    }
  });
}

for (const r of runners) {
  test.serial(`${r.name}: the root and its top-level entries show the host's times`, async (t) => {
    const dir = await workDir(r);
    // the root is a tmpfs uwrx fills, its symlinks (/bin on merged-/usr systems) made
    // there, its directories overlays (/usr: one whose entries no other test changes
    // meanwhile): all show the times they have on the host
    const links = readdirSync('/').map((n) => '/' + n).filter((p) => lstatSync(p).isSymbolicLink());
    const names = ['/', '/usr', ...links];
    const out = await runUwrx(r, dir, ['stat', '-c', '%n %.9Y', ...names]);
    t.is(out.code, 0, out.stderr);
    const host = names.map((p) => `${p} ${nanoSeconds(lstatSync(p, { bigint: true }).mtimeNs)}`);
    t.deepEqual(out.stdout.trim().split('\n'), host);
  });
}

/** A time in ns as stat's %.9Y prints it. */
function nanoSeconds(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

for (const r of runners) {
  test.serial(`${r.name}: pid_max is the host's, so ps prints its columns as wide`, async (t) => {
    const missing = ensureCommands({ ps: 'procps' });
    if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
    const dir = await workDir(r);
    const host = readFileSync('/proc/sys/kernel/pid_max', 'utf8');
    const out = await runUwrx(r, dir, ['sh', '-c', 'cat /proc/sys/kernel/pid_max; ps -o pid= -p $$ | cat -A']);
    t.is(out.code, 0, out.stderr);
    const [inside, column] = out.stdout.split('\n');
    t.is(inside + '\n', host);
    // procps pads a pid to the width of pid_max
    t.is(column!.replace(/\$$/, '').length, Math.max(5, host.trim().length));
  });
}

for (const r of runners) {
  test.serial(`${r.name}: the capability sets and no_new_privs are the caller's`, async (t) => {
    const dir = await workDir(r);
    // Seccomp (the filter) is the one line that must differ
    const probe = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status';
    const expected = onHost(r, probe);
    t.regex(expected, /NoNewPrivs:\s+0/);
    const out = await runUwrx(r, dir, ['sh', '-c', probe]);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, expected);
  });
}

for (const r of runners) {
  test.serial(`${r.name}: the host's mounts below /sys are there, so cgroup limits read as on the host`, async (t) => {
    const dir = await workDir(r);
    // mount points below /sys (a JVM finds its cgroup hierarchies this way), then the
    // listing of the cgroup directory and this process's cgroup lines
    const probe = "awk '$5 ~ /^\\/sys\\// {print $5}' /proc/self/mountinfo | sort; ls /sys/fs/cgroup 2>&1; cat /proc/self/cgroup";
    const expected = onHost(r, probe);
    if (!expected.includes('/sys/')) t.log('the host mounts nothing below /sys: only the listings are compared');
    const out = await runUwrx(r, dir, ['sh', '-c', probe]);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, expected);
    // read-only: a build changes no cgroup of the host (a limit's own value written
    // back, so that a write that got through would change nothing)
    const limits = ['memory.soft_limit_in_bytes', 'cpu.shares', 'memory.high', 'cpu.weight'].map((n) => `-name ${n}`).join(' -o ');
    const file = expected.includes('/sys/fs/cgroup') ? onHost(r, `find /sys/fs/cgroup -maxdepth 4 -type f \\( ${limits} \\) | head -1`).trim() : '';
    if (file) {
      const write = await runUwrx(r, dir, ['sh', '-c', `v=$(cat ${file}) && (echo "$v" > ${file}) 2>&1; echo $?`]);
      t.regex(write.stdout, /Read-only file system\n[1-9]\d*\n$/, write.stdout);
    } else t.log('no cgroup limit file to try a write on');
  });
}
