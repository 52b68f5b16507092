/* The record's escaping of raw bytes (paths, argv) as text: src/record/escape.ts
 * escapeBytes, in C for uwrx-init's files.meta and the addon's access writer. Valid
 * UTF-8 stays as it is; tab, newline, carriage return and backslash become \t \n \r \\;
 * other control bytes, DEL and bytes of invalid UTF-8 become \xNN. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length of the valid UTF-8 sequence at b[0] (n bytes left), 0 when there is none. */
size_t uwrx_utf8_len(const uint8_t *b, size_t n);

/* Writes the escaped form of b[0, n) at out, which has room for 4 bytes per input byte;
 * returns the end. */
uint8_t *uwrx_escape(const uint8_t *b, size_t n, uint8_t *out);

#ifdef __cplusplus
}
#endif
