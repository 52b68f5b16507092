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
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>

#include "redirect.h"

/* movabs $to, %rax; jmp *%rax */
#define JUMP_SIZE 12

static int threads_of_this_process(long (*sys)(long, long, long, long, long, long, long)) {
  char buf[512];
  long fd = sys(SYS_openat, -100 /* AT_FDCWD */, (long)"/proc/self/stat", 02000000 /* O_CLOEXEC */, 0, 0, 0);
  if (fd < 0) return -1;
  long n = sys(SYS_read, fd, (long)buf, sizeof buf - 1, 0, 0, 0);
  sys(SYS_close, fd, 0, 0, 0, 0, 0);
  if (n <= 0) return -1;
  buf[n] = 0;
  /* "pid (comm) state ppid ...": num_threads is the 18th field after the comm */
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  for (int field = 0; field < 18 && p; field++) p = strchr(p + 1, ' ');
  if (!p) return -1;
  int threads = 0;
  for (p++; *p >= '0' && *p <= '9'; p++) threads = threads * 10 + (*p - '0');
  return threads;
}

int rec_redirect(const char *symbol, const unsigned char *expect, size_t expect_len, void *to,
                 long (*sys)(long, long, long, long, long, long, long)) {
  if (!__libc_single_threaded || threads_of_this_process(sys) != 1) return -1;
  unsigned char *entry = dlsym(RTLD_NEXT, symbol);
  if (!entry) return -1;
  /* the function must be the wrapper we know, and long enough to hold the jump */
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (!dladdr1(entry, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size < JUMP_SIZE ||
      expect_len > sym->st_size || memcmp(entry, expect, expect_len) != 0)
    return -1;
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
