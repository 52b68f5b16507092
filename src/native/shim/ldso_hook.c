/* The dynamic linker's opens and stats, recorded in process (uwrx_recorder.h, "the
 * dynamic linker's own calls"), and its look for /etc/ld.so.preload, answered with
 * uwrx's preload list. shim_ldso_call is reached from ld.so's rewritten system
 * call sites through start.S's ldso_common, with the call's registers. It runs inside
 * ld.so (before the recorder library exists, and later for dlopen), so it is as plain as
 * the rest of the shim: no libc, no writable data of its own (its state is on the page
 * the shim maps after the gate page, shim_state), no floating-point or vector registers
 * (ld.so keeps values in them across a syscall: built with -mgeneral-regs-only). */
#include "sys.h"
#include "ldso_hook.h"
#include "uwrx_access_record.h"
#include "uwrx_control.h"
#include "uwrx_recorder.h"

#define SYS_open 2
#define SYS_access 21
#define SYS_madvise 28
#define SYS_getpid 39
#define SYS_getcwd 79
#define SYS_clock_gettime 228
#define SYS_newfstatat 262
#define O_ACCMODE_ 3
#define O_CREAT_ 0100
#define O_TRUNC_ 01000
#define O_DIRECTORY_ 0200000
#define O_TMPFILE_ 020200000
#define CLOCK_BOOTTIME_ 7
#define MADV_RANDOM_ 1

/* A call through the gate page (allowed by the filter for the calls made here). */
static long gate6(long n, long a, long b, long c, long d) {
  register long r10 __asm__("r10") = d;
  long ret;
  __asm__ volatile("lea -128(%%rsp), %%rsp\n\tcall *%[gate]\n\tlea 128(%%rsp), %%rsp"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), [gate] "r"((long)shim_gate())
                   : "rcx", "r11", "memory");
  return ret;
}


struct uwrx_rec_header *shim_adopt_recorder(struct uwrx_ldso_state *s, long fd, int32_t pid, uint32_t flags) {
  struct uwrx_rec_header *h = uwrx_rec_map(fd, shim_gate(), shim_syscall6, !(flags & UWRX_REC_TMPFS));
  if (!h) return 0;
  s->owner = pid > 0 ? pid : (int32_t)gate6(SYS_getpid, 0, 0, 0, 0);
  __atomic_store_n(&s->hdr, h, __ATOMIC_RELEASE);
  return h;
}

struct uwrx_rec_header *shim_take_prepared(struct uwrx_ldso_state *s, unsigned long at_random) {
  /* UWRX_EXEC_DIR "/<pid>", on the state page: no stack page touched for it */
  static const char dir[] = UWRX_EXEC_DIR "/";
  char *path = (char *)s + UWRX_LDSO_EXEC_PATH_OFFSET;
  int32_t pid = (int32_t)gate6(SYS_getpid, 0, 0, 0, 0);
  char digits[12];
  int n = 0;
  for (uint32_t v = (uint32_t)pid; n == 0 || v; v /= 10) digits[n++] = (char)('0' + v % 10);
  unsigned len = 0;
  for (; dir[len]; len++) path[len] = dir[len];
  while (n > 0) path[len++] = digits[--n];
  path[len] = 0;
  long fd = gate6(SYS_open, (long)path, UWRX_EXEC_OPEN_FLAGS, 0, 0);
  if (fd < 0) return 0; /* not prepared (or not in this sandbox): the control call asks */
  struct uwrx_rec_header *h = uwrx_rec_map(fd, shim_gate(), shim_syscall6, 0);
  if (!h) return 0;
  uint32_t seq = __atomic_load_n(&h->exec_seq, __ATOMIC_ACQUIRE);
  if (seq == 0 || h->exec_pid != pid || __atomic_load_n(&h->exec_taken, __ATOMIC_RELAXED) == seq ||
      h->exec_count_addr != (uint64_t)(uintptr_t)&s->clock_reads) {
    /* another exec's, taken, or leased for a count elsewhere: this one asks */
    shim_syscall6(SYS_munmap, (long)h, (long)UWRX_REC_FILE_SIZE, 0, 0, 0, 0);
    return 0;
  }
  uint32_t flags = h->exec_flags;
  if (!(flags & UWRX_REC_TMPFS)) shim_syscall6(SYS_madvise, (long)h, (long)UWRX_REC_FILE_SIZE, MADV_RANDOM_, 0, 0, 0);
  if (at_random) {
    unsigned char *to = (unsigned char *)at_random;
    for (unsigned i = 0; i < sizeof h->exec_random; i++) to[i] = h->exec_random[i];
  }
  s->recorder_pid = pid;
  s->recorder_flags = flags;
  __atomic_store_n(&h->exec_taken, seq, __ATOMIC_RELEASE);
  s->owner = pid;
  __atomic_store_n(&s->hdr, h, __ATOMIC_RELEASE);
  return h;
}

/* Whether ld.so is still loading the exec's libraries: the thread pointer is still the
 * zero the kernel's exec left, which it stays until ld.so sets up TLS, before any of the
 * program's code (a constructor that could fork) runs. Then this process is the one the
 * exec made and the buffer's owner without a getpid (one per call: several for each
 * library a program loads). A forked or CLONE_VM child runs with its parent's or its own
 * non-zero thread pointer: no glibc code runs without one. */
static int loading_exec(const struct uwrx_ldso_state *s) {
  if (!s->fsgsbase) return 0;
  unsigned long base;
  __asm__ volatile("rdfsbase %0" : "=r"(base));
  return base == 0;
}

/* This process's recorder buffer: the one the exec's control call put in, else set up
 * on the first call; NULL when there is none (the run records nothing in process, or
 * this is a forked child before the recorder library took over in it). */
static struct uwrx_rec_header *buffer(struct uwrx_ldso_state *s) {
  struct uwrx_rec_header *h = __atomic_load_n(&s->hdr, __ATOMIC_ACQUIRE);
  if (h) return loading_exec(s) || (long)s->owner == gate6(SYS_getpid, 0, 0, 0, 0) ? h : 0;
  if (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) return 0; /* another thread, or it failed */
  long fd = shim_syscall6(UWRX_SYS_CONTROL, UWRX_CTL_RECORDER, (long)&s->clock_reads, 0, 0, 0, (long)UWRX_CONTROL_MAGIC);
  if (fd < 0) return 0; /* busy stays set: nothing to retry */
  return shim_adopt_recorder(s, fd, 0, 0);
}

static int read_only(long flags) {
  if ((flags & O_TMPFILE_) == O_TMPFILE_) return 0;
  return (flags & O_ACCMODE_) == 0 && !(flags & (O_CREAT_ | O_TRUNC_));
}

/* The length of absolute `path` when it is already lexically normal (no empty, "." or
 * ".." component, no trailing slash) and well within a record's bounds; else 0. */
static size_t normal_length(const char *path) {
  size_t i = 0;
  while (path[i] == '/') {
    size_t n = 0;
    while (path[i + 1 + n] && path[i + 1 + n] != '/') n++;
    if (n == 0 || (n == 1 && path[i + 1] == '.') || (n == 2 && path[i + 1] == '.' && path[i + 2] == '.')) return 0;
    i += 1 + n;
    if (i >= UWRX_ACCESS_PATH_CAP - 2) return 0;
  }
  return path[i] == 0 ? i : 0;
}

static void append(struct uwrx_rec_header *h, uint32_t op, const char *path, size_t len, int32_t flags, long result);

/* `path` normalised on the stack first: a page of it, which the dynamic linker's own
 * paths (already normal) do not need (a page fault in every process). */
__attribute__((noinline)) static void record_normalised(struct uwrx_rec_header *h, uint32_t op, const char *path,
                                                        int32_t flags, long result) {
  char abs[UWRX_ACCESS_PATH_CAP];
  abs[0] = '/';
  size_t len = uwrx_join_normal(abs, 1, path);
  if (len == 0) return; /* too long for a record: the call was made all the same */
  append(h, op, abs, len, flags, result);
}

static void record(struct uwrx_rec_header *h, uint32_t op, const char *path, int32_t flags, long result) {
  size_t len = normal_length(path);
  if (len == 0) record_normalised(h, op, path, flags, result);
  else append(h, op, path, len, flags, result);
}

static void append(struct uwrx_rec_header *h, uint32_t op, const char *path, size_t len, int32_t flags, long result) {
  /* the start-up's loads take a millisecond or so: one time for all of them (a clock
   * read is a system call here, and programs are measured by theirs); dlopen later
   * reads it each time */
  struct uwrx_ldso_state *s = shim_state();
  int64_t t = __atomic_load_n(&s->started, __ATOMIC_RELAXED) ? 0 : __atomic_load_n(&s->startup_ns, __ATOMIC_RELAXED);
  if (t == 0) {
    long ts[2] = { 0, 0 };
    gate6(SYS_clock_gettime, CLOCK_BOOTTIME_, (long)ts, 0, 0);
    t = (int64_t)ts[0] * 1000000000 + ts[1];
    if (!__atomic_load_n(&s->started, __ATOMIC_RELAXED)) __atomic_store_n(&s->startup_ns, t, __ATOMIC_RELAXED);
  }
  uwrx_append_access(h, (uint64_t)t, op, flags, result, path, len);
}

static int own_file(const char *path) {
  static const char prefix[] = UWRX_OWN_PREFIX;
  for (unsigned i = 0; i < sizeof prefix - 1; i++)
    if (path[i] != prefix[i]) return 0;
  return 1;
}


/* Copies what is left of `from` to the end of `to` (a memfd); 0, or -1 on an error. */
static int copy_rest(long from, long to) {
  char chunk[512];
  for (;;) {
    long n = shim_syscall3(SYS_read, from, (long)chunk, sizeof chunk);
    if (n <= 0) return n == 0 ? 0 : -1;
    for (long done = 0; done < n;) {
      long w = gate6(SYS_write, to, (long)(chunk + done), n - done, 0);
      if (w <= 0) return -1;
      done += w;
    }
  }
}

static const char etc_preload[] = "/etc/ld.so.preload";

static long recorded_call(struct uwrx_ldso_state *s, long a0, long a1, long a2, long a3, long nr);

/* The preload list ld.so reads: uwrx's own, then whatever the sandbox has at
 * /etc/ld.so.preload (the host's file, or one written during the run), in a memfd, so
 * those libraries are preloaded as natively, after LD_PRELOAD's and uwrx's recorder.
 * Only that file, as ld.so would read it, when it merely lists the libraries (ldd), or
 * when uwrx-init left the recorder library out of this image (UWRX_REC_NO_LIBRARY). The
 * open of that file is recorded like ld.so's others; without it, uwrx's list is opened as
 * it is. ld.so opens it by the path /etc/ld.so.preload (its access check answered below),
 * or by UWRX_PRELOAD_LIST where the combiner wrote that path over ld.so's. */
static long preload_list(struct uwrx_ldso_state *s, long flags) {
  long host = recorded_call(s, AT_FDCWD_, (long)etc_preload, O_RDONLY_ | O_CLOEXEC_, 0, SYS_openat);
  /* ENOENT: ld.so reads no list, as natively without one */
  if (s->listing || (__atomic_load_n(&s->recorder_flags, __ATOMIC_RELAXED) & UWRX_REC_NO_LIBRARY)) return host;
  long list = gate6(SYS_openat, AT_FDCWD_, (long)UWRX_PRELOAD_LIST, flags, 0);
  if (host < 0 || list < 0) {
    if (host >= 0) shim_syscall3(SYS_close, host, 0, 0);
    return list;
  }
  long mem = shim_syscall3(SYS_memfd_create, (long)"ld.so.preload", MFD_CLOEXEC_, 0);
  if (mem >= 0 && copy_rest(list, mem) == 0 && gate6(SYS_write, mem, (long)"\n", 1, 0) == 1 && copy_rest(host, mem) == 0 &&
      shim_syscall3(SYS_lseek, mem, 0, 0) == 0) {
    shim_syscall3(SYS_close, list, 0, 0);
    list = mem;
  } else if (mem >= 0) {
    shim_syscall3(SYS_close, mem, 0, 0);
    shim_syscall3(SYS_lseek, list, 0, 0); /* uwrx's list alone, read again from its start */
  }
  shim_syscall3(SYS_close, host, 0, 0);
  return list;
}

/* ld.so's opens of uwrx's own files (the preload list and the recorder library, in every
 * process) and its fstat of each descriptor they return: from the gate as they are, but
 * neither recorded (the collector drops them) nor counted, so without the buffer's getpid.
 * 1 with the result in *out, or 0. */
static int own_call(struct uwrx_ldso_state *s, long nr, long a0, const char *path, long a2, long a3, long *out) {
  if (nr == SYS_openat) {
    int list = shim_streq(path, UWRX_PRELOAD_LIST) || (path[0] == '/' && shim_streq(path, etc_preload));
    if (!(list || own_file(path)) || !read_only(a2)) {
      __atomic_store_n(&s->own_fd, 0, __ATOMIC_RELAXED);
      return 0;
    }
    long r = list ? preload_list(s, a2) : gate6(nr, a0, (long)path, a2, a3);
    __atomic_store_n(&s->own_fd, r >= 0 && r < 0x7fffffff ? (int32_t)(r + 1) : 0, __ATOMIC_RELAXED);
    if (list) __atomic_store_n(&s->list_fd, r >= 0 && r < 0x7fffffff ? (int32_t)(r + 1) : 0, __ATOMIC_RELAXED);
    *out = r;
    return 1;
  }
  if (path[0] != 0 || a0 < 0 || a0 >= 0x7fffffff || __atomic_load_n(&s->own_fd, __ATOMIC_RELAXED) != a0 + 1) return 0;
  __atomic_store_n(&s->own_fd, 0, __ATOMIC_RELAXED);
  *out = gate6(nr, a0, (long)path, a2, a3);
  return 1;
}

/* ld.so's mmap of the preload list it just opened (_dl_sysdep_read_whole_file: the whole
 * file, private, no fixed address): the file read into the state page, which is what the
 * mapping would show (zeros past the end of the file); 0 when it is not that mmap or
 * does not fit, and then the mmap is made. */
static long list_copy(struct uwrx_ldso_state *s, long addr, long len, long prot, long flags, long fd, long off) {
  int32_t list = __atomic_exchange_n(&s->list_fd, 0, __ATOMIC_RELAXED);
  if (list == 0 || fd != list - 1 || addr != 0 || off != 0 || len <= 0 || len > UWRX_LDSO_LIST_CAP ||
      flags != MAP_PRIVATE_ || (prot & ~(long)(PROT_READ_ | PROT_WRITE_)) || s->list_len != 0)
    return 0;
  char *buf = (char *)s + UWRX_LDSO_LIST_OFFSET;
  long got = 0;
  while (got < len) {
    long n = shim_syscall6(SYS_pread64, fd, (long)(buf + got), len - got, got, 0, 0);
    if (n == -4) continue; /* EINTR */
    if (n < 0) return 0;
    if (n == 0) break;
    got += n;
  }
  for (long i = got; i < len; i++) buf[i] = 0;
  s->list_len = (uint32_t)len;
  return (long)buf;
}

long shim_ldso_call(long a0, long a1, long a2, long a3, long nr, long a4, long a5) {
  struct uwrx_ldso_state *s = shim_state();
  if (nr == SYS_mmap || nr == SYS_munmap) {
    if (s->magic == UWRX_LDSO_STATE_MAGIC) {
      long copy = nr == SYS_mmap ? list_copy(s, a0, a1, a2, a3, a4, a5) : 0;
      if (copy) return copy;
      if (nr == SYS_munmap && s->list_len != 0 && a0 == (long)s + UWRX_LDSO_LIST_OFFSET) {
        s->list_len = 0;
        return 0;
      }
    }
    return shim_syscall6(nr, a0, a1, a2, a3, a4, a5);
  }
  if (nr == SYS_access) {
    /* ld.so reads /etc/ld.so.preload only when this says it is there: uwrx's list always
     * is (a listing reads the file alone, as natively) */
    if (s->magic == UWRX_LDSO_STATE_MAGIC && !s->listing && a0 && shim_streq((const char *)a0, etc_preload)) return 0;
    return shim_syscall6(nr, a0, a1, a2, a3, a4, a5);
  }
  const char *path = (const char *)a1;
  long own;
  if (s->magic == UWRX_LDSO_STATE_MAGIC && path && (nr == SYS_openat || nr == SYS_newfstatat) &&
      own_call(s, nr, a0, path, a2, a3, &own))
    return own;
  if (!(nr == SYS_openat || nr == SYS_newfstatat)) return shim_syscall6(nr, a0, a1, a2, a3, a4, a5);
  return recorded_call(s, a0, a1, a2, a3, nr);
}

/* A call of ld.so made from the gate and recorded in the process's buffer when it is
 * an open or stat the record holds; else made as it was. */
static long recorded_call(struct uwrx_ldso_state *s, long a0, long a1, long a2, long a3, long nr) {
  const char *path = (const char *)a1;
  /* absolute paths only: ld.so names libraries by them (a relative one is notified) */
  int answerable = s->magic == UWRX_LDSO_STATE_MAGIC && path &&
                   ((nr == SYS_openat && path[0] == '/' && read_only(a2)) ||
                    (nr == SYS_newfstatat && (path[0] == '/' || (path[0] == 0 && a0 >= 0))));
  struct uwrx_rec_header *h = answerable ? buffer(s) : 0;
  /* room for the largest record, else the notification path records it */
  if (!h || __atomic_load_n(&h->pos, __ATOMIC_RELAXED) + 2 * (UWRX_ACCESS_PATH_CAP + 64) > h->size)
    return shim_syscall6(nr, a0, a1, a2, a3, 0, 0);
  long r = gate6(nr, a0, a1, a2, a3);
  __atomic_add_fetch(&h->fast, 1, __ATOMIC_RELAXED);
  if (nr == SYS_openat) record(h, (a2 & O_DIRECTORY_) ? UWRX_ACCESS_READDIR : UWRX_ACCESS_READ, path, (int32_t)a2, r);
  else if (path[0]) record(h, UWRX_ACCESS_STAT, path, (int32_t)a3, r < 0 ? r : 0);
  return r;
}
