/* The file store's handlers: files.meta, per-process versions, stat time squashing.
 *
 * The live overlay uppers are the truth during the run. Before process P changes X (write
 * open, truncate, delete, rename onto or away, chmod, chown, utime) while X holds a
 * version written by another process q of this attempt, q's version is copied through
 * the sandbox view into <versions>/<n> (one flat directory, n counting up: on ext4 every
 * directory made costs as much as a file, so no tree per process) and the line
 * "<n>\t<q>\t<X>\0" is appended to <versions>/index (n is "-" when X was absent: no
 * file, the layout makes the whiteout); at the end src/record/store-layout.ts lays out
 * files/ and files-<pid>/ from them and files.meta. A path written by one process costs
 * nothing here beyond one table entry.
 *
 * files.meta lines are buffered here and appended to the run directory's files.meta.
 * Only paths inside the overlays (what ends up in files/) are recorded.
 *
 * Stat results of files inside the overlays are answered here with deterministic times
 * (shown_time): a file this attempt changed shows the virtual time of its change, a
 * parent's file the time it showed in the parent, a real file its own modification time.
 * Where a file comes from is found by looking the path up in the upper directory and the
 * parents' layer directories (fds opened before pivot_root). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "init.h"
#include "../common/escape.h"
#include "../common/tracebuf.h"
#include "uwrx_hash.h"
#include "uwrx_recorder.h"
#include "uwrx_stat_times.h"

struct files_lower {
  char *dir;
  int layer;
  int fd;
};

struct files_overlay {
  char *mount_point;
  size_t mlen;
  int64_t device;  /* of the real directory (-1: unknown) */
  char *upper;
  int upper_fd;
  struct files_lower *lowers;
  size_t nlowers;
  /* A process asked to change something below it (set before the call runs, never
   * cleared): until then every path in it is as the layers below show it. */
  bool touched;
};

static struct {
  bool enabled;
  char *meta_path, *versions_path;
  int meta_fd, versions_fd, versions_index_fd;
  unsigned long versions_made;  /* names of the version files (under writers_lock) */
  int64_t t0_ns, interval_ns;
  int layers;  /* parent layers below this attempt */
  int64_t wall_offset_ns;      /* this attempt's wall clocks start at T0 + this */
  bool has_wall_offset;
  int64_t recorded_since_ns;   /* latest T0 of the parent chain (0: no parents) */
  int64_t recorded_newest_ns;  /* newest time a parent's file showed */
  int64_t newest_ns;           /* newest time this attempt's files show at the end */
  struct files_overlay *ovl;
  size_t novl;
} F = { .meta_fd = -1, .versions_fd = -1, .versions_index_fd = -1 };

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
  o->device = -1;
  while (n--) {
    const char *k;
    uint32_t klen;
    int64_t v;
    if (!mp_read_bytes(r, &k, &klen)) return false;
    if (mp_key_is(k, klen, "device")) {
      if (!mp_read_int(r, &v)) return false;
      o->device = v;
    } else if (mp_key_is(k, klen, "mountPoint")) {
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

/* ns since the epoch as a decimal string (a double cannot hold them). */
static bool read_ns(struct mp_reader *r, int64_t *out) {
  char *text, *end;
  if (!mp_read_strdup(r, &text)) return false;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  bool ok = errno == 0 && end != text && *end == 0 && v >= 0;
  free(text);
  if (ok) *out = v;
  return ok;
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
    } else if (mp_key_is(k, klen, "wallOffsetNs")) {
      if (!read_ns(r, &F.wall_offset_ns)) return false;
      F.has_wall_offset = true;
    } else if (mp_key_is(k, klen, "recordedSinceNs")) {
      if (!read_ns(r, &F.recorded_since_ns)) return false;
    } else if (mp_key_is(k, klen, "recordedNewestNs")) {
      if (!read_ns(r, &F.recorded_newest_ns)) return false;
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
  if (!F.enabled) return 0;
  return F.has_wall_offset ? F.wall_offset_ns : uwrx_time_wall_offset(F.layers, F.interval_ns);
}

/* Where this attempt's wall clocks start: the least time its own files show. */
static int64_t wall_start_ns(void) { return F.t0_ns + files_wall_offset_ns(); }

/* ---- directories made before the command ----
 * The upper layers hold, before the command starts, only what the plan made there: the
 * parents of the hidden record (each with a whiteout at the end) and, unprivileged, the
 * directories a command is likely to write, all with the host directory's times
 * (src/sandbox/launch.ts prepareRunDir). Natively those directories show their own
 * times, and so they do here while the command has not changed them (shown_time,
 * uwrx_stat_plan_dir). Noted once, before the command runs. */

struct plan_dir {
  size_t ovl;
  char *rel; /* below the overlay's mount point, no leading slash */
  int64_t mtime_ns;
};

#define PLAN_DIRS_MAX 256
#define PLAN_DIRS_DEPTH 64

static struct plan_dir plan_dirs[PLAN_DIRS_MAX];
static size_t nplan_dirs;

static int64_t stat_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* Calls visit(o, fd, rel) on every directory of the upper tree open as `fd` (closed
 * here), its own directories first; `rel`: its path below the mount point, "" at the
 * top. */
static void each_upper_dir(struct files_overlay *o, int fd, const char *rel, int depth,
                           void (*visit)(struct files_overlay *o, int fd, const char *rel)) {
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *child;
    if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) < 0) break;
    int sub = depth < PLAN_DIRS_DEPTH ? openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (sub >= 0) each_upper_dir(o, sub, child, depth + 1, visit);
    free(child);
  }
  visit(o, dirfd(d), rel);
  closedir(d);
}

/* A directory the plan made: it gets the times it was given to the nanosecond (the plan
 * could give them to the microsecond, through a double: up to 1.2 us early), those of a parent layer's copy, else of the host
 * directory, still at its own path before pivot_root. The top, the mount point's, was
 * made now: it gets them whatever it has. */
static void note_plan_dir(struct files_overlay *o, int fd, const char *rel) {
  struct stat st, seen;
  if (nplan_dirs >= PLAN_DIRS_MAX || fstat(fd, &st) != 0) return;
  bool found = false;
  for (size_t j = 0; j < o->nlowers && !found; j++)
    found = o->lowers[j].fd >= 0 && fstatat(o->lowers[j].fd, rel, &seen, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) == 0 &&
            S_ISDIR(seen.st_mode);
  char *real;
  if (!found && asprintf(&real, "%s%s%s", o->mount_point, rel[0] ? "/" : "", rel) >= 0) {
    found = lstat(real, &seen) == 0 && S_ISDIR(seen.st_mode);
    free(real);
  }
  if (found && (!rel[0] || llabs(stat_ns(&seen.st_mtim) - stat_ns(&st.st_mtim)) < 2000)) {
    struct timespec times[2] = { seen.st_atim, seen.st_mtim };
    if (futimens(fd, times) == 0) st.st_mtim = seen.st_mtim;
  }
  char *name = strdup(rel[0] ? rel : ".");
  if (name) plan_dirs[nplan_dirs++] = (struct plan_dir){ (size_t)(o - F.ovl), name, stat_ns(&st.st_mtim) };
}

static void note_plan_dirs(void) {
  for (size_t i = 0; i < F.novl; i++) {
    int fd = open(F.ovl[i].upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) each_upper_dir(&F.ovl[i], fd, "", 0, note_plan_dir);
  }
}

/* The plan's directory at `rel` of overlay `o`, or NULL. */
static const struct plan_dir *plan_dir_at(const struct files_overlay *o, const char *rel) {
  size_t ovl = (size_t)(o - F.ovl);
  for (size_t i = 0; i < nplan_dirs; i++)
    if (plan_dirs[i].ovl == ovl && !strcmp(plan_dirs[i].rel, rel)) return &plan_dirs[i];
  return NULL;
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
  F.versions_index_fd = openat(F.versions_fd, "index", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (F.versions_index_fd < 0) return false;
  for (size_t i = 0; i < F.novl; i++) {
    struct files_overlay *o = &F.ovl[i];
    o->upper_fd = open(o->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t j = 0; j < o->nlowers; j++) o->lowers[j].fd = open(o->lowers[j].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  note_plan_dirs();
  return true;
}

/* What the in-process recorder needs to answer a successful stat alone
 * (uwrx_stat_shows_own_time), learned once, from the first process that asks: the
 * overlays' mount ids as the command's mount namespace numbers them (it has one of its
 * own, copied from ours: hence through /proc/<tid>/root), the oldest change time of
 * their upper layers (less two seconds, for the coarse clock file times use and small
 * steps of the real-time clock), the parents' window. Left off (squash 0) when stats
 * are not squashed or no overlay's can be learned. A process in yet another mount
 * namespace finds none of these ids: its stats are all notified. */
static struct {
  pthread_mutex_t lock;
  bool learned;
  struct uwrx_rec_header rules;
} stat_rules = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Whether path `a` is `b` (of length n) or lies below it. */
static bool path_within(const char *a, const char *b, size_t n) {
  if (n == 1 && b[0] == '/') return true;
  return strncmp(a, b, n) == 0 && (a[n] == '/' || a[n] == 0);
}

static void add_kernel_mount(struct uwrx_rec_header *h, uint64_t id) {
  for (uint32_t i = 0; i < h->kernel_mounts_n; i++)
    if (h->kernel_mounts[i] == id) return;
  if (h->kernel_mounts_n < UWRX_REC_KERNEL_MOUNTS) h->kernel_mounts[h->kernel_mounts_n++] = id;
}

static bool fd_mount(int fd, uint64_t *id) {
  struct statx x;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &x) != 0 || !(x.stx_mask & STATX_MNT_ID)) return false;
  *id = x.stx_mnt_id;
  return true;
}

/* The mounts of the caller's standard descriptors, which the command inherits (a host
 * /dev/null, terminal or log file): mounts of the caller's namespace that no path of the
 * command's reaches. on_stat finds the path of such a descriptor as read here (its
 * /proc/.../fd link, as uwrx-init sees it) and leaves the stat to the kernel when that
 * path lies in no overlay's directories; the recorder may then answer stats on that
 * mount alone, unless another of these descriptors on the same mount has a path within
 * an overlay (`> /tmp/log`): that mount stays notified. */
static struct files_overlay *overlay_of(const char *p, const char **rel);

static void learn_inherited_mounts(struct uwrx_rec_header *h) {
  uint64_t ids[3];
  bool outside[3];
  int n = 0;
  for (int fd = 0; fd <= 2; fd++) {
    char link[64], where[PATH_MAX_TARGET];
    const char *rel;
    if (!fd_mount(fd, &ids[n])) continue;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, where, sizeof where - 1);
    if (len <= 0) continue;
    where[len] = 0;
    outside[n++] = where[0] != '/' || !overlay_of(where, &rel);
  }
  for (int i = 0; i < n; i++) {
    bool apart = outside[i];
    for (int j = 0; j < n && apart; j++) apart = ids[j] != ids[i] || outside[j];
    if (apart) add_kernel_mount(h, ids[i]);
  }
}

/* The mounts on_stat leaves to the kernel whatever the file (shown_time finds no overlay
 * for them), so the recorder may answer their stats unchanged (uwrx_stat_shows_kernel):
 * the kernel's own mounts of pipes and sockets, which no path names (their mount ids are
 * the same in every namespace), the mounts of the caller's standard descriptors
 * (learn_inherited_mounts), and the mounts of the command's namespace that neither hold
 * an overlay's mount point nor lie at or below one (/proc, /dev, /sys ...). A mount
 * point with an escaped character is left out (its stats stay notified). */
static void learn_kernel_mounts(pid_t tid, struct uwrx_rec_header *h) {
  uint64_t id;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) == 0) {
    if (fd_mount(fds[0], &id)) add_kernel_mount(h, id);
    close(fds[0]), close(fds[1]);
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) {
    if (fd_mount(fds[0], &id)) add_kernel_mount(h, id);
    close(fds[0]), close(fds[1]);
  }
  learn_inherited_mounts(h);
  char path[64], line[4096 + 256], where[4096];
  snprintf(path, sizeof path, "/proc/%d/mountinfo", tid);
  FILE *f = fopen(path, "re");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    unsigned long long mount_id;
    if (sscanf(line, "%llu %*u %*s %*s %4095s", &mount_id, where) != 2 || where[0] != '/' || strchr(where, '\\')) continue;
    bool apart = true;
    for (size_t i = 0; i < F.novl && apart; i++)
      apart = !path_within(where, F.ovl[i].mount_point, F.ovl[i].mlen) && !path_within(F.ovl[i].mount_point, where, strlen(where));
    if (apart) add_kernel_mount(h, mount_id);
  }
  fclose(f);
}

/* The plan's directories as the command's stats see them (mount id and inode number of
 * the overlay's directory), those still as made. */
static void learn_plan_dirs(pid_t tid, struct uwrx_rec_header *h) {
  for (size_t i = 0; i < nplan_dirs && h->plan_dirs_n < UWRX_REC_PLAN_DIRS; i++) {
    const struct plan_dir *d = &plan_dirs[i];
    char where[PATH_MAX_TARGET];
    struct statx x;
    const char *mp = F.ovl[d->ovl].mount_point;
    int n = snprintf(where, sizeof where, "/proc/%d/root%s/%s", tid, strcmp(mp, "/") ? mp : "", d->rel);
    if (n < 0 || (size_t)n >= sizeof where) continue;
    const unsigned needed = STATX_TYPE | STATX_INO | STATX_MTIME | STATX_MNT_ID;
    if (statx(AT_FDCWD, where, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_MNT_ID, &x) != 0 ||
        (x.stx_mask & needed) != needed || !S_ISDIR(x.stx_mode))
      continue;
    int64_t mtime = (int64_t)x.stx_mtime.tv_sec * 1000000000LL + x.stx_mtime.tv_nsec;
    if (mtime != d->mtime_ns || !uwrx_stat_overlay_mount(h, x.stx_mnt_id)) continue;
    h->plan_dirs[h->plan_dirs_n++] = (struct uwrx_rec_plan_dir){ x.stx_mnt_id, x.stx_ino, mtime };
  }
}

static void learn_stat_rules(pid_t tid) {
  struct uwrx_rec_header *h = &stat_rules.rules;
  if (!F.enabled || F.t0_ns == 0 || F.novl == 0) return;
  /* An overlay without its upper layer (a best-effort mount that failed) is left out,
   * and so is whatever mount its mount point shows instead: stats there are notified. */
  uint64_t *usable = calloc(F.novl, sizeof *usable), *shadowed = calloc(F.novl, sizeof *shadowed);
  size_t nusable = 0, nshadowed = 0;
  int64_t oldest = INT64_MAX;
  for (size_t i = 0; usable && shadowed && i < F.novl; i++) {
    char where[PATH_MAX_TARGET];
    struct statx mount, upper;
    snprintf(where, sizeof where, "/proc/%d/root%s", tid, F.ovl[i].mount_point);
    if (statx(AT_FDCWD, where, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &mount) != 0 || !(mount.stx_mask & STATX_MNT_ID)) continue;
    if (F.ovl[i].upper_fd < 0 || statx(F.ovl[i].upper_fd, "", AT_EMPTY_PATH, STATX_CTIME, &upper) != 0) {
      shadowed[nshadowed++] = mount.stx_mnt_id;
      continue;
    }
    usable[nusable++] = mount.stx_mnt_id;
    int64_t ctime = (int64_t)upper.stx_ctime.tv_sec * 1000000000LL + upper.stx_ctime.tv_nsec;
    if (ctime < oldest) oldest = ctime;
  }
  /* The kernel hands out the smallest free mount id, so an overlay attached later (a lazy
   * tree's, at its first change) may take one freed below these: the bitmap starts at 0
   * when it reaches the highest of them, else at the lowest. */
  uint64_t lowest = UINT64_MAX, highest = 0;
  for (size_t i = 0; i < nusable; i++) {
    lowest = usable[i] < lowest ? usable[i] : lowest;
    highest = usable[i] > highest ? usable[i] : highest;
  }
  uint64_t base = highest < UWRX_REC_MOUNT_BITS ? 0 : lowest;
  bool any = false;
  for (size_t i = 0; i < nusable; i++) {
    bool keep = usable[i] - base < UWRX_REC_MOUNT_BITS; /* beyond the bitmap: notified */
    for (size_t j = 0; j < nshadowed; j++) keep &= usable[i] != shadowed[j];
    if (!keep) continue;
    uint64_t bit = usable[i] - base;
    h->mount_bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
    any = true;
  }
  free(usable);
  free(shadowed);
  if (!any) return;
  h->mount_base = base;
  h->changed_since_ns = oldest - 2000000000LL;
  if (F.recorded_since_ns) {
    h->window_lo_ns = F.recorded_since_ns;
    h->window_hi_ns = F.recorded_newest_ns;
  }
  h->squash = 1;
  learn_kernel_mounts(tid, h);
  learn_plan_dirs(tid, h);
}

void files_stat_rules(struct uwrx_rec_header *h, pid_t tid) {
  pthread_mutex_lock(&stat_rules.lock);
  if (!stat_rules.learned) learn_stat_rules(tid);
  stat_rules.learned = true;
  const struct uwrx_rec_header *r = &stat_rules.rules;
  h->squash = r->squash;
  h->changed_since_ns = r->changed_since_ns;
  h->window_lo_ns = r->window_lo_ns;
  h->window_hi_ns = r->window_hi_ns;
  h->mount_base = r->mount_base;
  memcpy(h->mount_bits, r->mount_bits, sizeof h->mount_bits);
  h->kernel_mounts_n = r->kernel_mounts_n;
  memcpy(h->kernel_mounts, r->kernel_mounts, sizeof h->kernel_mounts);
  h->plan_dirs_n = r->plan_dirs_n;
  memcpy(h->plan_dirs, r->plan_dirs, sizeof h->plan_dirs);
  pthread_mutex_unlock(&stat_rules.lock);
}

/* What an overlay attached during the run adds to the rules: its mount's bit, and its
 * top directory when the plan made it (see learn_plan_dirs). */
struct attached_overlay {
  uint64_t bit;
  bool top;
  struct uwrx_rec_plan_dir dir;
};

/* Adds `a` to header `h` (the rules, or a running process's): the bit is set atomically
 * for the readers, the directory written before the count that shows it. */
static void add_attached(struct uwrx_rec_header *h, const struct attached_overlay *a) {
  __atomic_or_fetch(&h->mount_bits[a->bit / 8], (uint8_t)(1u << (a->bit % 8)), __ATOMIC_RELEASE);
  uint32_t n = __atomic_load_n(&h->plan_dirs_n, __ATOMIC_ACQUIRE);
  if (!a->top || n >= UWRX_REC_PLAN_DIRS) return;
  for (uint32_t i = 0; i < n; i++)
    if (h->plan_dirs[i].mnt_id == a->dir.mnt_id && h->plan_dirs[i].ino == a->dir.ino) return;
  h->plan_dirs[n] = a->dir;
  __atomic_store_n(&h->plan_dirs_n, n + 1, __ATOMIC_RELEASE);
}

static void add_attached_to_proc(struct proc *p, void *arg) {
  if (p->repro.lease_hdr) add_attached(p->repro.lease_hdr, arg);
}

void files_overlay_attached(const char *mount_point, pid_t tid) {
  pthread_mutex_lock(&stat_rules.lock);
  struct uwrx_rec_header *h = &stat_rules.rules;
  char where[PATH_MAX_TARGET];
  struct statx x;
  int n = snprintf(where, sizeof where, "/proc/%d/root%s", tid, mount_point);
  const unsigned top = STATX_TYPE | STATX_INO | STATX_MTIME;
  bool marked = false;
  struct attached_overlay a = { 0 };
  if (stat_rules.learned && h->squash && n > 0 && (size_t)n < sizeof where &&
      statx(AT_FDCWD, where, 0, STATX_MNT_ID | top, &x) == 0 && (x.stx_mask & STATX_MNT_ID) && x.stx_mnt_id >= h->mount_base &&
      x.stx_mnt_id - h->mount_base < UWRX_REC_MOUNT_BITS) {
    a.bit = x.stx_mnt_id - h->mount_base;
    /* its top directory shows the host directory's time while nothing changed it, as
     * the plan's other directories do (uwrx_stat_plan_dir) */
    const char *rel;
    const struct files_overlay *o = overlay_of(mount_point, &rel);
    const struct plan_dir *d = o && !strcmp(rel, ".") ? plan_dir_at(o, ".") : NULL;
    int64_t mtime = (int64_t)x.stx_mtime.tv_sec * 1000000000LL + x.stx_mtime.tv_nsec;
    a.top = d && (x.stx_mask & top) == top && S_ISDIR(x.stx_mode) && mtime == d->mtime_ns;
    a.dir = (struct uwrx_rec_plan_dir){ x.stx_mnt_id, x.stx_ino, mtime };
    add_attached(h, &a);
    marked = true;
  }
  pthread_mutex_unlock(&stat_rules.lock);
  /* The recorders already set up learn it too (the overlay is in place): else their
   * stats of its files stayed notified for the rest of their process, a shell's or
   * make's after a chdir into a tree. */
  if (!marked) return;
  pthread_mutex_lock(&g.lock);
  procs_each_running(add_attached_to_proc, &a);
  pthread_mutex_unlock(&g.lock);
}

/* The overlays as the rebuild policy needs them: [[mount point, touched]...], nil when
 * no changes are recorded (then nothing tells that an overlay is untouched). */
void files_write_overlays(struct mp_writer *w) {
  if (!F.enabled) {
    mp_write_nil(w);
    return;
  }
  mp_write_array(w, (uint32_t)F.novl);
  for (size_t i = 0; i < F.novl; i++) {
    mp_write_array(w, 2);
    mp_write_bin(w, F.ovl[i].mount_point, F.ovl[i].mlen);
    mp_write_bool(w, __atomic_load_n(&F.ovl[i].touched, __ATOMIC_ACQUIRE));
  }
}

/* The overlay holding absolute path `p` (longest mount point), and the path inside it. */
static struct files_overlay *overlay_of(const char *p, const char **rel) {
  struct files_overlay *best = NULL;
  for (size_t i = 0; i < F.novl; i++) {
    struct files_overlay *o = &F.ovl[i];
    if (path_within(p, o->mount_point, o->mlen) && (!best || o->mlen > best->mlen)) best = o;
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

/* Appends `str` escaped as src/record/escape.ts does (the buffer has room: 4 bytes per byte). */
static void meta_escape(const char *str) {
  uint8_t *out = uwrx_escape((const uint8_t *)str, strlen(str), (uint8_t *)meta_buf + meta_len);
  meta_len = (size_t)((char *)out - meta_buf);
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
  char path[];
};

#define WRITER_BUCKETS 65536
static struct writer_entry *writers[WRITER_BUCKETS];
static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;

static struct writer_entry *writer_get(const char *path, bool create) {
  uint64_t h = uwrx_hash_str(path);
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

/* Copies above this size let another handler thread receive meanwhile. */
#define COPY_MAY_BLOCK_BYTES (4 << 20)

static bool copy_contents(int in, int out, off_t size) {
  if (size > COPY_MAY_BLOCK_BYTES) notify_may_block();
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

/* A file or symlink the change takes away from its path (deleted, or replaced by a
 * rename onto it) keeps its inode: a hard link to it from the upper is its version, with
 * no copy and no new inode. Only for one with no other name (nothing can change it once
 * the path is gone) that is the one the sandbox shows (same type, size and modification
 * time). */
static bool link_version(const char *path, const struct stat *shown, const char *name) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  struct stat st;
  if (!o || o->upper_fd < 0 || fstatat(o->upper_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if ((st.st_mode & S_IFMT) != (shown->st_mode & S_IFMT) || st.st_nlink != 1 || st.st_size != shown->st_size) return false;
  if (st.st_mtim.tv_sec != shown->st_mtim.tv_sec || st.st_mtim.tv_nsec != shown->st_mtim.tv_nsec) return false;
  return linkat(o->upper_fd, rel, F.versions_fd, name, 0) == 0;
}

/* Keeps X's current state (as the sandbox sees it) as <versions>/<n>: a regular file or
 * a symlink (a link when the change takes it away, `taken`; else a copy); nothing for an
 * absent X (its index line says so). Then the index line, one append (whole lines: a
 * run killed midway leaves whole versions). Directories, fifos, sockets and devices are
 * not versioned (*versioned false). */
static bool preserve(const char *path, int pid, bool taken, bool *versioned) {
  char name[24];
  snprintf(name, sizeof name, "%lu", ++F.versions_made);
  struct stat st;
  bool ok = false;
  *versioned = true;
  if (lstat(path, &st) != 0) {
    strcpy(name, "-");
    ok = true;
  } else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && taken && link_version(path, &st, name)) {
    ok = true;
  } else if (S_ISREG(st.st_mode)) {
    int in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int out = in < 0 ? -1 : openat(F.versions_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out >= 0) {
      ok = copy_contents(in, out, st.st_size);
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
      ok = symlinkat(target, F.versions_fd, name) == 0;
    }
  } else {
    *versioned = false;
  }
  if (!ok) return false;
  char pidbuf[16];
  snprintf(pidbuf, sizeof pidbuf, "%d", pid);
  struct iovec line[] = {
    { name, strlen(name) }, { "\t", 1 }, { pidbuf, strlen(pidbuf) }, { "\t", 1 }, { (char *)path, strlen(path) + 1 },
  };
  size_t want = 0;
  for (size_t i = 0; i < sizeof line / sizeof line[0]; i++) want += line[i].iov_len;
  ssize_t w;
  do w = writev(F.versions_index_fd, line, sizeof line / sizeof line[0]);
  while (w < 0 && errno == EINTR);
  return w == (ssize_t)want;
}

/* Process `pid` is about to change `path` (`taken`: delete it or rename another file
 * onto it): keep the version another process left there. The writer state before is
 * returned in *first, *last (to forget a call that failed). */
static void before_change(const char *path, int pid, bool taken, int *first, int *last) {
  pthread_mutex_lock(&writers_lock);
  struct writer_entry *e = writer_get(path, true);
  *first = e ? e->first : 0;
  *last = e ? e->last : 0;
  if (e) {
    if (e->last == 0) e->first = pid;
    else if (e->last != pid) {
      struct stat st;
      bool dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
      bool versioned = false;
      bool kept = !dir && preserve(path, e->last, taken, &versioned);
      if (versioned && !kept) problem_at(PROBLEM_VERSION_LOST, path);
    }
    e->last = pid;
  }
  pthread_mutex_unlock(&writers_lock);
}

static void files_proc_ended(int logical);

/* The time a changed file shows becomes its modification (and access) time in the upper,
 * and so in the store: a later step sees it there as its parent saw it. Times a program
 * set are there already. */
static void stamp_upper(const char *path, int64_t ns, bool explicit_times, void *arg) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  if (explicit_times || !o || o->upper_fd < 0) return;
  if (ns < wall_start_ns()) ns = wall_start_ns();
  struct timespec ts[2] = { uwrx_stat_timespec(ns), uwrx_stat_timespec(ns) };
  if (utimensat(o->upper_fd, rel, ts, AT_SYMLINK_NOFOLLOW) == 0 && ns > F.newest_ns) F.newest_ns = ns;
}

/* A directory of an upper that no change of this attempt named (copied up on the way to
 * a change below it) shows where the attempt's wall clocks start
 * (shown_time): that time is written into it too, so a later step shows what this one
 * did. Those filetimes has were written by stamp_upper; the plan's directories as made
 * keep the host's times. Only overlays a change was asked below are walked. */
static void stamp_dir(struct files_overlay *o, int fd, const char *rel) {
  struct stat st;
  char *canon = NULL;
  int64_t changed;
  bool explicit_times;
  const struct plan_dir *made = plan_dir_at(o, rel[0] ? rel : ".");
  if (fstat(fd, &st) == 0 && !(made && made->mtime_ns == stat_ns(&st.st_mtim)) &&
      asprintf(&canon, "%s%s%s", strcmp(o->mount_point, "/") ? o->mount_point : "", rel[0] ? "/" : "", rel) >= 0 &&
      !filetimes_lookup(canon[0] ? canon : "/", &changed, &explicit_times)) {
    struct timespec ts[2] = { uwrx_stat_timespec(wall_start_ns()), uwrx_stat_timespec(wall_start_ns()) };
    if (futimens(fd, ts) != 0) {}
  }
  free(canon);
}

static void stamp_dirs(void) {
  for (size_t i = 0; i < F.novl; i++) {
    struct files_overlay *o = &F.ovl[i];
    if (!__atomic_load_n(&o->touched, __ATOMIC_ACQUIRE) || o->upper_fd < 0) continue;
    /* its path is the host's: gone since pivot_root, unlike the descriptor */
    int fd = openat(o->upper_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) each_upper_dir(o, fd, "", 0, stamp_dir);
  }
}

/* When the sandbox ends: the last calls' outcomes, files.meta flushed, the times of the
 * changed files written into the uppers. */
void files_finish(void) {
  if (!F.enabled) return;
  files_proc_ended(0);
  pthread_mutex_lock(&meta_lock);
  meta_flush_locked();
  pthread_mutex_unlock(&meta_lock);
  if (F.t0_ns) {
    F.newest_ns = wall_start_ns();
    filetimes_each(stamp_upper, NULL);
    stamp_dirs();
  }
}

int64_t files_newest_ns(void) { return F.enabled ? F.newest_ns : 0; }

/* ---- changes made for a process (partial rebuild) ---- */

/* mkdir -p of the directories above absolute `path`. */
static void make_parent_dirs(const char *path) {
  char *copy = strdup(path);
  if (copy) make_parents(AT_FDCWD, copy);
  free(copy);
}

bool files_change_for(struct proc *p, const char *path, enum replayed_kind kind, uint32_t mode, const uint8_t *data,
                      size_t len, const char *exe) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  if (o) __atomic_store_n(&o->touched, true, __ATOMIC_RELEASE);
  /* written here, not by the process: its tree's overlay must be in place first */
  lazy_before_change(path, p->tgid);
  struct stat st;
  bool existed = lstat(path, &st) == 0;
  bool was_dir = existed && S_ISDIR(st.st_mode);
  struct notif_ctx ctx = { .proc = p, .memfd = -1 };
  int first, last;
  const char *op = NULL;
  bool ok = true;
  switch (kind) {
  case REPLAYED_ABSENT:
    if (!existed) return true;
    if (F.enabled && !was_dir) before_change(path, p->logical, true, &first, &last);
    ok = (was_dir ? rmdir(path) : unlink(path)) == 0;
    op = was_dir ? "rmdir" : "delete";
    break;
  case REPLAYED_DIR:
    if (was_dir) return true;
    make_parent_dirs(path);
    ok = mkdir(path, mode & 07777) == 0;
    op = "mkdir";
    break;
  case REPLAYED_FILE: {
    if (was_dir) return false;
    if (F.enabled) before_change(path, p->logical, false, &first, &last);
    make_parent_dirs(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
    ok = fd >= 0;
    for (size_t off = 0; ok && off < len;) {
      ssize_t w = write(fd, data + off, len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ok = false;
      else off += (size_t)w;
    }
    if (fd >= 0) {
      fchmod(fd, mode & 07777);
      close(fd);
    }
    op = existed ? "write" : "create";
    break;
  }
  }
  if (ok && op) {
    if (F.enabled && o) meta_line(path, p->logical, op, exe);
    filetimes_changed(&ctx, path, op);
  }
  return ok;
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

/* ---- outcomes ----
 * A call is recorded before the kernel runs it (a version must be kept while the target
 * waits), but it may then fail: a create in a directory that does not exist, EACCES,
 * EXDEV, ENOTEMPTY ... So its files.meta lines wait for the outcome to show: at the
 * thread's next notification, when its process ends, or at the end of the run, the
 * path is looked at again. A call that did not happen leaves no line, and the writer it
 * would have become is forgotten. */
enum expect {
  EXPECT_NOTHING,    /* nothing to confirm: the lines are written at once */
  EXPECT_PRESENT,    /* the path exists afterwards (create, link, symlink, mknod) */
  EXPECT_DIR,        /* mkdir */
  EXPECT_GONE,       /* unlink, rmdir */
  EXPECT_MOVED,      /* rename: the target exists, the source is no longer the same file */
  EXPECT_COPIED_UP,  /* a change of a file only the lower layers held: the upper has it */
};

#define OP_LINES 4
struct op_line {
  char *path;
  const char *op;
  bool versioned;
  bool if_copied_up;  /* written even when the call failed, if the upper has the file */
  int first, last;  /* the writer state before, to forget a call that failed */
};

/* ---- changes of directory paths (uwrx_recorder.h, UWRX_DIRS_PATH) ----
 * Counted here, published to the recorders once the first recorder buffer is made. Before
 * that the counts live in `dirs_own`; the switch to the page copies them under the lock. */
static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uwrx_dirs dirs_own;
static struct uwrx_dirs *dirs = &dirs_own;
static bool dirs_tried;

static void dir_cache_clear(void);

static void dirs_add(bool settled) {
  pthread_mutex_lock(&dirs_lock);
  __atomic_add_fetch(settled ? &dirs->settled : &dirs->begun, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&dirs_lock);
}

static void dirs_settled(void) { dirs_add(true); }

uint64_t files_dirs_quiet(void) {
  if (!F.enabled) return 0;
  pthread_mutex_lock(&dirs_lock);
  uint64_t begun = __atomic_load_n(&dirs->begun, __ATOMIC_SEQ_CST);
  uint64_t settled = __atomic_load_n(&dirs->settled, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&dirs_lock);
  return begun + 1 != 0 && settled == begun ? begun + 1 : 0;
}

void files_publish_dirs(void) {
  if (!F.enabled) return;
  pthread_mutex_lock(&dirs_lock);
  if (!dirs_tried) {
    dirs_tried = true;
    int fd = open(UWRX_DIRS_PATH, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    if (fd >= 0) {
      void *m = ftruncate(fd, 4096) == 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
      if (m != MAP_FAILED) {
        struct uwrx_dirs *d = m;
        d->begun = dirs_own.begun;
        d->settled = dirs_own.settled;
        __atomic_store_n(&d->magic, UWRX_DIRS_MAGIC, __ATOMIC_RELEASE);
        dirs = d;
      }
      close(fd);
    }
    /* stats squashed: changed files' times for the recorders too */
    if (F.t0_ns) filetimes_open_table();
  }
  pthread_mutex_unlock(&dirs_lock);
}

struct pending_op {
  struct pending_op *next;
  struct notif_ctx *ctx; /* the call's context while its handler runs, else NULL */
  pid_t tid;
  int pid;
  enum expect expect;
  char *path, *path2;
  dev_t dev;
  ino_t ino;
  char *exe;
  bool dirs; /* counted in uwrx_dirs.begun: settling it counts it in settled */
  size_t nlines;
  struct op_line lines[OP_LINES];
};

#define PENDING_BUCKETS 4096
static struct pending_op *pending[PENDING_BUCKETS];
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t npending;

/* True when the upper directory holds `path` (the lower layers alone do not). */
static bool in_upper(const char *path) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  struct stat st;
  return o && o->upper_fd >= 0 && fstatat(o->upper_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* What confirms a change of an existing file: nothing when the upper has it already. */
static enum expect change_of(const char *path) {
  return in_upper(path) ? EXPECT_NOTHING : EXPECT_COPIED_UP;
}

static struct pending_op *op_begin(struct notif_ctx *ctx, enum expect expect, const char *path, const char *path2) {
  if (!ctx->proc) return NULL;
  struct pending_op *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->tid = ctx->req->pid;
  op->ctx = ctx;
  op->pid = ctx->proc->logical;
  op->expect = expect;
  op->path = path ? strdup(path) : NULL;
  op->path2 = path2 ? strdup(path2) : NULL;
  struct stat st;
  if (expect == EXPECT_MOVED && path && lstat(path, &st) == 0) op->dev = st.st_dev, op->ino = st.st_ino;
  return op;
}

/* The call may change what directory paths lead to (a rename or removal of a directory
 * or symlink): uwrx-init's cache of canonical directories is dropped and the recorders'
 * is held off until the outcome shows. Without an op to settle it (NULL), the recorders'
 * cache stays off for the rest of the run: slower, never wrong. */
static void dirs_begin(struct pending_op *op) {
  dir_cache_clear();
  /* the times published for the recorders are by inode: a known removal or rename takes
   * away what it changes (record_line, filetimes_move_below); an unknown one, all */
  if (!op) filetimes_unpublish_all();
  dirs_add(false);
  if (op) op->dirs = true;
}

/* One line of the call, `name` in files.meta; its versions are kept now (the target
 * still waits). `times`: what the change does to the file's times (filetimes_changed). */
static void record_line(struct pending_op *op, const char *path, const char *name, const char *times, bool versioned) {
  const char *rel;
  struct files_overlay *o = op && path ? overlay_of(path, &rel) : NULL;
  if (!o) return;
  __atomic_store_n(&o->touched, true, __ATOMIC_RELEASE);
  if (op->nlines == OP_LINES) return;
  struct op_line *l = &op->lines[op->nlines];
  if (!(l->path = strdup(path))) return;
  l->op = name;
  l->versioned = versioned;
  bool taken = !strcmp(name, "delete") || !strcmp(name, "rename_to");
  if (versioned) before_change(path, op->pid, taken, &l->first, &l->last);
  /* the change's virtual time: the process's clock now, while it waits in the call */
  if (op->ctx) filetimes_changed(op->ctx, path, times);
  op->nlines++;
}

static void record(struct pending_op *op, const char *path, const char *name, bool versioned) {
  record_line(op, path, name, name, versioned);
}

/* A change that makes a new version of the file but natively leaves its modification
 * time alone (a link's count, an extended attribute: cp -a sets ACLs after the times):
 * a write in files.meta, an attribute change for its times. */
static void record_attr_write(struct pending_op *op, const char *path) {
  record_line(op, path, "write", "attr", true);
}

static void forget_writer(const char *path, int pid, int first, int last) {
  pthread_mutex_lock(&writers_lock);
  struct writer_entry *e = writer_get(path, false);
  if (e && e->last == pid) {
    e->first = last ? first : 0;
    e->last = last;
  }
  pthread_mutex_unlock(&writers_lock);
}

static bool op_happened(const struct pending_op *op) {
  struct stat st;
  switch (op->expect) {
  case EXPECT_PRESENT:
    return op->path && lstat(op->path, &st) == 0;
  case EXPECT_DIR:
    return op->path && lstat(op->path, &st) == 0 && S_ISDIR(st.st_mode);
  case EXPECT_GONE:
    return op->path && lstat(op->path, &st) != 0;
  case EXPECT_MOVED:
    if (!op->path || !op->path2 || lstat(op->path2, &st) != 0) return false;
    return lstat(op->path, &st) != 0 || st.st_dev != op->dev || st.st_ino != op->ino;
  case EXPECT_COPIED_UP:
    return op->path && in_upper(op->path);
  default:
    return true;
  }
}

/* Writes the lines of a call that happened, forgets one that did not; frees it. */
static void op_settle(struct pending_op *op, bool happened) {
  if (op->dirs) dirs_settled();
  if (op->expect == EXPECT_MOVED && op->path && op->path2) filetimes_renamed(op->path, op->path2, happened);
  for (size_t i = 0; i < op->nlines; i++) {
    struct op_line *l = &op->lines[i];
    if (happened || (l->if_copied_up && in_upper(l->path))) meta_line(l->path, op->pid, l->op, op->exe ? op->exe : "");
    else if (l->versioned) forget_writer(l->path, op->pid, l->first, l->last);
    free(l->path);
  }
  free(op->path);
  free(op->path2);
  free(op->exe);
  free(op);
}

/* The call was made (the kernel runs it next) or carried out here (`done`). */
static void op_end(struct pending_op *op, bool done) {
  if (!op) return;
  op->ctx = NULL; /* valid only during the handler */
  /* a change of directory paths stays in flight until the outcome shows */
  if (op->nlines == 0 && (!op->dirs || done)) {
    op_settle(op, false);
    return;
  }
  op->exe = exe_of(op->tid);
  if (done || op->expect == EXPECT_NOTHING) {
    op_settle(op, true);
    return;
  }
  pthread_mutex_lock(&pending_lock);
  struct pending_op **slot = &pending[(unsigned)op->tid % PENDING_BUCKETS];
  op->next = *slot;
  *slot = op;
  npending++;
  pthread_mutex_unlock(&pending_lock);
}

/* Thread `tid` makes its next call: the outcome of its last recorded one shows now. */
static void files_confirm(pid_t tid) {
  if (!npending) return;
  struct pending_op *found = NULL;
  pthread_mutex_lock(&pending_lock);
  for (struct pending_op **slot = &pending[(unsigned)tid % PENDING_BUCKETS]; *slot; slot = &(*slot)->next) {
    if ((*slot)->tid == tid) {
      found = *slot;
      *slot = found->next;
      npending--;
      break;
    }
  }
  pthread_mutex_unlock(&pending_lock);
  if (found) op_settle(found, op_happened(found));
}

/* Settles the calls of process `logical` (0: of every process). */
static void files_proc_ended(int logical) {
  if (!npending) return;
  struct pending_op *mine = NULL;
  pthread_mutex_lock(&pending_lock);
  for (size_t b = 0; b < PENDING_BUCKETS && npending; b++) {
    for (struct pending_op **slot = &pending[b]; *slot;) {
      struct pending_op *op = *slot;
      if (logical == 0 || op->pid == logical) {
        *slot = op->next;
        op->next = mine;
        mine = op;
        npending--;
      } else slot = &op->next;
    }
  }
  pthread_mutex_unlock(&pending_lock);
  while (mine) {
    struct pending_op *next = mine->next;
    op_settle(mine, op_happened(mine));
    mine = next;
  }
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
  files_confirm(req->pid);
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
  if (!(existed && S_ISDIR(st.st_mode))) {
    /* a file that is not there is created (O_CREAT) or the open fails */
    struct pending_op *op = op_begin(ctx, existed ? change_of(path) : EXPECT_PRESENT, path, NULL);
    record(op, path, (flags & O_CREAT) && !existed ? "create" : "write", true);
    op_end(op, false);
  }
  struct uwrx_tracebuf *tb = ctx->proc ? ctx->proc->trace : NULL;
  if (tb) uwrx_trace_open(tb, trace_logical_tid(ctx->proc, req->pid), path, (int32_t)flags, a.mode, 0);
  free(path);
  return VERDICT_CONTINUE;
}

/* ---- stat ---- */


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
  uint64_t h = uwrx_hash_str(dir);
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

/* How much newer than the parents' newest file a real file modified since they were
 * recorded shows. */
#define EDITED_AFTER_NS 1000000LL

/* The time a stat of `canon` (stat'ed into `r`) shows, on all its times except the access
 * and modification times of a file whose times a program set (*explicit_times):
 * - a file this attempt changed: the virtual time of its last change (filetimes.c; for a
 *   directory, also an entry made, removed or renamed in it); an entry of this attempt
 *   it did not change itself (a directory copied up on the way): where its wall clocks
 *   start;
 * - a file from a parent layer: the time it showed in the parent, which the parent's end
 *   wrote into the stored file (files_finish): the kernel's modification time;
 * - a real file: its own modification time; moved just past the newest file the parents
 *   left when it was modified after (or while) they were recorded, so a source edited
 *   between two steps is never older than what the earlier step built from it.
 * A file copied up unchanged (chmod, link) shows what it showed below. False outside the
 * overlays. *changed_at: the change's time in the first case (else left alone). */
static bool shown_time(const char *canon, const struct stat_result *r, int64_t *t, bool *explicit_times,
                       int64_t *changed_at) {
  const char *rel;
  struct files_overlay *o = overlay_of(canon, &rel);
  if (!o) return false;
  int64_t kernel = r->is_statx ? (int64_t)r->stx.stx_mtime.tv_sec * 1000000000LL + r->stx.stx_mtime.tv_nsec
                               : (int64_t)r->st.st_mtim.tv_sec * 1000000000LL + r->st.st_mtim.tv_nsec;
  bool dir = r->is_statx ? S_ISDIR(r->stx.stx_mode) : S_ISDIR(r->st.st_mode);
  struct stat st;
  if (o->upper_fd >= 0 && fstatat(o->upper_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    int64_t changed;
    if (filetimes_lookup(canon, &changed, explicit_times)) {
      *t = changed > wall_start_ns() ? changed : wall_start_ns();
      *changed_at = changed;
      return true;
    }
    if (dir) {
      const struct plan_dir *made = plan_dir_at(o, rel);
      *t = made && made->mtime_ns == kernel ? kernel : wall_start_ns();
      return true;
    }
  }
  *t = kernel;
  for (size_t i = 0; i < o->nlowers; i++) {
    if (o->lowers[i].fd < 0 || fstatat(o->lowers[i].fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) break; /* hides the real file */
    return true;
  }
  if (F.recorded_since_ns && kernel > F.recorded_since_ns && kernel <= F.recorded_newest_ns)
    *t = F.recorded_newest_ns + EDITED_AFTER_NS;
  return true;
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

/* ---- hard links of lower files ----
 * link(2) of a file only the lower layers hold makes overlayfs copy it up: the old name
 * goes on reporting the lower file's inode number, the new name reports the upper
 * file's, two numbers for one file (tar stores it twice, `find -samefile` misses one,
 * git refuses a local clone). Before such a link uwrx-init copies the file up itself
 * (an open for writing), remembers upper inode -> the number the old name reports, and
 * stat of any name of that file answers with the one number. */
struct inode_alias {
  struct inode_alias *next;
  dev_t dev;
  ino_t upper, shown;
};

#define ALIAS_BUCKETS 256
static struct inode_alias *aliases[ALIAS_BUCKETS];
static pthread_mutex_t alias_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t naliases;

/* The upper file behind `path` (stat of the upper directory's entry); false when none. */
static bool upper_stat(const char *path, struct stat *st) {
  const char *rel;
  struct files_overlay *o = overlay_of(path, &rel);
  return o && o->upper_fd >= 0 && fstatat(o->upper_fd, rel, st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Before link(old, new): true when the file was copied up here. */
static bool alias_before_link(const char *old, const char *new_name) {
  struct stat merged, upper, dir;
  const char *rel;
  bool copied = false;
  /* a link that cannot work (another overlay, no such directory) copies nothing */
  if (!new_name || overlay_of(old, &rel) != overlay_of(new_name, &rel)) return false;
  const char *slash = strrchr(new_name, '/');
  char *parent = slash ? strndup(new_name, slash == new_name ? 1 : (size_t)(slash - new_name)) : NULL;
  bool dir_ok = parent && stat(parent, &dir) == 0 && S_ISDIR(dir.st_mode);
  free(parent);
  if (!dir_ok || lstat(old, &merged) != 0 || !S_ISREG(merged.st_mode)) return false;
  if (!upper_stat(old, &upper)) {
    /* copy-up, nothing written; a running executable (ETXTBSY) stays as it is */
    int fd = open(old, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    copied = true;
    if (lstat(old, &merged) != 0 || !upper_stat(old, &upper)) return copied;
  }
  if (upper.st_ino == merged.st_ino) return copied;
  pthread_mutex_lock(&alias_lock);
  struct inode_alias **slot = &aliases[upper.st_ino % ALIAS_BUCKETS], *a = *slot;
  while (a && !(a->dev == upper.st_dev && a->upper == upper.st_ino)) a = a->next;
  if (!a && (a = malloc(sizeof *a))) {
    *a = (struct inode_alias){ *slot, upper.st_dev, upper.st_ino, merged.st_ino };
    *slot = a;
    naliases++;
  }
  pthread_mutex_unlock(&alias_lock);
  return copied;
}

/* A stat result of a file with more than one name: the number every name reports. */
static void alias_inode(const char *canon, struct stat_result *r) {
  if (!naliases) return;
  bool reg = r->is_statx ? S_ISREG(r->stx.stx_mode) : S_ISREG(r->st.st_mode);
  uint64_t nlink = r->is_statx ? r->stx.stx_nlink : r->st.st_nlink;
  struct stat upper;
  if (!reg || nlink < 2 || !upper_stat(canon, &upper)) return;
  pthread_mutex_lock(&alias_lock);
  struct inode_alias *a = aliases[upper.st_ino % ALIAS_BUCKETS];
  while (a && !(a->dev == upper.st_dev && a->upper == upper.st_ino)) a = a->next;
  if (a) {
    if (r->is_statx) r->stx.stx_ino = a->shown;
    else r->st.st_ino = a->shown;
  }
  pthread_mutex_unlock(&alias_lock);
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

/* A changed file's time for the recorders (uwrx_stat_times.h): files of one name and
 * directories, whose stat result says which inode it is. */
static void publish_time(const char *canon, const struct stat_result *r, int64_t changed, bool explicit_times,
                         int64_t shown) {
  uint64_t dev, ino, nlink;
  unsigned mode;
  if (r->is_statx) {
    const unsigned needed = STATX_TYPE | STATX_INO | STATX_NLINK;
    if ((r->stx.stx_mask & needed) != needed) return;
    dev = ((uint64_t)r->stx.stx_dev_major << 32) | r->stx.stx_dev_minor;
    ino = r->stx.stx_ino, nlink = r->stx.stx_nlink, mode = r->stx.stx_mode;
  } else {
    dev = ((uint64_t)major(r->st.st_dev) << 32) | minor(r->st.st_dev);
    ino = r->st.st_ino, nlink = r->st.st_nlink, mode = r->st.st_mode;
  }
  if (S_ISDIR(mode) || nlink == 1) filetimes_publish(canon, changed, explicit_times, shown, dev, ino);
}

/* stat, lstat, fstat, newfstatat, statx of files inside the overlays: stat'ed here, the
 * times replaced by the file's layer's, the struct written into the target. Anything
 * unusual (errors, files outside the overlays) goes to the kernel unchanged, so errno
 * values are always the kernel's own. */
static enum verdict on_stat(struct notif_ctx *ctx) {
  count_call();
  const struct seccomp_notif *req = ctx->req;
  int nr = req->data.nr;
  files_confirm(req->pid);
  /* no directory path may change between the stat and its publishing */
  uint64_t quiet = files_dirs_quiet();
  struct call_args a;
  if (F.t0_ns == 0 || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  int dirfd = a.path.dirfd, flags = (int)a.flags, fd = a.fd;
  uint64_t addr = a.path.addr, buf = a.buf;
  bool by_fd = !a.has_path;
  unsigned mask = (unsigned)a.extra | STATX_MTIME; /* shown_time reads it */
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
  int64_t t, changed_at = INT64_MIN;
  bool explicit_times = false;
  if (!shown_time(canon, &r, &t, &explicit_times, &changed_at)) goto out;
  alias_inode(canon, &r);
  if (changed_at != INT64_MIN && quiet && quiet == files_dirs_quiet()) publish_time(canon, &r, changed_at, explicit_times, t);
  const void *result;
  size_t size;
  if (r.is_statx) {
    uwrx_statx_show(&r.stx, t, explicit_times);
    result = &r.stx, size = sizeof r.stx;
  } else {
    uwrx_stat_show(&r.st, t, explicit_times);
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

/* utime, utimes, futimesat, utimensat: the program gives the times (not "now"). */
static bool sets_explicit_times(struct notif_ctx *ctx) {
  const __u64 *a = ctx->req->data.args;
  int nr = ctx->req->data.nr;
  uint64_t times = nr == SYS_utime || nr == SYS_utimes ? a[1] : a[2];
  if (!times) return false;
  if (nr != SYS_utimensat) return true;
  int64_t ts[4]; /* atime {sec, nsec}, mtime {sec, nsec} */
  if (!target_read(ctx, times, ts, sizeof ts)) return false;
  return ts[3] != UTIME_NOW;
}

/* ---- renames the overlays would refuse ----
 * Each top-level directory is an overlay of its own, so rename(2) between them fails with
 * EXDEV where natively (one filesystem) it succeeds; and overlayfs in a user namespace
 * cannot rename a directory the lower layers hold (EXDEV too). uwrx-init carries such
 * renames out itself: the native rename where it works, else each entry moved and the
 * source removed (a copy where the entry crosses overlays). Only for a target acting
 * as the sandbox's root, whose rights are uwrx-init's own; not atomic, unlike rename(2),
 * and hard links inside a moved tree become separate files. */

/* The target acts with uwrx-init's own rights: fsuid 0, CAP_DAC_OVERRIDE and CAP_FOWNER. */
static bool target_is_root(pid_t tid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", tid);
  FILE *f = fopen(path, "re");
  if (!f) return false;
  bool uid0 = false;
  unsigned long long caps = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned r, e, s, fs;
    if (sscanf(line, "Uid: %u %u %u %u", &r, &e, &s, &fs) == 4) uid0 = fs == 0;
    else sscanf(line, "CapEff: %llx", &caps);
  }
  fclose(f);
  return uid0 && (caps & (1ULL << 1)) && (caps & (1ULL << 3));
}

static void copy_attrs(const char *path, const struct stat *st) {
  /* best effort, as cp -a: what fails keeps the defaults of a new file */
  int ignored = lchown(path, st->st_uid, st->st_gid);
  (void)ignored;
  if (!S_ISLNK(st->st_mode)) chmod(path, st->st_mode & 07777);
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
}

static void copy_xattrs(const char *from, const char *to) {
  char names[4096], value[4096];
  ssize_t n = llistxattr(from, names, sizeof names);
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
    ssize_t len = lgetxattr(from, names + i, value, sizeof value);
    if (len >= 0) lsetxattr(to, names + i, value, (size_t)len, 0);
  }
}

/* A copy of the non-directory `from` at `to` (absent), with its owner, mode and times. */
static int copy_node(const char *from, const char *to, const struct stat *st) {
  if (S_ISREG(st->st_mode)) {
    int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) return errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
      int err = errno;
      close(in);
      return err;
    }
    bool ok = copy_contents(in, out, st->st_size);
    int err = ok ? 0 : errno ? errno : EIO;
    close(in);
    if (close(out) != 0 && !err) err = errno;
    if (err) return err;
  } else if (S_ISLNK(st->st_mode)) {
    char target[PATH_MAX_TARGET];
    ssize_t n = readlink(from, target, sizeof target - 1);
    if (n < 0) return errno;
    target[n] = 0;
    if (symlink(target, to) != 0) return errno;
  } else if (mknod(to, st->st_mode, st->st_rdev) != 0) return errno;
  copy_xattrs(from, to);
  copy_attrs(to, st);
  return 0;
}

/* Moves `from` (stat st) to `to`: renamed where the kernel can, else rebuilt. 0 or errno. */
static int move_tree(const char *from, const char *to, const struct stat *st) {
  if (rename(from, to) == 0) return 0;
  if (errno != EXDEV) return errno;
  if (!S_ISDIR(st->st_mode)) {
    /* a copy beside the target, renamed over it: the target is never half written */
    char *tmp;
    if (asprintf(&tmp, "%s.uwrx-move-%ld", to, (long)gettid()) < 0) return ENOMEM;
    int err = copy_node(from, tmp, st);
    if (!err && rename(tmp, to) != 0) err = errno;
    if (err) unlink(tmp);
    free(tmp);
    if (err) return err;
    return unlink(from) == 0 ? 0 : errno;
  }
  if (mkdir(to, 0700) != 0) return errno;
  DIR *d = opendir(from);
  if (!d) return errno;
  /* the names first: the directory changes while its entries move */
  char **names = NULL;
  size_t count = 0, cap = 0;
  int err = 0;
  for (struct dirent *de; (de = readdir(d));) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (count == cap) {
      char **grown = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
      if (!grown) {
        err = ENOMEM;
        break;
      }
      names = grown;
    }
    if (!(names[count] = strdup(de->d_name))) {
      err = ENOMEM;
      break;
    }
    count++;
  }
  closedir(d);
  for (size_t i = 0; i < count; i++) {
    char *a = NULL, *b = NULL;
    struct stat cs;
    if (!err && (asprintf(&a, "%s/%s", from, names[i]) < 0 || asprintf(&b, "%s/%s", to, names[i]) < 0)) err = ENOMEM;
    if (!err) err = lstat(a, &cs) == 0 ? move_tree(a, b, &cs) : errno;
    free(a);
    free(b);
    free(names[i]);
  }
  free(names);
  if (err) return err;
  copy_xattrs(from, to);
  copy_attrs(to, st);
  return rmdir(from) == 0 ? 0 : errno;
}

/* rename(2) as on one filesystem, for the cases the overlays refuse; 0 or errno. */
static int rename_across(const char *p, const char *q, unsigned flags) {
  if (syscall(SYS_renameat2, AT_FDCWD, p, AT_FDCWD, q, flags) == 0) return 0;
  if (errno != EXDEV) return errno;
  struct stat sp, sq;
  if (lstat(p, &sp) != 0) return errno;
  bool target = lstat(q, &sq) == 0;
  if (target && (flags & RENAME_NOREPLACE)) return EEXIST;
  if (S_ISDIR(sp.st_mode)) {
    size_t len = strlen(p);
    if (!strncmp(q, p, len) && q[len] == '/') return EINVAL;
    if (target && !S_ISDIR(sq.st_mode)) return ENOTDIR;
    if (target && rmdir(q) != 0) return errno;
  } else if (target && S_ISDIR(sq.st_mode))
    return EISDIR;
  return move_tree(p, q, &sp);
}

/* Carries the rename out here when the overlays would refuse it: 0 or the errno of the
 * rename done here, -1 when the kernel should run it. */
static int rename_here(struct notif_ctx *ctx, const char *p, const char *q, unsigned flags) {
  const char *rel;
  struct files_overlay *from = overlay_of(p, &rel), *to = overlay_of(q, &rel);
  if (!from || !to || (flags & ~(unsigned)RENAME_NOREPLACE)) return -1;
  struct stat st;
  if (from != to) {
    if (from->device < 0 || from->device != to->device) return -1;
  } else if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode)) return -1;
  if (!target_is_root(ctx->req->pid)) return -1;
  return rename_across(p, q, flags);
}

static enum verdict on_mutation(struct notif_ctx *ctx) {
  count_call();
  struct call_args a;
  files_confirm(ctx->req->pid);
  int nr = ctx->req->data.nr;
  /* a removal or rename not looked at could change any directory path */
  bool moves = nr == SYS_unlink || nr == SYS_unlinkat || nr == SYS_rmdir || nr == SYS_rename || nr == SYS_renameat ||
               nr == SYS_renameat2;
  if (!ctx->proc || !decode_call(ctx, &a)) {
    if (moves) dirs_begin(NULL);
    return VERDICT_CONTINUE;
  }
  char *p = NULL, *q = NULL;
  struct pending_op *op = NULL;
  enum verdict verdict = VERDICT_CONTINUE;
  struct stat st;
  switch (nr) {
  case SYS_unlink:
  case SYS_unlinkat: {
    bool dir = a.flags & AT_REMOVEDIR;
    p = arg_path(ctx, &a.path);
    if (!p) dirs_begin(NULL);
    if (!p || lstat(p, &st) != 0) break;
    op = op_begin(ctx, EXPECT_GONE, p, NULL);
    if (dir || S_ISLNK(st.st_mode)) dirs_begin(op);
    record(op, p, dir ? "rmdir" : "delete", !dir);
    trace_path_op(ctx, dir ? UWRX_EV_RMDIR : UWRX_EV_UNLINK, p, NULL, (int64_t)a.flags, 0);
    break;
  }
  case SYS_rmdir:
    p = arg_path(ctx, &a.path);
    if (!p) dirs_begin(NULL);
    if (!exists(p)) break;
    op = op_begin(ctx, EXPECT_GONE, p, NULL);
    dirs_begin(op);
    record(op, p, "rmdir", false);
    trace_path_op(ctx, UWRX_EV_RMDIR, p, NULL, 0, 0);
    break;
  case SYS_rename:
  case SYS_renameat:
  case SYS_renameat2: {
    p = arg_path(ctx, &a.path);
    q = arg_path(ctx, &a.path2);
    if (!p || !q) {
      dirs_begin(NULL);
      break;
    }
    unsigned flags = (unsigned)a.flags;
    if (!exists(p) || ((flags & RENAME_NOREPLACE) && exists(q)) || ((flags & RENAME_EXCHANGE) && !exists(q))) break;
    struct stat sp, sq;
    op = op_begin(ctx, EXPECT_MOVED, p, q);
    bool p_seen = lstat(p, &sp) == 0, p_dir = p_seen && S_ISDIR(sp.st_mode);
    if (p_dir || (p_seen && S_ISLNK(sp.st_mode)) ||
        (lstat(q, &sq) == 0 && (S_ISDIR(sq.st_mode) || S_ISLNK(sq.st_mode))))
      dirs_begin(op);
    record(op, p, "rename_from", true);
    record(op, q, "rename_to", true);
    /* (two directories exchanged keep their entries' times where they were) */
    if (p_dir && !(flags & RENAME_EXCHANGE)) filetimes_move_below(p, q);
    if (flags & RENAME_EXCHANGE) {
      /* the files below two exchanged directories keep their paths' times */
      filetimes_unpublish_all();
      record(op, q, "rename_from", false);
      record(op, p, "rename_to", false);
    }
    trace_path_op(ctx, UWRX_EV_RENAME, p, q, (int64_t)flags, 0);
    int err = rename_here(ctx, p, q, flags);
    if (err >= 0) {
      /* carried out here: the outcome is known */
      verdict = notify_answer_now(ctx, err ? -1 : 0, err);
      if (err == 0) op_end(op, true);
      else if (op) op_settle(op, false);
      op = NULL;
    }
    break;
  }
  case SYS_mkdir:
  case SYS_mkdirat:
    p = arg_path(ctx, &a.path);
    if (exists(p)) break;
    op = op_begin(ctx, EXPECT_DIR, p, NULL);
    record(op, p, "mkdir", false);
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
    op = op_begin(ctx, EXPECT_PRESENT, p, NULL);
    record(op, p, "create", true);
    if (nr == SYS_link || nr == SYS_linkat) {
      /* the existing file changes too (its link count; overlayfs copies it up) */
      q = arg_path(ctx, &a.path2);
      if (q && lstat(q, &st) == 0 && !S_ISDIR(st.st_mode)) {
        record_attr_write(op, q);
        /* copied up before the call (to keep its inode number): recorded even if the
         * link then fails */
        if (op && op->nlines && alias_before_link(q, p)) op->lines[op->nlines - 1].if_copied_up = true;
        /* the new name is the same file: it shows the same times */
        filetimes_same(p, q);
      }
    }
    break;
  case SYS_chmod:
  case SYS_fchmod:
  case SYS_fchmodat:
  case SYS_fchmodat2:
    p = call_file(ctx, &a);
    if (!exists(p)) break;
    op = op_begin(ctx, change_of(p), p, NULL);
    record(op, p, "chmod", true);
    trace_path_op(ctx, UWRX_EV_CHMOD, p, NULL, (int64_t)(a.mode & 07777), 0);
    break;
  case SYS_chown:
  case SYS_fchown:
  case SYS_lchown:
  case SYS_fchownat:
    p = call_file(ctx, &a);
    if (!exists(p)) break;
    op = op_begin(ctx, change_of(p), p, NULL);
    record(op, p, "chown", true);
    trace_path_op(ctx, UWRX_EV_CHOWN, p, NULL, (int64_t)a.uid, (int64_t)a.gid);
    break;
  case SYS_truncate:
  case SYS_ftruncate:
    p = call_file(ctx, &a);
    if (!exists(p)) break;
    op = op_begin(ctx, change_of(p), p, NULL);
    record(op, p, "write", true);
    trace_path_op(ctx, UWRX_EV_TRUNCATE, p, NULL, (int64_t)a.length, 0);
    break;
  case SYS_utime:
  case SYS_utimes:
  case SYS_futimesat:
  case SYS_utimensat:
    /* new times are a new version of the file (make relies on them) */
    p = call_file(ctx, &a);
    if (!p || lstat(p, &st) != 0) break;
    if (S_ISDIR(st.st_mode)) {
      /* a directory keeps times set on it (tar x, cp -a) until its entries change */
      if (sets_explicit_times(ctx)) filetimes_explicit(p);
      break;
    }
    op = op_begin(ctx, change_of(p), p, NULL);
    record(op, p, "write", true);
    if (sets_explicit_times(ctx)) filetimes_explicit(p);
    break;
  default:
    break;
  }
  op_end(op, false);
  free(p);
  free(q);
  return verdict;
}

/* A call that records nothing but shows that the thread's last call has returned (an
 * exec, the exit), already notified for the processes feature: files.meta keeps the
 * order in which things happened. fork and clone are not notified at all (a notified
 * fork could fail with EINTR where natively it restarts): a child's calls can come
 * before its parent's last line, which is why a parent's calls are settled when a child
 * is first seen (files_spawned). */
static enum verdict on_next_call(struct notif_ctx *ctx) {
  files_confirm(ctx->req->pid);
  return VERDICT_CONTINUE;
}

/* bind(2) of a unix socket to a path creates that file. */
static enum verdict on_bind(struct notif_ctx *ctx) {
  files_confirm(ctx->req->pid);
  const __u64 *args = ctx->req->data.args;
  sa_family_t family = 0;
  int memfd = target_mem(ctx);
  if (!ctx->proc || memfd < 0 || args[2] <= sizeof family + 1) return VERDICT_CONTINUE;
  if (pread(memfd, &family, sizeof family, (off_t)args[1]) != (ssize_t)sizeof family || family != AF_UNIX)
    return VERDICT_CONTINUE;
  char first = 0;
  /* an abstract socket (a NUL first) has no file */
  if (pread(memfd, &first, 1, (off_t)(args[1] + sizeof family)) != 1 || first == 0) return VERDICT_CONTINUE;
  char *raw = target_path_at(ctx, AT_FDCWD, args[1] + sizeof family);
  char *p = raw ? canonical(raw, false) : NULL;
  if (p && !exists(p)) {
    struct pending_op *op = op_begin(ctx, EXPECT_PRESENT, p, NULL);
    record(op, p, "create", true);
    op_end(op, false);
  }
  free(p);
  return VERDICT_CONTINUE;
}

/* setxattr, removexattr and their l/f forms change the file (overlayfs copies it up). */
static enum verdict on_xattr(struct notif_ctx *ctx) {
  files_confirm(ctx->req->pid);
  int nr = ctx->req->data.nr;
  const __u64 *args = ctx->req->data.args;
  if (!ctx->proc) return VERDICT_CONTINUE;
  char *p = NULL;
  if (nr == SYS_fsetxattr || nr == SYS_fremovexattr) p = fd_path(ctx, (int)args[0]);
  else {
    char *raw = target_path_at(ctx, AT_FDCWD, args[0]);
    p = raw ? canonical(raw, nr == SYS_setxattr || nr == SYS_removexattr) : NULL;
  }
  /* a directory's attributes, like its times, are no version of anything */
  struct stat st;
  if (p && lstat(p, &st) == 0 && !S_ISDIR(st.st_mode)) {
    struct pending_op *op = op_begin(ctx, change_of(p), p, NULL);
    record_attr_write(op, p);
    op_end(op, false);
  }
  free(p);
  return VERDICT_CONTINUE;
}

/* A child's first call: what its parent did before starting it has happened (fork
 * itself is not notified), so the parent's lines come first. */
static void files_spawned(struct proc *p, struct proc *parent) {
  (void)p;
  if (parent) files_proc_ended(parent->logical);
}

static void files_exited(struct proc *p, bool known, int status) {
  (void)known, (void)status;
  files_proc_ended(p->logical);
}

/* A change of the process's root or of its mounts (chroot, pivot_root, a mount moved or
 * detached, another namespace joined) changes what the kernel names a directory fd: the
 * recorders' cache of those names stays off for the rest of the run. Rare in builds. */
static enum verdict on_root_change(struct notif_ctx *ctx) {
  (void)ctx;
  dirs_begin(NULL);
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
  { SYS_bind, on_bind, NULL, NULL },
  { SYS_chroot, on_root_change, NULL, NULL },
  { SYS_pivot_root, on_root_change, NULL, NULL },
  { SYS_mount, on_root_change, NULL, NULL },
  { SYS_umount2, on_root_change, NULL, NULL },
  { SYS_move_mount, on_root_change, NULL, NULL },
  { SYS_setns, on_root_change, NULL, NULL },
  { SYS_setxattr, on_xattr, NULL, NULL },
  { SYS_lsetxattr, on_xattr, NULL, NULL },
  { SYS_fsetxattr, on_xattr, NULL, NULL },
  { SYS_removexattr, on_xattr, NULL, NULL },
  { SYS_lremovexattr, on_xattr, NULL, NULL },
  { SYS_fremovexattr, on_xattr, NULL, NULL },
  { SYS_execve, on_next_call, NULL, NULL },
  { SYS_execveat, on_next_call, NULL, NULL },
  { SYS_exit_group, on_next_call, NULL, NULL },
};

const struct feature feature_files = {
  .name = "files",
  .enabled = files_on,
  .subs = SUBSCRIPTIONS(files_calls),
  .on_spawn = files_spawned,
  .on_exit = files_exited,
};
