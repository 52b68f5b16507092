/* The main thread writes lines to stdout while another thread waits with a timeout, for
 * test/output-fast.test.ts: a thread's call right after its own timed wait ends that wait
 * (uwrx-init), another thread's wait is no reason. Each line is one write(2). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done;

static void *waiter(void *arg) {
  (void)arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&lock);
  while (!done)
    if (pthread_cond_timedwait(&cond, &lock, &until) == ETIMEDOUT) break;
  pthread_mutex_unlock(&lock);
  return NULL;
}

static int line(const char *who, int i) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%s line %d\n", who, i);
  return write(1, buf, (size_t)n) == n ? 0 : -1;
}

/* A sleep of this thread that uwrx-init sees: through syscall(), which the recorder
 * passes on (libc's usleep and nanosleep end in process, unseen by uwrx-init). */
static void notified_sleep(long us) {
  struct timespec ts = { us / 1000000, us % 1000000 * 1000 };
  syscall(SYS_nanosleep, &ts, NULL);
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, waiter, NULL) != 0) return 5;
  notified_sleep(100000); /* the other thread is in its wait now; so was this one */
  for (int i = 0; i < 1000; i++)
    if (line("main", i) != 0) return 3;
  notified_sleep(1000);
  if (line("after", 0) != 0 || line("after", 1) != 0) return 3;
  pthread_mutex_lock(&lock);
  done = 1;
  pthread_cond_signal(&cond);
  pthread_mutex_unlock(&lock);
  return pthread_join(t, NULL) == 0 ? 0 : 5;
}
