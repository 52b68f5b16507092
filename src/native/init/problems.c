/* Run-time problems: counted by kind, reported to Node with the done message. */
#include "init.h"
#include "uwrx_init_proto.h"

static const char *const names[PROBLEM_COUNT] = {
  [PROBLEM_VERSION_LOST] = PROBLEM_NAME_VERSION_LOST,
  [PROBLEM_TRACE_BUFFER] = PROBLEM_NAME_TRACE_BUFFER,
  [PROBLEM_NO_MEMORY] = PROBLEM_NAME_NO_MEMORY,
  [PROBLEM_REQUEST_TIMEOUT] = PROBLEM_NAME_REQUEST_TIMEOUT,
  [PROBLEM_BAD_MESSAGE] = PROBLEM_NAME_BAD_MESSAGE,
};

static uint64_t counts[PROBLEM_COUNT];

void problem(enum problem kind) { __atomic_add_fetch(&counts[kind], 1, __ATOMIC_RELAXED); }

uint64_t problems_count(enum problem kind) { return __atomic_load_n(&counts[kind], __ATOMIC_RELAXED); }

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
