/* The notification loop: handler threads receive seccomp notifications, register the
 * calling process on first sight, offer the call to the features that subscribed to it
 * (feature.c) and send the answer, unless a feature deferred it. They run in pid 1,
 * inside the sandbox's namespaces, so paths and pids resolve as the target sees them. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_control.h"

/* Debian 12's headers predate the synchronous wake-up flag (kernel 6.6). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

static struct seccomp_notif_sizes sizes;

void notify_answering(struct notif_ctx *ctx) { ctx->answering = now_ns(); }

bool notif_id_valid(uint64_t id) { return ioctl(g.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0; }

enum verdict notify_answer_now(struct notif_ctx *ctx, int64_t val, int error) {
  ctx->resp->flags = 0;
  ctx->resp->val = error ? -1 : val;
  ctx->resp->error = error ? -error : 0;
  return VERDICT_ANSWERED;
}

/* ---- deferred answers ----
 * Held in one list under their own lock and named by a handle rather than a pointer, so
 * an owner replying late (Node's answer, a timeout) to an answer dropped meanwhile (its
 * process died) finds nothing instead of freed memory. */

struct deferred {
  uint64_t handle;
  uint64_t id;          /* the notification */
  pid_t tid;
  struct proc *proc;    /* holds a trace reference until answered or dropped */
  struct deferred *next;
};

static pthread_mutex_t deferred_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deferred *deferred_list;
static uint64_t next_handle = 1;
static size_t deferred_open;
static uint64_t deferred_answered, deferred_dropped;

uint64_t notify_defer(struct notif_ctx *ctx) {
  struct deferred *d = calloc(1, sizeof *d);
  if (!d) {
    problem(PROBLEM_NO_MEMORY);
    return 0;
  }
  d->id = ctx->req->id;
  d->tid = (pid_t)ctx->req->pid;
  d->proc = ctx->proc;
  if (d->proc) trace_hold(d->proc);
  pthread_mutex_lock(&deferred_lock);
  d->handle = next_handle++;
  d->next = deferred_list;
  deferred_list = d;
  deferred_open++;
  pthread_mutex_unlock(&deferred_lock);
  ctx->deferred = true;
  return d->handle;
}

static struct deferred *take(uint64_t handle, struct proc *of) {
  pthread_mutex_lock(&deferred_lock);
  struct deferred **pp = &deferred_list, *d = NULL;
  for (; *pp; pp = &(*pp)->next) {
    if ((handle && (*pp)->handle == handle) || (!handle && (*pp)->proc == of)) {
      d = *pp;
      *pp = d->next;
      deferred_open--;
      break;
    }
  }
  pthread_mutex_unlock(&deferred_lock);
  return d;
}

static void release(struct deferred *d, bool answered) {
  pthread_mutex_lock(&deferred_lock);
  if (answered) deferred_answered++;
  else deferred_dropped++;
  pthread_mutex_unlock(&deferred_lock);
  if (d->proc) trace_release(d->proc);
  free(d);
}

bool notify_reply(uint64_t handle, int64_t val, int error, bool continue_call) {
  struct deferred *d = take(handle, NULL);
  if (!d) return false; /* dropped already: its process ended */
  struct seccomp_notif_resp resp = { .id = d->id };
  if (continue_call) resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  else if (error) resp.val = -1, resp.error = -error;
  else resp.val = val;
  /* ENOENT: the target was killed meanwhile (only a fatal signal ends the wait) */
  bool sent = ioctl(g.listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0;
  release(d, sent);
  return sent;
}

void notify_drop_process(struct proc *p) {
  struct deferred *d;
  while ((d = take(0, p))) release(d, false);
}

void notify_deferred_stats(size_t *open, uint64_t *answered, uint64_t *dropped) {
  pthread_mutex_lock(&deferred_lock);
  *open = deferred_open;
  *answered = deferred_answered;
  *dropped = deferred_dropped;
  pthread_mutex_unlock(&deferred_lock);
}

/* ---- the loop ---- */

/* Whether no process uses the filter any more (the tree has ended): the listener then
 * polls as hung up, and RECV fails with ENOENT at once, every time, instead of blocking.
 * A thread that kept calling it would spin until pid 1 exits; under a real-time policy
 * that spin starves pid 1 itself of the CPU it needs to finish. */
static bool filter_unused(void) {
  struct pollfd pfd = { .fd = g.listener, .events = POLLIN };
  return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLHUP);
}

/* The shim of a new image asking to start it: the exec that made the image succeeded. */
static bool exec_started(const struct seccomp_notif *req) {
  return req->data.nr == UWRX_SYS_CONTROL && req->data.args[0] == UWRX_CTL_EXEC_START &&
         req->data.args[5] == UWRX_CONTROL_MAGIC;
}

/* ---- whose turn it is to receive ----
 * Every thread blocked in SECCOMP_IOCTL_NOTIF_RECV wakes for each notification (the
 * kernel's wait there is not exclusive). With all handler threads blocked there, each
 * call woke every one of them on the caller's CPU; all but one went back to sleep, and
 * one pulled to an idle CPU often took the call there, so that the answer (SYNC_WAKE_UP)
 * moved the calling process to that CPU too: a short process then ran on both CPUs and
 * its exit had to flush the other CPU's TLB by IPI. So one thread at a time waits in
 * RECV and the others park. The receiver offers the turn to a parked thread when more
 * notifications wait than it took, and so does a handler about to block
 * (notify_may_block). A slow call nobody announced is caught by the watcher, one parked
 * thread that takes the turn when the receiver has been in one call for STUCK_NS.
 *
 * The watcher sleeps on a timer that the receiver sets STUCK_NS ahead each time it
 * takes a call, so it wakes only when no call started for that long: when the receiver
 * is stuck, or once after the last call of a burst. Every wake-up of a thread costs,
 * and most on a paravirtualized guest: a watcher that looked every 2 ms and took the
 * turn whenever the receiver was in any call made the two threads swap roles hundreds
 * of times a second in a storm of short processes, and one looking on a tick woke
 * dozens of times a second through a long build. Setting the timer is a system call of
 * about 1.5 us per call taken. */

static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond; /* parked threads other than the watcher */
static bool receiving;    /* a thread waits in RECV or is about to */
static bool turn_offered; /* the turn is free and a parked thread was asked to take it */
static int parked;
static bool watching;       /* a parked thread waits on the watch timer */
static bool receivers_done; /* the tree has ended */
static uint64_t call_taken_ns; /* when the receiver took the call it is in */
static int watch_timer = -1;   /* timerfd (CLOCK_BOOTTIME, now_ns's clock) */
static uint64_t watch_deadline_ns; /* when the armed timer fires; 0: at once, or disarmed */
static int handler_threads;
#define STUCK_NS 10000000L

/* Sets the watch timer to fire at `deadline` (now_ns's clock; 1: at once). turn_lock held. */
static void watch_timer_at(uint64_t deadline) {
  struct itimerspec t = { .it_value = { (time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u) } };
  watch_deadline_ns = deadline > 1 ? deadline : 0;
  timerfd_settime(watch_timer, TFD_TIMER_ABSTIME, &t, NULL);
}

/* The receiver took a call at `taken`: the watcher is to look STUCK_NS later. The timer is
 * moved only when it would fire less than half of that after `taken`: in a storm of calls
 * it moves every STUCK_NS / 2 rather than at each call (a system call of about 1.5 us),
 * and still never fires while calls keep starting. One that fires early finds the
 * receiver not yet stuck and sets it for the rest (take_turn). turn_lock held. */
static void watch_timer_push(uint64_t taken) {
  if (watch_deadline_ns >= taken + STUCK_NS / 2) return;
  watch_timer_at(taken + STUCK_NS);
}

/* Whether a notification waits that no thread has received. */
static bool notification_waiting(void) {
  struct pollfd pfd = { .fd = g.listener, .events = POLLIN };
  return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

/* Waits for this thread's turn to receive; false once the tree has ended. */
static bool take_turn(void) {
  pthread_mutex_lock(&turn_lock);
  bool watcher = false;
  while (!receivers_done) {
    /* a thread back from its call takes a free turn; the watcher one offered to it, or
     * the turn of a receiver stuck in its call */
    if (!receiving && (!watcher || turn_offered || now_ns() - call_taken_ns >= (uint64_t)STUCK_NS)) break;
    parked++;
    if (!watching) watching = watcher = true;
    if (watcher) {
      pthread_mutex_unlock(&turn_lock);
      uint64_t expirations;
      if (read(watch_timer, &expirations, sizeof expirations) < 0 && errno != EINTR && errno != EAGAIN) {
        /* no timer to wait on: look every STUCK_NS instead */
        struct timespec pause = { 0, STUCK_NS };
        nanosleep(&pause, NULL);
      }
      pthread_mutex_lock(&turn_lock);
      /* fired before the receiver's call is STUCK_NS old: again for the rest */
      if (!receiving && !turn_offered && !receivers_done && now_ns() - call_taken_ns < (uint64_t)STUCK_NS)
        watch_timer_at(call_taken_ns + STUCK_NS);
    } else {
      pthread_cond_wait(&turn_cond, &turn_lock);
    }
    parked--;
  }
  if (watcher) {
    /* another parked thread watches from now on */
    watching = false;
    if (parked > 0) pthread_cond_signal(&turn_cond);
  }
  bool go = !receivers_done;
  if (go) {
    receiving = true;
    turn_offered = false;
  }
  pthread_mutex_unlock(&turn_lock);
  return go;
}

/* Asks a parked thread to take the free turn. turn_lock held. */
static void offer_turn(void) {
  /* (the watcher is the one parked thread that does not wait on turn_cond) */
  int others = parked - (watching ? 1 : 0);
  turn_offered = true;
  if (others > 0) pthread_cond_signal(&turn_cond);
  else watch_timer_at(1);
}

/* ---- notifications counted by system call: where the notification path's time goes
 * (the run's status.json) ---- */

static const char *const syscall_names[] = {
#include "syscall_names.inc"
};
#define NAMED_SYSCALLS (sizeof syscall_names / sizeof syscall_names[0])
/* one slot per named call, then the control call, then every other number; with the
 * time the handler threads spent on them, from taking each call to sending its answer
 * (or handing it to whoever answers later): where the waits of a process on uwrx-init
 * go. The send itself is left out: with the synchronous wake-up it runs the target. */
static uint64_t by_call[NAMED_SYSCALLS + 2];
static uint64_t ns_by_call[NAMED_SYSCALLS + 2];

static size_t call_slot(int nr) {
  return nr >= 0 && (size_t)nr < NAMED_SYSCALLS && syscall_names[nr] ? (size_t)nr
         : nr == UWRX_SYS_CONTROL                                     ? NAMED_SYSCALLS
                                                                      : NAMED_SYSCALLS + 1;
}

/* Calls of this kind took the handler threads less than QUICK_NS each on average, over
 * at least QUICK_SEEN of them (a loop of stdout writes: 0.13 us). One that takes longer
 * this time delays the next notification by as long, the watcher's STUCK_NS at most. */
#define QUICK_NS 2000
#define QUICK_SEEN 16
static bool quick_call(size_t slot) {
  uint64_t n = __atomic_load_n(&by_call[slot], __ATOMIC_RELAXED);
  return n >= QUICK_SEEN && __atomic_load_n(&ns_by_call[slot], __ATOMIC_RELAXED) < n * QUICK_NS;
}

/* Called after RECV returned: the turn is free; a parked thread takes it at once when
 * more notifications wait, unless this call is `quick` (its kind is usually answered in
 * less time than asking the listener whether more wait, a poll of about 0.35 us, would
 * save the next one); the watcher's timer runs from this call. Returns when it was taken. */
static uint64_t end_turn(bool done, bool quick) {
  uint64_t taken = 0;
  pthread_mutex_lock(&turn_lock);
  receiving = false;
  if (done) {
    receivers_done = true;
    pthread_cond_broadcast(&turn_cond);
    watch_timer_at(1);
  } else {
    taken = call_taken_ns = now_ns();
    if (parked > 0 && !quick && notification_waiting()) offer_turn();
    /* (also without a watcher yet: the thread that becomes one waits on this) */
    else if (handler_threads > 1) watch_timer_push(call_taken_ns);
  }
  pthread_mutex_unlock(&turn_lock);
  return taken;
}

void notify_may_block(void) {
  pthread_mutex_lock(&turn_lock);
  if (!receiving && !turn_offered && parked > 0) offer_turn();
  pthread_mutex_unlock(&turn_lock);
}

size_t notify_counts(const char **names, uint64_t *counts, uint64_t *ns, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < NAMED_SYSCALLS + 2 && n < cap; i++) {
    uint64_t c = __atomic_load_n(&by_call[i], __ATOMIC_RELAXED);
    if (!c) continue;
    names[n] = i < NAMED_SYSCALLS ? syscall_names[i] : i == NAMED_SYSCALLS ? "uwrx_control" : "other";
    ns[n] = __atomic_load_n(&ns_by_call[i], __ATOMIC_RELAXED);
    counts[n++] = c;
  }
  return n;
}

/* ---- work after the answer ---- */

static unsigned after_left;

void notify_after(struct notif_ctx *ctx, void (*fn)(void *), void *arg) {
  __atomic_add_fetch(&after_left, 1, __ATOMIC_SEQ_CST);
  ctx->after = fn;
  ctx->after_arg = arg;
}

void notify_after_cancel(struct notif_ctx *ctx) {
  if (!ctx->after) return;
  ctx->after = NULL;
  __atomic_sub_fetch(&after_left, 1, __ATOMIC_SEQ_CST);
}

void notify_after_drain(void) {
  for (int i = 0; i < 1000 && __atomic_load_n(&after_left, __ATOMIC_SEQ_CST) > 0; i++) usleep(1000);
}

static void *handler_thread(void *arg) {
  (void)arg;
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
  struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
  if (!req || !resp) return NULL;
  while (take_turn()) {
    /* RECV blocks until a notification is posted; one whose target vanished before we
     * took it makes RECV fail with ENOENT (kernel/seccomp.c, checked on 6.18), so no poll
     * is needed first. An idle receiver stays blocked here while the tree runs. */
    memset(req, 0, sizes.seccomp_notif);
    if (ioctl(g.listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      bool retry = errno == EINTR || (errno == ENOENT && !filter_unused());
      end_turn(!retry, false);
      if (retry) continue;
      break;
    }
    size_t slot = call_slot(req->data.nr);
    uint64_t taken = end_turn(false, quick_call(slot));
    __atomic_add_fetch(&by_call[slot], 1, __ATOMIC_RELAXED);
    memset(resp, 0, sizes.seccomp_notif_resp);
    resp->id = req->id;
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    struct notif_ctx ctx = { .req = req, .resp = resp, .proc = NULL, .memfd = -1 };
    struct first_sight seen = { .pidfd = -1 };
    bool first = false;
    pthread_mutex_lock(&g.lock);
    if (!procs_find(req->pid) && !g.finishing) {
      /* a new process: its /proc reads need no lock (the rest of the table does) */
      pthread_mutex_unlock(&g.lock);
      procs_first_sight(req->pid, &seen);
      first = true;
      pthread_mutex_lock(&g.lock);
    }
    /* taken under the lock: with several handler threads, processes are registered (and
     * numbered) in the order of their start times */
    ctx.time = now_ns();
    ctx.proc = procs_get(req->pid, req->id, ctx.time, first ? &seen : NULL);
    if (ctx.proc) trace_hold(ctx.proc);
    if (ctx.proc && ctx.proc->exec) procs_check_exec(ctx.proc, req->pid, exec_started(req));
    pthread_mutex_unlock(&g.lock);
    if (first) procs_first_sight_free(&seen);
    if (ctx.proc) features_call(&ctx);
    enum verdict v = features_dispatch(&ctx);
    if (ctx.proc) trace_release(ctx.proc);
    if (ctx.memfd >= 0) close(ctx.memfd);
    uint64_t answered = ctx.answering ? ctx.answering : now_ns();
    __atomic_add_fetch(&ns_by_call[slot], answered - taken, __ATOMIC_RELAXED);
    if (!((v == VERDICT_PENDING && ctx.deferred) || ctx.sent)) {
      if (v != VERDICT_ANSWERED) {
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        resp->val = resp->error = 0;
      }
      /* ENOENT: the target was interrupted or died meanwhile; nothing to answer */
      ioctl(g.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    if (ctx.after) {
      ctx.after(ctx.after_arg);
      __atomic_sub_fetch(&after_left, 1, __ATOMIC_SEQ_CST);
    }
    /* after the answer, which does not wait for it */
    target_paths_forget(&ctx);
  }
  free(req);
  free(resp);
  return NULL;
}

bool notify_start(int listener, int threads) {
  g.listener = listener;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&turn_cond, &ca);
  pthread_condattr_destroy(&ca);
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return false;
  watch_timer = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
  uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
  /* best effort: without it a round trip costs a cross-CPU wake-up (kernel < 6.6) */
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags);
  handler_threads = threads;
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, handler_thread, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) return i > 0;
  }
  return true;
}
