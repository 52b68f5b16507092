/* The seccomp filter of the command tree (DESIGN.md 3.2), generated from the enabled
 * features' subscriptions (feature.c): a binary search over the sorted syscall numbers,
 * a few comparisons per call whatever the number of subscriptions. Classic BPF jumps
 * only forward and at most 255 instructions on a condition: a longer distance goes
 * through an unconditional jump, and the program is checked against BPF_MAXINSNS and
 * against the rules themselves before it is installed. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_recorder.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#define MAX_RULES 256
/* Rules compared one after the other at the bottom of the search. */
#define LEAF_RULES 4

struct program {
  struct sock_filter insns[BPF_MAXINSNS];
  unsigned len;
  bool dry;        /* only count (to size a subtree before jumping over it) */
  bool overflow;
};

static void emit(struct program *p, struct sock_filter insn) {
  if (p->len >= BPF_MAXINSNS) {
    p->overflow = true;
    return;
  }
  if (!p->dry) p->insns[p->len] = insn;
  p->len++;
}

static void emit_jump(struct program *p, uint16_t op, uint32_t k, unsigned jt, unsigned jf) {
  if (jt > 255 || jf > 255) p->overflow = true; /* callers keep these short; checked anyway */
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | op | BPF_K, k, (uint8_t)jt, (uint8_t)jf));
}

static void emit_ret(struct program *p, uint32_t k) { emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, k)); }

static void emit_load(struct program *p, uint32_t offset) {
  emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset));
}

/* Allowed from the in-process recorder's gate (uwrx_recorder.h): the calls it answers
 * itself (waitid: its WNOWAIT probes, which reap nothing; wait4: the reap of a child
 * whose clock uwrx-init joined at its exit; epoll_wait, epoll_pwait, poll, select, ppoll,
 * pselect6, nanosleep and clock_nanosleep: timed waits whose end it writes as a clock event; connect: a
 * connect it recorded that uwrx-init need not act on), and the writes whose output it recorded
 * (recorder/output.c). openat only without write intent, checked here too; open (which
 * nothing of uwrx's calls otherwise) only with UWRX_EXEC_OPEN_FLAGS: the shim's open of
 * its own prepared buffer (uwrx_recorder.h, "prepared execs").
 *
 * The check sits in front of the action of a rule's own number, never in front of the
 * search: a number whose result depends on the syscall number alone (every call no rule
 * names) is then one the kernel's seccomp action cache answers without running the
 * filter at all, and that is most calls of a program (mmap, read, close ...). */
static const uint32_t gated[] = { SYS_newfstatat, SYS_statx, SYS_faccessat, SYS_faccessat2, SYS_clock_gettime, SYS_getrandom,
                                  SYS_waitid, SYS_wait4, SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev, SYS_openat, SYS_open,
                                  SYS_epoll_wait, SYS_epoll_pwait, SYS_poll, SYS_select, SYS_ppoll, SYS_pselect6,
                                  SYS_nanosleep, SYS_clock_nanosleep, SYS_connect };
#define NGATED (sizeof gated / sizeof gated[0])
#define GATE_OPENAT_DENIED (O_ACCMODE | O_CREAT | O_TRUNC | 020000000 /* __O_TMPFILE */)

static bool is_gated(uint32_t nr) {
  for (size_t i = 0; i < NGATED; i++)
    if (gated[i] == nr) return true;
  return false;
}

/* Instructions of the gate check in front of a rule's action (0 when not gated). */
static unsigned gate_size(const struct filter_rule *r) {
  if (!is_gated(r->nr)) return 0;
  return r->nr == SYS_openat ? 11 : r->nr == SYS_open ? 10 : 8;
}

_Static_assert((uint32_t)(UWRX_GATE_IP >> 32) != (uint32_t)(UWRX_GATE_NEAR_IP >> 32), "the gates differ in the high half");

/* From either gate (both halves of the address match one of them): allow; otherwise
 * fall through to the rule's own action, which reloads what it compares. */
static void emit_gate(struct program *p, const struct filter_rule *r) {
  unsigned size = gate_size(r);
  if (size == 0) return;
  /* the high half picks the gate, the low half must be that gate's; fail: `size` */
  emit_load(p, (uint32_t)offsetof(struct seccomp_data, instruction_pointer) + 4);     /* 0 */
  emit_jump(p, BPF_JEQ, (uint32_t)(UWRX_GATE_NEAR_IP >> 32), 0, 2);                      /* 1 */
  emit_load(p, (uint32_t)offsetof(struct seccomp_data, instruction_pointer));         /* 2 */
  emit_jump(p, BPF_JEQ, (uint32_t)UWRX_GATE_NEAR_IP, 3, size - 4);                       /* 3 */
  emit_jump(p, BPF_JEQ, (uint32_t)(UWRX_GATE_IP >> 32), 0, size - 5);                    /* 4 */
  emit_load(p, (uint32_t)offsetof(struct seccomp_data, instruction_pointer));         /* 5 */
  emit_jump(p, BPF_JEQ, (uint32_t)UWRX_GATE_IP, 0, size - 7);                            /* 6 */
  if (r->nr == SYS_openat) {
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[2]));
    emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, GATE_OPENAT_DENIED));
    emit_jump(p, BPF_JEQ, 0, 0, 1);
  } else if (r->nr == SYS_open) {
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[1]));
    emit_jump(p, BPF_JEQ, UWRX_EXEC_OPEN_FLAGS, 0, 1);
  }
  emit_ret(p, SECCOMP_RET_ALLOW);
}

static unsigned verdict_size(const struct filter_rule *r) {
  if (r->action != RULE_NOTIFY || !r->conditional) return 1;
  switch (r->match.test) {
  case ARG_NONZERO: return 7;
  case ARG_POSITIVE: return 5;
  case ARG_ANY_BIT: return 4;
  default: return 1 + r->match.count + 2;
  }
}

static unsigned action_size(const struct filter_rule *r) { return gate_size(r) + verdict_size(r); }

static void emit_action(struct program *p, const struct filter_rule *r) {
  emit_gate(p, r);
  if (r->action == RULE_ENOSYS) {
    emit_ret(p, SECCOMP_RET_ERRNO | ENOSYS);
  } else if (!r->conditional) {
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
  } else if (r->match.test == ARG_NONZERO) {
    /* either half set: notify */
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[r->match.arg]));
    emit_jump(p, BPF_JEQ, 0, 1, 0);
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[r->match.arg]) + 4);
    emit_jump(p, BPF_JEQ, 0, 0, 1);
    emit_ret(p, SECCOMP_RET_ALLOW);
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
  } else if (r->match.test == ARG_POSITIVE) {
    /* 1 .. INT_MAX as the low 32 bits */
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[r->match.arg]));
    emit_jump(p, BPF_JEQ, 0, 2, 0);
    emit_jump(p, BPF_JGE, 0x80000000u, 1, 0);
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
    emit_ret(p, SECCOMP_RET_ALLOW);
  } else if (r->match.test == ARG_ANY_BIT) {
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[r->match.arg]));
    emit_jump(p, BPF_JSET, r->match.values[0], 1, 0);
    emit_ret(p, SECCOMP_RET_ALLOW);
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
  } else {
    /* x86_64 is little-endian: the low 32 bits are the argument's first word */
    emit_load(p, (uint32_t)offsetof(struct seccomp_data, args[r->match.arg]));
    for (unsigned i = 0; i < r->match.count; i++)
      emit_jump(p, BPF_JEQ, r->match.values[i], r->match.count - i /* to the notify */, 0);
    emit_ret(p, SECCOMP_RET_ALLOW);
    emit_ret(p, SECCOMP_RET_USER_NOTIF);
  }
}

/* The accumulator holds the syscall number: a search over rules[lo, hi). */
static void emit_search(struct program *p, const struct filter_rule *rules, size_t lo, size_t hi) {
  if (hi - lo <= LEAF_RULES) {
    /* n comparisons, "allow", then each rule's action */
    size_t n = hi - lo;
    unsigned before = 0;
    for (size_t i = 0; i < n; i++) {
      emit_jump(p, BPF_JEQ, rules[lo + i].nr, (unsigned)(n - i - 1) + 1 + before, 0);
      before += action_size(&rules[lo + i]);
    }
    emit_ret(p, SECCOMP_RET_ALLOW);
    for (size_t i = lo; i < hi; i++) emit_action(p, &rules[i]);
    return;
  }
  size_t mid = lo + (hi - lo) / 2;
  /* size the lower half first: the jump over it must fit */
  struct program sizing = { .dry = true };
  emit_search(&sizing, rules, lo, mid);
  if (sizing.overflow) p->overflow = true;
  if (sizing.len <= 255) {
    emit_jump(p, BPF_JGE, rules[mid].nr, sizing.len, 0);
  } else {
    emit_jump(p, BPF_JGE, rules[mid].nr, 0, 1);
    emit(p, (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, sizing.len));
  }
  emit_search(p, rules, lo, mid);
  emit_search(p, rules, mid, hi);
}

static void build(struct program *p, const struct filter_rule *rules, size_t n) {
  p->len = 0;
  p->overflow = false;
  /* Only the x86_64 ABI: i386 (int 0x80) and x32 calls would slip past the numbers. */
  emit_load(p, (uint32_t)offsetof(struct seccomp_data, arch));
  emit_jump(p, BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0);
  emit_ret(p, SECCOMP_RET_ERRNO | ENOSYS);
  emit_load(p, (uint32_t)offsetof(struct seccomp_data, nr));
  emit_jump(p, BPF_JGE, 0x40000000 /* __X32_SYSCALL_BIT */, 0, 1);
  emit_ret(p, SECCOMP_RET_ERRNO | ENOSYS);
  if (n == 0) emit_ret(p, SECCOMP_RET_ALLOW);
  else emit_search(p, rules, 0, n);
}

/* ---- self-check: run the program as the kernel would on each rule's calls ---- */

static uint32_t run(const struct program *p, const struct seccomp_data *d) {
  uint32_t a = 0;
  for (unsigned pc = 0; pc < p->len; pc++) {
    const struct sock_filter *f = &p->insns[pc];
    switch (f->code) {
    case BPF_LD | BPF_W | BPF_ABS: memcpy(&a, (const char *)d + f->k, 4); break;
    case BPF_JMP | BPF_JEQ | BPF_K: pc += a == f->k ? f->jt : f->jf; break;
    case BPF_JMP | BPF_JGE | BPF_K: pc += a >= f->k ? f->jt : f->jf; break;
    case BPF_JMP | BPF_JSET | BPF_K: pc += a & f->k ? f->jt : f->jf; break;
    case BPF_JMP | BPF_JA: pc += f->k; break;
    case BPF_ALU | BPF_AND | BPF_K: a &= f->k; break;
    case BPF_RET | BPF_K: return f->k;
    default: return 0xffffffffu;
    }
  }
  return 0xffffffffu; /* fell off the end */
}

static bool expect_from(const struct program *p, uint64_t ip, uint32_t nr, unsigned arg, uint32_t value, uint32_t want) {
  struct seccomp_data d = { .nr = (int)nr, .arch = AUDIT_ARCH_X86_64, .instruction_pointer = ip };
  d.args[arg] = value;
  return run(p, &d) == want;
}

static bool expect(const struct program *p, uint32_t nr, unsigned arg, uint32_t value, uint32_t want) {
  return expect_from(p, 0, nr, arg, value, want);
}

/* A gated rule's call from either gate is allowed (openat only without write intent,
 * open only with UWRX_EXEC_OPEN_FLAGS); from a gate's neighbour, or a mix of the two
 * addresses, it is not. */
static bool check_gate(const struct program *p, const struct filter_rule *r, uint32_t act) {
  if (!is_gated(r->nr) || r->conditional) return true;
  /* an argument that lets the call through, and one that does not (where any does: the same) */
  unsigned arg = r->nr == SYS_open ? 1 : 2;
  uint32_t good = r->nr == SYS_open ? UWRX_EXEC_OPEN_FLAGS : O_RDONLY;
  uint32_t bad = r->nr == SYS_open ? O_RDWR : r->nr == SYS_openat ? O_WRONLY : good;
  static const uint64_t ips[] = { UWRX_GATE_IP, UWRX_GATE_NEAR_IP };
  for (int i = 0; i < 2; i++) {
    uint64_t ip = ips[i], other = ips[1 - i];
    if (!(expect_from(p, ip, r->nr, arg, good, SECCOMP_RET_ALLOW) && expect_from(p, ip + 1, r->nr, arg, good, act) &&
          expect_from(p, ip ^ (1ull << 32), r->nr, arg, good, act) &&
          /* one gate's low half with the other's high half */
          expect_from(p, (other & ~0xffffffffull) | (ip & 0xffffffffull), r->nr, arg, good, act) &&
          (bad == good || expect_from(p, ip, r->nr, arg, bad, act))))
      return false;
  }
  return true;
}

static bool check(const struct program *p, const struct filter_rule *rules, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const struct filter_rule *r = &rules[i];
    uint32_t act = r->action == RULE_ENOSYS ? SECCOMP_RET_ERRNO | ENOSYS : SECCOMP_RET_USER_NOTIF;
    if (r->conditional && r->match.test == ARG_NONZERO) {
      if (!expect(p, r->nr, r->match.arg, 1, act) || !expect(p, r->nr, r->match.arg, 0, SECCOMP_RET_ALLOW)) return false;
    } else if (r->conditional && r->match.test == ARG_POSITIVE) {
      if (!expect(p, r->nr, r->match.arg, 1, act) || !expect(p, r->nr, r->match.arg, 0, SECCOMP_RET_ALLOW) ||
          !expect(p, r->nr, r->match.arg, 0x80000000u, SECCOMP_RET_ALLOW))
        return false;
    } else if (r->conditional && r->match.test == ARG_ANY_BIT) {
      uint32_t mask = r->match.values[0], low = mask & -mask;
      if (!expect(p, r->nr, r->match.arg, low, act) || !expect(p, r->nr, r->match.arg, mask, act) ||
          !expect(p, r->nr, r->match.arg, ~mask, SECCOMP_RET_ALLOW) || !expect(p, r->nr, r->match.arg, 0, SECCOMP_RET_ALLOW))
        return false;
    } else if (r->conditional) {
      for (unsigned j = 0; j < r->match.count; j++)
        if (!expect(p, r->nr, r->match.arg, r->match.values[j], act)) return false;
      uint32_t other = 0;
      for (bool taken = true; taken;) {
        taken = false;
        for (unsigned j = 0; j < r->match.count; j++) taken |= r->match.values[j] == other;
        if (taken) other++;
      }
      if (!expect(p, r->nr, r->match.arg, other, SECCOMP_RET_ALLOW)) return false;
    } else if (!expect(p, r->nr, 0, 0, act)) return false;
    if (!check_gate(p, r, act)) return false;
    /* the numbers around a rule that are not rules themselves */
    if (r->nr > 0 && (i == 0 || rules[i - 1].nr != r->nr - 1) && !expect(p, r->nr - 1, 0, 0, SECCOMP_RET_ALLOW)) return false;
    if ((i + 1 == n || rules[i + 1].nr != r->nr + 1) && !expect(p, r->nr + 1, 0, 0, SECCOMP_RET_ALLOW)) return false;
  }
  return true;
}

static int install(const struct sock_fprog *prog) {
  unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, prog);
  if (fd < 0 && errno == EINVAL) /* kernels before 5.19 */
    fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
  return fd;
}

int filter_install(void) {
  static struct filter_rule rules[MAX_RULES];
  static struct program p;
  size_t n = features_filter_rules(rules, MAX_RULES);
  build(&p, rules, n);
  if (p.overflow || !check(&p, rules, n)) {
    errno = E2BIG;
    return -1;
  }
  struct sock_fprog prog = { .len = (unsigned short)p.len, .filter = p.insns };
  /* The caller holds CAP_SYS_ADMIN in its user namespace, so the filter needs no
   * no_new_privs: the command sees NoNewPrivs 0 as natively (sudo refuses to run with it
   * set). Without the capability, no_new_privs it is. */
  int fd = install(&prog);
  if (fd < 0 && errno == EACCES) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    fd = install(&prog);
  }
  return fd;
}
