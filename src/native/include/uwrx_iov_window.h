/* The next window of a write's iovec array, as pieces to read from the writer's memory:
 * uwrx-init's output handler (init/trace.c) and the recorder's (recorder/output.c) cut a
 * write into records with this one walk, so both paths record the same bytes in the
 * same records. */
#ifndef UWRX_IOV_WINDOW_H
#define UWRX_IOV_WINDOW_H

#include <stddef.h>
#include <sys/uio.h>

/* Takes up to `want` bytes of `segs` from segment *seg, offset *off, as at most `cap`
 * pieces into `out` (empty segments skipped), and moves (*seg, *off) past them. Returns
 * the bytes taken; *npieces is the number of pieces. */
static inline size_t uwrx_iov_window(const struct iovec *segs, size_t nsegs, size_t *seg, size_t *off, size_t want,
                                     struct iovec *out, size_t cap, size_t *npieces) {
  size_t nr = 0, take = 0, s = *seg, o = *off;
  while (take < want && s < nsegs && nr < cap) {
    size_t n = segs[s].iov_len - o;
    if (n > want - take) n = want - take;
    if (n) {
      out[nr].iov_base = (char *)segs[s].iov_base + o;
      out[nr].iov_len = n;
      nr++;
      take += n;
    }
    o += n;
    if (o == segs[s].iov_len) {
      s++;
      o = 0;
    }
  }
  *seg = s;
  *off = o;
  *npieces = nr;
  return take;
}

#endif
