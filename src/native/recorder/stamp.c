/* The times of the recorder's records without a system call for each.
 *
 * A record's time is CLOCK_BOOTTIME, the clock uwrx-init's trace buffers use, so the
 * merger puts both in one order. The recorder cannot read it through the vDSO (the shim
 * hides it, and its fallback system call would be answered with the process's virtual
 * clock), so every record cost a clock_gettime from the gate: a third of the system
 * calls of an in-process stat (find, docs/benchmarks.md).
 *
 * Between real reads a thread now extends its last real read with the time stamp
 * counter: it reads the real clock again at least every STAMP_SPAN_NS, and takes the
 * counter's rate from its first real read to its latest. A real read whose counter
 * values before and after lie more than STAMP_READ_NS apart (the thread was preempted
 * in between) gives its time to the record but is no such point, so each point is
 * within a microsecond of the clock. Until the baseline is at least STAMP_BASE_NS long
 * every time is a real read, as before (a short process never gets that far); after,
 * the rate is within 0.02% and an extended time within about a microsecond of the
 * clock, well inside the round trip of a notified call, so records of the two paths
 * keep their order.
 *
 * The counter is used only where it runs at one rate in every power state (CPUID
 * 0x80000007 EDX bit 8, "invariant TSC"), only while each real read confirms it (within
 * STAMP_STRAY_NS of what it predicted), and never in a thread that made rdtsc fault
 * (prctl PR_SET_TSC: asked once per thread, once it has recorded for STAMP_START_NS,
 * and the recorder's prctl notes a later change; a raw prctl system call that makes
 * rdtsc fault is not seen).
 *
 * State is per thread (a forked child's copy stays right: same counter, same clock). A
 * signal handler that records while its thread is in here reads the real clock and
 * leaves the state alone. */
#include "stamp.h"

#include <cpuid.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#define STAMP_START_NS 1000000ull  /* a thread's recording time before the counter is looked at */
#define STAMP_SPAN_NS 500000ull    /* longest extension of a real read */
#define STAMP_BASE_NS 10000000ull  /* shortest baseline for the counter's rate */
#define STAMP_READ_NS 2000ull      /* a real read taking longer was interrupted */
#define STAMP_READ_TICKS 10000ull  /* the same before the rate is known (2 us at 5 GHz) */
#define STAMP_STRAY_NS 5000ull     /* the counter's largest allowed miss of a real read */

enum { COUNTER_UNKNOWN, COUNTER_YES, COUNTER_NO };
/* in .data: the page ld.so writes when it loads the library, not a .bss page of its own */
static int counter __attribute__((section(".data"))) = COUNTER_UNKNOWN; /* atomic */

static __thread struct stamp_state {
  int busy;
  int started;                /* recording for STAMP_START_NS: the counter was checked */
  uint64_t first_ns;          /* the thread's first real read */
  uint64_t base_tsc, base_ns; /* first real read of the thread (base_tsc 0: none yet) */
  uint64_t at_tsc, at_ns;     /* latest real read */
  uint64_t span_ticks;        /* STAMP_SPAN_NS in ticks; 0 until the rate is known */
  uint64_t rate;              /* ns per tick, 32.32 fixed point */
  uint64_t last_ns;
} S __attribute__((tls_model("initial-exec")));

void rec_stamp_no_counter(void) { __atomic_store_n(&counter, COUNTER_NO, __ATOMIC_RELAXED); }

static bool invariant_counter(void) {
  int c = __atomic_load_n(&counter, __ATOMIC_RELAXED);
  if (c == COUNTER_UNKNOWN) {
    unsigned a, b, cx, d;
    c = __get_cpuid(0x80000007, &a, &b, &cx, &d) && (d & (1u << 8)) ? COUNTER_YES : COUNTER_NO;
    int expected = COUNTER_UNKNOWN;
    __atomic_compare_exchange_n(&counter, &expected, c, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    c = __atomic_load_n(&counter, __ATOMIC_RELAXED);
  }
  return c == COUNTER_YES;
}

static inline uint64_t ticks(void) {
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* (a * b) >> 32 without overflow for a < 2^63 */
static inline uint64_t mul_q32(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 32); }

static uint64_t clock_ns(long (*sys)(long, long, long, long, long, long, long)) {
  struct timespec ts;
  sys(SYS_clock_gettime, CLOCK_BOOTTIME, (long)&ts, 0, 0, 0, 0);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A real read; it becomes the thread's latest (and sets the rate) when nothing
 * interrupted it. */
static uint64_t real_read(struct stamp_state *s, long (*sys)(long, long, long, long, long, long, long)) {
  if (__atomic_load_n(&counter, __ATOMIC_RELAXED) == COUNTER_NO) return clock_ns(sys);
  if (!s->started) {
    /* A thread that records for less than STAMP_START_NS (most processes) never needs
     * the counter: it asks nothing more (cpuid is a VM exit under a hypervisor). */
    uint64_t ns = clock_ns(sys);
    if (!s->first_ns) s->first_ns = ns;
    if (ns - s->first_ns < STAMP_START_NS) return ns;
    s->started = 1;
    /* rdtsc made to fault before the recorder ran (inherited over fork and exec) */
    int mode = 0;
    if (invariant_counter() && (sys(SYS_prctl, PR_GET_TSC, (long)&mode, 0, 0, 0, 0) != 0 || mode != PR_TSC_ENABLE))
      rec_stamp_no_counter();
    return ns;
  }
  if (__atomic_load_n(&counter, __ATOMIC_RELAXED) != COUNTER_YES) return clock_ns(sys);
  uint64_t t0 = ticks();
  uint64_t ns = clock_ns(sys);
  uint64_t t1 = ticks();
  if (t1 < t0) return ns;
  uint64_t mid = t0 + (t1 - t0) / 2;
  /* an interrupted read: its two counter values lie too far apart */
  if (s->span_ticks ? mul_q32(t1 - t0, s->rate) > STAMP_READ_NS : t1 - t0 > STAMP_READ_TICKS) return ns;
  /* The counter must keep the clock's pace: one that runs backwards, or (past the
   * calibration) strays from the clock between two reads close together, is not
   * used again in this process image (counters that differ between CPUs, a suspend). */
  bool strayed = s->base_tsc && mid < s->at_tsc;
  if (!strayed && s->span_ticks && mid - s->at_tsc < 2 * s->span_ticks) {
    uint64_t predicted = s->at_ns + mul_q32(mid - s->at_tsc, s->rate);
    strayed = (predicted > ns ? predicted - ns : ns - predicted) > STAMP_STRAY_NS;
  }
  if (strayed) {
    rec_stamp_no_counter();
    return ns;
  }
  if (!s->base_tsc) {
    s->base_tsc = mid;
    s->base_ns = ns;
  } else if (mid > s->base_tsc && ns > s->base_ns && ns - s->base_ns >= STAMP_BASE_NS) {
    uint64_t dt = mid - s->base_tsc, dns = ns - s->base_ns;
    if (dns < (1ull << 31)) s->rate = (dns << 32) / dt;
    else s->rate = (uint64_t)(((unsigned __int128)dns << 32) / dt);
    s->span_ticks = s->rate ? (uint64_t)(((unsigned __int128)STAMP_SPAN_NS << 32) / s->rate) : 0;
  }
  s->at_tsc = mid;
  s->at_ns = ns;
  return ns;
}

uint64_t rec_stamp_now(long (*sys)(long, long, long, long, long, long, long)) {
  struct stamp_state *s = &S;
  if (s->busy) return clock_ns(sys);
  s->busy = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  uint64_t ns = 0;
  bool extended = false;
  if (s->span_ticks && __atomic_load_n(&counter, __ATOMIC_RELAXED) == COUNTER_YES) {
    uint64_t t = ticks();
    if (t >= s->at_tsc && t - s->at_tsc < s->span_ticks) {
      ns = s->at_ns + mul_q32(t - s->at_tsc, s->rate);
      extended = true;
    }
  }
  if (!extended) ns = real_read(s, sys);
  if (ns < s->last_ns) ns = s->last_ns;
  s->last_ns = ns;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  s->busy = 0;
  return ns;
}
