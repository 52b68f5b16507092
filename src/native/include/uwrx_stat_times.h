/* Times a stat result shows inside the sandbox (docs/record.md, "Timestamps in stat
 * results"), the part both answering paths share so that they cannot disagree:
 * uwrx-init's stat handler (init/files.c), which knows every layer, and the in-process
 * recorder (recorder/recorder.c), which answers alone only the cases decided here. */
#ifndef UWRX_STAT_TIMES_H
#define UWRX_STAT_TIMES_H

#include <stdint.h>
#include <sys/stat.h>
#include "uwrx_recorder.h"

static inline struct timespec uwrx_stat_timespec(int64_t t) {
  struct timespec ts = { .tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL };
  return ts;
}

/* Time `t` on a stat result: its change time always, its access and modification times
 * unless a program set them explicitly. */
static inline void uwrx_stat_show(struct stat *st, int64_t t, int explicit_times) {
  struct timespec ts = uwrx_stat_timespec(t);
  if (!explicit_times) st->st_atim = st->st_mtim = ts;
  st->st_ctim = ts;
}

/* The same on a statx result, whose birth time shows `t` too where the filesystem gave
 * one: a birth time the kernel left out of the mask or reported as zero (a file its
 * filesystem does not know the creation of) stays as natively. Programs tell such files
 * by it: cargo hashes a compiler's birth and modification times into its fingerprint. */
static inline void uwrx_statx_show(struct statx *stx, int64_t t, int explicit_times) {
  struct timespec ts = uwrx_stat_timespec(t);
  if (!explicit_times) {
    stx->stx_atime.tv_sec = stx->stx_mtime.tv_sec = ts.tv_sec;
    stx->stx_atime.tv_nsec = stx->stx_mtime.tv_nsec = (uint32_t)ts.tv_nsec;
  }
  stx->stx_ctime.tv_sec = ts.tv_sec;
  stx->stx_ctime.tv_nsec = (uint32_t)ts.tv_nsec;
  if ((stx->stx_mask & STATX_BTIME) && (stx->stx_btime.tv_sec != 0 || stx->stx_btime.tv_nsec != 0)) {
    stx->stx_btime.tv_sec = ts.tv_sec;
    stx->stx_btime.tv_nsec = (uint32_t)ts.tv_nsec;
  }
}

/* Whether mount `mnt_id` is one of the overlays' (the header's mount_bits). */
static inline int uwrx_stat_overlay_mount(const struct uwrx_rec_header *h, uint64_t mnt_id) {
  if (mnt_id < h->mount_base || mnt_id - h->mount_base >= UWRX_REC_MOUNT_BITS) return 0;
  uint64_t bit = mnt_id - h->mount_base;
  return (h->mount_bits[bit / 8] >> (bit % 8)) & 1;
}

/* Whether a file uwrx-init would show with its own modification time can be told without
 * it: the file lies in one of the overlays (the mount id of the result is one of
 * theirs: not /proc, /dev, a mount below an overlay's directory), this attempt has not
 * changed it (its change time is older than the attempt's upper layers, so it is no file
 * of theirs and no copy-up), and its modification time is outside the parents' window
 * (a real file edited after the parents were recorded shows a later time; a parent's
 * own files lie in the window). Every other case asks uwrx-init. */
static inline int uwrx_stat_shows_own_time(const struct uwrx_rec_header *h, uint64_t mnt_id, int64_t ctime_ns,
                                           int64_t mtime_ns) {
  if (!h->squash || !uwrx_stat_overlay_mount(h, mnt_id) || ctime_ns >= h->changed_since_ns) return 0;
  if (h->window_hi_ns && mtime_ns > h->window_lo_ns && mtime_ns <= h->window_hi_ns) return 0;
  return 1;
}

/* Whether a directory is one uwrx made in an upper layer before the command started
 * (plan_dirs) whose modification time is still the one it was made with, the host
 * directory's (an entry added or removed changes it). It shows that time, as the host
 * directory does. (Its change time is no guide: overlayfs marks the directory with an
 * extended attribute at its first lookup.) */
static inline int uwrx_stat_plan_dir(const struct uwrx_rec_header *h, uint64_t mnt_id, uint64_t ino, int64_t mtime_ns) {
  uint32_t n = h->squash && h->plan_dirs_n <= UWRX_REC_PLAN_DIRS ? h->plan_dirs_n : 0;
  for (uint32_t i = 0; i < n; i++) {
    const struct uwrx_rec_plan_dir *d = &h->plan_dirs[i];
    if (d->mnt_id == mnt_id && d->ino == ino) return d->mtime_ns == mtime_ns;
  }
  return 0;
}

/* Whether a file on mount `mnt_id` is shown as the kernel shows it: a mount outside the
 * overlays (a pipe, a socket, /proc, /dev), where uwrx-init leaves the kernel's answer
 * as it is. */
static inline int uwrx_stat_shows_kernel(const struct uwrx_rec_header *h, uint64_t mnt_id) {
  uint32_t n = h->squash && h->kernel_mounts_n <= UWRX_REC_KERNEL_MOUNTS ? h->kernel_mounts_n : 0;
  for (uint32_t i = 0; i < n; i++)
    if (h->kernel_mounts[i] == mnt_id) return 1;
  return 0;
}

/* ---- times of files this attempt changed, published for the recorders ----
 * A file this attempt changed shows the virtual time of its last change (init/
 * filetimes.c), which only uwrx-init knows. Once uwrx-init has answered a stat of such a
 * file, it publishes that time here under the file's device and inode number, so the
 * recorders answer the next stats of it without a notification (a build stats its own
 * outputs again and again: make its targets, Python and Go their caches). An entry goes
 * (before the change is let run) as soon as the file's time changes or its path does (a
 * rename of it or of a directory above it; all go at an exchange of two paths, a change
 * of root or mounts, or a removal or rename not looked at), and is published again at
 * the next notified stat. Only files with one name and directories
 * are published: the times are kept per path, and one inode with several names could show
 * several. One table per run, a file in the sandbox's private /dev made by uwrx-init with
 * the first recorder buffer, mapped read-only by recorders on first need; no file: every
 * such stat is notified, as before. Each slot is a sequence lock: a reader that meets a
 * writer asks uwrx-init instead of waiting. */
#define UWRX_TIMES_PATH "/dev/.uwrx-times"
#define UWRX_TIMES_MAGIC 0x3173656d69747775ULL /* "uwtimes1" */
#define UWRX_TIMES_SLOTS 65536u                /* a power of two */
#define UWRX_TIMES_PROBES 16u                  /* slots a key may lie in, from its hash on */
#define UWRX_TIMES_USED 1u                     /* the slot held an entry once: probes go on */
#define UWRX_TIMES_LIVE 2u                     /* the slot holds an entry now */
#define UWRX_TIMES_EXPLICIT 4u                 /* a program set the file's times (uwrx_stat_show) */

struct uwrx_times_slot {
  uint32_t seq;   /* odd while uwrx-init writes the slot */
  uint32_t flags; /* UWRX_TIMES_* */
  uint64_t dev;   /* (major << 32) | minor */
  uint64_t ino;
  int64_t ns;     /* the time the file shows */
};

struct uwrx_times {
  uint64_t magic;
  uint64_t reserved[7];
  struct uwrx_times_slot slots[UWRX_TIMES_SLOTS];
};
#define UWRX_TIMES_SIZE sizeof(struct uwrx_times)

/* Consecutive inode numbers of a filesystem in consecutive slots: files made together (a
 * build step's outputs) share a page of the table, and a process that stats several
 * touches a page or two of it rather than one per file (the first touch of a page is a
 * page fault, 15-20 us on some virtual machines). */
static inline uint32_t uwrx_times_home(uint64_t dev, uint64_t ino) {
  uint64_t base = (dev * 0x9e3779b97f4a7c15ULL) >> 40;
  return (uint32_t)(ino + base) & (UWRX_TIMES_SLOTS - 1);
}

/* The published time of (dev, ino): 1 with *ns and *explicit_times set, 0 when there is
 * none or a slot on the way is being written (then uwrx-init answers). */
static inline int uwrx_times_lookup(const struct uwrx_times *t, uint64_t dev, uint64_t ino, int64_t *ns,
                                    int *explicit_times) {
  uint32_t home = uwrx_times_home(dev, ino);
  for (uint32_t i = 0; i < UWRX_TIMES_PROBES; i++) {
    const struct uwrx_times_slot *s = &t->slots[(home + i) & (UWRX_TIMES_SLOTS - 1)];
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (seq & 1) return 0;
    uint32_t flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
    uint64_t d = __atomic_load_n(&s->dev, __ATOMIC_RELAXED), n = __atomic_load_n(&s->ino, __ATOMIC_RELAXED);
    int64_t when = __atomic_load_n(&s->ns, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq) return 0;
    if (!(flags & UWRX_TIMES_USED)) return 0;
    if ((flags & UWRX_TIMES_LIVE) && d == dev && n == ino) {
      *ns = when;
      *explicit_times = (flags & UWRX_TIMES_EXPLICIT) != 0;
      return 1;
    }
  }
  return 0;
}

#endif
