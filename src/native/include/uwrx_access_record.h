/* An access record in a recorder buffer (uwrx_recorder.h), as both in-process writers
 * make it: the recorder library and the ld.so shim's hook for the dynamic linker's own
 * opens (shim/ldso_hook.c). The bytes are those uwrx-init's trace_access writes on the
 * notification path: the path as the process named it, made absolute and lexically
 * normalised. Freestanding (the shim has no libc): loops instead of memcpy there. */
#ifndef UWRX_ACCESS_RECORD_H
#define UWRX_ACCESS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "uwrx_events.h"
#include "uwrx_recorder.h"

#define UWRX_ACCESS_PATH_CAP 4096
#define UWRX_ALIGN8(n) (((n) + 7) & ~(size_t)7)

static inline void uwrx_copy_bytes(void *to, const void *from, size_t n) {
#if __STDC_HOSTED__
  __builtin_memcpy(to, from, n); /* the recorder: libc's memcpy, several times faster on paths */
#else
  unsigned char *d = to;
  const unsigned char *s = from;
  while (n--) *d++ = *s++;
#endif
}

/* Appends the lexically normalised form of `rel` ("." and ".." collapsed, repeated
 * slashes merged) to the absolute directory in out[0..len). Returns the new length, or
 * 0 when it does not fit in UWRX_ACCESS_PATH_CAP. */
static inline size_t uwrx_join_normal(char *out, size_t len, const char *rel) {
  while (len > 1 && out[len - 1] == '/') len--;
  for (const char *s = rel; *s;) {
    while (*s == '/') s++;
    const char *e = s;
    while (*e && *e != '/') e++;
    size_t n = (size_t)(e - s);
    if (n == 0) break;
    if (n == 1 && s[0] == '.') {
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (len > 1 && out[len - 1] != '/') len--;
      if (len > 1) len--;
    } else {
      if (len + 1 + n + 1 > UWRX_ACCESS_PATH_CAP) return 0;
      if (!(len == 1 && out[0] == '/')) out[len++] = '/';
      uwrx_copy_bytes(out + len, s, n);
      len += n;
    }
    s = e;
  }
  out[len] = 0;
  return len;
}

/* Appends a record of `type` made by thread `tid` (its id in the trace) with a fixed part
 * of `fixed_len` bytes and one blob of `len` bytes to buffer `h`; its offset, or 0 when it
 * did not fit (counted in h->dropped). Lock-free: any number of threads may append at
 * once. */
static inline uint64_t uwrx_append_record(struct uwrx_rec_header *h, uint64_t time_ns, uint16_t type, uint32_t tid,
                                          const void *fixed, size_t fixed_len, const void *blob, size_t len) {
  size_t size = UWRX_ALIGN8(UWRX_EV_HEADER_SIZE + UWRX_ALIGN8(fixed_len) + 4 + len);
  uint64_t off = __atomic_fetch_add(&h->pos, size, __ATOMIC_RELAXED);
  if (off + size > h->size) {
    __atomic_add_fetch(&h->dropped, 1, __ATOMIC_RELAXED);
    return 0;
  }
  unsigned char *p = (unsigned char *)h + off;
  struct uwrx_ev_header eh = { .size = 0, .type = type, .flags = 0, .pid = h->pid, .tid = tid, .time_ns = time_ns };
  uint32_t n = (uint32_t)len;
  unsigned char *q = p + UWRX_EV_HEADER_SIZE;
  uwrx_copy_bytes(p, &eh, sizeof eh);
  uwrx_copy_bytes(q, fixed, fixed_len);
  for (size_t i = fixed_len; i < UWRX_ALIGN8(fixed_len); i++) q[i] = 0;
  q += UWRX_ALIGN8(fixed_len);
  uwrx_copy_bytes(q, &n, 4);
  uwrx_copy_bytes(q + 4, blob, len);
  for (unsigned char *z = q + 4 + len; z < p + size; z++) *z = 0;
  /* committed: the collector reads up to the first record whose size is still 0 */
  __atomic_store_n((uint32_t *)p, (uint32_t)size, __ATOMIC_RELEASE);
  return off;
}

/* Appends an access record of the process's main thread (as uwrx_append_record). */
static inline uint64_t uwrx_append_access(struct uwrx_rec_header *h, uint64_t time_ns, uint32_t op, int32_t flags,
                                          int64_t result, const char *path, size_t len) {
  struct uwrx_ev_access ev = { .op = op, .flags = flags, .result = result, .count = 1 };
  return uwrx_append_record(h, time_ns, UWRX_EV_ACCESS, h->pid, &ev, sizeof ev, path, len);
}

#endif
