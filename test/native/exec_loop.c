/* exec_loop <runs> <program> [args...]: spawns and waits for the program <runs> times
 * and prints "<wall ns> <children user+sys us>". The CPU figure is the one to compare
 * on a busy machine: it counts only the work done in the exec'd processes. Used by
 * src/reproducibility/shim-bench.ts. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: exec_loop <runs> <program> [args...]\n");
    return 2;
  }
  long runs = strtol(argv[1], NULL, 10);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < runs; i++) {
    pid_t pid;
    int status;
    if (posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0) return perror("posix_spawn"), 1;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "exec_loop: %s failed\n", argv[2]);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  long long cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  printf("%lld %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec), cpu_us);
  return 0;
}
