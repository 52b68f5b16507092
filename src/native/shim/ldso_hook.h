/* The ld.so hook's recorder buffer (ldso_hook.c), shared with the shim's start. */
#ifndef UWRX_SHIM_LDSO_HOOK_H
#define UWRX_SHIM_LDSO_HOOK_H

#include "uwrx_recorder.h"

extern const char __ehdr_start[] __attribute__((visibility("hidden")));

/* The gate page of this process image (uwrx_recorder.h uwrx_gate_for): the shim's
 * image lies inside ld.so's mapping (the combined form, the only one with the hook). */
static inline unsigned long shim_gate(void) { return uwrx_gate_for((unsigned long)__ehdr_start); }

/* The hook's state page, after the gate page. */
static inline struct uwrx_ldso_state *shim_state(void) {
  return (struct uwrx_ldso_state *)(shim_gate() + UWRX_LDSO_STATE_OFFSET);
}

/* Maps the recorder buffer open as `fd` (and closes it) as this process's, where the
 * hook records ld.so's calls; NULL when it cannot be had. `pid`: the process's, as
 * uwrx-init told it (0: asked here); `flags`: recorder_flags (uwrx_recorder.h). */
struct uwrx_rec_header *shim_adopt_recorder(struct uwrx_ldso_state *s, long fd, int32_t pid, uint32_t flags);
/* The exec as uwrx-init prepared it (uwrx_recorder.h, "prepared execs"): the recorder
 * buffer mapped and adopted, the AT_RANDOM bytes written to `at_random` (0: none), the
 * flags and pid on the state page; NULL when there is none for this exec (then the
 * control call asks). */
struct uwrx_rec_header *shim_take_prepared(struct uwrx_ldso_state *s, unsigned long at_random);

#endif
