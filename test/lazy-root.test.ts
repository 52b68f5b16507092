// Top-level trees the command does not start in are read-only binds of the host's
// directories until something below them changes; then their overlay is attached
// (src/native/init/lazy.c). Real programs read, write, move and remove there, before
// and after that moment, and see what they see natively; the host stays untouched.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const isRoot = process.getuid?.() === 0;
const asRoot = isRoot ? test.serial : test.serial.skip;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  attempt: string;
}

/** `sh -c script` under uwrx in a fresh project directory (under /tmp: its tree is an
 * overlay from the start, the others are lazy). */
async function run(script: string, args: string[] = [], dir = scratchDir('uwrx-lazy-')): Promise<Run> {
  const cwd = path.join(dir, 'proj');
  mkdirSync(cwd, { recursive: true });
  const r = await uwrx(['run', '--build', path.join(dir, 'build'), ...args, '--', 'sh', '-c', script], { cwd });
  const m = /record in (\S+)/.exec(r.stderr);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, attempt: m ? path.resolve(cwd, m[1]!) : '' };
}

function native(script: string): string {
  return spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout;
}

/** A name below /usr/local that neither the host nor an earlier run has. */
function fresh(name: string): string {
  const p = `/usr/local/uwrx-lazy-${name}-${process.pid}`;
  t0Absent(p);
  return p;
}

function t0Absent(p: string): void {
  if (existsSync(p)) throw new Error(`${p} exists on the host`);
}

/** The tree's mount as /proc/self/mountinfo shows it inside: its filesystem types, top last. */
const mountsOf = (dir: string) => `awk '$5 == "${dir}" { for (i = 7; $i != "-"; i++); print $(i + 1) }' /proc/self/mountinfo | tr '\\n' ' '; echo`;

test.serial('reads under /usr see what they see natively, through a read-only bind', async (t) => {
  // stat's times: a real file shows its modification time as all its times (squashed;
  // docs/record.md), so its change time is checked against that, not against the host's
  // (which anything that links or chmods the file moves, a profiler's build-id cache too)
  const script = [
    'stat -c "%n %s %Y %i %d %h %a %u %g %F" /usr /usr/bin/env /usr/share /usr/local',
    'ls -lR /usr/include | md5sum',
    'find /usr/share/doc /usr/lib -maxdepth 2 | sort | md5sum',
    'test -r /usr/bin/env && echo readable',
  ].join('; ');
  const r = await run(`${script}; stat -c "%Y %Z" /usr/bin/env; ${mountsOf('/usr')}`);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.is(lines.slice(0, -2).join('\n') + '\n', native(script));
  const [modified, changed] = lines.at(-2)!.split(' ');
  t.is(changed, modified, lines.at(-2));
  t.is(Number(modified), Math.floor(statSync('/usr/bin/env').mtimeMs / 1000));
  // nothing was written below /usr: it is still the bind, no overlay over it
  t.notRegex(lines.at(-1)!, /overlay/);
  t.regex(lines.at(-1)!, /\S/);
});

test.serial('a write under /usr/local after reads is recorded; the host is untouched', async (t) => {
  const file = fresh('write');
  const r = await run(`ls /usr/local >/dev/null; find /usr/share/man -maxdepth 1 >/dev/null; echo hello > ${file}; cat ${file}; ${mountsOf('/usr')}`);
  t.is(r.status, 0, r.stderr);
  const [out, mounts] = r.stdout.trimEnd().split('\n');
  t.is(out, 'hello');
  t.regex(mounts!, /^\S+ overlay$/, 'the overlay is over the bind now');
  t.false(existsSync(file));
  t.is(readFileSync(path.join(r.attempt, 'files', file), 'utf8'), 'hello\n');
});

asRoot('writing is allowed where it is natively: access(W_OK) before the first write', async (t) => {
  // the shell's test (in process) and a static-free external one: both ask access(2)
  const script = 'test -w /usr && echo usr-w; /usr/bin/test -w /usr/local && echo local-w; test -w /etc && echo etc-w';
  const r = await run(script);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, native(script));
  t.is(r.stdout, 'usr-w\nlocal-w\netc-w\n');
});

test.serial('cd into /usr/local, then touch, mkdir and rm -r there', async (t) => {
  const dir = fresh('cd');
  const r = await run(`mkdir ${dir} && cd ${dir} && touch x && mkdir d && touch d/y && rm -r d && ls -a && pwd`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `.\n..\nx\n${dir}\n`);
  t.false(existsSync(dir));
  t.true(existsSync(path.join(r.attempt, 'files', dir, 'x')));
});

test.serial('a cd into a tree nothing wrote yet leaves no cwd in the bind', async (t) => {
  const dir = fresh('cwd');
  // the first change below /usr comes from the cwd's own relative names
  const r = await run(`cd /usr/local && mkdir ${path.basename(dir)} && cd ${path.basename(dir)} && echo a > f && ln -s f l && mv f g && cat l g 2>&1; ls`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `cat: l: No such file or directory\na\ng\nl\n`);
  t.false(existsSync(dir));
});

test.serial('rm -rf of a tree made below /usr in the run', async (t) => {
  const dir = fresh('rmrf');
  const r = await run(`mkdir -p ${dir}/a/b/c && for i in 1 2 3; do echo $i > ${dir}/a/b/f$i; done && rm -rf ${dir} && test ! -e ${dir} && echo gone`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'gone\n');
  t.false(existsSync(dir));
});

test.serial('a directory opened before another process\'s first write: mkdirat, openat, unlinkat and fchdir through it', async (t) => {
  const name = path.basename(fresh('dirfd'));
  const first = fresh('first');
  // the directory is opened while /usr is still the bind; a child then makes the first
  // change below /usr; the calls relative to the old descriptor land in the overlay
  const py = [
    'import os, subprocess',
    "fd = os.open('/usr/local', os.O_RDONLY | os.O_DIRECTORY)",
    `subprocess.run(['touch', '${first}'], check=True)`,
    `os.mkdir('${name}', dir_fd=fd)`,
    `w = os.open('${name}/f', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd); os.write(w, b'data'); os.close(w)`,
    `os.rename('${name}/f', '${name}/g', src_dir_fd=fd, dst_dir_fd=fd)`,
    `print(sorted(os.listdir('/usr/local/${name}')))`,
    `os.unlink('${name}/g', dir_fd=fd)`,
    `os.rmdir('${name}', dir_fd=fd)`,
    `print(os.path.exists('/usr/local/${name}'))`,
    'os.fchdir(fd)',
    `open('${name}-rel', 'w').write('rel')`,
    `print(open('/usr/local/${name}-rel').read())`,
    `os.unlink('/usr/local/${name}-rel')`,
  ].join('\n');
  const r = await run(`python3 -c "${py.replace(/"/g, '\\"')}"`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `['g']\nFalse\nrel\n`);
  t.false(existsSync(`/usr/local/${name}`));
  t.false(existsSync(first));
  t.true(existsSync(path.join(r.attempt, 'files', first)));
});

asRoot('fchmod of a host file opened read-only before the first write changes the copy, not the host', async (t) => {
  const target = '/usr/bin/env';
  const before = statSync(target).mode;
  const first = fresh('fchmod');
  const py = [
    'import os, subprocess',
    `fd = os.open('${target}', os.O_RDONLY)`,
    'os.read(fd, 4)',
    `subprocess.run(['touch', '${first}'], check=True)`,
    'os.fchmod(fd, 0o700)',
    `print(oct(os.stat('${target}').st_mode & 0o777))`,
    // the descriptor now in the overlay: the same offset, the same bytes after it
    'print(os.lseek(fd, 0, os.SEEK_CUR), os.read(fd, 4) == open(\'/usr/bin/env\', \'rb\').read()[4:8])',
  ].join('\n');
  const r = await run(`python3 -c "${py.replace(/"/g, '\\"')}"`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '0o700\n4 True\n');
  t.is(statSync(target).mode, before);
});

test.serial('rename from /usr/local to /tmp and back', async (t) => {
  const file = fresh('mv');
  const r = await run(`ls /usr/local >/dev/null; echo moved > ${file} && mv ${file} /tmp/uwrx-lazy-mv-$$ && mv /tmp/uwrx-lazy-mv-$$ ${file}.back && cat ${file}.back && test ! -e ${file} && echo ok`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'moved\nok\n');
  t.false(existsSync(`${file}.back`));
  t.is(readFileSync(path.join(r.attempt, 'files', `${file}.back`), 'utf8'), 'moved\n');
});

asRoot('a file moved from a lazy tree into the cwd\'s tree', async (t) => {
  // /etc is lazy; the cwd's tree an overlay: moving a host file out of /etc changes /etc
  const dir = scratchDir('uwrx-lazy-');
  const r = await run('cp /etc/hostname etc-copy && ls /etc > /dev/null && mv /etc/hostname ./moved && test ! -e /etc/hostname && cat ./moved | wc -c', [], dir);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), String(statSync('/etc/hostname').size));
  t.true(existsSync('/etc/hostname'));
});

test.serial('make install to /usr/local, then a later step reads it', async (t) => {
  const dir = scratchDir('uwrx-lazy-');
  const proj = path.join(dir, 'proj');
  mkdirSync(proj, { recursive: true });
  const prefix = fresh('prefix');
  writeFileSync(path.join(proj, 'Makefile'), [
    'all: hello',
    'hello: hello.c',
    '\tcc -o hello hello.c',
    'install: hello',
    '\tinstall -d $(PREFIX)/bin $(PREFIX)/share/hello',
    '\tinstall -m 755 hello $(PREFIX)/bin/hello',
    '\techo data > $(PREFIX)/share/hello/data',
    '',
  ].join('\n'));
  writeFileSync(path.join(proj, 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello from /usr/local"); return 0; }\n');
  const first = await run(`make -s install PREFIX=${prefix}`, [], dir);
  t.is(first.status, 0, first.stderr);
  t.false(existsSync(prefix));
  const second = await run(`${prefix}/bin/hello && cat ${prefix}/share/hello/data && ${mountsOf('/usr')}`, ['--parent', first.attempt], dir);
  t.is(second.status, 0, second.stderr);
  const lines = second.stdout.trimEnd().split('\n');
  t.deepEqual(lines.slice(0, 2), ['hello from /usr/local', 'data']);
  // the parent has layers for /usr: an overlay from the start
  t.regex(lines[2]!, /overlay/);
});

asRoot('rm -rf of a host tree below /usr: its first change comes through descriptors opened in the bind', async (t) => {
  const dir = fresh('hosttree');
  mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  t.teardown(() => spawnSync('rm', ['-rf', dir]));
  for (let i = 0; i < 50; i++) writeFileSync(path.join(dir, 'a', i % 2 ? 'b' : '', `f${i}`), String(i));
  const r = await run(`rm -rf ${dir} && test ! -e ${dir} && echo gone; ${mountsOf('/usr')}`);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.split('\n')[0], 'gone');
  t.regex(r.stdout.split('\n')[1]!, /^\S+ overlay $/);
  t.is(spawnSync('find', [dir, '-type', 'f'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length, 50);
});

asRoot('a mount namespace made private inside still gets the overlay before its first write', async (t) => {
  const file = fresh('private');
  // unshare(1) makes the new namespace's mounts private (mount(2) with MS_PRIVATE): the
  // overlays attached after that would not reach it, so they are attached before
  const r = await run(`unshare -m --propagation private sh -c 'echo inner > ${file}; cat ${file}; ${mountsOf('/usr').replace(/'/g, `'\\''`)}'`);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^inner\n\S+ overlay \n$/);
  t.false(existsSync(file));
});
