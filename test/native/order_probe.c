/* Alternates reads answered in process (open: the recorder) with reads on the
 * notification path (a raw openat system call: uwrx-init) for argv[2] rounds, over
 * argv[1]/fast-<i> and argv[1]/slow-<i>; the record must keep that order. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: order_probe DIR ROUNDS\n");
    return 2;
  }
  int rounds = atoi(argv[2]);
  char path[4096];
  for (int i = 0; i < rounds; i++) {
    snprintf(path, sizeof path, "%s/fast-%d", argv[1], i);
    int fd = open(path, O_RDONLY);
    if (fd >= 0) close(fd);
    snprintf(path, sizeof path, "%s/slow-%d", argv[1], i);
    fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd >= 0) close(fd);
  }
  return 0;
}
