/* Redirecting one of libc's system call wrappers to the recorder (redirect.h).
 *
 * Symbol interposition reaches the program's calls of fstat and stat, not libc's own:
 * opendir, stdio's buffer set-up, realpath and many more call libc's internal alias of
 * fstatat, which shares the exported function's code. Writing a jump over the first
 * bytes of that code catches both. It is done only when nothing can be running that
 * code: before main, with this the only thread of the process (a library constructor
 * may have started others: then nothing is patched and those calls take the
 * notification path, as before), and with every signal blocked while the bytes change. */
#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>

#include "redirect.h"

/* movabs $to, %rax; jmp *%rax */
#define JUMP_SIZE REC_REDIRECT_JUMP_SIZE

/* Whether this process runs one thread and shares its memory and signal handlers with no
 * other: unshare(CLONE_VM) checks exactly that and changes nothing (it fails with EINVAL
 * otherwise). A thread started without libc (a raw clone) does not clear
 * __libc_single_threaded; the kernel knows. */
static int alone(long (*sys)(long, long, long, long, long, long, long)) {
  return sys(SYS_unshare, CLONE_VM, 0, 0, 0, 0, 0) == 0;
}

int rec_redirect(const char *symbol, const unsigned char *expect, size_t expect_len, void *to,
                 long (*sys)(long, long, long, long, long, long, long)) {
  if (expect_len < JUMP_SIZE || !__libc_single_threaded) return -1;
  unsigned char *entry = dlsym(RTLD_NEXT, symbol);
  /* the function must be the wrapper we know: its instructions hold the jump */
  if (!entry || memcmp(entry, expect, expect_len) != 0 || !alone(sys)) return -1;
  unsigned char jump[JUMP_SIZE] = { 0x48, 0xb8 };
  uint64_t target = (uint64_t)(uintptr_t)to;
  memcpy(jump + 2, &target, sizeof target);
  jump[10] = 0xff, jump[11] = 0xe0;

  uintptr_t page = (uintptr_t)entry & ~(uintptr_t)4095;
  size_t span = ((uintptr_t)entry + JUMP_SIZE - page + 4095) & ~(size_t)4095;
  sigset_t all, old;
  sigfillset(&all);
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, sizeof(uint64_t), 0, 0);
  int ok = sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_WRITE, 0, 0, 0) == 0;
  if (ok) {
    /* byte by byte, no libc: its code on this page is not executable until restored */
    volatile unsigned char *w = entry;
    for (unsigned i = 0; i < JUMP_SIZE; i++) w[i] = jump[i];
    ok = sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_EXEC, 0, 0, 0) == 0;
  }
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, sizeof(uint64_t), 0, 0);
  return ok ? 0 : -1;
}
