/* Redirecting a libc function to the recorder by writing a jump over its entry
 * (redirect.c), so that libc's internal calls of it reach the recorder too. */
#ifndef UWRX_REC_REDIRECT_H
#define UWRX_REC_REDIRECT_H

#include <stddef.h>

/* Writes an absolute jump to `to` over the entry of libc's `symbol` (the definition after
 * the recorder's own) when its code starts with the `expect_len` bytes of `expect` and
 * this process runs one thread; system calls through `sys`. `expect` must be whole
 * instructions of the function, at least REC_REDIRECT_JUMP_SIZE bytes: a match is what
 * shows the jump fits inside it. 0 when done, -1 when not (nothing changed: the function
 * stays as it was). */
#define REC_REDIRECT_JUMP_SIZE 12
int rec_redirect(const char *symbol, const unsigned char *expect, size_t expect_len, void *to,
                 long (*sys)(long, long, long, long, long, long, long));

#endif
