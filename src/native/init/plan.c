/* The sandbox plan: computed by Node (src/sandbox/plan.ts), carried out here in order.
 * Each step either succeeds or ends the run with one message naming it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_init_proto.h"

static bool read_string_array(struct mp_reader *r, char ***out) {
  uint32_t n;
  if (!mp_read_array(r, &n)) return false;
  char **arr = calloc((size_t)n + 1, sizeof *arr);
  if (!arr) return false;
  for (uint32_t i = 0; i < n; i++)
    if (!mp_read_strdup(r, &arr[i])) return false;
  *out = arr;
  return true;
}

static bool read_step(struct mp_reader *r, struct plan_step *s) {
  uint32_t n;
  if (!mp_read_map(r, &n)) return false;
  memset(s, 0, sizeof *s);
  while (n--) {
    const char *k;
    uint32_t klen;
    int64_t v;
    if (!mp_read_bytes(r, &k, &klen)) return false;
    char **field = mp_key_is(k, klen, "op")       ? &s->op
                 : mp_key_is(k, klen, "source")   ? &s->source
                 : mp_key_is(k, klen, "target")   ? &s->target
                 : mp_key_is(k, klen, "fstype")   ? &s->fstype
                 : mp_key_is(k, klen, "data")     ? &s->data
                 : mp_key_is(k, klen, "path")     ? &s->path
                 : mp_key_is(k, klen, "name")     ? &s->name
                 : NULL;
    if (field) {
      if (mp_peek(r) == MP_NIL) { mp_read_nil(r); continue; }
      if (!mp_read_strdup(r, field)) return false;
    } else if (mp_key_is(k, klen, "flags")) {
      if (!mp_read_int(r, &v)) return false;
      s->flags = (uint64_t)v;
    } else if (mp_key_is(k, klen, "mode")) {
      if (!mp_read_int(r, &v)) return false;
      s->mode = (uint32_t)v;
    } else if (mp_key_is(k, klen, "bestEffort")) {
      if (!mp_read_bool(r, &s->best_effort)) return false;
    } else if (mp_key_is(k, klen, "ahead")) {
      if (!mp_read_bool(r, &s->ahead)) return false;
    } else if (!mp_skip(r)) return false;
  }
  return s->op != NULL;
}

bool plan_parse(struct mp_reader *r, struct plan *plan, const char **why) {
  uint32_t n;
  memset(plan, 0, sizeof *plan);
  plan->handler_threads = 1;
  plan->grace_ms = 3000;
  plan->linger_ms = -1;
  *why = "plan is not a map";
  if (!mp_read_map(r, &n)) return false;
  while (n--) {
    const char *k;
    uint32_t klen;
    int64_t v;
    *why = "plan key is not a string";
    if (!mp_read_bytes(r, &k, &klen)) return false;
    *why = "malformed plan field";
    if (mp_key_is(k, klen, "argv")) {
      if (!read_string_array(r, &plan->argv)) return false;
    } else if (mp_key_is(k, klen, "env")) {
      if (!read_string_array(r, &plan->env)) return false;
    } else if (mp_key_is(k, klen, "cwd")) {
      if (!mp_read_strdup(r, &plan->cwd)) return false;
    } else if (mp_key_is(k, klen, "uidMap")) {
      if (!mp_read_strdup(r, &plan->uid_map)) return false;
    } else if (mp_key_is(k, klen, "gidMap")) {
      if (!mp_read_strdup(r, &plan->gid_map)) return false;
    } else if (mp_key_is(k, klen, "denySetgroups")) {
      if (!mp_read_bool(r, &plan->deny_setgroups)) return false;
    } else if (mp_key_is(k, klen, "handlerThreads")) {
      if (!mp_read_int(r, &v)) return false;
      plan->handler_threads = v < 1 ? 1 : v > 16 ? 16 : (int)v;
    } else if (mp_key_is(k, klen, "graceMs")) {
      if (!mp_read_int(r, &v)) return false;
      plan->grace_ms = (int)v;
    } else if (mp_key_is(k, klen, "lingerMs")) {
      if (!mp_read_int(r, &v)) return false;
      plan->linger_ms = v < 0 ? -1 : (int)v;
    } else if (mp_key_is(k, klen, "recorder")) {
      bool on;
      if (!mp_read_bool(r, &on)) return false;
      trace_enable_recorder(on);
    } else if (mp_key_is(k, klen, "tracesDir")) {
      if (mp_peek(r) == MP_NIL) mp_read_nil(r);
      else if (!mp_read_strdup(r, &plan->traces_dir)) return false;
    } else if ((v = repro_parse_plan_key(r, k, klen, &plan->repro)) >= 0) {
      if (v == 0) return false;
    } else if (mp_key_is(k, klen, "files")) {
      if (!files_parse_plan(r)) return false;
    } else if (mp_key_is(k, klen, "replayPids")) {
      if (!procs_parse_replay_pids(r)) return false;
    } else if (mp_key_is(k, klen, "skippable")) {
      if (!read_string_array(r, &plan->skippable)) return false;
    } else if (mp_key_is(k, klen, "rebuildWait")) {
      if (!mp_read_bool(r, &plan->rebuild_wait)) return false;
    } else if (mp_key_is(k, klen, "testDeferral")) {
      if (!mp_read_bool(r, &plan->test_deferral)) return false;
    } else if (mp_key_is(k, klen, "steps")) {
      uint32_t count;
      if (!mp_read_array(r, &count)) return false;
      plan->steps = calloc(count ? count : 1, sizeof *plan->steps);
      if (!plan->steps) return false;
      plan->nsteps = count;
      *why = "malformed plan step";
      for (uint32_t i = 0; i < count; i++)
        if (!read_step(r, &plan->steps[i])) return false;
    } else if (!mp_skip(r)) return false;
  }
  *why = "plan lacks argv, env or cwd";
  return plan->argv && plan->argv[0] && plan->env && plan->cwd;
}

static int loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* pivot_root(".", "."): the old root ends up stacked under the new one and is detached
 * right away, so no directory for it is needed in the (later read-only) new root. */
static int pivot_into(const char *path) {
  if (chdir(path) != 0) return -1;
  if (syscall(SYS_pivot_root, ".", ".") != 0) return -1;
  if (umount2(".", MNT_DETACH) != 0) return -1;
  return chdir("/");
}

static int make_readonly(const char *path, bool recursive) {
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  return mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr);
}

/* The command's terminal keeps its name inside: pty n of the sandbox's own devpts is
 * taken (pid 1 holds its master for the run, so new ptys get other numbers) and the
 * host's pty is bound over its node, so ttyname() finds the very device under the same
 * name while ptmx still makes new ptys in the sandbox's instance. */
static int keep_pty_name(const char *source, const char *path) {
  const char *slash = strrchr(path, '/');
  char *end;
  long want = slash ? strtol(slash + 1, &end, 10) : -1;
  char ptmx[PATH_MAX];
  if (want < 0 || *end || snprintf(ptmx, sizeof ptmx, "%.*s/ptmx", (int)(slash - path), path) >= (int)sizeof ptmx) {
    errno = EINVAL;
    return -1;
  }
  /* ptmx hands out the lowest free index: take them all up to n, give back the others */
  int *spare = calloc((size_t)want + 1, sizeof *spare);
  if (!spare) return -1;
  int nspare = 0, keep = -1, err = EEXIST;
  while (nspare <= want) {
    int fd = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
    int n = -1;
    if (fd < 0 || ioctl(fd, TIOCGPTN, &n) != 0) {
      err = errno;
      if (fd >= 0) close(fd);
      break;
    }
    if (n == want) {
      keep = fd;
      break;
    }
    spare[nspare++] = fd;
    if (n > want) break; /* already taken: cannot happen in a fresh instance */
  }
  while (nspare > 0) close(spare[--nspare]);
  free(spare);
  if (keep < 0) {
    errno = err;
    return -1;
  }
  if (mount(source, path, NULL, MS_BIND, NULL) != 0) {
    err = errno;
    close(keep);
    errno = err;
    return -1;
  }
  return 0; /* `keep` stays open until pid 1 ends */
}

/* ---- the operations: one executor each, one table, one loop ---- */

/* Why a step failed: one line (errno, if any, is appended) and what it was about. */
struct step_failure {
  char what[600];
  const char *subject;
};

#define FAIL(f, subj, ...) (snprintf((f)->what, sizeof (f)->what, __VA_ARGS__), (f)->subject = (subj), false)

static bool op_files(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)s;
  return files_open(plan, &f->subject) || FAIL(f, f->subject, "open the file record %s", f->subject);
}

static bool op_traces(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return trace_open_dir(s->path) || FAIL(f, s->path, "open the trace directory %s", s->path);
}

static bool op_replayed(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return rebuild_open_replayed(s->path) || FAIL(f, s->path, "open the replayed attempt %s", s->path);
}

static bool op_mount(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  if (s->ahead && ahead_attach(s) == 0) return true;
  return mount(s->source, s->target, s->fstype, s->flags, s->data) == 0 ||
         FAIL(f, s->target, "mount %s %s on %s%s%s", s->fstype ? s->fstype : "(bind)", s->source ? s->source : "none",
              s->target ? s->target : "?", s->data ? " with " : "", s->data ? s->data : "");
}

/* A tree bound read-only, its overlay kept for the first change below it (lazy.c): made
 * then where the kernel allows it, else made ahead. When the overlay can be neither, it
 * is mounted now, as a mount step would. */
static bool op_lazy(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  int fd = ahead_take(s);
  if (fd >= 0 || lazy_deferred()) {
    if (lazy_bind(s, s->name, s->target, s->path, fd)) return true;
    int err = errno;
    if (fd >= 0) close(fd);
    umount2(s->target, MNT_DETACH);
    errno = err;
  }
  return mount(s->source, s->target, s->fstype, s->flags, s->data) == 0 ||
         FAIL(f, s->target, "mount %s %s on %s with %s", s->fstype ? s->fstype : "?", s->source ? s->source : "none",
              s->target ? s->target : "?", s->data ? s->data : "");
}

static bool op_mkdir(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return mkdir(s->path, s->mode ? s->mode : 0755) == 0 || errno == EEXIST || FAIL(f, s->path, "mkdir %s", s->path);
}

static bool op_file(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  int fd = open(s->path, O_CREAT | O_WRONLY | O_CLOEXEC, s->mode ? s->mode : 0644);
  if (fd < 0) return FAIL(f, s->path, "create %s", s->path);
  close(fd);
  return true;
}

static bool op_symlink(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return symlink(s->target, s->path) == 0 || FAIL(f, s->path, "symlink %s -> %s", s->path, s->target);
}

/* Times are copied at the nanosecond, which Node's own calls cannot give. A source that
 * is gone (a temporary entry) leaves the times as they are. */
static bool op_times(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  int nofollow = s->flags & 1 ? AT_SYMLINK_NOFOLLOW : 0;
  struct stat st;
  if (fstatat(AT_FDCWD, s->source, &st, nofollow) != 0) return true;
  struct timespec times[2] = { st.st_atim, st.st_mtim };
  return utimensat(AT_FDCWD, s->path, times, nofollow) == 0 || FAIL(f, s->path, "set the times of %s", s->path);
}

static bool op_readonly(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return make_readonly(s->path, s->flags != 0) == 0 || FAIL(f, s->path, "make %s read-only", s->path);
}

static bool op_pivot(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return pivot_into(s->path) == 0 || FAIL(f, s->path, "pivot_root into %s", s->path);
}

static bool op_loopback(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan, (void)s;
  return loopback_up() == 0 || FAIL(f, "lo", "bring up loopback");
}

static bool op_hostname(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  const char *name = s->name ? s->name : "uwrx";
  return sethostname(name, strlen(name)) == 0 || FAIL(f, name, "set hostname %s", name);
}

static bool op_domainname(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  const char *name = s->name ? s->name : "(none)";
  return setdomainname(name, strlen(name)) == 0 || FAIL(f, name, "set domain name %s", name);
}

/* Without FUSE the host's device stays: the run is less reproducible, not wrong. */
/* A pid namespace has its own pid_max (Linux 6.14 on), 4194304 when new: programs that
 * size pid columns by it (ps, top) would print wider ones than on the host. Before 6.14
 * it is global, already the host's, and not writable from a user namespace: nothing to
 * do then. */
static bool op_pidmax(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  char file[PATH_MAX], value[24], now[24];
  int n = snprintf(value, sizeof value, "%llu\n", (unsigned long long)s->flags);
  if (snprintf(file, sizeof file, "%s/sys/kernel/pid_max", s->path) >= (int)sizeof file) return FAIL(f, s->path, "path too long");
  int fd = open(file, O_RDWR | O_CLOEXEC);
  if (fd < 0) fd = open(file, O_RDONLY | O_CLOEXEC);
  ssize_t got = fd >= 0 ? read(fd, now, sizeof now) : -1;
  if (got == n && memcmp(now, value, (size_t)n) == 0) {
    close(fd);
    return true;
  }
  bool ok = fd >= 0 && pwrite(fd, value, (size_t)n, 0) == n;
  int err = errno;
  if (fd >= 0) close(fd);
  errno = err;
  return ok || FAIL(f, file, "set pid_max %s", value);
}

static bool op_devrandom(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  static bool failed_before;
  if (repro_mount_devrandom(s->path, s->flags != 0)) return true;
  int err = errno;
  if (failed_before) {
    /* said once for both devices */
    f->what[0] = 0;
    return false;
  }
  failed_before = true;
  errno = err;
  return FAIL(f, s->path, "/dev/urandom and /dev/random are not deterministic in this run (FUSE)");
}

/* Without it the terminal is still the command's, only unnamed inside. */
static bool op_pty(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  return (s->source && s->path && keep_pty_name(s->source, s->path) == 0) ||
         FAIL(f, s->path, "%s has no name inside the sandbox", s->source ? s->source : "the terminal");
}

static bool op_netsocket(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  const char *kind = s->name ? s->name : "tcp", *address = s->path ? s->path : "127.0.0.1";
  return net_hand_over_socket(kind, address, (unsigned)s->flags) == 0 ||
         FAIL(f, address, "%s socket on %s port %u for the network actors", kind, address, (unsigned)s->flags);
}

static bool op_netaddr(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  const char *address = s->path ? s->path : "";
  return net_add_address(address, (unsigned)s->flags, false) == 0 ||
         FAIL(f, address, "add address %s/%u to lo", address, (unsigned)s->flags);
}

static bool op_netroute(const struct plan *plan, const struct plan_step *s, struct step_failure *f) {
  (void)plan;
  const char *prefix = s->path ? s->path : "";
  return net_add_address(prefix, (unsigned)s->flags, true) == 0 ||
         FAIL(f, prefix, "add local route %s/%u on lo", prefix, (unsigned)s->flags);
}

struct op_def {
  const char *name;
  bool (*run)(const struct plan *plan, const struct plan_step *s, struct step_failure *f);
  bool best_effort; /* a failure is one warning line, the run goes on */
};

static const struct op_def ops[] = {
  { OP_FILES, op_files, false },
  { OP_TRACES, op_traces, false },
  { OP_REPLAYED, op_replayed, false },
  { OP_MOUNT, op_mount, false },
  { OP_LAZY, op_lazy, false },
  { OP_MKDIR, op_mkdir, false },
  { OP_FILE, op_file, false },
  { OP_SYMLINK, op_symlink, false },
  { OP_TIMES, op_times, true },
  { OP_READONLY, op_readonly, false },
  { OP_PIVOT, op_pivot, false },
  { OP_LOOPBACK, op_loopback, false },
  { OP_HOSTNAME, op_hostname, false },
  { OP_DOMAINNAME, op_domainname, false },
  { OP_DEVRANDOM, op_devrandom, true },
  { OP_PIDMAX, op_pidmax, true },
  { OP_PTY, op_pty, true },
  { OP_NETSOCKET, op_netsocket, false },
  { OP_NETADDR, op_netaddr, false },
  { OP_NETROUTE, op_netroute, false },
};

static const struct op_def *op_named(const char *name) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(ops[i].name, name)) return &ops[i];
  return NULL;
}

bool plan_execute(const struct plan *plan) {
  ahead_start(plan);
  for (size_t i = 0; i < plan->nsteps; i++) {
    const struct plan_step *s = &plan->steps[i];
    const struct op_def *op = op_named(s->op);
    if (!op) {
      ahead_abandon();
      channel_fail((int)i, s->op, NULL, 0, "unknown plan step \"%s\"", s->op);
      return false;
    }
    struct step_failure f = { .what = "", .subject = NULL };
    errno = 0;
    if (op->run(plan, s, &f)) continue;
    int err = errno;
    if (op->best_effort || s->best_effort) {
      if (f.what[0]) fprintf(stderr, "uwrx: %s%s%s\n", f.what, err ? ": " : "", err ? strerror(err) : "");
      continue;
    }
    ahead_abandon();
    channel_fail((int)i, s->op, f.subject, err, "%s", f.what);
    return false;
  }
  ahead_abandon();
  return true;
}
