/* Stats of files outside the overlays, which uwrx-init leaves as the kernel shows them:
 * a pipe, a socket, /dev/null and a file of /proc, by descriptor and by path; with
 * `stdin`, only the standard input the probe inherited (whatever the caller gave uwrx).
 * Usage: kernel_stat_probe LOOPS [stdin]
 * Makes LOOPS rounds of fstat of each descriptor and stat of each path (libc's calls),
 * then prints one line per file: whether libc's answer is what the raw system call
 * (always notified) answers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_mode == b->st_mode && a->st_nlink == b->st_nlink &&
         a->st_uid == b->st_uid && a->st_gid == b->st_gid && a->st_rdev == b->st_rdev && a->st_size == b->st_size &&
         a->st_blksize == b->st_blksize && a->st_blocks == b->st_blocks && a->st_atim.tv_sec == b->st_atim.tv_sec &&
         a->st_atim.tv_nsec == b->st_atim.tv_nsec && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
         a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void by_fd(const char *name, int fd, int loops) {
  struct stat mine, raw;
  for (int i = 0; i < loops; i++) fstat(fd, &mine);
  int a = fstat(fd, &mine), b = (int)syscall(SYS_newfstatat, fd, "", &raw, AT_EMPTY_PATH);
  printf("%s %s\n", name, a == 0 && b == 0 && same(&mine, &raw) ? "same" : "differs");
}

static void by_path(const char *path, int loops) {
  struct stat mine, raw;
  for (int i = 0; i < loops; i++) stat(path, &mine);
  int a = stat(path, &mine), b = (int)syscall(SYS_newfstatat, AT_FDCWD, path, &raw, 0);
  printf("%s %s\n", path, a == 0 && b == 0 && same(&mine, &raw) ? "same" : "differs");
}

int main(int argc, char **argv) {
  int loops = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2 && strcmp(argv[2], "stdin") == 0) {
    by_fd("stdin", 0, loops);
    return 0;
  }
  int p[2], s[2];
  if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) return 1;
  int null = open("/dev/null", O_RDONLY);
  by_fd("pipe", p[0], loops);
  by_fd("socket", s[0], loops);
  by_fd("/dev/null", null, loops);
  by_path("/dev/null", loops);
  by_path("/proc/self/status", loops);
  return 0;
}
