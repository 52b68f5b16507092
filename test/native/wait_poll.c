/* Waits that reap and waits that find nothing: WNOHANG polls of a running child (by
 * pid, by process group, any child), a wait for a pid that is no child, a poll with no
 * children at all, then the reap. Prints each answer and the clocks after the reaps:
 * under uwrx the output is the same whichever path answers (test/wait-poll.test.ts). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void show(const char *what, pid_t r, pid_t child) {
  if (r < 0) printf("%s: -1 %s\n", what, strerror(errno));
  else printf("%s: %s\n", what, r == 0 ? "0" : r == child ? "the child" : "another pid");
}

int main(void) {
  show("no children", waitpid(-1, NULL, WNOHANG), 0);
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    char b;
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], &b, 1); /* until the parent says */
    _exit(n == 1 ? 7 : 1);
  }
  close(pipefd[0]);
  int status = -1;
  show("running, by pid", waitpid(c, &status, WNOHANG), c);
  show("running, own group", waitpid(0, &status, WNOHANG), c);
  show("running, group by id", waitpid(-getpgrp(), &status, WNOHANG), c);
  show("running, any", wait3(&status, WNOHANG, NULL), c);
  show("running, wait4", wait4(-1, &status, WNOHANG | WUNTRACED | WCONTINUED, NULL), c);
  show("not a child", waitpid(c + 100000, &status, WNOHANG), c);
  printf("status untouched: %d\n", status);
  if (write(pipefd[1], "x", 1) != 1) return 1;
  /* poll until it ends: how often varies, what is printed does not */
  pid_t r;
  struct rusage ru;
  while ((r = wait4(c, &status, WNOHANG, &ru)) == 0) {}
  show("ended", r, c);
  printf("exit %d, clock %lld\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, ns());
  show("none left", waitpid(-1, &status, WNOHANG), c);
  /* a blocking wait still reaps as before */
  fflush(stdout);
  pid_t d = fork();
  if (d == 0) _exit(3);
  show("blocking", waitpid(d, &status, 0), d);
  printf("exit %d, clock %lld\n", WEXITSTATUS(status), ns());
  return 0;
}
