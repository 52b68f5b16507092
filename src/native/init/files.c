/* The file store's handlers: files.meta, per-process versions, stat time squashing.
 *
 * The live overlay uppers are the truth during the run. Before process P changes X (write
 * open, truncate, delete, rename onto or away, chmod, chown, utime) while X holds a
 * version written by another process q of this attempt, q's version is copied through
 * the sandbox view into <versions>/<q>/<X> (a whiteout when X was absent). At the end
 * uwrx-init writes <versions>/index.tsv (`<path>\t<first writer>\t<last writer>\t<q,q...>` for
 * every path with preserved versions); src/sandbox/finish.ts turns that into files/ and
 * files-<pid>/. A path written by one process costs nothing here beyond one table entry.
 *
 * files.meta lines are buffered here and appended to the run directory's files.meta.
 * Only paths inside the overlays (what ends up in files/) are recorded.
 *
 * Stat results of files inside the overlays are answered here with squashed times: the
 * real filesystem T0, parent layer i T0 + i*interval, this attempt T0 + (layers+1)*interval.
 * The layer is found by looking the path up in the upper directory and the parents'
 * layer directories (fds opened before pivot_root). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "init.h"
#include "../common/tracebuf.h"
#include "uwrx_recorder.h"

struct files_lower {
  char *dir;
  int layer;
  int fd;
};

struct files_overlay {
  char *mount_point;
  size_t mlen;
  char *upper;
  int upper_fd;
  struct files_lower *lowers;
  size_t nlowers;
};

static struct {
  bool enabled;
  char *meta_path, *versions_path;
  int meta_fd, versions_fd;
  int64_t t0_ns, interval_ns;
  int layers;  /* parent layers below this attempt */
  struct files_overlay *ovl;
  size_t novl;
} F = { .meta_fd = -1, .versions_fd = -1 };

/* ---- plan ---- */

static bool read_lower(struct mp_reader *r, struct files_lower *l) {
  uint32_t n;
  if (!mp_read_map(r, &n)) return false;
  l->fd = -1;
  while (n--) {
    const char *k;
    uint32_t klen;
    int64_t v;
    if (!mp_read_bytes(r, &k, &klen)) return false;
    if (mp_key_is(k, klen, "dir")) {
      if (!mp_read_strdup(r, &l->dir)) return false;
    } else if (mp_key_is(k, klen, "layer")) {
      if (!mp_read_int(r, &v)) return false;
      l->layer = (int)v;
    } else if (!mp_skip(r)) return false;
  }
  return l->dir != NULL;
}

static bool read_overlay(struct mp_reader *r, struct files_overlay *o) {
  uint32_t n;
  if (!mp_read_map(r, &n)) return false;
  o->upper_fd = -1;
  while (n--) {
    const char *k;
    uint32_t klen;
    if (!mp_read_bytes(r, &k, &klen)) return false;
    if (mp_key_is(k, klen, "mountPoint")) {
      if (!mp_read_strdup(r, &o->mount_point)) return false;
    } else if (mp_key_is(k, klen, "upper")) {
      if (!mp_read_strdup(r, &o->upper)) return false;
    } else if (mp_key_is(k, klen, "lowers")) {
      uint32_t count;
      if (!mp_read_array(r, &count)) return false;
      o->lowers = calloc(count ? count : 1, sizeof *o->lowers);
      if (!o->lowers) return false;
      o->nlowers = count;
      for (uint32_t i = 0; i < count; i++)
        if (!read_lower(r, &o->lowers[i])) return false;
    } else if (!mp_skip(r)) return false;
  }
  if (!o->mount_point || !o->upper) return false;
  o->mlen = strlen(o->mount_point);
  return true;
}

bool files_parse_plan(struct mp_reader *r) {
  uint32_t n;
  if (!mp_read_map(r, &n)) return false;
  F.interval_ns = 1000000000LL;
  while (n--) {
    const char *k;
    uint32_t klen;
    int64_t v;
    if (!mp_read_bytes(r, &k, &klen)) return false;
    if (mp_key_is(k, klen, "meta")) {
      if (!mp_read_strdup(r, &F.meta_path)) return false;
    } else if (mp_key_is(k, klen, "versions")) {
      if (!mp_read_strdup(r, &F.versions_path)) return false;
    } else if (mp_key_is(k, klen, "intervalNs")) {
      if (!mp_read_int(r, &v)) return false;
      F.interval_ns = v;
    } else if (mp_key_is(k, klen, "layers")) {
      if (!mp_read_int(r, &v)) return false;
      F.layers = (int)v;
    } else if (mp_key_is(k, klen, "overlays")) {
      uint32_t count;
      if (!mp_read_array(r, &count)) return false;
      F.ovl = calloc(count ? count : 1, sizeof *F.ovl);
      if (!F.ovl) return false;
      F.novl = count;
      for (uint32_t i = 0; i < count; i++)
        if (!read_overlay(r, &F.ovl[i])) return false;
    } else if (!mp_skip(r)) return false;
  }
  F.enabled = F.meta_path && F.versions_path;
  return true;
}

int64_t files_wall_offset_ns(void) {
  return F.enabled ? uwrx_time_wall_offset(F.layers, F.interval_ns) : 0;
}

bool files_open(const struct plan *plan, const char **what) {
  if (!F.enabled) return true;
  F.t0_ns = plan->repro.time.t0_ns;
  *what = F.meta_path;
  F.meta_fd = open(F.meta_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (F.meta_fd < 0) return false;
  *what = F.versions_path;
  mkdir(F.versions_path, 0755);
  F.versions_fd = open(F.versions_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (F.versions_fd < 0) return false;
  for (size_t i = 0; i < F.novl; i++) {
    struct files_overlay *o = &F.ovl[i];
    o->upper_fd = open(o->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t j = 0; j < o->nlowers; j++) o->lowers[j].fd = open(o->lowers[j].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  return true;
}

/* The overlay holding absolute path `p` (longest mount point), and the path inside it. */
static struct files_overlay *overlay_of(const char *p, const char **rel) {
  struct files_overlay *best = NULL;
  for (size_t i = 0; i < F.novl; i++) {
    struct files_overlay *o = &F.ovl[i];
    if (strncmp(p, o->mount_point, o->mlen) != 0) continue;
    if (p[o->mlen] != '/' && p[o->mlen] != 0) continue;
    if (!best || o->mlen > best->mlen) best = o;
  }
  if (best) {
    const char *r = p + best->mlen;
    while (*r == '/') r++;
    *rel = *r ? r : ".";
  }
  return best;
}

/* ---- files.meta ---- */

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static char *meta_buf;
static size_t meta_len, meta_cap;
#define META_FLUSH_AT (64 * 1024)

static void meta_flush_locked(void) {
  size_t off = 0;
  while (off < meta_len) {
    ssize_t n = write(F.meta_fd, meta_buf + off, meta_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  meta_len = 0;
}

static bool meta_reserve(size_t more) {
  if (meta_len + more <= meta_cap) return true;
  size_t cap = meta_cap ? meta_cap : 128 * 1024;
  while (cap < meta_len + more) cap *= 2;
  char *grown = realloc(meta_buf, cap);
  if (!grown) return false;
  meta_buf = grown;
  meta_cap = cap;
  return true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when there is none. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned b = s[0], len, cp, min;
  if (b >= 0xc2 && b <= 0xdf) len = 2, min = 0x80;
  else if (b >= 0xe0 && b <= 0xef) len = 3, min = 0x800;
  else if (b >= 0xf0 && b <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (len > n) return 0;
  cp = b & (0xffu >> (len + 1));
  for (unsigned k = 1; k < len; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/* Appends `s` escaped as src/record/escape.ts does (the buffer has room: 4 bytes per byte). */
static void meta_escape(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n = strlen(str);
  char *out = meta_buf + meta_len;
  for (size_t i = 0; i < n;) {
    unsigned b = s[i];
    if (b == '\t') out += sprintf(out, "\\t");
    else if (b == '\n') out += sprintf(out, "\\n");
    else if (b == '\r') out += sprintf(out, "\\r");
    else if (b == '\\') out += sprintf(out, "\\\\");
    else if (b < 0x20 || b == 0x7f) out += sprintf(out, "\\x%02x", b);
    else if (b < 0x80) *out++ = (char)b;
    else {
      size_t len = utf8_len(s + i, n - i);
      if (!len) out += sprintf(out, "\\x%02x", b);
      else {
        memcpy(out, s + i, len);
        out += len;
        i += len;
        continue;
      }
    }
    i++;
  }
  meta_len = (size_t)(out - meta_buf);
}

static void meta_line(const char *path, int pid, const char *op, const char *exe) {
  pthread_mutex_lock(&meta_lock);
  if (meta_reserve(4 * (strlen(path) + strlen(exe)) + 64)) {
    meta_escape(path);
    meta_len += (size_t)sprintf(meta_buf + meta_len, "\t%d\t%s\t", pid, op);
    meta_escape(exe);
    meta_buf[meta_len++] = '\n';
    if (meta_len >= META_FLUSH_AT) meta_flush_locked();
  }
  pthread_mutex_unlock(&meta_lock);
}

/* ---- writers and versions ---- */

struct writer_entry {
  struct writer_entry *next;
  uint64_t hash;
  int first, last;
  int *preserved;    /* pids whose version sits in <versions>/<pid>/ */
  size_t npreserved;
  char path[];
};

#define WRITER_BUCKETS 65536
static struct writer_entry *writers[WRITER_BUCKETS];
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash_path(const char *p) {
  uint64_t h = 1469598103934665603ULL;
  for (; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
  return h;
}

static struct writer_entry *writer_get(const char *path, bool create) {
  uint64_t h = hash_path(path);
  struct writer_entry **slot = &writers[h % WRITER_BUCKETS];
  for (struct writer_entry *e = *slot; e; e = e->next)
    if (e->hash == h && !strcmp(e->path, path)) return e;
  if (!create) return NULL;
  size_t len = strlen(path);
  struct writer_entry *e = calloc(1, sizeof *e + len + 1);
  if (!e) return NULL;
  e->hash = h;
  memcpy(e->path, path, len + 1);
  e->next = *slot;
  *slot = e;
  return e;
}

/* mkdir -p of the directories of `rel` below dirfd. */
static void make_parents(int dirfd, char *rel) {
  for (char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
    *s = 0;
    mkdirat(dirfd, rel, 0755);
    *s = '/';
  }
}

static bool copy_contents(int in, int out) {
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n == 0) return true;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    break;
  }
  /* other filesystems (or kernels): plain copy */
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      off += w;
    }
  }
}

/* Copies X's current state (as the sandbox sees it) to <versions>/<pid>/X: a copy of a
 * regular file, a symlink, or a whiteout when X is absent. Directories, fifos, sockets
 * and devices are not versioned (*versioned false). */
static bool preserve(const char *path, int pid, bool *versioned) {
  char *rel;
  if (asprintf(&rel, "%d%s", pid, path) < 0) return false;
  make_parents(F.versions_fd, rel);
  unlinkat(F.versions_fd, rel, 0);
  struct stat st;
  bool ok = false;
  *versioned = true;
  if (lstat(path, &st) != 0) {
    ok = mknodat(F.versions_fd, rel, S_IFCHR | 0000, makedev(0, 0)) == 0;
  } else if (S_ISREG(st.st_mode)) {
    int in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int out = in < 0 ? -1 : openat(F.versions_fd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) {
      ok = copy_contents(in, out);
      fchmod(out, st.st_mode & 07777);
      struct timespec times[2] = { st.st_atim, st.st_mtim };
      futimens(out, times);
      close(out);
    }
    if (in >= 0) close(in);
  } else if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX_TARGET];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n >= 0) {
      target[n] = 0;
      ok = symlinkat(target, F.versions_fd, rel) == 0;
    }
  } else {
    *versioned = false;
  }
  free(rel);
  return ok;
}

/* Process `pid` is about to change `path`: keep the version another process left there. */
static void before_change(const char *path, int pid) {
  pthread_mutex_lock(&writers_lock);
  struct writer_entry *e = writer_get(path, true);
  if (e) {
    if (e->last == 0) e->first = pid;
    else if (e->last != pid) {
      struct stat st;
      bool dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
      bool versioned = false;
      bool kept = !dir && preserve(path, e->last, &versioned);
      if (versioned && !kept) problem_at(PROBLEM_VERSION_LOST, path);
      if (kept) {
        bool known = false;
        for (size_t i = 0; i < e->npreserved; i++) known |= e->preserved[i] == e->last;
        int *grown = known ? e->preserved : realloc(e->preserved, (e->npreserved + 1) * sizeof *grown);
        if (grown && !known) {
          grown[e->npreserved++] = e->last;
          e->preserved = grown;
        }
      }
    }
    e->last = pid;
  }
  pthread_mutex_unlock(&writers_lock);
}

/* The index of preserved versions, written when the sandbox ends. */
void files_finish(void) {
  if (!F.enabled) return;
  pthread_mutex_lock(&meta_lock);
  meta_flush_locked();
  pthread_mutex_unlock(&meta_lock);
  /* the run directory is hidden by now: reached through the fd opened before */
  int fd = openat(F.versions_fd, "index.tsv", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  pthread_mutex_lock(&writers_lock);
  pthread_mutex_lock(&meta_lock);
  meta_len = 0;
  for (size_t b = 0; b < WRITER_BUCKETS; b++) {
    for (struct writer_entry *e = writers[b]; e; e = e->next) {
      if (!e->npreserved) continue;
      if (!meta_reserve(4 * strlen(e->path) + 32 + 12 * e->npreserved)) continue;
      meta_escape(e->path);
      meta_len += (size_t)sprintf(meta_buf + meta_len, "\t%d\t%d\t", e->first, e->last);
      for (size_t i = 0; i < e->npreserved; i++)
        meta_len += (size_t)sprintf(meta_buf + meta_len, "%s%d", i ? "," : "", e->preserved[i]);
      meta_buf[meta_len++] = '\n';
      if (meta_len >= META_FLUSH_AT) {
        int saved = F.meta_fd;
        F.meta_fd = fd;
        meta_flush_locked();
        F.meta_fd = saved;
      }
    }
  }
  int saved = F.meta_fd;
  F.meta_fd = fd;
  meta_flush_locked();
  F.meta_fd = saved;
  pthread_mutex_unlock(&meta_lock);
  pthread_mutex_unlock(&writers_lock);
  close(fd);
}

/* ---- paths ---- */

/* Canonical form of `p` as the kernel resolves it (symlinks in the directories always,
 * in the last component when `follow`); `p` is returned (not copied) when it cannot be
 * resolved, e.g. a file about to be created. Caller frees the result. */
static char *canonical(char *p, bool follow) {
  char link[64], buf[PATH_MAX_TARGET];
  int fd = follow ? open(p, O_PATH | O_CLOEXEC) : -1;
  if (fd >= 0) {
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && buf[0] == '/') {
      buf[n] = 0;
      free(p);
      return strdup(buf);
    }
    return p;
  }
  char *slash = strrchr(p, '/');
  if (!slash || slash == p) return p;
  *slash = 0;
  fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
  *slash = '/';
  if (fd < 0) return p;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0 || buf[0] != '/') return p;
  buf[n] = 0;
  char *out;
  if (asprintf(&out, "%s%s", strcmp(buf, "/") ? buf : "", slash) < 0) return p;
  free(p);
  return out;
}

/* A path argument, canonical; NULL when unreadable. */
static char *arg_path(struct notif_ctx *ctx, const struct path_arg *a) {
  char *p = target_path_at(ctx, a->dirfd, a->addr);
  return p ? canonical(p, a->follow) : NULL;
}

/* Path of the target's open fd `fd`; NULL for pipes, sockets, deleted files. */
static char *fd_path(struct notif_ctx *ctx, int fd) {
  char *p = target_dir_path(ctx->req->pid, fd);
  if (p && (p[0] != '/' || strstr(p, " (deleted)"))) {
    free(p);
    return NULL;
  }
  return p;
}

/* The file a call acts on: its path argument, or the open file named by its fd (fchmod,
 * utimensat with a NULL path) or by an empty path with AT_EMPTY_PATH. */
static char *call_file(struct notif_ctx *ctx, const struct call_args *a) {
  if (!a->has_path) return a->fd >= 0 ? fd_path(ctx, a->fd) : NULL;
  if (a->path.empty_ok && a->path.dirfd != AT_FDCWD) {
    char *s = target_string(ctx, a->path.addr, 2);
    bool empty = s && !s[0];
    free(s);
    if (empty) return fd_path(ctx, a->path.dirfd);
  }
  return arg_path(ctx, &a->path);
}

static char *exe_of(pid_t tid) {
  char link[64], buf[PATH_MAX_TARGET];
  snprintf(link, sizeof link, "/proc/%d/exe", tid);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n < 0) n = 0;
  buf[n] = 0;
  return strdup(buf);
}

/* One recorded operation: versions first (the target still waits), then files.meta. */
static void record(struct notif_ctx *ctx, const char *path, const char *op, bool versioned) {
  const char *rel;
  if (!path || !ctx->proc || !overlay_of(path, &rel)) return;
  int pid = ctx->proc->logical;
  if (versioned) before_change(path, pid);
  char *exe = exe_of(ctx->req->pid);
  meta_line(path, pid, op, exe ? exe : "");
  free(exe);
}

static void trace_path_op(struct notif_ctx *ctx, uint16_t type, const char *path, const char *path2, int64_t a,
                          int64_t b) {
  struct uwrx_tracebuf *tb = ctx->proc ? ctx->proc->trace : NULL;
  if (tb && path) uwrx_trace_path_op(tb, type, trace_logical_tid(ctx->proc, ctx->req->pid), path, path2, a, b, 0);
}

/* A read access seen on the notification path: the same event the in-process recorder
 * writes (uwrx_recorder.h), with the path as the process named it, made absolute and
 * lexically normalised. The call continues in the kernel after this, so the result is
 * what the path resolves to now: 0 when it exists, else -errno (ENOENT for a probe). */
static void trace_access(struct notif_ctx *ctx, uint32_t op, const char *path, int32_t flags, bool follow) {
  struct uwrx_tracebuf *tb = ctx->proc ? ctx->proc->trace : NULL;
  if (!tb || !path) return;
  struct stat st;
  int64_t result = fstatat(AT_FDCWD, path, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
  struct uwrx_ev_access ev = { .op = op, .flags = flags, .result = result, .count = 1 };
  struct uwrx_blob b = { path, strlen(path) };
  uwrx_trace_emit(tb, UWRX_EV_ACCESS, trace_logical_tid(ctx->proc, ctx->req->pid), &ev, sizeof ev, &b, 1);
}

/* Every file call notified, counted: the slow path's share in the benchmarks. */
static uint64_t notifications;

uint64_t files_notifications(void) { return __atomic_load_n(&notifications, __ATOMIC_RELAXED); }

static void count_call(void) { __atomic_add_fetch(&notifications, 1, __ATOMIC_RELAXED); }

/* ---- opens ---- */

static bool write_intent(uint64_t flags) {
  if ((flags & O_TMPFILE) == O_TMPFILE) return false;
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
}

static enum verdict on_open(struct notif_ctx *ctx) {
  count_call();
  const struct seccomp_notif *req = ctx->req;
  struct call_args a;
  if (!decode_call(ctx, &a)) return VERDICT_CONTINUE;
  uint64_t flags = a.flags;
  if (!write_intent(flags)) {
    /* a read: recorded as named, then the kernel opens it */
    char *path = target_path_at(ctx, a.path.dirfd, a.path.addr);
    trace_access(ctx, (flags & O_DIRECTORY) ? UWRX_ACCESS_READDIR : UWRX_ACCESS_READ, path, (int32_t)flags, a.path.follow);
    free(path);
    return VERDICT_CONTINUE;
  }
  char *path = arg_path(ctx, &a.path);
  if (!path) return VERDICT_CONTINUE;
  struct stat st;
  bool existed = lstat(path, &st) == 0;
  if (existed && (flags & O_CREAT) && (flags & O_EXCL)) {
    free(path);
    return VERDICT_CONTINUE;
  }
  if (!(existed && S_ISDIR(st.st_mode))) record(ctx, path, (flags & O_CREAT) && !existed ? "create" : "write", true);
  struct uwrx_tracebuf *tb = ctx->proc ? ctx->proc->trace : NULL;
  if (tb) uwrx_trace_open(tb, trace_logical_tid(ctx->proc, req->pid), path, (int32_t)flags, a.mode, 0);
  free(path);
  return VERDICT_CONTINUE;
}

/* ---- stat ---- */

static int64_t layer_time(const char *path) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  if (!o) return -1;
  struct stat st;
  int layer = 0;
  if (o->upper_fd >= 0 && fstatat(o->upper_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0) layer = F.layers + 1;
  else {
    for (size_t i = 0; i < o->nlowers; i++) {
      if (o->lowers[i].fd < 0 || fstatat(o->lowers[i].fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) break;
      layer = o->lowers[i].layer;
      break;
    }
  }
  return F.t0_ns + (int64_t)layer * F.interval_ns;
}

/* Canonical form of directories (symlinks resolved), cached: most stats of a build hit a
 * few directories. Dropped whenever a rename, rmdir or the removal of a symlink could
 * change what a directory path leads to. */
struct dir_entry {
  struct dir_entry *next;
  uint64_t hash;
  char *canon;
  char path[];
};

#define DIR_BUCKETS 4096
#define DIR_CACHE_MAX 16384
static struct dir_entry *dir_cache[DIR_BUCKETS];
static size_t dir_cached;
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;

static void dir_cache_clear_locked(void) {
  for (size_t b = 0; b < DIR_BUCKETS; b++) {
    for (struct dir_entry *e = dir_cache[b], *next; e; e = next) {
      next = e->next;
      free(e->canon);
      free(e);
    }
    dir_cache[b] = NULL;
  }
  dir_cached = 0;
}

static void dir_cache_clear(void) {
  pthread_mutex_lock(&dir_lock);
  dir_cache_clear_locked();
  pthread_mutex_unlock(&dir_lock);
}

/* Canonical path of directory `dir` (malloc'd), NULL when it cannot be resolved. */
static char *canonical_dir(const char *dir) {
  uint64_t h = hash_path(dir);
  pthread_mutex_lock(&dir_lock);
  for (struct dir_entry *e = dir_cache[h % DIR_BUCKETS]; e; e = e->next) {
    if (e->hash == h && !strcmp(e->path, dir)) {
      char *out = strdup(e->canon);
      pthread_mutex_unlock(&dir_lock);
      return out;
    }
  }
  pthread_mutex_unlock(&dir_lock);
  int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char link[64], buf[PATH_MAX_TARGET];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0 || buf[0] != '/') return NULL;
  buf[n] = 0;
  size_t len = strlen(dir);
  struct dir_entry *e = malloc(sizeof *e + len + 1);
  char *canon = strdup(buf);
  if (e && canon) {
    e->hash = h;
    e->canon = canon;
    memcpy(e->path, dir, len + 1);
    pthread_mutex_lock(&dir_lock);
    if (dir_cached >= DIR_CACHE_MAX) dir_cache_clear_locked();
    e->next = dir_cache[h % DIR_BUCKETS];
    dir_cache[h % DIR_BUCKETS] = e;
    dir_cached++;
    pthread_mutex_unlock(&dir_lock);
    return strdup(buf);
  }
  free(e);
  free(canon);
  return NULL;
}

/* The stat result, either kind. */
struct stat_result {
  bool is_statx;
  struct stat st;
  struct statx stx;
};

static bool do_stat(int dirfd, const char *path, int flags, unsigned mask, struct stat_result *r) {
  if (r->is_statx) return statx(dirfd, path, flags, mask, &r->stx) == 0;
  return fstatat(dirfd, path, &r->st, flags) == 0;
}

static bool is_symlink(const struct stat_result *r) {
  return r->is_statx ? S_ISLNK(r->stx.stx_mode) : S_ISLNK(r->st.st_mode);
}

/* Fast path for a path argument: canonical directory (cached) + last component, stat'ed
 * without following; a symlink to follow or a path with "." components goes the slow way.
 * Returns the canonical path (malloc'd) with *r filled, or NULL. */
static char *stat_by_path(const char *abs, int flags, unsigned mask, struct stat_result *r) {
  if (strstr(abs, "/.") || strstr(abs, "//")) return NULL;
  const char *slash = strrchr(abs, '/');
  if (!slash || !slash[1]) return NULL;
  char *dir = strndup(abs, slash == abs ? 1 : (size_t)(slash - abs));
  char *cdir = dir ? canonical_dir(dir) : NULL;
  free(dir);
  if (!cdir) return NULL;
  char *canon;
  int ok = asprintf(&canon, "%s%s", strcmp(cdir, "/") ? cdir : "", slash);
  free(cdir);
  if (ok < 0) return NULL;
  int sync = r->is_statx ? (flags & AT_STATX_SYNC_TYPE) : 0;
  if (!do_stat(AT_FDCWD, canon, AT_SYMLINK_NOFOLLOW | sync, mask, r) ||
      (is_symlink(r) && !(flags & AT_SYMLINK_NOFOLLOW))) {
    free(canon);
    return NULL;
  }
  return canon;
}

/* Slow path: open the file (O_PATH) as the kernel resolves it, ask the kernel where it is. */
static char *stat_by_open(int base, const char *path, int oflags, int flags, unsigned mask, struct stat_result *r) {
  int file = openat(base, path, O_PATH | O_CLOEXEC | oflags);
  if (file < 0) return NULL;
  char self[64], where[PATH_MAX_TARGET];
  snprintf(self, sizeof self, "/proc/self/fd/%d", file);
  ssize_t n = readlink(self, where, sizeof where - 1);
  char *canon = NULL;
  if (n > 0 && where[0] == '/') {
    where[n] = 0;
    int sync = r->is_statx ? (flags & AT_STATX_SYNC_TYPE) : 0;
    if (!strstr(where, " (deleted)") && do_stat(file, "", AT_EMPTY_PATH | sync, mask, r)) canon = strdup(where);
  }
  close(file);
  return canon;
}

/* Target memory without opening /proc/<tid>/mem (two syscalls saved on the hottest path):
 * a NUL-terminated string, read a page at most at a time. */
static bool vm_write(pid_t tid, uint64_t addr, const void *data, size_t len) {
  struct iovec local = { (void *)data, len }, remote = { (void *)(uintptr_t)addr, len };
  if (process_vm_writev(tid, &local, 1, &remote, 1, 0) == (ssize_t)len) return true;
  /* read-only pages (a buffer that would fault anyway) or no ptrace access: via mem */
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", tid);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = pwrite(fd, data, len, (off_t)addr) == (ssize_t)len;
  close(fd);
  return ok;
}

/* stat, lstat, fstat, newfstatat, statx of files inside the overlays: stat'ed here, the
 * times replaced by the file's layer's, the struct written into the target. Anything
 * unusual (errors, files outside the overlays) goes to the kernel unchanged, so errno
 * values are always the kernel's own. */
static enum verdict on_stat(struct notif_ctx *ctx) {
  count_call();
  const struct seccomp_notif *req = ctx->req;
  int nr = req->data.nr;
  struct call_args a;
  if (F.t0_ns == 0 || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  int dirfd = a.path.dirfd, flags = (int)a.flags, fd = a.fd;
  uint64_t addr = a.path.addr, buf = a.buf;
  bool by_fd = !a.has_path;
  unsigned mask = (unsigned)a.extra;
  enum verdict verdict = VERDICT_CONTINUE;
  if (!buf) return VERDICT_CONTINUE;
  char link[64];
  struct stat_result r = { .is_statx = nr == SYS_statx };
  char *raw = NULL, *canon = NULL;
  if (!by_fd && addr) {
    raw = target_string(ctx, addr, PATH_MAX_TARGET);
    if (!raw) goto out;
  }
  bool follow = !(flags & AT_SYMLINK_NOFOLLOW);
  if (!by_fd && (!raw || !raw[0])) {
    if (!(flags & AT_EMPTY_PATH)) goto out;
    if (dirfd == AT_FDCWD) {
      free(raw);
      raw = strdup(".");
    } else {
      fd = dirfd;
      by_fd = true;
    }
  }
  if (by_fd) {
    snprintf(link, sizeof link, "/proc/%d/fd/%d", req->pid, fd);
    canon = stat_by_open(AT_FDCWD, link, 0, flags, mask, &r);
  } else {
    char *abs = NULL;
    if (raw[0] == '/') abs = strdup(raw);
    else {
      char *base = target_dir_path(req->pid, dirfd);
      if (base && base[0] == '/' && asprintf(&abs, "%s/%s", strcmp(base, "/") ? base : "", raw) < 0) abs = NULL;
      free(base);
    }
    if (abs) canon = stat_by_path(abs, flags, mask, &r);
    if (!canon && abs) canon = stat_by_open(AT_FDCWD, abs, (flags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0, flags, mask, &r);
    if (abs) path_normalize(abs);
    trace_access(ctx, UWRX_ACCESS_STAT, abs, flags, follow);
    free(abs);
  }
  if (!canon) goto out;
  int64_t t = layer_time(canon);
  if (t < 0) goto out;
  struct timespec ts = { .tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL };
  const void *result;
  size_t size;
  if (r.is_statx) {
    r.stx.stx_atime.tv_sec = r.stx.stx_mtime.tv_sec = r.stx.stx_ctime.tv_sec = r.stx.stx_btime.tv_sec = ts.tv_sec;
    r.stx.stx_atime.tv_nsec = r.stx.stx_mtime.tv_nsec = r.stx.stx_ctime.tv_nsec = r.stx.stx_btime.tv_nsec =
        (uint32_t)ts.tv_nsec;
    result = &r.stx, size = sizeof r.stx;
  } else {
    r.st.st_atim = r.st.st_mtim = r.st.st_ctim = ts;
    result = &r.st, size = sizeof r.st;
  }
  /* the target must still wait in this very call: then its memory is its own */
  if (!notif_id_valid(req->id) || !vm_write(req->pid, buf, result, size)) goto out;
  verdict = notify_answer_now(ctx, 0, 0);
out:
  free(raw);
  free(canon);
  return verdict;
}

/* ---- mutations ---- */

/* Calls that will fail on their own (mv tries RENAME_NOREPLACE first, mkdir -p probes)
 * leave no record: what exists now tells. */
static bool exists(const char *p) {
  struct stat st;
  return p && lstat(p, &st) == 0;
}

static enum verdict on_mutation(struct notif_ctx *ctx) {
  count_call();
  struct call_args a;
  if (!ctx->proc || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  int nr = ctx->req->data.nr;
  char *p = NULL, *q = NULL;
  switch (nr) {
  case SYS_unlink:
  case SYS_unlinkat: {
    bool dir = a.flags & AT_REMOVEDIR;
    p = arg_path(ctx, &a.path);
    struct stat st;
    if (!p || lstat(p, &st) != 0) break;
    if (dir || S_ISLNK(st.st_mode)) dir_cache_clear();
    record(ctx, p, dir ? "rmdir" : "delete", !dir);
    trace_path_op(ctx, dir ? UWRX_EV_RMDIR : UWRX_EV_UNLINK, p, NULL, (int64_t)a.flags, 0);
    break;
  }
  case SYS_rmdir:
    p = arg_path(ctx, &a.path);
    if (!exists(p)) break;
    dir_cache_clear();
    record(ctx, p, "rmdir", false);
    trace_path_op(ctx, UWRX_EV_RMDIR, p, NULL, 0, 0);
    break;
  case SYS_rename:
  case SYS_renameat:
  case SYS_renameat2: {
    p = arg_path(ctx, &a.path);
    q = arg_path(ctx, &a.path2);
    if (!p || !q) break;
    uint64_t flags = a.flags;
    if (!exists(p) || ((flags & RENAME_NOREPLACE) && exists(q)) || ((flags & RENAME_EXCHANGE) && !exists(q))) break;
    struct stat sp, sq;
    if ((lstat(p, &sp) == 0 && (S_ISDIR(sp.st_mode) || S_ISLNK(sp.st_mode))) ||
        (lstat(q, &sq) == 0 && (S_ISDIR(sq.st_mode) || S_ISLNK(sq.st_mode))))
      dir_cache_clear();
    record(ctx, p, "rename_from", true);
    record(ctx, q, "rename_to", true);
    if (flags & RENAME_EXCHANGE) {
      record(ctx, q, "rename_from", false);
      record(ctx, p, "rename_to", false);
    }
    trace_path_op(ctx, UWRX_EV_RENAME, p, q, (int64_t)flags, 0);
    break;
  }
  case SYS_mkdir:
  case SYS_mkdirat:
    p = arg_path(ctx, &a.path);
    if (exists(p)) break;
    record(ctx, p, "mkdir", false);
    trace_path_op(ctx, UWRX_EV_MKDIR, p, NULL, (int64_t)(a.mode & 07777), 0);
    break;
  case SYS_link:
  case SYS_linkat:
  case SYS_symlink:
  case SYS_symlinkat:
  case SYS_mknod:
  case SYS_mknodat:
    p = arg_path(ctx, &a.path);
    if (exists(p)) break;
    record(ctx, p, "create", true);
    break;
  case SYS_chmod:
  case SYS_fchmod:
  case SYS_fchmodat:
  case SYS_fchmodat2:
    p = call_file(ctx, &a);
    record(ctx, p, "chmod", true);
    trace_path_op(ctx, UWRX_EV_CHMOD, p, NULL, (int64_t)(a.mode & 07777), 0);
    break;
  case SYS_chown:
  case SYS_fchown:
  case SYS_lchown:
  case SYS_fchownat:
    p = call_file(ctx, &a);
    record(ctx, p, "chown", true);
    trace_path_op(ctx, UWRX_EV_CHOWN, p, NULL, (int64_t)a.uid, (int64_t)a.gid);
    break;
  case SYS_truncate:
  case SYS_ftruncate:
    p = call_file(ctx, &a);
    record(ctx, p, "write", true);
    trace_path_op(ctx, UWRX_EV_TRUNCATE, p, NULL, (int64_t)a.length, 0);
    break;
  case SYS_utime:
  case SYS_utimes:
  case SYS_futimesat:
  case SYS_utimensat: {
    /* new times are a new version of the file (make relies on them) */
    p = call_file(ctx, &a);
    struct stat st;
    if (p && lstat(p, &st) == 0 && !S_ISDIR(st.st_mode)) record(ctx, p, "write", true);
    break;
  }
  default:
    break;
  }
  free(p);
  free(q);
  return VERDICT_CONTINUE;
}

/* ---- the files feature ---- */

static bool files_on(const struct plan *plan) { return F.enabled; }

/* Stat times are squashed only when the plan gives T0. */
static bool squashing(const struct plan *plan) { return plan->repro.time.t0_ns != 0; }

/* access, faccessat, faccessat2 are not subscribed: a notified call can fail with EINTR
 * where the native one never does, and their result needs nothing from uwrx. The
 * in-process recorder records them. */
static const struct subscription files_calls[] = {
  { SYS_open, on_open, NULL, NULL },
  { SYS_openat, on_open, NULL, NULL },
  { SYS_openat2, on_open, NULL, NULL },
  { SYS_creat, on_open, NULL, NULL },
  { SYS_stat, on_stat, NULL, squashing },
  { SYS_lstat, on_stat, NULL, squashing },
  { SYS_fstat, on_stat, NULL, squashing },
  { SYS_newfstatat, on_stat, NULL, squashing },
  { SYS_statx, on_stat, NULL, squashing },
  { SYS_unlink, on_mutation, NULL, NULL },
  { SYS_unlinkat, on_mutation, NULL, NULL },
  { SYS_rename, on_mutation, NULL, NULL },
  { SYS_renameat, on_mutation, NULL, NULL },
  { SYS_renameat2, on_mutation, NULL, NULL },
  { SYS_mkdir, on_mutation, NULL, NULL },
  { SYS_mkdirat, on_mutation, NULL, NULL },
  { SYS_rmdir, on_mutation, NULL, NULL },
  { SYS_link, on_mutation, NULL, NULL },
  { SYS_linkat, on_mutation, NULL, NULL },
  { SYS_symlink, on_mutation, NULL, NULL },
  { SYS_symlinkat, on_mutation, NULL, NULL },
  { SYS_chmod, on_mutation, NULL, NULL },
  { SYS_fchmod, on_mutation, NULL, NULL },
  { SYS_fchmodat, on_mutation, NULL, NULL },
  { SYS_fchmodat2, on_mutation, NULL, NULL },
  { SYS_chown, on_mutation, NULL, NULL },
  { SYS_fchown, on_mutation, NULL, NULL },
  { SYS_lchown, on_mutation, NULL, NULL },
  { SYS_fchownat, on_mutation, NULL, NULL },
  { SYS_truncate, on_mutation, NULL, NULL },
  { SYS_ftruncate, on_mutation, NULL, NULL },
  { SYS_utime, on_mutation, NULL, NULL },
  { SYS_utimes, on_mutation, NULL, NULL },
  { SYS_utimensat, on_mutation, NULL, NULL },
  { SYS_futimesat, on_mutation, NULL, NULL },
  { SYS_mknod, on_mutation, NULL, NULL },
  { SYS_mknodat, on_mutation, NULL, NULL },
};

const struct feature feature_files = {
  .name = "files",
  .enabled = files_on,
  .subs = SUBSCRIPTIONS(files_calls),
};
