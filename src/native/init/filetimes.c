/* Times of the files this attempt changed (docs/record.md, "Timestamps in stat
 * results"): a file written, created or renamed by a process reads the virtual
 * wall-clock time of that process at the change, so the order of changes inside a run
 * is the order the build made them (make; edit; make rebuilds), and the same on replay.
 * Times a program set explicitly (utimensat with times, touch -d) are kept as set. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_hash.h"
#include "uwrx_stat_times.h"

struct file_time {
  struct file_time *next;
  uint64_t hash;
  int64_t ns;
  bool explicit_times; /* the kernel's times of the upper file are the program's */
  /* its slot in the recorders' table while published there in generation `gen` */
  int32_t slot;
  uint32_t gen;
  char path[];
};

#define BUCKETS 8192
static struct file_time *buckets[BUCKETS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* A rename's source entry, between its rename_from and rename_to records (one handler
 * thread records both, one after the other), and the slot it had (flags 0: none). */
static __thread struct file_time *moving;
static __thread struct uwrx_times_slot moving_slot;

/* ---- the recorders' table (uwrx_stat_times.h, UWRX_TIMES_PATH) ----
 * Written only here, with `lock` held. Slots published in the current generation are
 * listed so that all can go at once; an entry's slot counts only in the generation it
 * was published in. Taking a slot away is always safe (the next stat is notified and
 * publishes again): every change below takes away the slot of the entry it changes. */
static struct uwrx_times *table;
static uint32_t *listed; /* UWRX_TIMES_SLOTS indices */
static size_t nlisted;
static uint32_t generation = 1;

static void slot_write(uint32_t i, uint32_t flags, uint64_t dev, uint64_t ino, int64_t ns) {
  struct uwrx_times_slot *s = &table->slots[i];
  uint32_t seq = s->seq;
  __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&s->flags, flags, __ATOMIC_RELAXED);
  __atomic_store_n(&s->dev, dev, __ATOMIC_RELAXED);
  __atomic_store_n(&s->ino, ino, __ATOMIC_RELAXED);
  __atomic_store_n(&s->ns, ns, __ATOMIC_RELAXED);
  __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

static void slot_clear(uint32_t i) {
  if (table->slots[i].flags & UWRX_TIMES_LIVE) slot_write(i, UWRX_TIMES_USED, 0, 0, 0);
}

/* Whether slot `i` of generation `gen` is live in the table now (lock held). */
static bool slot_live(int32_t i, uint32_t gen) {
  return table && i >= 0 && gen == generation && (table->slots[i].flags & UWRX_TIMES_LIVE);
}

/* Takes the entry's slot away, if it has one (lock held). */
static void unpublish(struct file_time *e) {
  if (slot_live(e->slot, e->gen)) slot_clear((uint32_t)e->slot);
  e->slot = -1;
}

/* A slot for (dev, ino): its own if published, else the first free on its probe path;
 * -1 when all are taken (lock held). */
static int32_t slot_for(uint64_t dev, uint64_t ino) {
  uint32_t home = uwrx_times_home(dev, ino);
  int32_t free_slot = -1;
  for (uint32_t k = 0; k < UWRX_TIMES_PROBES; k++) {
    uint32_t i = (home + k) & (UWRX_TIMES_SLOTS - 1);
    const struct uwrx_times_slot *s = &table->slots[i];
    if (s->flags & UWRX_TIMES_LIVE) {
      if (s->dev == dev && s->ino == ino) return (int32_t)i;
    } else {
      if (free_slot < 0) free_slot = (int32_t)i;
      if (!(s->flags & UWRX_TIMES_USED)) break;
    }
  }
  return free_slot;
}

void filetimes_open_table(void) {
  pthread_mutex_lock(&lock);
  if (!table && !listed) {
    listed = malloc(UWRX_TIMES_SLOTS * sizeof *listed);
    int fd = listed ? open(UWRX_TIMES_PATH, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444) : -1;
    if (fd >= 0) {
      void *m = ftruncate(fd, (off_t)UWRX_TIMES_SIZE) == 0
                    ? mmap(NULL, UWRX_TIMES_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                    : MAP_FAILED;
      close(fd);
      if (m != MAP_FAILED) {
        table = m;
        __atomic_store_n(&table->magic, UWRX_TIMES_MAGIC, __ATOMIC_RELEASE);
      }
    }
  }
  pthread_mutex_unlock(&lock);
}

/* Takes every slot away (lock held). */
static void unpublish_all(void) {
  if (!table) return;
  for (size_t k = 0; k < nlisted; k++) slot_clear(listed[k]);
  nlisted = 0;
  generation++;
}

/* Publishes entry `e` as the inode (dev, ino) showing `shown` (lock held). */
static void publish(struct file_time *e, uint32_t flags, uint64_t dev, uint64_t ino, int64_t shown) {
  /* the list of published slots is full of slots taken away one by one since: start
   * again from an empty table */
  if (nlisted == UWRX_TIMES_SLOTS) unpublish_all();
  int32_t i = slot_for(dev, ino);
  if (i < 0) return;
  slot_write((uint32_t)i, flags, dev, ino, shown);
  e->slot = i;
  e->gen = generation;
  listed[nlisted++] = (uint32_t)i;
}

void filetimes_unpublish_all(void) {
  pthread_mutex_lock(&lock);
  unpublish_all();
  pthread_mutex_unlock(&lock);
}

/* The entry of `path`, or NULL (lock held). */
static struct file_time *find(const char *path, uint64_t h) {
  struct file_time *e = buckets[h % BUCKETS];
  while (e && (e->hash != h || strcmp(e->path, path) != 0)) e = e->next;
  return e;
}

/* Unlinks the entry of `path` and returns it (lock held). */
static struct file_time *take(const char *path, uint64_t h) {
  for (struct file_time **pp = &buckets[h % BUCKETS]; *pp; pp = &(*pp)->next) {
    struct file_time *e = *pp;
    if (e->hash == h && strcmp(e->path, path) == 0) {
      *pp = e->next;
      unpublish(e);
      return e;
    }
  }
  return NULL;
}

static void put(const char *path, uint64_t h, int64_t ns, bool explicit_times) {
  struct file_time *e = take(path, h);
  if (!e) {
    size_t len = strlen(path);
    e = malloc(sizeof *e + len + 1);
    if (!e) return;
    memcpy(e->path, path, len + 1);
    e->hash = h;
    e->slot = -1;
    e->gen = 0;
  }
  e->ns = ns;
  e->explicit_times = explicit_times;
  e->next = buckets[h % BUCKETS];
  buckets[h % BUCKETS] = e;
}

/* A directory whose entries change (an entry made, removed or renamed) shows the time of
 * that change, as natively, also where a program had set its times (lock held). */
static void entries_changed(const char *path, int64_t now) {
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return;
  char parent[PATH_MAX];
  size_t n = (size_t)(slash - path);
  if (n >= sizeof parent) return;
  memcpy(parent, path, n);
  parent[n] = 0;
  put(parent, uwrx_hash_str(parent), now, false);
}

void filetimes_changed(struct notif_ctx *ctx, const char *path, const char *op) {
  int64_t now;
  if (!ctx->proc || !clocks_stamp(ctx->proc, &now)) return;
  uint64_t h = uwrx_hash_str(path);
  pthread_mutex_lock(&lock);
  if (!strcmp(op, "create") || !strcmp(op, "mkdir") || !strcmp(op, "delete") || !strcmp(op, "rmdir") ||
      !strncmp(op, "rename_", 7))
    entries_changed(path, now);
  /* chmod, chown, attr (a link count, an extended attribute): no time changes */
  if (!strcmp(op, "rename_from")) {
    struct file_time *e = find(path, h);
    memset(&moving_slot, 0, sizeof moving_slot);
    if (e && slot_live(e->slot, e->gen)) moving_slot = table->slots[e->slot];
    free(moving);
    moving = take(path, h);
  } else if (!strcmp(op, "rename_to")) {
    /* a rename keeps the file's times */
    if (moving) put(path, h, moving->ns, moving->explicit_times);
    else put(path, h, now, false);
    /* and its inode: the time published for it goes on (rsync stats each file it
     * renamed into place); one that fails takes it away again (filetimes_renamed) */
    struct file_time *e = moving && (moving_slot.flags & UWRX_TIMES_LIVE) ? find(path, h) : NULL;
    if (e) publish(e, moving_slot.flags, moving_slot.dev, moving_slot.ino, moving_slot.ns);
    free(moving);
    moving = NULL;
  } else if (!strcmp(op, "delete") || !strcmp(op, "rmdir")) {
    free(take(path, h));
  } else if (!strcmp(op, "write") || !strcmp(op, "create") || !strcmp(op, "mkdir")) {
    put(path, h, now, false);
  }
  pthread_mutex_unlock(&lock);
}

void filetimes_renamed(const char *from, const char *to, bool done) {
  if (done) return;
  /* the entry moved, the file did not: back to its name, its slot taken away */
  uint64_t h = uwrx_hash_str(to);
  pthread_mutex_lock(&lock);
  struct file_time *e = take(to, h);
  if (e) put(from, uwrx_hash_str(from), e->ns, e->explicit_times);
  free(e);
  pthread_mutex_unlock(&lock);
}

void filetimes_move_below(const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to);
  struct file_time *moved = NULL;
  pthread_mutex_lock(&lock);
  for (size_t b = 0; b < BUCKETS; b++) {
    for (struct file_time **pp = &buckets[b]; *pp;) {
      struct file_time *e = *pp;
      if (strncmp(e->path, from, fl) == 0 && e->path[fl] == '/') {
        *pp = e->next;
        unpublish(e);
        e->next = moved;
        moved = e;
      } else {
        pp = &e->next;
      }
    }
  }
  while (moved) {
    struct file_time *e = moved;
    moved = e->next;
    char path[PATH_MAX];
    size_t rest = strlen(e->path + fl);
    if (tl + rest < sizeof path) {
      memcpy(path, to, tl);
      memcpy(path + tl, e->path + fl, rest + 1);
      put(path, uwrx_hash_str(path), e->ns, e->explicit_times);
    }
    free(e);
  }
  pthread_mutex_unlock(&lock);
}

void filetimes_explicit(const char *path) {
  uint64_t h = uwrx_hash_str(path);
  pthread_mutex_lock(&lock);
  struct file_time *e = take(path, h);
  int64_t ns = e ? e->ns : 0;
  free(e);
  put(path, h, ns, true);
  pthread_mutex_unlock(&lock);
}

void filetimes_same(const char *added, const char *existing) {
  uint64_t h = uwrx_hash_str(existing), ha = uwrx_hash_str(added);
  pthread_mutex_lock(&lock);
  struct file_time *e = find(existing, h);
  if (e) put(added, ha, e->ns, e->explicit_times);
  else free(take(added, ha));
  pthread_mutex_unlock(&lock);
}

void filetimes_each(void (*fn)(const char *path, int64_t ns, bool explicit_times, void *arg), void *arg) {
  pthread_mutex_lock(&lock);
  for (size_t b = 0; b < BUCKETS; b++)
    for (struct file_time *e = buckets[b]; e; e = e->next) fn(e->path, e->ns, e->explicit_times, arg);
  pthread_mutex_unlock(&lock);
}

bool filetimes_lookup(const char *path, int64_t *ns, bool *explicit_times) {
  uint64_t h = uwrx_hash_str(path);
  pthread_mutex_lock(&lock);
  struct file_time *e = find(path, h);
  if (e) {
    *ns = e->ns;
    *explicit_times = e->explicit_times;
  }
  pthread_mutex_unlock(&lock);
  return e != NULL;
}

void filetimes_publish(const char *path, int64_t changed, bool explicit_times, int64_t shown, uint64_t dev, uint64_t ino) {
  uint64_t h = uwrx_hash_str(path);
  pthread_mutex_lock(&lock);
  struct file_time *e = table ? find(path, h) : NULL;
  /* the entry still says what the caller showed, and is not published already */
  if (e && e->ns == changed && e->explicit_times == explicit_times && !(e->slot >= 0 && e->gen == generation))
    publish(e, UWRX_TIMES_USED | UWRX_TIMES_LIVE | (explicit_times ? UWRX_TIMES_EXPLICIT : 0), dev, ino, shown);
  pthread_mutex_unlock(&lock);
}
