/* A main thread that waits in a write into a full pipe while another thread cancels it,
 * for test/output-fast.test.ts: a write is a cancellation point, so the main thread ends
 * in it (what reached the pipe stays there) and the process with it, never reaching the
 * line after. The other thread cancels once a line arrives on stdin. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_t main_thread;

static void *canceller(void *arg) {
  (void)arg;
  char c;
  if (read(0, &c, 1) == 1) pthread_cancel(main_thread);
  return NULL;
}

int main(void) {
  static char buf[1 << 20];
  memset(buf, 'x', sizeof buf);
  main_thread = pthread_self();
  pthread_t t;
  if (pthread_create(&t, NULL, canceller, NULL) != 0) return 5;
  ssize_t n = write(1, buf, sizeof buf);
  fprintf(stderr, "not cancelled: %zd\n", n);
  return 3;
}
