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
    } else if (mp_key_is(k, klen, "tracesDir")) {
      if (mp_peek(r) == MP_NIL) mp_read_nil(r);
      else if (!mp_read_strdup(r, &plan->traces_dir)) return false;
    } else if ((v = repro_parse_plan_key(r, k, klen, &plan->repro)) >= 0) {
      if (v == 0) return false;
    } else if (mp_key_is(k, klen, "files")) {
      if (!files_parse_plan(r)) return false;
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

static bool run_step(int index, const struct plan_step *s) {
  const char *op = s->op;
  int rc;
  if (!strcmp(op, OP_MOUNT)) {
    rc = mount(s->source, s->target, s->fstype, s->flags, s->data);
    if (rc != 0) {
      channel_fail(index, op, s->target, errno, "mount %s %s on %s%s%s", s->fstype ? s->fstype : "(bind)",
                   s->source ? s->source : "none", s->target ? s->target : "?",
                   s->data ? " with " : "", s->data ? s->data : "");
      return false;
    }
  } else if (!strcmp(op, OP_MKDIR)) {
    rc = mkdir(s->path, s->mode ? s->mode : 0755);
    if (rc != 0 && errno != EEXIST) {
      channel_fail(index, op, s->path, errno, "mkdir %s", s->path);
      return false;
    }
  } else if (!strcmp(op, OP_FILE)) {
    rc = open(s->path, O_CREAT | O_WRONLY | O_CLOEXEC, s->mode ? s->mode : 0644);
    if (rc < 0) {
      channel_fail(index, op, s->path, errno, "create %s", s->path);
      return false;
    }
    close(rc);
  } else if (!strcmp(op, OP_SYMLINK)) {
    if (symlink(s->target, s->path) != 0) {
      channel_fail(index, op, s->path, errno, "symlink %s -> %s", s->path, s->target);
      return false;
    }
  } else if (!strcmp(op, OP_READONLY)) {
    if (make_readonly(s->path, s->flags != 0) != 0) {
      channel_fail(index, op, s->path, errno, "make %s read-only", s->path);
      return false;
    }
  } else if (!strcmp(op, OP_PIVOT)) {
    if (pivot_into(s->path) != 0) {
      channel_fail(index, op, s->path, errno, "pivot_root into %s", s->path);
      return false;
    }
  } else if (!strcmp(op, OP_LOOPBACK)) {
    if (loopback_up() != 0) {
      channel_fail(index, op, "lo", errno, "bring up loopback");
      return false;
    }
  } else if (!strcmp(op, OP_HOSTNAME)) {
    const char *name = s->name ? s->name : "uwrx";
    if (sethostname(name, strlen(name)) != 0) {
      channel_fail(index, op, name, errno, "set hostname %s", name);
      return false;
    }
  } else if (!strcmp(op, OP_DOMAINNAME)) {
    const char *name = s->name ? s->name : "(none)";
    if (setdomainname(name, strlen(name)) != 0) {
      channel_fail(index, op, name, errno, "set domain name %s", name);
      return false;
    }
  } else if (!strcmp(op, OP_DEVRANDOM)) {
    repro_mount_devrandom(s->path, s->flags != 0);
  } else if (!strcmp(op, OP_PTY)) {
    /* the run goes on without it: the terminal is still the command's, only unnamed */
    if (!s->source || !s->path || keep_pty_name(s->source, s->path) != 0)
      fprintf(stderr, "uwrx: %s has no name inside the sandbox (%s)\n", s->source ? s->source : "the terminal",
              strerror(errno));
  } else {
    channel_fail(index, op, NULL, 0, "unknown plan step \"%s\"", op);
    return false;
  }
  return true;
}

bool plan_execute(const struct plan *plan) {
  /* the run directory is hidden once the steps ran: keep a handle on traces/ */
  if (plan->traces_dir && !trace_open_dir(plan->traces_dir)) {
    channel_fail(-1, "traces", plan->traces_dir, errno, "open the trace directory %s", plan->traces_dir);
    return false;
  }
  for (size_t i = 0; i < plan->nsteps; i++)
    if (!run_step((int)i, &plan->steps[i])) return false;
  return true;
}
