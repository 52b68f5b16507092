/* Deterministic time (DESIGN.md section 4), the C half; the TypeScript half is
 * src/reproducibility/time.ts. Pure functions: the answer to a clock query depends only
 * on the configuration, the clock and the number of earlier queries of the process.
 *
 * Modes:
 *   advancing (default) every query of a process advances that process's clock by
 *                       step_ns: query n (0-based, all clocks and calls counted together)
 *                       reads base + n * step_ns
 *   frozen              every query reads base
 *   real                the kernel answers (the handler lets the syscall run)
 * base is T0 + wall_offset_ns for wall clocks (REALTIME, REALTIME_COARSE, REALTIME_ALARM,
 * TAI): uwrx-init starts them where it squashes this attempt's file times
 * (uwrx_time_wall_offset), so files a build writes never look newer than its clock,
 * UWRX_TIME_MONOTONIC_BASE_NS for MONOTONIC, MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME
 * and BOOTTIME_ALARM (a fixed "uptime", so the host's uptime does not leak), and 0 for
 * CPU-time clocks (PROCESS_CPUTIME_ID, THREAD_CPUTIME_ID, and the negative per-pid /
 * per-thread CPU clock ids). Clock ids uwrx does not fake (dynamic fd clocks such as PTP
 * devices, unknown ids) go to the kernel, which also reports invalid ids. */
#ifndef UWRX_DETTIME_H
#define UWRX_DETTIME_H

#include <stdint.h>

enum uwrx_time_mode {
  UWRX_TIME_ADVANCING = 0,
  UWRX_TIME_FROZEN = 1,
  UWRX_TIME_REAL = 2,
};

#define UWRX_TIME_DEFAULT_STEP_NS 1000000LL /* 1 ms per query */
#define UWRX_TIME_MONOTONIC_BASE_NS 100000000000LL /* 100 s */

typedef struct {
  int mode;        /* enum uwrx_time_mode */
  int64_t t0_ns;   /* wall-clock start of the attempt, ns since the epoch */
  int64_t step_ns; /* advancing mode: per query */
  int64_t wall_offset_ns; /* wall clocks start at t0_ns + wall_offset_ns */
} uwrx_time_config;

/* The offset of an attempt with `layers` parent layers whose stat times are squashed
 * `interval_ns` apart: its own files read T0 + (layers + 1) * interval_ns. */
static inline int64_t uwrx_time_wall_offset(int layers, int64_t interval_ns) {
  return (int64_t)(layers + 1) * interval_ns;
}

/* The answer to query number `query` of a process on clock_gettime(clock_id).
 * 1: *ns holds the answer. 0: let the kernel answer (real mode or a clock not faked). */
int uwrx_time_clock_ns(const uwrx_time_config *c, uint64_t query, int32_t clock_id,
                       int64_t *ns);

/* The same, for the process's next query: *counter is the process's query count and
 * advances when uwrx answers. */
static inline int uwrx_time_next_clock_ns(const uwrx_time_config *c, uint64_t *counter,
                                          int32_t clock_id, int64_t *ns) {
  int answered = uwrx_time_clock_ns(c, *counter, clock_id, ns);
  if (answered) (*counter)++;
  return answered;
}

/* gettimeofday and time read CLOCK_REALTIME, truncated to microseconds / seconds.
 * Same return convention. */
int uwrx_time_gettimeofday(const uwrx_time_config *c, uint64_t query, int64_t *sec,
                           int64_t *usec);
int uwrx_time_time(const uwrx_time_config *c, uint64_t query, int64_t *sec);

#endif
