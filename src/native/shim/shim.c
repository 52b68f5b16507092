/* uwrx's ld.so shim: runs first in every dynamically linked exec inside the sandbox,
 * edits the auxiliary vector, asks uwrx through the control syscall for this exec's
 * AT_RANDOM bytes and whether to run, then enters the real ld.so with the original
 * stack. In the combined form (uwrx_control.h) the kernel has mapped ld.so already;
 * otherwise the shim maps it from a private path. Freestanding: no libc. */
#include <elf.h>

#include "sys.h"
#include "ldso_hook.h"
#include "uwrx_control.h"
#include "uwrx_recorder.h"
#include "uwrx_valgrind.h"

extern char _start[] __attribute__((visibility("hidden")));

/* Filled in by the combiner (src/reproducibility/ldso-combine.ts) when the shim is
 * appended to a copy of the real ld.so as an extra segment; all zero in out/uwrx-shim.
 * volatile: the compiler must not fold the zero. */
__attribute__((used, aligned(8))) static volatile const struct uwrx_shim_info shim_info = {
    .magic = UWRX_SHIM_INFO_MAGIC,
    .ldso_entry_delta = 0,
    .sites = 0,
};

static void write_all(long fd, const char *p, size_t n) {
  while (n > 0) {
    long r = shim_syscall3(SYS_write, fd, (long)p, (long)n);
    if (r == -4) continue; /* EINTR */
    if (r <= 0) return;
    p += r;
    n -= (size_t)r;
  }
}

void shim_die(const char *what, const char *detail) {
  const char *prefix = "uwrx-shim: ";
  write_all(2, prefix, shim_strlen(prefix));
  write_all(2, what, shim_strlen(what));
  write_all(2, detail, shim_strlen(detail));
  write_all(2, "\n", 1);
  for (;;) shim_syscall3(SYS_exit_group, 127, 0, 0);
}

static long control(long op, long a1, long a2, long a3) {
  return shim_syscall6(UWRX_SYS_CONTROL, op, a1, a2, a3, 0, (long)UWRX_CONTROL_MAGIC);
}

/* The recorded run of this exec is replayed: its output, then its exit status. */
__attribute__((noreturn)) static void replay_skipped(long decision) {
  char buf[8192]; /* on the stack: the combined form maps the shim read-only */
  for (;;) {
    long r = control(UWRX_CTL_SKIP_OUTPUT, (long)buf, sizeof buf, 0);
    if (r <= 0) break;
    long fd = r >> 32;
    size_t n = (size_t)(r & 0xffffffff);
    if (n > sizeof buf) break;
    write_all(fd, buf, n);
  }
  for (;;) shim_syscall3(SYS_exit_group, decision & 0xff, 0, 0);
}

/* Gives ld.so's rewritten system call sites their original bytes back (nothing else
 * runs yet: no thread, no signal handler). */
static void restore_ldso_sites(void) {
  for (uint32_t i = 0; i < shim_info.sites && i < UWRX_SHIM_MAX_SITES; i++) {
    unsigned char *site = (unsigned char *)__ehdr_start + shim_info.site_delta[i];
    uint64_t code = shim_info.site_code[i];
    unsigned char original[7];
    for (unsigned k = 0; k < sizeof original; k++) original[k] = (unsigned char)(code >> (8 * k));
    uintptr_t page = (uintptr_t)site & ~(uintptr_t)4095;
    long span = (long)(((uintptr_t)site + sizeof original - page + 4095) & ~(uintptr_t)4095);
    if (shim_syscall3(SYS_mprotect, (long)page, span, PROT_READ_ | PROT_WRITE_) != 0)
      shim_die("cannot restore ld.so's code", "");
    for (unsigned k = 0; k < sizeof original; k++) site[k] = original[k];
    shim_syscall3(SYS_mprotect, (long)page, span, PROT_READ_ | PROT_EXEC_);
  }
}

/* ld.so's rewritten system call sites need the gate page and the hook's state page
 * (uwrx_recorder.h); when either cannot be mapped at its address, the sites get their
 * original bytes back. */
static int prepare_ldso_hook(int fsgsbase) {
  static const unsigned char gate_code[] = { 0x0f, 0x05, 0xc3 }; /* syscall; ret: as recorder.c */
  /* both pages in one mapping (the state page follows the gate page); the gate's
   * protection changes alone */
  long gate = (long)shim_gate();
  long g = shim_syscall6(SYS_mmap, gate, 2 * 4096, PROT_READ_ | PROT_WRITE_,
                         MAP_PRIVATE_ | MAP_ANONYMOUS_ | MAP_FIXED_NOREPLACE_, -1, 0);
  if (g == gate) {
    unsigned char *code = (unsigned char *)gate;
    for (unsigned i = 0; i < sizeof gate_code; i++) code[i] = gate_code[i];
    if (shim_syscall3(SYS_mprotect, gate, 4096, PROT_READ_ | PROT_EXEC_) == 0) {
      struct uwrx_ldso_state *state = shim_state();
      state->magic = UWRX_LDSO_STATE_MAGIC;
      state->recorder_fd = -1;
      state->fsgsbase = fsgsbase;
      return 1;
    }
  }
  /* taken (EEXIST), or an old kernel that took the address as a hint */
  if ((unsigned long)g < -4096UL) shim_syscall3(SYS_munmap, g, 2 * 4096, 0);
  restore_ldso_sites();
  return 0;
}

static const char *env_value(char **envp, const char *name) {
  size_t n = shim_strlen(name);
  for (char **e = envp; *e; e++) {
    size_t i = 0;
    while (i < n && (*e)[i] == name[i]) i++;
    if (i == n && (*e)[n] == '=') return *e + n + 1;
  }
  return 0;
}

static void load_real_ldso(char **envp, int secure, unsigned long pg, struct shim_loaded *ld) {
  const char *env = secure ? 0 : env_value(envp, UWRX_LDSO_ENV);
  if (env && *env) {
    if (shim_load_ldso(env, pg, ld) == 0) return;
    shim_die("cannot load the real ld.so from $" UWRX_LDSO_ENV "=", env);
  }
  if (shim_load_ldso(UWRX_LDSO_PATH, pg, ld) == 0) return;
  for (const char *p = UWRX_LDSO_FALLBACKS; *p; p += shim_strlen(p) + 1)
    if (shim_load_ldso(p, pg, ld) == 0) return;
  shim_die("no real ld.so found at ", UWRX_LDSO_PATH);
}

/* Whether ld.so will only list the libraries the program would load and exit without
 * running it, as for ldd: LD_TRACE_LOADED_OBJECTS set to anything, or, ld.so run
 * directly, `--list` among its options (those before the program's name). */
static int listing_only(int direct, long argc, char **argv, char **envp) {
  if (env_value(envp, "LD_TRACE_LOADED_OBJECTS")) return 1;
  if (!direct) return 0;
  /* one string, not an array of pointers: the shim has no relocations */
  static const char with_value[] = "--library-path\0--inhibit-rpath\0--audit\0--preload\0--argv0\0"
                                   "--glibc-hwcaps-prefer\0--glibc-hwcaps-mask\0";
  for (long i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (argv[i][2] == 0) return 0;
    if (shim_streq(argv[i], "--list")) return 1;
    for (const char *o = with_value; *o; o += shim_strlen(o) + 1)
      if (shim_streq(argv[i], o)) {
        i++;
        break;
      }
  }
  return 0;
}

/* Called from _start with the initial stack; returns where to jump. */
uintptr_t shim_main(uintptr_t *sp) {
  long argc = (long)sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  char **e = envp;
  while (*e) e++;
  Elf64_auxv_t *auxv = (Elf64_auxv_t *)(e + 1);

  int fsgsbase = 0;
  Elf64_auxv_t *vdso = 0;
  uintptr_t entry = 0;
  for (Elf64_auxv_t *a = auxv; a->a_type != AT_NULL; a++) {
    if (a->a_type == AT_SYSINFO_EHDR) vdso = a;
    if (a->a_type == AT_HWCAP2) fsgsbase = (a->a_un.a_val & 2 /* HWCAP2_FSGSBASE */) != 0;
    if (a->a_type == AT_ENTRY) entry = a->a_un.a_val;
  }
  /* Run directly (`uwrx-shim prog`, `ld.so --list prog`): the kernel described us as
   * the program. */
  int direct = entry == (uintptr_t)_start;
  /* A listing runs nothing of the program, so it keeps what it would print natively:
   * the vDSO, and no recorder library (uwrx_ldso_state.listing). */
  int listing = listing_only(direct, argc, argv, envp);

  /* the hook's state page first: the exec's control call fills in its recorder buffer */
  int64_t delta = shim_info.ldso_entry_delta;
  /* on valgrind, no control call (uwrx_valgrind.h): the exec runs as a static one would */
  int valgrind = uwrx_on_valgrind();
  if (valgrind && delta != 0 && shim_info.sites) restore_ldso_sites();
  struct uwrx_ldso_state *state =
      !valgrind && delta != 0 && shim_info.sites && prepare_ldso_hook(fsgsbase) ? shim_state() : 0;

  /* Drop AT_SYSINFO_EHDR: without it libc finds no vDSO and makes real (interceptable)
   * clock_gettime/gettimeofday/time syscalls. With the state page, the entry says so
   * instead (uwrx_recorder.h, UWRX_AUXV_STATE_TYPE); else the rest shifts down. */
  if (state) state->listing = listing;
  if (listing) {
    /* the vDSO stays */
  } else if (vdso && state) {
    vdso->a_type = UWRX_AUXV_STATE_TYPE;
    vdso->a_un.a_val = (unsigned long)state;
  } else if (vdso) {
    Elf64_auxv_t *w = vdso;
    for (Elf64_auxv_t *r = vdso + 1;; r++, w++) {
      w->a_type = r->a_type;
      w->a_un.a_val = r->a_un.a_val;
      if (r->a_type == AT_NULL) break;
    }
  }

  Elf64_auxv_t *at_base = 0, *at_entry = 0, *at_phdr = 0, *at_phnum = 0;
  uintptr_t random = 0;
  unsigned long pg = 4096;
  int secure = 0;
  for (Elf64_auxv_t *a = auxv; a->a_type != AT_NULL; a++) {
    switch (a->a_type) {
    case AT_BASE: at_base = a; break;
    case AT_ENTRY: at_entry = a; break;
    case AT_PHDR: at_phdr = a; break;
    case AT_PHNUM: at_phnum = a; break;
    case AT_RANDOM: random = a->a_un.a_val; break;
    case AT_PAGESZ: pg = a->a_un.a_val; break;
    case AT_SECURE: secure = a->a_un.a_val != 0; break;
    }
  }

  /* Run directly, the real ld.so must see itself as the program, as it would if the
   * kernel had run it, and it loads the program named in argv itself. */
  /* prepared at the execve (uwrx_recorder.h): the exec runs, and nothing is asked */
  int prepared = state && shim_take_prepared(state, random) != 0;
  long decision = valgrind || prepared ? UWRX_EXEC_RUN : control(UWRX_CTL_EXEC_START, (long)random, random ? 16 : 0, (long)state);
  if (state && state->recorder_fd == UWRX_RECORDER_FD_RESULT) {
    /* the buffer came with the answer: its descriptor is the result, and the exec runs */
    state->recorder_fd = decision >= 0 ? (int32_t)decision : -1;
    decision = UWRX_EXEC_RUN;
  }
  if (decision >= UWRX_EXEC_SKIP && decision <= (UWRX_EXEC_SKIP | 0xff)) replay_skipped(decision);
  if (state && state->recorder_fd >= 0) {
    long fd = state->recorder_fd;
    state->recorder_fd = -1;
    shim_adopt_recorder(state, fd, state->recorder_pid, state->recorder_flags);
  }

  struct shim_loaded ld;
  if (delta != 0) {
    /* Combined form: the kernel already mapped ld.so (with us as an extra segment);
     * AT_BASE and, when run directly, AT_PHDR/AT_PHNUM already describe it. */
    ld.entry = (uintptr_t)__ehdr_start + (uintptr_t)delta;
    if (direct && at_entry) at_entry->a_un.a_val = ld.entry;
    return ld.entry;
  }
  load_real_ldso(envp, secure, pg, &ld);

  if (direct) {
    if (at_entry) at_entry->a_un.a_val = ld.entry;
    if (at_phdr && ld.phdr) at_phdr->a_un.a_val = ld.phdr;
    if (at_phnum && ld.phdr) at_phnum->a_un.a_val = ld.phnum;
    if (at_base) at_base->a_un.a_val = 0;
  } else if (at_base) {
    at_base->a_un.a_val = ld.base;
  }
  return ld.entry;
}
