/* ChaCha20-based hierarchical PRNG; see prng.h for the construction. */
#include "prng.h"

#include <string.h>

static inline uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static inline uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

#define QR(a, b, c, d)                                                                 \
  a += b, d = rotl(d ^ a, 16), c += d, b = rotl(b ^ c, 12), a += b, d = rotl(d ^ a, 8), \
  c += d, b = rotl(b ^ c, 7)

void uwrx_chacha20_block(const uint32_t key[8], uint64_t counter, uint64_t nonce,
                         uint8_t out[64]) {
  uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
                     key[0],     key[1],     key[2],     key[3],
                     key[4],     key[5],     key[6],     key[7],
                     (uint32_t)counter, (uint32_t)(counter >> 32),
                     (uint32_t)nonce,   (uint32_t)(nonce >> 32)};
  uint32_t x[16];
  memcpy(x, in, sizeof x);
  for (int i = 0; i < 10; i++) {
    QR(x[0], x[4], x[8], x[12]);
    QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]);
    QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]);
    QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]);
    QR(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; i++) store_le32(out + 4 * i, x[i] + in[i]);
}

/* Four consecutive keystream blocks (counter .. counter+3, nonce 0) at once: each state
 * word is a vector whose lanes are the four blocks, which the compiler maps onto SIMD
 * registers (SSE2 on every x86_64). Same bytes as four uwrx_chacha20_block calls. */
typedef uint32_t v4u32 __attribute__((vector_size(16)));

static inline v4u32 rotl4(v4u32 x, int n) { return (x << n) | (x >> (32 - n)); }

static void chacha20_blocks4(const uint32_t key[8], uint64_t counter, uint8_t out[256]) {
  v4u32 in[16];
  static const uint32_t sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 4; i++) in[i] = (v4u32){sigma[i], sigma[i], sigma[i], sigma[i]};
  for (int i = 0; i < 8; i++) in[4 + i] = (v4u32){key[i], key[i], key[i], key[i]};
  uint64_t c[4] = {counter, counter + 1, counter + 2, counter + 3};
  in[12] = (v4u32){(uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2], (uint32_t)c[3]};
  in[13] = (v4u32){(uint32_t)(c[0] >> 32), (uint32_t)(c[1] >> 32), (uint32_t)(c[2] >> 32), (uint32_t)(c[3] >> 32)};
  in[14] = in[15] = (v4u32){0, 0, 0, 0};
  v4u32 x[16];
  memcpy(x, in, sizeof x);
  for (int i = 0; i < 10; i++) {
#define QR4(a, b, c, d)                                                                      \
  a += b, d = rotl4(d ^ a, 16), c += d, b = rotl4(b ^ c, 12), a += b, d = rotl4(d ^ a, 8), \
  c += d, b = rotl4(b ^ c, 7)
    QR4(x[0], x[4], x[8], x[12]);
    QR4(x[1], x[5], x[9], x[13]);
    QR4(x[2], x[6], x[10], x[14]);
    QR4(x[3], x[7], x[11], x[15]);
    QR4(x[0], x[5], x[10], x[15]);
    QR4(x[1], x[6], x[11], x[12]);
    QR4(x[2], x[7], x[8], x[13]);
    QR4(x[3], x[4], x[9], x[14]);
#undef QR4
  }
  for (int w = 0; w < 16; w++) x[w] += in[w];
  /* 4x4 transposes: words w..w+3 of block b become 16 contiguous bytes (x86_64 is little
   * endian, the byte order ChaCha20 specifies) */
  for (int w = 0; w < 16; w += 4) {
    v4u32 t0 = __builtin_shuffle(x[w], x[w + 1], (v4u32){0, 4, 1, 5});
    v4u32 t1 = __builtin_shuffle(x[w], x[w + 1], (v4u32){2, 6, 3, 7});
    v4u32 t2 = __builtin_shuffle(x[w + 2], x[w + 3], (v4u32){0, 4, 1, 5});
    v4u32 t3 = __builtin_shuffle(x[w + 2], x[w + 3], (v4u32){2, 6, 3, 7});
    v4u32 b0 = __builtin_shuffle(t0, t2, (v4u32){0, 1, 4, 5});
    v4u32 b1 = __builtin_shuffle(t0, t2, (v4u32){2, 3, 6, 7});
    v4u32 b2 = __builtin_shuffle(t1, t3, (v4u32){0, 1, 4, 5});
    v4u32 b3 = __builtin_shuffle(t1, t3, (v4u32){2, 3, 6, 7});
    memcpy(out + 4 * w, &b0, 16);
    memcpy(out + 64 + 4 * w, &b1, 16);
    memcpy(out + 128 + 4 * w, &b2, 16);
    memcpy(out + 192 + 4 * w, &b3, 16);
  }
}

static void key_words(const uwrx_seed *seed, uint32_t key[8]) {
  for (int i = 0; i < 8; i++) key[i] = load_le32(seed->bytes + 4 * i);
}

void uwrx_prng_derive(const uwrx_seed *parent, uint32_t label, uint32_t index,
                      uwrx_seed *out) {
  uint32_t key[8];
  uint8_t block[64];
  key_words(parent, key);
  uwrx_chacha20_block(key, 0, (uint64_t)label | (uint64_t)index << 32, block);
  memcpy(out->bytes, block, UWRX_SEED_BYTES);
}

void uwrx_stream_init(uwrx_stream *s, const uwrx_seed *seed, uint32_t kind, uint32_t index) {
  uwrx_seed k;
  uwrx_prng_derive(seed, kind, index, &k);
  key_words(&k, s->key);
  s->block = 0;
  s->avail = 0;
}

void uwrx_stream_read(uwrx_stream *s, void *out, size_t n) {
  uint8_t *p = out;
  while (n > 0) {
    if (s->avail == 0) {
      if (n >= 256) { /* four blocks at a time straight into the caller's buffer */
        chacha20_blocks4(s->key, s->block, p);
        s->block += 4;
        p += 256;
        n -= 256;
        continue;
      }
      if (n >= 64) { /* whole blocks straight into the caller's buffer */
        uwrx_chacha20_block(s->key, s->block++, 0, p);
        p += 64;
        n -= 64;
        continue;
      }
      uwrx_chacha20_block(s->key, s->block++, 0, s->buf);
      s->avail = 64;
    }
    size_t take = n < s->avail ? n : s->avail;
    memcpy(p, s->buf + (64 - s->avail), take);
    s->avail -= (uint32_t)take;
    p += take;
    n -= take;
  }
}

uint64_t uwrx_stream_position(const uwrx_stream *s) { return s->block * 64 - s->avail; }

void uwrx_proc_rng_init(uwrx_proc_rng *p, const uwrx_seed *parent_seed, uint32_t logical_pid) {
  memset(p, 0, sizeof *p);
  uwrx_prng_process_seed(parent_seed, logical_pid, &p->seed);
}

void uwrx_proc_rng_at_random(uwrx_proc_rng *p, uint8_t out[16]) {
  uwrx_stream s;
  uwrx_stream_init(&s, &p->seed, UWRX_PRNG_AT_RANDOM, p->execs++);
  uwrx_stream_read(&s, out, 16);
}

void uwrx_proc_rng_thread_stream(uwrx_proc_rng *p, uwrx_stream *out) {
  uwrx_seed thread;
  uwrx_prng_thread_seed(&p->seed, p->threads++, &thread);
  uwrx_stream_init(out, &thread, UWRX_PRNG_GETRANDOM, 0);
}

void uwrx_proc_rng_device_stream(uwrx_proc_rng *p, int dev_random, uwrx_stream *out) {
  if (dev_random) uwrx_stream_init(out, &p->seed, UWRX_PRNG_DEV_RANDOM, p->random_opens++);
  else uwrx_stream_init(out, &p->seed, UWRX_PRNG_DEV_URANDOM, p->urandom_opens++);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int uwrx_seed_parse_hex(const char *hex, size_t len, uwrx_seed *out) {
  if (len != 2 * UWRX_SEED_BYTES) return -1;
  for (size_t i = 0; i < UWRX_SEED_BYTES; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out->bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

void uwrx_seed_format_hex(const uwrx_seed *seed, char out[2 * UWRX_SEED_BYTES + 1]) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < UWRX_SEED_BYTES; i++) {
    out[2 * i] = digits[seed->bytes[i] >> 4];
    out[2 * i + 1] = digits[seed->bytes[i] & 15];
  }
  out[2 * UWRX_SEED_BYTES] = 0;
}
