#include "msgpack.h"

#include <stdlib.h>
#include <string.h>

void mp_writer_init(struct mp_writer *w) { memset(w, 0, sizeof *w); }

void mp_writer_free(struct mp_writer *w) {
  free(w->data);
  memset(w, 0, sizeof *w);
}

static uint8_t *reserve(struct mp_writer *w, size_t n) {
  if (w->failed) return NULL;
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap *= 2;
    uint8_t *data = realloc(w->data, cap);
    if (!data) {
      w->failed = true;
      return NULL;
    }
    w->data = data;
    w->cap = cap;
  }
  uint8_t *p = w->data + w->len;
  w->len += n;
  return p;
}

static void put_be(uint8_t *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

/* A type byte followed by a big-endian length/value of `bytes` bytes. */
static void put_tagged(struct mp_writer *w, uint8_t tag, uint64_t v, int bytes) {
  uint8_t *p = reserve(w, 1 + (size_t)bytes);
  if (!p) return;
  p[0] = tag;
  put_be(p + 1, v, bytes);
}

static void put_container(struct mp_writer *w, uint32_t n, uint8_t fix, uint8_t t16, uint8_t t32) {
  if (n < 16) put_tagged(w, (uint8_t)(fix | n), 0, 0);
  else if (n <= 0xffff) put_tagged(w, t16, n, 2);
  else put_tagged(w, t32, n, 4);
}

void mp_write_map(struct mp_writer *w, uint32_t n) { put_container(w, n, 0x80, 0xde, 0xdf); }
void mp_write_array(struct mp_writer *w, uint32_t n) { put_container(w, n, 0x90, 0xdc, 0xdd); }

void mp_write_raw(struct mp_writer *w, const void *s, size_t len) {
  uint8_t *p = reserve(w, len);
  if (p && len) memcpy(p, s, len);
}

void mp_write_str(struct mp_writer *w, const char *s, size_t len) {
  if (len < 32) put_tagged(w, (uint8_t)(0xa0 | len), 0, 0);
  else if (len <= 0xff) put_tagged(w, 0xd9, len, 1);
  else if (len <= 0xffff) put_tagged(w, 0xda, len, 2);
  else put_tagged(w, 0xdb, len, 4);
  mp_write_raw(w, s, len);
}

void mp_write_cstr(struct mp_writer *w, const char *s) { mp_write_str(w, s, strlen(s)); }

void mp_write_bin(struct mp_writer *w, const void *p, size_t len) {
  if (len <= 0xff) put_tagged(w, 0xc4, len, 1);
  else if (len <= 0xffff) put_tagged(w, 0xc5, len, 2);
  else put_tagged(w, 0xc6, len, 4);
  mp_write_raw(w, p, len);
}

void mp_write_uint(struct mp_writer *w, uint64_t v) {
  if (v < 128) put_tagged(w, (uint8_t)v, 0, 0);
  else if (v <= 0xff) put_tagged(w, 0xcc, v, 1);
  else if (v <= 0xffff) put_tagged(w, 0xcd, v, 2);
  else if (v <= 0xffffffffu) put_tagged(w, 0xce, v, 4);
  else put_tagged(w, 0xcf, v, 8);
}

void mp_write_int(struct mp_writer *w, int64_t v) {
  if (v >= 0) mp_write_uint(w, (uint64_t)v);
  else if (v >= -32) put_tagged(w, (uint8_t)(int8_t)v, 0, 0);
  else if (v >= INT8_MIN) put_tagged(w, 0xd0, (uint8_t)(int8_t)v, 1);
  else if (v >= INT16_MIN) put_tagged(w, 0xd1, (uint16_t)(int16_t)v, 2);
  else if (v >= INT32_MIN) put_tagged(w, 0xd2, (uint32_t)(int32_t)v, 4);
  else put_tagged(w, 0xd3, (uint64_t)v, 8);
}

void mp_write_bool(struct mp_writer *w, bool v) { put_tagged(w, v ? 0xc3 : 0xc2, 0, 0); }
void mp_write_nil(struct mp_writer *w) { put_tagged(w, 0xc0, 0, 0); }

void mp_reader_init(struct mp_reader *r, const void *data, size_t len) {
  r->p = data;
  r->end = r->p + len;
  r->failed = false;
}

static bool fail(struct mp_reader *r) {
  r->failed = true;
  return false;
}

static bool take_be(struct mp_reader *r, int bytes, uint64_t *v) {
  if (r->end - r->p < bytes) return fail(r);
  uint64_t x = 0;
  for (int i = 0; i < bytes; i++) x = (x << 8) | r->p[i];
  r->p += bytes;
  *v = x;
  return true;
}

enum mp_type mp_peek(const struct mp_reader *r) {
  if (r->p >= r->end) return MP_END;
  uint8_t b = *r->p;
  if (b <= 0x7f || b >= 0xe0) return MP_INT;
  if (b <= 0x8f || b == 0xde || b == 0xdf) return MP_MAP;
  if (b <= 0x9f || b == 0xdc || b == 0xdd) return MP_ARRAY;
  if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) return MP_STR;
  if (b == 0xc0) return MP_NIL;
  if (b == 0xc2 || b == 0xc3) return MP_BOOL;
  if (b >= 0xc4 && b <= 0xc6) return MP_BIN;
  if ((b >= 0xcc && b <= 0xd3)) return MP_INT;
  return MP_OTHER;
}

static bool read_container(struct mp_reader *r, uint32_t *n, uint8_t fix, uint8_t t16, uint8_t t32) {
  if (r->p >= r->end) return fail(r);
  uint8_t b = *r->p;
  uint64_t v;
  if ((b & 0xf0) == fix) {
    r->p++;
    *n = b & 0x0f;
    return true;
  }
  if (b == t16 || b == t32) {
    r->p++;
    if (!take_be(r, b == t16 ? 2 : 4, &v)) return false;
    *n = (uint32_t)v;
    return true;
  }
  return fail(r);
}

bool mp_read_map(struct mp_reader *r, uint32_t *n) { return read_container(r, n, 0x80, 0xde, 0xdf); }
bool mp_read_array(struct mp_reader *r, uint32_t *n) { return read_container(r, n, 0x90, 0xdc, 0xdd); }

bool mp_read_bytes(struct mp_reader *r, const char **s, uint32_t *len) {
  if (r->p >= r->end) return fail(r);
  uint8_t b = *r->p++;
  uint64_t v;
  if ((b & 0xe0) == 0xa0) v = b & 0x1f;
  else if (b == 0xd9 || b == 0xc4) { if (!take_be(r, 1, &v)) return false; }
  else if (b == 0xda || b == 0xc5) { if (!take_be(r, 2, &v)) return false; }
  else if (b == 0xdb || b == 0xc6) { if (!take_be(r, 4, &v)) return false; }
  else {
    r->p--;
    return fail(r);
  }
  if ((uint64_t)(r->end - r->p) < v) return fail(r);
  *s = (const char *)r->p;
  *len = (uint32_t)v;
  r->p += v;
  return true;
}

bool mp_read_strdup(struct mp_reader *r, char **out) {
  const char *s;
  uint32_t len;
  if (!mp_read_bytes(r, &s, &len)) return false;
  char *copy = malloc((size_t)len + 1);
  if (!copy) return fail(r);
  memcpy(copy, s, len);
  copy[len] = 0;
  *out = copy;
  return true;
}

bool mp_read_int(struct mp_reader *r, int64_t *v) {
  if (r->p >= r->end) return fail(r);
  uint8_t b = *r->p++;
  uint64_t x;
  if (b <= 0x7f) { *v = b; return true; }
  if (b >= 0xe0) { *v = (int8_t)b; return true; }
  switch (b) {
  case 0xcc: if (!take_be(r, 1, &x)) return false; *v = (int64_t)x; return true;
  case 0xcd: if (!take_be(r, 2, &x)) return false; *v = (int64_t)x; return true;
  case 0xce: if (!take_be(r, 4, &x)) return false; *v = (int64_t)x; return true;
  case 0xcf: if (!take_be(r, 8, &x)) return false; *v = (int64_t)x; return true;
  case 0xd0: if (!take_be(r, 1, &x)) return false; *v = (int8_t)x; return true;
  case 0xd1: if (!take_be(r, 2, &x)) return false; *v = (int16_t)x; return true;
  case 0xd2: if (!take_be(r, 4, &x)) return false; *v = (int32_t)x; return true;
  case 0xd3: if (!take_be(r, 8, &x)) return false; *v = (int64_t)x; return true;
  }
  r->p--;
  return fail(r);
}

bool mp_read_bool(struct mp_reader *r, bool *v) {
  if (r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3)) return fail(r);
  *v = *r->p++ == 0xc3;
  return true;
}

bool mp_read_nil(struct mp_reader *r) {
  if (r->p >= r->end || *r->p != 0xc0) return fail(r);
  r->p++;
  return true;
}

bool mp_skip(struct mp_reader *r) {
  const char *s;
  uint32_t n;
  int64_t i;
  bool b;
  switch (mp_peek(r)) {
  case MP_NIL: return mp_read_nil(r);
  case MP_BOOL: return mp_read_bool(r, &b);
  case MP_INT: return mp_read_int(r, &i);
  case MP_STR:
  case MP_BIN: return mp_read_bytes(r, &s, &n);
  case MP_ARRAY:
    if (!mp_read_array(r, &n)) return false;
    while (n--) if (!mp_skip(r)) return false;
    return true;
  case MP_MAP:
    if (!mp_read_map(r, &n)) return false;
    while (n--) if (!mp_skip(r) || !mp_skip(r)) return false;
    return true;
  default: {
    /* floats, ext: skip by their fixed sizes so unknown fields do not break parsing */
    if (r->p >= r->end) return fail(r);
    uint8_t t = *r->p;
    int size = t == 0xca ? 4 : t == 0xcb ? 8 : t == 0xd4 ? 2 : t == 0xd5 ? 3 : t == 0xd6 ? 5
             : t == 0xd7 ? 9 : t == 0xd8 ? 17 : -1;
    if (size < 0 || r->end - r->p < size + 1) return fail(r);
    r->p += size + 1;
    return true;
  }
  }
}

bool mp_key_is(const char *s, uint32_t len, const char *key) {
  return strlen(key) == len && memcmp(s, key, len) == 0;
}
