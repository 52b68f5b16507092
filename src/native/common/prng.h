/* Hierarchical deterministic randomness (DESIGN.md section 4), the C half.
 * The TypeScript half is src/reproducibility/prng.ts; both are checked against
 * test/fixtures/prng-vectors.json.
 *
 * Construction: ChaCha20 (20 rounds, original layout: 256-bit key, 64-bit block
 * counter in words 12-13, 64-bit nonce in words 14-15).
 *   derive(key, label, index) = first 32 bytes of ChaCha20 block(key, counter 0,
 *                               nonce = (label, index)), label >= 1
 *   process seed  = derive(parent's process seed, UWRX_PRNG_PROCESS, logical pid);
 *                   the supervisor (logical pid 1) has the root seed (seed.txt)
 *   thread seed   = derive(process seed, UWRX_PRNG_THREAD, thread ordinal), 0 = main
 *   a stream      = ChaCha20 keystream under derive(seed, kind, index), nonce (0, 0),
 *                   counter 0, 1, 2 ... (2^70 bytes: endless for any build)
 * Keystream blocks use nonce (0, 0) and derivations a nonzero label, so no block is
 * ever used for both. */
#ifndef UWRX_PRNG_H
#define UWRX_PRNG_H

#include <stddef.h>
#include <stdint.h>

#define UWRX_SEED_BYTES 32

typedef struct {
  uint8_t bytes[UWRX_SEED_BYTES];
} uwrx_seed;

/* Labels of derivations (never 0). */
enum uwrx_prng_label {
  UWRX_PRNG_PROCESS = 1,     /* index: logical pid of the child */
  UWRX_PRNG_THREAD = 2,      /* index: thread ordinal in its process, 0 = main thread */
  UWRX_PRNG_GETRANDOM = 3,   /* stream of a thread seed, index 0 */
  UWRX_PRNG_AT_RANDOM = 4,   /* stream of a process seed, index: exec ordinal (0 = first) */
  UWRX_PRNG_DEV_URANDOM = 5, /* stream of a process seed, index: open ordinal of /dev/urandom */
  UWRX_PRNG_DEV_RANDOM = 6,  /* stream of a process seed, index: open ordinal of /dev/random */
  UWRX_PRNG_CLOCK = 7,       /* stream of a process seed, index 0: its clocks' offset at fork */
};

/* An endless byte stream. Plain data: copyable, no allocation. */
typedef struct {
  uint32_t key[8];
  uint64_t block; /* next block counter to generate */
  uint8_t buf[64];
  uint32_t avail; /* unread bytes at the end of buf */
} uwrx_stream;

/* One ChaCha20 block (20 rounds) of key, 64-bit counter, 64-bit nonce. */
void uwrx_chacha20_block(const uint32_t key[8], uint64_t counter, uint64_t nonce,
                         uint8_t out[64]);

void uwrx_prng_derive(const uwrx_seed *parent, uint32_t label, uint32_t index,
                      uwrx_seed *out);
static inline void uwrx_prng_process_seed(const uwrx_seed *parent, uint32_t logical_pid,
                                          uwrx_seed *out) {
  uwrx_prng_derive(parent, UWRX_PRNG_PROCESS, logical_pid, out);
}
static inline void uwrx_prng_thread_seed(const uwrx_seed *process, uint32_t ordinal,
                                         uwrx_seed *out) {
  uwrx_prng_derive(process, UWRX_PRNG_THREAD, ordinal, out);
}

/* The stream `kind` number `index` of `seed` (a process or thread seed). */
void uwrx_stream_init(uwrx_stream *s, const uwrx_seed *seed, uint32_t kind, uint32_t index);
void uwrx_stream_read(uwrx_stream *s, void *out, size_t n);
/* Bytes consumed so far. */
uint64_t uwrx_stream_position(const uwrx_stream *s);

/* Per-process randomness state for the handlers: the process seed and the ordinals
 * that pick its streams. Plain data; one per process, kept across exec. */
typedef struct {
  uwrx_seed seed;
  uint32_t execs;         /* AT_RANDOM streams handed out */
  uint32_t threads;       /* thread seeds handed out (0 = main thread) */
  uint32_t urandom_opens; /* /dev/urandom streams handed out */
  uint32_t random_opens;  /* /dev/random streams handed out */
} uwrx_proc_rng;

/* A new process: its seed from its parent's (the root seed when the parent is the
 * supervisor, logical pid 1) and its logical pid; all ordinals 0. */
void uwrx_proc_rng_init(uwrx_proc_rng *p, const uwrx_seed *parent_seed, uint32_t logical_pid);
/* The 16 AT_RANDOM bytes of the process's next exec (UWRX_CTL_EXEC_START). */
void uwrx_proc_rng_at_random(uwrx_proc_rng *p, uint8_t out[16]);
/* The getrandom stream of the process's next new thread (the first call: main thread). */
void uwrx_proc_rng_thread_stream(uwrx_proc_rng *p, uwrx_stream *out);
/* The stream of the process's next open of /dev/urandom (dev_random 0) or /dev/random (1). */
void uwrx_proc_rng_device_stream(uwrx_proc_rng *p, int dev_random, uwrx_stream *out);

/* The first 8 bytes (little-endian) of the process's UWRX_PRNG_CLOCK stream. */
uint64_t uwrx_proc_rng_clock_bits(const uwrx_proc_rng *p);

/* 64 hex digits (either case) -> seed. 0 on success, -1 if malformed. */
int uwrx_seed_parse_hex(const char *hex, size_t len, uwrx_seed *out);
/* 64 lowercase hex digits and a NUL. */
void uwrx_seed_format_hex(const uwrx_seed *seed, char out[2 * UWRX_SEED_BYTES + 1]);

#endif
