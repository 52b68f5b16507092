/* The in-process recorder (uwrx_recorder.h): libc's read-only file calls answered in the
 * process, recorded into its recorder buffer.
 *
 * Interposition first: the dynamic linker binds the program's (and every library's)
 * calls of these symbols here. libc's internal calls do not go through symbols; the one
 * that matters, fstatat (behind every fstat of opendir, stdio, realpath), is redirected
 * here by a jump written over libc's entry before main while the process has one
 * thread (redirect.c), never while another thread could run that code. Other internal
 * calls (opendir's open) and static programs take the notification path.
 *
 * A call is answered here only when all of these hold, else it goes to the kernel
 * through an ordinary syscall instruction (seccomp notifies uwrx-init, which records
 * it):
 *  - the recorder is set up in this process (its buffer mapped, the gate page mapped),
 *  - the calling process is the one that set it up (a vfork or clone child sharing the
 *    memory is not: its getpid differs; asked only while such a child may exist, see
 *    "the owner" below),
 *  - the call changes nothing and its result is what uwrx-init would answer: read-only
 *    opens, access, readlink, stat calls that fail, and successful stats of files whose
 *    shown time is their own or that lie outside the overlays (pipes, /proc, /dev:
 *    uwrx_stat_times.h); other successful stats are made again on the notification
 *    path, which squashes their times.
 * Two calls are answered here without any recorder state, from the gate alone (so in a
 * vfork child too): an exec of a path that does not exist, and a WNOHANG wait that finds
 * nothing to reap; neither changes anything uwrx-init keeps or records.
 * Nothing here calls malloc, takes a lock or uses signals (its tables are mapped with mmap
 * at their first use). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/single_threaded.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uwrx_access_record.h"
#include "uwrx_control.h"
#include "uwrx_events.h"
#include "uwrx_hash.h"
#include "uwrx_net_rules.h"
#include "uwrx_recorder.h"
#include "uwrx_stat_times.h"
#include "uwrx_valgrind.h"
#include "gate.h"
#include "output.h"
#include "redirect.h"
#include "stamp.h"
#include "../common/dettime.h"

#define EXPORT __attribute__((visibility("default")))
#define ALIGN8(n) UWRX_ALIGN8(n)
#define PATH_CAP UWRX_ACCESS_PATH_CAP

/* ---- state ---- */

enum { OFF = -1, UNSET = 0, ON = 1 };

/* The few variables every process touches at start-up live in .data, on the page ld.so
 * writes anyway when it loads this library, not in .bss beside the large tables below,
 * where they cost two page faults in every process. */
#define STARTUP_STATE __attribute__((section(".data")))

static STARTUP_STATE struct {
  int state;  /* OFF, UNSET, ON (atomic) */
  int busy;   /* set-up in progress (atomic) */
  pid_t owner;
  struct uwrx_rec_header *hdr;
  uint32_t pid;
} R;

static const unsigned char gate_code[] = { 0x0f, 0x05, 0xc3 }; /* syscall; ret */

/* Clock reads answered in this process image (see "clocks" below), counted in private
 * memory so a forked child's copy says how many of them came before the fork: on the
 * shim's state page when there is one (the exec's control call, or the hook's, named
 * that address to uwrx-init), else here. The pointer is private memory too: a forked
 * child keeps counting where its parent did. */
static STARTUP_STATE uint64_t own_clock_reads;
static uint64_t *clock_reads = &own_clock_reads;

STARTUP_STATE unsigned long rec_gate_addr = UWRX_GATE_ADDR;

/* The far gate (no state page of the shim's in this image: rec_gate_addr is that one). */
static int map_gate(void) {
  long p = slow6(SYS_mmap, (long)UWRX_GATE_ADDR, 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == (long)UWRX_GATE_ADDR) {
    memcpy((void *)UWRX_GATE_ADDR, gate_code, sizeof gate_code);
    return slow6(SYS_mprotect, (long)UWRX_GATE_ADDR, 4096, PROT_READ | PROT_EXEC, 0, 0, 0) == 0 ? 0 : -1;
  }
  if (p == -EEXIST) {
    /* mapped by the shim, or inherited over fork: ours if it holds the gate code */
    unsigned char probe[sizeof gate_code];
    long r = slow6(SYS_mincore, (long)UWRX_GATE_ADDR, 4096, (long)probe, 0, 0, 0);
    if (r == 0 && memcmp((const void *)UWRX_GATE_ADDR, gate_code, sizeof gate_code) == 0) return 0;
    return -1;
  }
  if (p >= 0 && p != (long)UWRX_GATE_ADDR) slow6(SYS_munmap, p, 4096, 0, 0, 0, 0); /* kernel < 4.17 */
  return -1;
}

/* Accesses this process image already recorded: a repeat (same operation, same outcome,
 * same path) adds to the first record's count instead of writing another record.
 * Open addressing over hashes; the path itself is compared in the record, so a hash
 * collision never merges two paths. A full table only means more records.
 *
 * The probed slots hold only the number of an entry, and entries are handed out in
 * order, and the first 1,536 entries go into a one-page table of slots: a process's
 * first accesses touch that page and a page or two of entries, where slots of 16 bytes
 * each spread them over all 32 pages of a 128 KiB table. A first touch of a page is a
 * page fault, 15-20 us on some virtual machines: some 25 more of them in every cc1, as
 * and gcc driver, 4-5 in a shell. Later entries go into a larger table of slots, probed
 * after the first. An entry is written before its number is published (the slot's
 * compare-and-swap), so a reader that finds a number finds its key; an entry whose swap
 * lost stays unused. */
#define SEEN_SMALL_SLOTS 2048 /* one page of numbers */
#define SEEN_SMALL_ENTRIES 1536
#define SEEN_LARGE_SLOTS 16384
#define SEEN_ENTRIES 12287 /* numbers 1..12287 fit a slot; 0: free */
struct seen {
  uint64_t key;    /* seen_key of the access's hash */
  uint64_t offset; /* of the first record in the buffer; 0 while it is written */
};

/* Directory names (see "paths of directory fds" below). */
#define DIR_SLOTS 64

struct dir_slot {
  uint32_t seq; /* odd while written (atomic) */
  uint32_t len;
  uint64_t gen; /* dirs_quiet when the name was read */
  uint64_t mnt_id, dev, ino;
  int64_t ctime_ns, mtime_ns;
  char name[PATH_CAP];
};

/* The repeat table and the directory names (390 KiB) are mapped at their first use, not
 * kept in .bss: a .bss beyond the data page is one more mapping ld.so makes in every
 * process, and one more to unmap at its exit, though a short one (/bin/true, `sh -c :`)
 * records nothing. Private memory that a fork does not copy (MADV_WIPEONFORK): a forked
 * child starts with empty tables, and `owner` (see "the owner" below) is 0 there. */
static struct tables {
  uint16_t seen_small[SEEN_SMALL_SLOTS]; /* entry numbers, 0: free */
  uint32_t seen_used;                    /* entries handed out (atomic), beside the first */
  pid_t owner;                           /* R.owner, once set up: 0 in a fork's copy */
  uint32_t seen_pad[2];
  struct seen seen[SEEN_ENTRIES];        /* number n is seen[n - 1] */
  uint16_t seen_large[SEEN_LARGE_SLOTS];
  struct dir_slot dirs[DIR_SLOTS];
} *tables_map;

/* MADV_WIPEONFORK (Linux 4.14), which older headers lack */
#define MADV_WIPEONFORK_ 18
/* 1 once the tables are wiped in a fork's copy (the kernel took MADV_WIPEONFORK) */
static STARTUP_STATE int tables_wiped;

/* NULL when they cannot be mapped: then nothing is merged and no name is cached. */
static struct tables *tables(void) {
  struct tables *t = __atomic_load_n(&tables_map, __ATOMIC_ACQUIRE);
  if (t) return t;
  long m = slow6(SYS_mmap, 0, sizeof *t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if ((unsigned long)m >= -4096UL) return NULL;
  /* Linux 4.14: without it a child's copy keeps the token, which then proves nothing */
  if (slow6(SYS_madvise, m, sizeof *t, MADV_WIPEONFORK_, 0, 0, 0) == 0) __atomic_store_n(&tables_wiped, 1, __ATOMIC_RELAXED);
  /* made by the owner (only its calls record) */
  ((struct tables *)m)->owner = R.owner;
  /* another thread, or a signal handler on this one, may have mapped them meanwhile */
  if (__atomic_compare_exchange_n(&tables_map, &t, (struct tables *)m, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return (struct tables *)m;
  slow6(SYS_munmap, m, sizeof *t, 0, 0, 0, 0);
  return t;
}

/* A forked child records into a buffer of its own, where its parent's entries name
 * nothing. Its tables start empty (wiped in the fork's copy); where the kernel cannot
 * wipe them (before Linux 4.14) it moves to the next epoch, whose keys never match its
 * parent's (and the path is compared anyway), rather than clearing them: a page fault
 * per page written, in a child that may only exec. */
static STARTUP_STATE uint64_t seen_epoch;

static uint64_t seen_key(uint64_t hash) {
  uint64_t k = hash ^ (seen_epoch * 0x9E3779B97F4A7C15ull);
  return k ? k : 1;
}

/* The shim's state page (uwrx_recorder.h, "the dynamic linker's own calls"), when this
 * image has one; looked up once. */
static struct uwrx_ldso_state *ldso_state(void) {
  static int looked;
  static struct uwrx_ldso_state *state;
  if (!looked) {
    static const unsigned long gates[] = { UWRX_GATE_NEAR_ADDR, UWRX_GATE_ADDR };
    /* the shim says where it mapped the page in the auxiliary vector; else mincore tells */
    int saved = errno; /* getauxval sets it when the entry is missing */
    unsigned long told = getauxval(UWRX_AUXV_STATE_TYPE);
    errno = saved;
    unsigned long at = 0;
    for (int i = 0; i < 2 && !at; i++)
      if (told == gates[i] + UWRX_LDSO_STATE_OFFSET) at = told;
    for (int i = 0; i < 2 && !at; i++) {
      unsigned char resident;
      if (slow6(SYS_mincore, (long)(gates[i] + UWRX_LDSO_STATE_OFFSET), 4096, (long)&resident, 0, 0, 0) == 0)
        at = gates[i] + UWRX_LDSO_STATE_OFFSET;
    }
    struct uwrx_ldso_state *s = (struct uwrx_ldso_state *)at;
    if (s && s->magic == UWRX_LDSO_STATE_MAGIC) {
      state = s;
      rec_gate_addr = at - UWRX_LDSO_STATE_OFFSET;
    }
    looked = 1;
  }
  return state;
}

/* Whether the gate page is mapped in this process image: the recorder's own set-up did
 * it, or the shim did beside its state page. A forked or vfork child inherits it. */
static STARTUP_STATE int gate_ready;
static int gate_mapped(void) {
  if (__atomic_load_n(&gate_ready, __ATOMIC_RELAXED)) return 1;
  return ldso_state() != NULL;
}

/* The parent's buffer, still mapped in a forked child until the child sets up its own:
 * most children exec first, which unmaps it with everything else, so an munmap in every
 * fork (a shell's, make's) is saved. Nothing reads or writes it meanwhile. */
static STARTUP_STATE struct uwrx_rec_header *parent_hdr;

static void after_fork_child(void) {
  /* a forked child has its own memory: drop the parent's buffer, set up again lazily.
   * The hook's view of it goes first (this is the child's only thread). */
  struct uwrx_ldso_state *s = ldso_state();
  if (s) {
    __atomic_store_n(&s->owner, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&s->hdr, NULL, __ATOMIC_RELEASE);
  }
  if (R.hdr) parent_hdr = R.hdr;
  R.hdr = NULL;
  seen_epoch++;
  R.owner = 0;
  __atomic_store_n(&R.busy, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&R.state, UNSET, __ATOMIC_RELEASE);
}

/* This process's recorder buffer: the one the shim mapped for its hook (ld.so's calls)
 * when it is this process's, else one asked for with a control call. NULL: none. */
static struct uwrx_rec_header *map_buffer(struct uwrx_ldso_state *s, pid_t me) {
  if (s) {
    struct uwrx_rec_header *h = __atomic_load_n(&s->hdr, __ATOMIC_ACQUIRE);
    if (h && __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE) == me && h->magic == UWRX_REC_MAGIC) return h;
  }
  /* on valgrind, no control call and no recorder (uwrx_valgrind.h): valgrind makes every
   * call itself, and the notification path records them */
  if (uwrx_on_valgrind()) return NULL;
  long fd = slow6(UWRX_SYS_CONTROL, UWRX_CTL_RECORDER, (long)clock_reads, 0, 0, 0, (long)UWRX_CONTROL_MAGIC);
  if (fd < 0) return NULL;
  struct uwrx_rec_header *h = uwrx_rec_map(fd, rec_gate_addr, slow6, 1);
  if (!h) return NULL;
  if (s) {
    /* the hook records a later dlopen's calls here too; buffer first, then its owner
     * (the hook reads them in that order) */
    __atomic_store_n(&s->hdr, h, __ATOMIC_RELEASE);
    __atomic_store_n(&s->owner, (int32_t)me, __ATOMIC_RELEASE);
  }
  return h;
}

static void redirect_libc(void);
static STARTUP_STATE int own_constructor_ran;

/* The process id it set the recorder up for, or 0 when it did not (set up OFF, or by
 * another thread already). */
static pid_t setup(void) {
  if (__atomic_exchange_n(&R.busy, 1, __ATOMIC_ACQUIRE)) return 0; /* another thread, or a signal */
  /* a forked child's copy of its parent's buffer goes first: the address is free again
   * for its own */
  struct uwrx_rec_header *stale = __atomic_exchange_n(&parent_hdr, NULL, __ATOMIC_ACQ_REL);
  if (stale) slow6(SYS_munmap, (long)stale, UWRX_REC_FILE_SIZE, 0, 0, 0, 0);
  static int atfork_done;
  int state = OFF;
  struct uwrx_ldso_state *s = ldso_state();
  if (s && clock_reads == &own_clock_reads) clock_reads = &s->clock_reads;
  pid_t me = (pid_t)slow6(SYS_getpid, 0, 0, 0, 0, 0, 0);
  struct uwrx_rec_header *h = map_buffer(s, me);
  /* the shim maps the gate beside its state page */
  if (h && (s || map_gate() == 0)) {
    R.hdr = h;
    R.pid = h->pid;
    R.owner = me;
    /* the tables come with their first record (tables()); a forked child's wiped copy
     * names its new owner here */
    struct tables *t = __atomic_load_n(&tables_map, __ATOMIC_ACQUIRE);
    if (t) __atomic_store_n(&t->owner, me, __ATOMIC_RELEASE);
    if (!atfork_done) {
      atfork_done = 1;
      pthread_atfork(NULL, NULL, after_fork_child);
    }
    state = ON;
    __atomic_store_n(&gate_ready, 1, __ATOMIC_RELAXED);
  } else if (h && (!s || h != s->hdr)) {
    slow6(SYS_munmap, (long)h, UWRX_REC_FILE_SIZE, 0, 0, 0, 0);
  }
  /* the hook's records from here on take their own times */
  if (state == ON && s) __atomic_store_n(&s->started, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&R.state, state, __ATOMIC_RELEASE);
  /* busy stays set when OFF: nothing to retry in this process image */
  if (state == ON) __atomic_store_n(&R.busy, 0, __ATOMIC_RELEASE);
  /* before main, called from another library's constructor (recorder_constructor) */
  if (state == ON && !own_constructor_ran) redirect_libc();
  return state == ON ? me : 0;
}

/* ---- the owner ----
 * A call is answered here only in the process that set the recorder up. A getpid per
 * call told (a system call: a third of what an in-process stat cost find), but two kinds
 * of process can run this code in another's memory, and both can be told without one:
 *  - a child whose memory is a copy (fork, also a raw fork system call that runs no
 *    atfork handler): the tables are wiped in the copy, their `owner` is 0 there;
 *  - a child that shares the memory (vfork, posix_spawn and what calls it, clone with
 *    CLONE_VM): rec_vm_children counts those the wrappers below started and that may
 *    still run (a vfork's until its parent resumes, one of clone without CLONE_VFORK for
 *    good). While it is not 0, every call asks getpid, as all did before.
 * A child made by a raw vfork or clone system call (not through libc) shares the memory
 * unseen: its calls are recorded as its parent's. */
__attribute__((visibility("hidden"))) STARTUP_STATE int rec_vm_children;
#define REC_STR_(x) #x
#define REC_STR(x) REC_STR_(x)
#define VM_CHILDREN_FOREVER (1 << 24)

static int surely_owner(void) {
  if (!__atomic_load_n(&tables_wiped, __ATOMIC_RELAXED) || __atomic_load_n(&rec_vm_children, __ATOMIC_ACQUIRE)) return 0;
  struct tables *t = __atomic_load_n(&tables_map, __ATOMIC_ACQUIRE);
  return t && R.owner != 0 && __atomic_load_n(&t->owner, __ATOMIC_ACQUIRE) == R.owner;
}

/* vfork: the count goes up before the system call and down in the parent once it
 * resumes (the child has exec'd or exited). Assembly, as libc's: a vfork child returns
 * through the same stack, so the return address stays in a register meanwhile. */
__asm__(".text\n"
        ".globl vfork\n"
        ".type vfork, @function\n"
        "vfork:\n"
        "  lock incl rec_vm_children(%rip)\n"
        "  popq %rdi\n"
        "  movl $" REC_STR(SYS_vfork) ", %eax\n"
        "  syscall\n"
        "  pushq %rdi\n"
        "  testq %rax, %rax\n"
        "  jz 1f\n"
        "  lock decl rec_vm_children(%rip)\n"
        "  cmpq $-4095, %rax\n"
        "  jae 2f\n"
        "1:\n"
        "  ret\n"
        "2:\n"
        "  movq %rax, %rdi\n"
        "  jmp rec_raw_failed\n"
        ".size vfork, .-vfork\n");

/* The error path of the assembly entries (vfork, syscall): -errno in, -1 out. */
__attribute__((visibility("hidden"), used)) long rec_raw_failed(long err) { return set_errno(err); }

/* libc's function `name` after this library's (NULL: none) */
static void *next_symbol(void **cache, const char *name) {
  void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
  if (!f) __atomic_store_n(cache, (f = dlsym(RTLD_NEXT, name)), __ATOMIC_RELEASE);
  return f;
}

#define VM_CHILD_BEGIN() __atomic_add_fetch(&rec_vm_children, 1, __ATOMIC_ACQ_REL)
#define VM_CHILD_END() __atomic_sub_fetch(&rec_vm_children, 1, __ATOMIC_ACQ_REL)

typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const[],
                     char *const[]);

/* libc's posix_spawn or posix_spawnp (`name`), counted: each returns once its child
 * exec'd or failed (CLONE_VFORK) */
static int spawn_counted(void **next, const char *name, pid_t *pid, const char *path,
                         const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr, char *const argv[],
                         char *const envp[]) {
  spawn_fn *f = (spawn_fn *)next_symbol(next, name);
  if (!f) return ENOSYS;
  VM_CHILD_BEGIN();
  int r = f(pid, path, actions, attr, argv, envp);
  VM_CHILD_END();
  return r;
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  static void *next;
  return spawn_counted(&next, "posix_spawn", pid, path, actions, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  static void *next;
  return spawn_counted(&next, "posix_spawnp", pid, file, actions, attr, argv, envp);
}

/* libc's system and popen start their shell with its internal posix_spawn */
EXPORT int system(const char *command) {
  static void *next;
  int (*f)(const char *) = (int (*)(const char *))next_symbol(&next, "system");
  if (!f) return -1;
  VM_CHILD_BEGIN();
  int r = f(command);
  VM_CHILD_END();
  return r;
}

EXPORT FILE *popen(const char *command, const char *mode) {
  static void *next;
  FILE *(*f)(const char *, const char *) = (FILE * (*)(const char *, const char *)) next_symbol(&next, "popen");
  if (!f) return NULL;
  VM_CHILD_BEGIN();
  FILE *r = f(command, mode);
  VM_CHILD_END();
  return r;
}

/* clone(fn, stack, flags, arg, parent_tid, tls, child_tid): the last three are read as
 * libc's own clone reads them, whether given or not */
EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
  static void *next;
  int (*f)(int (*)(void *), void *, int, void *, ...) =
      (int (*)(int (*)(void *), void *, int, void *, ...))next_symbol(&next, "clone");
  if (!f) return (int)set_errno(-ENOSYS);
  va_list ap;
  va_start(ap, arg);
  void *parent_tid = va_arg(ap, void *), *tls = va_arg(ap, void *), *child_tid = va_arg(ap, void *);
  va_end(ap);
  int shares = (flags & CLONE_VM) && !(flags & CLONE_THREAD);
  if (shares && !(flags & CLONE_VFORK)) __atomic_store_n(&rec_vm_children, VM_CHILDREN_FOREVER, __ATOMIC_RELEASE);
  else if (shares) VM_CHILD_BEGIN();
  int r = f(fn, stack, flags, arg, parent_tid, tls, child_tid);
  if (shares && (flags & CLONE_VFORK)) VM_CHILD_END();
  return r;
}

/* Whether this process runs in a copy of the owner's memory that no atfork handler
 * announced: a raw fork system call (Chromium's zygote forks its renderers so). The
 * tables are wiped in a copy (their owner reads 0), never in memory shared with the
 * owner (a vfork or CLONE_VM child), where the owner's stays. */
static int unannounced_fork(void) {
  struct tables *t = __atomic_load_n(&tables_map, __ATOMIC_ACQUIRE);
  return __atomic_load_n(&tables_wiped, __ATOMIC_RELAXED) && t && __atomic_load_n(&t->owner, __ATOMIC_ACQUIRE) == 0;
}

/* Whether this call may be answered here; sets up on first use. */
static int fast(void) {
  int s = __atomic_load_n(&R.state, __ATOMIC_ACQUIRE);
  pid_t me = 0;
  if (s == UNSET) {
    me = setup();
    s = __atomic_load_n(&R.state, __ATOMIC_ACQUIRE);
  }
  if (s != ON) return 0;
  /* the set-up just made asked for the process id: no second getpid in every process */
  if (me != R.owner && !surely_owner() && (pid_t)gate6(SYS_getpid, 0, 0, 0, 0, 0, 0) != R.owner) {
    /* a forked child set up as the atfork handler would have it: its own buffer, lazily
     * (it has one thread: the one that forked) */
    if (!unannounced_fork()) return 0;
    after_fork_child();
    me = setup();
    if (__atomic_load_n(&R.state, __ATOMIC_ACQUIRE) != ON || me != R.owner) return 0;
  }
  /* room for the largest record this file's writers make, else the backstop records */
  if (__atomic_load_n(&R.hdr->pos, __ATOMIC_RELAXED) + 2 * (PATH_CAP + 64) > R.hdr->size) return 0;
  __atomic_add_fetch(&R.hdr->library_calls, 1, __ATOMIC_RELAXED);
  return 1;
}

/* output.h */
struct uwrx_rec_header *rec_answering(void) { return fast() ? R.hdr : NULL; }
pid_t rec_owner(void) { return R.owner; }

int rec_after_wait(const struct uwrx_rec_header *h, pid_t tid) {
  if (__atomic_load_n(&h->clock_waiting, __ATOMIC_ACQUIRE) <= 0) return 0;
  if (!tid) tid = (pid_t)slow6(SYS_gettid, 0, 0, 0, 0, 0, 0);
  return uwrx_rec_tid_waits(h->clock_tid_bits, tid);
}

/* A call answered through one of libc's redirected entries: counted in the header, where
 * uwrx-init reads whether redirecting paid for this program (uwrx_recorder.h). */
void rec_redirected(void) {
  struct uwrx_rec_header *h = R.hdr;
  if (h) __atomic_add_fetch(&h->redirect_calls, 1, __ATOMIC_RELAXED);
}

static void count(int answered) {
  if (R.hdr) __atomic_add_fetch(answered ? &R.hdr->fast : &R.hdr->slow, 1, __ATOMIC_RELAXED);
}

/* ---- records ---- */

/* The repeat table's key (uwrx_hash.h: eight bytes of the path at a time; a byte at a
 * time was a tenth of the recorder's own time in find). */
static uint64_t access_hash(uint32_t op, int64_t result, const char *path, size_t len) {
  uint64_t h = uwrx_hash_bytes((uint64_t)op ^ ((uint64_t)(result < 0 ? result : 0) << 8), path, len);
  return h ? h : 1;
}

/* An entry number for `key` in t->seen, written before it is published; 0: full. */
static uint16_t seen_entry(struct tables *t, uint64_t key, uint32_t limit) {
  if (__atomic_load_n(&t->seen_used, __ATOMIC_RELAXED) >= limit) return 0;
  uint32_t e = __atomic_add_fetch(&t->seen_used, 1, __ATOMIC_RELAXED);
  if (e > limit) return 0;
  t->seen[e - 1].key = key;
  t->seen[e - 1].offset = 0;
  return (uint16_t)e;
}

enum seen_probe { SEEN_FOUND, SEEN_CLAIMED, SEEN_ABSENT };

/* Probes one table of slots for `key`: SEEN_FOUND with the entry's count field in
 * *count, SEEN_CLAIMED with a new entry in *slot (when one of at most `limit` entries
 * was left), or SEEN_ABSENT. */
static enum seen_probe seen_probe(struct tables *t, uint16_t *slots, uint32_t nslots, uint32_t limit, uint64_t key,
                                  uint32_t op, const char *path, size_t len, struct seen **slot, uint32_t **count) {
  for (unsigned i = 0; i < 16; i++) {
    uint16_t *number = &slots[(key + i) % nslots];
    uint16_t n = __atomic_load_n(number, __ATOMIC_ACQUIRE);
    if (n == 0) {
      uint16_t fresh = seen_entry(t, key, limit);
      if (fresh == 0) return SEEN_ABSENT;
      uint16_t expected = 0;
      if (__atomic_compare_exchange_n(number, &expected, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        *slot = &t->seen[fresh - 1];
        return SEEN_CLAIMED;
      }
      n = expected;
    }
    struct seen *s = &t->seen[n - 1];
    if (__atomic_load_n(&s->key, __ATOMIC_ACQUIRE) != key) continue;
    uint64_t off = __atomic_load_n(&s->offset, __ATOMIC_ACQUIRE);
    if (off == 0) return SEEN_ABSENT; /* its record is being written: record this one too */
    unsigned char *p = (unsigned char *)R.hdr + off;
    const struct uwrx_ev_access *ev = (const void *)(p + UWRX_EV_HEADER_SIZE);
    uint32_t have_len;
    memcpy(&have_len, p + UWRX_EV_HEADER_SIZE + ALIGN8(sizeof *ev), 4);
    if (ev->op == op && have_len == len && !memcmp(p + UWRX_EV_HEADER_SIZE + ALIGN8(sizeof *ev) + 4, path, len)) {
      *count = (uint32_t *)(p + UWRX_EV_HEADER_SIZE + offsetof(struct uwrx_ev_access, count));
      return SEEN_FOUND;
    }
  }
  return SEEN_ABSENT;
}

/* The count field of the first record of this access, or NULL (and a claimed slot in
 * *slot, when one was free) if there is none yet. Entries made while the small table
 * had room are in it; later ones in the large table. */
static uint32_t *seen_before(uint64_t hash, uint32_t op, const char *path, size_t len, struct seen **slot) {
  *slot = NULL;
  struct tables *t = tables();
  if (!t) return NULL;
  uint64_t key = seen_key(hash);
  uint32_t *count = NULL;
  enum seen_probe r =
      seen_probe(t, t->seen_small, SEEN_SMALL_SLOTS, SEEN_SMALL_ENTRIES, key, op, path, len, slot, &count);
  if (r == SEEN_ABSENT && __atomic_load_n(&t->seen_used, __ATOMIC_RELAXED) >= SEEN_SMALL_ENTRIES)
    r = seen_probe(t, t->seen_large, SEEN_LARGE_SLOTS, SEEN_ENTRIES, key, op, path, len, slot, &count);
  return r == SEEN_FOUND ? count : NULL;
}

static void emit(uint32_t op, int32_t flags, int64_t result, const char *path, size_t len) {
  uint64_t hash = access_hash(op, result, path, len);
  struct seen *slot;
  uint32_t *count = seen_before(hash, op, path, len, &slot);
  if (count) {
    __atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
    return;
  }
  uint64_t off = uwrx_append_access(R.hdr, rec_stamp_now(gate6), op, flags, result, path, len);
  if (slot && off) __atomic_store_n(&slot->offset, off, __ATOMIC_RELEASE);
}

/* "/proc/self/fd/<fd>" without stdio (the recorder may run inside a signal handler). */
static void fd_link(char out[32], int fd) {
  static const char prefix[] = "/proc/self/fd/";
  char digits[12];
  unsigned v = (unsigned)fd, n = 0;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) && n < sizeof digits);
  memcpy(out, prefix, sizeof prefix - 1);
  char *q = out + sizeof prefix - 1;
  while (n) *q++ = digits[--n];
  *q = 0;
}

/* The kernel's name of open fd `fd` (readlink of /proc/self/fd/<fd>) into out; its
 * length, <= 0 when it has none. */
static long fd_name(int fd, char *out) {
  char link[32];
  fd_link(link, fd);
  return gate6(SYS_readlinkat, AT_FDCWD, (long)link, (long)out, PATH_CAP - 1, 0, 0);
}

/* ---- paths of directory fds ----
 * A program that walks a tree relative to directory fds (find, fts, openat-based code)
 * has each of its calls recorded under the directory's path, which the kernel names
 * through /proc/self/fd (a lookup of four procfs names and a d_path: 1.3-1.9 us here,
 * more than the stat itself). A directory has one name per mount, so names are cached
 * per directory: mount id, device and inode number, with its change and modification
 * times, all read with a statx of the fd (0.2-0.3 us) at every use, since fds are closed,
 * duplicated and reused behind the recorder's back (closedir, fcntl, dup2, close_range).
 * A name is used only while no rename or removal of a directory or symlink, and no change
 * of root or mounts, has begun since it was read and none is in flight (uwrx-init counts
 * them, UWRX_DIRS_PATH); without that count nothing is cached. Names come from the kernel
 * or, for a directory opened here by one plain name with O_NOFOLLOW (fts's descent), from
 * its parent's name and that name. Each entry is a sequence lock that is never waited
 * for: a reader that meets a writer (another thread, or the signal handler's own thread)
 * asks the kernel instead, and a writer that finds the entry taken does not store. */

/* A file uwrx-init publishes in the sandbox's /dev for the recorders, mapped read-only
 * on first use into *page; NULL when the run has none. `looked` (atomic): 1 once looked
 * for, 2 while being looked for (another thread, or a signal handler, then goes without). */
static const void *published(const void **page, int *looked, const char *path, size_t size, uint64_t magic) {
  const void *p = __atomic_load_n(page, __ATOMIC_ACQUIRE);
  if (p || __atomic_load_n(looked, __ATOMIC_ACQUIRE) == 1) return p;
  int expected = 0;
  if (!__atomic_compare_exchange_n(looked, &expected, 2, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return NULL;
  long fd = gate6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
  if (fd >= 0) {
    long m = slow6(SYS_mmap, 0, (long)size, PROT_READ, MAP_SHARED, fd, 0);
    slow6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (m < 0 && m > -4096) m = 0;
    const uint64_t *got = (const uint64_t *)m;
    if (got && __atomic_load_n(got, __ATOMIC_ACQUIRE) == magic) __atomic_store_n(page, (const void *)got, __ATOMIC_RELEASE);
    else if (got) slow6(SYS_munmap, m, (long)size, 0, 0, 0, 0);
  }
  __atomic_store_n(looked, 1, __ATOMIC_RELEASE);
  return __atomic_load_n(page, __ATOMIC_ACQUIRE);
}

/* uwrx-init's count of directory path changes; NULL when the run has none. */
static const struct uwrx_dirs *dirs_page(void) {
  static const void *page;
  static int looked;
  return published(&page, &looked, UWRX_DIRS_PATH, 4096, UWRX_DIRS_MAGIC);
}

/* The generation names may be cached under now; 0: none (no count, or a change in flight). */
static uint64_t dirs_quiet(void) {
  const struct uwrx_dirs *d = dirs_page();
  if (!d) return 0;
  uint64_t begun = __atomic_load_n(&d->begun, __ATOMIC_SEQ_CST);
  return begun + 1 != 0 && __atomic_load_n(&d->settled, __ATOMIC_SEQ_CST) == begun ? begun + 1 : 0;
}

#define DIR_STATX (STATX_TYPE | STATX_INO | STATX_MNT_ID | STATX_CTIME | STATX_MTIME)

static int64_t stamp_ns(const struct statx_timestamp *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }
static uint64_t dev_of(const struct statx *x) { return ((uint64_t)x->stx_dev_major << 32) | x->stx_dev_minor; }

/* The directory open as `fd`, described in *x; 0 when it is none. */
static int dir_identity(int fd, struct statx *x) {
  long r = gate6(SYS_statx, fd, (long)"", AT_EMPTY_PATH, DIR_STATX, (long)x, 0);
  return r == 0 && (x->stx_mask & DIR_STATX) == DIR_STATX && S_ISDIR(x->stx_mode);
}

/* NULL: no tables */
static struct dir_slot *dir_slot(const struct statx *x) {
  struct tables *t = tables();
  if (!t) return NULL;
  uint64_t h = (x->stx_ino ^ (x->stx_mnt_id << 40) ^ dev_of(x)) * 0x9E3779B97F4A7C15ull;
  return &t->dirs[(h >> 32) % DIR_SLOTS];
}

static int same_dir(const struct dir_slot *e, uint64_t gen, const struct statx *x) {
  return e->gen == gen && e->mnt_id == x->stx_mnt_id && e->dev == dev_of(x) && e->ino == x->stx_ino &&
         e->ctime_ns == stamp_ns(&x->stx_ctime) && e->mtime_ns == stamp_ns(&x->stx_mtime);
}

/* Caches `name` for the directory `x` read under generation `gen`, if that is still the
 * generation (nothing began while the name was read). */
static void dir_store(uint64_t gen, const struct statx *x, const char *name, size_t len) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (len == 0 || len >= PATH_CAP || name[0] != '/' || dirs_quiet() != gen) return;
  struct dir_slot *e = dir_slot(x);
  if (!e) return;
  uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
  if ((seq & 1) || !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    return;
  __atomic_thread_fence(__ATOMIC_RELEASE);
  e->gen = gen;
  e->mnt_id = x->stx_mnt_id;
  e->dev = dev_of(x);
  e->ino = x->stx_ino;
  e->ctime_ns = stamp_ns(&x->stx_ctime);
  e->mtime_ns = stamp_ns(&x->stx_mtime);
  e->len = (uint32_t)len;
  memcpy(e->name, name, len);
  __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

/* The name of directory fd `fd` into out, as fd_name gives it. */
static long dir_name(int fd, char *out) {
  uint64_t gen = fd >= 0 ? dirs_quiet() : 0;
  struct statx x;
  if (!gen || !dir_identity(fd, &x)) return fd_name(fd, out);
  struct dir_slot *e = dir_slot(&x);
  uint32_t seq = e ? __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) : 1;
  if (!(seq & 1) && same_dir(e, gen, &x)) {
    uint32_t len = e->len;
    if (len > 0 && len < PATH_CAP) {
      memcpy(out, e->name, len);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq) return len;
    }
  }
  long n = fd_name(fd, out);
  if (n > 0) dir_store(gen, &x, out, (size_t)n);
  return n;
}

/* A directory opened as `fd` by the single name `path` (no symlink followed) relative to
 * a directory whose name the access record `name` extends by it: that is its name. */
static void dir_opened(uint64_t gen, int fd, const char *path, const char *name, size_t len) {
  if (!gen || !path[0] || strchr(path, '/') || !strcmp(path, ".") || !strcmp(path, "..")) return;
  struct statx x;
  if (dir_identity(fd, &x)) dir_store(gen, &x, name, len);
}

/* Absolute form of `path` relative to `dirfd` as the process names it, into out. */
static size_t absolute(int dirfd, const char *path, char *out) {
  long n;
  if (path[0] == '/') {
    out[0] = '/';
    n = 1;
  } else if (dirfd == AT_FDCWD) {
    n = gate6(SYS_getcwd, (long)out, PATH_CAP, 0, 0, 0, 0);
    if (n <= 0 || out[0] != '/') return 0;
    n--; /* getcwd counts the NUL */
  } else {
    n = dir_name(dirfd, out);
    if (n <= 0 || out[0] != '/') return 0;
  }
  out[n] = 0;
  return uwrx_join_normal(out, (size_t)n, path);
}

/* Records access `op` of `path` (relative to dirfd) with result `r`: the path as the
 * process named it, made absolute and lexically normalised, as the notification path
 * records it (resolving symlinks would cost a /proc lookup per call, more than the
 * open itself). The recorded path is left in buf; returns its length when it could be
 * made absolute, else 0. */
static size_t record_in(uint32_t op, int dirfd, const char *path, int32_t flags, long r, char buf[PATH_CAP]) {
  /* the kernel could not read the path: neither can the recorder (nothing was accessed) */
  if (r == -EFAULT) return 0;
  size_t len = absolute(dirfd, path, buf);
  size_t made = len;
  if (len == 0) {
    len = strnlen(path, PATH_CAP - 1);
    memcpy(buf, path, len);
  }
  emit(op, flags, r, buf, len);
  return made;
}

/* record_in without the path. */
static void record(uint32_t op, int dirfd, const char *path, int32_t flags, long r) {
  char buf[PATH_CAP];
  record_in(op, dirfd, path, flags, r, buf);
}

/* ---- opens ---- */

static int read_only(int flags) {
  if ((flags & O_TMPFILE) == O_TMPFILE) return 0;
  return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC));
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode) {
  if (!path || !read_only(flags) || !fast()) {
    count(0);
    return (int)set_errno(slow6(SYS_openat, dirfd, (long)path, flags, mode, 0, 0));
  }
  /* a directory opened by one name without following a symlink: its name is known */
  int descent = (flags & (O_DIRECTORY | O_NOFOLLOW | O_PATH)) == (O_DIRECTORY | O_NOFOLLOW) && path[0] != '/';
  uint64_t gen = descent ? dirs_quiet() : 0;
  long r = gate6(SYS_openat, dirfd, (long)path, flags, mode, 0, 0);
  count(1);
  char buf[PATH_CAP];
  size_t len = record_in((flags & O_DIRECTORY) ? UWRX_ACCESS_READDIR : UWRX_ACCESS_READ, dirfd, path, flags, r, buf);
  if (gen && r >= 0 && len) dir_opened(gen, (int)r, path, buf, len);
  return (int)set_errno(r);
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, mode);
}

/* _FORTIFY_SOURCE variants: glibc checks O_CREAT has a mode; without one, 0 as glibc. */
EXPORT int __open_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
EXPORT int __open64_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
EXPORT int __openat_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }
EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }

/* fopen for reading: opened here, then handed to stdio. Other modes, and modes stdio
 * must parse itself (",ccs="), go to libc's fopen. */
typedef FILE *(*fopen_fn)(const char *, const char *);

static FILE *do_fopen(const char *path, const char *mode, void **cache, const char *name) {
  int plain = mode && mode[0] == 'r' && !strchr(mode, '+') && !strchr(mode, ',');
  if (!plain || !path) {
    fopen_fn next = (fopen_fn)next_symbol(cache, name);
    if (!next) {
      errno = ENOSYS;
      return NULL;
    }
    return next(path, mode);
  }
  int fd = do_openat(AT_FDCWD, path, O_RDONLY | (strchr(mode, 'e') ? O_CLOEXEC : 0), 0);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "r");
  if (!f) {
    int saved = errno;
    slow6(SYS_close, fd, 0, 0, 0, 0, 0);
    errno = saved;
  }
  return f;
}

EXPORT FILE *fopen(const char *path, const char *mode) {
  static void *next;
  return do_fopen(path, mode, &next, "fopen");
}
EXPORT FILE *fopen64(const char *path, const char *mode) {
  static void *next;
  return do_fopen(path, mode, &next, "fopen64");
}

/* ---- the stat family ----
 * A failed stat is answered here (no times to squash). A successful one is answered here
 * when the shared rule (uwrx_stat_times.h) says uwrx-init would show the file's own
 * modification time; otherwise it is made again on the notification path, which knows
 * the layers. The kernel is asked with statx, whose mount id the rule needs. */

static int64_t statx_ns(const struct statx_timestamp *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* Whether the result in `x` is answered as it is, with its own modification time. */
static int shows_own_time(const struct statx *x) {
  /* a file system may leave out attributes not asked for: the rule needs all three */
  const unsigned needed = STATX_MNT_ID | STATX_MTIME | STATX_CTIME;
  if ((x->stx_mask & needed) != needed) return 0;
  int64_t ctime = statx_ns(&x->stx_ctime), mtime = statx_ns(&x->stx_mtime);
  if (uwrx_stat_shows_own_time(R.hdr, x->stx_mnt_id, ctime, mtime)) return 1;
  return S_ISDIR(x->stx_mode) && (x->stx_mask & (STATX_TYPE | STATX_INO)) == (STATX_TYPE | STATX_INO) &&
         uwrx_stat_plan_dir(R.hdr, x->stx_mnt_id, x->stx_ino, mtime);
}

/* uwrx-init's table of the times of files this attempt changed; NULL when none. */
static const struct uwrx_times *times_table(void) {
  static const void *page;
  static int looked;
  return published(&page, &looked, UWRX_TIMES_PATH, UWRX_TIMES_SIZE, UWRX_TIMES_MAGIC);
}

/* Whether the result in `x` is of a file this attempt changed whose time uwrx-init
 * published (uwrx_stat_times.h): *ns and *explicit_times say what it shows. */
static int shows_changed_time(const struct statx *x, int64_t *ns, int *explicit_times) {
  const unsigned needed = STATX_MNT_ID | STATX_TYPE | STATX_INO | STATX_NLINK;
  if ((x->stx_mask & needed) != needed || !R.hdr->squash || !uwrx_stat_overlay_mount(R.hdr, x->stx_mnt_id)) return 0;
  if (!S_ISDIR(x->stx_mode) && x->stx_nlink != 1) return 0;
  const struct uwrx_times *t = times_table();
  return t && uwrx_times_lookup(t, dev_of(x), x->stx_ino, ns, explicit_times);
}

/* Whether the result in `x` lies outside the overlays, where uwrx-init leaves the
 * kernel's answer as it is (a pipe, a socket, /proc, /dev). */
static int shows_kernel(const struct statx *x) {
  return (x->stx_mask & STATX_MNT_ID) && uwrx_stat_shows_kernel(R.hdr, x->stx_mnt_id);
}

/* The struct stat the kernel's newfstatat would have filled from the same attributes
 * (fs/stat.c cp_new_stat: device numbers in the kernel's 32-bit encoding). */
static uint64_t kernel_dev(uint32_t major, uint32_t minor) {
  return (uint32_t)((minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12));
}

static void stat_of_statx(struct stat *st, const struct statx *x) {
  memset(st, 0, sizeof *st);
  st->st_dev = kernel_dev(x->stx_dev_major, x->stx_dev_minor);
  st->st_ino = x->stx_ino;
  st->st_nlink = x->stx_nlink;
  st->st_mode = x->stx_mode;
  st->st_uid = x->stx_uid;
  st->st_gid = x->stx_gid;
  st->st_rdev = kernel_dev(x->stx_rdev_major, x->stx_rdev_minor);
  st->st_size = (off_t)x->stx_size;
  st->st_blksize = x->stx_blksize;
  st->st_blocks = (blkcnt_t)x->stx_blocks;
  st->st_atim = (struct timespec){ x->stx_atime.tv_sec, x->stx_atime.tv_nsec };
  st->st_mtim = (struct timespec){ x->stx_mtime.tv_sec, x->stx_mtime.tv_nsec };
  st->st_ctim = (struct timespec){ x->stx_ctime.tv_sec, x->stx_ctime.tv_nsec };
}

/* The flags newfstatat accepts; anything else goes to the kernel as it is (EINVAL). */
#define FSTATAT_FLAGS (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)

/* fstat: a descriptor's stat (an empty path with AT_EMPTY_PATH). The notification path
 * records no access for it (the open was recorded), so neither does the recorder. */
static int by_fd(int dirfd, const char *path, int flags) { return !path[0] && (flags & AT_EMPTY_PATH) && dirfd >= 0; }

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags) {
  if (path && st && !(flags & ~FSTATAT_FLAGS) && fast()) {
    struct statx x;
    /* the kernel reads the path first: an unmapped one is EFAULT, not a crash here */
    long r = gate6(SYS_statx, dirfd, (long)path, flags, STATX_BASIC_STATS, (long)&x, 0);
    if (r == -EFAULT) {
      count(1);
      return (int)set_errno(r);
    }
    if (!path[0] && !by_fd(dirfd, path, flags)) goto slow;
    int fd_only = !path[0];
    if (r < 0) {
      count(1);
      if (!fd_only) record(UWRX_ACCESS_STAT, dirfd, path, flags, r);
      return (int)set_errno(r);
    }
    int64_t changed;
    int explicit_times = 0;
    int own = shows_own_time(&x), published_time = !own && shows_changed_time(&x, &changed, &explicit_times);
    if (own || published_time || shows_kernel(&x)) {
      stat_of_statx(st, &x);
      if (own) uwrx_stat_show(st, statx_ns(&x.stx_mtime), 0);
      else if (published_time) uwrx_stat_show(st, changed, explicit_times);
      count(1);
      if (!fd_only) record(UWRX_ACCESS_STAT, dirfd, path, flags, 0);
      return 0;
    }
  }
slow:
  count(0);
  return (int)set_errno(slow6(SYS_newfstatat, dirfd, (long)path, (long)st, flags, 0, 0));
}

EXPORT int stat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, 0); }
EXPORT int stat64(const char *path, struct stat64 *st) { return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0); }
EXPORT int lstat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW); }
EXPORT int lstat64(const char *path, struct stat64 *st) {
  return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}
EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags) { return do_fstatat(dirfd, path, st, flags); }
EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
  return do_fstatat(dirfd, path, (struct stat *)st, flags);
}
static int do_fstat(int fd, struct stat *st) {
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  return do_fstatat(fd, "", st, AT_EMPTY_PATH);
}

EXPORT int fstat(int fd, struct stat *st) { return do_fstat(fd, st); }
EXPORT int fstat64(int fd, struct stat64 *st) { return do_fstat(fd, (struct stat *)st); }

/* The versioned entry points of binaries built against glibc before 2.33 (x86_64 has one
 * struct stat layout, version 1). */
EXPORT int __xstat(int ver, const char *path, struct stat *st) { (void)ver; return do_fstatat(AT_FDCWD, path, st, 0); }
EXPORT int __xstat64(int ver, const char *path, struct stat64 *st) {
  (void)ver;
  return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0);
}
EXPORT int __lxstat(int ver, const char *path, struct stat *st) {
  (void)ver;
  return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}
EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st) {
  (void)ver;
  return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}
EXPORT int __fxstat(int ver, int fd, struct stat *st) {
  (void)ver;
  return do_fstat(fd, st);
}
EXPORT int __fxstat64(int ver, int fd, struct stat64 *st) {
  (void)ver;
  return do_fstat(fd, (struct stat *)st);
}
EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags) {
  (void)ver;
  return do_fstatat(dirfd, path, st, flags);
}
EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags) {
  (void)ver;
  return do_fstatat(dirfd, path, (struct stat *)st, flags);
}

static int do_statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  if (path && buf && fast()) {
    /* uwrx-init asks for the modification time too (the rule reads it): the same call.
     * The kernel reads the path first: an unmapped one (or buffer) is EFAULT. */
    long r = gate6(SYS_statx, dirfd, (long)path, flags, mask | STATX_MTIME, (long)buf, 0);
    if (r == -EFAULT) {
      count(1);
      return (int)set_errno(r);
    }
    if (!path[0] && !by_fd(dirfd, path, flags)) goto slow;
    if (r < 0) {
      count(1);
      if (path[0]) record(UWRX_ACCESS_STAT, dirfd, path, flags, r);
      return (int)set_errno(r);
    }
    int64_t changed;
    int explicit_times = 0;
    int own = shows_own_time(buf);
    if (own || shows_changed_time(buf, &changed, &explicit_times)) {
      if (own) uwrx_statx_show(buf, statx_ns(&buf->stx_mtime), 0);
      else uwrx_statx_show(buf, changed, explicit_times);
      count(1);
      if (path[0]) record(UWRX_ACCESS_STAT, dirfd, path, flags, 0);
      return 0;
    }
  }
slow:
  count(0);
  return (int)set_errno(slow6(SYS_statx, dirfd, (long)path, flags, mask, (long)buf, 0));
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  return do_statx(dirfd, path, flags, mask, buf);
}

/* libc's internal calls that no symbol lookup reaches, redirected here before main while
 * the process runs one thread (redirect.c), so those are answered in process too:
 *  - fstatat, the one system call every stat and fstat inside libc ends in (opendir,
 *    stdio's buffers, realpath); the plain wrapper of glibc 2.33 and later on x86_64
 *    (mov %ecx,%r10d; mov $SYS_newfstatat,%eax; syscall; cmp $-4096,%eax or %rax);
 *  - __open_nocancel (also __open64_nocancel), behind setlocale's locale files, the
 *    gconv cache, opendir and more: dozens of opens in every program that sets its
 *    locale; glibc 2.36's code on x86_64 (sub $0x58,%rsp; mov %esi,%r10d;
 *    mov %rdx,0x30(%rsp)).
 *  - execve, behind execvp, execvpe, posix_spawn and posix_spawnp (a PATH search's
 *    failing tries: "execs of paths that do not exist" above); the plain wrapper.
 *  - getrandom, which malloc calls once per process for its tcache key: the main
 *    thread's call is answered from the leased stream below, without a notification.
 *  - write, writev, pwrite64 and pwritev, behind stdio: output to fd 1 and 2 recorded in
 *    process (output.c).
 * Anything else is left alone and its calls are notified. */
static int libc_fstatat(int dirfd, const char *path, struct stat *st, int flags) {
  rec_redirected();
  return do_fstatat(dirfd, path, st, flags);
}

/* libc's getrandom, behind malloc's first use (its tcache key) and arc4random: the
 * recorder's, reached directly */
static ssize_t do_getrandom(void *buf, size_t len, unsigned int flags);
static ssize_t libc_getrandom(void *buf, size_t len, unsigned int flags) {
  rec_redirected();
  return do_getrandom(buf, len, flags);
}

/* libc's execve, behind execvp and posix_spawn: the recorder's, reached directly; only
 * the exec of a missing path is answered here */
static long exec_missing(const char *path);
static int libc_execve(const char *path, char *const argv[], char *const envp[]) {
  long missing = exec_missing(path);
  if (missing) {
    rec_redirected();
    return (int)set_errno(missing);
  }
  return (int)set_errno(slow6(SYS_execve, (long)path, (long)argv, (long)envp, 0, 0, 0));
}

/* __open_nocancel takes open's arguments: the recorder's open, reached directly (not
 * through the symbol, which another library could interpose) */
static int libc_open_nocancel(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  rec_redirected();
  return do_openat(AT_FDCWD, path, flags, mode);
}

/* Tried once per process image (a forked child keeps its parent's libc as patched). */
static STARTUP_STATE int libc_redirect_tried;

static void redirect_libc(void) {
  if (libc_redirect_tried) return;
  libc_redirect_tried = 1;
#define PLAIN_FSTATAT 0x41, 0x89, 0xca, 0xb8, SYS_newfstatat & 0xff, SYS_newfstatat >> 8, 0, 0, 0x0f, 0x05
  static const unsigned char cmp_eax[] = { PLAIN_FSTATAT, 0x3d, 0x00, 0xf0, 0xff, 0xff };
  static const unsigned char cmp_rax[] = { PLAIN_FSTATAT, 0x48, 0x3d, 0x00, 0xf0, 0xff, 0xff };
#undef PLAIN_FSTATAT
  static const struct rec_code fstatat_codes[] = { { cmp_eax, sizeof cmp_eax, NULL }, { cmp_rax, sizeof cmp_rax, NULL } };
  static const unsigned char open_236[] = { 0x48, 0x83, 0xec, 0x58, 0x41, 0x89, 0xf2, 0x48, 0x89, 0x54, 0x24, 0x30 };
  static const struct rec_code open_codes[] = { { open_236, sizeof open_236, NULL } };
  /* mov $SYS_execve, %eax; syscall; cmp $-4095, %rax; jae <error>; ret */
  static const unsigned char plain_execve[] = { 0xb8, SYS_execve, 0, 0, 0, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x01, 0xc3 };
  static const struct rec_code execve_codes[] = { { plain_execve, sizeof plain_execve, NULL } };
  /* cmpb $0, __libc_single_threaded(%rip); je <cancellable call>; mov $SYS_getrandom, %eax;
   * syscall: glibc 2.36's, the displacement left out */
  static const unsigned char single_getrandom[] = { 0x80, 0x3d, 0, 0, 0, 0, 0x00, 0x74, 0x17, 0xb8,
                                                    SYS_getrandom & 0xff, SYS_getrandom >> 8, 0, 0, 0x0f, 0x05 };
  static const unsigned char single_getrandom_mask[] = { 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
                                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
  static const struct rec_code getrandom_codes[] = { { single_getrandom, sizeof single_getrandom, single_getrandom_mask } };
  const struct rec_redirect own[] = { /* on the stack: no relocated data page to fault in */
    { "fstatat64", fstatat_codes, 2, (void *)libc_fstatat },
    { "__open64_nocancel", open_codes, 1, (void *)libc_open_nocancel },
    { "execve", execve_codes, 1, (void *)libc_execve },
    { "getrandom", getrandom_codes, 1, (void *)libc_getrandom },
  };
  /* only where it pays: uwrx-init's word for this program (uwrx_recorder.h) */
  if (!fast() || __atomic_load_n(&R.hdr->redirect_skip, __ATOMIC_ACQUIRE)) return;
  /* these, then output.c's */
  struct rec_redirect list[REC_REDIRECTS_MAX];
  size_t n = sizeof own / sizeof own[0];
  memcpy(list, own, sizeof own);
  n = rec_output_redirects(list, n, REC_REDIRECTS_MAX);
  rec_redirect(list, n, gate6);
}

/* The recorder's own constructor. Another library's may run first and already call
 * into libc (libselinux's, in sed, mkdir, mv and more: malloc's getrandom, an fstat of
 * /proc/filesystems); then the recorder's set-up at that library's first interposed call
 * redirects libc's entries already (setup below), still before main. */
__attribute__((constructor)) static void recorder_constructor(void) {
  own_constructor_ran = 1;
  redirect_libc();
}

/* ---- access, readlink ---- */

static int do_faccessat(int dirfd, const char *path, int mode, int flags) {
  if (!path || !fast()) {
    count(0);
    return (int)set_errno(slow6(SYS_faccessat2, dirfd, (long)path, mode, flags, 0, 0));
  }
  /* faccessat2 takes the flags; kernels before 5.8 lack it (glibc then emulates) */
  long r = gate6(flags ? SYS_faccessat2 : SYS_faccessat, dirfd, (long)path, mode, flags, 0, 0);
  /* a tree still bound read-only until its first change (init/lazy.c) says EROFS where
   * the write would be allowed: asked again past the gate, uwrx-init puts the overlay in
   * place first */
  if (r == -EROFS && (mode & W_OK)) r = slow6(flags ? SYS_faccessat2 : SYS_faccessat, dirfd, (long)path, mode, flags, 0, 0);
  count(1);
  record(UWRX_ACCESS_ACCESS, dirfd, path, mode, r);
  return (int)set_errno(r);
}

EXPORT int access(const char *path, int mode) { return do_faccessat(AT_FDCWD, path, mode, 0); }
EXPORT int faccessat(int dirfd, const char *path, int mode, int flags) {
  return do_faccessat(dirfd, path, mode, flags);
}

static ssize_t do_readlinkat(int dirfd, const char *path, char *buf, size_t size) {
  if (!path || !fast()) {
    count(0);
    return set_errno(slow6(SYS_readlinkat, dirfd, (long)path, (long)buf, (long)size, 0, 0));
  }
  long r = gate6(SYS_readlinkat, dirfd, (long)path, (long)buf, (long)size, 0, 0);
  count(1);
  record(UWRX_ACCESS_READLINK, dirfd, path, 0, r);
  return set_errno(r);
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size) {
  return do_readlinkat(AT_FDCWD, path, buf, size);
}
EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size) {
  return do_readlinkat(dirfd, path, buf, size);
}

/* ---- execs of paths that do not exist ----
 * A search along PATH (execvp, posix_spawnp: gcc looking for `as`, make running a
 * command) tries execve in each directory before the one that holds the program, and
 * each failing try was a notification. The recorder first asks the kernel from the gate
 * whether the path exists for this process (faccessat2 F_OK with the effective ids: the
 * lookup execve makes, with the same root and cwd) and answers ENOENT or ENOTDIR itself.
 * Every exec of a path that exists is notified as before. A failed exec changes nothing
 * and is recorded by neither path. Libc's own execve (behind execvp, execvpe and
 * posix_spawn) reaches this too (redirect_libc below). Only the gate is needed, so a
 * vfork child (posix_spawn's, a shell's) is answered here too. */
static long exec_missing(const char *path) {
  if (!path || !gate_mapped()) return 0;
  long r = gate6(SYS_faccessat2, AT_FDCWD, (long)path, F_OK, AT_EACCESS, 0, 0);
  return r == -ENOENT || r == -ENOTDIR ? r : 0;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  long missing = exec_missing(path);
  if (missing) return (int)set_errno(missing);
  return (int)set_errno(slow6(SYS_execve, (long)path, (long)argv, (long)envp, 0, 0, 0));
}

/* ---- connects ----
 * uwrx-init sees every connect to record it (init/trace.c), and some to act on (the name
 * server, addresses it handed out for recorded hosts: init/net.c). A connect that needs
 * no act (uwrx_net_rules.h: a local server on 127.0.0.1, a Unix socket) is recorded here,
 * with the record uwrx-init's trace writes (the address as given, result 0, before the
 * call), and made from the gate: a client that connects for every request (ab, curl in
 * a loop) paid a round trip each. The rest, and a thread whose call uwrx-init must see
 * (rec_recording_thread), go to libc's connect and the notification path. */
static int connect_here(const struct sockaddr *addr, socklen_t len) {
  if (!addr || uwrx_connect_for_init(addr, len) || !gate_mapped() || !fast()) return 0;
  uint32_t tid = rec_recording_thread(R.hdr);
  if (!tid) return 0;
  struct uwrx_ev_connect ev = { .family = addr->sa_family };
  const void *bytes;
  size_t n;
  /* (as uwrx-init reads it: at most a sockaddr_storage) */
  uwrx_connect_address(addr, len > sizeof(struct sockaddr_storage) ? sizeof(struct sockaddr_storage) : len, &ev.port,
                       &bytes, &n);
  uwrx_append_record(R.hdr, rec_stamp_now(gate6), UWRX_EV_CONNECT, tid, &ev, sizeof ev, bytes, n);
  return 1;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static void *next;
  if (connect_here(addr, len)) return (int)set_errno(gate6(SYS_connect, fd, (long)addr, len, 0, 0, 0));
  int (*f)(int, const struct sockaddr *, socklen_t) = (int (*)(int, const struct sockaddr *, socklen_t))next_symbol(&next, "connect");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(fd, addr, len);
}

/* ---- waits that find nothing to reap ----
 * A shell waits for each command twice: once blocking, and once more with WNOHANG to see
 * whether another child ended (dash's answer is ECHILD); make polls the same way. A wait
 * that reaps nothing changes nothing uwrx-init keeps (a reaped child's clock is joined
 * into its parent's, docs/reproducibility.md), so such a wait needs no notification: the
 * recorder first asks the kernel from the gate with waitid(WNOWAIT), which reaps nothing,
 * and answers "none" (0) or the error (ECHILD) itself. When a child can be reaped, and for
 * every wait that may block, the wait4 goes to the notification path as before. */
#define WAIT4_OPTIONS (WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL)

/* 1: nothing to reap, wait4 answers 0; a negative errno: wait4 fails with it; 2: ask the
 * kernel (notified). */
static int probe_no_reap(pid_t pid, int options) {
  if (!(options & WNOHANG) || (options & ~WAIT4_OPTIONS) || pid == INT_MIN || !gate_mapped()) return 2;
  /* wait4's pid as waitid's id: -1 any child, 0 or -pgid a process group */
  idtype_t type = pid == -1 ? P_ALL : pid <= 0 ? P_PGID : P_PID;
  id_t id = pid == -1 ? 0 : pid < 0 ? (id_t)-pid : (id_t)pid;
  int wopts = WEXITED | WNOHANG | WNOWAIT | ((options & WUNTRACED) ? WSTOPPED : 0) |
              (options & (WCONTINUED | __WNOTHREAD | __WCLONE | __WALL));
  siginfo_t info;
  memset(&info, 0, sizeof info);
  long r = gate6(SYS_waitid, type, id, (long)&info, wopts, 0, 0);
  if (r == -ECHILD) return -ECHILD;
  if (r != 0 || info.si_pid != 0) return 2;
  return 1;
}

/* Whether uwrx-init joined child `pid` at its exit; its entry is taken out. */
static int take_joined(struct uwrx_rec_header *h, int32_t pid) {
  for (int i = 0; i < UWRX_REC_REAP_JOINED; i++) {
    int32_t expected = pid;
    if (__atomic_compare_exchange_n(&h->reap_joined[i], &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return 1;
  }
  return 0;
}

/* A blocking wait of a single-threaded process, while uwrx-init watches the header's reap
 * fields (uwrx_recorder.h): the process says what it waits for and reaps from the gate,
 * and uwrx-init joins the child's clock at its exit_group, before the wait returns, as
 * it does for a notified wait4 (and names it in reap_joined). With a child that ended
 * unjoined before (reap_unjoined), the wait goes to the notification path as it is; a
 * reaped child uwrx-init did not join (killed by a signal) is named to it at once.
 * 1 with the result in *out, or 0. */
static int wait_joined(pid_t pid, int *status, int options, struct rusage *usage, long *out) {
  if ((options & (WNOHANG | ~WAIT4_OPTIONS)) || pid == INT_MIN || !__libc_single_threaded) return 0;
  /* only with the recorder set up already: setting it up costs more than the
   * notification saved (a forked shell that only waits never needs it) */
  if (__atomic_load_n(&R.state, __ATOMIC_ACQUIRE) != ON || !fast()) return 0;
  struct uwrx_rec_header *h = R.hdr;
  if (!__atomic_load_n(&h->reap_watch, __ATOMIC_ACQUIRE)) return 0;
  /* as uwrx-init reads a notified wait4's pid: a process group is "any" */
  __atomic_store_n(&h->reap_pid, pid > 0 ? (int32_t)pid : 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->reap_waiting, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&h->reap_unjoined, __ATOMIC_SEQ_CST) != 0) {
    __atomic_store_n(&h->reap_waiting, 0, __ATOMIC_SEQ_CST);
    return 0;
  }
  long r = gate6(SYS_wait4, pid, (long)status, options, (long)usage, 0, 0);
  __atomic_store_n(&h->reap_waiting, 0, __ATOMIC_SEQ_CST);
  if (r > 0 && !take_joined(h, (int32_t)r)) slow6(UWRX_SYS_CONTROL, UWRX_CTL_REAPED, r, 0, 0, 0, (long)UWRX_CONTROL_MAGIC);
  *out = r;
  return 1;
}

static pid_t do_wait4(pid_t pid, int *status, int options, struct rusage *usage) {
  int probe = probe_no_reap(pid, options);
  if (probe == 1) return 0; /* as wait4 answers: status and usage untouched */
  if (probe < 0) return (pid_t)set_errno(probe);
  long joined;
  if (wait_joined(pid, status, options, usage, &joined)) return (pid_t)set_errno(joined);
  return (pid_t)set_errno(slow6(SYS_wait4, pid, (long)status, options, (long)usage, 0, 0));
}

EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage) { return do_wait4(pid, status, options, usage); }
EXPORT pid_t wait3(int *status, int options, struct rusage *usage) { return do_wait4(-1, status, options, usage); }
EXPORT pid_t waitpid(pid_t pid, int *status, int options) { return do_wait4(pid, status, options, NULL); }
EXPORT pid_t __waitpid(pid_t pid, int *status, int options) { return do_wait4(pid, status, options, NULL); }

/* ---- clocks ----
 * While uwrx-init leases the clocks to the process (uwrx_recorder.h, clocks.c), a read
 * is answered here from the published clocks and the number of reads made since, with
 * the dettime.c code uwrx-init answers with: the same values, without a notification.
 * Otherwise (a thread in a timed wait, an armed timer, real time, a clock uwrx leaves to
 * the kernel, a NULL pointer) the call goes to the kernel and the notification path. */

/* The clocks at place `n` of the count (before the read or event there): the published
 * clocks and the reads and events between. The published state and the events are read
 * until no writer changed either meanwhile. */
static void clock_at(const struct uwrx_rec_header *h, const uwrx_time_config *c, uint64_t n, uwrx_clock *k) {
  uwrx_clock_event events[UWRX_REC_CLOCK_EVENTS];
  for (;;) {
    uint32_t seq = __atomic_load_n(&h->clock_seq, __ATOMIC_ACQUIRE);
    uint32_t ev_seq = __atomic_load_n(&h->clock_ev_seq, __ATOMIC_ACQUIRE);
    if ((seq | ev_seq) & 1) continue;
    k->now_ns = __atomic_load_n(&h->clock_now_ns, __ATOMIC_RELAXED);
    k->cpu_ns = __atomic_load_n(&h->clock_cpu_ns, __ATOMIC_RELAXED);
    k->children_cpu_ns = __atomic_load_n(&h->clock_children_cpu_ns, __ATOMIC_RELAXED);
    uint64_t base = __atomic_load_n(&h->clock_reads_base, __ATOMIC_RELAXED);
    uint32_t folded = __atomic_load_n(&h->clock_ev_folded, __ATOMIC_RELAXED);
    uint32_t next = __atomic_load_n(&h->clock_ev_next, __ATOMIC_RELAXED);
    size_t nev = 0;
    for (uint32_t i = folded; i != next && nev < UWRX_REC_CLOCK_EVENTS; i++)
      events[nev++] = h->clock_events[i % UWRX_REC_CLOCK_EVENTS];
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&h->clock_seq, __ATOMIC_RELAXED) != seq || __atomic_load_n(&h->clock_ev_seq, __ATOMIC_RELAXED) != ev_seq)
      continue;
    /* uwrx-init may have folded this very place in already: then n < base */
    if (n >= base) uwrx_time_replay(c, k, base, n, events, nev, NULL, NULL);
    else uwrx_time_after_reads(c, k, -(int64_t)(base - n));
    return;
  }
}

static int64_t real_now(void);

int rec_clock_open(const struct uwrx_rec_header *h) {
  if (!__atomic_load_n(&h->clock_open, __ATOMIC_ACQUIRE)) return 0;
  int64_t timer = __atomic_load_n(&h->clock_timer_real_ns, __ATOMIC_ACQUIRE);
  if (!timer) return 1;
  int64_t now = real_now();
  return now >= 0 && now < timer;
}

/* The run's time configuration, as uwrx-init put it in the header. */
static uwrx_time_config lease_config(const struct uwrx_rec_header *h) {
  return (uwrx_time_config){ .mode = h->clock_mode, .t0_ns = h->clock_t0_ns, .step_ns = h->clock_step_ns,
                             .wall_offset_ns = h->clock_wall_offset_ns };
}

/* The run's time configuration and whether this thread's clock reads may be answered
 * here now. */
static int lease_usable(uwrx_time_config *c) {
  if (!fast()) return 0;
  struct uwrx_rec_header *h = R.hdr;
  if (!rec_clock_open(h) || rec_after_wait(h, 0)) return 0;
  *c = lease_config(h);
  return 1;
}

/* The clocks for one more read, and the run's time configuration; 0: not answered here. */
static int lease_read(int32_t clock_id, uwrx_time_config *c, uwrx_clock *k) {
  if (!lease_usable(c) || !uwrx_time_faked(c, clock_id)) return 0;
  struct uwrx_rec_header *h = R.hdr;
  uint64_t n = __atomic_fetch_add(clock_reads, 1, __ATOMIC_SEQ_CST);
  clock_at(h, c, n, k);
  if (!__atomic_load_n(&h->clock_used, __ATOMIC_RELAXED)) {
    __atomic_store_n(&h->clock_used, 1, __ATOMIC_RELEASE);
    /* a process that reads the clock lives long enough to map its tables: a child it
     * forks without telling libc (unannounced_fork) is then known for one */
    tables();
  }
  return 1;
}

static int do_clock_gettime(clockid_t clock_id, struct timespec *ts) {
  uwrx_time_config c;
  uwrx_clock k;
  int64_t ns;
  if (ts && lease_read((int32_t)clock_id, &c, &k) && uwrx_time_read(&c, &k, (int32_t)clock_id, &ns)) {
    ts->tv_sec = uwrx_time_floor_div(ns, 1000000000);
    ts->tv_nsec = ns - ts->tv_sec * 1000000000;
    return 0;
  }
  return (int)set_errno(slow6(SYS_clock_gettime, clock_id, (long)ts, 0, 0, 0, 0));
}

EXPORT int clock_gettime(clockid_t clock_id, struct timespec *ts) { return do_clock_gettime(clock_id, ts); }

EXPORT int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  uwrx_time_config c;
  uwrx_clock k;
  int64_t sec, usec;
  if (tv && lease_read(0 /* CLOCK_REALTIME */, &c, &k) && uwrx_time_gettimeofday(&c, &k, &sec, &usec)) {
    tv->tv_sec = sec;
    tv->tv_usec = usec;
    /* uwrx-init answers UTC for the kernel's timezone */
    if (tz) memset(tz, 0, 2 * sizeof(int));
    return 0;
  }
  return (int)set_errno(slow6(SYS_gettimeofday, (long)tv, (long)tz, 0, 0, 0, 0));
}

EXPORT time_t time(time_t *tloc) {
  uwrx_time_config c;
  uwrx_clock k;
  int64_t sec;
  if (lease_read(0 /* CLOCK_REALTIME */, &c, &k) && uwrx_time_time(&c, &k, &sec)) {
    if (tloc) *tloc = (time_t)sec;
    return (time_t)sec;
  }
  return (time_t)set_errno(slow6(SYS_time, (long)tloc, 0, 0, 0, 0, 0));
}

/* ---- timed waits ----
 * A wait with a timeout ends by moving the clock: to its deadline when it timed out, one
 * step when something came first (dettime.c). On the notification path that costs two
 * round trips per wait, the wait (uwrx-init notes its start) and the thread's next call
 * (which ends it, and in an event loop is mostly a clock read). While the clock is
 * leased, an epoll_wait, epoll_pwait, poll, select, ppoll, pselect or sleep (relative,
 * or until a deadline on a virtual clock) with a timeout is made from the gate instead
 * and its end written into the header as a clock event (uwrx_recorder.h): the same
 * clock, no notification. Every other wait (no timeout, a thread already in a notified
 * wait, no lease, a timer armed) goes to libc's function and the notification path as
 * before. */

/* The supervisor's clock, the one uwrx-init times a notified wait with (CLOCK_BOOTTIME). */
static int64_t real_now(void) {
  struct timespec ts;
  if (gate6(SYS_clock_gettime, CLOCK_BOOTTIME, (long)&ts, 0, 0, 0, 0) != 0) return -1;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The clock as a wait starting here finds it (after the `*n` reads so far), the run's
 * time configuration and the real time; 0: no wait may be made here. */
static int wait_clock(uwrx_time_config *c, uwrx_clock *k, uint64_t *n, int64_t *real) {
  if (!gate_mapped() || !lease_usable(c) || c->mode != UWRX_TIME_ADVANCING) return 0;
  struct uwrx_rec_header *h = R.hdr;
  if (!__atomic_load_n(&h->clock_waits, __ATOMIC_RELAXED)) return 0;
  /* with a timer armed, where its fire and a wait's end fall in the count of reads is the
   * notification path's to say */
  if (__atomic_load_n(&h->clock_timer_real_ns, __ATOMIC_ACQUIRE)) return 0;
  *real = real_now();
  if (*real < 0) return 0;
  *n = __atomic_load_n(clock_reads, __ATOMIC_SEQ_CST);
  clock_at(h, c, *n, k);
  return 1;
}

/* 1: wait `w`, set up after `n` reads, is one (it has time to wait). */
static int wait_started(const uwrx_wait *w, uint64_t n) {
  struct uwrx_rec_header *h = R.hdr;
  /* where a notified wait would have folded this process's reads, were it killed in it */
  if (w->active) {
    __atomic_store_n(&h->clock_count_at_wait, n, __ATOMIC_RELEASE);
    if (!__atomic_load_n(&h->clock_used, __ATOMIC_RELAXED)) __atomic_store_n(&h->clock_used, 1, __ATOMIC_RELEASE);
  }
  return w->active;
}

/* 1: a wait of `timeout_ns` starts here, made from the gate; 0: not answered here. */
static int wait_begin(int64_t timeout_ns, uwrx_wait *w) {
  uwrx_time_config c;
  uwrx_clock k;
  uint64_t n;
  int64_t real;
  if (timeout_ns <= 0 || !wait_clock(&c, &k, &n, &real)) return 0;
  uwrx_time_wait_relative(&c, &k, w, real, timeout_ns);
  return wait_started(w, n);
}

/* Writes the wait's end as the next clock event: its place in the count taken and the
 * entry written while clock_ev_seq is odd, with this thread's signals blocked (a handler
 * reading the clock would wait for it). With every entry in use, uwrx-init folds them
 * first (UWRX_CTL_CLOCK_FOLD). */
static void wait_end(uwrx_wait *w) {
  struct uwrx_rec_header *h = R.hdr;
  int64_t real = real_now();
  uwrx_clock_event e = { .place = real >= w->real_deadline_ns ? UWRX_CLOCK_EVENT_TIMED_OUT : 0,
                         .virtual_deadline_ns = w->virtual_deadline_ns };
  uint64_t all = ~0ull, old;
  slow6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, sizeof all, 0, 0);
  /* (a fold that frees nothing, which only a broken header gives, drops the event
   * rather than asking for ever) */
  for (int folds = 0; folds <= 3;) {
    uint32_t seq = __atomic_load_n(&h->clock_ev_seq, __ATOMIC_RELAXED);
    if ((seq & 1) || !__atomic_compare_exchange_n(&h->clock_ev_seq, &seq, seq + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
      sched_yield();
      continue;
    }
    uint32_t next = h->clock_ev_next;
    if (next - __atomic_load_n(&h->clock_ev_folded, __ATOMIC_ACQUIRE) < UWRX_REC_CLOCK_EVENTS) {
      e.place |= __atomic_fetch_add(clock_reads, 1, __ATOMIC_SEQ_CST);
      h->clock_events[next % UWRX_REC_CLOCK_EVENTS] = e;
      __atomic_store_n(&h->clock_ev_next, next + 1, __ATOMIC_RELEASE);
      __atomic_store_n(&h->clock_ev_seq, seq + 2, __ATOMIC_RELEASE);
      break;
    }
    __atomic_store_n(&h->clock_ev_seq, seq + 2, __ATOMIC_RELEASE);
    /* with the count untouched: the fold sees the events it needs */
    __atomic_store_n(&h->clock_used, 1, __ATOMIC_RELEASE);
    slow6(UWRX_SYS_CONTROL, UWRX_CTL_CLOCK_FOLD, 0, 0, 0, 0, (long)UWRX_CONTROL_MAGIC);
    folds++;
  }
  if (!__atomic_load_n(&h->clock_used, __ATOMIC_RELAXED)) __atomic_store_n(&h->clock_used, 1, __ATOMIC_RELEASE);
  slow6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, sizeof old, 0, 0);
}

/* Wait `nr` made from the gate with its end written as a clock event, when a wait of
 * `timeout_ns` may be made here (its result, as the kernel's); else NOT_TIMED. */
#define NOT_TIMED LONG_MIN
static long timed_wait(int64_t timeout_ns, long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  uwrx_wait w;
  if (!wait_begin(timeout_ns, &w)) return NOT_TIMED;
  long r = gate6(nr, a0, a1, a2, a3, a4, a5);
  wait_end(&w);
  return r;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
  static void *next;
  long r = timed_wait((int64_t)timeout * 1000000, SYS_epoll_wait, epfd, (long)events, maxevents, timeout, 0, 0);
  if (r != NOT_TIMED) return (int)set_errno(r);
  int (*f)(int, struct epoll_event *, int, int) = (int (*)(int, struct epoll_event *, int, int))next_symbol(&next, "epoll_wait");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(epfd, events, maxevents, timeout);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask) {
  static void *next;
  long r = timed_wait((int64_t)timeout * 1000000, SYS_epoll_pwait, epfd, (long)events, maxevents, timeout, (long)sigmask,
                      _NSIG / 8);
  if (r != NOT_TIMED) return (int)set_errno(r);
  int (*f)(int, struct epoll_event *, int, int, const sigset_t *) =
      (int (*)(int, struct epoll_event *, int, int, const sigset_t *))next_symbol(&next, "epoll_pwait");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(epfd, events, maxevents, timeout, sigmask);
}

/* A relative timeout as uwrx-init reads one (clocks.c read_timeout): `unit` ns per unit
 * of its second field, which must stay below `limit`; -1 when it is not one. */
static int64_t timeout_ns_of(int64_t sec, int64_t sub, int64_t unit, int64_t limit) {
  if (sec < 0 || sub < 0 || sub >= limit) return -1;
  return uwrx_time_ns_of(sec, sub * unit);
}

static int64_t timespec_ns(const struct timespec *ts) { return timeout_ns_of(ts->tv_sec, ts->tv_nsec, 1, 1000000000); }

/* timed_wait, but a zero timeout (a poll, sleep(0)) changes no clock either way: made
 * from the gate. */
static long poll_or_wait(int64_t timeout_ns, long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  if (timeout_ns == 0 && gate_mapped()) return gate6(nr, a0, a1, a2, a3, a4, a5);
  return timed_wait(timeout_ns, nr, a0, a1, a2, a3, a4, a5);
}

EXPORT int nanosleep(const struct timespec *req, struct timespec *rem) {
  static void *next;
  long r = req ? poll_or_wait(timespec_ns(req), SYS_nanosleep, (long)req, (long)rem, 0, 0, 0, 0) : NOT_TIMED;
  if (r != NOT_TIMED) return (int)set_errno(r);
  int (*f)(const struct timespec *, struct timespec *) = (int (*)(const struct timespec *, struct timespec *))next_symbol(&next, "nanosleep");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(req, rem);
}

/* sleep and usleep: libc's reach its nanosleep inside libc, past the recorder, so they
 * are made here through the recorder's, as libc makes them (sleep's whole seconds left
 * when a signal ends it, errno kept otherwise; usleep's result and errno are
 * nanosleep's). */
EXPORT unsigned int sleep(unsigned int seconds) {
  int saved = errno;
  struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
  if (nanosleep(&ts, &ts) < 0) return (unsigned int)ts.tv_sec;
  errno = saved;
  return 0;
}

EXPORT int usleep(useconds_t usec) {
  struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000 };
  return nanosleep(&ts, NULL);
}

/* Whether uwrx-init times a clock_nanosleep on `clock_id` (clocks.c, on_wait): the
 * clocks it fakes, but the CPU clocks. */
static int sleep_clock(clockid_t clock_id) {
  if (!fast() || clock_id < 0 || clock_id == CLOCK_PROCESS_CPUTIME_ID || clock_id == CLOCK_THREAD_CPUTIME_ID) return 0;
  uwrx_time_config c = lease_config(R.hdr);
  return uwrx_time_faked(&c, clock_id);
}

/* A sleep until an absolute deadline on a virtual clock: a wait of the time left to it
 * from the clock as it stands (dettime.c, uwrx_time_wait_absolute, as uwrx-init's), slept
 * from the gate until as far on the kernel's clock of the same id (a deadline of its own:
 * the caller's timespec stays untouched; uwrx-init rewrites a notified one in place).
 * A deadline already passed returns at once, as the kernel's sleep would. */
static long absolute_sleep(clockid_t clock_id, const struct timespec *req) {
  uwrx_time_config c;
  uwrx_clock k;
  uint64_t n;
  int64_t real, remaining;
  uwrx_wait w;
  int64_t until_ns = timespec_ns(req);
  if (until_ns < 0 || !sleep_clock(clock_id) || !wait_clock(&c, &k, &n, &real) ||
      !uwrx_time_wait_absolute(&c, &k, &w, real, clock_id, until_ns, &remaining))
    return NOT_TIMED;
  struct timespec now;
  if (!wait_started(&w, n)) return 0;
  long r = gate6(SYS_clock_gettime, clock_id, (long)&now, 0, 0, 0, 0);
  if (r == 0) {
    int64_t from = uwrx_time_ns_of(now.tv_sec, now.tv_nsec);
    int64_t until = remaining > INT64_MAX - from ? INT64_MAX : from + remaining;
    struct timespec deadline = { .tv_sec = until / 1000000000, .tv_nsec = until % 1000000000 };
    r = gate6(SYS_clock_nanosleep, clock_id, TIMER_ABSTIME, (long)&deadline, 0, 0, 0);
  }
  wait_end(&w);
  return r;
}

EXPORT int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem) {
  static void *next;
  long r = !req ? NOT_TIMED
           : flags & TIMER_ABSTIME
               ? absolute_sleep(clock_id, req)
               : sleep_clock(clock_id) ? timed_wait(timespec_ns(req), SYS_clock_nanosleep, clock_id, flags, (long)req, (long)rem, 0, 0)
                                       : NOT_TIMED;
  if (r != NOT_TIMED) return (int)-r; /* an error number, not errno */
  int (*f)(clockid_t, int, const struct timespec *, struct timespec *) =
      (int (*)(clockid_t, int, const struct timespec *, struct timespec *))next_symbol(&next, "clock_nanosleep");
  if (!f) return ENOSYS;
  return f(clock_id, flags, req, rem);
}

EXPORT int select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, struct timeval *timeout) {
  static void *next;
  int64_t ns = timeout ? timeout_ns_of(timeout->tv_sec, timeout->tv_usec, 1000, 1000000) : -1;
  long r = poll_or_wait(ns, SYS_select, nfds, (long)readfds, (long)writefds, (long)exceptfds, (long)timeout, 0);
  if (r != NOT_TIMED) return (int)set_errno(r);
  int (*f)(int, fd_set *, fd_set *, fd_set *, struct timeval *) =
      (int (*)(int, fd_set *, fd_set *, fd_set *, struct timeval *))next_symbol(&next, "select");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(nfds, readfds, writefds, exceptfds, timeout);
}

/* ppoll and pselect take a timespec, which the kernel overwrites with the time left:
 * libc's wrappers hand it a copy, and so does the recorder. */
EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const sigset_t *sigmask) {
  static void *next;
  if (timeout) {
    struct timespec left = *timeout;
    long r = poll_or_wait(timespec_ns(&left), SYS_ppoll, (long)fds, (long)nfds, (long)&left, (long)sigmask, _NSIG / 8, 0);
    if (r != NOT_TIMED) return (int)set_errno(r);
  }
  int (*f)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *) =
      (int (*)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))next_symbol(&next, "ppoll");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(fds, nfds, timeout, sigmask);
}

EXPORT int pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, const struct timespec *timeout,
                   const sigset_t *sigmask) {
  static void *next;
  if (timeout) {
    struct timespec left = *timeout;
    /* the kernel's sixth argument: the mask and its size */
    struct { const sigset_t *set; size_t size; } mask = { sigmask, _NSIG / 8 };
    long r = poll_or_wait(timespec_ns(&left), SYS_pselect6, nfds, (long)readfds, (long)writefds, (long)exceptfds,
                          (long)&left, (long)&mask);
    if (r != NOT_TIMED) return (int)set_errno(r);
  }
  int (*f)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *) =
      (int (*)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *))next_symbol(&next, "pselect");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(nfds, readfds, writefds, exceptfds, timeout, sigmask);
}

EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
  static void *next;
  long r = timed_wait((int64_t)timeout * 1000000, SYS_poll, (long)fds, (long)nfds, timeout, 0, 0, 0);
  if (r != NOT_TIMED) return (int)set_errno(r);
  int (*f)(struct pollfd *, nfds_t, int) = (int (*)(struct pollfd *, nfds_t, int))next_symbol(&next, "poll");
  if (!f) return (int)set_errno(-ENOSYS);
  return f(fds, nfds, timeout);
}

/* ---- getrandom ----
 * The main thread's calls are answered from the getrandom stream uwrx-init leased to
 * this buffer's header (src/native/init/repro.c, "random lease"): the bytes the
 * notification path would give. The same call is made first from the gate (the filter
 * lets getrandom through there) with GRND_INSECURE, which never blocks: the kernel
 * checks the buffer, so a bad one fails with EFAULT as before, and only a fully written
 * buffer is then overwritten from the stream. Anything else is notified. */
#define GETRANDOM_MAX ((32u << 20) - 1) /* as uwrx-init: one call gives at most this */

static int flags_valid(unsigned flags) {
  if (flags & ~(unsigned)(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return 0;
  return (flags & (GRND_RANDOM | GRND_INSECURE)) != (GRND_RANDOM | GRND_INSECURE);
}

EXPORT ssize_t getrandom(void *buf, size_t len, unsigned int flags) { return do_getrandom(buf, len, flags); }

static ssize_t do_getrandom(void *buf, size_t len, unsigned int flags) {
  if (len > GETRANDOM_MAX) len = GETRANDOM_MAX;
  if (buf && len > 0 && flags_valid(flags) && fast() && __atomic_load_n(&R.hdr->rng_open, __ATOMIC_ACQUIRE) &&
      gate6(SYS_gettid, 0, 0, 0, 0, 0, 0) == R.owner) {
    long r = gate6(SYS_getrandom, (long)buf, (long)len, GRND_INSECURE, 0, 0, 0);
    if (r == (long)len) {
      uwrx_stream_read(&R.hdr->rng_main, buf, len);
      return (ssize_t)len;
    }
  }
  return (ssize_t)set_errno(slow6(SYS_getrandom, (long)buf, (long)len, flags, 0, 0, 0));
}

EXPORT int getentropy(void *buf, size_t len) {
  if (len > 256) {
    errno = EIO;
    return -1;
  }
  /* getentropy fills the whole buffer or fails, as glibc's does */
  size_t done = 0;
  while (done < len) {
    ssize_t r = getrandom((char *)buf + done, len - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

/* ---- prctl ----
 * Passed on as it is; a thread that makes rdtsc fault (PR_SET_TSC) stops the records'
 * counter-based times (stamp.c) first. */
static long do_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
  if (option == PR_SET_TSC) rec_stamp_no_counter();
  return set_errno(slow6(SYS_prctl, option, (long)a2, (long)a3, (long)a4, (long)a5, 0));
}

EXPORT int prctl(int option, ...) {
  va_list ap;
  va_start(ap, option);
  unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long), a4 = va_arg(ap, unsigned long),
                a5 = va_arg(ap, unsigned long);
  va_end(ap);
  return (int)do_prctl(option, a2, a3, a4, a5);
}

/* ---- syscall(3) ----
 * A program can make the calls above through libc's syscall() and so pass by every
 * function here: libuv does for statx (every fs.stat and module lookup of Node) and
 * getrandom, older programs for getrandom and gettid. The numbers the recorder answers
 * go to the same functions as the libc wrappers (the kernel's argument order and
 * structures are the wrappers' on x86_64, and syscall() reports errors as they do);
 * every other number is made here as libc's syscall() makes it, in assembly without a
 * frame of ours, so that a fork, vfork or clone made through it returns in the child
 * as natively. */
#define REC_SYSCALL_ANSWERED(X)                                                                               \
  X(SYS_statx) X(SYS_newfstatat) X(SYS_stat) X(SYS_lstat) X(SYS_fstat) X(SYS_openat) X(SYS_open)              \
  X(SYS_access) X(SYS_faccessat) X(SYS_faccessat2) X(SYS_readlink) X(SYS_readlinkat) X(SYS_getrandom)        \
  X(SYS_clock_gettime) X(SYS_prctl)
#define REC_SYSCALL_CMP(nr) "  cmpq $" REC_STR(nr) ", %rdi\n  je rec_syscall_answered\n"
__asm__(".text\n"
        ".globl syscall\n"
        ".type syscall, @function\n"
        "syscall:\n" REC_SYSCALL_ANSWERED(REC_SYSCALL_CMP)
        "  movq %rdi, %rax\n"
        "  movq %rsi, %rdi\n"
        "  movq %rdx, %rsi\n"
        "  movq %rcx, %rdx\n"
        "  movq %r8, %r10\n"
        "  movq %r9, %r8\n"
        "  movq 8(%rsp), %r9\n"
        "  syscall\n"
        "  cmpq $-4095, %rax\n"
        "  jae 1f\n"
        "  ret\n"
        "1:\n"
        "  movq %rax, %rdi\n"
        "  jmp rec_raw_failed\n"
        ".size syscall, .-syscall\n");

/* Reached by a jump from syscall() with its arguments where its caller put them. */
__attribute__((visibility("hidden"), used)) long rec_syscall_answered(long nr, long a1, long a2, long a3, long a4,
                                                                       long a5, long a6) {
  switch (nr) {
  case SYS_statx: return do_statx((int)a1, (const char *)a2, (int)a3, (unsigned)a4, (struct statx *)a5);
  case SYS_newfstatat: return do_fstatat((int)a1, (const char *)a2, (struct stat *)a3, (int)a4);
  case SYS_stat: return do_fstatat(AT_FDCWD, (const char *)a1, (struct stat *)a2, 0);
  case SYS_lstat: return do_fstatat(AT_FDCWD, (const char *)a1, (struct stat *)a2, AT_SYMLINK_NOFOLLOW);
  case SYS_fstat: return do_fstat((int)a1, (struct stat *)a2);
  case SYS_openat: return do_openat((int)a1, (const char *)a2, (int)a3, (mode_t)a4);
  case SYS_open: return do_openat(AT_FDCWD, (const char *)a1, (int)a2, (mode_t)a3);
  case SYS_access: return do_faccessat(AT_FDCWD, (const char *)a1, (int)a2, 0);
  case SYS_faccessat: return do_faccessat((int)a1, (const char *)a2, (int)a3, 0);
  case SYS_faccessat2: return do_faccessat((int)a1, (const char *)a2, (int)a3, (int)a4);
  case SYS_readlink: return do_readlinkat(AT_FDCWD, (const char *)a1, (char *)a2, (size_t)a3);
  case SYS_readlinkat: return do_readlinkat((int)a1, (const char *)a2, (char *)a3, (size_t)a4);
  case SYS_getrandom: return do_getrandom((void *)a1, (size_t)a2, (unsigned)a3);
  case SYS_clock_gettime: return do_clock_gettime((clockid_t)a1, (struct timespec *)a2);
  case SYS_prctl: return do_prctl((int)a1, (unsigned long)a2, (unsigned long)a3, (unsigned long)a4, (unsigned long)a5);
  default: return set_errno(slow6(nr, a1, a2, a3, a4, a5, a6)); /* not reached: the list is the assembly's */
  }
}
