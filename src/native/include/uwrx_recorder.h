/* The in-process recorder (src/native/recorder/): what it shares with uwrx-init, the
 * seccomp filter and the collector.
 *
 * The recorder is a shared library the combined ld.so preloads into every dynamically
 * linked process of the sandbox (where the combined copy of ld.so reads
 * /etc/ld.so.preload, the shim's hook gives it UWRX_PRELOAD_LIST with what the sandbox's
 * /etc/ld.so.preload lists appended, so nothing shows in the environment or in /etc;
 * shim/ldso_hook.c). It interposes libc's read-only file calls (and answers execs of paths that do
 * not exist and waits that find nothing to reap), makes the real system call from
 * one gate instruction the seccomp filter lets through by address, and appends an
 * `access` trace event (uwrx_events.h) to the process's recorder buffer. Every call it
 * does not handle, and every call from a process it cannot vouch for (a vfork child, a
 * process whose buffer is full), takes the seccomp notification path, which records the
 * same events: a miss costs time, never a record.
 */
#ifndef UWRX_RECORDER_H
#define UWRX_RECORDER_H

/* The gate page: mapped by the shim or the recorder at one of two fixed addresses
 * (MAP_FIXED_NOREPLACE) in every process image, holding `syscall; ret`, and followed by
 * the hook's state page and the recorder buffer (the gate block). The filter allows the
 * calls listed in filter.c when seccomp_data.instruction_pointer is the address after
 * the syscall instruction at either. Fixed because the filter is installed once for the
 * whole tree.
 *
 * Near: the block ends 1 GiB below the top of the address space, where ld.so, the
 * libraries and the stack are without address-space randomization: it shares their
 * page-table pages (one page-table page more, where the far one needs three, ~15 us
 * each in a new process on a paravirtualized machine). Taken when ld.so itself lies
 * above the block (uwrx_gate_for), so the block is below every library ld.so maps
 * next to itself and the stack, which grows down towards ld.so, never reaches it: with
 * randomization (--aslr) or a big stack limit (the kernel then puts ld.so far below)
 * it is almost always the far one. Far: a 512 GiB region of its own. */
#define UWRX_GATE_ADDR 0x757700000000UL
#define UWRX_GATE_IP (UWRX_GATE_ADDR + 2)
#define UWRX_GATE_NEAR_ADDR 0x7fffc0000000UL
#define UWRX_GATE_NEAR_IP (UWRX_GATE_NEAR_ADDR + 2)

/* uwrx's preload list, which the shim's hook hands ld.so where it reads
 * /etc/ld.so.preload (or which the combined ld.so names in place of that path, same
 * length, where its access check could not be hooked), and the library it names. Both
 * live in the sandbox's private /dev. */
#define UWRX_PRELOAD_LIST "/dev/.uwrx-preload"
#define UWRX_RECORDER_PATH "/dev/.uwrx-rec.so"
/* What the names of uwrx's own files in the sandbox start with: not the program's
 * accesses (the collector drops them, src/record/accesses.ts UWRX_OWN). */
#define UWRX_OWN_PREFIX "/dev/.uwrx-"

/* Control call operation (uwrx_control.h): (address of the recorder's clock read count
 * in this process image) -> an fd (O_CLOEXEC) of this process's recorder buffer: the
 * first UWRX_REC_FILE_SIZE bytes of its trace buffer file <traces>/<logical pid>
 * (uwrx_events.h UWRX_TRACE_DATA_OFFSET), set up on first request; -ENOSYS when the run
 * does not record in process. The recorder maps it and closes the fd. */
#define UWRX_CTL_RECORDER 3
/* Control call operation: (pid of a child this process just reaped in process, whose
 * clock uwrx-init did not join at its exit: reap_joined below) -> 0, once uwrx-init
 * joined it, as the thread's next call after a notified wait4 would have. */
#define UWRX_CTL_REAPED 4
/* Control call operation: () -> the calling thread's id in the trace (its logical tid,
 * uwrx-init's ordinal of the thread in its process: the tid of the records the
 * notification path writes for it). The recorder asks once per thread other than the
 * main one before it records that thread's output. */
#define UWRX_CTL_THREAD 5
/* Control call operation: () -> 0, once uwrx-init folded the clock events of this
 * process's header (clock_events below), which are all in use. */
#define UWRX_CTL_CLOCK_FOLD 6

/* The recorder buffer: a header, then records as in a trace buffer file, written
 * lock-free: a writer reserves bytes with an atomic add on `pos`, writes the record and
 * stores its size last (release). The collector reads records in order from
 * UWRX_REC_DATA_OFFSET and stops at a zero size (not yet committed). The records start
 * in the header page's unused tail: a short process's few records (ld.so's opens) then
 * touch one shared page, not two (a page fault saved in every such process). */
#define UWRX_REC_MAGIC 0x3163657278727775ULL /* "uwrxrec1" */
#define UWRX_REC_DATA_OFFSET 3776
#define UWRX_REC_FILE_SIZE (64UL << 20)

/* The overlays' mount ids as a bitmap from mount_base: a command tree whose root is
 * rebuilt entry by entry (a directory with mounts below it) has an overlay per entry,
 * hundreds or thousands, with ids close together (one uwrx-init mounts them in a row).
 * mount_base is 0 while the bitmap reaches the highest id: the kernel hands out the
 * smallest free id, so an overlay attached later (a lazy tree's) may take one below. */
#define UWRX_REC_MOUNT_BITS 16384
/* The threads between a timed wait and their next call, as a set of bits (clock_tid_bits
 * below): thread `tid` is bit tid % UWRX_REC_CLOCK_TID_BITS. A thread whose bit another
 * one shares has its reads notified too, which is always right, only slower; a list of
 * 16 ids did that for every thread of a process with more waiting (Chromium's, whose
 * threads idle in timed waits: 198,000 notified clock reads in one page load). */
#define UWRX_REC_CLOCK_TID_BITS 512 /* uwrx_rec_tid_waits */
/* Clock events a header holds until uwrx-init folds them (clock_events below). */
#define UWRX_REC_CLOCK_EVENTS 16
/* Mounts outside the overlays a header names (kernel_mounts below). */
#define UWRX_REC_KERNEL_MOUNTS 24
/* Directories made before the command started a header names (plan_dirs below). */
#define UWRX_REC_PLAN_DIRS 32
/* Children joined at their exit a header remembers (reap_joined below). */
#define UWRX_REC_REAP_JOINED 8

#ifndef __ASSEMBLER__
#include <stdint.h>
#include "../common/prng.h"
#include "../common/dettime.h"

/* Whether thread `tid`'s bit is set in a set of UWRX_REC_CLOCK_TID_BITS (clock_tid_bits). */
static inline int uwrx_rec_tid_waits(const uint64_t *bits, int32_t tid) {
  uint32_t b = (uint32_t)tid % UWRX_REC_CLOCK_TID_BITS;
  return (__atomic_load_n(&bits[b / 64], __ATOMIC_RELAXED) >> (b % 64)) & 1;
}
struct uwrx_rec_header {
  uint64_t magic;
  uint32_t pid;      /* logical pid */
  uint32_t library_calls; /* calls that reached the recorder library in this image
                           * (atomic): whether loading it paid (init/redirects.c) */
  uint64_t pos;      /* next free byte (atomic); starts at UWRX_REC_DATA_OFFSET */
  uint64_t size;     /* file size: records end before it */
  uint64_t dropped;  /* records that did not fit (atomic) */
  uint64_t fast;     /* calls answered in process (atomic) */
  uint64_t slow;     /* interposed calls sent down the notification path (atomic) */
  /* Successful stats answered in process (uwrx_stat_rules.h): set by uwrx-init when it
   * creates the buffer, read-only for the recorder. */
  uint32_t squash;           /* 1: the rules below hold; 0: every successful stat is notified */
  uint32_t reserved_rules;
  int64_t changed_since_ns;  /* a ctime from here on may be this attempt's change */
  int64_t window_lo_ns;      /* the parents' window (lo, hi]; 0, 0 without parents */
  int64_t window_hi_ns;
  uint64_t mount_base;       /* bit i of mount_bits: mount id mount_base + i is an overlay's */
  uint8_t mount_bits[UWRX_REC_MOUNT_BITS / 8]; /* (statx STATX_MNT_ID) */

  /* Clock reads answered in process (src/native/init/clocks.c, "clock lease"). The
   * recorder counts its reads in its own memory (the count a forked child inherits is
   * the parent's at the fork); uwrx-init folds the count into the process's clocks when
   * it next handles the process and publishes the result here under a sequence lock.
   * A read is answered in process only while clock_open is 1, the calling thread has
   * no timed wait in progress (its next call must be notified: it ends the wait) and no
   * armed timer's real deadline passed (clock_timer_real_ns). */
  uint32_t clock_seq;         /* odd while uwrx-init writes the fields up to clock_tid_bits */
  uint32_t clock_open;        /* 1: reads may be answered in process */
  int32_t clock_mode;         /* the run's uwrx_time_config */
  int32_t clock_waiting;      /* threads with a timed wait in progress */
  int64_t clock_t0_ns;
  int64_t clock_step_ns;
  int64_t clock_wall_offset_ns;
  int64_t clock_now_ns;       /* the process's uwrx_clock after clock_reads_base reads */
  int64_t clock_cpu_ns;
  int64_t clock_children_cpu_ns;
  uint64_t clock_reads_base;
  uint64_t clock_tid_bits[UWRX_REC_CLOCK_TID_BITS / 64]; /* the waiting threads' kernel tids */
  uint32_t clock_used;        /* set by the recorder after a read, cleared by uwrx-init */
  uint32_t clock_reserved;
  /* Timed waits ended in process (recorder.c, "timed waits"): a wait's end moves the
   * clock, so it takes a place in the count of reads (dettime.h uwrx_clock_event) and
   * is written here, where every read after it and uwrx-init's fold apply it in its
   * place. A thread writes one holding clock_ev_seq odd (its lock, with its signals
   * blocked): it takes its place in the count and writes the entry meanwhile, so whoever
   * sees the count past it and clock_ev_seq even sees the entry. uwrx-init folds the
   * entries below clock_ev_next into the clock it publishes and says how many in
   * clock_ev_folded (under clock_seq); entry i lives at i % UWRX_REC_CLOCK_EVENTS, so the
   * recorder writes one only while fewer than that many are not folded. */
  uint32_t clock_ev_seq;      /* the recorder's: odd while an event is written */
  uint32_t clock_ev_next;     /* the recorder's: events written */
  uint32_t clock_ev_folded;   /* uwrx-init's: events the published clock holds */
  uint32_t clock_waits;       /* uwrx-init's: 1, timed waits may end in process */
  uint64_t clock_count_at_wait; /* the recorder's: its read count when it last began a timed
                                 * wait, which uwrx-init folds up to for a process killed
                                 * meanwhile, as it would have at a notified wait */
  /* uwrx-init's, under clock_seq: the earliest real deadline (CLOCK_BOOTTIME) of the
   * process's armed timers (an itimer, alarm, a timerfd), 0 when none is armed. A timer
   * fires at the process's first notified call past its real deadline (init/clocks.c,
   * fire_timers), where the clock jumps to the timer's virtual deadline; so reads and
   * recorded calls are answered in process only before it (rec_clock_open), and timed
   * waits stay notified while a timer is armed. */
  int64_t clock_timer_real_ns;
  uwrx_clock_event clock_events[UWRX_REC_CLOCK_EVENTS];

  /* getrandom answered in process (src/native/init/repro.c, "random lease"): the main
   * thread's getrandom stream lives here once rng_open is 1, for the process's whole
   * life (every image after an exec continues it). Only the main thread reads it, in
   * the recorder or, while it waits in a notified getrandom, in uwrx-init: never both at
   * once, so it needs no lock. Other threads' streams stay in uwrx-init. */
  uint32_t rng_open;
  uint32_t rng_reserved;
  uwrx_stream rng_main;

  /* libc's entries redirected to the recorder (recorder.c, redirect.c) only where that
   * pays: patching libc costs a short process more than the notifications it saves when
   * the program makes few of those calls (/bin/true makes none). uwrx-init sets
   * redirect_skip before each exec'd image starts, from what earlier images of the same
   * program did (init/redirects.c); the recorder counts the calls its redirected entries
   * answered. Neither changes what is recorded: a call not redirected is notified. */
  uint32_t redirect_skip;  /* 1: leave libc alone in this image */
  uint32_t redirect_calls; /* calls answered through redirected entries (atomic) */

  /* Mounts whose files uwrx-init shows as the kernel does (uwrx_stat_times.h): pipes,
   * sockets, and the sandbox's mounts apart from every overlay (/proc, /dev ...). A stat
   * whose result lies on one of them is answered in process, unchanged. Set by
   * uwrx-init with the rules above (only while squash is 1), read-only here. */
  uint32_t kernel_mounts_n;
  uint32_t kernel_mounts_reserved;
  uint64_t kernel_mounts[UWRX_REC_KERNEL_MOUNTS];

  /* Blocking waits answered in process (recorder.c, "waits"; src/native/init/clocks.c,
   * on_child_exit). uwrx-init joins a child's clock into its parent's when the parent
   * reaps it. With reap_watch set, a single-threaded process about to wait for a child
   * sets reap_waiting (reap_pid: the child, 0 any) instead of making a notified wait4;
   * uwrx-init, at the exit_group of a child such a wait can reap, joins the child then
   * and puts its pid in reap_joined (as it does for a child it joined at its exit for a
   * notified wait); the recorder takes a reaped child's pid out. Every child is
   * counted in reap_unjoined at its exit_group until it is joined: the recorder sets
   * reap_waiting first and then reads the count, uwrx-init counts first and then reads
   * the flag, so one of the two sees the other; with a child counted (it ended while
   * its parent did not wait so) the wait is notified as before. A child the wait reaps that was not joined (killed by
   * a signal: no exit_group) is named to uwrx-init with UWRX_CTL_REAPED right after. */
  uint32_t reap_watch;       /* set by uwrx-init: it joins through reap_waiting */
  uint32_t reap_waiting;     /* atomic, the recorder's */
  int32_t reap_pid;
  uint32_t reap_unjoined;    /* atomic, uwrx-init's */
  uint32_t reap_joined_next; /* uwrx-init's: the next entry of reap_joined it fills */
  int32_t reap_joined[UWRX_REC_REAP_JOINED]; /* atomic: pids joined at their exit, not yet reaped */

  /* Directories of the upper layers that uwrx made before the command started, with
   * the times of the host's directory (each overlay's root, the parents of the hidden
   * record, the directories an unprivileged command is likely to write), as the
   * command's stats see them (uwrx_stat_plan_dir): while their modification time is as
   * made, they show it, as the host's directory does. Set by uwrx-init with the rules
   * above (only while squash is 1), read-only here. */
  uint32_t plan_dirs_n;
  uint32_t plan_dirs_reserved;
  struct uwrx_rec_plan_dir {
    uint64_t mnt_id;
    uint64_t ino;
    int64_t mtime_ns;
  } plan_dirs[UWRX_REC_PLAN_DIRS];

  /* An exec prepared at its execve notification (UWRX_EXEC_DIR below): the new image's
   * shim takes what its control call would have answered from here. exec_seq is written
   * last (release); the shim takes the exec when exec_pid is its pid, exec_taken differs
   * from exec_seq and its clock read count is at exec_count_addr, then stores exec_taken
   * (release). */
  uint32_t exec_seq;        /* uwrx-init's: nonzero and new for each prepared exec; 0: none */
  uint32_t exec_taken;      /* the shim's: the exec_seq it took */
  int32_t exec_pid;         /* the process, as its getpid says */
  uint32_t exec_flags;      /* recorder_flags of the new image (UWRX_REC_TMPFS ...) */
  uint64_t exec_count_addr; /* where the new image's clock read count is leased (the near
                               gate's state page: uwrx_exec_count_addr) */
  uint8_t exec_random[16];  /* the new image's AT_RANDOM bytes */
};
_Static_assert(sizeof(struct uwrx_rec_header) <= UWRX_REC_DATA_OFFSET, "the header ends before the records");

/* Prepared execs. The control call of a new image (UWRX_CTL_EXEC_START) costs a round
 * trip to uwrx-init in every dynamically linked exec. Where its answer is known at the
 * execve notification already (the exec runs whatever it is, no partial rebuild waits
 * on it), uwrx-init prepares it there instead: the process's recorder buffer set up, the
 * new image's AT_RANDOM bytes and flags in its header, and the buffer's file linked into
 * this directory under the process's pid (a bind of <traces>/exec in the sandbox's
 * private /dev). The shim opens it from the gate (the filter lets exactly
 * open(path, UWRX_EXEC_OPEN_FLAGS) through there), maps it and starts without a
 * control call; uwrx-init learns that it did at the process's next notification
 * (exec_taken), which also proves the exec. Anything missing, and the shim asks as
 * before. */
#define UWRX_EXEC_DIR "/dev/.uwrx-exec"
#define UWRX_EXEC_OPEN_FLAGS 02000002 /* O_RDWR | O_CLOEXEC */

/* Where the recorder buffer is mapped when that range is free: right after the gate and
 * state pages (UWRX_REC_MAP_OFFSET from the gate), in the page tables those already
 * need, and not just below ld.so, where the kernel would put it first and push the
 * program's libraries 64 MiB away from ld.so into page tables of their own (four more
 * page-table pages in every process). */
#define UWRX_REC_MAP_OFFSET (2 * 4096)
#define UWRX_GATE_BLOCK_SIZE (UWRX_REC_MAP_OFFSET + UWRX_REC_FILE_SIZE)

/* The gate of a process image whose ld.so is mapped at `ldso`: the near one when ld.so
 * lies above the whole near block, else the far one. */
static inline unsigned long uwrx_gate_for(unsigned long ldso) {
  return ldso >= UWRX_GATE_NEAR_ADDR + UWRX_GATE_BLOCK_SIZE ? UWRX_GATE_NEAR_ADDR : UWRX_GATE_ADDR;
}

/* Maps the recorder buffer open as `fd` (closing the descriptor) after the gate at
 * `gate`, with the system calls of the caller (`sys`: the shim has no libc); NULL when it
 * cannot be mapped or is not one. No read-ahead: a fault on the sparse file would
 * otherwise fill (and zero) dozens of page cache pages for every page written, measured
 * at ~4 ms per process (`advise`; a tmpfs file's faults read nothing ahead, so there it
 * may be 0). */
static inline struct uwrx_rec_header *uwrx_rec_map(long fd, unsigned long gate,
                                                   long (*sys)(long, long, long, long, long, long, long), int advise) {
  enum { mmap_ = 9, close_ = 3, munmap_ = 11, madvise_ = 28 }; /* x86_64 numbers */
  enum { shared_ = 1, fixed_noreplace_ = 0x100000 };
  long p = sys(mmap_, (long)(gate + UWRX_REC_MAP_OFFSET), (long)UWRX_REC_FILE_SIZE, 3 /* PROT_READ | PROT_WRITE */,
               shared_ | fixed_noreplace_, fd, 0);
  /* taken (a forked child's parent buffer, a program's own mapping): anywhere */
  if ((unsigned long)p >= -4096UL) p = sys(mmap_, 0, (long)UWRX_REC_FILE_SIZE, 3, shared_, fd, 0);
  sys(close_, fd, 0, 0, 0, 0, 0);
  if ((unsigned long)p >= -4096UL || p == 0) return 0;
  /* (`advise` 0: the file has no read-ahead to turn off, UWRX_REC_TMPFS) */
  if (advise) sys(madvise_, p, (long)UWRX_REC_FILE_SIZE, 1 /* MADV_RANDOM */, 0, 0, 0);
  struct uwrx_rec_header *h = (struct uwrx_rec_header *)p;
  if (h->magic == UWRX_REC_MAGIC) return h;
  sys(munmap_, p, (long)UWRX_REC_FILE_SIZE, 0, 0, 0, 0);
  return 0;
}

struct uwrx_ldso_state {
  uint64_t magic;               /* UWRX_LDSO_STATE_MAGIC once the shim has mapped the page */
  int32_t owner;                /* the process whose buffer `hdr` is (getpid; 0: none) */
  int32_t busy;                 /* set-up under way, or failed (atomic) */
  struct uwrx_rec_header *hdr;  /* the recorder buffer, mapped by the hook */
  int32_t started;              /* 1 once the recorder library is set up (it sets it) */
  int32_t fsgsbase;             /* 1: rdfsbase works here (AT_HWCAP2 has HWCAP2_FSGSBASE) */
  int64_t startup_ns;           /* the time of the records made before that */
  uint64_t clock_reads;         /* the recorder's clock reads in this image ("clock lease"):
                                   private memory, so a forked child inherits the count */
  int32_t recorder_fd;          /* the buffer put in by UWRX_CTL_EXEC_START, or -1, or
                                   UWRX_RECORDER_FD_RESULT */
  int32_t own_fd;               /* 1 + the descriptor the hook's last open of one of uwrx's
                                   own files returned, until ld.so's fstat of it; else 0 */
  /* Written by UWRX_CTL_EXEC_START's handler with recorder_fd (the 16 bytes from
   * recorder_fd on, own_fd still 0 then), so that the shim asks the kernel neither: */
  int32_t recorder_pid;         /* the process's pid, as its getpid would say; 0: not told */
  uint32_t recorder_flags;      /* UWRX_REC_TMPFS, UWRX_REC_NO_LIBRARY */
  int32_t listing;              /* 1: ld.so only lists the libraries (ldd, `ld.so --list`):
                                   the hook hides the preload list, so the listing names
                                   no library of uwrx's */
  int32_t list_fd;              /* 1 + the descriptor of the preload list the hook gave
                                   ld.so, until ld.so's next mmap; else 0 */
  uint32_t list_len;            /* bytes ld.so holds as its "mapping" of the list at
                                   UWRX_LDSO_LIST_OFFSET, until its munmap; else 0 */
};
/* ld.so reads the preload list by mapping it (private, read-write) and unmapping it once
 * parsed: the hook reads it into the rest of the state page instead (no mapping, no page
 * fault, no munmap and its TLB flush in every process) when it fits. */
#define UWRX_LDSO_LIST_OFFSET 1024
#define UWRX_LDSO_LIST_CAP (4096 - UWRX_LDSO_LIST_OFFSET)
/* Where the shim writes the path of its prepared exec's buffer (UWRX_EXEC_DIR/<pid>). */
#define UWRX_LDSO_EXEC_PATH_OFFSET 512
_Static_assert(sizeof(struct uwrx_ldso_state) <= UWRX_LDSO_EXEC_PATH_OFFSET, "the path follows the state");
/* The clock read count of a new image whose gate is the near one, which it is without
 * address-space randomization: a prepared exec's lease is opened there before the image
 * runs (an image at the other gate asks with its control call instead). */
#define UWRX_EXEC_COUNT_ADDR (UWRX_GATE_NEAR_ADDR + UWRX_LDSO_STATE_OFFSET + offsetof(struct uwrx_ldso_state, clock_reads))
/* recorder_flags: the buffer's file is on tmpfs (no read-ahead: no madvise) */
#define UWRX_REC_TMPFS 1u
/* recorder_flags: ld.so loads no recorder library in this image (the hook hands it the
 * sandbox's /etc/ld.so.preload alone, as for a listing): earlier images of the program
 * made almost no call it answers, and loading it costs a short process more than the
 * notifications it saves */
#define UWRX_REC_NO_LIBRARY 2u
#endif

/* The dynamic linker's own calls. ld.so opens and stats the preload list, the recorder
 * and every library before the recorder can run. In the combined ld.so of a run with
 * the recorder, the combiner (src/reproducibility/ldso-rewrite.ts) replaces each of
 * ld.so's `mov $SYS_openat|SYS_newfstatat, %eax; syscall` with a jump to a stub in the
 * shim's segment that calls the shim's hook (shim/ldso_hook.c) with the system call's
 * registers and keeps every register the syscall instruction keeps. The hook makes
 * read-only opens and stats from the gate and records them into the process's recorder
 * buffer, which the exec's own control call (UWRX_CTL_EXEC_START, given this state page)
 * put in and the shim mapped before ld.so ran, or else the hook asks for on its first
 * call (UWRX_CTL_RECORDER naming the state page's clock read count). The recorder
 * library then takes over that mapping and that count, and a forked child's recorder
 * hands the hook its new buffer. Anything else, and every call when the buffer cannot
 * be had, is made as it was (notified). The hook's state is on the page after the gate page, mapped
 * by the shim at exec; without that page the shim puts ld.so's original bytes back. */
#define UWRX_LDSO_STATE_OFFSET 4096
/* The shim tells the image that it mapped the state page, and where, in the auxiliary
 * vector, where getauxval reads it without a system call: the AT_SYSINFO_EHDR entry it
 * takes out (see shim.c) becomes {AT_IGNORE, gate + UWRX_LDSO_STATE_OFFSET}, a type every
 * reader skips. Without that entry the recorder asks mincore at both gates. */
#define UWRX_AUXV_STATE_TYPE 1 /* AT_IGNORE */
/* recorder_fd: the buffer's descriptor is the result of UWRX_CTL_EXEC_START itself (it
 * went in with the answer, and the exec runs) */
#define UWRX_RECORDER_FD_RESULT (-2)
#define UWRX_LDSO_STATE_MAGIC 0x3173646c78727775ULL /* "uwrxlds1" */

/* Changes of directory paths (renames and removals of directories and symlinks), counted
 * by uwrx-init for the recorder's cache of the paths of directory fds (recorder.c, "paths
 * of directory fds"): `begun` counts such calls when uwrx-init lets them run, `settled`
 * when their outcome showed (the process's next notified call or its end). While the two
 * differ a path may be changing and nothing is cached; an entry made while both were g is
 * good while `begun` is still g. One page, created by uwrx-init with the first recorder
 * buffer (only when it follows the file calls), mapped read-only by recorders that need
 * it. No file: no cache. */
#define UWRX_DIRS_PATH "/dev/.uwrx-dirs"
#define UWRX_DIRS_MAGIC 0x3173726964787775ULL /* "uwxdirs1" */
#ifndef __ASSEMBLER__
struct uwrx_dirs {
  uint64_t magic;
  uint64_t begun;   /* atomic */
  uint64_t settled; /* atomic */
};
#endif

/* `op` of an access event (src/protocol/events.ts ACCESS_OPS). */
#define UWRX_ACCESS_READ 1     /* open for reading (O_RDONLY, no O_CREAT/O_TRUNC) */
#define UWRX_ACCESS_STAT 2     /* the stat family */
#define UWRX_ACCESS_ACCESS 3   /* access, faccessat */
#define UWRX_ACCESS_READLINK 4 /* readlink, readlinkat */
#define UWRX_ACCESS_READDIR 5  /* open of a directory (opendir) */

#endif
