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

static int matches(const unsigned char *entry, const struct rec_redirect *r) {
  for (size_t i = 0; i < r->ncodes; i++)
    if (r->codes[i].len >= JUMP_SIZE && memcmp(entry, r->codes[i].bytes, r->codes[i].len) == 0) return 1;
  return 0;
}

#define REDIRECTS_MAX 8

int rec_redirect(const struct rec_redirect *list, size_t n, long (*sys)(long, long, long, long, long, long, long)) {
  if (!__libc_single_threaded) return 0;
  unsigned char *entries[REDIRECTS_MAX];
  void *targets[REDIRECTS_MAX];
  size_t found = 0;
  for (size_t i = 0; i < n && found < REDIRECTS_MAX; i++) {
    unsigned char *entry = dlsym(RTLD_NEXT, list[i].symbol);
    /* the function must be code we know: its instructions hold the jump */
    if (entry && matches(entry, &list[i])) entries[found] = entry, targets[found++] = list[i].to;
  }
  if (found == 0 || !alone(sys)) return 0;
  sigset_t all, old;
  sigfillset(&all);
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, sizeof(uint64_t), 0, 0);
  int done = 0;
  for (size_t i = 0; i < found; i++) {
    unsigned char jump[JUMP_SIZE] = { 0x48, 0xb8 };
    uint64_t target = (uint64_t)(uintptr_t)targets[i];
    memcpy(jump + 2, &target, sizeof target);
    jump[10] = 0xff, jump[11] = 0xe0;
    uintptr_t page = (uintptr_t)entries[i] & ~(uintptr_t)4095;
    size_t span = ((uintptr_t)entries[i] + JUMP_SIZE - page + 4095) & ~(size_t)4095;
    if (sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_WRITE, 0, 0, 0) != 0) continue;
    /* byte by byte, no libc: its code on this page is not executable until restored */
    volatile unsigned char *w = entries[i];
    for (unsigned k = 0; k < JUMP_SIZE; k++) w[k] = jump[k];
    if (sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_EXEC, 0, 0, 0) == 0) done++;
  }
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, sizeof(uint64_t), 0, 0);
  return done;
}
