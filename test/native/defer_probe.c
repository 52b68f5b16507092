/* Probe of deferred answers under uwrx run with UWRX_TEST_DEFERRAL=1: the control call
 * UWRX_CTL_TEST_DEFER(ms, value) is answered by Node `ms` later.
 *   defer_probe progress MS  a child keeps making notified calls while the parent's
 *                            call waits; prints what the wait returned and the child's
 *                            progress during it
 *   defer_probe signal MS    a signal (handler without SA_RESTART) arrives while the
 *                            call waits
 *   defer_probe kill MS      a child waiting in the call is SIGKILLed
 *   defer_probe timeout MS   the call gives up after 300 ms, before Node answers
 *   defer_probe stuck MS     as progress, with UWRX_CTL_TEST_STUCK: the handler thread
 *                            that took the call is held in it for MS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uwrx_control.h"

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long defer_until(long ms, long value, long timeout_ms, int *err) {
  errno = 0;
  long r = syscall(UWRX_SYS_CONTROL, UWRX_CTL_TEST_DEFER, ms, value, timeout_ms, 0, UWRX_CONTROL_MAGIC);
  *err = errno;
  return r;
}

static long defer(long ms, long value, int *err) { return defer_until(ms, value, 0, err); }

static long stuck(long ms, long value, int *err) {
  errno = 0;
  long r = syscall(UWRX_SYS_CONTROL, UWRX_CTL_TEST_STUCK, ms, value, 0, 0, UWRX_CONTROL_MAGIC);
  *err = errno;
  return r;
}

static volatile sig_atomic_t handled;
static void on_usr1(int sig) {
  (void)sig;
  handled++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: defer_probe progress|stuck|signal|kill|timeout MS\n");
    return 2;
  }
  long ms = atol(argv[2]);
  int err;
  if (!strcmp(argv[1], "progress") || !strcmp(argv[1], "stuck")) {
    volatile long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return 1;
    pid_t child = fork();
    if (child == 0) {
      /* write opens are notified (the file record): each one is a round trip */
      while (!shared[1]) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) close(fd);
        shared[0]++;
      }
      _exit(0);
    }
    while (shared[0] < 10) usleep(1000);
    long c0 = shared[0], t0 = now_ms();
    long r = !strcmp(argv[1], "stuck") ? stuck(ms, 7, &err) : defer(ms, 7, &err);
    long t1 = now_ms(), c1 = shared[0];
    shared[1] = 1;
    waitpid(child, NULL, 0);
    printf("result=%ld errno=%d elapsed_ms=%ld progress=%ld\n", r, err, t1 - t0, c1 - c0);
  } else if (!strcmp(argv[1], "signal")) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigaction(SIGUSR1, &sa, NULL);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
      usleep(100 * 1000);
      kill(parent, SIGUSR1);
      _exit(0);
    }
    long t0 = now_ms();
    long r = defer(ms, 7, &err);
    long t1 = now_ms();
    int during = handled;
    waitpid(child, NULL, 0);
    printf("result=%ld errno=%d elapsed_ms=%ld handled=%d\n", r, err, t1 - t0, during);
  } else if (!strcmp(argv[1], "kill")) {
    pid_t child = fork();
    if (child == 0) {
      defer(ms, 7, &err);
      _exit(3); /* not reached when killed */
    }
    usleep(300 * 1000);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    printf("killed=%d signal=%d\n", WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  } else if (!strcmp(argv[1], "timeout")) {
    long t0 = now_ms();
    long r = defer_until(ms, 7, 300, &err);
    long t1 = now_ms();
    printf("result=%ld errno=%d elapsed_ms=%ld\n", r, err, t1 - t0);
  } else {
    return 2;
  }
  return 0;
}
