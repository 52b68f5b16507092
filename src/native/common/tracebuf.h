/* Per-process trace buffer writer: appends uwrx_events.h records to <traces>/<pid>, from
 * UWRX_TRACE_DATA_OFFSET on. The file's first UWRX_TRACE_DATA_OFFSET bytes are the
 * process's in-process recorder region (uwrx_recorder.h, uwrx_tracebuf_region): one file
 * per process, not a second one to create, read and unlink (an inode each on the
 * traces' filesystem). Without a recorder they stay a hole. Offsets below are file
 * offsets: "the start" is UWRX_TRACE_DATA_OFFSET.
 * Most processes write a few small records (exec, exit): while a buffer holds less than
 * UWRX_TRACE_FIRST_WINDOW_SIZE bytes, records of up to UWRX_TRACE_STAGED_MAX bytes are
 * built in a per-thread staging area and written with pwrite, so a short process's
 * buffer costs no fallocate, mmap, munmap (a TLB shootdown in a threaded writer) or
 * final ftruncate. The first record that does not fit that start maps a MAP_SHARED
 * window: UWRX_TRACE_FIRST_WINDOW_SIZE bytes (unpopulated, cheap to create and to cut),
 * then a populated UWRX_TRACE_WINDOW_SIZE one.
 *
 * Before the first window the file is exactly its records (a reused one, see the pool
 * below: its records, then zeros; under UWRX_TRACE_WINDOW_SIZE: nothing final yet);
 * after, it is always window end bytes long (ftruncate) and the window is never longer
 * than UWRX_TRACE_WINDOW_SIZE, so everything
 * before size - UWRX_TRACE_WINDOW_SIZE is final and the collector may read it and punch
 * holes behind it. When a record does not
 * fit the first window, it grows in place to UWRX_TRACE_WINDOW_SIZE; when a record does
 * not fit a full window, the window moves forward by
 * UWRX_TRACE_WINDOW_SIZE - UWRX_EV_MAX_SIZE rounded down to pages; a record never
 * straddles windows. uwrx_tracebuf_close(tb, 1) cuts the file to the written length and
 * renames it <pid>.ended, which tells the collector to read it to the end and delete it.
 *
 * Thread safety: one uwrx_tracebuf per traced process; any number of handler threads may
 * write to it (a mutex per buffer serialises them; the timestamp is taken under it, so
 * times are non-decreasing within a file; a record given a time of the past, the exit,
 * is stamped no earlier than the one before it). Nothing here allocates memory: the struct is
 * caller storage and records are written into the staging area or straight into the
 * mapping.
 *
 * Every function returns 0 or a negative errno. After a failure (e.g. ENOSPC while
 * growing the file) the buffer keeps counting dropped records instead of writing. */
#pragma once
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "uwrx_events.h"

struct uwrx_tracebuf {
  pthread_mutex_t lock;
  int fd;
  int dirfd;          /* the traces directory (not owned) */
  uint32_t pid;
  int err;            /* first error, negative errno; once set, records are dropped */
  uint64_t dropped;   /* records not written because of err */
  uint64_t step;      /* window advance, page rounded */
  uint64_t win_off;   /* file offset of the mapped window */
  uint64_t pos;       /* file offset of the next record */
  uint64_t win_size;  /* 0 (staged), UWRX_TRACE_FIRST_WINDOW_SIZE, then UWRX_TRACE_WINDOW_SIZE */
  uint64_t file_size; /* the file's length: only the writer changes it (0 at open) */
  unsigned char *win; /* win_size bytes mapped at win_off */
  uint64_t backlog_max;  /* throttle above this many allocated bytes; 0 = never */
  uint64_t throttled_ns; /* time spent waiting for the collector */
  int region;            /* the recorder region was set up (uwrx_tracebuf_region) */
  uint64_t last_time;    /* the last record's time: no record is stamped earlier */
};

/* Backpressure: when the window moves and the file's records hold more than backlog_max
 * allocated bytes (the collector has not caught up and punched them), the writer waits for it, a
 * millisecond at a time, so tmp use stays bounded even for a process that writes
 * hundreds of MiB of output at full speed. A traced process is slowed only then. If the
 * backlog does not shrink for UWRX_TRACE_THROTTLE_GIVEUP_MS (no collector running), the
 * buffer stops throttling. */
#define UWRX_TRACE_BACKLOG_MAX (4u << 20)
/* The first window: room for a few hundred small records, and for the largest one. */
#define UWRX_TRACE_FIRST_WINDOW_SIZE (64u << 10)
/* The largest record written with pwrite before the first window is mapped. */
#define UWRX_TRACE_STAGED_MAX 4096u
#define UWRX_TRACE_THROTTLE_GIVEUP_MS 3000

/* One byte string of a record (path, argv, output bytes ...). */
struct uwrx_blob {
  const void *data;
  size_t len;
};

/* Creates <traces_dirfd>/<pid> empty (truncating an old one; nothing is mapped yet);
 * backlog_max starts at UWRX_TRACE_BACKLOG_MAX (set it to 0 to never wait). */
int uwrx_tracebuf_open(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid);

/* The pool of finished buffer files (the collector's, src/actors/collector.ts): once the
 * collector has read an ended buffer it may, instead of deleting it, reset it and rename
 * it <traces>/free.<n>, n counting up from 0. A reset buffer is at least
 * UWRX_TRACE_DATA_OFFSET bytes long and reads as zeros (its recorder header and records,
 * its own records, overwritten with zeros; the records' part may be longer than before
 * the first window: zeros, which end the records for every reader as an uncommitted
 * record does): a buffer with nothing in it whose pages are still allocated, so neither
 * the create (an inode) nor the delete (tmpfs freeing its pages) nor the zeroing of
 * those pages on first touch is paid again. Buffers are taken in the order returned. */
#define UWRX_TRACE_POOL_PREFIX "free."
/* A buffer is pooled only when its recorder region and its records each used at most
 * this many bytes (larger ones are deleted: the pool's bound is on memory). */
#define UWRX_TRACE_POOL_PART_MAX (64u << 10)

/* Takes pooled buffer free.<index> as <traces_dirfd>/<pid> (a rename), as
 * uwrx_tracebuf_open would have created it; -ENOENT when there is no such buffer (the pool
 * is empty: the caller creates one). */
int uwrx_tracebuf_reuse(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid, uint32_t index);

/* Sets up the recorder region: writes its header (len bytes) at offset 0 and makes the
 * file at least UWRX_TRACE_DATA_OFFSET long, so the whole region can be mapped. The
 * records stay where they are. */
int uwrx_tracebuf_region(struct uwrx_tracebuf *tb, const void *header, size_t len);

/* Bytes of the recorder region of buffer file `fd` that hold data (SEEK_DATA, SEEK_HOLE:
 * the header page, and the records the collector has not read and punched yet). */
uint64_t uwrx_tracebuf_region_allocated(int fd);

/* Unmaps and closes. ended=1: the process is gone, so cut the file to its data and rename
 * it <pid>.ended for the collector. ended=0 leaves it looking live (uwrx-init exiting). */
int uwrx_tracebuf_close(struct uwrx_tracebuf *tb, int ended);

/* The buffer log, <traces>/log: what a writer of many buffers (uwrx-init) says instead
 * of renaming them. Entries of 8 bytes, u32 little-endian each, appended with one
 * O_APPEND write (so each lands whole, whichever thread writes another): [pid, 0] once
 * pid's buffer is final and closed (instead of a rename to <pid>.ended); [pid, n + 1]
 * once pid took pooled buffer free.<n>, which it writes under that name (instead of a
 * rename to <pid>). A buffer's name is then not always its owner: the collector reads
 * the log's new part at each scan before it lists the directory, so a free.<n> in the
 * listing is pid's when an entry says so, and waits in the pool otherwise. (A rename on
 * the traces tmpfs costs about 10 us: both names looked up, the directory's offset tree
 * updated; a small append about 1.) Opens (creates) it for appending; -errno on failure. */
#define UWRX_TRACE_LOG "log"
#define UWRX_TRACE_LOG_ENDED 0u
int uwrx_tracebuf_log_open(int traces_dirfd);

/* uwrx_tracebuf_close(tb, 1) with the end told through the log `log_fd` instead of a
 * rename: cut, closed, then [pid, 0] appended (so the collector never sees a buffer
 * logged before it is final). */
int uwrx_tracebuf_close_logged(struct uwrx_tracebuf *tb, int log_fd);

/* uwrx_tracebuf_close_logged without the log entry, for a caller that closes several
 * buffers and then logs their ends in one write (uwrx_tracebuf_log_ends): until then
 * the collector takes the buffer for live. */
int uwrx_tracebuf_close_unlogged(struct uwrx_tracebuf *tb);

/* [pids[i], 0] for each of `n` buffers closed, appended to log `log_fd` in one write. */
int uwrx_tracebuf_log_ends(int log_fd, const uint32_t *pids, size_t n);

/* uwrx_tracebuf_reuse without the rename: pooled buffer free.<index> opened as it is,
 * and [pid, index + 1] appended to log `log_fd`. -ENOENT when there is no such buffer;
 * any other failure leaves it in the pool, untaken. */
int uwrx_tracebuf_take_logged(struct uwrx_tracebuf *tb, int traces_dirfd, uint32_t pid, uint32_t index, int log_fd);

/* Generic record: fixed is the type's struct (fixed_len = sizeof), then the blobs in
 * schema order. Blobs that would exceed UWRX_EV_MAX_SIZE are cut (UWRX_EV_FLAG_TRUNCATED). */
int uwrx_trace_emit(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const void *fixed,
                    size_t fixed_len, const struct uwrx_blob *blobs, unsigned nblobs);

/* A record already encoded (src/protocol/events.ts encodeEvent): copied in with this
 * buffer's pid and the current time. Used by the Node side (DNS, downloads, tests). */
int uwrx_trace_append_raw(struct uwrx_tracebuf *tb, const void *record, size_t size);

/* Zero-copy variant for one trailing blob filled by the caller (e.g. output bytes read
 * from the target with process_vm_readv): reserves a record with room for blob_max bytes
 * of the last blob, returns a pointer to them in *dst, and holds the lock until
 * uwrx_trace_end(tb, actual_len). Earlier blobs are given as usual. blob_max must fit. */
int uwrx_trace_begin(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const void *fixed,
                     size_t fixed_len, const struct uwrx_blob *blobs, unsigned nblobs, size_t blob_max,
                     void **dst);
void uwrx_trace_end(struct uwrx_tracebuf *tb, size_t blob_len);

/* Largest blob_max uwrx_trace_begin accepts for a record with these parts. */
size_t uwrx_trace_room(size_t fixed_len, unsigned nblobs);

/* Typed helpers, one per event. Paths and strings are NUL-terminated; argv is the
 * NUL-separated block as in /proc/<pid>/cmdline. */
int uwrx_trace_spawn(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t child, int thread, uint64_t clone_flags);
int uwrx_trace_exec(struct uwrx_tracebuf *tb, uint32_t tid, int64_t result, const char *path, const char *argv,
                    size_t argv_len);
/* The exec stamped with the time of its execve call (0: now), as uwrx_trace_exit_at: its
 * outcome is known later, at the process's next notified call, which may be its exit. */
int uwrx_trace_exec_at(struct uwrx_tracebuf *tb, uint32_t tid, int64_t result, const char *path, const char *argv,
                       size_t argv_len, uint64_t time_ns);
int uwrx_trace_exit(struct uwrx_tracebuf *tb, uint32_t tid, int32_t status, int32_t signal);
/* The exit stamped with the time it happened (ns, CLOCK_BOOTTIME; 0: now), which is
 * earlier than its report: exit_group's call, or when the process's pidfd said it died.
 * Never earlier than a record already in the buffer (a record written after the exit,
 * such as a late child's spawn, keeps its place): the file's times stay in order. */
int uwrx_trace_exit_at(struct uwrx_tracebuf *tb, uint32_t tid, int32_t status, int32_t signal, uint64_t time_ns);
int uwrx_trace_open(struct uwrx_tracebuf *tb, uint32_t tid, const char *path, int32_t flags, uint32_t mode,
                    int64_t result);
/* stat, unlink, rename (path2 = new name), mkdir, rmdir, chmod, chown, truncate: the
 * arguments a and b mean flags/mode/uid/length and gid as the type's struct says. */
int uwrx_trace_path_op(struct uwrx_tracebuf *tb, uint16_t type, uint32_t tid, const char *path,
                       const char *path2, int64_t a, int64_t b, int64_t result);
int uwrx_trace_connect(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t family, uint32_t port,
                       const void *addr, size_t addr_len, int64_t result);
/* Bytes written to fd 1 or 2; a large write becomes several records, all but the last
 * flagged UWRX_OUTPUT_FLAG_MORE. */
int uwrx_trace_output(struct uwrx_tracebuf *tb, uint32_t tid, uint32_t fd, const void *data, size_t len);
