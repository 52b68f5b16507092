/* Output to stdout and stderr recorded in process (output.c), and what it needs from the
 * rest of the recorder (recorder.c). */
#ifndef UWRX_REC_OUTPUT_H
#define UWRX_REC_OUTPUT_H

#include <stddef.h>
#include <sys/types.h>

#include "redirect.h"

struct uwrx_rec_header;

/* recorder.c: this process's recorder buffer when the calling process may record into
 * it (set up, the process that set it up: not a vfork child), else NULL; and the
 * process that owns it (its kernel pid). */
struct uwrx_rec_header *rec_answering(void);
pid_t rec_owner(void);
/* Whether thread `tid` (0: the calling one, asked only when needed) is between a timed
 * wait and its next call, or shares its bit in the header's set of such threads with one
 * that is: that call ends the wait (init/clocks.c), so it goes to uwrx-init, as the
 * thread's clock reads do. */
int rec_after_wait(const struct uwrx_rec_header *h, pid_t tid);
/* Whether the clock lease lets a read or a recorded call be answered in process now: it
 * is open, and no armed timer's real deadline has passed (that call fires the timer in
 * uwrx-init: uwrx_recorder.h, clock_timer_real_ns). */
int rec_clock_open(const struct uwrx_rec_header *h);
/* output.c: the calling thread's id in the trace when its call may be recorded here (0:
 * it goes to uwrx-init: the thread is between a timed wait and its next call, or a timer
 * of the process is due, or it has no id). */
uint32_t rec_recording_thread(const struct uwrx_rec_header *h);
/* A call answered through a redirected entry of libc, counted for uwrx-init. */
void rec_redirected(void);

/* Appends the redirects of libc's write, writev, pwrite64 and pwritev to list[n..cap)
 * (the ones whose code is known here); returns the new count. Called once, before they
 * are written. */
size_t rec_output_redirects(struct rec_redirect *list, size_t n, size_t cap);

#endif
