/* Timed waits of an event loop (epoll_wait, epoll_pwait, poll, select: some time out,
 * some find their descriptor ready; ppoll and pselect), relative sleeps (usleep and sleep
 * too) and sleeps until a deadline between clock reads, and prints every clock value it reads, so
 * that two runs can be compared value by value. Built by test/wait-events.test.ts.
 *   wait_events loop N     N rounds in the main thread
 *   wait_events threads N  N rounds in a second thread, then N in the main thread
 *   wait_events fork N     N rounds, a fork whose child makes N rounds and exits, then N
 *                          rounds while the child runs, and the child reaped */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void round_of(const char *who, int i) {
  int ep = epoll_create1(EPOLL_CLOEXEC), p[2];
  if (ep < 0 || pipe(p) != 0) exit(2);
  struct epoll_event e = { .events = EPOLLIN, .data.fd = p[0] };
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
  long long a = mono_ns();
  int timed_out = epoll_wait(ep, &e, 1, 2);
  long long b = mono_ns();
  if (write(p[1], "x", 1) != 1) exit(2);
  sigset_t none;
  sigemptyset(&none);
  int ready = epoll_pwait(ep, &e, 1, 1000, &none);
  char c;
  if (read(p[0], &c, 1) != 1) exit(2);
  long long d = mono_ns();
  struct pollfd f = { .fd = p[0], .events = POLLIN };
  int polled = poll(&f, 1, 1);
  long long g = mono_ns();
  fd_set set;
  FD_ZERO(&set);
  FD_SET(p[0], &set);
  struct timeval zero = { 0, 0 }, ms = { 0, 1000 };
  int selected = select(p[0] + 1, &set, NULL, NULL, &zero); /* a poll: no clock change */
  FD_SET(p[0], &set);
  selected += select(p[0] + 1, &set, NULL, NULL, &ms);      /* times out */
  struct timespec sleep_ms = { 0, 1000000 };
  nanosleep(&sleep_ms, NULL);
  clock_nanosleep(CLOCK_MONOTONIC, 0, &sleep_ms, NULL);
  /* until a deadline 1 ms after a read (Python's time.sleep), then one already passed */
  long long until = mono_ns() + 1000000;
  struct timespec deadline = { until / 1000000000, until % 1000000000 };
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
  /* ppoll times out; pselect finds the pipe writable at once (its timeout long, as
   * epoll_pwait's: on the notification path a wait that ended early counts as timed out
   * when the thread's next call comes after its deadline); neither changes its
   * timeout, which libc copies for the kernel */
  struct timespec one_ms = { 0, 1000000 }, one_s = { 1, 0 };
  if (ppoll(&f, 1, &one_ms, &none) != 0 || one_ms.tv_nsec != 1000000) exit(3);
  fd_set writable;
  FD_ZERO(&writable);
  FD_SET(p[1], &writable);
  if (pselect(p[1] + 1, NULL, &writable, NULL, &one_s, &none) != 1 || one_s.tv_sec != 1) exit(3);
  /* libc's own sleeps: 1 ms, and none */
  if (usleep(1000) != 0 || sleep(0) != 0) exit(3);
  long long h = mono_ns();
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("%s %d: %d %lld %d %lld %d %d %lld %lld.%06ld\n", who, i, timed_out, b - a, ready, d - b, polled, selected, h - g,
         (long long)tv.tv_sec, (long)tv.tv_usec);
  fflush(stdout);
  close(ep), close(p[0]), close(p[1]);
}

static int rounds;

static void *thread_main(void *arg) {
  for (int i = 0; i < rounds; i++) round_of("thread", i);
  return arg;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  rounds = atoi(argv[2]);
  if (!strcmp(argv[1], "loop")) {
    for (int i = 0; i < rounds; i++) round_of("main", i);
  } else if (!strcmp(argv[1], "threads")) {
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) return 2;
    for (int i = 0; i < rounds; i++) round_of("main", i);
  } else if (!strcmp(argv[1], "fork")) {
    for (int i = 0; i < rounds; i++) round_of("before", i);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      /* its own lines first: the parent's wait for it comes after its own rounds */
      for (int i = 0; i < rounds; i++) round_of("child", i);
      _exit(0);
    }
    /* the parent's rounds, written once the child is done, so the output's order is fixed */
    char *lines = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&lines, &len);
    FILE *out = stdout;
    stdout = mem;
    for (int i = 0; i < rounds; i++) round_of("parent", i);
    stdout = out;
    fclose(mem);
    int status;
    if (waitpid(pid, &status, 0) != pid || status != 0) return 3;
    fputs(lines, stdout);
    printf("reaped at %lld\n", mono_ns());
  } else {
    return 2;
  }
  return 0;
}
