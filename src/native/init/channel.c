/* Frames to and from Node: u32 little-endian length, then a msgpack Envelope. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_init_proto.h"

static bool read_full(int fd, void *buf, size_t len) {
  uint8_t *p = buf;
  while (len) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static bool write_full(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

bool channel_read(int fd, uint8_t **data, size_t *len) {
  uint8_t hdr[4];
  if (!read_full(fd, hdr, 4)) return false;
  uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
  if (n > UWRX_INIT_MAX_FRAME) return false;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return false;
  if (!read_full(fd, buf, n)) {
    free(buf);
    return false;
  }
  *data = buf;
  *len = n;
  return true;
}

static void send_envelope(const char *type, const char *error, const struct mp_writer *body) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_raw(&w, "\0\0\0\0", 4); /* length prefix, filled in below */
  mp_write_map(&w, 1 + (error != NULL) + (body != NULL));
  mp_write_cstr(&w, "type");
  mp_write_cstr(&w, type);
  if (error) {
    mp_write_cstr(&w, "error");
    mp_write_cstr(&w, error);
  }
  if (body) {
    mp_write_cstr(&w, "body");
    mp_write_raw(&w, body->data, body->len);
  }
  if (!w.failed && g.sock >= 0) {
    uint32_t n = (uint32_t)(w.len - 4);
    w.data[0] = (uint8_t)n;
    w.data[1] = (uint8_t)(n >> 8);
    w.data[2] = (uint8_t)(n >> 16);
    w.data[3] = (uint8_t)(n >> 24);
    pthread_mutex_lock(&g.send_lock);
    /* A failed write means Node is gone; PDEATHSIG ends us shortly. */
    write_full(g.sock, w.data, w.len);
    pthread_mutex_unlock(&g.send_lock);
  }
  mp_writer_free(&w);
}

void channel_send(const char *type, const struct mp_writer *body) { send_envelope(type, NULL, body); }

void channel_fail(int step, const char *op, const char *path, int errno_value, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (errno_value && (size_t)n < sizeof msg)
    snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(errno_value));
  struct mp_writer body;
  mp_writer_init(&body);
  mp_write_map(&body, 4);
  mp_write_cstr(&body, "step");
  mp_write_int(&body, step);
  mp_write_cstr(&body, "op");
  mp_write_cstr(&body, op ? op : "");
  mp_write_cstr(&body, "path");
  mp_write_cstr(&body, path ? path : "");
  mp_write_cstr(&body, "errno");
  mp_write_int(&body, errno_value);
  send_envelope(MSG_FAILED, msg, &body);
  mp_writer_free(&body);
  if (g.sock < 0) fprintf(stderr, "uwrx-init: %s\n", msg);
}
