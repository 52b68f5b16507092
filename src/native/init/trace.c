/* Trace events of real processes: each registered process gets a trace buffer
 * (<runDir>/traces/<logical pid>, or a pooled free.<n> the buffer log names its own:
 * src/native/common/tracebuf.h) that the collector
 * drains while the run goes on. Process events (spawn, exec, exit) are written where
 * procs.c learns them; output and connect are written by their handlers here.
 *
 * Lifetime: a buffer is closed (its end appended to the buffer log) when the process's
 * exit has been reported and no handler thread still works on one of its notifications,
 * so a handler never writes into a closed buffer (a process killed while its write waits
 * for us). */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "init.h"
#include "../common/tracebuf.h"
#include "uwrx_control.h"
#include "uwrx_iov_window.h"
#include "uwrx_net_rules.h"
#include "uwrx_recorder.h"

static int traces_fd = -1;
/* The buffer log (tracebuf.h): a pooled buffer's take and a buffer's end told by an
 * entry appended, not by a rename; -1 (it could not be made): renamed as before. */
static int buffer_log = -1;
/* What the buffers could not hold (a full filesystem under them): records dropped,
 * processes without a buffer, and the first error (atomic). */
static uint64_t lost_records, lost_buffers;
static int lost_errno;

static void note_loss(uint64_t records, uint64_t buffers, int err) {
  __atomic_add_fetch(&lost_records, records, __ATOMIC_RELAXED);
  __atomic_add_fetch(&lost_buffers, buffers, __ATOMIC_RELAXED);
  int none = 0;
  if (err) __atomic_compare_exchange_n(&lost_errno, &none, err, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void trace_losses(uint64_t *records, uint64_t *buffers, int *err) {
  *records = __atomic_load_n(&lost_records, __ATOMIC_RELAXED);
  *buffers = __atomic_load_n(&lost_buffers, __ATOMIC_RELAXED);
  *err = __atomic_load_n(&lost_errno, __ATOMIC_RELAXED);
}

/* The buffers are on tmpfs, whose faults read nothing ahead: the recorder's mapping
 * needs no MADV_RANDOM (uwrx_rec_map). */
static bool traces_tmpfs;

/* <traces>/exec: the prepared execs' links (uwrx_recorder.h), -1 without. */
static int exec_dir = -1;

bool trace_open_dir(const char *path) {
  traces_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct statfs fs;
  traces_tmpfs = traces_fd >= 0 && fstatfs(traces_fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
  if (traces_fd >= 0) buffer_log = uwrx_tracebuf_log_open(traces_fd);
  if (buffer_log < 0) buffer_log = -1;
  if (traces_fd >= 0 && (mkdirat(traces_fd, TRACE_EXEC_DIR, 0700) == 0 || errno == EEXIST))
    exec_dir = openat(traces_fd, TRACE_EXEC_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return traces_fd >= 0;
}

bool trace_on_tmpfs(void) { return traces_tmpfs; }

/* ---- buffers ---- */

static void close_buffer(void *arg, size_t unused) {
  struct uwrx_tracebuf *tb = arg;
  (void)unused;
  if (tb->err) note_loss(tb->dropped, 0, -tb->err);
  /* The process is gone: nothing writes its recorder region any more. Its end in the
   * log (or the rename to <logical>.ended) tells the collector that both regions of the
   * file are final. */
  if (buffer_log >= 0) uwrx_tracebuf_close_logged(tb, buffer_log);
  else uwrx_tracebuf_close(tb, 1);
  free(tb);
}

/* The ends of buffers closed by pid 1's work after the exit reports (later.c), logged in
 * one write once that round's closes are done: a turn of the loop reports the exits of
 * the last 20 ms together, and an append each cost a system call each. */
static pthread_mutex_t ends_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *ends;
static size_t nends, capends;

static void log_ends(void *unused, size_t unused_n) {
  (void)unused, (void)unused_n;
  pthread_mutex_lock(&ends_lock);
  uint32_t *pids = ends;
  size_t n = nends;
  ends = NULL;
  nends = capends = 0;
  pthread_mutex_unlock(&ends_lock);
  if (n) uwrx_tracebuf_log_ends(buffer_log, pids, n);
  free(pids);
}

/* close_buffer, its end logged with the round's others (log_ends, queued by the first:
 * what later items queue runs after them). */
static void close_buffer_later(void *arg, size_t unused) {
  struct uwrx_tracebuf *tb = arg;
  if (buffer_log < 0) {
    close_buffer(tb, unused);
    return;
  }
  if (tb->err) note_loss(tb->dropped, 0, -tb->err);
  uint32_t pid = tb->pid;
  uwrx_tracebuf_close_unlogged(tb);
  free(tb);
  pthread_mutex_lock(&ends_lock);
  if (nends == capends) {
    size_t cap = capends ? capends * 2 : 64;
    uint32_t *grown = realloc(ends, cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&ends_lock);
      uwrx_tracebuf_log_ends(buffer_log, &pid, 1); /* no room to gather it: logged now */
      return;
    }
    ends = grown;
    capends = cap;
  }
  bool first = nends == 0;
  ends[nends++] = pid;
  pthread_mutex_unlock(&ends_lock);
  if (first) later(log_ends, NULL, 0);
}

/* `locked`: called from the exit report, g.lock held: the file operations wait until
 * pid 1 let go of it (later.c). */
static void release_now(struct proc *p, bool locked) {
  struct uwrx_tracebuf *tb = __atomic_exchange_n(&p->trace, NULL, __ATOMIC_SEQ_CST);
  if (!tb) return;
  if (locked) later(close_buffer_later, tb, 0);
  else close_buffer(tb, 0);
}

/* ---- the in-process recorder's buffers ---- */

_Static_assert(UWRX_REC_FILE_SIZE == UWRX_TRACE_DATA_OFFSET, "the recorder region is what precedes the records");

static bool recorder_on;
static pthread_mutex_t recorder_lock = PTHREAD_MUTEX_INITIALIZER;

void trace_enable_recorder(bool on) { recorder_on = on; }

/* The process's own trace buffer, its recorder region set up with its header on the
 * first request of the process (later process images (exec) continue where the last
 * one stopped); -1 when the process records nothing in process. The descriptor is the
 * buffer's, not the caller's: the notification being handled holds the buffer open
 * (trace_hold), and it is only put into the target or mapped. One file per process:
 * a second file (<logical>.r) cost an inode created, read and unlinked per process,
 * about 25 us of uwrx-init and 40 us of the collector. */
int trace_recorder_region(struct proc *p, pid_t pid) {
  struct uwrx_tracebuf *tb = p ? p->trace : NULL;
  if (!recorder_on || !tb) return -1;
  pthread_mutex_lock(&recorder_lock);
  /* the process's flag says whether an earlier image set it up */
  bool ok = __atomic_load_n(&p->recorder, __ATOMIC_SEQ_CST);
  if (!ok) {
    struct uwrx_rec_header h = { .magic = UWRX_REC_MAGIC, .pid = (uint32_t)p->logical,
                                 .pos = UWRX_REC_DATA_OFFSET, .size = UWRX_REC_FILE_SIZE };
    files_stat_rules(&h, pid);
    files_publish_dirs();
    ok = uwrx_tracebuf_region(tb, &h, sizeof h) == 0;
  }
  if (ok) __atomic_store_n(&p->recorder, true, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&recorder_lock);
  return ok ? tb->fd : -1;
}

/* ... with the process's clocks published in it (`count_addr`: the recorder's clock read
 * count in the target). */
static int recorder_file(struct notif_ctx *ctx, uint64_t count_addr, bool fresh_image) {
  int fd = trace_recorder_region(ctx->proc, (pid_t)ctx->req->pid);
  /* before the answer: the recorder reads its clocks from the header right after */
  if (fd >= 0) clocks_recorder(ctx->proc, fd, count_addr, fresh_image);
  return fd;
}

/* ---- prepared execs' links (uwrx_recorder.h) ----
 * <traces>/exec/<pid> names the buffer of process <pid> from its first prepared exec to
 * its end. A name left by an ended process whose pid a new one took is removed at the
 * new one's first exec (trace_exec_unlink_stale), before its shim could open it. */

static uint8_t *linked_pids; /* bit per pid: a link of that name may exist (g.lock) */
static size_t linked_cap;    /* bytes */

static bool pid_linked(pid_t pid) {
  size_t i = (size_t)pid >> 3;
  return pid > 0 && i < linked_cap && (linked_pids[i] >> (pid & 7) & 1);
}

static void set_pid_linked(pid_t pid, bool on) {
  size_t i = (size_t)pid >> 3;
  if (pid <= 0) return;
  if (i >= linked_cap) {
    if (!on) return;
    size_t cap = linked_cap ? linked_cap : 4096;
    while (cap <= i) cap *= 2;
    uint8_t *grown = realloc(linked_pids, cap);
    if (!grown) return;
    memset(grown + linked_cap, 0, cap - linked_cap);
    linked_pids = grown, linked_cap = cap;
  }
  if (on) linked_pids[i] |= (uint8_t)(1u << (pid & 7));
  else linked_pids[i] &= (uint8_t)~(1u << (pid & 7));
}

bool trace_exec_dir_ready(void) { return exec_dir >= 0 && recorder_on; }

/* A link's name: the pid in decimal. */
static void link_name(char out[16], pid_t pid) { snprintf(out, 16, "%d", (int)pid); }

/* Links the file open as `fd` into the links' directory as `name`. Its own name may be
 * a pooled one: linked by its descriptor (AT_EMPTY_PATH, for a file the caller opened,
 * needs Linux 6.10; else through /proc). */
static int link_fd(int fd, const char *name) {
  if (linkat(fd, "", exec_dir, name, AT_EMPTY_PATH) == 0) return 0;
  if (errno == EEXIST) return -1;
  char self[40];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, self, exec_dir, name, AT_SYMLINK_FOLLOW);
}

bool trace_exec_link(struct proc *p, pid_t pid) {
  if (p->exec_linked) return true;
  if (exec_dir < 0 || !p->trace) return false;
  char name[16];
  link_name(name, pid);
  int r = link_fd(p->trace->fd, name);
  /* one nothing knew of: it is not this process's buffer */
  if (r != 0 && errno == EEXIST && unlinkat(exec_dir, name, 0) == 0) r = link_fd(p->trace->fd, name);
  if (r != 0) return false;
  p->exec_linked = true;
  set_pid_linked(pid, true);
  return true;
}

void trace_exec_unlink_stale(struct proc *p, pid_t pid) {
  if (p->exec_linked || !pid_linked(pid)) return;
  char name[16];
  link_name(name, pid);
  unlinkat(exec_dir, name, 0);
  set_pid_linked(pid, false);
}

/* The link of an ended process, removed after the table's lock (later.c): unless a
 * process that took its pid meanwhile made it its own (one made right after this look
 * goes too: that exec then asks with its control call). */
static void unlink_ended(void *arg, size_t pid) {
  (void)arg;
  pthread_mutex_lock(&g.lock);
  struct proc *now = procs_find((pid_t)pid);
  bool keep = now && now->exec_linked && !now->reported;
  if (!keep) set_pid_linked((pid_t)pid, false);
  pthread_mutex_unlock(&g.lock);
  if (keep) return;
  char name[16];
  link_name(name, (pid_t)pid);
  unlinkat(exec_dir, name, 0);
}

/* UWRX_CTL_RECORDER: the fd goes into the target with SECCOMP_ADDFD_FLAG_SEND, which
 * also answers the notification. */
void trace_handle_recorder(struct notif_ctx *ctx) {
  int fd = recorder_file(ctx, ctx->req->data.args[1], false);
  if (fd < 0) return;
  struct seccomp_notif_addfd addfd = { .id = ctx->req->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd,
                                       .newfd = 0, .newfd_flags = O_CLOEXEC };
  /* on success the notification is answered: the loop sends no answer of its own */
  notify_answering(ctx);
  if (ioctl(g.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0) ctx->sent = true;
}

int trace_exec_recorder(struct notif_ctx *ctx, uint64_t state) {
  return recorder_file(ctx, state + offsetof(struct uwrx_ldso_state, clock_reads), true);
}

void trace_hold(struct proc *p) { __atomic_add_fetch(&p->trace_users, 1, __ATOMIC_SEQ_CST); }

void trace_release(struct proc *p) {
  /* the reporter sets trace_done then looks at trace_users; we do the reverse: one of
   * the two sees the other, and the exchange in release_now closes exactly once */
  if (__atomic_sub_fetch(&p->trace_users, 1, __ATOMIC_SEQ_CST) == 0 &&
      __atomic_load_n(&p->trace_done, __ATOMIC_SEQ_CST))
    release_now(p, false);
}

static void trace_proc_ended(struct proc *p) {
  __atomic_store_n(&p->trace_done, true, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&p->trace_users, __ATOMIC_SEQ_CST) == 0) release_now(p, true);
}

/* The next pooled buffer to take (uwrx_tracebuf_reuse): the collector returns them as
 * free.0, free.1 ... and they are taken in that order (g.lock held). */
static uint32_t pool_next;

/* A process registered (lock held): opens its buffer, writes the spawn record into the
 * parent's buffer (parent NULL: started by uwrx). */
static void trace_spawned(struct proc *p, struct proc *parent) {
  p->trace = NULL;
  if (traces_fd < 0) return;
  struct uwrx_tracebuf *tb = malloc(sizeof *tb);
  if (!tb) {
    problem(PROBLEM_NO_MEMORY);
    return;
  }
  /* a pooled buffer when the collector returned one: no inode to create, and its
   * recorder pages are allocated already; else a new one */
  int r = buffer_log >= 0 ? uwrx_tracebuf_take_logged(tb, traces_fd, (uint32_t)p->logical, pool_next, buffer_log)
                          : uwrx_tracebuf_reuse(tb, traces_fd, (uint32_t)p->logical, pool_next);
  if (r == 0) pool_next++;
  else r = uwrx_tracebuf_open(tb, traces_fd, (uint32_t)p->logical);
  if (r != 0) {
    note_loss(0, 1, -r);
    free(tb);
    problem(PROBLEM_TRACE_BUFFER);
    return;
  }
  p->trace = tb;
  /* the parent's buffer holds the link; which of its threads forked is not known */
  if (parent && parent->trace)
    uwrx_trace_spawn(parent->trace, (uint32_t)parent->logical, (uint32_t)p->logical, 0, 0);
}

/* ---- logical thread ids ----
 * The main thread's logical tid is the logical pid. Any other thread gets an ordinal in
 * its process (1, 2, ... in first-seen order) and the logical tid
 * ordinal * TID_ORDINAL_UNIT + logical pid, so 1000005 is thread 1 of process 5: unique
 * across the run and never equal to a logical pid. */
#define TID_ORDINAL_UNIT 1000000u
#define TID_ORDINAL_MAX 4000u

struct trace_thread {
  pid_t tid;
  uint32_t logical;
};

struct trace_threads {
  size_t n, cap;
  uint32_t next_ordinal;
  struct trace_thread *v;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;

uint32_t trace_logical_tid(struct proc *p, pid_t tid) {
  if (tid == p->tgid) return (uint32_t)p->logical;
  uint32_t logical = 0;
  bool fresh = false;
  pthread_mutex_lock(&threads_lock);
  struct trace_threads *t = p->threads;
  if (!t) t = p->threads = calloc(1, sizeof *t);
  if (t) {
    for (size_t i = 0; i < t->n; i++)
      if (t->v[i].tid == tid) logical = t->v[i].logical;
    if (!logical) {
      if (t->next_ordinal < TID_ORDINAL_MAX) t->next_ordinal++;
      logical = t->next_ordinal * TID_ORDINAL_UNIT + (uint32_t)p->logical;
      if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct trace_thread *grown = realloc(t->v, cap * sizeof *grown);
        if (grown) {
          t->v = grown;
          t->cap = cap;
        }
      }
      if (t->n < t->cap) {
        t->v[t->n++] = (struct trace_thread){ tid, logical };
        fresh = true;
      }
    }
  }
  pthread_mutex_unlock(&threads_lock);
  if (!logical) return (uint32_t)p->logical;
  if (fresh && p->trace) uwrx_trace_spawn(p->trace, (uint32_t)p->logical, logical, 1, 0);
  return logical;
}

/* ---- process events (called by procs.c with g.lock held) ---- */

static void trace_execed(const struct proc *p, const struct pending_exec *e) {
  if (!p->trace) return;
  /* argv arrives as a msgpack array of bin; the record wants NUL-terminated strings */
  struct mp_reader r;
  uint32_t n;
  mp_reader_init(&r, e->argv.data, e->argv.len);
  if (!mp_read_array(&r, &n)) n = 0;
  char *block = malloc(e->argv.len + n + 1);
  size_t len = 0;
  if (block) {
    for (uint32_t i = 0; i < n; i++) {
      const char *s;
      uint32_t slen;
      if (!mp_read_bytes(&r, &s, &slen)) break;
      memcpy(block + len, s, slen);
      len += slen;
      block[len++] = 0;
    }
  }
  uwrx_trace_exec_at(p->trace, (uint32_t)p->logical, 0, e->path, block ? block : "", len, e->time);
  free(block);
}

/* The exit as reported to Node: the last event, stamped with the time the process
 * ended (end_time: its exit_group call, or when its pidfd said it died), not the time of
 * the report, which waits for its parent's wait and the loop's next turn (up to 20 ms
 * later); the buffer closes once no handler uses it. */
static void trace_exited(struct proc *p, bool known, int status) {
  if (p->exec_linked) {
    p->exec_linked = false;
    later(unlink_ended, NULL, (size_t)p->tgid);
  }
  if (p->trace) {
    int32_t code = -1, sig = 0;
    if (known && WIFEXITED(status)) code = WEXITSTATUS(status);
    if (known && WIFSIGNALED(status)) sig = WTERMSIG(status);
    uwrx_trace_exit_at(p->trace, (uint32_t)p->logical, code, sig, p->end_time);
    /* (whether its buffer can go to the pool: clocks.c keeps its header mapped if so) */
    p->trace_len = __atomic_load_n(&p->trace->pos, __ATOMIC_RELAXED) - UWRX_TRACE_DATA_OFFSET;
  }
  trace_proc_ended(p);
}

/* ---- output: write, writev, pwrite64, pwritev, pwritev2 to fd 1 and 2 ----
 * The bytes are read from the target while it waits, straight into the trace buffer
 * (one record per 64 KiB, flagged MORE but the last), then the call continues: the
 * real stdout/stderr get them as if nothing happened. */

#define OUTPUT_MAX 0x7ffff000ul /* the kernel's MAX_RW_COUNT: no write moves more */
#define IOV_BATCH 64

/* The target's iovec array, `count` entries at `addr`, read while it waits. */
static struct iovec *read_iovecs(pid_t tid, uint64_t addr, size_t count) {
  if (count == 0 || count > 1024) return NULL; /* UIO_MAXIOV: the kernel fails the call */
  struct iovec *v = malloc(count * sizeof *v);
  if (!v) return NULL;
  struct iovec local = { v, count * sizeof *v };
  struct iovec remote = { (void *)(uintptr_t)addr, count * sizeof *v };
  if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)(count * sizeof *v)) {
    free(v);
    return NULL;
  }
  return v;
}

/* Reads up to `want` bytes of the target's iovecs from (*seg, *off) on into dst, moving
 * (*seg, *off) past them; fewer only where the target's memory is not readable. */
static size_t read_segments(pid_t tid, const struct iovec *segs, size_t nsegs, size_t *seg, size_t *off,
                            char *dst, size_t want) {
  size_t got = 0;
  while (got < want && *seg < nsegs) {
    struct iovec remote[IOV_BATCH];
    /* (s, o) become the position only once the window was read whole */
    size_t s = *seg, o = *off, nr;
    size_t take = uwrx_iov_window(segs, nsegs, &s, &o, want - got, remote, IOV_BATCH, &nr);
    if (take == 0) {
      *seg = s;
      *off = o;
      continue;
    }
    struct iovec local = { dst + got, take };
    ssize_t n = process_vm_readv(tid, &local, 1, remote, nr, 0);
    if (n <= 0) break;
    got += (size_t)n;
    if ((size_t)n < take) break;
    *seg = s;
    *off = o;
  }
  return got;
}

/* Whether the target's `fd` is the null device: what a process writes there reaches no
 * one, so it is not output (and `cmd > /dev/null` must not cost the trace its bytes). */
static bool is_null_device(const struct stat *st) {
  return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && minor(st->st_rdev) == 3;
}

static enum verdict on_output(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct proc *p = ctx->proc;
  struct call_args a;
  if (!p || !p->trace || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  uint32_t fd = (uint32_t)a.fd;
  if (fd != 1 && fd != 2) return VERDICT_CONTINUE;
  int nr = req->data.nr;
  /* an empty write leaves nothing to record: no look at its destination (a stat through
   * /proc, most of this handler's time) */
  if ((nr == SYS_write || nr == SYS_pwrite64) && a.length == 0) return VERDICT_CONTINUE;
  struct stat dest;
  bool known = proc_fd_stat(req->pid, (int)fd, &dest);
  if (known && is_null_device(&dest)) return VERDICT_CONTINUE;
  struct iovec single, *segs = &single;
  size_t nsegs = 1;
  if (nr == SYS_write || nr == SYS_pwrite64) {
    single.iov_base = (void *)(uintptr_t)a.buf;
    single.iov_len = (size_t)a.length;
  } else {
    nsegs = (size_t)(a.length & 0xffffffffu);
    segs = read_iovecs(req->pid, a.buf, nsegs);
    if (!segs) return VERDICT_CONTINUE;
  }
  size_t total = 0;
  for (size_t i = 0; i < nsegs; i++) {
    size_t room = OUTPUT_MAX - total;
    if (segs[i].iov_len > room) segs[i].iov_len = room; /* the kernel moves no more either */
    total += segs[i].iov_len;
  }
  uint32_t tid = trace_logical_tid(p, req->pid);
  size_t chunk = uwrx_trace_room(sizeof(struct uwrx_ev_output), 1);
  size_t seg = 0, off = 0, done = 0;
  while (done < total) {
    size_t want = total - done < chunk ? total - done : chunk;
    struct uwrx_ev_output ev = { .fd = fd, .flags = done + want < total ? UWRX_OUTPUT_FLAG_MORE : 0,
                                 .dest_dev = known ? (uint64_t)dest.st_dev : 0, .dest_ino = known ? (uint64_t)dest.st_ino : 0 };
    void *dst;
    if (uwrx_trace_begin(p->trace, UWRX_EV_OUTPUT, tid, &ev, sizeof ev, NULL, 0, want, &dst) != 0) {
      problem(PROBLEM_TRACE_BUFFER);
      break;
    }
    size_t got = read_segments(req->pid, segs, nsegs, &seg, &off, dst, want);
    /* memory read by pid is the target's only if it still waits in this call; an
     * unreadable buffer makes the write fail with EFAULT: record what was readable */
    if (!notif_id_valid(req->id)) got = 0;
    if (got < want) {
      /* a short read ends the write here: the record closes without MORE (its fixed
       * part sits just before the blob's length) */
      char *fixed = (char *)dst - 4 - sizeof ev;
      memcpy(fixed + offsetof(struct uwrx_ev_output, flags), &(uint32_t){ 0 }, 4);
      uwrx_trace_end(p->trace, (size_t)got);
      break;
    }
    uwrx_trace_end(p->trace, (size_t)got);
    done += (size_t)got;
  }
  if (segs != &single) free(segs);
  return VERDICT_CONTINUE;
}

/* ---- copy_file_range, sendfile and splice onto fd 1 and 2 ----
 * These move bytes from a file to stdout without passing them through the process's
 * memory (cat copies a file to a stdout that is a regular file with copy_file_range,
 * busybox's cat uses sendfile, also into a pipe), so on_output never sees them. Where the
 * source is a regular file and stdout a regular file (copy_file_range, sendfile), a
 * pipe (sendfile, splice) or a terminal (sendfile), uwrx-init makes the copy itself with the process's own
 * descriptors (into a file at most COPY_MAX bytes at a time: a short count, which these
 * calls may return anyway and every caller loops on), records the bytes, moves the
 * source's offset as the call would, and answers with the count. Everything else runs in
 * the kernel, unrecorded: a pipe as the source (its bytes can be read once only), an
 * offset given for stdout, another device as stdout, and the calls the kernel refuses
 * (an appending destination, copy_file_range into a pipe, splice between two files).
 *
 * A pipe or terminal is written through a non-blocking open file of its own, so a
 * handler thread never waits for the reader: when the pipe is full the answer is deferred and a thread
 * of its own waits for room, as the caller would have waited in the kernel. */

/* The most one call copies into a regular file (the kernel copies everything asked for;
 * callers loop on a short count) */
#define COPY_MAX (1u << 20)

struct copy_out {
  struct proc *p;       /* its trace held until the copy is done */
  pid_t tid;            /* the calling thread */
  uint32_t logical_tid;
  uint32_t fd;          /* 1 or 2 */
  struct stat dest;
  int in;               /* the source: the process's own open file */
  off_t off;            /* where the bytes came from */
  uint64_t in_off_at;   /* the caller's offset variable, 0: the source's own offset */
  int out;              /* the destination (for a pipe: opened non-blocking) */
  char *buf;
  size_t len;
  uint64_t id, handle;  /* the notification, its deferred answer */
};

static void copy_out_free(struct copy_out *c) {
  if (c->in >= 0) close(c->in);
  if (c->out >= 0) close(c->out);
  free(c->buf);
  free(c);
}

/* Writes what it can of the bytes: the count written, or -1 with errno. The bytes
 * written are recorded and the source's offset moved past them. */
static ssize_t copy_out_write(struct copy_out *c) {
  ssize_t put;
  do put = write(c->out, c->buf, c->len);
  while (put < 0 && errno == EINTR);
  if (put <= 0) return put;
  /* in records of at most one record's room, all but the last flagged MORE, as on_output */
  size_t room = uwrx_trace_room(sizeof(struct uwrx_ev_output), 1);
  for (size_t done = 0; done < (size_t)put;) {
    size_t n = (size_t)put - done < room ? (size_t)put - done : room;
    struct uwrx_ev_output ev = { .fd = c->fd, .flags = done + n < (size_t)put ? UWRX_OUTPUT_FLAG_MORE : 0,
                                 .dest_dev = (uint64_t)c->dest.st_dev, .dest_ino = (uint64_t)c->dest.st_ino };
    void *dst;
    if (uwrx_trace_begin(c->p->trace, UWRX_EV_OUTPUT, c->logical_tid, &ev, sizeof ev, NULL, 0, n, &dst) == 0) {
      memcpy(dst, c->buf + done, n);
      uwrx_trace_end(c->p->trace, n);
    } else {
      problem(PROBLEM_TRACE_BUFFER);
    }
    done += n;
  }
  off_t next = c->off + put;
  if (c->in_off_at) {
    struct iovec local = { &next, sizeof next }, remote = { (void *)(uintptr_t)c->in_off_at, sizeof next };
    process_vm_writev(c->tid, &local, 1, &remote, 1, 0);
  } else {
    lseek(c->in, next, SEEK_SET);
  }
  return put;
}

/* A full pipe: waits for room, then answers the deferred call. A caller that is gone
 * (killed) ends the wait. A pipe whose readers all closed is left to the kernel, which
 * fails the call with EPIPE and sends SIGPIPE, as natively. */
static void *copy_out_wait(void *arg) {
  struct copy_out *c = arg;
  for (;;) {
    struct pollfd pfd = { .fd = c->out, .events = POLLOUT };
    int ready = poll(&pfd, 1, 100);
    if (!notif_id_valid(c->id)) break;
    if (ready <= 0) continue;
    ssize_t put = copy_out_write(c);
    if (put < 0 && errno == EAGAIN) continue;
    if (put < 0) notify_reply(c->handle, 0, 0, true);
    else notify_reply(c->handle, put, 0, false);
    break;
  }
  trace_release(c->p);
  copy_out_free(c);
  return NULL;
}

static enum verdict on_copy_output(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct proc *p = ctx->proc;
  if (!p || !p->trace || p->pidfd < 0) return VERDICT_CONTINUE;
  const __u64 *a = req->data.args;
  int nr = req->data.nr;
  bool by_sendfile = nr == SYS_sendfile;
  int in_fd = (int)(by_sendfile ? a[1] : a[0]), out_fd = (int)(by_sendfile ? a[0] : a[2]);
  uint64_t in_off_at = by_sendfile ? a[2] : a[1], out_off_at = by_sendfile ? 0 : a[3];
  size_t len = (size_t)(by_sendfile ? a[3] : a[4]);
  if ((out_fd != 1 && out_fd != 2) || out_off_at || len == 0 || (nr == SYS_copy_file_range && a[5] != 0))
    return VERDICT_CONTINUE;
  int in = proc_getfd(p->pidfd, in_fd);
  if (in < 0) return VERDICT_CONTINUE;
  int out = proc_getfd(p->pidfd, out_fd);
  struct stat ist, ost;
  int ifl = fcntl(in, F_GETFL), ofl = out >= 0 ? fcntl(out, F_GETFL) : -1;
  bool ours = out >= 0 && fstat(in, &ist) == 0 && fstat(out, &ost) == 0 && S_ISREG(ist.st_mode) && ifl >= 0 &&
              (ifl & O_ACCMODE) != O_WRONLY && ofl >= 0 && (ofl & O_ACCMODE) != O_RDONLY &&
              !(ofl & O_APPEND); /* the kernel refuses an appending destination (EBADF, EINVAL) */
  /* copy_file_range wants two files, splice a pipe, sendfile any of a file, a pipe or a
   * terminal */
  bool to_pipe = ours && S_ISFIFO(ost.st_mode), to_tty = ours && S_ISCHR(ost.st_mode) && isatty(out);
  if (ours)
    ours = to_pipe  ? nr != SYS_copy_file_range
           : to_tty ? nr == SYS_sendfile
                    : S_ISREG(ost.st_mode) && nr != SYS_splice;
  bool stream = to_pipe || to_tty;
  /* a pipe or terminal is written through an open file of its own, non-blocking (the
   * process's may block); a pipe without a reader cannot be opened (ENXIO): the kernel's
   * EPIPE then */
  if (ours && stream) {
    char self[40];
    snprintf(self, sizeof self, "/proc/self/fd/%d", out);
    int nb = open(self, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    close(out);
    out = nb;
    ours = out >= 0;
  }
  /* what the kernel would read from: the offset the call names, or the source's own */
  off_t off = -1;
  if (ours && in_off_at) {
    struct iovec local = { &off, sizeof off }, remote = { (void *)(uintptr_t)in_off_at, sizeof off };
    if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof off || off < 0) ours = false;
  } else if (ours) {
    off = lseek(in, 0, SEEK_CUR);
  }
  /* as much as the kernel would move: into a pipe, what it holds (a full pipe's worth
   * when its reader has taken everything); into a file or terminal, at most COPY_MAX at
   * a time */
  size_t cap = COPY_MAX;
  if (ours && to_pipe) {
    int size = fcntl(out, F_GETPIPE_SZ);
    if (size > 0) cap = (size_t)size;
  }
  size_t want = len < cap ? len : cap;
  struct copy_out *c = ours && off >= 0 ? calloc(1, sizeof *c) : NULL;
  char *buf = c ? malloc(want) : NULL;
  ssize_t got = buf ? pread(in, buf, want, off) : -1;
  /* an empty read ends the copy with 0 and a failed one with the kernel's own error */
  if (got <= 0 || !notif_id_valid(req->id)) {
    free(buf);
    free(c);
    close(in);
    if (out >= 0) close(out);
    return VERDICT_CONTINUE;
  }
  *c = (struct copy_out){ .p = p, .tid = (pid_t)req->pid, .logical_tid = trace_logical_tid(p, req->pid), .fd = (uint32_t)out_fd,
                          .dest = ost, .in = in, .off = off, .in_off_at = in_off_at, .out = out, .buf = buf,
                          .len = (size_t)got, .id = req->id };
  ssize_t put = copy_out_write(c);
  int err = put < 0 ? errno : 0;
  /* the caller's pipe or terminal blocks (neither its open file nor splice's flags say
   * otherwise): wait for room on a thread of its own */
  bool nonblocking = (ofl & O_NONBLOCK) || (nr == SYS_splice && (a[5] & SPLICE_F_NONBLOCK));
  if (put < 0 && err == EAGAIN && stream && !nonblocking) {
    trace_hold(p);
    c->handle = notify_defer(ctx);
    pthread_attr_t attr;
    pthread_t t;
    bool started = c->handle && pthread_attr_init(&attr) == 0;
    if (started) {
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_attr_setstacksize(&attr, 64 * 1024);
      started = pthread_create(&t, &attr, copy_out_wait, c) == 0;
      pthread_attr_destroy(&attr);
    }
    if (started) return VERDICT_PENDING;
    /* no thread: the kernel makes the copy, unrecorded */
    uint64_t handle = c->handle;
    if (handle) notify_reply(handle, 0, 0, true);
    trace_release(p);
    copy_out_free(c);
    return handle ? VERDICT_PENDING : VERDICT_CONTINUE;
  }
  copy_out_free(c);
  /* EPIPE: the kernel runs the call again and fails it with SIGPIPE, as natively */
  if (put < 0 && err == EPIPE) return VERDICT_CONTINUE;
  return notify_answer_now(ctx, put < 0 ? -1 : put, err);
}

/* ---- connect(fd, addr, addrlen) ----
 * Recorded when called; the call continues in the kernel, so the outcome is not seen
 * here (result 0 means "attempted"). */
static enum verdict on_connect(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct proc *p = ctx->proc;
  struct call_args a;
  if (!p || !p->trace || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  struct sockaddr_storage sa;
  size_t len = (size_t)(a.length & 0xffffffffu);
  if (len > sizeof sa) len = sizeof sa;
  if (len < sizeof(sa_family_t)) return VERDICT_CONTINUE;
  memset(&sa, 0, sizeof sa);
  struct iovec local = { &sa, len };
  struct iovec remote = { (void *)(uintptr_t)a.buf, len };
  if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len) return VERDICT_CONTINUE;
  if (!notif_id_valid(req->id)) return VERDICT_CONTINUE;
  uint32_t port;
  const void *addr;
  size_t addr_len;
  uwrx_connect_address((const struct sockaddr *)&sa, len, &port, &addr, &addr_len);
  uwrx_trace_connect(p->trace, trace_logical_tid(p, req->pid), sa.ss_family, port, addr, addr_len, 0);
  return VERDICT_CONTINUE;
}

/* ---- the trace feature ---- */

/* UWRX_CTL_THREAD: the caller's logical tid, counted as the thread's first sight as a
 * notification of its would be. */
static enum verdict on_thread_id(struct notif_ctx *ctx) {
  if (!ctx->proc || ctx->req->data.args[5] != UWRX_CONTROL_MAGIC) return notify_answer_now(ctx, 0, ENOSYS);
  return notify_answer_now(ctx, (int64_t)trace_logical_tid(ctx->proc, ctx->req->pid), 0);
}

static const struct arg_match thread_id_op = { .arg = 0, .count = 1, .values = { UWRX_CTL_THREAD } };
static const struct arg_match stdout_stderr = { .arg = 0, .count = 2, .values = { 1, 2 } };
static const struct arg_match copy_to_stdout_stderr = { .arg = 2, .count = 2, .values = { 1, 2 } };

static const struct subscription trace_calls[] = {
  { SYS_write, on_output, &stdout_stderr, NULL },
  { SYS_writev, on_output, &stdout_stderr, NULL },
  { SYS_pwrite64, on_output, &stdout_stderr, NULL },
  { SYS_pwritev, on_output, &stdout_stderr, NULL },
  { SYS_pwritev2, on_output, &stdout_stderr, NULL },
  { SYS_copy_file_range, on_copy_output, &copy_to_stdout_stderr, NULL },
  { SYS_splice, on_copy_output, &copy_to_stdout_stderr, NULL },
  { SYS_sendfile, on_copy_output, &stdout_stderr, NULL },
  { SYS_connect, on_connect, NULL, NULL },
  { UWRX_SYS_CONTROL, on_thread_id, &thread_id_op, NULL },
};

static bool tracing(const struct plan *plan) { return plan->traces_dir != NULL; }

const struct feature feature_trace = {
  .name = "trace",
  .enabled = tracing,
  .subs = SUBSCRIPTIONS(trace_calls),
  .on_spawn = trace_spawned,
  .on_exec = trace_execed,
  .on_exit = trace_exited,
};
