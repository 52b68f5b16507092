/* A process with threads writing lines to stdout, for test/output-fast.test.ts: another
 * thread writes THREAD_LINES lines, then the main thread MAIN_LINES, each line one
 * write(2). Last, a write that a cancellation pending on the main thread stops (a write
 * is a cancellation point: the thread ends there, unwritten, and with it the process,
 * whose exit status is then 0). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREAD_LINES 5
#define MAIN_LINES 1000

static int line(const char *who, int i) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%s line %d\n", who, i);
  return write(1, buf, (size_t)n) == n ? 0 : -1;
}

static void *cancel_main(void *main_thread) {
  pthread_cancel(*(pthread_t *)main_thread);
  return NULL;
}

static void *thread_main(void *arg) {
  (void)arg;
  for (int i = 0; i < THREAD_LINES; i++)
    if (line("thread", i) != 0) return (void *)1;
  return NULL;
}

int main(void) {
  pthread_t t;
  void *failed;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, &failed) != 0 || failed) return 5;
  for (int i = 0; i < MAIN_LINES; i++)
    if (line("main", i) != 0) return 3;
  /* a cancellation waits, disabled, then is pending when the write starts */
  pthread_t self = pthread_self(), canceller;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  if (pthread_create(&canceller, NULL, cancel_main, &self) != 0 || pthread_join(canceller, NULL) != 0) return 5;
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
  line("cancelled", 0);
  return 7;
}
