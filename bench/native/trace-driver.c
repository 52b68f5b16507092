/* Test driver for src/native/common/tracebuf.c: writes trace buffers the way uwrx-init's
 * handlers will, without a sandbox.
 *
 *   trace-driver tree <traces_dir> <expect_dir>
 *     A known command tree: logical pid 2 (sh) forks 3 (cc) and 4 (cat), each a real
 *     forked process writing its own buffer concurrently. 3 and 4 interleave output on
 *     fd 1 (text, every byte value, a 5 MiB write) and do open/write/rename/unlink on
 *     known paths. <expect_dir>/output-<pid> receives the exact bytes each "wrote".
 *   trace-driver flood <traces_dir> <pid> <mebibytes> <pause_us_per_mib>
 *     One process writing more than <mebibytes> of events, pausing between MiBs (the
 *     seccomp round trip a real handler adds per event is far slower than this writer).
 *     Prints events, bytes, the largest allocated size (st_blocks) its file reached and
 *     the milliseconds it waited for the collector.
 *   trace-driver bench <traces_dir> <processes> <events_per_process>
 *     A mix of file, output and process events as fast as possible; prints bytes written. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tracebuf.h"

static void check(int r, const char *what) {
  if (r != 0) {
    fprintf(stderr, "trace-driver: %s: %s\n", what, strerror(-r));
    exit(1);
  }
}

static int open_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    perror(dir);
    exit(1);
  }
  return fd;
}

static void save(const char *dir, uint32_t pid, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/output-%u", dir, pid);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    perror(path);
    exit(1);
  }
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) {
      perror(path);
      exit(1);
    }
    p += n;
    len -= (size_t)n;
  }
  close(fd);
}

/* What a handler does for write(1, data, len): record it (and let the write proceed). */
static void out(struct uwrx_tracebuf *tb, const char *expect, const void *data, size_t len) {
  check(uwrx_trace_output(tb, tb->pid, 1, data, len), "output");
  save(expect, tb->pid, data, len);
}

static void child(int dirfd, const char *expect, uint32_t pid, const char *prog, int odd) {
  struct uwrx_tracebuf tb;
  check(uwrx_tracebuf_open(&tb, dirfd, pid), "open buffer");
  char argv[256];
  int argv_len = snprintf(argv, sizeof argv, "%s%c-o%cout%u.o", prog, 0, 0, pid) + 1;
  char path[64], tmp[64];
  snprintf(path, sizeof path, "/usr/bin/%s", prog);
  check(uwrx_trace_exec(&tb, pid, 0, path, argv, (size_t)argv_len), "exec");
  check(uwrx_trace_open(&tb, pid, "/usr/include/stdio.h", O_RDONLY, 0, 3), "open");
  check(uwrx_trace_path_op(&tb, UWRX_EV_STAT, pid, "/work/missing.h", NULL, 0, 0, -ENOENT), "stat");
  snprintf(tmp, sizeof tmp, "/work/out%u.tmp", pid);
  snprintf(path, sizeof path, "/work/out%u.o", pid);
  check(uwrx_trace_open(&tb, pid, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, 4), "open");
  char line[128];
  for (int i = 0; i < 200; i++) {
    int n = snprintf(line, sizeof line, "%s line %d\n", prog, i);
    out(&tb, expect, line, (size_t)n);
    if ((i % 20) == odd * 10) usleep(500);
  }
  /* Every byte value, written in place the way a handler copies from the target's memory. */
  struct uwrx_ev_output ev = {.fd = 1, .flags = 0};
  void *dst;
  check(uwrx_trace_begin(&tb, UWRX_EV_OUTPUT, pid, &ev, sizeof ev, NULL, 0, 256, &dst), "begin");
  unsigned char *all = dst;
  for (int i = 0; i < 256; i++) all[i] = (unsigned char)(odd ? 255 - i : i);
  save(expect, pid, all, 256);
  uwrx_trace_end(&tb, 256);
  if (odd) {
    size_t big = 5u << 20;
    unsigned char *b = malloc(big);
    for (size_t i = 0; i < big; i++) b[i] = (unsigned char)((i * 7 + i / 4096) & 0xff);
    out(&tb, expect, b, big);
    free(b);
  }
  check(uwrx_trace_path_op(&tb, UWRX_EV_RENAME, pid, tmp, path, 0, 0, 0), "rename");
  check(uwrx_trace_path_op(&tb, UWRX_EV_CHMOD, pid, path, NULL, 0755, 0, 0), "chmod");
  check(uwrx_trace_path_op(&tb, UWRX_EV_UNLINK, pid, "/work/stale.d", NULL, 0, 0, 0), "unlink");
  check(uwrx_trace_path_op(&tb, UWRX_EV_MKDIR, pid, "/work/objdir", NULL, 0755, 0, odd ? -EEXIST : 0), "mkdir");
  unsigned char addr[4] = {127, 0, 0, 1};
  check(uwrx_trace_connect(&tb, pid, 2, 443, addr, 4, -ECONNREFUSED), "connect");
  check(uwrx_trace_exit(&tb, pid, odd ? 1 : 0, 0), "exit");
  check(uwrx_tracebuf_close(&tb, 1), "close");
}

static int tree(const char *dir, const char *expect) {
  int dirfd = open_dir(dir);
  struct uwrx_tracebuf tb;
  check(uwrx_tracebuf_open(&tb, dirfd, 2), "open buffer");
  static const char sh_argv[] = "sh\0-c\0cc -o out3.o & cat\0";
  check(uwrx_trace_exec(&tb, 2, 0, "/bin/sh", sh_argv, sizeof sh_argv - 1), "exec");
  check(uwrx_trace_path_op(&tb, UWRX_EV_MKDIR, 2, "/work", NULL, 0755, 0, 0), "mkdir");
  const char *progs[2] = {"cc", "cat"};
  pid_t kids[2];
  for (int i = 0; i < 2; i++) {
    check(uwrx_trace_spawn(&tb, 2, (uint32_t)(3 + i), 0, 0x11), "spawn");
    kids[i] = fork();
    if (kids[i] == 0) {
      child(dirfd, expect, (uint32_t)(3 + i), progs[i], i);
      _exit(0);
    }
  }
  int failed = 0;
  for (int i = 0; i < 2; i++) {
    int st;
    waitpid(kids[i], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
  }
  check(uwrx_trace_path_op(&tb, UWRX_EV_TRUNCATE, 2, "/work/log", NULL, 0, 0, 0), "truncate");
  check(uwrx_trace_exit(&tb, 2, failed, 0), "exit");
  check(uwrx_tracebuf_close(&tb, 1), "close");
  return failed;
}

static int flood(const char *dir, uint32_t pid, long mib, long pause_us) {
  int dirfd = open_dir(dir);
  struct uwrx_tracebuf tb;
  check(uwrx_tracebuf_open(&tb, dirfd, pid), "open buffer");
  static const char argv[] = "flood\0";
  check(uwrx_trace_exec(&tb, pid, 0, "/usr/bin/flood", argv, sizeof argv - 1), "exec");
  char path[128];
  /* Build-log-like output: the bulk of a busy process's trace bytes. */
  unsigned char data[4000];
  for (size_t k = 0; k < sizeof data; k++) data[k] = (unsigned char)(k % 80 == 79 ? '\n' : 'a' + (k * 7) % 26);
  uint64_t i = 0, max_alloc = 0;
  while (tb.pos < (uint64_t)mib << 20) {
    uint64_t mark = tb.pos >> 20;
    while (tb.pos >> 20 == mark) {
      snprintf(path, sizeof path, "/work/src/module%llu/file%llu.c", (unsigned long long)(i % 97),
               (unsigned long long)i);
      check(uwrx_trace_open(&tb, pid, path, O_RDONLY, 0, (int64_t)(i % 1000)), "open");
      check(uwrx_trace_output(&tb, pid, 2, data, sizeof data), "output");
      i++;
    }
    struct stat st;
    if (fstat(tb.fd, &st) == 0 && (uint64_t)st.st_blocks * 512 > max_alloc) max_alloc = (uint64_t)st.st_blocks * 512;
    if (pause_us > 0) usleep((useconds_t)pause_us);
  }
  check(uwrx_trace_exit(&tb, pid, 0, 0), "exit");
  printf("%llu %llu %llu %llu\n", (unsigned long long)(2 * i + 2), (unsigned long long)tb.pos,
         (unsigned long long)max_alloc, (unsigned long long)(tb.throttled_ns / 1000000));
  check(uwrx_tracebuf_close(&tb, 1), "close");
  return 0;
}

static int bench(const char *dir, long procs, long per) {
  int dirfd = open_dir(dir);
  uint64_t bytes = 0;
  char path[128];
  static const char text[] = "compiling module with some typical amount of output text\n";
  for (long p = 0; p < procs; p++) {
    struct uwrx_tracebuf tb;
    uint32_t pid = (uint32_t)(2 + p);
    check(uwrx_tracebuf_open(&tb, dirfd, pid), "open buffer");
    static const char argv[] = "cc\0-c\0x.c\0";
    check(uwrx_trace_exec(&tb, pid, 0, "/usr/bin/cc", argv, sizeof argv - 1), "exec");
    for (long i = 0; i < per - 2; i++) {
      snprintf(path, sizeof path, "/usr/include/x86_64-linux-gnu/sys/header%ld.h", i % 300);
      switch (i % 4) {
      case 0: check(uwrx_trace_open(&tb, pid, path, O_RDONLY, 0, 3), "open"); break;
      case 1: check(uwrx_trace_path_op(&tb, UWRX_EV_STAT, pid, path, NULL, 0, 0, -ENOENT), "stat"); break;
      case 2: check(uwrx_trace_open(&tb, pid, path, O_RDONLY, 0, -ENOENT), "open"); break;
      default: check(uwrx_trace_output(&tb, pid, 1, text, sizeof text - 1), "output"); break;
      }
    }
    check(uwrx_trace_exit(&tb, pid, 0, 0), "exit");
    bytes += tb.pos;
    check(uwrx_tracebuf_close(&tb, 1), "close");
  }
  printf("%llu\n", (unsigned long long)bytes);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "tree") == 0) return tree(argv[2], argv[3]);
  if (argc == 6 && strcmp(argv[1], "flood") == 0)
    return flood(argv[2], (uint32_t)atol(argv[3]), atol(argv[4]), atol(argv[5]));
  if (argc == 5 && strcmp(argv[1], "bench") == 0) return bench(argv[2], atol(argv[3]), atol(argv[4]));
  fprintf(stderr, "usage: trace-driver tree <traces> <expect> | flood <traces> <pid> <MiB> <pause_us> | bench <traces> <procs> <events>\n");
  return 2;
}
