/* Output to stdout and stderr recorded in process (output.h).
 *
 * uwrx-init records every write, writev, pwrite64 and pwritev to fd 1 and 2 as output
 * (init/trace.c, on_output): one notification per call, most of them in a shell's
 * command substitutions and pipes. Here the recorder writes the same UWRX_EV_OUTPUT
 * records into its own buffer instead (the same fields, the same chunks of at most
 * OUTPUT_CHUNK bytes flagged MORE but the last, nothing for the null device), then makes
 * the call from the gate, which the filter lets through. The collector and the merger
 * treat records of both buffers alike and order them by time.
 *
 * libc's own writes (stdio's buffers: printf, fwrite, puts) call its internal alias, not
 * the symbol, so the entries of these four functions are redirected here (redirect.c)
 * when their code is glibc's known single-thread test: `cmpb $0, __libc_single_threaded;
 * je <cancellable call>; mov $nr, %eax; syscall`. The jump overwrites only the test; the
 * cancellable call behind it stays intact. A write is recorded here when the recorder
 * may answer for it, else made with an ordinary syscall instruction (notified for fd 1
 * and 2, as before): a vfork child, a process whose recorder is not set up or whose
 * buffer is half full, a thread right after its timed wait or a process with an armed
 * timer (the thread's next call ends the wait, the process's fires the timer,
 * init/clocks.c), an iovec array the recorder does not copy. In a process with threads
 * only a write that cannot wait is recorded here (threaded_output); one that may wait
 * takes the cancellable call.
 *
 * The bytes are copied with process_vm_readv of the process itself, as uwrx-init reads
 * them: an unreadable buffer is no crash, the record holds what was readable and the
 * write fails with EFAULT, as on the notification path. */
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>

#include "uwrx_access_record.h"
#include "uwrx_control.h"
#include "uwrx_events.h"
#include "uwrx_iov_window.h"
#include "uwrx_recorder.h"
#include "gate.h"
#include "output.h"
#include "stamp.h"

#define OUTPUT_MAX 0x7ffff000ul /* the kernel's MAX_RW_COUNT: no write moves more */
/* The bytes of one record: uwrx_trace_room(sizeof(struct uwrx_ev_output), 1) of
 * common/tracebuf.c, so both paths cut a large write at the same places. */
#define OUTPUT_CHUNK \
  ((size_t)UWRX_EV_MAX_SIZE - UWRX_EV_HEADER_SIZE - UWRX_ALIGN8(sizeof(struct uwrx_ev_output)) - 4 - 8)
/* A writev of more segments than this is notified (its iovec array is copied here). */
#define SEGS_MAX 16

static size_t output_record_size(size_t len) {
  return UWRX_ALIGN8(UWRX_EV_HEADER_SIZE + UWRX_ALIGN8(sizeof(struct uwrx_ev_output)) + 4 + len);
}

static int is_null_device(const struct stat *st) {
  return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && minor(st->st_rdev) == 3;
}

/* The pages of the buffer the output records will take, allocated before they are
 * written: the buffer is a sparse file, and a store into a page its filesystem has no
 * room for would kill the process with SIGBUS. MADV_POPULATE_WRITE fails instead, and the
 * write is then notified (uwrx-init counts what its buffers lose). Remembered per buffer
 * and process (a forked child maps a buffer of its own, perhaps at the same address). */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PAGE 4096u

static struct {
  const struct uwrx_rec_header *h;
  pid_t owner;
  uint64_t to; /* offset up to which the pages are allocated */
} populated;

static int allocate(struct uwrx_rec_header *h, pid_t me, uint64_t end) {
  if (populated.h != h || populated.owner != me) populated.h = h, populated.owner = me, populated.to = 0;
  if (end <= populated.to) return 1;
  uint64_t from = __atomic_load_n(&h->pos, __ATOMIC_RELAXED) & ~(uint64_t)(PAGE - 1);
  if (from < populated.to) from = populated.to;
  uint64_t to = (end + PAGE - 1) & ~(uint64_t)(PAGE - 1);
  if (to > h->size) return 0;
  if (gate6(SYS_madvise, (long)h + (long)from, (long)(to - from), MADV_POPULATE_WRITE, 0, 0, 0) != 0) return 0;
  populated.to = to;
  return 1;
}

/* Copies up to `want` bytes of segs from (*seg, *off) on into dst, moving (*seg, *off)
 * past them; fewer only where the memory is not readable. */
static size_t copy_segments(pid_t me, const struct iovec *segs, size_t nsegs, size_t *seg, size_t *off, char *dst,
                            size_t want) {
  struct iovec remote[SEGS_MAX];
  size_t nr;
  size_t take = uwrx_iov_window(segs, nsegs, seg, off, want, remote, SEGS_MAX, &nr);
  if (take == 0) return 0;
  struct iovec local = { dst, take };
  long got = gate6(SYS_process_vm_readv, me, (long)&local, 1, (long)remote, (long)nr, 0);
  return got > 0 ? (size_t)got : 0;
}

/* Appends one output record of thread `tid` (its id in the trace) of up to `want` bytes,
 * copied from the segments; the bytes it holds, or -1 when the buffer had no room. */
static long append_chunk(struct uwrx_rec_header *h, pid_t me, uint32_t tid, uint64_t time_ns, int fd,
                         const struct stat *dest, int last, const struct iovec *segs, size_t nsegs, size_t *seg,
                         size_t *off, size_t want) {
  size_t size = output_record_size(want);
  uint64_t at = __atomic_fetch_add(&h->pos, size, __ATOMIC_RELAXED);
  if (at + size > h->size) {
    __atomic_add_fetch(&h->dropped, 1, __ATOMIC_RELAXED);
    return -1;
  }
  unsigned char *p = (unsigned char *)h + at;
  unsigned char *fixed = p + UWRX_EV_HEADER_SIZE;
  unsigned char *len_at = fixed + UWRX_ALIGN8(sizeof(struct uwrx_ev_output));
  size_t got = copy_segments(me, segs, nsegs, seg, off, (char *)len_at + 4, want);
  /* a short copy ends the write here: the record closes without MORE */
  struct uwrx_ev_output ev = { .fd = (uint32_t)fd, .flags = !last && got == want ? UWRX_OUTPUT_FLAG_MORE : 0,
                               .dest_dev = dest ? (uint64_t)dest->st_dev : 0, .dest_ino = dest ? (uint64_t)dest->st_ino : 0 };
  if (got < want) {
    /* give the unused room back when nothing was reserved after it (a signal handler's
     * record may have been); else it stays zero padding inside this record */
    uint64_t expected = at + size;
    if (__atomic_compare_exchange_n(&h->pos, &expected, at + output_record_size(got), false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      size = output_record_size(got);
  }
  struct uwrx_ev_header eh = { .size = 0, .type = UWRX_EV_OUTPUT, .flags = 0, .pid = h->pid, .tid = tid, .time_ns = time_ns };
  uint32_t n = (uint32_t)got;
  memcpy(p, &eh, sizeof eh);
  memcpy(fixed, &ev, sizeof ev);
  memset(fixed + sizeof ev, 0, UWRX_ALIGN8(sizeof ev) - sizeof ev);
  memcpy(len_at, &n, 4);
  memset(len_at + 4 + got, 0, (size_t)(p + size - (len_at + 4 + got)));
  /* committed: the collector reads up to the first record whose size is still 0 */
  __atomic_store_n((uint32_t *)p, (uint32_t)size, __ATOMIC_RELEASE);
  return (long)got;
}

/* The calling thread's id in the trace, for a thread other than the main one (whose id
 * is the process's): uwrx-init's (UWRX_CTL_THREAD), asked once per thread; 0 when there
 * is none. Kept with the kernel's id of the thread it is for, which each call compares:
 * a thread started without libc may share this thread-local memory. */
static __thread struct {
  pid_t tid;
  uint32_t id;
} thread_id_cache __attribute__((tls_model("initial-exec")));

static uint32_t thread_id(pid_t tid) {
  if (thread_id_cache.tid != tid) {
    long r = slow6(UWRX_SYS_CONTROL, UWRX_CTL_THREAD, 0, 0, 0, 0, (long)UWRX_CONTROL_MAGIC);
    if (r <= 0 || r > (long)UINT32_MAX) return 0;
    thread_id_cache.id = (uint32_t)r; /* (the id first: a signal handler between sees no match) */
    thread_id_cache.tid = tid;
  }
  return thread_id_cache.id;
}

/* Whether a write of `n` bytes to `dest` (open as `fd`) keeps its caller waiting no
 * longer than it takes: a file or a device, or a pipe with room for it now (half the
 * pipe's size: a pipe holds whole pages, and small writes may each have taken one). */
static int wont_wait(int fd, const struct stat *dest, size_t n) {
  if (S_ISREG(dest->st_mode) || S_ISCHR(dest->st_mode) || S_ISBLK(dest->st_mode)) return 1;
  if (!S_ISFIFO(dest->st_mode)) return 0;
  int queued = -1;
  long size = gate6(SYS_fcntl, fd, F_GETPIPE_SZ, 0, 0, 0, 0);
  return size > 0 && gate6(SYS_ioctl, fd, FIONREAD, (long)&queued, 0, 0, 0) == 0 && queued >= 0 &&
         (size_t)queued + n <= (size_t)size / 2;
}

/* Records a write of `segs` (the caller's array of `nsegs`, copied first when `copy` is
 * set: writev's may be unreadable) to fd 1 or 2 as uwrx-init would. 1: recorded, or
 * nothing to record: make the call from the gate; 0: make it notified. A process with
 * threads (`threaded`) records only writes that cannot wait (wont_wait): there the call
 * from the gate stands for libc's cancellable one (threaded_output). */
uint32_t rec_recording_thread(const struct uwrx_rec_header *h) {
  pid_t me = rec_owner();
  pid_t tid = (pid_t)gate6(SYS_gettid, 0, 0, 0, 0, 0, 0);
  uint32_t trace_tid = tid == me ? h->pid : thread_id(tid);
  if (!trace_tid) return 0;
  /* a thread's next call after a timed wait ends the wait, and the process's next call
   * past an armed timer's deadline fires it (init/clocks.c): such calls stay notified,
   * as the clock reads of that thread and of that process do */
  if (rec_after_wait(h, tid)) return 0;
  if (__atomic_load_n(&h->clock_seq, __ATOMIC_ACQUIRE) != 0 && !rec_clock_open(h)) return 0;
  return trace_tid;
}

static int record_output(int fd, const struct iovec *segs, long nsegs, int copy, int threaded) {
  struct uwrx_rec_header *h = rec_answering();
  if (!h) return 0;
  pid_t me = rec_owner();
  /* the records carry the writing thread's id in the trace */
  uint32_t trace_tid = rec_recording_thread(h);
  if (!trace_tid) return 0;
  struct iovec local[SEGS_MAX];
  if (nsegs <= 0 || nsegs > SEGS_MAX) return 0;
  if (copy) {
    struct iovec to = { local, (size_t)nsegs * sizeof *local };
    struct iovec from = { (void *)segs, (size_t)nsegs * sizeof *local };
    if (gate6(SYS_process_vm_readv, me, (long)&to, 1, (long)&from, 1, 0) != (long)to.iov_len) return 0;
  } else {
    memcpy(local, segs, (size_t)nsegs * sizeof *local);
  }
  struct stat st;
  const struct stat *dest = gate6(SYS_newfstatat, fd, (long)"", (long)&st, AT_EMPTY_PATH, 0, 0) == 0 ? &st : NULL;
  if (dest && is_null_device(dest)) return 1;
  size_t total = 0;
  for (long i = 0; i < nsegs; i++) {
    size_t room = OUTPUT_MAX - total;
    if (local[i].iov_len > room) local[i].iov_len = room; /* the kernel moves no more either */
    total += local[i].iov_len;
  }
  if (threaded && !(dest && wont_wait(fd, dest, total))) return 0;
  size_t chunks = (total + OUTPUT_CHUNK - 1) / OUTPUT_CHUNK;
  /* output takes at most half the buffer: the rest stays for the file accesses */
  uint64_t end = __atomic_load_n(&h->pos, __ATOMIC_RELAXED) + total + chunks * output_record_size(0);
  if (end > h->size / 2) return 0;
  if (total == 0) return 1;
  if (!allocate(h, me, end)) return 0;
  uint64_t time_ns = rec_stamp_now(gate6);
  size_t seg = 0, off = 0, done = 0;
  while (done < total) {
    size_t want = total - done < OUTPUT_CHUNK ? total - done : OUTPUT_CHUNK;
    long got = append_chunk(h, me, trace_tid, time_ns, fd, dest, done + want == total, local, (size_t)nsegs, &seg, &off, want);
    if (got < 0) return done == 0 ? 0 : 1;
    if ((size_t)got < want) break;
    done += want;
  }
  return 1;
}

/* ---- the redirected entries ----
 * Each takes its function's arguments as libc's entry does. `threaded` is the entry's
 * cancellable code for a process with threads (behind the overwritten test). */
/* Written in every process at start-up: in .data, on the page ld.so writes anyway when it
 * loads the library, not on a .bss page of their own (a page fault per process). */
#define STARTUP_STATE __attribute__((section(".data")))
static STARTUP_STATE ssize_t (*threaded_write)(int, const void *, size_t);
static STARTUP_STATE ssize_t (*threaded_writev)(int, const struct iovec *, int);
static STARTUP_STATE ssize_t (*threaded_pwrite64)(int, const void *, size_t, off_t);
static STARTUP_STATE ssize_t (*threaded_pwritev)(int, const struct iovec *, int, off_t);

/* libc's pthread_setcanceltype and pthread_testcancel, found with the redirects: a write
 * of a process with threads is a cancellation point (threaded_output). */
static STARTUP_STATE int (*set_cancel_type)(int, int *);
static STARTUP_STATE void (*test_cancel)(void);

static int output_fd(int fd) { return fd == 1 || fd == 2; }

/* libc's code for a process with threads must make the call (it is notified). */
#define NOT_HERE LONG_MIN

/* The write `nr` of fd 1 or 2 (the arguments after the fd: a1..a3; its bytes: `segs`)
 * recorded and made from the gate, or NOT_HERE when the recorder does not answer for it
 * (record_output). */
static long recorded_call(long nr, int fd, const struct iovec *segs, long nsegs, int copy, int threaded, long a1,
                          long a2, long a3) {
  if (!record_output(fd, segs, nsegs, copy, threaded)) return NOT_HERE;
  rec_redirected();
  return gate6(nr, fd, a1, a2, a3, 0, 0);
}

/* A write of a process with threads to fd 1 or 2, recorded and made from the gate when
 * it cannot keep the thread waiting (wont_wait); else NOT_HERE. It is a cancellation
 * point as libc's is: a cancellation pending on entry acts before anything is recorded,
 * none acts while the record is written (the type is deferred meanwhile), and one that
 * came during the call acts when the type is given back, as libc's would once the call
 * returned. A write that cannot wait is never cancelled in the middle, which natively a
 * cancellation that comes during it may do. */
static long threaded_output(long nr, int fd, const struct iovec *segs, long nsegs, int copy, long a1, long a2, long a3) {
  int type;
  if (!set_cancel_type || !test_cancel || set_cancel_type(PTHREAD_CANCEL_DEFERRED, &type) != 0) return NOT_HERE;
  test_cancel();
  long r = recorded_call(nr, fd, segs, nsegs, copy, 1, a1, a2, a3);
  set_cancel_type(type, &type);
  return r;
}

/* The write `nr` (as recorded_call): recorded and made from the gate where the recorder
 * answers for it, else made notified; NOT_HERE in a process with threads when libc's
 * cancellable code must make it. */
static long output_call(long nr, int fd, const struct iovec *segs, long nsegs, int copy, long a1, long a2, long a3) {
  bool single = __libc_single_threaded;
  long r = !output_fd(fd)  ? NOT_HERE
           : single        ? recorded_call(nr, fd, segs, nsegs, copy, 0, a1, a2, a3)
                           : threaded_output(nr, fd, segs, nsegs, copy, a1, a2, a3);
  return r == NOT_HERE && single ? slow6(nr, fd, a1, a2, a3, 0, 0) : r;
}

static ssize_t out_write(int fd, const void *buf, size_t n) {
  struct iovec v = { (void *)buf, n };
  long r = output_call(SYS_write, fd, &v, 1, 0, (long)buf, (long)n, 0);
  return r == NOT_HERE ? threaded_write(fd, buf, n) : set_errno(r);
}

static ssize_t out_writev(int fd, const struct iovec *iov, int cnt) {
  long r = output_call(SYS_writev, fd, iov, cnt, 1, (long)iov, cnt, 0);
  return r == NOT_HERE ? threaded_writev(fd, iov, cnt) : set_errno(r);
}

static ssize_t out_pwrite64(int fd, const void *buf, size_t n, off_t at) {
  struct iovec v = { (void *)buf, n };
  long r = output_call(SYS_pwrite64, fd, &v, 1, 0, (long)buf, (long)n, (long)at);
  return r == NOT_HERE ? threaded_pwrite64(fd, buf, n, at) : set_errno(r);
}

/* the kernel's pwritev takes the offset as two halves; on x86_64 the low one holds it all */
static ssize_t out_pwritev(int fd, const struct iovec *iov, int cnt, off_t at) {
  long r = output_call(SYS_pwritev, fd, iov, cnt, 1, (long)iov, cnt, (long)at);
  return r == NOT_HERE ? threaded_pwritev(fd, iov, cnt, at) : set_errno(r);
}

/* glibc 2.36's entries on x86_64, the test's displacement left out:
 * cmpb $0, __libc_single_threaded(%rip); [mov %rcx, %r10;] je <+32>; [xor %r8d, %r8d;]
 * mov $nr, %eax; syscall */
#define SINGLE_TEST 0x80, 0x3d, 0, 0, 0, 0, 0x00
#define TEST_MASK 0xff, 0xff, 0, 0, 0, 0, 0xff
static const unsigned char write_code[] = { SINGLE_TEST, 0x74, 0x17, 0xb8, SYS_write, 0, 0, 0, 0x0f, 0x05 };
static const unsigned char writev_code[] = { SINGLE_TEST, 0x74, 0x17, 0xb8, SYS_writev, 0, 0, 0, 0x0f, 0x05 };
static const unsigned char short_mask[] = { TEST_MASK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const unsigned char pwrite64_code[] = { SINGLE_TEST, 0x49, 0x89, 0xca, 0x74, 0x14,
                                               0xb8, SYS_pwrite64, 0, 0, 0, 0x0f, 0x05 };
static const unsigned char pwrite64_mask[] = { TEST_MASK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const unsigned char pwritev_code[] = { SINGLE_TEST, 0x49, 0x89, 0xca, 0x74, 0x14, 0x45, 0x31, 0xc0,
                                              0xb8, SYS_pwritev & 0xff, SYS_pwritev >> 8, 0, 0, 0x0f, 0x05 };
static const unsigned char pwritev_mask[] = { TEST_MASK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
#undef SINGLE_TEST
#undef TEST_MASK

static const struct rec_code write_codes[] = { { write_code, sizeof write_code, short_mask } };
static const struct rec_code writev_codes[] = { { writev_code, sizeof writev_code, short_mask } };
static const struct rec_code pwrite64_codes[] = { { pwrite64_code, sizeof pwrite64_code, pwrite64_mask } };
static const struct rec_code pwritev_codes[] = { { pwritev_code, sizeof pwritev_code, pwritev_mask } };

_Static_assert(sizeof write_code == sizeof short_mask && sizeof writev_code == sizeof short_mask &&
                   sizeof pwrite64_code == sizeof pwrite64_mask && sizeof pwritev_code == sizeof pwritev_mask,
               "each code has its mask");

/* The target of the entry's `je` (the byte before `je_end` is its 8-bit displacement):
 * its code for a process with threads. NULL when the entry is not that code. */
static void *threaded_code(const char *symbol, const struct rec_code *code, size_t je_end) {
  unsigned char *entry = dlsym(RTLD_NEXT, symbol);
  if (!entry || entry[je_end - 2] != code->bytes[je_end - 2] || entry[je_end - 1] != code->bytes[je_end - 1]) return NULL;
  return entry + je_end + (signed char)entry[je_end - 1];
}

size_t rec_output_redirects(struct rec_redirect *list, size_t n, size_t cap) {
  const struct {
    const char *symbol;
    const struct rec_code *codes;
    size_t je_end;
    void **threaded;
    void *to;
  } outputs[] = {
    { "write", write_codes, 9, (void **)&threaded_write, (void *)out_write },
    { "writev", writev_codes, 9, (void **)&threaded_writev, (void *)out_writev },
    { "pwrite64", pwrite64_codes, 12, (void **)&threaded_pwrite64, (void *)out_pwrite64 },
    { "pwritev", pwritev_codes, 12, (void **)&threaded_pwritev, (void *)out_pwritev },
  };
  set_cancel_type = (int (*)(int, int *))dlsym(RTLD_NEXT, "pthread_setcanceltype");
  test_cancel = (void (*)(void))dlsym(RTLD_NEXT, "pthread_testcancel");
  for (size_t i = 0; i < sizeof outputs / sizeof outputs[0] && n < cap; i++) {
    void *threaded = threaded_code(outputs[i].symbol, outputs[i].codes, outputs[i].je_end);
    if (!threaded) continue;
    /* set before the jump is written: the first redirected call may need it */
    *outputs[i].threaded = threaded;
    list[n++] = (struct rec_redirect){ outputs[i].symbol, outputs[i].codes, 1, outputs[i].to };
  }
  return n;
}
