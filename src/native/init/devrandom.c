/* Deterministic /dev/urandom and /dev/random: a tiny FUSE server per device whose root
 * is a regular file, mounted over the device node inside the sandbox. Every open gets its
 * own endless stream (chosen by the opener through a callback), and with direct I/O each
 * read is answered with exactly the bytes asked for, so `dd bs=1M` reads the same blocks
 * on every run (a pipe would return short reads that depend on scheduling). */
#include "devrandom.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Largest read the kernel sends in one request: max_pages (32) * 4 KiB. */
#define DEVRANDOM_MAX_READ (32 * 4096)
#define DEVRANDOM_MAX_OPEN 4096
#define ROOT_NODE 1

struct open_stream {
  bool used;
  uwrx_stream stream;
};

struct devrandom {
  int fd;
  int dev_random;
  devrandom_stream_fn stream_for;
  void *arg;
  pthread_t thread;
  /* fh = index + 1; a small table because an open stream costs 140 bytes. */
  struct open_stream *opens;
  unsigned nopens;
};

static int reply(int fd, uint64_t unique, int error, const void *data, size_t len) {
  struct fuse_out_header out = {.len = (uint32_t)(sizeof out + len), .error = -error, .unique = unique};
  struct iovec iov[2] = {{&out, sizeof out}, {(void *)data, len}};
  ssize_t n = writev(fd, iov, len ? 2 : 1);
  return n < 0 ? -errno : 0;
}

static void fill_attr(struct fuse_attr *a) {
  memset(a, 0, sizeof *a);
  a->ino = ROOT_NODE;
  a->mode = S_IFREG | 0444;
  a->nlink = 1;
  a->uid = getuid();
  a->gid = getgid();
  a->blksize = 4096;
}

static int alloc_open(struct devrandom *d) {
  for (unsigned i = 0; i < d->nopens; i++)
    if (!d->opens[i].used) return (int)i;
  if (d->nopens == DEVRANDOM_MAX_OPEN) return -1;
  unsigned n = d->nopens ? d->nopens * 2 : 16;
  if (n > DEVRANDOM_MAX_OPEN) n = DEVRANDOM_MAX_OPEN;
  struct open_stream *grown = realloc(d->opens, n * sizeof *grown);
  if (!grown) return -1;
  memset(grown + d->nopens, 0, (n - d->nopens) * sizeof *grown);
  d->opens = grown;
  unsigned first = d->nopens;
  d->nopens = n;
  return (int)first;
}

static struct open_stream *stream_of(struct devrandom *d, uint64_t fh) {
  if (fh == 0 || fh > d->nopens || !d->opens[fh - 1].used) return NULL;
  return &d->opens[fh - 1];
}

static void *serve(void *arg) {
  struct devrandom *d = arg;
  size_t bufsize = DEVRANDOM_MAX_READ + 4096;
  uint8_t *buf = malloc(bufsize);
  uint8_t *data = malloc(DEVRANDOM_MAX_READ);
  if (!buf || !data) return NULL;
  for (;;) {
    ssize_t n = read(d->fd, buf, bufsize);
    if (n < 0) {
      if (errno == EINTR || errno == ENOENT || errno == EAGAIN) continue; /* ENOENT: interrupted request */
      break;                                                           /* ENODEV: unmounted */
    }
    if ((size_t)n < sizeof(struct fuse_in_header)) continue;
    const struct fuse_in_header *in = (const void *)buf;
    const void *body = buf + sizeof *in;
    switch (in->opcode) {
    case FUSE_INIT: {
      const struct fuse_init_in *init = body;
      struct fuse_init_out out = {0};
      out.major = FUSE_KERNEL_VERSION;
      out.minor = init->minor < FUSE_KERNEL_MINOR_VERSION ? init->minor : FUSE_KERNEL_MINOR_VERSION;
      out.max_readahead = 0;
      out.flags = (init->flags & FUSE_MAX_PAGES);
      out.max_write = 4096;
      out.max_pages = DEVRANDOM_MAX_READ / 4096;
      out.time_gran = 1;
      reply(d->fd, in->unique, 0, &out, sizeof out);
      break;
    }
    case FUSE_GETATTR: {
      struct fuse_attr_out out = {.attr_valid = 86400};
      fill_attr(&out.attr);
      reply(d->fd, in->unique, 0, &out, sizeof out);
      break;
    }
    case FUSE_OPEN: {
      const struct fuse_open_in *oi = body;
      if ((oi->flags & O_ACCMODE) != O_RDONLY) {
        reply(d->fd, in->unique, EACCES, NULL, 0);
        break;
      }
      int slot = alloc_open(d);
      if (slot < 0) {
        reply(d->fd, in->unique, EMFILE, NULL, 0);
        break;
      }
      d->opens[slot].used = true;
      d->stream_for((pid_t)in->pid, d->dev_random, &d->opens[slot].stream, d->arg);
      struct fuse_open_out out = {.fh = (uint64_t)slot + 1,
                                  .open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM};
      reply(d->fd, in->unique, 0, &out, sizeof out);
      break;
    }
    case FUSE_READ: {
      const struct fuse_read_in *ri = body;
      struct open_stream *s = stream_of(d, ri->fh);
      if (!s) {
        reply(d->fd, in->unique, EBADF, NULL, 0);
        break;
      }
      size_t want = ri->size < DEVRANDOM_MAX_READ ? ri->size : DEVRANDOM_MAX_READ;
      uwrx_stream_read(&s->stream, data, want);
      reply(d->fd, in->unique, 0, data, want);
      break;
    }
    case FUSE_RELEASE: {
      const struct fuse_release_in *rel = body;
      struct open_stream *s = stream_of(d, rel->fh);
      if (s) s->used = false;
      reply(d->fd, in->unique, 0, NULL, 0);
      break;
    }
    case FUSE_FLUSH:
    case FUSE_FSYNC:
      reply(d->fd, in->unique, 0, NULL, 0);
      break;
    case FUSE_INTERRUPT:
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
      break; /* no reply expected */
    case FUSE_DESTROY:
      reply(d->fd, in->unique, 0, NULL, 0);
      goto out;
    case FUSE_LOOKUP:
      reply(d->fd, in->unique, ENOENT, NULL, 0);
      break;
    default:
      reply(d->fd, in->unique, ENOSYS, NULL, 0);
      break;
    }
  }
out:
  free(buf);
  free(data);
  return NULL;
}

int devrandom_open_device(void) {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int devrandom_mount(int fuse_fd, const char *target, int dev_random, devrandom_stream_fn stream_for, void *arg) {
  struct devrandom *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  d->fd = fuse_fd;
  d->dev_random = dev_random;
  d->stream_for = stream_for;
  d->arg = arg;
  char opts[128];
  snprintf(opts, sizeof opts, "fd=%d,rootmode=100444,user_id=%u,group_id=%u,allow_other", fuse_fd,
           (unsigned)getuid(), (unsigned)getgid());
  if (mount(dev_random ? "uwrx-random" : "uwrx-urandom", target, "fuse", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            opts) != 0) {
    int err = errno;
    free(d);
    return -err;
  }
  int rc = pthread_create(&d->thread, NULL, serve, d);
  if (rc != 0) {
    umount2(target, MNT_DETACH);
    free(d);
    return -rc;
  }
  pthread_detach(d->thread);
  return 0;
}
