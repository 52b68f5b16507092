/* Clock reads of every kind a process makes: a run of reads, gettimeofday and time, the
 * CPU clock, a timed wait, forked children reading while their parent does, a thread,
 * a program exec'd by a child. Under uwrx the output is the same whichever path answers
 * (test/clock-lease.test.ts). */
#include <pthread.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *worker(void *arg) {
  long long sum = 0;
  for (int i = 0; i < 100; i++) sum += ns(CLOCK_MONOTONIC) % 1000;
  *(long long *)arg = sum;
  return NULL;
}

int main(int argc, char **argv) {
  printf("start %lld %lld\n", ns(CLOCK_REALTIME), ns(CLOCK_MONOTONIC));
  for (int i = 0; i < 5; i++) printf("read %lld\n", ns(CLOCK_MONOTONIC));
  struct timeval tv;
  gettimeofday(&tv, NULL);
  long long before_time = ns(CLOCK_BOOTTIME);
  printf("tod %ld.%06ld time %ld boottime %lld\n", (long)tv.tv_sec, (long)tv.tv_usec, (long)time(NULL), before_time);
  printf("cpu %lld\n", ns(CLOCK_PROCESS_CPUTIME_ID));
  struct timespec nap = { 0, 20000000 };
  nanosleep(&nap, NULL);
  printf("after sleep %lld\n", ns(CLOCK_MONOTONIC));
  for (int i = 0; i < 3; i++) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
      long long a = ns(CLOCK_MONOTONIC);
      long long b = ns(CLOCK_MONOTONIC);
      printf("child %d %lld %lld\n", i, a, b);
      fflush(stdout);
      _exit(0);
    }
    long long p = ns(CLOCK_MONOTONIC);
    int status;
    waitpid(c, &status, 0);
    printf("parent %d after fork %lld after wait %lld\n", i, p, ns(CLOCK_MONOTONIC));
  }
  long long sum = 0;
  pthread_t t;
  pthread_create(&t, NULL, worker, &sum);
  pthread_join(t, NULL);
  printf("thread %lld, after it %lld\n", sum, ns(CLOCK_MONOTONIC));
  fflush(stdout);
  if (argc > 1 && fork() == 0) {
    execl(argv[1], argv[1], "+%s.%N", (char *)NULL);
    _exit(127);
  }
  wait(NULL);
  printf("end %lld\n", ns(CLOCK_MONOTONIC));
  return 0;
}
