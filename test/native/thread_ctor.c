/* A shared library whose constructor starts a thread before main (and before the
 * recorder's own constructor, which runs after its dependents' in the dynamic linker's
 * order): the thread waits for the process to end. */
#include <pthread.h>
#include <unistd.h>

static void *wait_forever(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

__attribute__((constructor)) static void start_thread(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, wait_forever, NULL) == 0) pthread_detach(t);
}

int thread_ctor_linked(void) { return 1; }
