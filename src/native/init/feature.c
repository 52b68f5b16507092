/* The feature registry: every feature of uwrx-init in one table, in the order in which
 * they see a notification. The seccomp filter (filter.c) is generated from the enabled
 * features' subscriptions, so a feature that is off costs nothing in the target, and a
 * call nobody subscribed to never leaves the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "init.h"
#include "uwrx_control.h"

/* Registration order: earlier features see a shared call first. */
static const struct feature *const registry[] = {
  &feature_lazy, /* first: a tree is upgraded before any other feature looks at the call */
  &feature_processes,
  &feature_trace,
  &feature_network,
  &feature_files,
  &feature_deferral_test,
  &feature_rebuild, /* before reproducibility: it answers the exec start of whitelisted programs */
  &feature_reproducibility,
  &feature_clocks, /* after reproducibility: a new process's clock offset comes from its seed */
};
#define NFEATURES (sizeof registry / sizeof registry[0])

/* The io_uring setup call is refused: its operations bypass syscall entry, so no
 * subscription would see them. */
static const int refused[] = { SYS_io_uring_setup };

#define MAX_SUBSCRIBERS 8

struct call_entry {
  syscall_handler fn;
  const struct arg_match *match;
};

struct dispatch {
  int nr;
  unsigned n;
  struct call_entry calls[MAX_SUBSCRIBERS];
};

/* Enabled features, and the subscribers of each call in registration order. */
static const struct feature *enabled[NFEATURES];
static size_t nenabled;
static struct dispatch table[128];
static size_t ntable;
static int16_t slot_of[MAX_SYSCALL]; /* index into table + 1; 0: nobody subscribed */

static struct dispatch *dispatch_of(int nr, bool create) {
  if (nr >= 0 && nr < MAX_SYSCALL) {
    if (slot_of[nr]) return &table[slot_of[nr] - 1];
  } else {
    for (size_t i = 0; i < ntable; i++)
      if (table[i].nr == nr) return &table[i];
  }
  if (!create || ntable == sizeof table / sizeof table[0]) return NULL;
  struct dispatch *d = &table[ntable++];
  d->nr = nr;
  d->n = 0;
  if (nr >= 0 && nr < MAX_SYSCALL) slot_of[nr] = (int16_t)ntable;
  return d;
}

void features_configure(const struct plan *plan) {
  nenabled = 0;
  ntable = 0;
  memset(slot_of, 0, sizeof slot_of);
  for (size_t i = 0; i < NFEATURES; i++) {
    const struct feature *f = registry[i];
    if (f->enabled && !f->enabled(plan)) continue;
    enabled[nenabled++] = f;
    for (size_t j = 0; j < f->nsubs; j++) {
      const struct subscription *s = &f->subs[j];
      if (s->wanted && !s->wanted(plan)) continue;
      struct dispatch *d = dispatch_of(s->nr, true);
      if (!d || d->n == MAX_SUBSCRIBERS) {
        /* a build-time mistake: the tables above are too small for the registry */
        fprintf(stderr, "uwrx-init: too many subscriptions (feature %s, call %d)\n", f->name, s->nr);
        abort();
      }
      d->calls[d->n++] = (struct call_entry){ s->on_syscall, s->match };
    }
  }
}

static bool matches(const struct arg_match *m, const struct seccomp_notif *req) {
  uint32_t v = (uint32_t)req->data.args[m->arg];
  if (m->test == ARG_NONZERO) return req->data.args[m->arg] != 0;
  if (m->test == ARG_POSITIVE) return (int32_t)v > 0;
  if (m->test == ARG_ANY_BIT) return (v & m->values[0]) != 0;
  for (unsigned i = 0; i < m->count; i++)
    if (m->values[i] == v) return true;
  return false;
}

enum verdict features_dispatch(struct notif_ctx *ctx) {
  const struct dispatch *d = dispatch_of(ctx->req->data.nr, false);
  if (!d) return VERDICT_CONTINUE;
  for (unsigned i = 0; i < d->n; i++) {
    /* the filter may notify a call for another subscriber's sake: check ours */
    if (d->calls[i].match && !matches(d->calls[i].match, ctx->req)) continue;
    enum verdict v = d->calls[i].fn(ctx);
    if (v != VERDICT_CONTINUE) return v;
  }
  return VERDICT_CONTINUE;
}

void features_spawn(struct proc *p, struct proc *parent) {
  for (size_t i = 0; i < nenabled; i++)
    if (enabled[i]->on_spawn) enabled[i]->on_spawn(p, parent);
}

void features_exec(const struct proc *p, const struct pending_exec *e) {
  for (size_t i = 0; i < nenabled; i++)
    if (enabled[i]->on_exec) enabled[i]->on_exec(p, e);
}

void features_call(struct notif_ctx *ctx) {
  for (size_t i = 0; i < nenabled; i++)
    if (enabled[i]->on_call) enabled[i]->on_call(ctx);
}

void features_exit(struct proc *p, bool known, int status) {
  for (size_t i = 0; i < nenabled; i++)
    if (enabled[i]->on_exit) enabled[i]->on_exit(p, known, status);
}

/* ---- filter rules ---- */

static int by_nr(const void *a, const void *b) {
  uint32_t x = ((const struct filter_rule *)a)->nr, y = ((const struct filter_rule *)b)->nr;
  return x < y ? -1 : x > y;
}

/* Adds `m` to the rule's condition: one argument and few values stay a condition the
 * filter checks, anything else notifies every call of this number. */
static void merge_match(struct filter_rule *r, const struct arg_match *m) {
  if (!r->conditional) return;
  if (!m || m->arg != r->match.arg || m->test != r->match.test) {
    r->conditional = false;
    return;
  }
  if (m->test == ARG_ANY_BIT) { /* one mask: the union */
    r->match.values[0] |= m->values[0];
    return;
  }
  if (m->test != ARG_ONE_OF) return; /* the same test on the same argument */
  for (unsigned i = 0; i < m->count; i++) {
    bool known = false;
    for (unsigned j = 0; j < r->match.count; j++) known |= r->match.values[j] == m->values[i];
    if (known) continue;
    if (r->match.count == ARG_MATCH_MAX) {
      r->conditional = false;
      return;
    }
    r->match.values[r->match.count++] = m->values[i];
  }
}

size_t features_filter_rules(struct filter_rule *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < sizeof refused / sizeof refused[0] && n < cap; i++)
    out[n++] = (struct filter_rule){ .nr = (uint32_t)refused[i], .action = RULE_ENOSYS };
  for (size_t i = 0; i < ntable && n < cap; i++) {
    const struct dispatch *d = &table[i];
    struct filter_rule *r = &out[n++];
    *r = (struct filter_rule){ .nr = (uint32_t)d->nr, .action = RULE_NOTIFY };
    r->conditional = d->calls[0].match != NULL;
    if (r->conditional) r->match = (struct arg_match){ .arg = d->calls[0].match->arg, .test = d->calls[0].match->test };
    for (unsigned j = 0; j < d->n; j++) merge_match(r, d->calls[j].match);
  }
  qsort(out, n, sizeof *out, by_nr);
  return n;
}
