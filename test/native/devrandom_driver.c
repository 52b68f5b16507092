/* Test driver for devrandom.c: in a new user+mount namespace, serves a deterministic
 * stream file over FUSE at argv[1] and runs argv[2..] against it. Each open gets the
 * next /dev/urandom stream of one process seeded with a fixed seed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../../src/native/init/devrandom.h"

static uwrx_proc_rng rng;

static void stream_for(pid_t tid, int dev_random, uwrx_stream *out, void *arg) {
  (void)tid;
  (void)arg;
  uwrx_proc_rng_device_stream(&rng, dev_random, out);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) {
    perror(path);
    exit(111);
  }
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: devrandom_driver FILE CMD...\n");
    return 2;
  }
  uwrx_seed root;
  memset(&root, 7, sizeof root);
  uwrx_proc_rng_init(&rng, &root, 2);
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    perror("unshare");
    return 111;
  }
  char map[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)gid);
  write_file("/proc/self/gid_map", map);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    perror("make / private");
    return 111;
  }
  /* The connection must belong to the namespace that mounts it: open after unshare. */
  int fuse = devrandom_open_device();
  if (fuse < 0) {
    fprintf(stderr, "open /dev/fuse: %s\n", strerror(-fuse));
    return 111;
  }
  int rc = devrandom_mount(fuse, argv[1], 0, stream_for, NULL);
  if (rc < 0) {
    fprintf(stderr, "mount fuse on %s: %s\n", argv[1], strerror(-rc));
    return 111;
  }
  pid_t child = fork();
  if (child == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int status;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
