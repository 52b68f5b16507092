/* Times of the files this attempt changed (docs/record.md, "Timestamps in stat
 * results"): a file written, created or renamed by a process reads the virtual
 * wall-clock time of that process at the change, so the order of changes inside a run
 * is the order the build made them (make; edit; make rebuilds), and the same on replay.
 * Times a program set explicitly (utimensat with times, touch -d) are kept as set. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"
#include "uwrx_hash.h"

struct file_time {
  struct file_time *next;
  uint64_t hash;
  int64_t ns;
  bool explicit_times; /* the kernel's times of the upper file are the program's */
  char path[];
};

#define BUCKETS 8192
static struct file_time *buckets[BUCKETS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* A rename's source entry, between its rename_from and rename_to records (one handler
 * thread records both, one after the other). */
static __thread struct file_time *moving;

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
    free(moving);
    moving = take(path, h);
  } else if (!strcmp(op, "rename_to")) {
    /* a rename keeps the file's times */
    if (moving) put(path, h, moving->ns, moving->explicit_times);
    else put(path, h, now, false);
    free(moving);
    moving = NULL;
  } else if (!strcmp(op, "delete") || !strcmp(op, "rmdir")) {
    free(take(path, h));
  } else if (!strcmp(op, "write") || !strcmp(op, "create") || !strcmp(op, "mkdir")) {
    put(path, h, now, false);
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
