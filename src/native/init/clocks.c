/* Deterministic clocks in uwrx-init (DESIGN.md section 4, docs/reproducibility.md): clock
 * reads, timed waits, fork and reap. The rules themselves are in common/dettime.c; this
 * file reads the calls' arguments, keeps the per-process and per-thread state and writes
 * the answers. Everything is answered here, in the handler thread.
 *
 * A timed wait is answered CONTINUE: the kernel waits in real time as it would natively.
 * The handler notes the wait on the thread; the thread's next notification (any call)
 * ends it and moves the process's clock (uwrx_time_wait_end). An absolute deadline on a
 * virtual clock is rewritten in the target's memory into the real deadline that lasts as
 * long (the kernel reads the argument again when the call runs after CONTINUE), and the
 * program's own value is put back at the thread's next notification. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_control.h"
#include "uwrx_recorder.h"
#include "../common/tracebuf.h"

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif
#define FUTEX_WAIT_OP 0
#define FUTEX_WAIT_BITSET_OP 9
#define FUTEX_CLOCK_REALTIME_FLAG 256
#define FUTEX_CMD(op) ((op) & ~(128 | 256))
#define TIMER_ABSTIME_FLAG 1

static const uwrx_time_config *cfg(void) { return &repro_config_get()->time; }

static enum verdict answer(struct notif_ctx *ctx, int64_t val, int error) {
  return notify_answer_now(ctx, val, error);
}

/* ---- where a child forked ----
 * uwrx sees a child first at its own first notified call (fork itself is not notified:
 * a notified fork could fail with EINTR), by which time its parent may have gone on
 * reading its clock, waiting and reaping. Pids of the sandbox's namespace are handed out
 * in order, so a call of the parent made while the namespace's last pid was below the
 * child's pid was made before the fork, and one made when it was at or above it, after.
 * Each change of a process's clock is marked with the last pid at the call that caused
 * it (for the end of a wait or a reap: the wait call), and a child starts from the value
 * before the first change marked at or above its pid. */

static int last_pid_fd = -1;

/* The namespace's last allocated pid (uwrx-init is in the sandbox's pid namespace). */
static int ns_last_pid(void) {
  int fd = __atomic_load_n(&last_pid_fd, __ATOMIC_RELAXED);
  if (fd < 0) {
    int opened = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (opened < 0) return 0;
    int expected = -1;
    if (!__atomic_compare_exchange_n(&last_pid_fd, &expected, opened, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) close(opened);
    fd = __atomic_load_n(&last_pid_fd, __ATOMIC_RELAXED);
  }
  char buf[16];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  return atoi(buf);
}

/* ---- the clock lease: reads the in-process recorder answers ----
 * A dynamically linked process with the recorder reads its clocks without a
 * notification while uwrx-init leases them to it: the recorder counts its reads in the
 * process's own memory and computes each answer from the clocks published in its
 * buffer's header (uwrx_recorder.h) with the same dettime.c code, as if this file had
 * answered. uwrx-init folds the count into the process's clock whenever it handles the
 * process (lease_fold), and publishes the clock after every change (lease_publish), so
 * both paths give the values the notification path alone gives:
 *  - a thread with a timed wait in progress reads through a notification (its next call
 *    ends the wait), and so does a process with an armed timer;
 *  - a child starts from its parent's clock at the fork: the count it inherited in its
 *    copy of the parent's memory says how many of the parent's reads came before it.
 * All of it under g.lock. */

static bool read_count(pid_t pid, uint64_t addr, uint64_t *out) {
  struct iovec local = { out, sizeof *out }, remote = { (void *)(uintptr_t)addr, sizeof *out };
  return addr && process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof *out;
}

static void mark_event(void *proc, uint64_t pos);

/* The process's read count and the clock events it wrote below it (*nev of them, from
 * the header's lease_events on), as one state: no event written meanwhile. The writer
 * holds clock_ev_seq odd only for a few instructions with its signals blocked; a thread
 * stopped there (a debugger) leaves the fold for later. */
static bool read_count_events(struct proc *p, uint64_t *n, uwrx_clock_event *events, size_t *nev) {
  const struct uwrx_rec_header *h = p->repro.lease_hdr;
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t seq = __atomic_load_n(&h->clock_ev_seq, __ATOMIC_ACQUIRE);
    if (seq & 1) {
      sched_yield();
      continue;
    }
    uint32_t next = __atomic_load_n(&h->clock_ev_next, __ATOMIC_ACQUIRE);
    uint32_t from = p->repro.lease_events;
    /* more than a header holds: the process wrote over it; nothing is folded */
    if (next - from > UWRX_REC_CLOCK_EVENTS) return false;
    *nev = 0;
    for (uint32_t i = from; i != next; i++) events[(*nev)++] = h->clock_events[i % UWRX_REC_CLOCK_EVENTS];
    /* a process gone (killed in a wait made in process): the count at that wait's start */
    if (!read_count(p->tgid, p->repro.lease_addr, n)) *n = __atomic_load_n(&h->clock_count_at_wait, __ATOMIC_ACQUIRE);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&h->clock_ev_seq, __ATOMIC_RELAXED) == seq) return true;
  }
  return false;
}

/* Folds the reads `p` answered itself since the last fold, and the clock events among
 * them, into its clock. */
static void lease_fold(struct proc *p) {
  struct uwrx_rec_header *h = p->repro.lease_hdr;
  if (!h || !p->repro.lease_addr || !__atomic_exchange_n(&h->clock_used, 0, __ATOMIC_ACQ_REL)) return;
  uint64_t n;
  uwrx_clock_event events[UWRX_REC_CLOCK_EVENTS];
  size_t nev = 0;
  if (!read_count_events(p, &n, events, &nev)) {
    __atomic_store_n(&h->clock_used, 1, __ATOMIC_RELEASE); /* (the next fold's) */
    return;
  }
  if (n < p->repro.lease_reads) return;
  /* each event in its place, marked for the children forked around it (fork_clock) */
  uwrx_time_replay(cfg(), &p->repro.clock, p->repro.lease_reads, n, events, nev, mark_event, p);
  p->repro.lease_events += (uint32_t)nev;
  p->repro.lease_reads = n;
}

/* Publishes the clock of `p`, the threads whose reads must be notified, and whether the
 * recorder may answer at all. */
static void lease_publish(struct proc *p) {
  struct uwrx_rec_header *h = p->repro.lease_hdr;
  if (!h) return;
  int waiting = 0;
  uint64_t bits[UWRX_REC_CLOCK_TID_BITS / 64] = { 0 };
  for (struct repro_thread *t = p->repro.threads; t; t = t->next) {
    if (!t->busy) continue;
    uint32_t b = (uint32_t)t->tid % UWRX_REC_CLOCK_TID_BITS;
    bits[b / 64] |= 1ull << (b % 64);
    waiting++;
  }
  /* with a timer armed, reads stay in process until its real deadline: the first notified
   * call past it fires the timer (clocks_resumed), as every call would have */
  bool open = p->repro.lease_addr != 0;
  int64_t timer_real = 0;
  for (int i = 0; i < REPRO_TIMERS; i++) {
    const uwrx_timer *t = &p->repro.timers[i];
    if (t->active && (timer_real == 0 || t->real_deadline_ns < timer_real)) timer_real = t->real_deadline_ns;
  }
  uint32_t seq = __atomic_load_n(&h->clock_seq, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&h->clock_open, open ? 1u : 0u, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_waiting, waiting, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_now_ns, p->repro.clock.now_ns, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_cpu_ns, p->repro.clock.cpu_ns, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_children_cpu_ns, p->repro.clock.children_cpu_ns, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_reads_base, p->repro.lease_reads, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_ev_folded, p->repro.lease_events, __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_timer_real_ns, timer_real, __ATOMIC_RELAXED);
  for (int i = 0; i < UWRX_REC_CLOCK_TID_BITS / 64; i++) __atomic_store_n(&h->clock_tid_bits[i], bits[i], __ATOMIC_RELAXED);
  __atomic_store_n(&h->clock_seq, seq + 2, __ATOMIC_RELEASE);
}

/* Ended child `c` counted in its parent's header `h` as not joined yet, once (lock
 * held); child_joined takes it off. */
static void count_unjoined(struct proc *c, struct uwrx_rec_header *h) {
  if (c->repro.unjoined_counted) return;
  c->repro.unjoined_counted = true;
  __atomic_add_fetch(&h->reap_unjoined, 1, __ATOMIC_SEQ_CST);
}

/* ---- headers kept mapped ----
 * An ended process's buffer goes to the collector, which mostly returns it to the pool
 * (tracebuf.h), where a new process takes it: its header is then mapped again at the same
 * file offset. So the header of an ended process whose buffer may be pooled stays mapped
 * here, by the file's identity, and the process that takes the file takes the mapping:
 * no mmap, no first-touch fault and no munmap (which in this multithreaded process also
 * flushes the other CPUs' TLBs) per process, about 15 us of CPU, most of it on the exec's
 * control call. The collector's reset and the header's pwrite (trace.c) go through the
 * same page. A mapping keeps its file's pages (2 x UWRX_TRACE_POOL_PART_MAX, as far as
 * the header's write position, the recorder's word, tells) even when the collector
 * deleted the file: the oldest of KEPT_MAX is let go for a new one, more than the pool
 * and the buffers a scan returns hold. (g.lock) */
#define KEPT_MAX 128
static struct kept_header {
  struct uwrx_rec_header *h;
  dev_t dev;
  ino_t ino;
} kept[KEPT_MAX];
static unsigned kept_next; /* the slot of the next one kept: the oldest */

static struct uwrx_rec_header *kept_take(dev_t dev, ino_t ino) {
  for (unsigned i = 0; i < KEPT_MAX; i++) {
    if (kept[i].h && kept[i].ino == ino && kept[i].dev == dev) {
      struct uwrx_rec_header *h = kept[i].h;
      kept[i].h = NULL;
      return h;
    }
  }
  return NULL;
}

static void kept_put(struct proc *p) {
  struct uwrx_rec_header *h = p->repro.lease_hdr;
  /* what the collector pools (the addon's ReturnToPool): both parts small */
  uint64_t region = __atomic_load_n(&h->pos, __ATOMIC_RELAXED);
  if (!p->repro.lease_ino || region > UWRX_TRACE_POOL_PART_MAX || p->trace_len > UWRX_TRACE_POOL_PART_MAX) {
    later_unmap(h, sizeof *h);
    return;
  }
  struct kept_header *k = &kept[kept_next++ % KEPT_MAX];
  if (k->h) later_unmap(k->h, sizeof *k->h);
  *k = (struct kept_header){ h, p->repro.lease_dev, p->repro.lease_ino };
}

/* The header of the recorder buffer open as `fd`, mapped here once per process, with
 * the PRNG's lease (g.lock held); NULL when it cannot be mapped. */
static struct uwrx_rec_header *lease_header(struct proc *p, int fd) {
  const struct repro_config *c = repro_config_get();
  if (!p->repro.lease_hdr) {
    struct stat st;
    void *m = NULL;
    if (fstat(fd, &st) == 0) {
      p->repro.lease_dev = st.st_dev;
      p->repro.lease_ino = st.st_ino;
      m = kept_take(st.st_dev, st.st_ino);
    }
    if (!m) m = mmap(NULL, sizeof(struct uwrx_rec_header), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      struct uwrx_rec_header *h = m;
      h->clock_mode = c->time.mode;
      h->clock_t0_ns = c->time.t0_ns;
      h->clock_step_ns = c->time.step_ns;
      h->clock_wall_offset_ns = c->time.wall_offset_ns;
      /* (a pooled buffer's header holds its last process's events) */
      h->clock_ev_seq = h->clock_ev_next = h->clock_ev_folded = 0;
      h->clock_count_at_wait = 0;
      h->clock_waits = !c->notified_waits;
      p->repro.lease_events = 0;
      p->repro.lease_hdr = h;
      repro_rng_lease(p, h);
      /* children that ended before: counted as on_child_exit counts them */
      for (size_t i = 0; i < p->repro.nchildren_procs; i++)
        if (p->repro.children_procs[i]->exit_group_seen) count_unjoined(p->repro.children_procs[i], h);
    }
  }
  return p->repro.lease_hdr;
}

/* The clock lease of an image whose read count is at `count_addr` in the process
 * (g.lock held): a new image counts from 0 (its count is on the page the shim mapped at
 * the exec: nothing to read); a forked child from what it inherited (read at its spawn). */
static void lease_image(struct proc *p, uint64_t count_addr, bool fresh_image) {
  /* real time: no clock read is answered in process (clock_open stays 0) */
  if (repro_config_get()->time.mode == UWRX_TIME_REAL) return;
  /* on_child_exit joins through the header's reap fields */
  if (p->repro.lease_hdr) __atomic_store_n(&p->repro.lease_hdr->reap_watch, 1u, __ATOMIC_RELEASE);
  uint64_t n = 0;
  p->repro.lease_addr = count_addr && (fresh_image || read_count(p->tgid, count_addr, &n)) ? count_addr : 0;
  p->repro.lease_reads = p->repro.lease_addr ? n : 0;
  /* the events of an image before were folded at its exec */
  if (p->repro.lease_hdr) {
    p->repro.lease_events = __atomic_load_n(&p->repro.lease_hdr->clock_ev_next, __ATOMIC_ACQUIRE);
    __atomic_store_n(&p->repro.lease_hdr->clock_count_at_wait, n, __ATOMIC_RELEASE);
  }
  lease_publish(p);
}

void clocks_recorder(struct proc *p, int fd, uint64_t count_addr, bool fresh_image) {
  if (!p || !repro_config_get()->enabled) return;
  pthread_mutex_lock(&g.lock);
  struct uwrx_rec_header *h = lease_header(p, fd);
  if (fresh_image && h) redirects_image_started(p, h);
  lease_image(p, count_addr, fresh_image);
  pthread_mutex_unlock(&g.lock);
}

struct uwrx_rec_header *clocks_exec_prepare(struct proc *p, int fd, uint64_t count_addr, struct prepared_lease *out) {
  out->opened = false;
  if (!repro_config_get()->enabled) return NULL;
  /* a header mapped before may be the old image's lease (a forked child that set up its
   * recorder): kept closed until the new image is known to run (clocks_exec_adopt), its
   * reads notified meanwhile. Else no image of the process reads this header (a vfork
   * child runs its parent's, a forked child before its own recorder none): the new
   * image's lease opens now, at the count its shim is to keep (it takes the exec only
   * there), so that even its first reads are answered in process. */
  bool fresh = !p->repro.lease_hdr;
  struct uwrx_rec_header *h = lease_header(p, fd);
  if (!h) return NULL;
  lease_fold(p);
  out->addr = p->repro.lease_addr;
  out->reads = p->repro.lease_reads;
  out->opened = fresh;
  if (fresh) lease_image(p, count_addr, true);
  else clocks_exec(p);
  return h;
}

void clocks_exec_adopt(struct proc *p, uint64_t count_addr) { lease_image(p, count_addr, true); }

void clocks_exec_unprepare(struct proc *p, const struct prepared_lease *before) {
  /* what a new image may have read under the new lease: none ran */
  p->repro.lease_addr = before->addr;
  p->repro.lease_reads = before->reads;
  lease_publish(p);
}

void clocks_exec(struct proc *p) {
  p->repro.lease_addr = 0;
  p->repro.lease_reads = 0;
  lease_publish(p);
}

static void clocks_exited(struct proc *p, bool known, int status) {
  (void)known, (void)status;
  lease_fold(p); /* a killed process's reads (its parent may join its clock later) */
  /* (an munmap in this multithreaded process flushes the other CPUs' TLBs: not with
   * the table's lock held) */
  if (p->repro.lease_hdr) kept_put(p);
  p->repro.lease_hdr = NULL;
}

/* The clock of `p` is about to change because of a call made at `last_pid` (lock held).
 * Changes of calls made while no pid was handed out are one change for any child. */
static void mark(struct proc *p, int last_pid) {
  struct proc_repro *r = &p->repro;
  if (r->nmarks && r->marks[(r->nmarks - 1) % CLOCK_MARKS].last_pid == last_pid) return;
  r->marks[r->nmarks % CLOCK_MARKS] = (struct clock_mark){ last_pid, r->clock.now_ns, r->lease_reads };
  r->nmarks++;
}

/* The clock is about to change by the recorder's event at place `pos` of its count. */
static void mark_event(void *proc, uint64_t pos) {
  struct proc_repro *r = &((struct proc *)proc)->repro;
  r->marks[r->nmarks % CLOCK_MARKS] = (struct clock_mark){ -1, r->clock.now_ns, pos };
  r->nmarks++;
}

/* Whether the parent of `child` runs one thread: as counted when the child was first
 * seen, moments ago, else read now. */
static bool single_threaded(pid_t pid, const struct proc *child) {
  if (child->parent_threads) return child->parent_threads == 1;
  char buf[1024];
  const char *threads = proc_read(pid, "stat", buf, sizeof buf) ? proc_stat_field(buf, 20) : NULL;
  return threads && atoi(threads) == 1;
}

static void join_reaped(struct proc *p);

/* `now_ns`, which counts `folded` reads answered in process, as it was after the first
 * `reads` of them. */
static int64_t before_reads(int64_t now_ns, uint64_t folded, uint64_t reads) {
  if (reads >= folded) return now_ns;
  uwrx_clock k = { .now_ns = now_ns };
  uwrx_time_after_reads(cfg(), &k, -(int64_t)(folded - reads));
  return k.now_ns;
}

/* The parent's clock when it forked `child`, which inherited the parent's count of reads
 * answered in process, `reads` (lock held). */
static int64_t fork_clock(struct proc *parent, struct proc *child, uint64_t reads) {
  struct proc_repro *r = &parent->repro;
  unsigned first = r->nmarks > CLOCK_MARKS ? r->nmarks - CLOCK_MARKS : 0;
  for (unsigned i = first; i < r->nmarks; i++) {
    const struct clock_mark *m = &r->marks[i % CLOCK_MARKS];
    /* an event at place m->reads came after the fork when the child's count stops before it */
    if (m->last_pid < 0 ? m->reads >= reads : m->last_pid >= child->tgid) return before_reads(m->now_ns, m->reads, reads);
  }
  /* Forked after the parent's latest call. A wait that call made had returned: its end and
   * the children it reaped count now (one thread: a thread of several may still wait). */
  for (struct repro_thread *t = r->threads; t; t = t->next) {
    if (!t->busy || t->settled || t->entry_last_pid >= child->tgid || !single_threaded(parent->tgid, child)) continue;
    mark(parent, t->entry_last_pid);
    uwrx_time_wait_end(cfg(), &r->clock, &t->wait, (int64_t)now_ns());
    if (t->reaping) join_reaped(parent);
    t->settled = true;
  }
  return before_reads(r->clock.now_ns, r->lease_reads, reads);
}

/* ---- processes ---- */

/* A new process starts at its parent's clock when it forked it (fork_clock) plus an
 * offset from its own random stream. */
static void clocks_spawned(struct proc *p, struct proc *parent) {
  uwrx_clock at_fork;
  const uwrx_clock *from = NULL;
  if (parent) {
    /* the child's copy of the parent's read count is the count at the fork (a child
     * sharing the parent's memory, vfork, stopped the forking thread: the same) */
    lease_fold(parent);
    uint64_t reads = parent->repro.lease_reads, inherited;
    if (read_count(p->tgid, parent->repro.lease_addr, &inherited) && inherited <= reads) reads = inherited;
    at_fork = parent->repro.clock;
    at_fork.now_ns = fork_clock(parent, p, reads);
    lease_publish(parent);
    p->repro.lease_addr = parent->repro.lease_addr;
    p->repro.lease_reads = reads;
    from = &at_fork;
    p->repro.vdso_hidden = parent->repro.vdso_hidden;
    struct proc_repro *r = &parent->repro;
    if (r->nchildren_procs == r->capchildren_procs) {
      size_t cap = r->capchildren_procs ? r->capchildren_procs * 2 : 8;
      struct proc **grown = realloc(r->children_procs, cap * sizeof *grown);
      if (grown) r->children_procs = grown, r->capchildren_procs = cap;
    }
    if (r->nchildren_procs < r->capchildren_procs) r->children_procs[r->nchildren_procs++] = p;
  }
  uwrx_time_fork(cfg(), from, uwrx_proc_rng_clock_bits(&p->repro.rng), &p->repro.clock);
}

/* Marks the thread for `what` at its next call (lock held). */
static struct repro_thread *busy_thread(struct proc *p, pid_t tid) {
  struct repro_thread *t = repro_thread(p, tid);
  if (t && !t->busy) {
    t->busy = true;
    t->settled = false;
    t->entry_last_pid = ns_last_pid();
    __atomic_add_fetch(&p->repro.busy_threads, 1, __ATOMIC_RELAXED);
    lease_publish(p); /* its reads go through notifications until its next call */
  }
  return t;
}

/* Entry `i` of the children of `p` is joined: off the list, and off its header's count
 * of ended children not joined yet (lock held). */
static void child_joined(struct proc *p, size_t i) {
  struct proc *c = p->repro.children_procs[i];
  if (c->repro.unjoined_counted) {
    c->repro.unjoined_counted = false;
    if (p->repro.lease_hdr) __atomic_sub_fetch(&p->repro.lease_hdr->reap_unjoined, 1, __ATOMIC_SEQ_CST);
  }
  p->repro.children_procs[i] = p->repro.children_procs[--p->repro.nchildren_procs];
}

/* The parent `p` moves to at least the end of child `c` (lock held): a child killed
 * without a notification since its last reads in process has them folded first. */
static void join_child(struct proc *p, struct proc *c) {
  lease_fold(c);
  uwrx_time_join(cfg(), &p->repro.clock, &c->repro.clock);
}

/* The parent joins, now, the ends of its children that have ended (their exit_group was
 * seen) and that a wait for `which` (0: any) can reap (lock held). */
static void join_ended(struct proc *p, pid_t which) {
  for (size_t i = 0; i < p->repro.nchildren_procs; i++) {
    struct proc *c = p->repro.children_procs[i];
    if (!c->exit_group_seen || (which != 0 && which != c->tgid)) continue;
    join_child(p, c);
    child_joined(p, i--);
  }
}

/* wait4, waitid. A child reaped by the call is joined before the call returns, so a
 * process the parent starts right after it (a shell's next command) starts after that
 * child's end, whichever of the two uwrx sees first: a child that already ended is
 * joined here, one that ends while the call blocks at its exit_group (on_child_exit).
 * The rest (a child killed by a signal) is joined at the thread's next call. */
static enum verdict on_reap(struct notif_ctx *ctx) {
  if (!ctx->proc) return VERDICT_CONTINUE;
  const __u64 *a = ctx->req->data.args;
  bool wait4 = ctx->req->data.nr == SYS_wait4;
  int options = (int)(wait4 ? a[2] : a[3]);
  pid_t which;
  if (wait4) which = (int)a[0] > 0 ? (pid_t)a[0] : 0; /* -1 any, 0 or -pgid: a group */
  else which = (int)a[0] == 1 /* P_PID */ ? (pid_t)a[1] : (int)a[0] == 3 /* P_PIDFD */ ? -1 : 0;
  pthread_mutex_lock(&g.lock);
  struct repro_thread *t = busy_thread(ctx->proc, ctx->req->pid);
  if (t) {
    t->reaping = true;
    t->reap_blocking = !(options & WNOHANG);
    t->reap_pid = which;
  }
  if (which >= 0 && t) {
    mark(ctx->proc, t->entry_last_pid);
    join_ended(ctx->proc, which);
    lease_publish(ctx->proc);
  }
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

/* Whether the single-threaded `parent` waits in process for a child `pid` (its header's
 * reap fields, uwrx_recorder.h). */
static bool waits_in_process(const struct proc *parent, pid_t pid) {
  const struct uwrx_rec_header *h = parent->repro.lease_hdr;
  if (!h || !__atomic_load_n(&h->reap_waiting, __ATOMIC_SEQ_CST)) return false;
  int32_t which = __atomic_load_n(&h->reap_pid, __ATOMIC_RELAXED);
  return which == 0 || which == pid;
}

/* exit_group of a process whose parent blocks in a wait that can reap it, notified or in
 * process: the parent joins its end now, before the wait returns (see on_reap). A wait
 * in process began after the namespace's last pid at its start, and its process forks
 * nothing until it returns: the last pid now marks the change as well. Any other ended
 * child is counted in its parent's header until joined. */
static enum verdict on_child_exit(struct notif_ctx *ctx) {
  struct proc *c = ctx->proc;
  if (!c) return VERDICT_CONTINUE;
  pthread_mutex_lock(&g.lock);
  struct proc *parent = procs_find(c->ppid);
  struct uwrx_rec_header *h = parent ? parent->repro.lease_hdr : NULL;
  /* counted first, the flag read after (uwrx_recorder.h); a join below uncounts it */
  if (h) count_unjoined(c, h);
  /* a wait in process is the thread's current one (a notified wait before it may have
   * left the thread marked busy until its next notified call) */
  bool in_process = h && waits_in_process(parent, c->tgid);
  struct repro_thread *waiting = NULL;
  for (struct repro_thread *t = parent && !in_process ? parent->repro.threads : NULL; t && !waiting; t = t->next)
    if (t->busy && t->reaping && t->reap_blocking && (t->reap_pid == 0 || t->reap_pid == c->tgid)) waiting = t;
  if (waiting || in_process) {
    lease_fold(parent);
    mark(parent, in_process ? ns_last_pid() : waiting->entry_last_pid);
    join_ended(parent, c->tgid);
    lease_publish(parent);
    if (h) {
      uint32_t slot = h->reap_joined_next++ % UWRX_REC_REAP_JOINED;
      __atomic_store_n(&h->reap_joined[slot], (int32_t)c->tgid, __ATOMIC_SEQ_CST);
    }
  }
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

/* The clock's control calls (uwrx_recorder.h):
 * UWRX_CTL_CLOCK_FOLD: the process's header holds as many clock events as it can; folded
 * (as at every call, clocks_resumed) and published, which frees them.
 * UWRX_CTL_REAPED: the process reaped in process a child whose clock was not joined at
 * its exit (killed by a signal), or whose join fell out of reap_joined: joined now, with
 * whatever else it reaped, as its next call after a notified wait4 would (clocks_resumed). */
static enum verdict on_clock_control(struct notif_ctx *ctx) {
  struct proc *p = ctx->proc;
  if (!p || ctx->req->data.args[5] != UWRX_CONTROL_MAGIC) return answer(ctx, 0, ENOSYS);
  if (ctx->req->data.args[0] == UWRX_CTL_CLOCK_FOLD) {
    pthread_mutex_lock(&g.lock);
    lease_fold(p);
    lease_publish(p);
    pthread_mutex_unlock(&g.lock);
    return answer(ctx, 0, 0);
  }
  pid_t pid = (pid_t)ctx->req->data.args[1];
  int last = ns_last_pid();
  pthread_mutex_lock(&g.lock);
  lease_fold(p);
  mark(p, last);
  for (size_t i = 0; i < p->repro.nchildren_procs; i++) {
    struct proc *c = p->repro.children_procs[i];
    if (c->tgid != pid) continue;
    join_child(p, c);
    child_joined(p, i);
    break;
  }
  join_reaped(p);
  lease_publish(p);
  pthread_mutex_unlock(&g.lock);
  return answer(ctx, 0, 0);
}

/* The parent moves to at least the end of every child it reaped (lock held). */
static void join_reaped(struct proc *p) {
  for (size_t i = 0; i < p->repro.nchildren_procs; i++) {
    struct proc *c = p->repro.children_procs[i];
    if (!procs_was_reaped(c)) continue;
    join_child(p, c);
    child_joined(p, i--);
  }
}

/* ---- the thread's next call ---- */

/* Expired timers move the clock (lock held). */
static void fire_timers(struct proc *p, int64_t real_now) {
  int armed = 0;
  for (int i = 0; i < REPRO_TIMERS; i++) {
    uwrx_time_timer_fire(cfg(), &p->repro.clock, &p->repro.timers[i], real_now);
    armed += p->repro.timers[i].active;
  }
  __atomic_store_n(&p->repro.armed_timers, armed, __ATOMIC_RELAXED);
  lease_publish(p);
}

static void clocks_resumed(struct notif_ctx *ctx) {
  struct proc *p = ctx->proc;
  if (!p) return;
  if (__atomic_load_n(&p->repro.lease_hdr, __ATOMIC_RELAXED)) {
    /* what it read in process comes before this call */
    pthread_mutex_lock(&g.lock);
    lease_fold(p);
    pthread_mutex_unlock(&g.lock);
  }
  if (__atomic_load_n(&p->repro.armed_timers, __ATOMIC_RELAXED)) {
    int last = ns_last_pid();
    pthread_mutex_lock(&g.lock);
    mark(p, last);
    fire_timers(p, (int64_t)ctx->time);
    pthread_mutex_unlock(&g.lock);
  }
  if (__atomic_load_n(&p->repro.busy_threads, __ATOMIC_RELAXED) == 0) return;
  uint64_t addr = 0;
  uint32_t len = 0;
  uint8_t original[16], written[16];
  pthread_mutex_lock(&g.lock);
  struct repro_thread *t;
  for (t = p->repro.threads; t; t = t->next)
    if (t->tid == (pid_t)ctx->req->pid) break;
  if (t && t->busy) {
    if (!t->settled) {
      mark(p, t->entry_last_pid);
      uwrx_time_wait_end(cfg(), &p->repro.clock, &t->wait, (int64_t)ctx->time);
      if (t->reaping) join_reaped(p);
    }
    if (t->rewrite_len) {
      addr = t->rewrite_addr;
      len = t->rewrite_len;
      memcpy(original, t->original, len);
      memcpy(written, t->written, len);
    }
    t->reaping = false;
    t->rewrite_len = 0;
    t->busy = false;
    __atomic_sub_fetch(&p->repro.busy_threads, 1, __ATOMIC_RELAXED);
    lease_publish(p);
  }
  pthread_mutex_unlock(&g.lock);
  /* Put the program's deadline back unless it changed it meanwhile (a loop that waits on
   * the same deadline again then sees its own value). */
  uint8_t current[16];
  if (len && target_read(ctx, addr, current, len) && memcmp(current, written, len) == 0)
    target_write(ctx, addr, original, len);
}

/* Whether the run's clocks are virtual (uwrx-init answers them). */
static bool clocks_virtual(void) {
  const struct repro_config *c = repro_config_get();
  return c->enabled && c->time.mode != UWRX_TIME_REAL;
}

bool clocks_final(struct proc *p, uwrx_clock *out) {
  if (!clocks_virtual()) return false;
  lease_fold(p); /* what it read in process since its last call */
  *out = p->repro.clock;
  return true;
}

void clocks_skipped(struct proc *p, const uwrx_clock *recorded) {
  if (!clocks_virtual()) return;
  lease_fold(p);
  uwrx_clock *k = &p->repro.clock;
  /* never backwards: a replay whose clocks already ran ahead keeps them */
  if (k->now_ns < recorded->now_ns) k->now_ns = recorded->now_ns;
  if (k->cpu_ns < recorded->cpu_ns) k->cpu_ns = recorded->cpu_ns;
  if (k->children_cpu_ns < recorded->children_cpu_ns) k->children_cpu_ns = recorded->children_cpu_ns;
  lease_publish(p);
}

bool clocks_stamp(struct proc *p, int64_t *ns) {
  if (!clocks_virtual()) return false;
  int last = ns_last_pid();
  pthread_mutex_lock(&g.lock);
  mark(p, last);
  bool ok = uwrx_time_read(cfg(), &p->repro.clock, 0 /* CLOCK_REALTIME */, ns);
  lease_publish(p);
  pthread_mutex_unlock(&g.lock);
  return ok;
}

/* ---- reads ---- */

static void timespec_of(int64_t ns, int64_t ts[2]) {
  ts[0] = uwrx_time_floor_div(ns, 1000000000);
  ts[1] = ns - ts[0] * 1000000000;
}

static enum verdict on_read(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  if (!ctx->proc) return VERDICT_CONTINUE;
  uwrx_clock *k = &ctx->proc->repro.clock;
  int last = ns_last_pid();
  int64_t ns = 0, sec = 0, usec = 0;
  switch (req->data.nr) {
  case SYS_clock_gettime: {
    pthread_mutex_lock(&g.lock);
    mark(ctx->proc, last);
    int faked = uwrx_time_read(cfg(), k, (int32_t)req->data.args[0], &ns);
    lease_publish(ctx->proc);
    pthread_mutex_unlock(&g.lock);
    if (!faked) return VERDICT_CONTINUE;
    int64_t ts[2];
    timespec_of(ns, ts);
    return target_write(ctx, req->data.args[1], ts, sizeof ts) ? answer(ctx, 0, 0) : answer(ctx, 0, EFAULT);
  }
  case SYS_gettimeofday: {
    uint64_t tv = req->data.args[0], tz = req->data.args[1];
    if (tv) {
      pthread_mutex_lock(&g.lock);
      mark(ctx->proc, last);
      uwrx_time_gettimeofday(cfg(), k, &sec, &usec);
      lease_publish(ctx->proc);
      pthread_mutex_unlock(&g.lock);
      int64_t val[2] = { sec, usec };
      if (!target_write(ctx, tv, val, sizeof val)) return answer(ctx, 0, EFAULT);
    }
    /* the kernel's timezone is the host's setting: always answer UTC */
    if (tz) {
      int32_t zone[2] = { 0, 0 };
      if (!target_write(ctx, tz, zone, sizeof zone)) return answer(ctx, 0, EFAULT);
    }
    return answer(ctx, 0, 0);
  }
  case SYS_times: {
    int64_t out[5];
    pthread_mutex_lock(&g.lock);
    mark(ctx->proc, last);
    int faked = uwrx_time_times(cfg(), k, 1000000000 / sysconf(_SC_CLK_TCK), out);
    lease_publish(ctx->proc);
    pthread_mutex_unlock(&g.lock);
    if (!faked) return VERDICT_CONTINUE;
    if (req->data.args[0] && !target_write(ctx, req->data.args[0], &out[1], 4 * sizeof out[0])) return answer(ctx, 0, EFAULT);
    return answer(ctx, out[0], 0);
  }
  case SYS_getrusage: {
    /* struct rusage: user and system time as timevals, then 14 counters. The counters
     * (max RSS, faults, context switches ...) depend on the machine: they read 0. */
    int who = (int)req->data.args[0];
    if (who != 0 /* SELF */ && who != -1 /* CHILDREN */ && who != 1 /* THREAD */) return VERDICT_CONTINUE;
    int64_t usage[18] = { 0 }, user, sys;
    pthread_mutex_lock(&g.lock);
    mark(ctx->proc, last);
    int faked = uwrx_time_rusage(cfg(), k, who == -1, &user, &sys);
    lease_publish(ctx->proc);
    pthread_mutex_unlock(&g.lock);
    if (!faked) return VERDICT_CONTINUE;
    usage[0] = user / 1000000000, usage[1] = user % 1000000000 / 1000;
    usage[2] = sys / 1000000000, usage[3] = sys % 1000000000 / 1000;
    return target_write(ctx, req->data.args[1], usage, sizeof usage) ? answer(ctx, 0, 0) : answer(ctx, 0, EFAULT);
  }
  case SYS_time: {
    pthread_mutex_lock(&g.lock);
    mark(ctx->proc, last);
    uwrx_time_time(cfg(), k, &sec);
    lease_publish(ctx->proc);
    pthread_mutex_unlock(&g.lock);
    uint64_t tloc = req->data.args[0];
    if (tloc && !target_write(ctx, tloc, &sec, sizeof sec)) return answer(ctx, 0, EFAULT);
    return answer(ctx, sec, 0);
  }
  }
  return VERDICT_CONTINUE;
}

/* ---- timed waits ---- */

/* A relative timeout as a timespec (or, `micro`, a timeval) at `addr`; false when it
 * cannot be read or is not valid (the kernel then fails the call itself). */
static bool read_timeout(struct notif_ctx *ctx, uint64_t addr, bool micro, int64_t *ns) {
  int64_t v[2];
  if (!addr || !target_read(ctx, addr, v, sizeof v)) return false;
  int64_t unit = micro ? 1000 : 1, limit = micro ? 1000000 : 1000000000;
  if (v[0] < 0 || v[1] < 0 || v[1] >= limit) return false;
  *ns = uwrx_time_ns_of(v[0], v[1] * unit);
  return true;
}

static void wait_relative(struct notif_ctx *ctx, int64_t timeout_ns) {
  if (timeout_ns <= 0) return;
  pthread_mutex_lock(&g.lock);
  struct repro_thread *t = busy_thread(ctx->proc, ctx->req->pid);
  if (t) uwrx_time_wait_relative(cfg(), &ctx->proc->repro.clock, &t->wait, (int64_t)ctx->time, timeout_ns);
  pthread_mutex_unlock(&g.lock);
}

/* The timespec at `addr` is a deadline on `clock_id`: rewrite it into the real deadline
 * on the same kernel clock that is as far away as the virtual one. */
static void wait_absolute(struct notif_ctx *ctx, uint64_t addr, int32_t clock_id) {
  int64_t v[2];
  /* a program with the vDSO computed its deadline from the real clock */
  if (!ctx->proc->repro.vdso_hidden) return;
  if (!addr || !target_read(ctx, addr, v, sizeof v)) return;
  if (v[0] < 0 || v[1] < 0 || v[1] >= 1000000000) return;
  int64_t deadline = uwrx_time_ns_of(v[0], v[1]);
  int64_t remaining;
  struct timespec real;
  int64_t written[2];
  pthread_mutex_lock(&g.lock);
  struct repro_thread *t = busy_thread(ctx->proc, ctx->req->pid);
  bool tracked = t && uwrx_time_wait_absolute(cfg(), &ctx->proc->repro.clock, &t->wait, (int64_t)ctx->time,
                                              clock_id, deadline, &remaining);
  if (tracked && clock_gettime(clock_id, &real) == 0) {
    int64_t real_ns = uwrx_time_ns_of(real.tv_sec, real.tv_nsec);
    timespec_of(remaining > INT64_MAX - real_ns ? INT64_MAX : real_ns + remaining, written);
    t->rewrite_addr = addr;
    t->rewrite_len = sizeof v;
    memcpy(t->original, v, sizeof v);
    memcpy(t->written, written, sizeof written);
  } else {
    tracked = false;
  }
  pthread_mutex_unlock(&g.lock);
  if (tracked) target_write(ctx, addr, written, sizeof written);
}

static enum verdict on_wait(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  const __u64 *a = req->data.args;
  if (!ctx->proc) return VERDICT_CONTINUE;
  int64_t ns;
  switch (req->data.nr) {
  case SYS_nanosleep:
    if (read_timeout(ctx, a[0], false, &ns)) wait_relative(ctx, ns);
    break;
  case SYS_clock_nanosleep: {
    int32_t clock_id = (int32_t)a[0];
    if (!uwrx_time_faked(cfg(), clock_id) || clock_id == CLOCK_PROCESS_CPUTIME_ID ||
        clock_id == CLOCK_THREAD_CPUTIME_ID || clock_id < 0)
      break;
    if ((int)a[1] & TIMER_ABSTIME_FLAG) wait_absolute(ctx, a[2], clock_id);
    else if (read_timeout(ctx, a[2], false, &ns)) wait_relative(ctx, ns);
    break;
  }
  case SYS_poll:
    wait_relative(ctx, (int64_t)(int32_t)a[2] * 1000000);
    break;
  case SYS_epoll_wait:
  case SYS_epoll_pwait:
    wait_relative(ctx, (int64_t)(int32_t)a[3] * 1000000);
    break;
  case SYS_ppoll:
  case SYS_rt_sigtimedwait:
    if (read_timeout(ctx, a[2], false, &ns)) wait_relative(ctx, ns);
    break;
  case SYS_epoll_pwait2:
    if (read_timeout(ctx, a[3], false, &ns)) wait_relative(ctx, ns);
    break;
  case SYS_select:
    if (read_timeout(ctx, a[4], true, &ns)) wait_relative(ctx, ns);
    break;
  case SYS_pselect6:
    if (read_timeout(ctx, a[4], false, &ns)) wait_relative(ctx, ns);
    break;
  case SYS_futex: {
    int op = (int)a[1];
    if (FUTEX_CMD(op) == FUTEX_WAIT_OP) {
      if (read_timeout(ctx, a[3], false, &ns)) wait_relative(ctx, ns);
    } else if (FUTEX_CMD(op) == FUTEX_WAIT_BITSET_OP) {
      wait_absolute(ctx, a[3], op & FUTEX_CLOCK_REALTIME_FLAG ? CLOCK_REALTIME : CLOCK_MONOTONIC);
    }
    break;
  }
  }
  return VERDICT_CONTINUE;
}

/* ---- timers ---- */

/* The entry for timer `key` (lock held): its own, else a free one, else the oldest armed. */
static uwrx_timer *timer_slot(struct proc *p, int32_t key) {
  uwrx_timer *free_slot = NULL, *soonest = &p->repro.timers[0];
  for (int i = 0; i < REPRO_TIMERS; i++) {
    uwrx_timer *t = &p->repro.timers[i];
    if (t->active && t->key == key) return t;
    if (!t->active && !free_slot) free_slot = t;
    if (t->real_deadline_ns < soonest->real_deadline_ns) soonest = t;
  }
  return free_slot ? free_slot : soonest;
}

static void arm(struct notif_ctx *ctx, int32_t key, int64_t value_ns, int64_t interval_ns) {
  struct proc *p = ctx->proc;
  pthread_mutex_lock(&g.lock);
  uwrx_timer *t = timer_slot(p, key);
  uwrx_time_timer_set(cfg(), &p->repro.clock, t, (int64_t)ctx->time, value_ns, interval_ns);
  t->key = key;
  fire_timers(p, (int64_t)ctx->time); /* recounts the armed ones */
  pthread_mutex_unlock(&g.lock);
}

/* The clock of timerfd `fd` of the target, from its fdinfo; -1 when unknown. */
static int32_t timerfd_clock(pid_t tid, int fd) {
  char what[32], buf[512];
  snprintf(what, sizeof what, "fdinfo/%d", fd);
  if (!proc_read(tid, what, buf, sizeof buf)) return -1;
  char *c = strstr(buf, "clockid:");
  return c ? (int32_t)strtol(c + 8, NULL, 10) : -1;
}

/* alarm(seconds), setitimer(ITIMER_REAL, new, old), timerfd_settime(fd, flags, new, old). */
static enum verdict on_timer(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  const __u64 *a = req->data.args;
  if (!ctx->proc) return VERDICT_CONTINUE;
  switch (req->data.nr) {
  case SYS_alarm:
    arm(ctx, -1, (int64_t)(uint32_t)a[0] * 1000000000, 0);
    break;
  case SYS_setitimer: {
    int64_t v[4]; /* it_interval {sec, usec}, it_value {sec, usec} */
    if ((int)a[0] != 0 /* ITIMER_REAL */ || !a[1] || !target_read(ctx, a[1], v, sizeof v)) break;
    if (v[1] < 0 || v[1] >= 1000000 || v[3] < 0 || v[3] >= 1000000) break;
    arm(ctx, -1, uwrx_time_ns_of(v[2], v[3] * 1000), uwrx_time_ns_of(v[0], v[1] * 1000));
    break;
  }
  case SYS_timerfd_settime: {
    int fd = (int)a[0];
    int64_t v[4]; /* it_interval {sec, nsec}, it_value {sec, nsec} */
    if (!a[2] || !target_read(ctx, a[2], v, sizeof v)) break;
    if (v[1] < 0 || v[1] >= 1000000000 || v[3] < 0 || v[3] >= 1000000000) break;
    int64_t value = uwrx_time_ns_of(v[2], v[3]), interval = uwrx_time_ns_of(v[0], v[1]);
    if (!((int)a[1] & TIMER_ABSTIME_FLAG) || value == 0) {
      arm(ctx, fd, value, interval);
      break;
    }
    /* an absolute expiry on the virtual clock: rewrite it as in wait_absolute */
    if (!ctx->proc->repro.vdso_hidden) break;
    int32_t clock_id = timerfd_clock(req->pid, fd);
    int64_t now, remaining;
    struct timespec real;
    pthread_mutex_lock(&g.lock);
    bool virtual = clock_id >= 0 && uwrx_time_peek(cfg(), &ctx->proc->repro.clock, clock_id, &now);
    pthread_mutex_unlock(&g.lock);
    if (!virtual || clock_gettime(clock_id, &real) != 0) break;
    remaining = value - now > 0 ? value - now : 1; /* 0 would disarm */
    arm(ctx, fd, remaining, interval);
    int64_t real_ns = uwrx_time_ns_of(real.tv_sec, real.tv_nsec);
    int64_t written[2];
    timespec_of(remaining > INT64_MAX - real_ns ? INT64_MAX : real_ns + remaining, written);
    pthread_mutex_lock(&g.lock);
    struct repro_thread *t = busy_thread(ctx->proc, req->pid);
    if (t) {
      t->rewrite_addr = a[2] + 16;
      t->rewrite_len = 16;
      memcpy(t->original, &v[2], 16);
      memcpy(t->written, written, 16);
    }
    pthread_mutex_unlock(&g.lock);
    if (t) target_write(ctx, a[2] + 16, written, sizeof written);
    break;
  }
  }
  return VERDICT_CONTINUE;
}

/* ---- the clocks feature ---- */

static bool virtual_clocks(const struct plan *plan) {
  return plan->repro.enabled && plan->repro.time.mode != UWRX_TIME_REAL;
}

/* Which calls carry a timeout, so that only those are notified: an uncontended futex or
 * a poll without timeout never leaves the kernel. The futex filter only checks that a
 * timeout is given; on_wait picks FUTEX_WAIT and FUTEX_WAIT_BITSET among those. */
static const struct arg_match timeout_arg0 = { .arg = 0, .test = ARG_NONZERO };
static const struct arg_match timeout_arg2 = { .arg = 2, .test = ARG_NONZERO };
static const struct arg_match timeout_arg3 = { .arg = 3, .test = ARG_NONZERO };
static const struct arg_match timeout_arg4 = { .arg = 4, .test = ARG_NONZERO };
static const struct arg_match timeout_ms_arg2 = { .arg = 2, .test = ARG_POSITIVE };
static const struct arg_match timeout_ms_arg3 = { .arg = 3, .test = ARG_POSITIVE };
static const struct arg_match itimer_real = { .arg = 0, .count = 1, .values = { 0 /* ITIMER_REAL */ } };

static const struct arg_match clock_ops = { .arg = 0, .count = 2, .values = { UWRX_CTL_REAPED, UWRX_CTL_CLOCK_FOLD } };

static const struct subscription clock_calls[] = {
  /* reads */
  { SYS_clock_gettime, on_read, NULL, NULL },
  { SYS_gettimeofday, on_read, NULL, NULL },
  { SYS_time, on_read, NULL, NULL },
  { SYS_times, on_read, NULL, NULL },
  { SYS_getrusage, on_read, NULL, NULL },
  /* timed waits */
  { SYS_nanosleep, on_wait, &timeout_arg0, NULL },
  { SYS_clock_nanosleep, on_wait, NULL, NULL },
  { SYS_poll, on_wait, &timeout_ms_arg2, NULL },
  { SYS_epoll_wait, on_wait, &timeout_ms_arg3, NULL },
  { SYS_epoll_pwait, on_wait, &timeout_ms_arg3, NULL },
  { SYS_ppoll, on_wait, &timeout_arg2, NULL },
  { SYS_rt_sigtimedwait, on_wait, &timeout_arg2, NULL },
  { SYS_epoll_pwait2, on_wait, &timeout_arg3, NULL },
  { SYS_select, on_wait, &timeout_arg4, NULL },
  { SYS_pselect6, on_wait, &timeout_arg4, NULL },
  { SYS_futex, on_wait, &timeout_arg3, NULL },
  /* timers */
  { SYS_alarm, on_timer, NULL, NULL },
  { SYS_setitimer, on_timer, &itimer_real, NULL },
  { SYS_timerfd_settime, on_timer, NULL, NULL },
  /* reaps (forks are not notified: a notified fork could fail with EINTR) */
  { SYS_wait4, on_reap, NULL, NULL },
  { SYS_waitid, on_reap, NULL, NULL },
  { SYS_exit_group, on_child_exit, NULL, NULL },
  { UWRX_SYS_CONTROL, on_clock_control, &clock_ops, NULL },
};

const struct feature feature_clocks = {
  .name = "clocks",
  .enabled = virtual_clocks,
  .subs = SUBSCRIPTIONS(clock_calls),
  .on_spawn = clocks_spawned,
  .on_call = clocks_resumed,
  .on_exit = clocks_exited,
};
