/* Syscall arguments by meaning rather than by position: one layout per call, one
 * decoder for every handler. A handler asks for `a.path` or `a.fd` and never needs to
 * know that renameat keeps its second path in args[3]. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "init.h"

/* How the last component of a call's path is resolved. */
enum follow_rule {
  FOLLOW_ALWAYS,      /* stat, chmod, truncate ... */
  FOLLOW_NEVER,       /* lstat, unlink, rename, mkdir ... */
  FOLLOW_AT_FLAGS,    /* unless AT_SYMLINK_NOFOLLOW is in the flags */
  FOLLOW_OPEN,        /* unless O_NOFOLLOW, or O_CREAT|O_EXCL (which never follows) */
};

#define NONE -1

/* Argument positions of one call; NONE where it has no such argument. */
struct layout {
  int nr;
  int8_t dirfd, path, dirfd2, path2, fd, flags, mode, owner, length, buf, buf2, extra;
  enum follow_rule follow;
  uint32_t fixed_flags; /* flags implied by the call itself (lstat, creat) */
};

/*                    dirfd path dirfd2 path2 fd   flags mode owner length buf  buf2 extra */
static const struct layout layouts[] = {
  /* opens */
  { SYS_open,        NONE, 0, NONE, NONE, NONE, 1, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_OPEN, 0 },
  { SYS_creat,       NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_OPEN,
    O_CREAT | O_WRONLY | O_TRUNC },
  { SYS_openat,      0, 1, NONE, NONE, NONE, 2, 3, NONE, NONE, NONE, NONE, NONE, FOLLOW_OPEN, 0 },
  /* openat2: flags and mode live in struct open_how at buf (size in extra) */
  { SYS_openat2,     0, 1, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 2, NONE, 3, FOLLOW_OPEN, 0 },
  /* the stat family: buf is the result */
  { SYS_stat,        NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_lstat,       NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, FOLLOW_NEVER,
    AT_SYMLINK_NOFOLLOW },
  { SYS_fstat,       NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_newfstatat,  0, 1, NONE, NONE, NONE, 3, NONE, NONE, NONE, 2, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  /* statx: extra is the mask */
  { SYS_statx,       0, 1, NONE, NONE, NONE, 2, NONE, NONE, NONE, 4, NONE, 3, FOLLOW_AT_FLAGS, 0 },
  /* access checks: mode is the access mode */
  { SYS_access,      NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_faccessat,   0, 1, NONE, NONE, NONE, NONE, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_faccessat2,  0, 1, NONE, NONE, NONE, 3, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  /* removals, renames, creations */
  { SYS_unlink,      NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_unlinkat,    0, 1, NONE, NONE, NONE, 2, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_rmdir,       NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_rename,      NONE, 0, NONE, 1, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_renameat,    0, 1, 2, 3, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_renameat2,   0, 1, 2, 3, NONE, 4, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_mkdir,       NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_mkdirat,     0, 1, NONE, NONE, NONE, NONE, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  /* link and symlink: `path` is the new name (what is created), path2 the old one */
  { SYS_link,        NONE, 1, NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_linkat,      2, 3, 0, 1, NONE, 4, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_symlink,     NONE, 1, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_symlinkat,   1, 2, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_mknod,       NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_mknodat,     0, 1, NONE, NONE, NONE, NONE, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  /* attributes: owner is uid, owner + 1 gid */
  { SYS_chmod,       NONE, 0, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_fchmod,      NONE, NONE, NONE, NONE, 0, NONE, 1, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_fchmodat,    0, 1, NONE, NONE, NONE, NONE, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_fchmodat2,   0, 1, NONE, NONE, NONE, 3, 2, NONE, NONE, NONE, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  { SYS_chown,       NONE, 0, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_fchown,      NONE, NONE, NONE, NONE, 0, NONE, NONE, 1, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_lchown,      NONE, 0, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, NONE, FOLLOW_NEVER, 0 },
  { SYS_fchownat,    0, 1, NONE, NONE, NONE, 4, NONE, 2, NONE, NONE, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  { SYS_truncate,    NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_ftruncate,   NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 1, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_utime,       NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_utimes,      NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_futimesat,   0, 1, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_ALWAYS, 0 },
  /* utimensat(fd, NULL, times, 0) sets the times of fd itself (see decode_call) */
  { SYS_utimensat,   0, 1, NONE, NONE, NONE, 3, NONE, NONE, NONE, NONE, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  /* processes: buf is argv; extra the exit code */
  { SYS_execve,      NONE, 0, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_execveat,    0, 1, NONE, NONE, NONE, 4, NONE, NONE, NONE, 2, NONE, NONE, FOLLOW_AT_FLAGS, 0 },
  { SYS_exit_group,  NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 0, FOLLOW_ALWAYS, 0 },
  /* output: buf and length, or an iovec array (buf) and its count (length) */
  { SYS_write,       NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_pwrite64,    NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_writev,      NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_pwritev,     NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_pwritev2,    NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  /* connect: the address and its length */
  { SYS_connect,     NONE, NONE, NONE, NONE, 0, NONE, NONE, NONE, 2, 1, NONE, NONE, FOLLOW_ALWAYS, 0 },
  /* randomness and clocks: extra is the clock id */
  { SYS_getrandom,   NONE, NONE, NONE, NONE, NONE, 2, NONE, NONE, 1, 0, NONE, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_clock_gettime, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 1, NONE, 0, FOLLOW_ALWAYS, 0 },
  { SYS_gettimeofday, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 0, 1, NONE, FOLLOW_ALWAYS, 0 },
  { SYS_time,        NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, 0, NONE, NONE, FOLLOW_ALWAYS, 0 },
};

#define NLAYOUTS (sizeof layouts / sizeof layouts[0])

static const struct layout *layout_of(int nr) {
  static const struct layout *by_nr[MAX_SYSCALL];
  static bool ready;
  /* filled on first use; the table is constant, so a race writes the same values */
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    for (size_t i = 0; i < NLAYOUTS; i++) by_nr[layouts[i].nr] = &layouts[i];
    __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
  }
  return nr >= 0 && nr < MAX_SYSCALL ? by_nr[nr] : NULL;
}

/* An int argument: the kernel reads only the low 32 bits. */
static int int_arg(const __u64 *a, int i) { return (int)(uint32_t)a[i]; }

static bool follows(enum follow_rule rule, uint64_t flags) {
  switch (rule) {
  case FOLLOW_ALWAYS: return true;
  case FOLLOW_NEVER: return false;
  case FOLLOW_AT_FLAGS: return !(flags & AT_SYMLINK_NOFOLLOW);
  case FOLLOW_OPEN: return !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
  }
  return true;
}

bool decode_call(struct notif_ctx *ctx, struct call_args *out) {
  const struct seccomp_notif *req = ctx->req;
  const __u64 *a = req->data.args;
  const struct layout *l = layout_of(req->data.nr);
  memset(out, 0, sizeof *out);
  out->path.dirfd = out->path2.dirfd = AT_FDCWD;
  out->fd = -1;
  if (!l) return false;
  if (l->dirfd != NONE) out->path.dirfd = int_arg(a, l->dirfd);
  if (l->path != NONE) out->path.addr = a[l->path], out->has_path = true;
  if (l->dirfd2 != NONE) out->path2.dirfd = int_arg(a, l->dirfd2);
  if (l->path2 != NONE) out->path2.addr = a[l->path2], out->has_path2 = true;
  if (l->fd != NONE) out->fd = int_arg(a, l->fd);
  out->flags = l->fixed_flags;
  if (l->flags != NONE) out->flags |= a[l->flags] & 0xffffffffu;
  if (l->mode != NONE) out->mode = (uint32_t)a[l->mode];
  if (l->owner != NONE) out->uid = (uint32_t)a[l->owner], out->gid = (uint32_t)a[l->owner + 1];
  if (l->length != NONE) out->length = a[l->length];
  if (l->buf != NONE) out->buf = a[l->buf];
  if (l->buf2 != NONE) out->buf2 = a[l->buf2];
  if (l->extra != NONE) out->extra = a[l->extra];
  if (req->data.nr == SYS_openat2) {
    /* struct open_how {u64 flags, mode, resolve}: the kernel refuses a size below its
     * first version (24 bytes), so a shorter one fails on its own */
    struct open_how how;
    memset(&how, 0, sizeof how);
    if (out->extra < sizeof how) return false;
    struct iovec local = { &how, sizeof how.flags + sizeof how.mode };
    struct iovec remote = { (void *)(uintptr_t)out->buf, local.iov_len };
    if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)local.iov_len) {
      int memfd = target_mem(ctx);
      if (memfd < 0 || pread(memfd, &how, local.iov_len, (off_t)out->buf) != (ssize_t)local.iov_len) return false;
    }
    out->flags = how.flags & 0xffffffffu;
    out->mode = (uint32_t)how.mode;
  }
  if (req->data.nr == SYS_utimensat && out->path.addr == 0) {
    /* a NULL path: the times of the file open at dirfd */
    out->fd = out->path.dirfd;
    out->has_path = false;
  }
  out->path.follow = follows(l->follow, out->flags);
  out->path.empty_ok = (out->flags & AT_EMPTY_PATH) != 0 && l->flags != NONE && l->follow == FOLLOW_AT_FLAGS;
  out->path2.follow = req->data.nr == SYS_linkat && (out->flags & AT_SYMLINK_FOLLOW);
  return true;
}
