/* Calls made through libc's syscall() (as libuv makes Node's stats): each line says what
 * the call gave, compared with the libc wrapper's answer where a value differs between
 * hosts (inode numbers, times), so the output is the same natively and under uwrx.
 * Usage: syscall_probe LOOPS FILE DIR (DIR holds file.txt and link -> file.txt; at the
 * end LOOPS statx calls of FILE, to count). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path[4096];
static const char *at(const char *dir, const char *name) {
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static void result(const char *what, long r) {
  if (r < 0) printf("%s -1 %s\n", what, strerrorname_np(errno));
  else printf("%s ok\n", what);
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int loops = atoi(argv[1]);
  const char *dir = argv[3];
  struct statx x;
  struct stat mine, raw;

  long r = syscall(SYS_statx, AT_FDCWD, at(dir, "file.txt"), 0, STATX_BASIC_STATS, &x);
  stat(path, &mine);
  printf("statx %ld same %d size %lld\n", r, r == 0 && x.stx_ino == mine.st_ino && x.stx_mtime.tv_sec == mine.st_mtim.tv_sec &&
                                               x.stx_mtime.tv_nsec == mine.st_mtim.tv_nsec, (long long)x.stx_size);
  result("statx missing", syscall(SYS_statx, AT_FDCWD, at(dir, "missing-statx"), 0, STATX_BASIC_STATS, &x));
  result("statx null path", syscall(SYS_statx, AT_FDCWD, NULL, 0, STATX_BASIC_STATS, &x));
  r = syscall(SYS_newfstatat, AT_FDCWD, at(dir, "link"), &raw, AT_SYMLINK_NOFOLLOW);
  lstat(path, &mine);
  printf("newfstatat %ld same %d link %d\n", r, r == 0 && raw.st_ino == mine.st_ino && raw.st_mtim.tv_nsec == mine.st_mtim.tv_nsec,
         S_ISLNK(raw.st_mode));
  r = syscall(SYS_stat, at(dir, "file.txt"), &raw);
  stat(path, &mine);
  printf("stat %ld same %d\n", r, r == 0 && raw.st_ino == mine.st_ino && raw.st_mtim.tv_nsec == mine.st_mtim.tv_nsec);
  result("lstat missing", syscall(SYS_lstat, at(dir, "missing-lstat"), &raw));
  result("access", syscall(SYS_access, at(dir, "file.txt"), R_OK));
  result("faccessat2 missing", syscall(SYS_faccessat2, AT_FDCWD, at(dir, "missing-access"), F_OK, AT_EACCESS));
  char buf[64] = { 0 };
  r = syscall(SYS_readlinkat, AT_FDCWD, at(dir, "link"), buf, sizeof buf - 1);
  printf("readlinkat %ld %s\n", r, buf);
  int fd = (int)syscall(SYS_openat, AT_FDCWD, at(dir, "file.txt"), O_RDONLY | O_CLOEXEC, 0);
  memset(buf, 0, sizeof buf);
  printf("openat %d read %zd %s", fd >= 0, fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1, buf);
  r = syscall(SYS_fstat, fd, &raw);
  fstat(fd, &mine);
  printf("fstat %ld same %d\n", r, r == 0 && raw.st_ino == mine.st_ino);
  close(fd);
  result("fstat closed", syscall(SYS_fstat, fd, &raw));
  result("open missing", syscall(SYS_open, at(dir, "missing-open"), O_RDONLY));
  unsigned char bytes[16];
  printf("getrandom %ld\n", syscall(SYS_getrandom, bytes, sizeof bytes, 0));
  struct timespec ts;
  printf("clock_gettime %ld\n", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts));
  /* numbers the recorder does not answer: made as libc makes them */
  printf("getpid same %d\n", syscall(SYS_getpid) == getpid());
  result("unknown number", syscall(100000, 1, 2, 3, 4, 5, 6));
  fflush(stdout);
  printf("write %ld\n", syscall(SYS_write, 1, "written\n", 8));
  pid_t child = (pid_t)syscall(SYS_fork);
  if (child == 0) syscall(SYS_exit_group, 7);
  int status = 0;
  waitpid(child, &status, 0);
  printf("fork child exit %d\n", WEXITSTATUS(status));
  for (int i = 0; i < loops; i++) syscall(SYS_statx, AT_FDCWD, argv[2], 0, STATX_BASIC_STATS, &x);
  return 0;
}
