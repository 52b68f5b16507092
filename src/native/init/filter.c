/* The seccomp filter of the command tree (DESIGN.md 3.2): which syscalls uwrx sees. */
#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_control.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/* Notified for every call. */
static const int notified[] = {
  /* process */
  SYS_clone, SYS_clone3, SYS_fork, SYS_vfork, SYS_execve, SYS_execveat, SYS_exit_group,
  /* files: opens, the stat family, access */
  SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_stat, SYS_lstat, SYS_fstat, SYS_newfstatat,
  SYS_statx, SYS_access, SYS_faccessat, SYS_faccessat2,
  /* files: mutations */
  SYS_unlink, SYS_unlinkat, SYS_rename, SYS_renameat, SYS_renameat2, SYS_mkdir, SYS_mkdirat,
  SYS_rmdir, SYS_link, SYS_linkat, SYS_symlink, SYS_symlinkat, SYS_chmod, SYS_fchmod,
  SYS_fchmodat, 452 /* fchmodat2 */, SYS_chown, SYS_fchown, SYS_lchown, SYS_fchownat,
  SYS_truncate, SYS_ftruncate, SYS_utime, SYS_utimes, SYS_utimensat, SYS_futimesat, SYS_mknod,
  SYS_mknodat,
  /* network, randomness, time */
  SYS_connect, SYS_getrandom, SYS_clock_gettime, SYS_gettimeofday, SYS_time,
  /* the ld.so shim's control call (answered by emulation, never CONTINUE) */
  UWRX_SYS_CONTROL,
};

/* Timed waits, notified only when they carry a timeout (clocks.c): the argument that
 * holds it and how. Uncontended futexes and waits without a timeout stay unnotified. */
enum timeout_kind {
  TIMEOUT_ALWAYS,  /* the call always waits with a timeout (sleeps) */
  TIMEOUT_MS,      /* an int in ms: notified when > 0 */
  TIMEOUT_POINTER, /* a pointer: notified when not NULL */
  TIMEOUT_FUTEX,   /* FUTEX_WAIT / FUTEX_WAIT_BITSET with a non-NULL timeout */
};
static const struct { int nr; enum timeout_kind kind; int arg; } timed_waits[] = {
  { SYS_nanosleep, TIMEOUT_ALWAYS, 0 },   { SYS_clock_nanosleep, TIMEOUT_ALWAYS, 0 },
  { SYS_poll, TIMEOUT_MS, 2 },            { SYS_epoll_wait, TIMEOUT_MS, 3 },
  { SYS_epoll_pwait, TIMEOUT_MS, 3 },     { SYS_ppoll, TIMEOUT_POINTER, 2 },
  { SYS_select, TIMEOUT_POINTER, 4 },     { SYS_pselect6, TIMEOUT_POINTER, 4 },
  { 441 /* epoll_pwait2 */, TIMEOUT_POINTER, 3 }, { SYS_rt_sigtimedwait, TIMEOUT_POINTER, 2 },
  { SYS_futex, TIMEOUT_FUTEX, 3 },
};
/* Reaping a child moves the parent's clock past the child's end; a timer's expiry moves
 * the clock too; times and getrusage read the virtual CPU time. Always notified. */
static const int clock_events[] = { SYS_wait4, SYS_waitid, SYS_alarm, SYS_setitimer, SYS_timerfd_settime,
                                     SYS_times, SYS_getrusage };

/* Notified only when the fd (first argument) is 1 or 2. */
static const int output[] = { SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev, SYS_pwritev2 };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_INSNS 512

enum label { L_ALLOW, L_NOTIFY, L_ENOSYS, L_OUTPUT, L_COUNT };

struct program {
  struct sock_filter insns[MAX_INSNS];
  unsigned len;
  /* jumps to labels, fixed up once the labels are placed */
  struct { unsigned at; enum label to; bool true_branch; } fixups[MAX_INSNS];
  unsigned nfix;
  unsigned labels[L_COUNT];
};

static void emit(struct program *p, struct sock_filter insn) { p->insns[p->len++] = insn; }

/* if (A == k) goto label (classic BPF jumps only forward) */
static void jeq_to(struct program *p, uint32_t k, enum label to) {
  p->fixups[p->nfix++] = (typeof(p->fixups[0])){ p->len, to, true };
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
}

/* if (A >= k) goto label */
static void jge_to(struct program *p, uint32_t k, enum label to) {
  p->fixups[p->nfix++] = (typeof(p->fixups[0])){ p->len, to, true };
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, k, 0, 0));
}

/* if (A != k) goto label */
static void jne_to(struct program *p, uint32_t k, enum label to) {
  p->fixups[p->nfix++] = (typeof(p->fixups[0])){ p->len, to, false };
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 0));
}

static void place(struct program *p, enum label l) { p->labels[l] = p->len; }

#define LOAD_ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define LOAD_ARG_HI(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]) + 4)
#define RET(action) BPF_STMT(BPF_RET | BPF_K, action)

/* if (nr == `nr`) { ...the block emitted by `kind`, which returns... }: self-contained,
 * so the jumps of the rest of the program stay short. A holds nr on entry and exit. */
static void timed_wait_block(struct program *p, int nr, enum timeout_kind kind, int arg) {
  unsigned test = p->len;
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 0));
  switch (kind) {
  case TIMEOUT_ALWAYS:
    emit(p, (struct sock_filter)RET(SECCOMP_RET_USER_NOTIF));
    break;
  case TIMEOUT_MS: /* low 32 bits as an int: 1 .. INT_MAX */
    emit(p, (struct sock_filter)LOAD_ARG_LO(arg));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x80000000u, 1, 0));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_USER_NOTIF));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_ALLOW));
    break;
  case TIMEOUT_FUTEX: /* op & FUTEX_CMD_MASK is FUTEX_WAIT (0) or FUTEX_WAIT_BITSET (9) */
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
    emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)(128 | 256)));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 9, 1, 0));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_ALLOW));
    /* fall through to the pointer test */
    __attribute__((fallthrough));
  case TIMEOUT_POINTER:
    emit(p, (struct sock_filter)LOAD_ARG_LO(arg));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_USER_NOTIF));
    emit(p, (struct sock_filter)LOAD_ARG_HI(arg));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_USER_NOTIF));
    emit(p, (struct sock_filter)RET(SECCOMP_RET_ALLOW));
    break;
  }
  p->insns[test].jf = (uint8_t)(p->len - test - 1);
}

static bool build(struct program *p) {
  p->len = p->nfix = 0;
  /* Only the x86_64 ABI: i386 (int 0x80) and x32 calls would slip past the numbers below. */
  emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  jne_to(p, AUDIT_ARCH_X86_64, L_ENOSYS);
  emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  jge_to(p, 0x40000000 /* __X32_SYSCALL_BIT */, L_ENOSYS);
  /* io_uring operations bypass syscall entry, so interception would miss them. */
  jeq_to(p, SYS_io_uring_setup, L_ENOSYS);
  if (clocks_virtual()) {
    for (unsigned i = 0; i < COUNT(timed_waits); i++)
      timed_wait_block(p, timed_waits[i].nr, timed_waits[i].kind, timed_waits[i].arg);
    for (unsigned i = 0; i < COUNT(clock_events); i++)
      timed_wait_block(p, clock_events[i], TIMEOUT_ALWAYS, 0);
    /* the blocks clobbered nothing the rest needs: A still holds nr */
  }
  for (unsigned i = 0; i < COUNT(output); i++) jeq_to(p, (uint32_t)output[i], L_OUTPUT);
  for (unsigned i = 0; i < COUNT(notified); i++) jeq_to(p, (uint32_t)notified[i], L_NOTIFY);
  place(p, L_ALLOW);
  emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  place(p, L_NOTIFY);
  emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
  place(p, L_ENOSYS);
  emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
  place(p, L_OUTPUT);
  /* The kernel uses only the low 32 bits of an int argument (little-endian: first word). */
  emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 2, 0));
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 1, 0));
  emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
  for (unsigned i = 0; i < p->nfix; i++) {
    struct sock_filter *insn = &p->insns[p->fixups[i].at];
    unsigned dist = p->labels[p->fixups[i].to] - p->fixups[i].at - 1;
    if (dist > 255) return false; /* classic BPF: conditional jumps reach 255 ahead */
    if (p->fixups[i].true_branch) insn->jt = (uint8_t)dist;
    else insn->jf = (uint8_t)dist;
  }
  return true;
}

int filter_install(void) {
  static struct program p;
  if (!build(&p)) {
    errno = E2BIG;
    return -1;
  }
  struct sock_fprog prog = { .len = (unsigned short)p.len, .filter = p.insns };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (fd < 0 && errno == EINVAL) /* kernels before 5.19 */
    fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  return fd;
}
