/* Raw x86_64 system calls and the few helpers the freestanding shim needs. */
#ifndef UWRX_SHIM_SYS_H
#define UWRX_SHIM_SYS_H

#include <stddef.h>
#include <stdint.h>

#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_pread64 17
#define SYS_lseek 8
#define SYS_memfd_create 319
#define SYS_exit_group 231
#define SYS_openat 257

#define AT_FDCWD_ (-100)
#define O_RDONLY_ 0
#define O_CLOEXEC_ 02000000
#define MFD_CLOEXEC_ 1
#define PROT_NONE_ 0
#define PROT_READ_ 1
#define PROT_WRITE_ 2
#define PROT_EXEC_ 4
#define MAP_PRIVATE_ 0x02
#define MAP_FIXED_ 0x10
#define MAP_ANONYMOUS_ 0x20
#define MAP_FIXED_NOREPLACE_ 0x100000
#define ENOSYS_ 38

static inline long shim_syscall6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

static inline long shim_syscall3(long n, long a, long b, long c) {
  return shim_syscall6(n, a, b, c, 0, 0, 0);
}

static inline size_t shim_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static inline int shim_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* Writes "uwrx-shim: <what><detail>\n" to stderr and exits 127, like a missing ld.so. */
__attribute__((noreturn)) void shim_die(const char *what, const char *detail);

/* ld.so loading (ldso_load.c). */
struct shim_loaded {
  uintptr_t base;  /* load bias */
  uintptr_t entry; /* absolute */
  uintptr_t phdr;  /* absolute address of the program headers in memory */
  unsigned long phnum;
};

/* Maps the ELF at `path` if it is a loadable x86_64 ET_DYN object that is not a shim.
 * 0 on success; -1 if the file is absent, not suitable or the shim itself (try the
 * next candidate); dies on a mapping failure after mapping started. */
int shim_load_ldso(const char *path, unsigned long page_size, struct shim_loaded *out);

#endif
