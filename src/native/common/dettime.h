/* Deterministic time (DESIGN.md section 4, docs/reproducibility.md), the C half; the
 * TypeScript half is src/reproducibility/time.ts and both are checked against
 * test/fixtures/time-vectors.json. Pure functions over plain state: a process's clocks
 * (uwrx_clock) and a thread's pending timed wait (uwrx_wait). Neither holds a pointer,
 * so either can live in uwrx-init's tables or in memory shared with the process.
 *
 * Every process has one virtual time, `now_ns`, on an axis shared by the whole attempt
 * (0 = the command's start). Its clocks read:
 *   wall clocks (REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI)  t0 + wall_offset + now
 *   monotonic clocks (MONOTONIC, _RAW, _COARSE, BOOTTIME, _ALARM) UWRX_TIME_MONOTONIC_BASE_NS + now
 *   CPU-time clocks (PROCESS_/THREAD_CPUTIME_ID, per-pid ids)    cpu_ns
 * Clock ids uwrx does not fake (fd clocks such as PTP devices, unknown ids) go to the
 * kernel, which also reports invalid ids.
 *
 * How the clocks move (mode advancing, the default):
 *   - each answered read advances now and cpu by step_ns (after answering), so a busy
 *     loop polling a clock sees time pass;
 *   - a timed wait (sleep, poll, futex ...) advances now by the time waited: when the
 *     thread shows up again, a wait whose real deadline has passed timed out and moves
 *     now to its virtual deadline; one that ended before (an event, a signal) moves now
 *     by step_ns only, the same whatever the real delay was;
 *   - a child starts at its parent's now at fork plus an offset in [1, FORK_SPREAD]
 *     drawn from its own random stream, so concurrent processes never read equal
 *     clocks; cpu starts at 0;
 *   - a parent that reaps a child moves to at least the child's end (causality), and
 *     counts the child's CPU time as its children's.
 * frozen: every read returns the clock's base (now and cpu stay 0). real: the kernel
 * answers everything. */
#ifndef UWRX_DETTIME_H
#define UWRX_DETTIME_H

#include <stddef.h>
#include <stdint.h>

enum uwrx_time_mode {
  UWRX_TIME_ADVANCING = 0,
  UWRX_TIME_FROZEN = 1,
  UWRX_TIME_REAL = 2,
};

#define UWRX_TIME_DEFAULT_STEP_NS 10000LL           /* 10 us per read */
#define UWRX_TIME_MONOTONIC_BASE_NS 100000000000LL  /* 100 s of "uptime" */
#define UWRX_TIME_FORK_SPREAD_NS 1000000LL          /* a child starts up to 1 ms later */

typedef struct {
  int mode;               /* enum uwrx_time_mode */
  int64_t t0_ns;          /* wall-clock start of the attempt, ns since the epoch */
  int64_t step_ns;        /* advancing mode: per read, and per wait that ended early */
  int64_t wall_offset_ns; /* wall clocks start at t0_ns + wall_offset_ns */
} uwrx_time_config;

/* A process's clocks; kept across exec. */
typedef struct {
  int64_t now_ns;          /* virtual time on the attempt's axis */
  int64_t cpu_ns;          /* virtual CPU time of the process */
  int64_t children_cpu_ns; /* CPU time of the children it reaped */
} uwrx_clock;

/* A thread's timed wait in progress; real times on the supervisor's monotonic clock. */
typedef struct {
  int64_t real_deadline_ns;    /* when the wait times out */
  int64_t virtual_deadline_ns; /* now_ns of the process when it times out */
  int32_t active;
  int32_t reserved;
} uwrx_wait;

/* A process's timer (alarm/setitimer ITIMER_REAL, a timerfd): the kernel fires it in
 * real time; when the process shows up after an expiry, its time moves to that expiry,
 * as for a wait that timed out. Real times on the supervisor's monotonic clock. */
typedef struct {
  int64_t real_deadline_ns;    /* next expiry */
  int64_t virtual_deadline_ns; /* now_ns of the process at that expiry */
  int64_t interval_ns;         /* 0: one shot */
  int32_t active;
  int32_t key;                 /* which timer (the caller's naming) */
} uwrx_timer;

/* The offset of an attempt with `layers` parent layers whose stat times are squashed
 * `interval_ns` apart: its own files read T0 + (layers + 1) * interval_ns. */
static inline int64_t uwrx_time_wall_offset(int layers, int64_t interval_ns) {
  return (int64_t)(layers + 1) * interval_ns;
}

/* 1 when uwrx answers reads of `clock_id` in this mode, 0 when the kernel does. */
int uwrx_time_faked(const uwrx_time_config *c, int32_t clock_id);

/* The current value of `clock_id` without moving the clocks. Return as uwrx_time_faked. */
int uwrx_time_peek(const uwrx_time_config *c, const uwrx_clock *k, int32_t clock_id, int64_t *ns);

/* A read of `clock_id` (clock_gettime): the answer, then the clocks advance.
 * 1: *ns holds the answer. 0: let the kernel answer (nothing moves). */
int uwrx_time_read(const uwrx_time_config *c, uwrx_clock *k, int32_t clock_id, int64_t *ns);

/* The clocks after `n` more reads (negative: before them): what n calls of
 * uwrx_time_read do to `k`. Reads answered in process are folded in with it. */
void uwrx_time_after_reads(const uwrx_time_config *c, uwrx_clock *k, int64_t n);

/* gettimeofday and time read CLOCK_REALTIME, truncated to microseconds / seconds. */
int uwrx_time_gettimeofday(const uwrx_time_config *c, uwrx_clock *k, int64_t *sec, int64_t *usec);
int uwrx_time_time(const uwrx_time_config *c, uwrx_clock *k, int64_t *sec);

/* times(): out[0] the return value (ticks of a monotonic clock), out[1..4] tms_utime,
 * tms_stime, tms_cutime, tms_cstime, in ticks of `tick_ns`. getrusage(): the user time
 * of the process (`children` 0) or of its reaped children (1); system time reads 0.
 * Each counts as a read. Return as uwrx_time_read. */
int uwrx_time_times(const uwrx_time_config *c, uwrx_clock *k, int64_t tick_ns, int64_t out[5]);
int uwrx_time_rusage(const uwrx_time_config *c, uwrx_clock *k, int children, int64_t *user_ns,
                     int64_t *sys_ns);

/* A change of the clocks the in-process recorder made between its reads (uwrx_recorder.h,
 * "clock events"): the end of a timed wait, as uwrx_time_wait_end moves the clocks. It
 * takes a place in the sequence of reads the recorder counts, so that uwrx-init, folding
 * the count, applies it exactly where it happened. 16 bytes: a header holds several. */
typedef struct {
  uint64_t place;              /* bits 0-62: the place in the count (0-based); bit 63:
                                * UWRX_CLOCK_EVENT_TIMED_OUT, the wait reached its real deadline */
  int64_t virtual_deadline_ns; /* the wait's, from uwrx_time_wait_relative at its start */
} uwrx_clock_event;
#define UWRX_CLOCK_EVENT_TIMED_OUT (1ULL << 63)

static inline uint64_t uwrx_clock_event_pos(const uwrx_clock_event *e) { return e->place & ~UWRX_CLOCK_EVENT_TIMED_OUT; }

/* The clocks after event `e` (at its place: nothing moves for the place itself). */
void uwrx_time_event(const uwrx_time_config *c, uwrx_clock *k, const uwrx_clock_event *e);

/* The clocks after the reads and events at places [from, to) of a process's count:
 * `events` (sorted by pos) are those at their places, every other place a read. Events
 * outside [from, to) are skipped. What uwrx-init folds and the recorder answers with.
 * `before_event` (NULL: none) is called with `arg` and an event's place just before the
 * event moves `k` (uwrx-init marks the clock there for children forked around it). */
void uwrx_time_replay(const uwrx_time_config *c, uwrx_clock *k, uint64_t from, uint64_t to,
                      const uwrx_clock_event *events, size_t n, void (*before_event)(void *arg, uint64_t pos),
                      void *arg);

/* A thread starts a wait of at most `timeout_ns` (relative) at real time `real_now_ns`.
 * A timeout <= 0 is no wait. */
void uwrx_time_wait_relative(const uwrx_time_config *c, const uwrx_clock *k, uwrx_wait *w,
                             int64_t real_now_ns, int64_t timeout_ns);

/* A thread starts a wait until `deadline_ns` on `clock_id` (an absolute deadline the
 * program computed from the virtual clock). 1: the wait is tracked and *remaining_ns is
 * how long it lasts from now (>= 0): the caller makes the kernel wait that long on the
 * real clock. 0: a clock left to the kernel; nothing tracked. */
int uwrx_time_wait_absolute(const uwrx_time_config *c, const uwrx_clock *k, uwrx_wait *w,
                            int64_t real_now_ns, int32_t clock_id, int64_t deadline_ns,
                            int64_t *remaining_ns);

/* The thread that waited shows up again at real time `real_now_ns`: the wait ended.
 * Moves the process's clock as described above; no-op without a wait. Returns 1 when the
 * wait counted as timed out. */
int uwrx_time_wait_end(const uwrx_time_config *c, uwrx_clock *k, uwrx_wait *w, int64_t real_now_ns);

/* Arms `t` to expire `value_ns` from now (<= 0: disarms), then every `interval_ns`. */
void uwrx_time_timer_set(const uwrx_time_config *c, const uwrx_clock *k, uwrx_timer *t,
                         int64_t real_now_ns, int64_t value_ns, int64_t interval_ns);

/* The process shows up at `real_now_ns`: if `t` expired meanwhile, its time moves to the
 * last expiry and the timer to the next one. Returns 1 when it expired. */
int uwrx_time_timer_fire(const uwrx_time_config *c, uwrx_clock *k, uwrx_timer *t, int64_t real_now_ns);

/* A new process forked from `parent` (NULL: the command, or a process uwrx did not see
 * the parent of; it starts at 0); `random` is the first 8 bytes (little-endian) of the
 * child's UWRX_PRNG_CLOCK stream. */
void uwrx_time_fork(const uwrx_time_config *c, const uwrx_clock *parent, uint64_t random,
                    uwrx_clock *child);

/* `parent` reaped `child`, whose clocks ended at `child`. */
void uwrx_time_join(const uwrx_time_config *c, uwrx_clock *parent, const uwrx_clock *child);

/* ns <-> (sec, nsec) with nsec in [0, 1e9), for timespecs. */
int64_t uwrx_time_floor_div(int64_t a, int64_t b);
/* sec * 1e9 + nsec, saturating at INT64_MAX / INT64_MIN. */
int64_t uwrx_time_ns_of(int64_t sec, int64_t nsec);

#endif
