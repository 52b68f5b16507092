/* Waits with a timeout in every way the kernel offers and prints, per way, the virtual
 * time it took (CLOCK_MONOTONIC or CLOCK_REALTIME, as the program sees it) and the real
 * time (/proc/uptime, which no clock interception touches; 10 ms resolution):
 *   <name> virtual_ms real_ms
 * Usage: timed_waits [ms] (default 200). Built by test/timers-run.test.ts. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static long ms;

static double uptime_ms(void) {
  char buf[64] = { 0 };
  FILE *f = fopen("/proc/uptime", "r");
  if (!f || !fgets(buf, sizeof buf, f)) return -1;
  fclose(f);
  return strtod(buf, NULL) * 1000;
}

static int64_t clock_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec ts_of(int64_t ns) {
  return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static clockid_t measured = CLOCK_MONOTONIC;
static int64_t v0;
static double r0;

static void start(void) {
  r0 = uptime_ms();
  v0 = clock_ns(measured);
}

static void report(const char *name) {
  int64_t v1 = clock_ns(measured);
  double r1 = uptime_ms();
  printf("%s %.3f %.0f\n", name, (v1 - v0) / 1e6, r1 - r0);
  fflush(stdout);
}

static void on_alarm(int sig) { (void)sig; }

int main(int argc, char **argv) {
  ms = argc > 1 ? atol(argv[1]) : 200;
  int64_t ns = ms * 1000000;
  struct timespec rel = ts_of(ns);

  start();
  nanosleep(&rel, NULL);
  report("nanosleep");

  start();
  clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, NULL);
  report("clock_nanosleep");

  start();
  struct timespec abs = ts_of(clock_ns(CLOCK_MONOTONIC) + ns);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) == EINTR) {}
  report("clock_nanosleep_abs");

  measured = CLOCK_REALTIME;
  start();
  abs = ts_of(clock_ns(CLOCK_REALTIME) + ns);
  while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL) == EINTR) {}
  report("clock_nanosleep_abs_realtime");
  measured = CLOCK_MONOTONIC;

  int fds[2];
  if (pipe(fds) != 0) return 1;
  struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
  start();
  poll(&pfd, 1, (int)ms);
  report("poll");

  start();
  ppoll(&pfd, 1, &rel, NULL);
  report("ppoll");

  fd_set set;
  FD_ZERO(&set);
  FD_SET(fds[0], &set);
  struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
  start();
  select(fds[0] + 1, &set, NULL, NULL, &tv);
  report("select");

  FD_SET(fds[0], &set);
  start();
  pselect(fds[0] + 1, &set, NULL, NULL, &rel, NULL);
  report("pselect");

  int ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN };
  epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
  start();
  epoll_wait(ep, &ev, 1, (int)ms);
  report("epoll_wait");

  start();
  epoll_pwait(ep, &ev, 1, (int)ms, NULL);
  report("epoll_pwait");

  start();
  syscall(441 /* epoll_pwait2 */, ep, &ev, 1, &rel, NULL, 8);
  report("epoll_pwait2");

  uint32_t word = 0;
  start();
  syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
  report("futex_wait");

  start();
  abs = ts_of(clock_ns(CLOCK_MONOTONIC) + ns);
  syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
  report("futex_wait_bitset");

  measured = CLOCK_REALTIME;
  start();
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  abs = ts_of(clock_ns(CLOCK_REALTIME) + ns);
  pthread_mutex_lock(&m);
  while (pthread_cond_timedwait(&c, &m, &abs) == 0) {}
  pthread_mutex_unlock(&m);
  report("pthread_cond_timedwait");

  sem_t sem;
  sem_init(&sem, 0, 0);
  start();
  abs = ts_of(clock_ns(CLOCK_REALTIME) + ns);
  while (sem_timedwait(&sem, &abs) != 0 && errno == EINTR) {}
  report("sem_timedwait");
  measured = CLOCK_MONOTONIC;

  sigset_t usr;
  sigemptyset(&usr);
  sigaddset(&usr, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr, NULL);
  start();
  sigtimedwait(&usr, NULL, &rel);
  report("rt_sigtimedwait");

  signal(SIGALRM, on_alarm);
  sigset_t none;
  sigemptyset(&none);
  struct itimerval it = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
  start();
  setitimer(ITIMER_REAL, &it, NULL);
  sigsuspend(&none);
  report("setitimer");

  int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  start();
  struct itimerspec spec = { .it_value = ts_of(clock_ns(CLOCK_MONOTONIC) + ns) };
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, NULL);
  uint64_t expirations;
  if (read(tfd, &expirations, sizeof expirations) != sizeof expirations) return 1;
  report("timerfd_abs");
  return 0;
}
