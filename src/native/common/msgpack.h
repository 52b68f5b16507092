/* A small msgpack writer and reader for the uwrx-init socket protocol: maps, arrays,
 * str, bin, integers, bool and nil. No floats, no extensions. */
#ifndef UWRX_MSGPACK_H
#define UWRX_MSGPACK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Growable output buffer. On allocation failure `failed` is set and writes stop. */
struct mp_writer {
  uint8_t *data;
  size_t len;
  size_t cap;
  bool failed;
};

void mp_writer_init(struct mp_writer *w);
void mp_writer_free(struct mp_writer *w);
void mp_write_map(struct mp_writer *w, uint32_t n);
void mp_write_array(struct mp_writer *w, uint32_t n);
void mp_write_str(struct mp_writer *w, const char *s, size_t len);
void mp_write_cstr(struct mp_writer *w, const char *s);
void mp_write_bin(struct mp_writer *w, const void *p, size_t len);
void mp_write_int(struct mp_writer *w, int64_t v);
void mp_write_uint(struct mp_writer *w, uint64_t v);
void mp_write_bool(struct mp_writer *w, bool v);
void mp_write_nil(struct mp_writer *w);
/* Appends bytes as they are (a pre-encoded value, a frame header). */
void mp_write_raw(struct mp_writer *w, const void *p, size_t len);

/* Cursor over a received message. Every read returns false (and sets `failed`) when the
 * next value is not of the requested type or the input is truncated. */
struct mp_reader {
  const uint8_t *p;
  const uint8_t *end;
  bool failed;
};

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_OTHER, MP_END };

void mp_reader_init(struct mp_reader *r, const void *data, size_t len);
enum mp_type mp_peek(const struct mp_reader *r);
bool mp_read_map(struct mp_reader *r, uint32_t *n);
bool mp_read_array(struct mp_reader *r, uint32_t *n);
/* str or bin: points into the input, not NUL-terminated. */
bool mp_read_bytes(struct mp_reader *r, const char **s, uint32_t *len);
/* str or bin copied into a fresh NUL-terminated string (caller frees). */
bool mp_read_strdup(struct mp_reader *r, char **out);
bool mp_read_int(struct mp_reader *r, int64_t *v);
bool mp_read_bool(struct mp_reader *r, bool *v);
bool mp_read_nil(struct mp_reader *r);
/* Skips one value of any type, including nested containers. */
bool mp_skip(struct mp_reader *r);
/* True when the key just read (a str) equals `key`. */
bool mp_key_is(const char *s, uint32_t len, const char *key);

#endif
