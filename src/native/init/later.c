/* Work of an exit report that needs none of the table: closing the ended process's
 * trace buffer (ftruncate, rename, close), unmapping its recorder header, closing its
 * pidfd. Exits are reported by pid 1 with g.lock held, and the next process's first
 * notification waits for that lock: in a shell loop the child's execve arrives while
 * pid 1 reports the previous child's exit. So the report queues these here and pid 1
 * runs them once it let go of the lock. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "init.h"

struct later_item {
  void (*fn)(void *arg, size_t n);
  void *arg;
  size_t n;
};

static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;
static struct later_item *items;
static size_t nitems, capitems;

void later(void (*fn)(void *arg, size_t n), void *arg, size_t n) {
  pthread_mutex_lock(&later_lock);
  if (nitems == capitems) {
    size_t cap = capitems ? capitems * 2 : 16;
    struct later_item *grown = realloc(items, cap * sizeof *grown);
    if (!grown) {
      /* no room to queue it: done now, as before */
      pthread_mutex_unlock(&later_lock);
      fn(arg, n);
      return;
    }
    items = grown;
    capitems = cap;
  }
  items[nitems++] = (struct later_item){ fn, arg, n };
  pthread_mutex_unlock(&later_lock);
}

static void unmap_it(void *addr, size_t len) { munmap(addr, len); }
static void close_it(void *unused, size_t fd) {
  (void)unused;
  close((int)fd);
}

void later_unmap(void *addr, size_t len) { later(unmap_it, addr, len); }
void later_close(int fd) {
  if (fd >= 0) later(close_it, NULL, (size_t)fd);
}

void later_run(void) {
  pthread_mutex_lock(&later_lock);
  while (nitems) {
    /* in the order queued; what the items queue in turn runs in the next round */
    struct later_item *run = items;
    size_t n = nitems;
    items = NULL;
    nitems = capitems = 0;
    pthread_mutex_unlock(&later_lock);
    for (size_t i = 0; i < n; i++) run[i].fn(run[i].arg, run[i].n);
    free(run);
    pthread_mutex_lock(&later_lock);
  }
  pthread_mutex_unlock(&later_lock);
}
