/* The ld.so hook's recorder buffer (ldso_hook.c), shared with the shim's start. */
#ifndef UWRX_SHIM_LDSO_HOOK_H
#define UWRX_SHIM_LDSO_HOOK_H

#include "uwrx_recorder.h"

/* Maps the recorder buffer open as `fd` (and closes it) as this process's, where the
 * hook records ld.so's calls; NULL when it cannot be had. `pid`: the process's, as
 * uwrx-init told it (0: asked here); `flags`: recorder_flags (uwrx_recorder.h). */
struct uwrx_rec_header *shim_adopt_recorder(struct uwrx_ldso_state *s, long fd, int32_t pid, uint32_t flags);

#endif
