// The sandbox as users meet it: `uwrx run` on real commands, then a look at the real
// filesystem and at the record. Every scenario runs as the current user and, when that
// is root, again as an unprivileged user.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { promises as fs, existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readProcessTable, type ProcessRecord } from '../src/sandbox/index.js';
import { latestAttempt, removeWorkDirs, runUwrx as uwrx, runners, startUwrx, workDir } from './helpers/sandbox-users.js';
import { uwrxBin } from './helpers/uwrx.js';

test.after.always(removeWorkDirs);

const argvOf = (p: ProcessRecord) => p.argv.map((a) => a.toString());

/** Processes running exactly `argv` (nothing of the sandbox may outlive uwrx). */
function survivors(...argv: string[]): number[] {
  const found: number[] = [];
  const wanted = argv.join('\0') + '\0';
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') === wanted) found.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

for (const r of runners) {
  test.serial(`${r.name}: writes land in files/, the real filesystem is untouched`, async (t) => {
    const dir = await workDir(r);
    const real = path.join(dir, 'real-file');
    await fs.writeFile(real, 'keep me\n');
    await fs.chown(real, r.uid, r.gid);
    const q = `/tmp/uwrx-q-${path.basename(dir)}`;
    // /etc as on the host: writable for root only (an ordinary user writes /var/tmp)
    const probe = r.uid === 0 ? '/etc/uwrx-probe' : `/var/tmp/uwrx-probe-${path.basename(dir)}`;
    const out = await uwrx(r, dir, ['sh', '-c', `echo x > ${probe}; rm -f ${real}; mkdir -p ${q} && echo y > ${q}/z`]);
    t.is(out.code, 0, out.stderr);
    t.is(readFileSync(real, 'utf8'), 'keep me\n');
    t.false(existsSync(probe));
    t.false(existsSync(q));
    const files = path.join(out.attemptDir, 'files');
    t.is(readFileSync(path.join(files, probe), 'utf8'), 'x\n');
    t.is(readFileSync(path.join(files, q, 'z'), 'utf8'), 'y\n');
    const whiteout = await fs.lstat(path.join(files, real));
    t.true(whiteout.isCharacterDevice());
    t.is(whiteout.rdev, 0);
  });

  test.serial(`${r.name}: an orphan is waited for and its writes captured`, async (t) => {
    const dir = await workDir(r);
    const late = `/tmp/uwrx-late-${path.basename(dir)}`;
    const out = await uwrx(r, dir, ['sh', '-c', `(sleep 1; echo late > ${late}) & exit 0`]);
    t.is(out.code, 0, out.stderr);
    t.true(out.ms >= 1000);
    t.is(readFileSync(path.join(out.attemptDir, 'files', late), 'utf8'), 'late\n');
    t.false(existsSync(late));
  });

  test.serial(`${r.name}: logical pids, tree keys and exit statuses in the process table`, async (t) => {
    const dir = await workDir(r);
    const script = 'sh -c "exit 0"; (exit 3); sh -c "kill -TERM \\$\\$"; sleep 5 & sleep 0.3; kill -9 $!; wait; exit 7';
    const first = await uwrx(r, dir, ['sh', '-c', script]);
    t.is(first.code, 7, first.stderr);
    const procs = await readProcessTable(first.attemptDir);
    t.deepEqual(procs.map((p) => p.pid), procs.map((_, i) => i + 2));
    for (let i = 1; i < procs.length; i++) t.true(procs[i]!.start >= procs[i - 1]!.start);
    const byArgv = (...argv: string[]) => procs.find((p) => JSON.stringify(argvOf(p)) === JSON.stringify(argv));
    t.like(byArgv('sh', '-c', script), { pid: 2, ppid: 1, key: '1.0', exitCode: 7, signal: null });
    t.like(byArgv('sh', '-c', 'exit 0'), { ppid: 2, exitCode: 0 });
    t.like(byArgv('sh', '-c', 'kill -TERM $$'), { exitCode: null, signal: 15 });
    t.like(byArgv('sleep', '5'), { exitCode: null, signal: 9 });
    t.truthy(procs.find((p) => p.argv.length === 0 && p.exitCode === 3), 'the subshell (exit 3)');
    t.is(byArgv('sleep', '5')!.exe?.toString(), '/usr/bin/sleep');
    t.is(byArgv('sleep', '5')!.cwd?.toString(), dir);

    const second = await uwrx(r, dir, ['sh', '-c', script]);
    const again = await readProcessTable(second.attemptDir);
    const keys = (list: ProcessRecord[]) => list.map((p) => [p.key, argvOf(p)]).sort();
    t.deepEqual(keys(again), keys(procs));
  });

  test.serial(`${r.name}: a parallel C build runs and its outputs stay in the record`, async (t) => {
    const dir = await workDir(r);
    const src = path.join(dir, 'src');
    await fs.mkdir(src);
    await fs.writeFile(path.join(src, 'a.c'), 'int a(void) { return 20; }\n');
    await fs.writeFile(path.join(src, 'b.c'), 'int b(void) { return 22; }\n');
    await fs.writeFile(path.join(src, 'main.c'),
      '#include <stdio.h>\nint a(void);\nint b(void);\nint main(void) { printf("sum %d\\n", a() + b()); return 0; }\n');
    await fs.writeFile(path.join(src, 'Makefile'),
      'prog: a.o b.o main.o\n\tgcc -o $@ $^\n%.o: %.c\n\tgcc -O1 -c -o $@ $<\n');
    for (const f of await fs.readdir(src)) await fs.chown(path.join(src, f), r.uid, r.gid);
    await fs.chown(src, r.uid, r.gid);
    const out = await uwrx(r, src, ['sh', '-c', 'make -s -j2 && ./prog']);
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, 'sum 42\n');
    // the build dir is src/build here: uwrx() looked there
    for (const f of ['a.o', 'b.o', 'main.o', 'prog']) {
      t.true(existsSync(path.join(out.attemptDir, 'files', src, f)), f);
      t.false(existsSync(path.join(src, f)), f);
    }
    const procs = await readProcessTable(out.attemptDir);
    t.true(procs.filter((p) => p.exe?.toString().endsWith('/cc1')).length === 3);
  });

  test.serial(`${r.name}: only loopback inside, isolated from the host's`, async (t) => {
    const dir = await workDir(r);
    const host = net.createServer((s) => s.end('host\n'));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    const port = (host.address() as net.AddressInfo).port;
    const js = [
      "const net = require('net');",
      "const fs = require('fs');",
      "console.log(fs.readdirSync('/sys/class/net').join(','));",
      "const srv = net.createServer((s) => s.end('inside'));",
      "srv.listen(0, '127.0.0.1', () => {",
      "  net.connect(srv.address().port, '127.0.0.1').on('data', (d) => {",
      "    console.log(String(d)); srv.close();",
      `    net.connect(${port}, '127.0.0.1').on('data', () => console.log('host reached'))`,
      "      .on('error', (e) => console.log(e.code));",
      '  });',
      '});',
    ].join('\n');
    const out = await uwrx(r, dir, [process.execPath, '-e', js]);
    host.close();
    t.is(out.code, 0, out.stderr);
    t.is(out.stdout, 'lo\ninside\nECONNREFUSED\n');
  });

  test.serial(`${r.name}: the overlays made ahead are attached in the plan's order, the view is the plan's`, async (t) => {
    const dir = await workDir(r);
    const [cmd, ...args] = [...r.prefix, process.execPath, uwrxBin, 'run', '--dry-run', '--build', path.join(dir, 'build'), '--', 'true'];
    const dry = spawnSync(cmd!, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, HOME: dir } });
    t.is(dry.status, 0, dry.stderr);
    // the overlays' mount points in the plan's order, and which of them are made ahead
    const planned = [...dry.stdout.matchAll(/^ *\d+ mount overlay overlay -> \S+?\/root(\/\S*) .*$/gm)];
    const ahead = planned.filter((m) => m[0].includes('(made ahead)')).length;
    t.true(ahead >= 2, `overlays made ahead: ${ahead}`);
    const out = await uwrx(r, dir, ['cat', '/proc/self/mountinfo']);
    t.is(out.code, 0, out.stderr);
    const decode = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const overlays = out.stdout.split('\n').map((l) => l.split(' ')).filter((f) => f[f.indexOf('-') + 1] === 'overlay').map((f) => decode(f[4]!));
    t.deepEqual(overlays, planned.map((m) => decode(m[1]!)));
  });

  test.serial(`${r.name}: Ctrl-C ends the run within seconds and marks it incomplete`, async (t) => {
    const dir = await workDir(r);
    const marker = `100.${process.pid}${r.uid}`;
    const child = startUwrx(r, dir, ['sleep', marker]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    // wait until the command runs inside
    for (let i = 0; i < 100 && survivors('sleep', marker).length === 0; i++) await new Promise((res) => setTimeout(res, 50));
    const sent = Date.now();
    // as from a terminal, but to uwrx alone: it must end the tree itself
    child.kill('SIGINT');
    const code = await exited;
    t.true(Date.now() - sent < 5000, `took ${Date.now() - sent} ms`);
    t.not(code, 0, stderr);
    const status = JSON.parse(readFileSync(path.join(latestAttempt(path.join(dir, 'build')), 'status'), 'utf8'));
    t.false(status.complete);
    t.deepEqual(survivors('sleep', marker), []);
  });
}

test.serial('nothing of the sandbox survives uwrx being killed', async (t) => {
  const r = runners[0]!;
  const dir = await workDir(r);
  const marker = `77.${process.pid}`;
  const child = startUwrx(r, dir, ['sh', '-c', `sleep ${marker}; true`]);
  for (let i = 0; i < 100 && survivors('sleep', marker).length === 0; i++) await new Promise((res) => setTimeout(res, 50));
  t.true(survivors('sleep', marker).length > 0);
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  for (let i = 0; i < 40 && survivors('sleep', marker).length > 0; i++) await new Promise((res) => setTimeout(res, 50));
  t.deepEqual(survivors('sleep', marker), []);
});

test.serial('the record and the run directory are absent inside; writes there are the command\'s own', async (t) => {
  const r = runners[0]!;
  const dir = await workDir(r);
  const build = path.join(dir, 'build');
  await fs.mkdir(path.join(build, '0'), { recursive: true });
  await fs.writeFile(path.join(build, '0', 'secret'), 'old record\n');
  const out = await uwrx(r, dir, ['sh', '-c',
    `ls -A ${build} 2>/dev/null || echo absent; mkdir ${build} && touch ${build}/x && ls -A ${build}; find / -xdev >/dev/null; echo ok`]);
  t.is(out.code, 0, out.stderr);
  t.is(out.stdout, 'absent\nx\nok\n');
  t.is(readFileSync(path.join(build, '0', 'secret'), 'utf8'), 'old record\n');
  t.false(existsSync(path.join(build, 'x')));
  t.true(existsSync(path.join(out.attemptDir, 'files', build, 'x')));
});

test.serial('io_uring is unavailable inside (it would bypass interception)', async (t) => {
  const r = runners[0]!;
  const dir = await workDir(r);
  const src = path.join(dir, 'uring.c');
  await fs.writeFile(src, [
    '#include <errno.h>',
    '#include <stdio.h>',
    '#include <sys/syscall.h>',
    '#include <unistd.h>',
    'int main(void) { long r = syscall(SYS_io_uring_setup, 8, NULL); printf("%ld %d\\n", r, errno); return 0; }',
    '',
  ].join('\n'));
  t.is(spawnSync('gcc', ['-o', path.join(dir, 'uring'), src]).status, 0);
  const out = await uwrx(r, dir, [path.join(dir, 'uring')]);
  t.is(out.stdout, '-1 38\n'); // ENOSYS, not EFAULT as outside
});
