/* Answers PRNG queries from stdin with the C implementation, one per line:
 *   block <key hex 64> <counter> <nonce>        -> 64-byte block, hex
 *   derive <seed hex 64> <label> <index>        -> derived seed, hex
 *   stream <seed hex 64> <kind> <index> <skip> <len> [<chunk>]
 *                                                -> len bytes after skipping skip,
 *                                                   read in chunks of <chunk> bytes
 *   proc <parent seed hex 64> <logical pid>       -> the per-process API: AT_RANDOM of
 *                                                   execs 0 and 1, 16 getrandom bytes of
 *                                                   threads 0 and 1, 16 bytes of urandom
 *                                                   opens 0 and 1 and random open 0
 *   bench <megabytes>                            -> MB/s of uwrx_stream_read
 * Built by test/prng.test.ts with src/native/common/prng.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prng.h"

static void print_hex(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
  printf("\n");
}

static int seed_arg(const char *hex, uwrx_seed *s) {
  return uwrx_seed_parse_hex(hex, strlen(hex), s);
}

int main(void) {
  char line[1024];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[16], hex[128];
    unsigned long long a, b, c, d, e;
    uwrx_seed seed;
    int n;
    if (sscanf(line, "%15s", cmd) != 1) continue;
    if (!strcmp(cmd, "block") && sscanf(line, "%*s %127s %llu %llu", hex, &a, &b) == 3 &&
        !seed_arg(hex, &seed)) {
      uint32_t key[8];
      uint8_t out[64];
      for (int i = 0; i < 8; i++)
        key[i] = (uint32_t)seed.bytes[4 * i] | (uint32_t)seed.bytes[4 * i + 1] << 8 |
                 (uint32_t)seed.bytes[4 * i + 2] << 16 | (uint32_t)seed.bytes[4 * i + 3] << 24;
      uwrx_chacha20_block(key, a, b, out);
      print_hex(out, 64);
    } else if (!strcmp(cmd, "derive") &&
               sscanf(line, "%*s %127s %llu %llu", hex, &a, &b) == 3 && !seed_arg(hex, &seed)) {
      uwrx_seed out;
      uwrx_prng_derive(&seed, (uint32_t)a, (uint32_t)b, &out);
      print_hex(out.bytes, sizeof out.bytes);
    } else if (!strcmp(cmd, "stream") &&
               (n = sscanf(line, "%*s %127s %llu %llu %llu %llu %llu", hex, &a, &b, &c, &d, &e)) >= 5 &&
               !seed_arg(hex, &seed)) {
      size_t chunk = n == 6 && e > 0 ? (size_t)e : (size_t)d;
      uwrx_stream s;
      uwrx_stream_init(&s, &seed, (uint32_t)a, (uint32_t)b);
      uint8_t *skip = malloc(c + 1), *out = malloc(d + 1);
      uwrx_stream_read(&s, skip, c);
      for (size_t at = 0; at < d; at += chunk)
        uwrx_stream_read(&s, out + at, d - at < chunk ? d - at : chunk);
      if (uwrx_stream_position(&s) != c + d) printf("position mismatch\n");
      print_hex(out, d);
      free(skip);
      free(out);
    } else if (!strcmp(cmd, "proc") && sscanf(line, "%*s %127s %llu", hex, &a) == 2 &&
               !seed_arg(hex, &seed)) {
      uwrx_proc_rng p;
      uwrx_stream s;
      uint8_t out[7][16];
      uwrx_proc_rng_init(&p, &seed, (uint32_t)a);
      uwrx_proc_rng_at_random(&p, out[0]);
      uwrx_proc_rng_at_random(&p, out[1]);
      for (int i = 0; i < 2; i++) uwrx_proc_rng_thread_stream(&p, &s), uwrx_stream_read(&s, out[2 + i], 16);
      for (int i = 0; i < 2; i++) uwrx_proc_rng_device_stream(&p, 0, &s), uwrx_stream_read(&s, out[4 + i], 16);
      uwrx_proc_rng_device_stream(&p, 1, &s), uwrx_stream_read(&s, out[6], 16);
      for (int i = 0; i < 7; i++) {
        for (int j = 0; j < 16; j++) printf("%02x", out[i][j]);
        printf(i < 6 ? " " : "\n");
      }
    } else if (!strcmp(cmd, "bench") && sscanf(line, "%*s %llu", &a) == 1) {
      static uint8_t buf[1 << 16];
      memset(&seed, 7, sizeof seed);
      uwrx_stream s;
      uwrx_stream_init(&s, &seed, UWRX_PRNG_DEV_URANDOM, 0);
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (unsigned long long i = 0; i < a * 16; i++) uwrx_stream_read(&s, buf, sizeof buf);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
      printf("%.1f\n", (double)a / secs);
    } else {
      printf("error\n");
    }
    fflush(stdout);
  }
  return 0;
}
