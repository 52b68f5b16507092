/* Blocking waits that reap: a child that ends while its parent waits (by pid, any child,
 * its process group), one that ended before the wait began, one killed by a signal,
 * one reaped by wait4 with its resource usage. Prints each answer with the parent's
 * clock after the reap and the next child's clock at its start: under uwrx the output
 * is the same whichever path answers (test/wait-poll.test.ts). */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* A child that reads its clock a few times, sleeps `ms`, then ends with `code` (or is
 * killed by `sig`). */
static pid_t child(int ms, int code, int sig) {
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    printf("  child starts at %lld\n", ns());
    fflush(stdout);
    for (int i = 0; i < 5; i++) ns();
    struct timespec d = { 0, ms * 1000000L };
    nanosleep(&d, NULL);
    if (sig) raise(sig);
    _exit(code);
  }
  return c;
}

static int status;

static void show(const char *what, pid_t r, pid_t c) {
  printf("%s: %s, ", what, r == c ? "the child" : r < 0 ? "error" : "another pid");
  if (WIFEXITED(status)) printf("exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status)) printf("signal %d", WTERMSIG(status));
  printf(", clock %lld\n", ns());
}

int main(void) {
  pid_t c = child(30, 4, 0);
  pid_t r;
  r = waitpid(c, &status, 0);
  show("by pid", r, c);
  c = child(30, 5, 0);
  r = wait(&status);
  show("any", r, c);
  c = child(30, 6, 0);
  r = waitpid(0, &status, 0);
  show("own group", r, c);
  c = child(0, 7, 0);
  struct timespec d = { 0, 100 * 1000000L };
  nanosleep(&d, NULL); /* it ends before the wait */
  r = waitpid(c, &status, 0);
  show("ended before", r, c);
  c = child(30, 0, SIGKILL);
  r = waitpid(c, &status, 0);
  show("killed", r, c);
  c = child(30, 8, 0);
  struct rusage ru;
  r = wait4(c, &status, 0, &ru);
  show("wait4", r, c);
  c = child(0, 9, 0);
  r = waitpid(c, &status, 0);
  show("last", r, c);
  return 0;
}
