/* Clock reads while a timer is armed (src/native/recorder/recorder.c, rec_clock_open): a
 * program that leaves an interval timer armed for long, as PostgreSQL's backends leave
 * their timeouts' itimer, and reads the clocks; then a timer that fires while the
 * program waits for it. Prints the virtual durations, which the notification path
 * (--no-fast-path) must give alike. Usage: timer_reads [reads] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t fired;
static void on_alarm(int sig) {
  (void)sig;
  fired++;
}

static long long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long wall_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return tv.tv_sec * 1000000LL + tv.tv_usec;
}

int main(int argc, char **argv) {
  int reads = argc > 1 ? atoi(argv[1]) : 2000;
  struct sigaction sa = { .sa_handler = on_alarm };
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, NULL) != 0) return 1;

  /* far away: armed the whole time these reads run */
  struct itimerval far = { .it_value = { .tv_sec = 600 } };
  if (setitimer(ITIMER_REAL, &far, NULL) != 0) return 1;
  long long m0 = mono_ns(), w0 = wall_us(), m = m0, w = w0;
  for (int i = 0; i < reads; i++) {
    m = mono_ns();
    w = wall_us();
  }
  printf("armed: %lld ns, %lld us over %d reads each\n", m - m0, w - w0, reads);

  /* soon: 100 ms, a few reads, then waited for; the read after it sees its deadline */
  sigset_t alarm_only, old;
  sigemptyset(&alarm_only);
  sigaddset(&alarm_only, SIGALRM);
  sigprocmask(SIG_BLOCK, &alarm_only, &old);
  struct itimerval soon = { .it_value = { .tv_usec = 100000 } };
  long long s0 = mono_ns();
  if (setitimer(ITIMER_REAL, &soon, NULL) != 0) return 1;
  for (int i = 0; i < 100; i++) m = mono_ns();
  while (!fired) sigsuspend(&old);
  long long s1 = mono_ns();
  printf("fired: %d, %lld ns after it was armed\n", (int)fired, s1 - s0);

  /* none armed again */
  long long d0 = mono_ns();
  for (int i = 0; i < reads; i++) m = mono_ns();
  printf("disarmed: %lld ns over %d reads\n", m - d0, reads);
  return 0;
}
