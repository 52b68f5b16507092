/* Redirecting a libc function to the recorder by writing a jump over its entry
 * (redirect.c), so that libc's internal calls of it reach the recorder too. */
#ifndef UWRX_REC_REDIRECT_H
#define UWRX_REC_REDIRECT_H

#include <stddef.h>

/* A libc function to redirect: `symbol` (the definition after the recorder's own), the
 * code it may start with (whole instructions, at least REC_REDIRECT_JUMP_SIZE bytes: a
 * match is what shows the jump fits inside it), and where to jump. */
struct rec_code {
  const unsigned char *bytes;
  size_t len;
  const unsigned char *mask; /* NULL: every byte compared; else only where the mask is 0xff
                                (a displacement that differs between builds) */
};
struct rec_redirect {
  const char *symbol;
  const struct rec_code *codes;
  size_t ncodes;
  void *to;
};
#define REC_REDIRECT_JUMP_SIZE 12
/* The most entries one rec_redirect call writes. */
#define REC_REDIRECTS_MAX 12

/* Writes an absolute jump over the entry of each function of `list` whose code starts with
 * one of its codes, when this process runs one thread; system calls through `sys`.
 * Returns how many were redirected; the others stay as they were. */
int rec_redirect(const struct rec_redirect *list, size_t n, long (*sys)(long, long, long, long, long, long, long));

#endif
