/* A fast hash of a byte string, eight bytes at a step, for tables private to one
 * process (the recorder's repeat table, the addon's access table, uwrx-init's tables
 * by path): nothing stores or
 * compares these values across processes or versions. C and C++. */
#ifndef UWRX_HASH_H
#define UWRX_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t uwrx_hash_bytes(uint64_t seed, const void *bytes, size_t len) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  const unsigned char *p = (const unsigned char *)bytes;
  uint64_t h = seed * k ^ len;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  if (i < len) {
    uint64_t w = 0;
    memcpy(&w, p + i, len - i);
    h = (h ^ w) * k;
  }
  h ^= h >> 32;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

/* The same of a NUL-terminated string (a path), without its NUL. */
static inline uint64_t uwrx_hash_str(const char *s) { return uwrx_hash_bytes(0, s, strlen(s)); }

#endif
