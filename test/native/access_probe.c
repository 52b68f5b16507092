/* Reads files of directory argv[1] in every way the record must see: libc's open and
 * its fortified form, fopen, openat2 and syscall(2) (no libc wrapper), stat of present
 * and missing paths, access, readlink, opendir, and the same from a thread, a forked
 * child, a vfork child, a posix_spawn'ed cat, a child of a raw fork system call and a
 * posix_spawn child's open of its stdin. With "hostile" as argv[2] it first
 * blocks every signal, installs its own SIGSYS handler and closes every fd but 0-2,
 * as some daemons and test harnesses do. Compiled with -D_FORTIFY_SOURCE=2 -O2. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *dir;

static char *at(const char *name) {
  static __thread char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

static void open_close(const char *name) {
  int fd = open(at(name), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
}

static void *thread_main(void *arg) {
  (void)arg;
  open_close("thread.txt");
  return NULL;
}

static void on_sigsys(int sig) { (void)sig; }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  dir = argv[1];
  if (argc > 2 && !strcmp(argv[2], "hostile")) {
    open_close("before-hostile.txt"); /* the recorder is set up by now */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    struct sigaction sa = { .sa_handler = on_sigsys };
    sigaction(SIGSYS, &sa, NULL);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    open_close("hostile.txt");
    struct stat st;
    if (stat(at("hostile-missing.txt"), &st) == 0) return 3;
    return 0;
  }

  /* libc's open, with flags the compiler cannot see: the fortified __open_2 */
  volatile int flags = O_RDONLY;
  int fd = open(at("fortify.txt"), flags);
  if (fd < 0) return 4;
  close(fd);

  FILE *f = fopen(at("fopen.txt"), "r");
  if (!f) return 5;
  char line[64];
  if (!fgets(line, sizeof line, f)) return 6;
  fclose(f);

  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
  fd = (int)syscall(SYS_openat2, AT_FDCWD, at("openat2.txt"), &how, sizeof how);
  if (fd >= 0) close(fd);
  fd = (int)syscall(SYS_openat, AT_FDCWD, at("syscall.txt"), O_RDONLY);
  if (fd >= 0) close(fd);

  struct stat st;
  if (stat(at("stat.txt"), &st) != 0) return 7;
  if (lstat(at("missing-stat.txt"), &st) == 0) return 8;
  if (open(at("missing-open.txt"), O_RDONLY) >= 0) return 9;
  if (access(at("access.txt"), R_OK) != 0) return 10;
  char target[256];
  if (readlink(at("link"), target, sizeof target) <= 0) return 11;
  DIR *d = opendir(at("listed"));
  if (!d) return 12;
  while (readdir(d)) {
  }
  closedir(d);

  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);

  pid_t child = fork();
  if (child == 0) {
    open_close("fork.txt");
    _exit(0);
  }
  waitpid(child, NULL, 0);

  child = vfork();
  if (child == 0) {
    /* shares the parent's memory until it exits: must not write the parent's record */
    int vfd = open(at("vfork.txt"), O_RDONLY);
    if (vfd >= 0) close(vfd);
    _exit(0);
  }
  waitpid(child, NULL, 0);

  char *cat_argv[] = { "cat", at("spawn.txt"), NULL };
  if (posix_spawn(&child, "/bin/cat", NULL, NULL, cat_argv, environ) != 0) return 13;
  waitpid(child, NULL, 0);

  /* a fork by the system call itself: no atfork handler runs in the child */
  child = (pid_t)syscall(SYS_fork);
  if (child == 0) {
    open_close("rawfork.txt");
    syscall(SYS_exit_group, 0);
  }
  waitpid(child, NULL, 0);

  /* posix_spawn's child opens its stdin before it execs cat (libc's internal open) */
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, at("spawnopen.txt"), O_RDONLY, 0);
  char *stdin_argv[] = { "cat", NULL };
  int spawned = posix_spawn(&child, "/bin/cat", &actions, NULL, stdin_argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return 14;
  waitpid(child, NULL, 0);

  /* the parent's own reads after its children: still answered and recorded as its */
  open_close("after.txt");
  return 0;
}
