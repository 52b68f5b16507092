/* Deterministic /dev/urandom and /dev/random served over FUSE (devrandom.c). */
#ifndef UWRX_DEVRANDOM_H
#define UWRX_DEVRANDOM_H
#include <stdbool.h>
#include <sys/types.h>
#include "../common/prng.h"

/* Chooses the stream of a new open: `tid` is the opening thread as pid 1 of the sandbox
 * sees it, dev_random 1 for /dev/random, 0 for /dev/urandom. */
typedef void (*devrandom_stream_fn)(pid_t tid, int dev_random, uwrx_stream *out, void *arg);

/* Opens /dev/fuse. Do it inside the sandbox's user namespace (the kernel refuses a
 * connection opened in another one) and before pivot_root, while the host's /dev is
 * reachable.
 * Returns the fd or a negative errno. */
int devrandom_open_device(void);

/* Mounts a FUSE file over `target` (an existing file) and serves it from a new thread.
 * Returns 0 or a negative errno. */
int devrandom_mount(int fuse_fd, const char *target, int dev_random, devrandom_stream_fn stream_for, void *arg);

#endif
