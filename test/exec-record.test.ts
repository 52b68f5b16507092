// An exec's record (path, argv, cwd) is read from the calling process while its exec
// waits: from a vfork child, which shares its parent's memory, with process_vm_readv,
// and from a forked child through /proc/<pid>/mem, which then stays open to tell the
// exec's outcome. Both give the whole argv, also when it spans several pages.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readProcessTable } from '../src/record/procs.js';
import { ensureCommands } from './helpers/packages.js';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

test("a long argv is recorded whole from a vfork child's exec and from a forked child's", async (t) => {
  ensureCommands({ perl: 'perl' });
  const cwd = scratchDir('uwrx-exec-record-');
  const args = Array.from({ length: 600 }, (_, i) => `arg-${i}-${'x'.repeat(i % 37)}`);
  // sh starts /bin/true from a vfork child; perl forks, and its child execs
  const forked = `perl -e 'my $p = fork; if (!$p) { exec @ARGV; exit 127 } waitpid $p, 0' /bin/true ${args.join(' ')}`;
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', `/bin/true ${args.join(' ')}; ${forked}; /bin/true short`], { cwd });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(cwd));
  const trues = procs.filter((p) => p.argv[0]?.toString() === '/bin/true');
  t.is(trues.length, 3, JSON.stringify(procs.map((p) => [p.key, p.argv.slice(0, 2).map(String)])));
  const perl = procs.find((p) => p.argv[0]?.toString() === 'perl')!;
  t.deepEqual(trues.map((p) => p.ppid === perl.pid), [false, true, false], 'the second is the forked child of perl');
  for (const [p, want] of trues.map((p, i) => [p, i === 2 ? ['short'] : args] as const)) {
    t.deepEqual(p.argv.map(String), ['/bin/true', ...want], p.key);
    t.is(p.exe?.toString(), '/bin/true', p.key);
    t.is(p.cwd?.toString(), path.resolve(cwd), p.key);
    t.is(p.exitCode, 0, p.key);
  }
});

// The strings of an exec are read together (up to 256 bytes of each, never past its
// page) and each one that did not end there is read alone: arguments of every length
// come out whole, also an empty one and an argv[0] that is not the exec's path.
test('arguments longer than one read, empty ones, and an argv[0] other than the path are recorded whole', async (t) => {
  ensureCommands({ perl: 'perl' });
  const cwd = scratchDir('uwrx-exec-args-');
  const args = ['', 'a'.repeat(255), 'b'.repeat(256), 'c'.repeat(257), 'd'.repeat(5000), 'e', '', 'f'.repeat(30000)];
  const quoted = args.map((a) => `'${a}'`).join(' ');
  // perl's exec { path } name, args: argv[0] is not the path; from a forked child, and
  // from sh's vfork child
  const forked = `perl -e 'my $p = fork; if (!$p) { exec { "/bin/true" } "renamed", @ARGV; exit 127 } waitpid $p, 0' ${quoted}`;
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', `/bin/true ${quoted}; ${forked}`], { cwd });
  t.is(r.status, 0, r.stderr);
  const procs = await readProcessTable(lastAttempt(cwd));
  const trues = procs.filter((p) => p.exe?.toString() === '/bin/true');
  t.is(trues.length, 2, JSON.stringify(procs.map((p) => [p.key, p.exe?.toString() ?? null])));
  t.deepEqual(trues[0]!.argv.map(String), ['/bin/true', ...args]);
  t.deepEqual(trues[1]!.argv.map(String), ['renamed', ...args]);
});

// A vfork child's failed exec whose parent is gone by the time the child's next call
// tells the outcome: kcmp has no parent to compare with, so the executable before the
// exec (its parent's, looked at by the parent's first vfork child) is compared with the
// child's now. Unchanged: the failed exec is not the child's program.
const ORPHANED_EXEC_C = `
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
  pid_t first = vfork();
  if (first == 0) {
    execl("/bin/true", "true", (char *)0);
    _exit(127);
  }
  waitpid(first, 0, 0);
  pid_t self = getpid();
  if (vfork() == 0) {
    execl(argv[1], "garbage", (char *)0); /* ENOEXEC */
    kill(self, SIGKILL);
    while (kill(self, 0) == 0) usleep(2000); /* until its parent reaped it */
    _exit(7);
  }
  return 0;
}
`;

test('a failed exec of a vfork child whose parent is gone is not recorded as its program', async (t) => {
  ensureCommands({ cc: 'gcc' });
  const cwd = scratchDir('uwrx-exec-orphan-');
  writeFileSync(path.join(cwd, 'orphan.c'), ORPHANED_EXEC_C);
  execFileSync('cc', ['-O1', '-o', path.join(cwd, 'orphan'), path.join(cwd, 'orphan.c')]);
  writeFileSync(path.join(cwd, 'garbage'), 'not a program\0\0\0\n');
  chmodSync(path.join(cwd, 'garbage'), 0o755);
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', './orphan ./garbage; echo $?; sleep 0.5'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '137\n');
  const procs = await readProcessTable(lastAttempt(cwd));
  const orphan = procs.find((p) => p.exe?.toString().endsWith('/orphan'))!;
  const children = procs.filter((p) => p.ppid === orphan.pid);
  const detail = JSON.stringify(children.map((p) => [p.key, p.exe?.toString() ?? null, p.exitCode]));
  t.is(children.length, 2, detail);
  t.deepEqual(children.map((p) => [p.exe?.toString() ?? null, p.exitCode]), [['/bin/true', 0], [null, 7]], detail);
});

// A forked child's exec is told by its old image: gone (nothing left at the address of
// the exec's path) after a successful one, still there after a failed one. A static
// program has no shim to say it started, so only that read decides.
const FORKED_EXECS_C = String.raw`
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int status;
  char *none[] = { "none", 0 };
  pid_t p = fork();
  if (p == 0) {
    execv("/nonexistent/a", none);
    execv("./garbage", none); /* ENOEXEC: the file is there */
    char *busy[] = { "busybox", "echo", "static", 0 };
    execv(argv[1], busy);
    _exit(99);
  }
  waitpid(p, &status, 0);
  if ((p = fork()) == 0) {
    execv("/nonexistent/b", none);
    _exit(3);
  }
  waitpid(p, &status, 0);
  if ((p = fork()) == 0) {
    char *named[] = { "another-name", "x", 0 };
    execv("/bin/true", named);
    _exit(98);
  }
  waitpid(p, &status, 0);
  return 0;
}
`;

test("a forked child's failed execs are not recorded, and its exec of a static program is", async (t) => {
  const missing = ensureCommands({ cc: 'gcc', '/bin/busybox': 'busybox-static' });
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const cwd = scratchDir('uwrx-exec-forked-');
  writeFileSync(path.join(cwd, 'forked.c'), FORKED_EXECS_C);
  execFileSync('cc', ['-O1', '-o', path.join(cwd, 'forked'), path.join(cwd, 'forked.c')]);
  writeFileSync(path.join(cwd, 'garbage'), 'not a program\0\0\0\n');
  chmodSync(path.join(cwd, 'garbage'), 0o755);
  const r = await uwrx(['run', '-q', '--', './forked', '/bin/busybox'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'static\n');
  const procs = await readProcessTable(lastAttempt(cwd));
  const parent = procs.find((p) => p.exe?.toString() === './forked')!;
  const children = procs.filter((p) => p.ppid === parent.pid);
  const seen = children.map((p) => [p.exe?.toString() ?? null, p.argv.map(String), p.exitCode]);
  t.deepEqual(seen, [
    ['/bin/busybox', ['busybox', 'echo', 'static'], 0],
    [null, [], 3],
    ['/bin/true', ['another-name', 'x'], 0],
  ], JSON.stringify(seen));
});

// The kernel runs what the caller's /proc/self/exe names (Chromium starts its helpers
// so): the record names that program, as /proc/<pid>/exe of the new image does natively.
test('an exec of /proc/self/exe is recorded as the program it ran', async (t) => {
  const cwd = scratchDir('uwrx-exec-record-');
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', 'exec /proc/self/exe -c "readlink /proc/\\$\\$/exe"'], { cwd });
  t.is(r.status, 0, r.stderr);
  const shown = r.stdout.trim();
  t.true(shown.startsWith('/') && !shown.startsWith('/proc/'), shown);
  const procs = await readProcessTable(lastAttempt(cwd));
  const command = procs.find((p) => p.argv[0]?.toString() === 'sh')!;
  t.is(command.exe?.toString(), shown, 'the exe natively /proc/<pid>/exe shows');
});

// Execs that name no path: fexecve of a program copied into a memfd (glibc's fexecve is
// execveat(fd, "", AT_EMPTY_PATH)) and execveat of an O_PATH descriptor. Both run as
// natively and are recorded with their argv; the executable is what the kernel says it
// is (/proc/<pid>/exe: the memfd's name, the real file).
const FD_EXEC_C = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static int run(int memfd) {
  pid_t p = fork();
  if (p == 0) {
    if (memfd) {
      int src = open("/bin/echo", O_RDONLY), m = memfd_create("echo-copy", MFD_CLOEXEC);
      char b[65536];
      ssize_t n;
      while ((n = read(src, b, sizeof b)) > 0)
        if (write(m, b, (size_t)n) != n) _exit(8);
      char *a[] = { "echo", "from", "memfd", NULL };
      fexecve(m, a, environ);
    } else {
      int fd = open("/bin/echo", O_PATH | O_CLOEXEC);
      char *a[] = { "echo", "from", "execveat", NULL };
      syscall(SYS_execveat, fd, "", a, environ, AT_EMPTY_PATH);
    }
    perror("exec");
    _exit(9);
  }
  int st;
  waitpid(p, &st, 0);
  return WEXITSTATUS(st);
}
int main(void) { int a = run(1), b = run(0); printf("status %d %d\\n", a, b); return a || b; }
`;

test('an exec of a memfd (fexecve) and an execveat of a descriptor run and are recorded', async (t) => {
  ensureCommands({ cc: 'gcc' });
  const cwd = scratchDir('uwrx-exec-fd-');
  writeFileSync(path.join(cwd, 'fdexec.c'), FD_EXEC_C);
  execFileSync('cc', ['-O2', '-o', 'fdexec', 'fdexec.c'], { cwd });
  const native = execFileSync('./fdexec', { cwd, encoding: 'utf8' });
  t.is(native, 'from memfd\nfrom execveat\nstatus 0 0\n');
  const r = await uwrx(['run', '-q', '--', './fdexec'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, native);
  const procs = await readProcessTable(lastAttempt(cwd));
  const echoes = procs.filter((p) => p.argv[0]?.toString() === 'echo');
  t.deepEqual(echoes.map((p) => p.argv.map(String)), [['echo', 'from', 'memfd'], ['echo', 'from', 'execveat']]);
  t.deepEqual(echoes.map((p) => p.exitCode), [0, 0]);
  t.regex(echoes[0]!.exe?.toString() ?? '', /^\/memfd:echo-copy/);
  t.is(echoes[1]!.exe?.toString(), realpathSync('/bin/echo'));
});
