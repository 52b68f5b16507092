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

static int same_code(const unsigned char *entry, const struct rec_code *c) {
  if (!c->mask) return memcmp(entry, c->bytes, c->len) == 0;
  for (size_t k = 0; k < c->len; k++)
    if ((entry[k] & c->mask[k]) != (c->bytes[k] & c->mask[k])) return 0;
  return 1;
}

static int matches(const unsigned char *entry, const struct rec_redirect *r) {
  for (size_t i = 0; i < r->ncodes; i++)
    if (r->codes[i].len >= JUMP_SIZE && same_code(entry, &r->codes[i])) return 1;
  return 0;
}

/* MADV_POPULATE_WRITE (Linux 5.14), which older headers lack */
#define MADV_POPULATE_WRITE_ 23

/* The widest range of code made writable at once for several entries. */
#define REDIRECT_SPAN_MAX (1024 * 1024)

/* Writes the jumps of `n` entries, all within [page, page + span), with every signal
 * blocked; returns how many were written and made executable again. */
static int patch(unsigned char *const *entries, void *const *targets, size_t n, uintptr_t page, size_t span,
                 long (*sys)(long, long, long, long, long, long, long)) {
  unsigned char jumps[REC_REDIRECTS_MAX][JUMP_SIZE];
  for (size_t i = 0; i < n; i++) {
    uint64_t target = (uint64_t)(uintptr_t)targets[i];
    jumps[i][0] = 0x48, jumps[i][1] = 0xb8;
    memcpy(jumps[i] + 2, &target, sizeof target);
    jumps[i][10] = 0xff, jumps[i][11] = 0xe0;
  }
  if (sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_WRITE, 0, 0, 0) != 0) return 0;
  /* Each written page becomes the process's own copy. Asked for in one call per page
   * rather than taken by a write fault each: a fault is dear where exceptions are (15-28
   * us on some virtual machines against 3 for the call). A kernel before 5.14 refuses the
   * call (EINVAL): then the writes fault as before. */
  uintptr_t done_page = 0;
  for (size_t i = 0; i < n; i++) {
    uintptr_t first = (uintptr_t)entries[i] & ~(uintptr_t)4095;
    uintptr_t last = ((uintptr_t)entries[i] + JUMP_SIZE - 1) & ~(uintptr_t)4095;
    if (first == done_page) first += 4096;
    if (first <= last) sys(SYS_madvise, (long)first, (long)(last - first + 4096), MADV_POPULATE_WRITE_, 0, 0, 0);
    done_page = last;
  }
  /* byte by byte, no libc: its code on these pages is not executable until restored */
  for (size_t i = 0; i < n; i++) {
    volatile unsigned char *w = entries[i];
    for (unsigned k = 0; k < JUMP_SIZE; k++) w[k] = jumps[i][k];
  }
  return sys(SYS_mprotect, (long)page, (long)span, PROT_READ | PROT_EXEC, 0, 0, 0) == 0 ? (int)n : 0;
}

int rec_redirect(const struct rec_redirect *list, size_t n, long (*sys)(long, long, long, long, long, long, long)) {
  if (!__libc_single_threaded) return 0;
  unsigned char *entries[REC_REDIRECTS_MAX];
  void *targets[REC_REDIRECTS_MAX];
  size_t found = 0;
  for (size_t i = 0; i < n && found < REC_REDIRECTS_MAX; i++) {
    unsigned char *entry = dlsym(RTLD_NEXT, list[i].symbol);
    /* the function must be code we know: its instructions hold the jump */
    if (entry && matches(entry, &list[i])) entries[found] = entry, targets[found++] = list[i].to;
  }
  if (found == 0 || !alone(sys)) return 0;
  sigset_t all, old;
  sigfillset(&all);
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, sizeof(uint64_t), 0, 0);
  /* Entries close together (libc's are a few pages apart) change protection once: each
   * mprotect splits the code's mapping and flushes the TLB, a measurable part of what
   * the recorder costs a short process. Only the written pages are copied. */
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (size_t i = 0; i < found; i++) {
    uintptr_t page = (uintptr_t)entries[i] & ~(uintptr_t)4095;
    uintptr_t end = ((uintptr_t)entries[i] + JUMP_SIZE + 4095) & ~(uintptr_t)4095;
    if (page < lo) lo = page;
    if (end > hi) hi = end;
  }
  int done = hi - lo <= REDIRECT_SPAN_MAX ? patch(entries, targets, found, lo, hi - lo, sys) : 0;
  if (done == 0) { /* far apart, or a gap in the range: one entry at a time */
    for (size_t i = 0; i < found; i++) {
      uintptr_t page = (uintptr_t)entries[i] & ~(uintptr_t)4095;
      size_t span = ((uintptr_t)entries[i] + JUMP_SIZE - page + 4095) & ~(size_t)4095;
      done += patch(&entries[i], &targets[i], 1, page, span, sys);
    }
  }
  sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, sizeof(uint64_t), 0, 0);
  return done;
}
