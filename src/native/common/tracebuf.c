/* Per-process trace buffer writer; see tracebuf.h for the contract. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tracebuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* Gives the file real blocks up to `end`: a page of a shared mapping that the filesystem
 * cannot back (a full tmpfs) would be SIGBUS on first touch, killing the writer; this way
 * a full filesystem is an ENOSPC here instead. */
static int reserve_blocks(struct uwrx_tracebuf *tb, uint64_t end) {
  int fd = tb->fd;
  /* never the recorder region before the records: the recorder's pages get blocks as
   * it writes them */
  uint64_t from = tb->file_size > UWRX_TRACE_DATA_OFFSET ? tb->file_size : UWRX_TRACE_DATA_OFFSET;
  if (end <= from) return 0;
  if (fallocate(fd, 0, (off_t)from, (off_t)(end - from)) == 0) {
    tb->file_size = end;
    return 0;
  }
  if (errno != EOPNOTSUPP) return -errno;
  /* no fallocate on this filesystem: writing zeros allocates too */
  static const unsigned char zeros[4096];
  for (uint64_t off = from; off < end;) {
    size_t n = end - off < sizeof zeros ? (size_t)(end - off) : sizeof zeros;
    ssize_t w = pwrite(fd, zeros, n, (off_t)off);
    if (w < 0) {
      int err = errno;
      if (ftruncate(fd, (off_t)(tb->file_size > from ? tb->file_size : from)) != 0) {}
      return -err;
    }
    off += (uint64_t)w;
  }
  tb->file_size = end;
  return 0;
}

/* Maps win_size bytes at win_off, extending the file (with blocks) to the window's end
 * first. Only the full window is populated up front: a process that leaves the staged
 * start seldom needs more than the first window, and faulting its few pages in as
 * records arrive is cheaper. */
static int map_window(struct uwrx_tracebuf *tb) {
  int r = reserve_blocks(tb, tb->win_off + tb->win_size);
  if (r != 0) return r;
  int populate = tb->win_size == UWRX_TRACE_WINDOW_SIZE ? MAP_POPULATE : 0;
  void *p = mmap(NULL, tb->win_size, PROT_READ | PROT_WRITE, MAP_SHARED | populate, tb->fd, (off_t)tb->win_off);
  if (p == MAP_FAILED) return -errno;
  tb->win = p;
  return 0;
}

/* "<pid><suffix>", by hand: it runs at every process's start and end (snprintf's
 * formatting showed in uwrx-init's profile). */
static void name_of(char *out, size_t n, uint32_t pid, const char *suffix) {
  char digits[10];
  size_t nd = 0, len = strlen(suffix);
  do digits[nd++] = (char)('0' + pid % 10);
  while ((pid /= 10) != 0);
  if (nd + len + 1 > n) {
    if (n) out[0] = 0;
    return;
  }
  for (size_t i = 0; i < nd; i++) out[i] = digits[nd - 1 - i];
  memcpy(out + nd, suffix, len + 1);
}

static uint64_t allocated(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

uint64_t uwrx_tracebuf_region_allocated(int fd) {
  uint64_t sum = 0;
  off_t off = 0, end = (off_t)UWRX_TRACE_DATA_OFFSET;
  while (off < end) {
    off_t data = lseek(fd, off, SEEK_DATA);
    if (data < 0 || data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) break;
    if (hole > end) hole = end;
    sum += (uint64_t)(hole - data);
    off = hole;
  }
  return sum;
}

/* Blocks of the records (the recorder region's are its own: the recorder writes output
 * there at its own pace and the collector reads a live region in large steps). */
static uint64_t records_allocated(const struct uwrx_tracebuf *tb) {
  uint64_t all = allocated(tb->fd);
  if (!tb->region) return all;
  uint64_t region = uwrx_tracebuf_region_allocated(tb->fd);
  return all > region ? all - region : 0;
}

/* Waits while the unread backlog is above backlog_max; see tracebuf.h. */
static void throttle(struct uwrx_tracebuf *tb) {
  uint64_t now = records_allocated(tb), best = now;
  unsigned still = 0;
  while (now > tb->backlog_max) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    tb->throttled_ns += 1000000;
    now = records_allocated(tb);
    if (now < best) {
      best = now;
      still = 0;
    } else if (++still >= UWRX_TRACE_THROTTLE_GIVEUP_MS) {
      tb->backlog_max = 0;
      return;
    }
  }
}

static void init_buffer(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid) {
  memset(tb, 0, sizeof *tb);
  tb->fd = -1;
  tb->dirfd = traces_dirfd;
  tb->pid = pid;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  tb->step = (UWRX_TRACE_WINDOW_SIZE - UWRX_EV_MAX_SIZE) & ~(uint64_t)(page - 1);
  tb->backlog_max = UWRX_TRACE_BACKLOG_MAX;
  tb->win_size = 0; /* staged: nothing mapped yet */
  tb->win_off = tb->pos = UWRX_TRACE_DATA_OFFSET;
}

int uwrx_tracebuf_open(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid) {
  char name[32];
  init_buffer(tb, traces_dirfd, pid);
  name_of(name, sizeof name, pid, "");
  tb->fd = openat(traces_dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (tb->fd < 0) return -errno;
  pthread_mutex_init(&tb->lock, NULL);
  return 0;
}

int uwrx_tracebuf_reuse(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid, uint32_t index) {
  char from[48], name[32];
  static const char prefix[] = UWRX_TRACE_POOL_PREFIX;
  init_buffer(tb, traces_dirfd, pid);
  memcpy(from, prefix, sizeof prefix - 1);
  name_of(from + sizeof prefix - 1, sizeof from - (sizeof prefix - 1), index, "");
  name_of(name, sizeof name, pid, "");
  /* the name first: once it is <pid>, the collector reads it as this process's */
  if (renameat(traces_dirfd, from, traces_dirfd, name) != 0) return -errno;
  tb->fd = openat(traces_dirfd, name, O_RDWR | O_CLOEXEC);
  if (tb->fd < 0) {
    int err = errno;
    unlinkat(traces_dirfd, name, 0);
    return -err;
  }
  /* reset by the collector: at least the recorder region's length, zeros (what the
   * writer tracks is a lower bound: it only grows the file from there) */
  tb->file_size = UWRX_TRACE_DATA_OFFSET;
  pthread_mutex_init(&tb->lock, NULL);
  return 0;
}

/* A log entry [pid, what], little-endian, into le[0..8). */
static void encode_entry(unsigned char *le, uint32_t pid, uint32_t what) {
  for (int i = 0; i < 4; i++) {
    le[i] = (unsigned char)(pid >> (8 * i));
    le[4 + i] = (unsigned char)(what >> (8 * i));
  }
}

/* One log entry [pid, what] in one write (O_APPEND: it lands whole). */
static int log_entry(int log_fd, uint32_t pid, uint32_t what) {
  unsigned char le[8];
  encode_entry(le, pid, what);
  ssize_t w = write(log_fd, le, sizeof le);
  return w == (ssize_t)sizeof le ? 0 : w < 0 ? -errno : -ENOSPC;
}

int uwrx_tracebuf_log_ends(int log_fd, const uint32_t *pids, size_t n) {
  unsigned char stack[64 * 8], *le = n <= 64 ? stack : malloc(n * 8);
  if (!le) {
    /* no room to gather them: one write each */
    for (size_t k = 0; k < n; k++) {
      int r = log_entry(log_fd, pids[k], UWRX_TRACE_LOG_ENDED);
      if (r != 0) return r;
    }
    return 0;
  }
  for (size_t k = 0; k < n; k++) encode_entry(le + 8 * k, pids[k], UWRX_TRACE_LOG_ENDED);
  int r = 0;
  for (size_t off = 0, len = n * 8; off < len && r == 0;) {
    ssize_t w = write(log_fd, le + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) r = w < 0 ? -errno : -ENOSPC;
    else off += (size_t)w;
  }
  if (le != stack) free(le);
  return r;
}

/* ended: 0 live, 1 renamed <pid>.ended, 2 logged ([pid, 0]) once closed, 3 closed as
 * ended for the caller to log */
static int close_buffer(struct uwrx_tracebuf *tb, int ended, int log_fd) {
  int r = 0;
  if (tb->fd < 0) return -EBADF;
  pthread_mutex_lock(&tb->lock);
  if (tb->win) munmap(tb->win, tb->win_size);
  tb->win = NULL;
  /* a window's unused end; staged records and the recorder region end where they do */
  if (ended && tb->file_size > tb->pos && ftruncate(tb->fd, (off_t)tb->pos) != 0) r = -errno;
  if (ended == 1) {
    char from[32], to[32];
    name_of(from, sizeof from, tb->pid, "");
    name_of(to, sizeof to, tb->pid, ".ended");
    if (renameat(tb->dirfd, from, tb->dirfd, to) != 0 && r == 0) r = -errno;
  }
  if (close(tb->fd) != 0 && r == 0) r = -errno;
  tb->fd = -1;
  if (ended == 2) {
    int w = log_entry(log_fd, tb->pid, UWRX_TRACE_LOG_ENDED);
    if (w != 0 && r == 0) r = w;
  }
  pthread_mutex_unlock(&tb->lock);
  pthread_mutex_destroy(&tb->lock);
  return r;
}

int uwrx_tracebuf_close(struct uwrx_tracebuf *tb, int ended) { return close_buffer(tb, ended ? 1 : 0, -1); }

int uwrx_tracebuf_close_logged(struct uwrx_tracebuf *tb, int log_fd) { return close_buffer(tb, 2, log_fd); }

int uwrx_tracebuf_close_unlogged(struct uwrx_tracebuf *tb) { return close_buffer(tb, 3, -1); }

int uwrx_tracebuf_log_open(int traces_dirfd) {
  int fd = openat(traces_dirfd, UWRX_TRACE_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  return fd < 0 ? -errno : fd;
}

int uwrx_tracebuf_take_logged(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid, uint32_t index, int log_fd) {
  char from[48];
  static const char prefix[] = UWRX_TRACE_POOL_PREFIX;
  init_buffer(tb, traces_dirfd, pid);
  memcpy(from, prefix, sizeof prefix - 1);
  name_of(from + sizeof prefix - 1, sizeof from - (sizeof prefix - 1), index, "");
  tb->fd = openat(traces_dirfd, from, O_RDWR | O_CLOEXEC);
  if (tb->fd < 0) return -errno;
  /* once logged, the collector reads free.<index> as pid's */
  int r = log_entry(log_fd, pid, index + 1);
  if (r != 0) {
    close(tb->fd);
    tb->fd = -1;
    return r;
  }
  /* reset by the collector: as uwrx_tracebuf_reuse */
  tb->file_size = UWRX_TRACE_DATA_OFFSET;
  pthread_mutex_init(&tb->lock, NULL);
  return 0;
}

int uwrx_tracebuf_region(struct uwrx_tracebuf *tb, const void *header, size_t len) {
  int r = 0;
  pthread_mutex_lock(&tb->lock);
  ssize_t n = tb->fd < 0 ? -1 : pwrite(tb->fd, header, len, 0);
  if (tb->fd < 0) r = -EBADF;
  else if (n != (ssize_t)len) r = n < 0 ? -errno : -ENOSPC;
  /* the whole region lies before the file's end (a page of a shared mapping past it
   * would be SIGBUS), with no blocks until written; records extend the file anyway */
  else if (tb->file_size < UWRX_TRACE_DATA_OFFSET && ftruncate(tb->fd, (off_t)UWRX_TRACE_DATA_OFFSET) != 0) r = -errno;
  else if (tb->file_size < UWRX_TRACE_DATA_OFFSET) tb->file_size = UWRX_TRACE_DATA_OFFSET;
  if (r == 0) tb->region = 1;
  pthread_mutex_unlock(&tb->lock);
  return r;
}

size_t uwrx_trace_room(size_t fixed_len, unsigned nblobs) {
  return UWRX_EV_MAX_SIZE - UWRX_EV_HEADER_SIZE - ALIGN8(fixed_len) - 4 * (size_t)nblobs - 8;
}

/* A staged record of this thread: between reserve and finish, under the buffer's lock. */
static __thread unsigned char staged[UWRX_TRACE_STAGED_MAX] __attribute__((aligned(8)));

/* Whether a record of `size` bytes is staged and written with pwrite (lock held). */
static int stages(const struct uwrx_tracebuf *tb, size_t size) {
  return !tb->win && size <= UWRX_TRACE_STAGED_MAX && tb->pos + size <= UWRX_TRACE_DATA_OFFSET + UWRX_TRACE_FIRST_WINDOW_SIZE;
}

/* Takes the lock, makes room for size bytes and fills the header, stamped `at` (ns,
 * CLOCK_BOOTTIME; 0: now). NULL: dropped (lock released, error counted). */
static unsigned char *reserve(struct uwrx_tracebuf *tb, uint16_t type, uint16_t flags, uint32_t tid,
                              size_t size, uint64_t at) {
  pthread_mutex_lock(&tb->lock);
  if (tb->err == 0 && !stages(tb, size) && (!tb->win || tb->pos + size > tb->win_off + tb->win_size)) {
    if (tb->win) munmap(tb->win, tb->win_size);
    tb->win = NULL;
    if (tb->win_size < UWRX_TRACE_WINDOW_SIZE) {
      /* leaving the staged start, or the first window growing: mapped at the records'
       * start (UWRX_TRACE_DATA_OFFSET), so nothing becomes final yet */
      tb->win_size = tb->pos + size <= UWRX_TRACE_DATA_OFFSET + UWRX_TRACE_FIRST_WINDOW_SIZE ? UWRX_TRACE_FIRST_WINDOW_SIZE
                                                                                         : UWRX_TRACE_WINDOW_SIZE;
    } else {
      while (tb->pos + size > tb->win_off + UWRX_TRACE_WINDOW_SIZE) tb->win_off += tb->step;
    }
    tb->err = map_window(tb);
    if (tb->err == 0 && tb->backlog_max && tb->win_off > UWRX_TRACE_DATA_OFFSET) throttle(tb);
  }
  if (tb->err != 0 || tb->fd < 0) {
    tb->dropped++;
    pthread_mutex_unlock(&tb->lock);
    return NULL;
  }
  unsigned char *p = tb->win ? tb->win + (tb->pos - tb->win_off) : staged;
  struct uwrx_ev_header h;
  if (!at) {
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  }
  /* a time from the past never goes before a record already written: the file's times
   * stay non-decreasing, which the collector's watermark counts on */
  if (at < tb->last_time) at = tb->last_time;
  tb->last_time = at;
  h.size = (uint32_t)size;
  h.type = type;
  h.flags = flags;
  h.pid = tb->pid;
  h.tid = tid;
  h.time_ns = at;
  memcpy(p, &h, sizeof h);
  return p;
}

/* Writes fixed part and the given blobs after the header; returns the end pointer. */
static unsigned char *fill(unsigned char *p, const void *fixed, size_t fixed_len, const struct uwrx_blob *blobs,
                           const size_t *lens, unsigned nblobs) {
  unsigned char *q = p + UWRX_EV_HEADER_SIZE;
  memcpy(q, fixed, fixed_len);
  memset(q + fixed_len, 0, ALIGN8(fixed_len) - fixed_len);
  q += ALIGN8(fixed_len);
  for (unsigned i = 0; i < nblobs; i++) {
    uint32_t n = (uint32_t)lens[i];
    memcpy(q, &n, 4);
    if (n) memcpy(q + 4, blobs[i].data, n);
    q += 4 + n;
  }
  return q;
}

/* Cuts blob lengths so the record fits; returns the unpadded record size. */
static size_t fit(size_t fixed_len, const struct uwrx_blob *blobs, unsigned nblobs, size_t *lens,
                  uint16_t *flags) {
  size_t room = uwrx_trace_room(fixed_len, nblobs);
  size_t size = UWRX_EV_HEADER_SIZE + ALIGN8(fixed_len);
  for (unsigned i = 0; i < nblobs; i++) {
    size_t n = blobs[i].len < room ? blobs[i].len : room;
    if (n < blobs[i].len) *flags |= UWRX_EV_FLAG_TRUNCATED;
    room -= n;
    lens[i] = n;
    size += 4 + n;
  }
  return size;
}

static void finish(struct uwrx_tracebuf *tb, unsigned char *p, unsigned char *end) {
  size_t used = (size_t)(end - p);
  size_t size = ALIGN8(used);
  memset(end, 0, size - used);
  memcpy(p, &(uint32_t){(uint32_t)size}, 4);
  if (p == staged) {
    /* the file ends where its records do: nothing to cut at the end */
    ssize_t n = pwrite(tb->fd, p, size, (off_t)tb->pos);
    if (n != (ssize_t)size) {
      tb->err = n < 0 ? -errno : -ENOSPC;
      tb->dropped++;
      /* a partial record must not stay: the file ends before it */
      if (n > 0 && ftruncate(tb->fd, (off_t)tb->pos) != 0) {}
      pthread_mutex_unlock(&tb->lock);
      return;
    }
    tb->file_size = tb->pos + size;
  }
  tb->pos += size;
  pthread_mutex_unlock(&tb->lock);
}

#define MAX_BLOBS 4

int uwrx_trace_append_raw(struct uwrx_tracebuf *tb, const void *record, size_t size) {
  struct uwrx_ev_header h;
  if (size < UWRX_EV_HEADER_SIZE || size > UWRX_EV_MAX_SIZE || size % 8 != 0) return -EINVAL;
  memcpy(&h, record, sizeof h);
  if (h.size != size) return -EINVAL;
  unsigned char *p = reserve(tb, h.type, h.flags, h.tid, size, 0);
  if (!p) return tb->err ? tb->err : -EBADF;
  memcpy(p + UWRX_EV_HEADER_SIZE, (const unsigned char *)record + UWRX_EV_HEADER_SIZE, size - UWRX_EV_HEADER_SIZE);
  finish(tb, p, p + size);
  return 0;
}

static int emit_at(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const void *fixed, size_t fixed_len,
                   const struct uwrx_blob *blobs, unsigned nblobs, uint64_t at) {
  size_t lens[MAX_BLOBS];
  uint16_t flags = 0;
  if (nblobs > MAX_BLOBS) return -EINVAL;
  size_t used = fit(fixed_len, blobs, nblobs, lens, &flags);
  unsigned char *p = reserve(tb, type, flags, tid, ALIGN8(used), at);
  if (!p) return tb->err ? tb->err : -EBADF;
  finish(tb, p, fill(p, fixed, fixed_len, blobs, lens, nblobs));
  return 0;
}

int uwrx_trace_emit(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const void *fixed, size_t fixed_len,
                    const struct uwrx_blob *blobs, unsigned nblobs) {
  return emit_at(tb, type, tid, fixed, fixed_len, blobs, nblobs, 0);
}

/* The reserved record of an open uwrx_trace_begin: where its last blob's length goes. */
static __thread unsigned char *open_record, *open_blob_len;

int uwrx_trace_begin(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const void *fixed, size_t fixed_len,
                     const struct uwrx_blob *blobs, unsigned nblobs, size_t blob_max, void **dst) {
  size_t lens[MAX_BLOBS];
  uint16_t flags = 0;
  if (nblobs + 1 > MAX_BLOBS) return -EINVAL;
  size_t used = fit(fixed_len, blobs, nblobs, lens, &flags);
  if (used + 4 + blob_max > UWRX_EV_MAX_SIZE - 8) return -EMSGSIZE;
  unsigned char *p = reserve(tb, type, flags, tid, ALIGN8(used + 4 + blob_max), 0);
  if (!p) return tb->err ? tb->err : -EBADF;
  unsigned char *q = fill(p, fixed, fixed_len, blobs, lens, nblobs);
  open_record = p;
  open_blob_len = q;
  *dst = q + 4;
  return 0;
}

void uwrx_trace_end(struct uwrx_tracebuf *tb, size_t blob_len) {
  uint32_t n = (uint32_t)blob_len;
  memcpy(open_blob_len, &n, 4);
  finish(tb, open_record, open_blob_len + 4 + n);
}

int uwrx_trace_spawn(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t child, int thread, uint64_t clone_flags) {
  struct uwrx_ev_spawn ev = {.child = child, .thread = thread ? 1 : 0, .clone_flags = clone_flags};
  return uwrx_trace_emit(tb, UWRX_EV_SPAWN, tid, &ev, sizeof ev, NULL, 0);
}

int uwrx_trace_exec(struct uwrx_tracebuf *tb, uint32_t tid, int64_t result, const char *path, const char *argv,
                    size_t argv_len) {
  return uwrx_trace_exec_at(tb, tid, result, path, argv, argv_len, 0);
}

int uwrx_trace_exec_at(struct uwrx_tracebuf *tb, uint32_t tid, int64_t result, const char *path, const char *argv,
                       size_t argv_len, uint64_t time_ns) {
  struct uwrx_ev_exec ev = {.result = result};
  struct uwrx_blob b[2] = {{path, strlen(path)}, {argv, argv_len}};
  return emit_at(tb, UWRX_EV_EXEC, tid, &ev, sizeof ev, b, 2, time_ns);
}

int uwrx_trace_exit(struct uwrx_tracebuf *tb, uint32_t tid, int32_t status, int32_t signal) {
  return uwrx_trace_exit_at(tb, tid, status, signal, 0);
}

int uwrx_trace_exit_at(struct uwrx_tracebuf *tb, uint32_t tid, int32_t status, int32_t signal, uint64_t time_ns) {
  struct uwrx_ev_exit ev = {.status = status, .signal = signal};
  return emit_at(tb, UWRX_EV_EXIT, tid, &ev, sizeof ev, NULL, 0, time_ns);
}

int uwrx_trace_open(struct uwrx_tracebuf *tb, uint32_t tid, const char *path, int32_t flags, uint32_t mode,
                    int64_t result) {
  struct uwrx_ev_open ev = {.flags = flags, .mode = mode, .result = result};
  struct uwrx_blob b = {path, strlen(path)};
  return uwrx_trace_emit(tb, UWRX_EV_OPEN, tid, &ev, sizeof ev, &b, 1);
}

int uwrx_trace_path_op(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const char *path, const char *path2,
                       int64_t a, int64_t b, int64_t result) {
  struct uwrx_blob blobs[2] = {{path, strlen(path)}, {path2 ? path2 : "", path2 ? strlen(path2) : 0}};
  switch (type) {
  case UWRX_EV_STAT: {
    struct uwrx_ev_stat ev = {.flags = (int32_t)a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_UNLINK: {
    struct uwrx_ev_unlink ev = {.flags = (int32_t)a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_RENAME: {
    struct uwrx_ev_rename ev = {.flags = (int32_t)a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 2);
  }
  case UWRX_EV_MKDIR: {
    struct uwrx_ev_mkdir ev = {.mode = (uint32_t)a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_RMDIR: {
    struct uwrx_ev_rmdir ev = {.result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_CHMOD: {
    struct uwrx_ev_chmod ev = {.mode = (uint32_t)a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_CHOWN: {
    struct uwrx_ev_chown ev = {.uid = (uint32_t)a, .gid = (uint32_t)b, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  case UWRX_EV_TRUNCATE: {
    struct uwrx_ev_truncate ev = {.length = a, .result = result};
    return uwrx_trace_emit(tb, type, tid, &ev, sizeof ev, blobs, 1);
  }
  default:
    return -EINVAL;
  }
}

int uwrx_trace_connect(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t family, uint32_t port, const void *addr,
                       size_t addr_len, int64_t result) {
  struct uwrx_ev_connect ev = {.family = family, .port = port, .result = result};
  struct uwrx_blob b = {addr, addr_len};
  return uwrx_trace_emit(tb, UWRX_EV_CONNECT, tid, &ev, sizeof ev, &b, 1);
}

int uwrx_trace_output(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t fd, const void *data, size_t len) {
  size_t chunk = uwrx_trace_room(sizeof(struct uwrx_ev_output), 1);
  const unsigned char *p = data;
  do {
    size_t n = len < chunk ? len : chunk;
    struct uwrx_ev_output ev = {.fd = fd, .flags = n < len ? UWRX_OUTPUT_FLAG_MORE : 0};
    struct uwrx_blob b = {p, n};
    int r = uwrx_trace_emit(tb, UWRX_EV_OUTPUT, tid, &ev, sizeof ev, &b, 1);
    if (r != 0) return r;
    p += n;
    len -= n;
  } while (len > 0);
  return 0;
}
