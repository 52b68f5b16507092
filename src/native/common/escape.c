/* The record's escaping of raw bytes as text (escape.h). */
#include "escape.h"

size_t uwrx_utf8_len(const uint8_t *b, size_t n) {
  uint8_t c = b[0];
  size_t len;
  uint32_t min;
  if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (len > n) return 0;
  uint32_t cp = c & (0xffu >> (len + 1));
  for (size_t k = 1; k < len; k++) {
    if ((b[k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b[k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

uint8_t *uwrx_escape(const uint8_t *b, size_t n, uint8_t *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n;) {
    uint8_t c = b[i];
    if (c >= 0x80) {
      size_t len = uwrx_utf8_len(b + i, n - i);
      if (len) {
        for (size_t k = 0; k < len; k++) *out++ = b[i + k];
        i += len;
        continue;
      }
    }
    if (c == 0x09) *out++ = '\\', *out++ = 't';
    else if (c == 0x0a) *out++ = '\\', *out++ = 'n';
    else if (c == 0x0d) *out++ = '\\', *out++ = 'r';
    else if (c == 0x5c) *out++ = '\\', *out++ = '\\';
    else if (c < 0x20 || c >= 0x7f) *out++ = '\\', *out++ = 'x', *out++ = (uint8_t)hex[c >> 4], *out++ = (uint8_t)hex[c & 15];
    else *out++ = c;
    i++;
  }
  return out;
}
