/* Deterministic clocks; see dettime.h. */
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

static int64_t add_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

static int64_t sub_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

int uwrx_time_faked(const uwrx_time_config *c, int32_t clock_id) {
  if (c->mode != UWRX_TIME_ADVANCING && c->mode != UWRX_TIME_FROZEN) return 0;
  return kind_of(clock_id) != CLOCK_KIND_PASS;
}

int uwrx_time_peek(const uwrx_time_config *c, const uwrx_clock *k, int32_t clock_id, int64_t *ns) {
  if (!uwrx_time_faked(c, clock_id)) return 0;
  int frozen = c->mode == UWRX_TIME_FROZEN;
  switch (kind_of(clock_id)) {
  case CLOCK_KIND_WALL: *ns = add_sat(c->t0_ns + c->wall_offset_ns, frozen ? 0 : k->now_ns); break;
  case CLOCK_KIND_MONOTONIC: *ns = add_sat(UWRX_TIME_MONOTONIC_BASE_NS, frozen ? 0 : k->now_ns); break;
  default: *ns = frozen ? 0 : k->cpu_ns; break;
  }
  return 1;
}

int uwrx_time_read(const uwrx_time_config *c, uwrx_clock *k, int32_t clock_id, int64_t *ns) {
  if (!uwrx_time_peek(c, k, clock_id, ns)) return 0;
  if (c->mode == UWRX_TIME_ADVANCING) {
    k->now_ns = add_sat(k->now_ns, c->step_ns);
    k->cpu_ns = add_sat(k->cpu_ns, c->step_ns);
  }
  return 1;
}

void uwrx_time_after_reads(const uwrx_time_config *c, uwrx_clock *k, int64_t n) {
  if (c->mode != UWRX_TIME_ADVANCING || n == 0) return;
  int64_t d;
  if (__builtin_mul_overflow(n, c->step_ns, &d)) d = (n > 0) == (c->step_ns > 0) ? INT64_MAX : INT64_MIN;
  k->now_ns = add_sat(k->now_ns, d);
  k->cpu_ns = add_sat(k->cpu_ns, d);
}

int64_t uwrx_time_floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t uwrx_time_ns_of(int64_t sec, int64_t nsec) {
  int64_t r;
  if (__builtin_mul_overflow(sec, (int64_t)1000000000, &r)) return sec > 0 ? INT64_MAX : INT64_MIN;
  return add_sat(r, nsec);
}

int uwrx_time_gettimeofday(const uwrx_time_config *c, uwrx_clock *k, int64_t *sec, int64_t *usec) {
  int64_t ns;
  if (!uwrx_time_read(c, k, 0, &ns)) return 0;
  *sec = uwrx_time_floor_div(ns, 1000000000);
  *usec = (ns - *sec * 1000000000) / 1000;
  return 1;
}

int uwrx_time_time(const uwrx_time_config *c, uwrx_clock *k, int64_t *sec) {
  int64_t ns;
  if (!uwrx_time_read(c, k, 0, &ns)) return 0;
  *sec = uwrx_time_floor_div(ns, 1000000000);
  return 1;
}

int uwrx_time_times(const uwrx_time_config *c, uwrx_clock *k, int64_t tick_ns, int64_t out[5]) {
  int64_t mono;
  if (tick_ns <= 0 || !uwrx_time_peek(c, k, 1, &mono)) return 0;
  int frozen = c->mode == UWRX_TIME_FROZEN;
  out[0] = mono / tick_ns;
  out[1] = (frozen ? 0 : k->cpu_ns) / tick_ns;
  out[2] = 0;
  out[3] = (frozen ? 0 : k->children_cpu_ns) / tick_ns;
  out[4] = 0;
  uwrx_time_read(c, k, 1, &mono);
  return 1;
}

int uwrx_time_rusage(const uwrx_time_config *c, uwrx_clock *k, int children, int64_t *user_ns,
                     int64_t *sys_ns) {
  int64_t cpu;
  if (!uwrx_time_peek(c, k, 2, &cpu)) return 0;
  *user_ns = c->mode == UWRX_TIME_FROZEN ? 0 : children ? k->children_cpu_ns : k->cpu_ns;
  *sys_ns = 0;
  uwrx_time_read(c, k, 2, &cpu);
  return 1;
}

void uwrx_time_wait_relative(const uwrx_time_config *c, const uwrx_clock *k, uwrx_wait *w,
                             int64_t real_now_ns, int64_t timeout_ns) {
  w->active = 0;
  if (c->mode != UWRX_TIME_ADVANCING || timeout_ns <= 0) return;
  w->active = 1;
  w->real_deadline_ns = add_sat(real_now_ns, timeout_ns);
  w->virtual_deadline_ns = add_sat(k->now_ns, timeout_ns);
}

int uwrx_time_wait_absolute(const uwrx_time_config *c, const uwrx_clock *k, uwrx_wait *w,
                            int64_t real_now_ns, int32_t clock_id, int64_t deadline_ns,
                            int64_t *remaining_ns) {
  int64_t now;
  w->active = 0;
  enum clock_kind kind = kind_of(clock_id);
  if (kind != CLOCK_KIND_WALL && kind != CLOCK_KIND_MONOTONIC) return 0;
  if (!uwrx_time_peek(c, k, clock_id, &now)) return 0;
  int64_t remaining = sub_sat(deadline_ns, now);
  if (remaining < 0) remaining = 0;
  *remaining_ns = remaining;
  if (c->mode == UWRX_TIME_ADVANCING && remaining > 0) {
    w->active = 1;
    w->real_deadline_ns = add_sat(real_now_ns, remaining);
    w->virtual_deadline_ns = add_sat(k->now_ns, remaining);
  }
  return 1;
}

int uwrx_time_wait_end(const uwrx_time_config *c, uwrx_clock *k, uwrx_wait *w, int64_t real_now_ns) {
  if (!w->active) return 0;
  w->active = 0;
  if (c->mode != UWRX_TIME_ADVANCING) return 0;
  if (real_now_ns >= w->real_deadline_ns) {
    if (k->now_ns < w->virtual_deadline_ns) k->now_ns = w->virtual_deadline_ns;
    return 1;
  }
  k->now_ns = add_sat(k->now_ns, c->step_ns);
  return 0;
}

void uwrx_time_event(const uwrx_time_config *c, uwrx_clock *k, const uwrx_clock_event *e) {
  /* the wait as it was at its start; whether it timed out is what its end knew */
  uwrx_wait w = { .real_deadline_ns = (e->place & UWRX_CLOCK_EVENT_TIMED_OUT) ? INT64_MIN : INT64_MAX,
                  .virtual_deadline_ns = e->virtual_deadline_ns, .active = 1 };
  uwrx_time_wait_end(c, k, &w, 0);
}

void uwrx_time_replay(const uwrx_time_config *c, uwrx_clock *k, uint64_t from, uint64_t to,
                      const uwrx_clock_event *events, size_t n, void (*before_event)(void *arg, uint64_t pos),
                      void *arg) {
  uint64_t at = from;
  for (size_t i = 0; i < n; i++) {
    const uwrx_clock_event *e = &events[i];
    uint64_t pos = uwrx_clock_event_pos(e);
    if (pos < at || pos >= to) continue;
    uwrx_time_after_reads(c, k, (int64_t)(pos - at));
    if (before_event) before_event(arg, pos);
    uwrx_time_event(c, k, e);
    at = pos + 1;
  }
  if (to > at) uwrx_time_after_reads(c, k, (int64_t)(to - at));
}

void uwrx_time_fork(const uwrx_time_config *c, const uwrx_clock *parent, uint64_t random,
                    uwrx_clock *child) {
  child->now_ns = parent ? parent->now_ns : 0;
  child->cpu_ns = 0;
  child->children_cpu_ns = 0;
  if (parent && c->mode == UWRX_TIME_ADVANCING)
    child->now_ns = add_sat(child->now_ns, 1 + (int64_t)(random % (uint64_t)UWRX_TIME_FORK_SPREAD_NS));
}

void uwrx_time_join(const uwrx_time_config *c, uwrx_clock *parent, const uwrx_clock *child) {
  if (c->mode != UWRX_TIME_ADVANCING) return;
  if (parent->now_ns < child->now_ns) parent->now_ns = child->now_ns;
  parent->children_cpu_ns = add_sat(parent->children_cpu_ns, add_sat(child->cpu_ns, child->children_cpu_ns));
}

void uwrx_time_timer_set(const uwrx_time_config *c, const uwrx_clock *k, uwrx_timer *t,
                         int64_t real_now_ns, int64_t value_ns, int64_t interval_ns) {
  t->active = c->mode == UWRX_TIME_ADVANCING && value_ns > 0;
  if (!t->active) return;
  t->real_deadline_ns = add_sat(real_now_ns, value_ns);
  t->virtual_deadline_ns = add_sat(k->now_ns, value_ns);
  t->interval_ns = interval_ns > 0 ? interval_ns : 0;
}

int uwrx_time_timer_fire(const uwrx_time_config *c, uwrx_clock *k, uwrx_timer *t, int64_t real_now_ns) {
  if (!t->active || real_now_ns < t->real_deadline_ns) return 0;
  int64_t last = 0; /* expiries after the first that already passed */
  if (t->interval_ns > 0) last = (real_now_ns - t->real_deadline_ns) / t->interval_ns;
  int64_t expiry = add_sat(t->virtual_deadline_ns, last * t->interval_ns);
  if (c->mode == UWRX_TIME_ADVANCING && k->now_ns < expiry) k->now_ns = expiry;
  if (t->interval_ns > 0) {
    t->real_deadline_ns = add_sat(t->real_deadline_ns, (last + 1) * t->interval_ns);
    t->virtual_deadline_ns = add_sat(expiry, t->interval_ns);
  } else {
    t->active = 0;
  }
  return 1;
}
