// An exec's record names the cwd of the process. uwrx-init hands a parent's known cwd
// down to its children and keeps a process's own, reading /proc/<pid>/cwd only when
// neither is known: every way a cwd changes must make it read again. Each case warms
// what is kept first (a failed exec reads the cwd while the exec waits), then moves the
// cwd, then execs: the record must show where the exec really ran.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readProcessTable, type ProcessRecord } from '../src/record/procs.js';
import { ensureCommands } from './helpers/packages.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

/** The cwd recorded for the process whose first exec had `tag` as argv[1]. */
function cwdOf(procs: ProcessRecord[], tag: string): string | null {
  const found = procs.filter((p) => p.argv[1]?.toString() === tag);
  if (found.length !== 1) return `${found.length} processes tagged ${tag}`;
  return found[0]!.cwd?.toString() ?? null;
}

function workDir(prefix: string): string {
  const dir = realpathSync(scratchDir(prefix));
  mkdirSync(path.join(dir, 'a'));
  mkdirSync(path.join(dir, 'b'));
  return dir;
}

test('sh: children after cd, in a subshell, and before any cd', async (t) => {
  const dir = workDir('uwrx-cwd-sh-');
  const script = '/bin/true top; cd a && /bin/true in-a; (cd ../b; /bin/true sub-b); /bin/true still-a; cd ..; /bin/true top-again';
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(dir));
  t.is(cwdOf(procs, 'top'), dir);
  t.is(cwdOf(procs, 'in-a'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'sub-b'), path.join(dir, 'b'));
  t.is(cwdOf(procs, 'still-a'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'top-again'), dir);
});

const PYTHON_CASES = `
import os, threading, subprocess

def child(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(127)
    os.waitpid(pid, 0)

def warm():
    try:
        os.execv('/nonexistent/true', ['true'])
    except OSError:
        pass

def after_chdir():
    warm()
    os.chdir('a')
    os.execv('/bin/true', ['/bin/true', 'chdir'])

def after_fchdir():
    warm()
    os.fchdir(os.open('b', os.O_RDONLY))
    os.execv('/bin/true', ['/bin/true', 'fchdir'])

def thread_chdir():
    warm()
    th = threading.Thread(target=os.chdir, args=('a',))
    th.start()
    th.join()
    subprocess.run(['/bin/true', 'thread-child'])
    os.execv('/bin/true', ['/bin/true', 'thread'])

def forked_before_chdir():
    warm()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        os.execv('/bin/true', ['/bin/true', 'before-chdir'])
    os.chdir('b')
    os.write(w, b'x')
    os.waitpid(pid, 0)
    os.execv('/bin/true', ['/bin/true', 'after-chdir'])

for fn in (after_chdir, after_fchdir, thread_chdir, forked_before_chdir):
    child(fn)
subprocess.run(['/bin/true', 'parent'])
`;

test('chdir, fchdir, a thread that chdirs, a child forked before its parent chdir', async (t) => {
  ensureCommands({ python3: 'python3' });
  const dir = workDir('uwrx-cwd-py-');
  writeFileSync(path.join(dir, 'cases.py'), PYTHON_CASES);
  const r = await uwrx(['run', '-q', '--', 'python3', 'cases.py'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(dir));
  t.is(cwdOf(procs, 'chdir'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'fchdir'), path.join(dir, 'b'));
  t.is(cwdOf(procs, 'thread-child'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'thread'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'before-chdir'), dir);
  t.is(cwdOf(procs, 'after-chdir'), path.join(dir, 'b'));
  t.is(cwdOf(procs, 'parent'), dir);
});

test("a rename of the cwd's parent directory shows in the next exec's cwd", async (t) => {
  const dir = workDir('uwrx-cwd-mv-');
  mkdirSync(path.join(dir, 'p', 'q'), { recursive: true });
  const script = `/bin/true before; mv ${dir}/p ${dir}/r; /bin/true after; readlink /proc/self/cwd`;
  const r = await uwrx(['run', '-q', '--build', path.join(dir, 'build'), '--', 'sh', '-c', script], { cwd: path.join(dir, 'p', 'q') });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(dir));
  t.is(cwdOf(procs, 'before'), path.join(dir, 'p', 'q'));
  // the process's own view after the rename (a real rename, or the copy the overlays
  // make of a directory, which leaves the old one deleted)
  const seen = r.stdout.trim();
  t.not(seen, path.join(dir, 'p', 'q'));
  t.is(cwdOf(procs, 'after'), seen);
});

const SPAWN_C = `
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static void spawn(const char *tag) {
  pid_t pid;
  char *argv[] = { "/bin/true", (char *)tag, 0 };
  if (posix_spawn(&pid, "/bin/true", 0, 0, argv, environ) == 0) waitpid(pid, 0, 0);
}
int main(void) {
  execl("/nonexistent/true", "true", (char *)0);
  spawn("spawn-top");
  pid_t pid = vfork();
  if (pid == 0) {
    if (chdir("a") == 0) execl("/bin/true", "/bin/true", "vfork-a", (char *)0);
    _exit(127);
  }
  waitpid(pid, 0, 0);
  spawn("spawn-still-top");
  /* a child sharing this process's fs moves its cwd too */
  pid = (pid_t)syscall(SYS_clone, CLONE_FS | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) syscall(SYS_exit_group, chdir("b") == 0 ? 0 : 1);
  waitpid(pid, 0, 0);
  spawn("spawn-b");
  if (fork() == 0) {
    execl("/bin/true", "/bin/true", "fork-b", (char *)0);
    _exit(127);
  }
  wait(0);
  return 0;
}
`;

test('vfork and posix_spawn children, and a clone sharing the fs that moves its parent', async (t) => {
  ensureCommands({ cc: 'gcc' });
  const dir = workDir('uwrx-cwd-spawn-');
  writeFileSync(path.join(dir, 'spawn.c'), SPAWN_C);
  execFileSync('cc', ['-O1', '-o', path.join(dir, 'spawn'), path.join(dir, 'spawn.c')]);
  const r = await uwrx(['run', '-q', '--', './spawn'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(dir));
  t.is(cwdOf(procs, 'spawn-top'), dir);
  t.is(cwdOf(procs, 'vfork-a'), path.join(dir, 'a'));
  t.is(cwdOf(procs, 'spawn-still-top'), dir);
  t.is(cwdOf(procs, 'spawn-b'), path.join(dir, 'b'));
  t.is(cwdOf(procs, 'fork-b'), path.join(dir, 'b'));
});
