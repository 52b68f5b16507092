/* The private uwrx control syscall, used by the ld.so shim to talk to uwrx-init.
 *
 * The shim issues syscall(UWRX_SYS_CONTROL, op, a1, a2, a3, a4, UWRX_CONTROL_MAGIC).
 * The number is far above any real x86_64 syscall, so outside uwrx the kernel answers
 * -ENOSYS and the shim carries on as a plain ld.so. Inside uwrx the seccomp filter
 * routes this number to the notification listener, and the handler answers it by
 * emulation (never CONTINUE, which would give -ENOSYS). A call whose sixth argument is
 * not UWRX_CONTROL_MAGIC is not ours: answer it with -ENOSYS.
 *
 * Shared by the shim (freestanding, no libc), uwrx-init and test/native/control_stub.c
 * (a stand-in handler showing the expected answers). Constants only, plus one struct
 * hidden from assembly.
 */
#ifndef UWRX_CONTROL_H
#define UWRX_CONTROL_H

/* 0x7577 = "uw". Not a kernel syscall number; x32's bit (0x40000000) is clear. */
#define UWRX_SYS_CONTROL 0x7577
#define UWRX_CONTROL_MAGIC 0x75777278 /* "uwrx" */
#define UWRX_CONTROL_VERSION 1

/* Operations (args[0]). Plain defines: this header is also included from assembly. */
/* () -> UWRX_CONTROL_VERSION. Lets a program check it runs under uwrx. */
#define UWRX_CTL_HELLO 0

/* (void *at_random, unsigned long len = 16, struct uwrx_ldso_state *state or 0)
 * -> UWRX_EXEC_RUN or UWRX_EXEC_SKIP|status.
 * Issued once per dynamically linked exec, before the real ld.so runs. The handler:
 *  1. writes `len` bytes of this exec's AT_RANDOM stream (prng.h,
 *     UWRX_PRNG_AT_RANDOM, index = exec ordinal within the process) to `at_random`
 *     in the target's memory (it is on the target's stack; /proc/TID/mem works),
 *  2. when `state` is given (the shim prepared the ld.so hook's state page,
 *     uwrx_recorder.h) and the run records in process: puts the process's recorder
 *     buffer in as a new descriptor and writes its number to state->recorder_fd (the
 *     shim maps it and closes it before ld.so runs); the buffer's clock read count is
 *     state->clock_reads. When the exec runs, the descriptor may instead come with the
 *     answer: state->recorder_fd is then UWRX_RECORDER_FD_RESULT and the call's result
 *     is the descriptor's number (meaning UWRX_EXEC_RUN),
 *  3. answers whether to run the exec (partial rebuild). The answer may be given
 *     later (the handler holds this one notification, never the others).
 * The shim treats -ENOSYS (not under uwrx) and any other error as "run, keep the
 * kernel's AT_RANDOM bytes". One call does both so an exec costs one round trip. */
#define UWRX_CTL_EXEC_START 1

/* (void *buf, unsigned long cap) -> (fd << 32) | n, or 0 when done.
 * Only after UWRX_EXEC_SKIP: the handler copies the next chunk (n <= cap bytes) of
 * the skipped process's recorded output into buf; the shim writes it to fd (1 or 2)
 * and asks again. At 0 the shim calls exit_group(status). */
#define UWRX_CTL_SKIP_OUTPUT 2

/* (unsigned long ms, long value, unsigned long timeout_ms) -> an answer derived from
 * `value`, `ms` later (-EIO after timeout_ms when that comes first; 0: no less than ms).
 * Reserved for uwrx's own tests: answered only in a run whose plan enables the
 * deferral test feature (uwrx-init/testdefer.c); elsewhere -ENOSYS. */
#define UWRX_CTL_TEST_DEFER 0x7e57
/* (unsigned long ms, long value) -> value, once the handler thread that took the call has
 * been held in it for ms (at most 5 s) without telling anyone: a call stuck in its
 * handler (init/notify.c, "whose turn it is to receive"). Reserved as UWRX_CTL_TEST_DEFER. */
#define UWRX_CTL_TEST_STUCK 0x7e58

/* Results of UWRX_CTL_EXEC_START. */
#define UWRX_EXEC_RUN 0
#define UWRX_EXEC_SKIP 0x100 /* | (exit status & 0xff) */

/* The private-path form: out/uwrx-shim itself bound over the PT_INTERP path(s) maps the
 * real dynamic linker from a private path, which the sandbox binds (or copies) there.
 * (In this form the static linker cannot use the file at the ld.so path: prefer the
 * combined form below wherever programs link.) Search order, first that exists and is
 * not itself a shim:
 *   1. the environment variable UWRX_LDSO_ENV (a path to the real ld.so),
 *   2. UWRX_LDSO_PATH (compile-time, -DUWRX_LDSO_PATH="..." to change it),
 *   3. the usual host locations (UWRX_LDSO_FALLBACKS), which outside the sandbox hold
 *      the real ld.so. The shim carries an ELF note (owner UWRX_SHIM_NOTE_NAME) and
 *      refuses to load a file that has it, so a bind-mounted path is skipped. */
#ifndef UWRX_LDSO_PATH
#define UWRX_LDSO_PATH "/.uwrx/ld.so"
#endif
#define UWRX_LDSO_ENV "UWRX_LDSO"
/* NUL-separated, ends with an empty string (no pointer table: the shim has no
 * relocation processing). */
#define UWRX_LDSO_FALLBACKS                                                            \
  "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\0"                                       \
  "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\0"                                   \
  "/lib64/ld-linux-x86-64.so.2\0"                                                      \
  "/usr/lib64/ld-linux-x86-64.so.2\0"
#define UWRX_SHIM_NOTE_NAME "uwrx"
#define UWRX_SHIM_NOTE_TYPE 0x75777278

/* The combined form (preferred in the sandbox): src/reproducibility/ldso-combine.ts
 * copies the real ld.so, adds a PT_LOAD (R+X) of the shim's image after ld.so's last
 * segment (the program header table, one entry longer, moves into that segment), points
 * e_entry at the shim and records the way back in the shim's info block below. That file is bind-mounted over
 * the PT_INTERP path(s): the kernel maps ld.so and the shim together, the shim jumps to
 * ld.so's original entry, and programs that read the file (the static linker resolving
 * libc.so's AS_NEEDED ld-linux-x86-64.so.2, gdb, ldd) still see ld.so's symbols. No
 * private path is needed then. The combiner finds the block by its magic. */
#define UWRX_SHIM_INFO_MAGIC "uwrx-shim-info1"
/* ld.so's rewritten system call sites (uwrx_recorder.h): at most this many, each with a
 * stub of this many bytes in the shim's stub area, found by this magic (15 bytes + NUL). */
#define UWRX_SHIM_MAX_SITES 8
#define UWRX_LDSO_STUB_SIZE 32
#define UWRX_LDSO_STUBS_MAGIC "uwrx-ldso-stubs"
#ifndef __ASSEMBLER__
#include <stdint.h>
struct uwrx_shim_info {
  char magic[16];           /* UWRX_SHIM_INFO_MAGIC and a NUL */
  int64_t ldso_entry_delta; /* ld.so's entry - the shim image's start; 0: not combined */
  /* ld.so's system calls the combiner sent to the shim's hook (uwrx_recorder.h, "the
   * dynamic linker's own calls"): where each was (relative to the image's start) and
   * its original 7 bytes (little-endian), so that the shim can put them back */
  uint32_t sites;
  uint32_t reserved;
  uint64_t site_code[UWRX_SHIM_MAX_SITES];
  int64_t site_delta[UWRX_SHIM_MAX_SITES];
};
#endif

#endif
