/* Deterministic clock answers; see dettime.h. */
#include "dettime.h"

enum clock_kind { CLOCK_KIND_PASS, CLOCK_KIND_WALL, CLOCK_KIND_MONOTONIC, CLOCK_KIND_CPU };

static enum clock_kind kind_of(int32_t id) {
  if (id < 0) {
    /* Dynamic ids (~pid << 3 | flags): low 2 bits 0-2 name a CPU clock of a process or
     * (bit 2) a thread, 3 an fd clock such as a PTP device. */
    return (id & 3) == 3 ? CLOCK_KIND_PASS : CLOCK_KIND_CPU;
  }
  switch (id) {
  case 0:  /* CLOCK_REALTIME */
  case 5:  /* CLOCK_REALTIME_COARSE */
  case 8:  /* CLOCK_REALTIME_ALARM */
  case 11: /* CLOCK_TAI */
    return CLOCK_KIND_WALL;
  case 1: /* CLOCK_MONOTONIC */
  case 4: /* CLOCK_MONOTONIC_RAW */
  case 6: /* CLOCK_MONOTONIC_COARSE */
  case 7: /* CLOCK_BOOTTIME */
  case 9: /* CLOCK_BOOTTIME_ALARM */
    return CLOCK_KIND_MONOTONIC;
  case 2: /* CLOCK_PROCESS_CPUTIME_ID */
  case 3: /* CLOCK_THREAD_CPUTIME_ID */
    return CLOCK_KIND_CPU;
  default:
    return CLOCK_KIND_PASS;
  }
}

int uwrx_time_clock_ns(const uwrx_time_config *c, uint64_t query, int32_t clock_id,
                       int64_t *ns) {
  if (c->mode != UWRX_TIME_ADVANCING && c->mode != UWRX_TIME_FROZEN) return 0;
  int64_t base;
  switch (kind_of(clock_id)) {
  case CLOCK_KIND_WALL: base = c->t0_ns + c->wall_offset_ns; break;
  case CLOCK_KIND_MONOTONIC: base = UWRX_TIME_MONOTONIC_BASE_NS; break;
  case CLOCK_KIND_CPU: base = 0; break;
  default: return 0;
  }
  *ns = c->mode == UWRX_TIME_FROZEN ? base : base + (int64_t)query * c->step_ns;
  return 1;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int uwrx_time_gettimeofday(const uwrx_time_config *c, uint64_t query, int64_t *sec,
                           int64_t *usec) {
  int64_t ns;
  if (!uwrx_time_clock_ns(c, query, 0, &ns)) return 0;
  *sec = floor_div(ns, 1000000000);
  *usec = (ns - *sec * 1000000000) / 1000;
  return 1;
}

int uwrx_time_time(const uwrx_time_config *c, uint64_t query, int64_t *sec) {
  int64_t ns;
  if (!uwrx_time_clock_ns(c, query, 0, &ns)) return 0;
  *sec = floor_div(ns, 1000000000);
  return 1;
}
