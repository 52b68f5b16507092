/* Path arguments as the target sees them: read from its memory, made absolute against
 * its cwd or a directory fd, lexically normalised. Handlers run in pid 1, which shares
 * the sandbox's mount namespace and root, so the result names the same file for both. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "init.h"

/* Decimal digits of `v` at `p`, which has room; returns the end. */
static char *put_uint(char *p, unsigned v) {
  char digits[10];
  size_t n = 0;
  do digits[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n) *p++ = digits[--n];
  return p;
}

const char *proc_path(char *buf, pid_t pid, const char *what, int fd) {
  /* "/proc/" 6 + pid 10 + "/" 1 + "/" 1 + fd 10 + NUL 1: what gets the rest */
  enum { WHAT_MAX = PROC_PATH_MAX - 29 };
  char *p = buf;
  memcpy(p, "/proc/", 6);
  p = put_uint(p + 6, (unsigned)pid);
  *p++ = '/';
  size_t len = strnlen(what, WHAT_MAX);
  memcpy(p, what, len);
  p += len;
  if (fd >= 0) {
    *p++ = '/';
    p = put_uint(p, (unsigned)fd);
  }
  *p = 0;
  return buf;
}

int target_mem(struct notif_ctx *ctx) {
  if (ctx->memfd < 0) {
    char path[PROC_PATH_MAX];
    ctx->memfd = open(proc_path(path, (pid_t)ctx->req->pid, "mem", -1), O_RDONLY | O_CLOEXEC);
  }
  return ctx->memfd;
}

/* Reads up to `len` bytes of the target at `addr`; the two ways differ only in this. */
typedef ssize_t (*chunk_reader)(const void *source, void *buf, size_t len, uint64_t addr);

static ssize_t read_by_vm(const void *source, void *buf, size_t len, uint64_t addr) {
  struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
  return process_vm_readv(*(const pid_t *)source, &local, 1, &remote, 1, 0);
}

static ssize_t read_by_mem(const void *source, void *buf, size_t len, uint64_t addr) {
  return pread(*(const int *)source, buf, len, (off_t)addr);
}

/* A NUL-terminated string, read one page at a time: the next page may be unmapped. */
static char *read_string(chunk_reader read_chunk, const void *source, uint64_t addr, size_t max) {
  size_t cap = 256, len = 0;
  char *buf = malloc(cap);
  while (buf && len < max) {
    size_t chunk = 4096 - ((addr + len) & 4095);
    if (chunk > max - len) chunk = max - len;
    if (len + chunk + 1 > cap) {
      while (len + chunk + 1 > cap) cap *= 2;
      char *grown = realloc(buf, cap);
      if (!grown) break;
      buf = grown;
    }
    ssize_t n = read_chunk(source, buf + len, chunk, addr + len);
    if (n <= 0) break;
    if (memchr(buf + len, 0, (size_t)n)) return buf;
    len += (size_t)n;
  }
  free(buf);
  return NULL;
}

char *target_read_string(int memfd, uint64_t addr, size_t max) {
  return read_string(read_by_mem, &memfd, addr, max);
}

ssize_t target_read_whole(struct notif_ctx *ctx, void *buf, size_t len, uint64_t addr) {
  struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
  if (process_vm_readv((pid_t)ctx->req->pid, &local, 1, &remote, 1, 0) == (ssize_t)len) return (ssize_t)len;
  int memfd = target_mem(ctx);
  return memfd < 0 ? -1 : pread(memfd, buf, len, (off_t)addr);
}

static ssize_t read_whole(const void *source, void *buf, size_t len, uint64_t addr) {
  return target_read_whole((struct notif_ctx *)source, buf, len, addr);
}

char *target_read_string_whole(struct notif_ctx *ctx, uint64_t addr, size_t max) {
  return read_string(read_whole, ctx, addr, max);
}

char *target_string(struct notif_ctx *ctx, uint64_t addr, size_t max) {
  pid_t tid = (pid_t)ctx->req->pid;
  char *s = read_string(read_by_vm, &tid, addr, max);
  if (s) return s;
  /* no ptrace access (or a page that readv refuses): through /proc/<tid>/mem */
  int memfd = target_mem(ctx);
  return memfd < 0 ? NULL : target_read_string(memfd, addr, max);
}

/* Collapses "//", "/./" and "/x/../" in place; ".." at the root stays at the root. */
void path_normalize(char *path) {
  char *out = path;
  const char *in = path;
  while (*in) {
    while (*in == '/') in++;
    if (!*in) break;
    const char *end = strchrnul(in, '/');
    size_t len = (size_t)(end - in);
    if (len == 1 && in[0] == '.') {
      /* skip */
    } else if (len == 2 && in[0] == '.' && in[1] == '.') {
      while (out > path && out[-1] != '/') out--;
      if (out > path) out--;
    } else {
      *out++ = '/';
      memmove(out, in, len);
      out += len;
    }
    in = end;
  }
  if (out == path) *out++ = '/';
  *out = 0;
}

char *target_dir_path(pid_t tid, int dirfd) {
  char link[PROC_PATH_MAX];
  if (dirfd == AT_FDCWD) proc_path(link, tid, "cwd", -1);
  else proc_path(link, tid, "fd", dirfd);
  char buf[PATH_MAX_TARGET];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n < 0) return NULL;
  buf[n] = 0;
  return strdup(buf);
}

/* target_path_at without the notification's memory. */
static char *target_path_read(struct notif_ctx *ctx, int dirfd, uint64_t addr) {
  char *raw = target_string(ctx, addr, PATH_MAX_TARGET);
  /* the memory read is only meaningful if the target still waits in this call */
  if (!raw || !notif_id_valid(ctx->req->id)) {
    free(raw);
    errno = ESRCH;
    return NULL;
  }
  char *full;
  if (raw[0] == '/') full = raw;
  else {
    char *base = target_dir_path(ctx->req->pid, dirfd);
    if (!base) {
      free(raw);
      return NULL;
    }
    size_t blen = strlen(base), rlen = strlen(raw);
    full = malloc(blen + rlen + 2);
    if (full) {
      memcpy(full, base, blen);
      full[blen] = '/';
      memcpy(full + blen + 1, raw, rlen + 1);
    }
    free(base);
    free(raw);
    if (!full) return NULL;
  }
  path_normalize(full);
  return full;
}

char *target_path_at(struct notif_ctx *ctx, int dirfd, uint64_t addr) {
  size_t slot = 0;
  for (; slot < sizeof ctx->paths / sizeof ctx->paths[0] && ctx->paths[slot].path; slot++)
    if (ctx->paths[slot].addr == addr && ctx->paths[slot].dirfd == dirfd) return strdup(ctx->paths[slot].path);
  char *full = target_path_read(ctx, dirfd, addr);
  if (full && slot < sizeof ctx->paths / sizeof ctx->paths[0] && (ctx->paths[slot].path = strdup(full))) {
    ctx->paths[slot].addr = addr;
    ctx->paths[slot].dirfd = dirfd;
  }
  return full;
}

void target_paths_forget(struct notif_ctx *ctx) {
  for (size_t i = 0; i < sizeof ctx->paths / sizeof ctx->paths[0]; i++) {
    free(ctx->paths[i].path);
    ctx->paths[i].path = NULL;
  }
}

bool proc_fd_stat(pid_t tid, int fd, struct stat *st) {
  char link[PROC_PATH_MAX];
  return stat(proc_path(link, tid, "fd", fd), st) == 0;
}

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int proc_getfd(int pidfd, int fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

bool proc_read(pid_t tid, const char *what, char *buf, size_t size) {
  char path[PROC_PATH_MAX];
  int fd = open(proc_path(path, tid, what, -1), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

const char *proc_stat_field(const char *stat, int n) {
  const char *c = strrchr(stat, ')');
  if (!c || n < 3) return NULL;
  /* field 3 (state) follows ") " */
  for (int field = 2; *c; c++)
    if (*c == ' ' && ++field == n) return c + 1;
  return NULL;
}
