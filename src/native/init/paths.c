/* Path arguments as the target sees them: read from its memory, made absolute against
 * its cwd or a directory fd, lexically normalised. Handlers run in pid 1, which shares
 * the sandbox's mount namespace and root, so the result names the same file for both. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

int target_mem(struct notif_ctx *ctx) {
  if (ctx->memfd < 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", ctx->req->pid);
    ctx->memfd = open(path, O_RDONLY | O_CLOEXEC);
  }
  return ctx->memfd;
}

/* Collapses "//", "/./" and "/x/../" in place; ".." at the root stays at the root. */
static void normalize(char *path) {
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
  char link[64];
  if (dirfd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%d/cwd", tid);
  else snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
  char buf[PATH_MAX_TARGET];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n < 0) return NULL;
  buf[n] = 0;
  return strdup(buf);
}

char *target_path_at(struct notif_ctx *ctx, int dirfd, uint64_t addr) {
  int memfd = target_mem(ctx);
  if (memfd < 0) return NULL;
  char *raw = target_read_string(memfd, addr, PATH_MAX_TARGET);
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
  normalize(full);
  return full;
}
