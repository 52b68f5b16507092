/* Trees bound read-only until first changed (plan step "lazy"): a top-level directory
 * whose overlay would sit over the host's directory alone starts as a read-only bind of
 * it, and its overlay is attached over the bind when a process first asks to change
 * something below it. A walk of a tree nobody writes then costs what it costs natively:
 * a fresh overlay builds its own dentry and inode for every path looked up (ovl_lookup,
 * ovl_get_inode), several times the native cost. The overlay's filesystem is checked at
 * set-up (configured once: a mistake fails the set-up) and made at that first change:
 * most trees of a run are never changed, and creating one (its work directory and the
 * kernel's probes there) costs 0.2-2 ms. One the kernel
 * refuses to create then leaves its tree read-only (EROFS, and a line on stderr), as an
 * overlay that cannot be attached does; the uppers' filesystem is the one of the overlays
 * made at set-up (the command's cwd), whose failure still fails the set-up.
 *
 * The bind is a shared mount in pid 1's namespace, so the command's namespace (a copy
 * owned by a child user namespace) holds a slave of it: the overlay attached here
 * propagates over the command's bind, and over the binds of namespaces it made itself.
 *
 * The feature comes first for every call that may change a file (opens with write
 * intent or O_TMPFILE, the mutations, the xattr writes, access(2) for writing, the bind
 * of a unix socket's file) and for chdir/fchdir (no cwd is ever left inside a stale
 * bind): the tree is upgraded before the call continues, so the kernel resolves the
 * call into the overlay. A call that changes mounts or the root upgrades every tree
 * first (a mount made private would not receive the overlays attached later).
 *
 * A descriptor the caller passes (a dirfd, or the file of fchmod, fchown, futimens,
 * fsetxattr, fchdir) that still points into the bind is replaced first by the same file
 * opened in the overlay (SECCOMP_ADDFD_FLAG_SETFD, same open flags, same offset; a
 * directory stream restarts at its beginning). A change that gets past all of this
 * fails with EROFS: the host is never written. */
#include <errno.h>
#include <fcntl.h>
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

#ifndef SECCOMP_ADDFD_FLAG_SETFD
#define SECCOMP_ADDFD_FLAG_SETFD (1UL << 0)
#endif

#define LAZY_MAX 64

struct lazy_tree {
  char *mount_point;
  size_t mlen;
  uint64_t bind_id;  /* the bind's mount id in pid 1's namespace */
  int fd;            /* the overlay until attached, then -1 */
  bool created;      /* fd is the detached overlay, not its filesystem context yet */
  uint64_t flags;    /* mount flags of the overlay */
  const struct plan_step *step; /* until then, the step its overlay is configured from */
  int lower;         /* and the copy of its lower directory, or -1 */
  bool attached;     /* the overlay is in place (or could not be: writes get EROFS) */
  pthread_mutex_t lock;
};

static struct lazy_tree trees[LAZY_MAX];
static size_t ntrees;
static int waiting;   /* trees not attached yet */
static int attached;  /* trees attached */

static uint64_t mount_id_at(int dirfd, const char *path, int flags) {
  struct statx x;
  if (statx(dirfd, path, flags, STATX_MNT_ID, &x) != 0 || !(x.stx_mask & STATX_MNT_ID)) return 0;
  return x.stx_mnt_id;
}

bool lazy_deferred(void) {
  static int deferred = -1;
  if (deferred < 0) {
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    deferred = fs >= 0 && root >= 0 && fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, root) == 0;
    if (fs >= 0) close(fs);
    if (root >= 0) close(root);
  }
  return deferred == 1;
}

static int clone_tree(const char *path) {
  return (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
}

/* The directory holding the lazy trees' upper and work directories (the run
 * directory), as a detached copy shared by them all, and its path. */
static int layers_dir = -1;
static char *layers_path;

/* A lazy step's overlay options, split: one lower directory, the upper and work
 * directories (relative to layers_path), and its flags. */
struct overlay_options {
  char *data; /* the copy the strings point into */
  const char *lower, *upper, *work;
  const char *flags[8];
  size_t nflags;
};

static void options_free(struct overlay_options *o) {
  free(o->data);
  o->data = NULL;
}

/* False (errno EINVAL) for options of any other form: such a tree is not deferred. */
static bool options_of(const struct plan_step *s, struct overlay_options *o) {
  memset(o, 0, sizeof *o);
  o->data = s->data && s->source ? strdup(s->data) : NULL;
  bool ok = o->data != NULL;
  char *save = NULL, *upper = NULL, *work = NULL;
  for (char *opt = ok ? strtok_r(o->data, ",", &save) : NULL; ok && opt; opt = strtok_r(NULL, ",", &save)) {
    if (!strncmp(opt, "lowerdir=", 9)) o->lower = opt + 9;
    else if (!strncmp(opt, "upperdir=", 9)) upper = opt + 9;
    else if (!strncmp(opt, "workdir=", 8)) work = opt + 8;
    else if (!strchr(opt, '=') && o->nflags < sizeof o->flags / sizeof o->flags[0]) o->flags[o->nflags++] = opt;
    else ok = false;
  }
  size_t n = layers_path ? strlen(layers_path) : 0;
  ok = ok && o->lower && !strchr(o->lower, ':') && upper && work && n && !strncmp(upper, layers_path, n) &&
       upper[n] == '/' && !strncmp(work, layers_path, n) && work[n] == '/';
  if (!ok) {
    options_free(o);
    errno = EINVAL;
    return false;
  }
  o->upper = upper + n + 1;
  o->work = work + n + 1;
  return true;
}

/* The overlay of step s configured over the copy `lower` of its lower directory and
 * layers_dir: its filesystem context, or -1 with errno. */
static int configure_overlay(const struct plan_step *s, int lower) {
  struct overlay_options o;
  if (!options_of(s, &o)) return -1;
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  bool ok = fs >= 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", s->source, 0) == 0 &&
            fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower) == 0;
  for (int i = 0; ok && i < 2; i++) {
    int d = openat(layers_dir, i == 0 ? o.upper : o.work, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ok = d >= 0 && fsconfig(fs, FSCONFIG_SET_FD, i == 0 ? "upperdir" : "workdir", NULL, d) == 0;
    if (d >= 0) close(d);
  }
  for (size_t i = 0; ok && i < o.nflags; i++) ok = fsconfig(fs, FSCONFIG_SET_FLAG, o.flags[i], NULL, 0) == 0;
  int err = errno;
  options_free(&o);
  if (ok) return fs;
  if (fs >= 0) close(fs);
  errno = err ? err : EINVAL;
  return -1;
}

/* Step s's tree deferred: a detached copy of its lower directory (and layers_dir, made
 * once) taken now, while the host's paths are there; its overlay configured once to
 * check it (a mistake fails the set-up) and configured again when it is created. The
 * copy, or -1 with errno. The host's paths are gone after pivot_root, and overlayfs
 * refuses a layer on a mount no longer in the namespace; it takes a detached copy, held
 * open (a copy whose descriptor is closed is dissolved). One descriptor per tree, as
 * an overlay made ahead and kept would be. */
static int defer_overlay(const struct plan_step *s) {
  if (!layers_path) {
    /* the upper's parent's parent: <run directory>/upper/<n> */
    const char *upper = s->data ? strstr(s->data, "upperdir=") : NULL;
    char *dir = upper ? strndup(upper + 9, strcspn(upper + 9, ",")) : NULL;
    for (int i = 0; dir && i < 2; i++) {
      char *slash = strrchr(dir, '/');
      if (slash && slash != dir) *slash = 0;
    }
    layers_dir = dir ? clone_tree(dir) : -1;
    if (layers_dir < 0) {
      free(dir);
      return -1;
    }
    layers_path = dir;
  }
  struct overlay_options o;
  if (!options_of(s, &o)) return -1;
  int lower = clone_tree(o.lower);
  options_free(&o);
  int fs = lower >= 0 ? configure_overlay(s, lower) : -1;
  if (fs < 0) {
    int err = errno;
    if (lower >= 0) close(lower);
    errno = err;
    return -1;
  }
  close(fs);
  return lower;
}

bool lazy_bind(const struct plan_step *s, const char *host_dir, const char *target, const char *inside, int overlay_fd) {
  if (ntrees == LAZY_MAX) {
    errno = ENOSPC;
    return false;
  }
  struct lazy_tree *t = &trees[ntrees];
  t->created = overlay_fd >= 0;
  t->fd = overlay_fd;
  t->step = s;
  t->lower = t->created ? -1 : defer_overlay(s);
  if (!t->created && t->lower < 0) return false;
  bool ok = mount(host_dir, target, NULL, MS_BIND, NULL) == 0;
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY, .propagation = MS_SHARED };
  ok = ok && mount_setattr(AT_FDCWD, target, 0, &attr, sizeof attr) == 0;
  t->mount_point = ok ? strdup(inside) : NULL;
  if (!t->mount_point) {
    int err = ok ? ENOMEM : errno;
    if (t->lower >= 0) close(t->lower); /* a detached mount given is the caller's to close */
    errno = err;
    return false;
  }
  t->mlen = strlen(inside);
  t->bind_id = mount_id_at(AT_FDCWD, target, 0);
  t->flags = s->flags;
  pthread_mutex_init(&t->lock, NULL);
  ntrees++;
  waiting++;
  return true;
}

static bool path_within(const char *a, const char *b, size_t n) {
  return strncmp(a, b, n) == 0 && (a[n] == '/' || a[n] == 0);
}

static struct lazy_tree *tree_of(const char *p) {
  for (size_t i = 0; i < ntrees; i++)
    if (path_within(p, trees[i].mount_point, trees[i].mlen)) return &trees[i];
  return NULL;
}

/* The mounts the plan made below t's bind (the ld.so shim, the network's files bound
 * over host files), in mount order: copies of them (open_tree) go over the overlay once
 * it is attached, so it hides none of them. */
#define CARRIED_MAX 32
struct carried {
  size_t n;
  char *path[CARRIED_MAX];
  int fd[CARRIED_MAX];
};

static void carry_below(const struct lazy_tree *t, struct carried *c) {
  c->n = 0;
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return;
  char line[4096 + 256], where[4096];
  while (c->n < CARRIED_MAX && fgets(line, sizeof line, f)) {
    if (sscanf(line, "%*u %*u %*s %*s %4095s", where) != 1 || strchr(where, '\\')) continue;
    if (strlen(where) == t->mlen || !path_within(where, t->mount_point, t->mlen)) continue;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, where, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) continue;
    c->path[c->n] = strdup(where);
    if (!c->path[c->n]) {
      close(fd);
      break;
    }
    c->fd[c->n++] = fd;
  }
  fclose(f);
}

/* Attaches t's overlay (once; the other threads wait for it here). */
static void upgrade(struct lazy_tree *t, pid_t tid) {
  if (__atomic_load_n(&t->attached, __ATOMIC_ACQUIRE)) return;
  pthread_mutex_lock(&t->lock);
  if (!t->attached && !t->created) {
    int fs = configure_overlay(t->step, t->lower);
    t->fd = fs < 0 ? -1 : ahead_create(fs, t->flags);
    t->created = true;
    close(t->lower);
    t->lower = -1;
    if (t->fd < 0)
      fprintf(stderr, "uwrx: make the overlay of %s: %s (changes there fail with EROFS)\n", t->mount_point, strerror(errno));
  }
  if (!t->attached) {
    struct carried c = { .n = 0 };
    if (t->fd >= 0) {
      carry_below(t, &c);
      if (move_mount(t->fd, "", AT_FDCWD, t->mount_point, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        fprintf(stderr, "uwrx: attach the overlay of %s: %s (changes there fail with EROFS)\n", t->mount_point,
                strerror(errno));
      } else {
        for (size_t i = 0; i < c.n; i++)
          if (move_mount(c.fd[i], "", AT_FDCWD, c.path[i], MOVE_MOUNT_F_EMPTY_PATH) != 0)
            fprintf(stderr, "uwrx: mount %s again over the overlay of %s: %s\n", c.path[i], t->mount_point, strerror(errno));
        files_overlay_attached(t->mount_point, tid);
      }
    }
    for (size_t i = 0; i < c.n; i++) {
      close(c.fd[i]);
      free(c.path[i]);
    }
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
    __atomic_sub_fetch(&waiting, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&attached, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&t->attached, true, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&t->lock);
}

/* The trees absolute path `p` changes: the one its string names, and the one where it
 * leads through symlinks (its directory, and itself when it exists), as pid 1 sees it. */
static void upgrade_for(const char *p, pid_t tid) {
  if (!__atomic_load_n(&waiting, __ATOMIC_ACQUIRE)) return;
  struct lazy_tree *t = tree_of(p);
  if (t) upgrade(t, tid);
  uint64_t ids[2] = { mount_id_at(AT_FDCWD, p, 0), 0 };
  const char *slash = strrchr(p, '/');
  if (slash && slash != p) {
    char *dir = strndup(p, (size_t)(slash - p));
    if (dir) ids[1] = mount_id_at(AT_FDCWD, dir, 0);
    free(dir);
  }
  for (size_t i = 0; i < ntrees; i++)
    if (trees[i].bind_id && (ids[0] == trees[i].bind_id || ids[1] == trees[i].bind_id)) upgrade(&trees[i], tid);
}

void lazy_before_change(const char *path, pid_t tid) { upgrade_for(path, tid); }

/* Descriptor `fd` of the caller: when it still names a file in the bind of an attached
 * tree, it is replaced by the same file opened in the overlay. */
static void refresh(struct notif_ctx *ctx, int fd) {
  if (fd < 0 || !__atomic_load_n(&attached, __ATOMIC_ACQUIRE)) return;
  pid_t pid = ctx->req->pid;
  char *p = target_dir_path(pid, fd);
  struct lazy_tree *t = p && p[0] == '/' ? tree_of(p) : NULL;
  if (!t || !__atomic_load_n(&t->attached, __ATOMIC_ACQUIRE)) {
    free(p);
    return;
  }
  char info[512], what[32], where[PATH_MAX_TARGET];
  snprintf(what, sizeof what, "fdinfo/%d", fd);
  unsigned long long pos = 0, mnt = 0;
  unsigned flags = 0;
  const char *s;
  bool ok = proc_read(pid, what, info, sizeof info) && (s = strstr(info, "pos:")) && sscanf(s, "pos: %llu", &pos) == 1 &&
            (s = strstr(info, "flags:")) && sscanf(s, "flags: %o", &flags) == 1 && (s = strstr(info, "mnt_id:")) &&
            sscanf(s, "mnt_id: %llu", &mnt) == 1;
  int n = snprintf(where, sizeof where, "/proc/%d/root%s", pid, t->mount_point);
  if (!ok || n < 0 || (size_t)n >= sizeof where || mnt == mount_id_at(AT_FDCWD, where, 0)) {
    free(p);
    return;
  }
  n = snprintf(where, sizeof where, "/proc/%d/root%s", pid, p);
  free(p);
  if (n < 0 || (size_t)n >= sizeof where) return;
  int mine = open(where, (int)(flags & ~(unsigned)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) | O_CLOEXEC);
  if (mine < 0) return;
  struct stat st;
  if (pos && fstat(mine, &st) == 0 && S_ISREG(st.st_mode)) lseek(mine, (off_t)pos, SEEK_SET);
  struct seccomp_notif_addfd addfd = { .id = ctx->req->id, .flags = SECCOMP_ADDFD_FLAG_SETFD, .srcfd = (uint32_t)mine,
                                       .newfd = (uint32_t)fd, .newfd_flags = flags & O_CLOEXEC };
  ioctl(g.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
  close(mine);
}

/* A descriptor the call acts through: its tree upgraded, then the descriptor refreshed. */
static void through_fd(struct notif_ctx *ctx, int fd) {
  if (fd < 0) return;
  if (__atomic_load_n(&waiting, __ATOMIC_ACQUIRE)) {
    char *p = target_dir_path(ctx->req->pid, fd);
    if (p && p[0] == '/') upgrade_for(p, ctx->req->pid);
    free(p);
  }
  refresh(ctx, fd);
}

static void through_path(struct notif_ctx *ctx, const struct path_arg *a) {
  if (__atomic_load_n(&waiting, __ATOMIC_ACQUIRE)) {
    char *p = target_path_at(ctx, a->dirfd, a->addr);
    if (p) upgrade_for(p, ctx->req->pid);
    free(p);
  }
  if (a->dirfd != AT_FDCWD) refresh(ctx, a->dirfd);
}

static bool changes(uint64_t flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) || (flags & O_TMPFILE) == O_TMPFILE;
}

static enum verdict on_change(struct notif_ctx *ctx) {
  if (!__atomic_load_n(&waiting, __ATOMIC_ACQUIRE) && !__atomic_load_n(&attached, __ATOMIC_ACQUIRE))
    return VERDICT_CONTINUE;
  const __u64 *args = ctx->req->data.args;
  int nr = ctx->req->data.nr;
  switch (nr) {
  case SYS_fchdir:
  case SYS_fsetxattr:
  case SYS_fremovexattr:
    through_fd(ctx, (int)(uint32_t)args[0]);
    return VERDICT_CONTINUE;
  case SYS_faccessat:
  case SYS_faccessat2: {
    struct path_arg a = { .dirfd = (int)(uint32_t)args[0], .addr = args[1] };
    through_path(ctx, &a);
    return VERDICT_CONTINUE;
  }
  case SYS_mount:
  case SYS_mount_setattr:
  case SYS_move_mount:
  case SYS_umount2:
  case SYS_pivot_root:
  case SYS_chroot:
    /* mounts changed (a propagation made private cuts the trees off from the overlays
     * attached later) or another root: every tree gets its overlay first */
    for (size_t i = 0; i < ntrees && __atomic_load_n(&waiting, __ATOMIC_ACQUIRE); i++) upgrade(&trees[i], ctx->req->pid);
    return VERDICT_CONTINUE;
  case SYS_bind: {
    /* a unix socket's file (an abstract one, NUL first, has none) */
    sa_family_t family = 0;
    char first = 0;
    if (args[2] > sizeof family + 1 && target_read(ctx, args[1], &family, sizeof family) && family == AF_UNIX &&
        target_read(ctx, args[1] + sizeof family, &first, 1) && first) {
      struct path_arg a = { .dirfd = AT_FDCWD, .addr = args[1] + sizeof family };
      through_path(ctx, &a);
    }
    return VERDICT_CONTINUE;
  }
  case SYS_access:
  case SYS_chdir:
  case SYS_setxattr:
  case SYS_lsetxattr:
  case SYS_removexattr:
  case SYS_lremovexattr: {
    struct path_arg a = { .dirfd = AT_FDCWD, .addr = args[0] };
    through_path(ctx, &a);
    return VERDICT_CONTINUE;
  }
  default:
    break;
  }
  struct call_args a;
  if (!decode_call(ctx, &a)) return VERDICT_CONTINUE;
  bool open = nr == SYS_open || nr == SYS_openat || nr == SYS_openat2 || nr == SYS_creat;
  if (open && !changes(a.flags)) return VERDICT_CONTINUE;
  if (a.fd >= 0) through_fd(ctx, a.fd);
  if (a.has_path) {
    /* utimensat(fd, NULL, ...) and AT_EMPTY_PATH act on the dirfd's own file */
    if (a.path.addr) through_path(ctx, &a.path);
    else through_fd(ctx, a.path.dirfd);
  }
  if (a.has_path2) through_path(ctx, &a.path2);
  return VERDICT_CONTINUE;
}

static bool lazy_on(const struct plan *plan) {
  for (size_t i = 0; i < plan->nsteps; i++)
    if (!strcmp(plan->steps[i].op, OP_LAZY)) return true;
  return false;
}

/* access(2) for writing: EROFS in a bind where the overlay allows the write (the
 * in-process recorder asks again past its gate on EROFS, recorder.c do_faccessat) */
static const struct arg_match write_access_1 = { .arg = 1, .count = 1, .test = ARG_ANY_BIT, .values = { W_OK } };
static const struct arg_match write_access_2 = { .arg = 2, .count = 1, .test = ARG_ANY_BIT, .values = { W_OK } };

static const struct subscription lazy_calls[] = {
  { SYS_access, on_change, &write_access_1, NULL },
  { SYS_faccessat, on_change, &write_access_2, NULL },
  { SYS_faccessat2, on_change, &write_access_2, NULL },
  { SYS_open, on_change, NULL, NULL },
  { SYS_openat, on_change, NULL, NULL },
  { SYS_openat2, on_change, NULL, NULL },
  { SYS_creat, on_change, NULL, NULL },
  { SYS_chdir, on_change, NULL, NULL },
  { SYS_fchdir, on_change, NULL, NULL },
  { SYS_unlink, on_change, NULL, NULL },
  { SYS_unlinkat, on_change, NULL, NULL },
  { SYS_rename, on_change, NULL, NULL },
  { SYS_renameat, on_change, NULL, NULL },
  { SYS_renameat2, on_change, NULL, NULL },
  { SYS_mkdir, on_change, NULL, NULL },
  { SYS_mkdirat, on_change, NULL, NULL },
  { SYS_rmdir, on_change, NULL, NULL },
  { SYS_link, on_change, NULL, NULL },
  { SYS_linkat, on_change, NULL, NULL },
  { SYS_symlink, on_change, NULL, NULL },
  { SYS_symlinkat, on_change, NULL, NULL },
  { SYS_chmod, on_change, NULL, NULL },
  { SYS_fchmod, on_change, NULL, NULL },
  { SYS_fchmodat, on_change, NULL, NULL },
  { SYS_fchmodat2, on_change, NULL, NULL },
  { SYS_chown, on_change, NULL, NULL },
  { SYS_fchown, on_change, NULL, NULL },
  { SYS_lchown, on_change, NULL, NULL },
  { SYS_fchownat, on_change, NULL, NULL },
  { SYS_truncate, on_change, NULL, NULL },
  { SYS_ftruncate, on_change, NULL, NULL },
  { SYS_utime, on_change, NULL, NULL },
  { SYS_utimes, on_change, NULL, NULL },
  { SYS_utimensat, on_change, NULL, NULL },
  { SYS_futimesat, on_change, NULL, NULL },
  { SYS_mknod, on_change, NULL, NULL },
  { SYS_mknodat, on_change, NULL, NULL },
  { SYS_bind, on_change, NULL, NULL },
  { SYS_mount, on_change, NULL, NULL },
  { SYS_mount_setattr, on_change, NULL, NULL },
  { SYS_move_mount, on_change, NULL, NULL },
  { SYS_umount2, on_change, NULL, NULL },
  { SYS_pivot_root, on_change, NULL, NULL },
  { SYS_chroot, on_change, NULL, NULL },
  { SYS_setxattr, on_change, NULL, NULL },
  { SYS_lsetxattr, on_change, NULL, NULL },
  { SYS_fsetxattr, on_change, NULL, NULL },
  { SYS_removexattr, on_change, NULL, NULL },
  { SYS_lremovexattr, on_change, NULL, NULL },
  { SYS_fremovexattr, on_change, NULL, NULL },
};

const struct feature feature_lazy = {
  .name = "lazy",
  .enabled = lazy_on,
  .subs = SUBSCRIPTIONS(lazy_calls),
};
