/* Mounts made ahead: the plan's mount steps marked `ahead` name only sources that exist
 * before any step runs (host directories, the uppers Node made), so their filesystems
 * can be created while the steps before them run. Most of an overlay's mount is its
 * superblock: the work directory and the kernel's probes in it (tmpfile, whiteout
 * rename, xattr), a few inode allocations on the upper's filesystem each. Worker threads
 * make them with the mount API (fsopen, fsconfig, fsmount), several at once; the plan's
 * loop then attaches each one (move_mount) at its own place in the order, so the mount
 * tree, and every copy of it, is the one the steps describe.
 *
 * A filesystem that could not be made this way is mounted by mount(2) at its step as
 * any other, so what fails, fails with the message and errno it always had. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_init_proto.h"

/* Threads beside the plan's own: the kernel work is CPU (inode bitmaps, the page
 * cache), so more threads than CPUs only queue. */
#define AHEAD_MAX_THREADS 4

enum { SLOT_NONE, SLOT_QUEUED, SLOT_DONE };

struct slot {
  int state;
  int fd; /* the detached mount, or -1: mount(2) at the step */
};

static struct {
  pthread_mutex_t lock;
  pthread_cond_t done;
  const struct plan *plan;
  struct slot *slots; /* by step index */
  size_t next;        /* the next step a worker looks at */
  size_t last;        /* one past the last step made ahead */
  bool stop;
  pthread_t threads[AHEAD_MAX_THREADS];
  int nthreads;
} A = { .lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER };

/* Mount flags the mount API takes as mount attributes; any other makes a step mount(2)'s. */
static bool attrs_of(uint64_t flags, unsigned *attrs) {
  if (flags & ~(uint64_t)(MS_NOSUID | MS_NODEV | MS_NOEXEC)) return false;
  *attrs = (flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) | (flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0) |
           (flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0);
  return true;
}

static bool made_ahead(const struct plan_step *s) {
  unsigned attrs;
  if (!strcmp(s->op, OP_LAZY) && lazy_deferred()) return false; /* made at the first change */
  return s->ahead && (!strcmp(s->op, OP_MOUNT) || !strcmp(s->op, OP_LAZY)) && s->fstype && s->source &&
         attrs_of(s->flags, &attrs);
}

/* The step's filesystem context, configured and not created yet, or -1. Its options are
 * mount(2)'s data: key=value or flag, split at commas (the plan never puts one in a path
 * it overlays). */
static int configure_mount(const struct plan_step *s) {
  int fs = fsopen(s->fstype, FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  bool ok = fsconfig(fs, FSCONFIG_SET_STRING, "source", s->source, 0) == 0;
  char *data = s->data ? strdup(s->data) : NULL;
  if (s->data && !data) ok = false;
  char *save = NULL;
  for (char *opt = data ? strtok_r(data, ",", &save) : NULL; ok && opt; opt = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(opt, '=');
    if (eq) *eq = 0;
    ok = fsconfig(fs, eq ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opt, eq ? eq + 1 : NULL, 0) == 0;
  }
  free(data);
  if (ok) return fs;
  int err = errno;
  close(fs);
  errno = err;
  return -1;
}

int ahead_create(int fs, uint64_t flags) {
  unsigned attrs = 0;
  attrs_of(flags, &attrs);
  int mnt = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, attrs) : -1;
  int err = errno;
  close(fs);
  errno = err;
  return mnt;
}

/* The step's filesystem as a detached mount, or -1. */
static int make_mount(const struct plan_step *s) {
  int fs = configure_mount(s);
  return fs < 0 ? -1 : ahead_create(fs, s->flags);
}

static void *worker(void *arg) {
  (void)arg;
  pthread_mutex_lock(&A.lock);
  while (!A.stop && A.next < A.last) {
    size_t i = A.next++;
    if (A.slots[i].state != SLOT_QUEUED) continue;
    pthread_mutex_unlock(&A.lock);
    int fd = make_mount(&A.plan->steps[i]);
    pthread_mutex_lock(&A.lock);
    A.slots[i].fd = fd;
    A.slots[i].state = SLOT_DONE;
    pthread_cond_broadcast(&A.done);
  }
  pthread_mutex_unlock(&A.lock);
  return NULL;
}

void ahead_start(const struct plan *plan) {
  size_t count = 0;
  for (size_t i = 0; i < plan->nsteps; i++) count += made_ahead(&plan->steps[i]);
  if (count == 0) return;
  A.slots = calloc(plan->nsteps, sizeof *A.slots);
  if (!A.slots) return; /* every step then mounts in order */
  A.plan = plan;
  for (size_t i = 0; i < plan->nsteps; i++) {
    A.slots[i].fd = -1;
    if (made_ahead(&plan->steps[i])) {
      A.slots[i].state = SLOT_QUEUED;
      A.last = i + 1;
    }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int want = cpus < 1 ? 1 : cpus > AHEAD_MAX_THREADS ? AHEAD_MAX_THREADS : (int)cpus;
  if ((size_t)want > count) want = (int)count;
  for (int t = 0; t < want; t++)
    if (pthread_create(&A.threads[A.nthreads], NULL, worker, NULL) == 0) A.nthreads++;
}

/* Joins the workers; mounts made and never attached are closed (gone with their fd). */
static void ahead_finish(void) {
  pthread_mutex_lock(&A.lock);
  A.stop = true;
  pthread_mutex_unlock(&A.lock);
  for (int t = 0; t < A.nthreads; t++) pthread_join(A.threads[t], NULL);
  A.nthreads = 0;
  if (!A.slots) return;
  for (size_t i = 0; i < A.last; i++)
    if (A.slots[i].fd >= 0) close(A.slots[i].fd);
  free(A.slots);
  A.slots = NULL;
}

int ahead_take(const struct plan_step *s) {
  if (!A.slots) return -1;
  size_t i = (size_t)(s - A.plan->steps);
  if (i >= A.last || A.slots[i].state == SLOT_NONE) return -1;
  pthread_mutex_lock(&A.lock);
  /* a step no worker took yet (all busy) is made here: no waiting behind them */
  bool mine = A.slots[i].state == SLOT_QUEUED && A.next <= i;
  if (mine) A.slots[i].state = SLOT_NONE;
  while (!mine && A.slots[i].state != SLOT_DONE) pthread_cond_wait(&A.done, &A.lock);
  int fd = mine ? -1 : A.slots[i].fd;
  A.slots[i].fd = -1;
  pthread_mutex_unlock(&A.lock);
  if (mine) fd = make_mount(s);
  if (i + 1 == A.last) ahead_finish();
  return fd;
}

int ahead_attach(const struct plan_step *s) {
  int fd = ahead_take(s);
  if (fd < 0) return -1;
  int rc = move_mount(fd, "", AT_FDCWD, s->target, MOVE_MOUNT_F_EMPTY_PATH);
  close(fd);
  return rc;
}

void ahead_abandon(void) {
  ahead_finish();
}
