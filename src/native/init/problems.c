/* Run-time problems: counted by kind. The first of each kind is reported to Node at once
 * (with what it was about), the rest before the done message, so a record cut short
 * still says what went wrong first. */
#include <stdio.h>
#include <string.h>

#include "init.h"
#include "uwrx_init_proto.h"

static const char *const names[PROBLEM_COUNT] = {
  [PROBLEM_VERSION_LOST] = PROBLEM_NAME_VERSION_LOST,
  [PROBLEM_TRACE_BUFFER] = PROBLEM_NAME_TRACE_BUFFER,
  [PROBLEM_NO_MEMORY] = PROBLEM_NAME_NO_MEMORY,
  [PROBLEM_REQUEST_TIMEOUT] = PROBLEM_NAME_REQUEST_TIMEOUT,
  [PROBLEM_BAD_MESSAGE] = PROBLEM_NAME_BAD_MESSAGE,
};

static uint64_t counts[PROBLEM_COUNT], reported[PROBLEM_COUNT];
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void send_problem(enum problem kind, uint64_t count, const char *detail) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, detail ? 3 : 2);
  mp_write_cstr(&w, "kind");
  mp_write_cstr(&w, names[kind]);
  mp_write_cstr(&w, "count");
  mp_write_uint(&w, count);
  if (detail) {
    mp_write_cstr(&w, "detail");
    mp_write_bin(&w, detail, strlen(detail));
  }
  channel_send(MSG_PROBLEM, &w);
  mp_writer_free(&w);
}

void problem_at(enum problem kind, const char *detail) {
  if (__atomic_add_fetch(&counts[kind], 1, __ATOMIC_RELAXED) != 1) return;
  pthread_mutex_lock(&report_lock);
  reported[kind] = 1;
  pthread_mutex_unlock(&report_lock);
  send_problem(kind, 1, detail);
}

void problem(enum problem kind) { problem_at(kind, NULL); }

uint64_t problems_count(enum problem kind) { return __atomic_load_n(&counts[kind], __ATOMIC_RELAXED); }

void problems_flush(void) {
  for (int k = 0; k < PROBLEM_COUNT; k++) {
    pthread_mutex_lock(&report_lock);
    uint64_t total = problems_count(k);
    uint64_t more = total > reported[k] ? total - reported[k] : 0;
    reported[k] += more;
    pthread_mutex_unlock(&report_lock);
    if (more) send_problem(k, more, NULL);
  }
}

void problems_write(struct mp_writer *w) {
  uint32_t n = 0;
  for (int k = 0; k < PROBLEM_COUNT; k++) n += problems_count(k) != 0;
  mp_write_map(w, n);
  for (int k = 0; k < PROBLEM_COUNT; k++) {
    uint64_t c = problems_count(k);
    if (!c) continue;
    mp_write_cstr(w, names[k]);
    mp_write_uint(w, c);
  }
}
