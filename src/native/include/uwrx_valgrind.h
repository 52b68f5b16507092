/* Whether this code runs on valgrind's synthetic CPU.
 *
 * Under valgrind every system call of the program is made by valgrind itself, which
 * refuses a number it does not know with a warning on stderr. The shim and the recorder
 * ask first and then make no control call (uwrx_control.h): the process is then
 * recorded as a static program is, through the notification path, and valgrind prints
 * what it prints natively.
 *
 * The question is valgrind's documented client request RUNNING_ON_VALGRIND (0x1001):
 * four rotations of %rdi by 128 bits in all, a no-op on a real CPU, then xchg %rbx,%rbx;
 * valgrind recognises the sequence and puts its answer in %rdx, which a real CPU leaves
 * at the default 0. Freestanding: usable from the shim. */
#ifndef UWRX_VALGRIND_H
#define UWRX_VALGRIND_H

#define UWRX_VG_RUNNING_ON_VALGRIND 0x1001

static inline int uwrx_on_valgrind(void) {
  volatile unsigned long request[6] = { UWRX_VG_RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0 };
  unsigned long answer = 0;
  __asm__ volatile("rolq $3, %%rdi\n\trolq $13, %%rdi\n\t"
                   "rolq $61, %%rdi\n\trolq $51, %%rdi\n\t"
                   "xchgq %%rbx, %%rbx"
                   : "=d"(answer)
                   : "a"(&request[0]), "0"(answer)
                   : "cc", "memory");
  return answer != 0;
}

#endif
