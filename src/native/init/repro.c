/* Reproducibility handlers (DESIGN.md 3.4 and 4, docs/reproducibility.md): getrandom and
 * AT_RANDOM from the hierarchical PRNG, clock reads from deterministic time, the shim's
 * control call, and deterministic /dev/urandom and /dev/random. All answered here, in
 * the handler thread, without a round trip to Node. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devrandom.h"
#include "init.h"
#include "uwrx_control.h"
#include "uwrx_recorder.h"

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

/* Largest getrandom answer: the kernel caps a call at 32 MiB - 1 as well, and callers
 * loop on short counts. Generated and written in chunks so memory stays small. */
#define GETRANDOM_MAX ((32u << 20) - 1)
#define CHUNK 65536

static struct repro_config config;

int repro_parse_plan_key(struct mp_reader *r, const char *k, uint32_t klen, struct repro_config *c) {
  int64_t v;
  if (mp_key_is(k, klen, "seed")) {
    const char *hex;
    uint32_t len;
    if (!mp_read_bytes(r, &hex, &len) || uwrx_seed_parse_hex(hex, len, &c->seed) != 0) return 0;
    c->enabled = true;
  } else if (mp_key_is(k, klen, "t0Ns")) {
    /* a decimal string: ns since the epoch do not fit a double */
    char *text;
    if (!mp_read_strdup(r, &text)) return 0;
    char *end;
    errno = 0;
    long long t0 = strtoll(text, &end, 10);
    bool ok = errno == 0 && end != text && *end == 0;
    free(text);
    if (!ok) return 0;
    c->time.t0_ns = t0;
  } else if (mp_key_is(k, klen, "timeMode")) {
    if (!mp_read_int(r, &v) || v < UWRX_TIME_ADVANCING || v > UWRX_TIME_REAL) return 0;
    c->time.mode = (int)v;
  } else if (mp_key_is(k, klen, "aslr")) {
    if (!mp_read_bool(r, &c->aslr)) return 0;
  } else if (mp_key_is(k, klen, "inProcessWaits")) {
    bool in_process;
    if (!mp_read_bool(r, &in_process)) return 0;
    c->notified_waits = !in_process;
  } else if (mp_key_is(k, klen, "timeStepNs")) {
    if (!mp_read_int(r, &v) || v < 0) return 0;
    c->time.step_ns = v;
  } else {
    return -1;
  }
  return 1;
}

void repro_configure(const struct repro_config *c) {
  config = *c;
  config.time.wall_offset_ns = files_wall_offset_ns();
  if (config.time.step_ns == 0) config.time.step_ns = UWRX_TIME_DEFAULT_STEP_NS;
  /* without a seed (an old plan) time passes through too: nothing to be reproducible with */
  if (!config.enabled) config.time.mode = UWRX_TIME_REAL;
}

const struct repro_config *repro_config_get(void) { return &config; }

/* The process seed derives from the parent's seed and the child's ordinal among the
 * parent's children rather than its logical pid: logical pids follow the order in which
 * processes are first seen, which differs between runs when siblings race. */
static void repro_spawned(struct proc *p, struct proc *parent) {
  const uwrx_seed *seed = parent ? &parent->repro.rng.seed : &config.seed;
  uwrx_proc_rng_init(&p->repro.rng, seed, p->ordinal);
}

/* ---- target memory ---- */

/* Writes `n` bytes at `addr` of the target; false when the address is bad or the target
 * no longer waits in this call. Every buffer written here is one the kernel itself would
 * fill (getrandom's, clock_gettime's, the AT_RANDOM bytes on the stack), so
 * process_vm_writev's rules are the kernel's: a read-only or unmapped buffer gives
 * EFAULT. It also needs no open of /proc/<tid>/mem per call, which costs more than the
 * write. The id check comes first: while the target waits in this call, its tid names it. */
bool target_write(struct notif_ctx *ctx, uint64_t addr, const void *data, size_t n) {
  if (!notif_id_valid(ctx->req->id)) return false;
  struct iovec local = { .iov_base = (void *)data, .iov_len = n };
  struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = n };
  return process_vm_writev(ctx->req->pid, &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* The id check comes after the read: the bytes mean something only if the target still
 * waited in this call while they were read. */
bool target_read(struct notif_ctx *ctx, uint64_t addr, void *out, size_t n) {
  struct iovec local = { .iov_base = out, .iov_len = n };
  struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = n };
  if (process_vm_readv(ctx->req->pid, &local, 1, &remote, 1, 0) != (ssize_t)n) return false;
  return notif_id_valid(ctx->req->id);
}

static enum verdict answer(struct notif_ctx *ctx, int64_t val, int error) {
  return notify_answer_now(ctx, val, error);
}

/* ---- getrandom ---- */

/* Ordinal of thread `tid` (not the main thread) of `p`: 1 + the number of its other
 * threads with a smaller tid, living or already given a stream. Tids grow in creation
 * order, so threads keep their ordinals however the scheduler orders their first calls
 * (the order of first calls would not). */
static uint32_t thread_ordinal(struct proc *p, pid_t tid) {
  uint32_t below = 0;
  for (struct repro_thread *t = p->repro.threads; t; t = t->next)
    if (t->has_stream && t->tid != p->tgid && t->tid < tid) below++;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", p->tgid);
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      pid_t other = (pid_t)atoi(e->d_name);
      if (other <= 0 || other == p->tgid || other >= tid) continue;
      bool counted = false;
      for (struct repro_thread *t = p->repro.threads; t && !counted; t = t->next) counted = t->has_stream && t->tid == other;
      if (!counted) below++;
    }
    closedir(d);
  }
  return below + 1;
}

/* The getrandom stream of thread `tid` of `p` (thread seed ordinal 0 for the main
 * thread). Only the calling thread uses its stream, and a thread is in one call at a
 * time, so it is read without the lock. */
struct repro_thread *repro_thread(struct proc *p, pid_t tid) {
  struct repro_thread *t;
  for (t = p->repro.threads; t; t = t->next)
    if (t->tid == tid) return t;
  if ((t = calloc(1, sizeof *t))) {
    t->tid = tid;
    t->next = p->repro.threads;
    p->repro.threads = t;
  }
  return t;
}

/* The stream of thread `t` of `p`, started when it has none yet (g.lock held). */
static uwrx_stream *started_stream(struct proc *p, struct repro_thread *t) {
  if (!t->has_stream) {
    uint32_t ordinal = t->tid == p->tgid ? 0 : thread_ordinal(p, t->tid);
    uwrx_seed seed;
    uwrx_prng_thread_seed(&p->repro.rng.seed, ordinal, &seed);
    uwrx_stream_init(&t->stream, &seed, UWRX_PRNG_GETRANDOM, 0);
    t->has_stream = true;
  }
  return &t->stream;
}

static uwrx_stream *thread_stream(struct proc *p, pid_t tid) {
  pthread_mutex_lock(&g.lock);
  /* the main thread's stream is in its recorder buffer once leased (see below) */
  struct uwrx_rec_header *h = tid == p->tgid ? p->repro.lease_hdr : NULL;
  struct repro_thread *t;
  uwrx_stream *s = h && __atomic_load_n(&h->rng_open, __ATOMIC_ACQUIRE) ? &h->rng_main
                   : (t = repro_thread(p, tid)) ? started_stream(p, t)
                                                : NULL;
  pthread_mutex_unlock(&g.lock);
  return s;
}

/* ---- random lease ----
 * The in-process recorder answers the main thread's getrandom calls from the stream in
 * its buffer's header (uwrx_recorder.h), the same stream the notification path reads:
 * handed over once, when the header is first mapped here, and read from there by both
 * paths for the rest of the process's life. */
void repro_rng_lease(struct proc *p, struct uwrx_rec_header *h) {
  if (!config.enabled || __atomic_load_n(&h->rng_open, __ATOMIC_ACQUIRE)) return;
  struct repro_thread *t = repro_thread(p, p->tgid);
  if (!t) return;
  h->rng_main = *started_stream(p, t);
  __atomic_store_n(&h->rng_open, 1u, __ATOMIC_RELEASE);
}

/* getrandom(buf, len, flags): never blocks, never short below 32 MiB. */
static enum verdict on_getrandom(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct call_args a;
  if (!config.enabled || !ctx->proc || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  uint64_t addr = a.buf;
  size_t len = (size_t)a.length;
  unsigned flags = (unsigned)a.flags;
  if ((flags & ~(unsigned)(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) ||
      (flags & (GRND_RANDOM | GRND_INSECURE)) == (GRND_RANDOM | GRND_INSECURE))
    return answer(ctx, 0, EINVAL);
  if (len > GETRANDOM_MAX) len = GETRANDOM_MAX;
  if (len == 0) return answer(ctx, 0, 0);
  uwrx_stream *s = thread_stream(ctx->proc, req->pid);
  if (!s) return VERDICT_CONTINUE;
  uint8_t stack[256];
  uint8_t *buf = len <= sizeof stack ? stack : malloc(len < CHUNK ? len : CHUNK);
  if (!buf) return answer(ctx, 0, ENOMEM);
  size_t done = 0;
  while (done < len) {
    size_t n = len - done < CHUNK ? len - done : CHUNK;
    uwrx_stream_read(s, buf, n);
    if (!target_write(ctx, addr + done, buf, n)) break;
    done += n;
  }
  if (buf != stack) free(buf);
  if (done == 0) return answer(ctx, 0, EFAULT);
  return answer(ctx, (int64_t)done, 0);
}

/* ---- the shim's control call ---- */

/* Puts `fd` in as a descriptor of the target (close-on-exec, the lowest free number);
 * with SECCOMP_ADDFD_FLAG_SEND its number is also the answer to the call. The number, or
 * -1 (with `send`, the call is then still unanswered). */
static int32_t put_fd(struct notif_ctx *ctx, int fd, bool send) {
  struct seccomp_notif_addfd addfd = { .id = ctx->req->id, .flags = send ? SECCOMP_ADDFD_FLAG_SEND : 0,
                                       .srcfd = (uint32_t)fd, .newfd = 0, .newfd_flags = O_CLOEXEC };
  if (send) notify_answering(ctx);
  int32_t theirs = (int32_t)ioctl(g.listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
  return theirs >= 0 ? theirs : -1;
}

bool repro_exec_start(struct notif_ctx *ctx, bool runs) {
  const __u64 *a = ctx->req->data.args;
  if (ctx->proc) ctx->proc->repro.vdso_hidden = true; /* the shim removed it */
  /* what goes into the target, written with one call: the AT_RANDOM bytes, then what
   * the shim's state page says of the recorder buffer's descriptor */
  struct iovec local[2], remote[2];
  int n = 0;
  uint8_t bytes[16];
  bool at_random = config.enabled && ctx->proc && a[1] && a[2] == 16;
  if (at_random) {
    pthread_mutex_lock(&g.lock);
    uwrx_proc_rng_at_random(&ctx->proc->repro.rng, bytes);
    pthread_mutex_unlock(&g.lock);
    local[n] = (struct iovec){ bytes, sizeof bytes };
    remote[n++] = (struct iovec){ (void *)(uintptr_t)a[1], sizeof bytes };
  }
  /* The recorder buffer in the same round trip (uwrx_control.h). When the exec runs, the
   * descriptor goes in with the answer (ADDFD with SEND, kernel >= 5.14): the target
   * wakes once, where a plain ADDFD wakes it to install the descriptor, waits for it,
   * and the answer wakes it again. The state page says the number is the result. */
  int fd = a[3] ? trace_exec_recorder(ctx, a[3]) : -1;
  bool send = fd >= 0 && runs;
  int32_t theirs = send ? UWRX_RECORDER_FD_RESULT : fd >= 0 ? put_fd(ctx, fd, false) : -1;
  uint64_t fd_addr = a[3] + offsetof(struct uwrx_ldso_state, recorder_fd);
  /* with the descriptor, what the shim would otherwise ask the kernel for: the pid (the
   * exec left the process one thread, the caller) and whether to advise the mapping */
  struct {
    int32_t fd, own_fd, pid;
    uint32_t flags;
  } told = { theirs, 0, (int32_t)ctx->req->pid,
             (trace_on_tmpfs() ? UWRX_REC_TMPFS : 0) |
                 (ctx->proc && ctx->proc->image_no_library ? UWRX_REC_NO_LIBRARY : 0) };
  _Static_assert(offsetof(struct uwrx_ldso_state, own_fd) == offsetof(struct uwrx_ldso_state, recorder_fd) + 4 &&
                     offsetof(struct uwrx_ldso_state, recorder_pid) == offsetof(struct uwrx_ldso_state, recorder_fd) + 8 &&
                     offsetof(struct uwrx_ldso_state, recorder_flags) == offsetof(struct uwrx_ldso_state, recorder_fd) + 12,
                 "the fields written together follow each other");
  if (theirs != -1) {
    local[n] = (struct iovec){ &told, sizeof told };
    remote[n++] = (struct iovec){ (void *)(uintptr_t)fd_addr, sizeof told };
  }
  bool ok = true;
  if (n > 0 && notif_id_valid(ctx->req->id)) {
    ssize_t wrote = process_vm_writev(ctx->req->pid, local, (unsigned long)n, remote, (unsigned long)n, 0);
    ok = !at_random || wrote >= (ssize_t)sizeof bytes;
    if (send && ok && wrote == (ssize_t)(local[0].iov_len + (n > 1 ? local[1].iov_len : 0)) &&
        put_fd(ctx, fd, true) >= 0)
      ctx->sent = true;
    else if (send && notif_id_valid(ctx->req->id)) {
      /* no SEND here (or no room for the descriptor): the number, if any, on the page */
      theirs = ok ? put_fd(ctx, fd, false) : -1;
      struct iovec l = { &theirs, sizeof theirs }, r = { (void *)(uintptr_t)fd_addr, sizeof theirs };
      if (process_vm_writev(ctx->req->pid, &l, 1, &r, 1, 0) < 0) {}
    }
  } else if (n > 0) {
    ok = !at_random;
  }
  /* a state page that cannot be written leaves the descriptor there: the process's own
   * buffer, closed at its next exec. `fd` itself is the trace buffer's: not ours to close */
  return ok;
}

/* ---- prepared execs (uwrx_recorder.h) ---- */

/* exec_seq of the next prepared exec (g.lock): new across the run, so no header holds
 * an old one that could pass for it */
static uint32_t prepared_seq;

void repro_exec_prepare(struct notif_ctx *ctx, struct pending_exec *e) {
  struct proc *p = ctx->proc;
  /* the new image's getpid (a thread's exec gives it the process's pid) */
  pid_t pid = p->tgid;
  pthread_mutex_lock(&g.lock);
  trace_exec_unlink_stale(p, pid);
  /* whatever this exec becomes, an earlier one's preparation nobody took is not its own */
  if (p->repro.lease_hdr) __atomic_store_n(&p->repro.lease_hdr->exec_seq, 0, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g.lock);
  /* a listed program's exec waits on rebuild's word (rebuild.c), given on its control
   * call. (A vfork child is prepared as any: what is prepared is its own buffer's, not
   * its parent's, whose image it runs until the exec.) */
  if (!config.enabled || !trace_exec_dir_ready() || !rebuild_exec_unlisted(e->arg0, e->abs_path)) return;
  /* the links are named by the pids of the sandbox's namespace: a process of another
   * could take one of its number for its own */
  if (procs_pid_namespaces()) return;
  int fd = trace_recorder_region(p, (pid_t)ctx->req->pid);
  if (fd < 0) return;
  pthread_mutex_lock(&g.lock);
  /* the old image ends here as far as its counts go (before the header is mapped: a
   * vfork child's own counts are none), the new one counts into the same header from
   * its start, before uwrx-init hears of it */
  redirects_image_ended(p);
  struct uwrx_rec_header *h = trace_exec_link(p, pid) ? clocks_exec_prepare(p, fd, UWRX_EXEC_COUNT_ADDR, &e->lease) : NULL;
  if (h) {
    redirects_exec_prepare(e->path, h, &e->prepared_skip, &e->prepared_no_library);
    /* this exec's AT_RANDOM bytes, the ordinal moved on once it is known to have run */
    uwrx_proc_rng next = p->repro.rng;
    uint8_t bytes[16];
    uwrx_proc_rng_at_random(&next, bytes);
    memcpy(h->exec_random, bytes, sizeof bytes);
    h->exec_pid = pid;
    h->exec_flags = (trace_on_tmpfs() ? UWRX_REC_TMPFS : 0) | (e->prepared_no_library ? UWRX_REC_NO_LIBRARY : 0);
    h->exec_count_addr = UWRX_EXEC_COUNT_ADDR;
    if (++prepared_seq == 0) prepared_seq = 1;
    e->prepared_seq = prepared_seq;
    __atomic_store_n(&h->exec_seq, prepared_seq, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&g.lock);
}

bool repro_exec_taken(struct proc *p, const struct pending_exec *e) {
  struct uwrx_rec_header *h = p->repro.lease_hdr;
  return e->prepared_seq && h && __atomic_load_n(&h->exec_taken, __ATOMIC_ACQUIRE) == e->prepared_seq;
}

void repro_exec_adopt(struct proc *p, const struct pending_exec *e) {
  p->repro.rng.execs++; /* the bytes it took were this ordinal's */
  p->repro.vdso_hidden = true;
  redirects_exec_adopt(p, e->path, e->prepared_skip, e->prepared_no_library);
  if (!e->lease.opened) clocks_exec_adopt(p, UWRX_EXEC_COUNT_ADDR);
}

void repro_exec_untaken(struct proc *p, const struct pending_exec *e, bool ran) {
  struct uwrx_rec_header *h = p->repro.lease_hdr;
  if (!e->prepared_seq || !h) return;
  __atomic_store_n(&h->exec_seq, 0, __ATOMIC_RELEASE);
  if (!ran) clocks_exec_unprepare(p, &e->lease);
}

static enum verdict on_control(struct notif_ctx *ctx) {
  const __u64 *a = ctx->req->data.args;
  /* never CONTINUE: the kernel would answer ENOSYS anyway, but say it ourselves */
  if (a[5] != UWRX_CONTROL_MAGIC) return answer(ctx, 0, ENOSYS);
  switch (a[0]) {
  case UWRX_CTL_HELLO:
    return answer(ctx, UWRX_CONTROL_VERSION, 0);
  case UWRX_CTL_EXEC_START:
    if (!repro_exec_start(ctx, true)) return answer(ctx, 0, EFAULT);
    return answer(ctx, UWRX_EXEC_RUN, 0); /* not sent when the descriptor answered it */
  case UWRX_CTL_SKIP_OUTPUT:
    return answer(ctx, 0, 0); /* nothing is ever skipped yet */
  case UWRX_CTL_RECORDER:
    trace_handle_recorder(ctx);
    /* when the fd went in, that answered the call and this answer finds none */
    return answer(ctx, 0, ENOSYS);
  default:
    return answer(ctx, 0, ENOSYS);
  }
}

/* ---- /dev/urandom, /dev/random ---- */

/* Runs in the FUSE server thread. The opener was registered by its open's notification;
 * anything else (uwrx-init itself) reads a stream of the root seed. */
static void device_stream(pid_t tid, int dev_random, uwrx_stream *out, void *arg) {
  static uwrx_proc_rng orphan;
  static bool orphan_ready;
  (void)arg;
  pthread_mutex_lock(&g.lock);
  struct proc *p = procs_find(tid);
  if (p) {
    uwrx_proc_rng_device_stream(&p->repro.rng, dev_random, out);
  } else {
    if (!orphan_ready) uwrx_proc_rng_init(&orphan, &config.seed, 1), orphan_ready = true;
    uwrx_proc_rng_device_stream(&orphan, dev_random, out);
  }
  pthread_mutex_unlock(&g.lock);
}

bool repro_mount_devrandom(const char *path, bool dev_random) {
  int fd = devrandom_open_device();
  int rc = fd < 0 ? fd : devrandom_mount(fd, path, dev_random ? 1 : 0, device_stream, NULL);
  if (rc < 0 && fd >= 0) close(fd);
  if (rc < 0) errno = -rc;
  return rc >= 0;
}

/* ---- the reproducibility feature ---- */

static bool seeded(const struct plan *plan) { return plan->repro.enabled; }

/* The shim's own operations; others (tests, later features) subscribe to theirs. */
static const struct arg_match control_ops = {
  .arg = 0, .count = 4, .values = { UWRX_CTL_HELLO, UWRX_CTL_EXEC_START, UWRX_CTL_SKIP_OUTPUT, UWRX_CTL_RECORDER },
};

static const struct subscription repro_calls[] = {
  { SYS_getrandom, on_getrandom, NULL, seeded },
  { UWRX_SYS_CONTROL, on_control, &control_ops, NULL },
};

/* Always on: the shim's control call is answered even in a run without a seed. */
const struct feature feature_reproducibility = {
  .name = "reproducibility",
  .subs = SUBSCRIPTIONS(repro_calls),
  .on_spawn = repro_spawned,
};
