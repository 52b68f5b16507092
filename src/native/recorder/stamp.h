/* The times of the recorder's records (stamp.c). */
#ifndef UWRX_REC_STAMP_H
#define UWRX_REC_STAMP_H

#include <stdint.h>

/* CLOCK_BOOTTIME now, in ns, as uwrx-init's trace buffers take their times; clock_gettime
 * through `sys` (the gate) when it is read for real. Never decreasing within a thread. */
uint64_t rec_stamp_now(long (*sys)(long, long, long, long, long, long, long));

/* The calling process asked for rdtsc to fault (prctl PR_SET_TSC): no counter reads
 * from here on in this process image. */
void rec_stamp_no_counter(void);

#endif
