/* The recorder's two ways into the kernel, shared by its files: an ordinary syscall
 * instruction, which the seccomp filter sees (the notification path), and the gate page
 * at rec_gate_addr, whose calls the filter lets through by address (uwrx_recorder.h). */
#ifndef UWRX_REC_GATE_H
#define UWRX_REC_GATE_H

#include <errno.h>

#include "uwrx_recorder.h"

/* An ordinary syscall instruction: the seccomp filter sees it (notification path). */
static inline long slow6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

/* The gate page of this process image (uwrx_recorder.h): the near or the far one, as
 * the shim chose (recorder.c sets it with the state page it finds); the far one when the
 * recorder maps the gate itself. */
extern unsigned long rec_gate_addr __attribute__((visibility("hidden")));

/* The gate: `syscall; ret` at rec_gate_addr, allowed by address. Built with
 * -mno-red-zone: the call pushes below the stack pointer. */
static inline long gate6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("call *%[gate]"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9), [gate] "r"(rec_gate_addr)
                   : "rcx", "r11", "memory");
  return ret;
}

/* A raw result as libc returns it: -1 with errno set for an error. */
static inline long set_errno(long r) {
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return -1;
  }
  return r;
}

#endif
