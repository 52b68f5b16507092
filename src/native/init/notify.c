/* Seccomp notification handlers: the per-process manager bridge. One handler per syscall
 * family, all with the same signature; they run in pid 1's handler threads, inside the
 * sandbox's namespaces, so paths and pids resolve as the target sees them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_control.h"

/* Debian 12's headers predate the synchronous wake-up flag (kernel 6.6). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define MAX_SYSCALL 512
#define MAX_ARGV_BYTES (256 * 1024)
#define MAX_ARGS 8192

static syscall_handler handlers[MAX_SYSCALL];
static struct seccomp_notif_sizes sizes;

bool notif_id_valid(uint64_t id) { return ioctl(g.listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0; }

static int open_mem(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", tid);
  return open(path, O_RDONLY | O_CLOEXEC);
}

static char *read_link(const char *path) {
  char buf[4096];
  ssize_t len = readlink(path, buf, sizeof buf - 1);
  if (len < 0) return NULL;
  buf[len] = 0;
  return strdup(buf);
}

/* ---- handlers ---- */

static void handle_continue(struct notif_ctx *ctx) { (void)ctx; }

/* execve(path, argv, envp) and execveat(dirfd, path, argv, envp, flags). The outcome is
 * known only later (shells try every PATH entry): procs_check_exec decides. */
static void handle_exec(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  if (!ctx->proc) return;
  bool at = req->data.nr == SYS_execveat;
  uint64_t path_addr = req->data.args[at ? 1 : 0];
  uint64_t argv_addr = req->data.args[at ? 2 : 1];
  int memfd = open_mem(req->pid);
  if (memfd < 0) return;
  struct pending_exec *e = calloc(1, sizeof *e);
  if (!e) {
    close(memfd);
    return;
  }
  e->tid = req->pid;
  e->time = ctx->time;
  e->path = target_read_string(memfd, path_addr, 4096);
  if (at && e->path) {
    int dirfd = (int)req->data.args[0];
    int flags = (int)req->data.args[4];
    if ((e->path[0] == 0 && (flags & AT_EMPTY_PATH)) || (e->path[0] != '/' && dirfd != AT_FDCWD)) {
      char link[64];
      snprintf(link, sizeof link, "/proc/%d/fd/%d", req->pid, dirfd);
      char *dir = read_link(link);
      if (dir) {
        char *joined;
        if (e->path[0] == 0) joined = dir, dir = NULL;
        else if (asprintf(&joined, "%s/%s", dir, e->path) < 0) joined = NULL;
        free(dir);
        if (joined) {
          free(e->path);
          e->path = joined;
        }
      }
    }
  }
  /* argv: an array of pointers, each read as a string */
  uint64_t ptrs[64];
  size_t total = 0, count = 0;
  struct mp_writer items;
  mp_writer_init(&items);
  for (size_t base = 0; base < MAX_ARGS && total < MAX_ARGV_BYTES; base += 64) {
    ssize_t n = pread(memfd, ptrs, sizeof ptrs, (off_t)(argv_addr + base * 8));
    if (n < 8) break;
    size_t k = (size_t)n / 8;
    bool end = false;
    for (size_t i = 0; i < k; i++) {
      if (!ptrs[i]) {
        end = true;
        break;
      }
      char *arg = target_read_string(memfd, ptrs[i], MAX_ARGV_BYTES - total);
      if (!arg) {
        end = true;
        break;
      }
      size_t len = strlen(arg);
      mp_write_bin(&items, arg, len);
      total += len;
      count++;
      free(arg);
    }
    if (end || argv_addr == 0) break;
  }
  mp_writer_init(&e->argv);
  mp_write_array(&e->argv, (uint32_t)count);
  mp_write_raw(&e->argv, items.data, items.len);
  mp_writer_free(&items);
  char link[64];
  snprintf(link, sizeof link, "/proc/%d/cwd", req->pid);
  e->cwd = read_link(link);
  close(memfd);
  /* the memory read is only meaningful if the target still waits in this call */
  if (!notif_id_valid(req->id) || !e->path) {
    free(e->path);
    free(e->cwd);
    mp_writer_free(&e->argv);
    free(e);
    return;
  }
  pthread_mutex_lock(&g.lock);
  procs_exec_seen(ctx->proc, e);
  pthread_mutex_unlock(&g.lock);
}

static void handle_exit_group(struct notif_ctx *ctx) {
  if (!ctx->proc) return;
  pthread_mutex_lock(&g.lock);
  ctx->proc->exit_group_seen = true;
  ctx->proc->exit_group_code = (int)(ctx->req->data.args[0] & 0xff);
  ctx->proc->exit_group_time = ctx->time;
  if (ctx->proc->exec) procs_check_exec(ctx->proc, ctx->req->pid);
  pthread_mutex_unlock(&g.lock);
}

/* Families answered CONTINUE for now; recording and emulation attach here. */
#define handle_clone handle_continue
#define handle_file files_handle_file
#define handle_file_mutation files_handle_mutation
#define handle_random repro_handle_random
#define handle_time repro_handle_time

static void install_handlers(void) {
  static const int clone_nrs[] = { SYS_clone, SYS_clone3, SYS_fork, SYS_vfork };
  static const int file_nrs[] = { SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_stat, SYS_lstat,
                                  SYS_fstat, SYS_newfstatat, SYS_statx, SYS_access, SYS_faccessat,
                                  SYS_faccessat2 };
  static const int mutation_nrs[] = { SYS_unlink, SYS_unlinkat, SYS_rename, SYS_renameat, SYS_renameat2,
                                      SYS_mkdir, SYS_mkdirat, SYS_rmdir, SYS_link, SYS_linkat,
                                      SYS_symlink, SYS_symlinkat, SYS_chmod, SYS_fchmod, SYS_fchmodat,
                                      452, SYS_chown, SYS_fchown, SYS_lchown, SYS_fchownat, SYS_truncate,
                                      SYS_ftruncate, SYS_utime, SYS_utimes, SYS_utimensat,
                                      SYS_futimesat, SYS_mknod, SYS_mknodat };
  static const int time_nrs[] = { SYS_clock_gettime, SYS_gettimeofday, SYS_time };
  static const int output_nrs[] = { SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev, SYS_pwritev2 };
#define SET(arr, fn) for (size_t i = 0; i < sizeof(arr) / sizeof(arr[0]); i++) handlers[arr[i]] = fn
  SET(clone_nrs, handle_clone);
  SET(file_nrs, handle_file);
  SET(mutation_nrs, handle_file_mutation);
  SET(time_nrs, handle_time);
  SET(output_nrs, handle_output);
#undef SET
  handlers[SYS_execve] = handle_exec;
  handlers[SYS_execveat] = handle_exec;
  handlers[SYS_exit_group] = handle_exit_group;
  handlers[SYS_connect] = handle_connect;
  handlers[SYS_getrandom] = handle_random;
}

/* ---- the loop ---- */

static void *handler_thread(void *arg) {
  (void)arg;
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
  struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
  if (!req || !resp) return NULL;
  for (;;) {
    /* RECV blocks until a notification is posted; one whose target vanished before we
     * took it makes RECV fail with ENOENT (kernel/seccomp.c, checked on 6.18), so no poll
     * is needed first: that saves a syscall per notification. An idle thread stays
     * blocked here until pid 1 exits. */
    memset(req, 0, sizes.seccomp_notif);
    if (ioctl(g.listener, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      break;
    }
    memset(resp, 0, sizes.seccomp_notif_resp);
    resp->id = req->id;
    resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    struct notif_ctx ctx = { .req = req, .resp = resp, .proc = NULL, .time = now_ns(), .memfd = -1 };
    pthread_mutex_lock(&g.lock);
    ctx.proc = procs_get(req->pid, req->id, ctx.time);
    if (ctx.proc) trace_hold(ctx.proc);
    if (ctx.proc && ctx.proc->exec) procs_check_exec(ctx.proc, req->pid);
    pthread_mutex_unlock(&g.lock);
    /* the thread's previous call has returned: its outcome shows now */
    files_confirm(req->pid);
    unsigned nr = (unsigned)req->data.nr;
    syscall_handler h = nr < MAX_SYSCALL ? handlers[nr] : nr == UWRX_SYS_CONTROL ? repro_handle_control : NULL;
    if (h) h(&ctx);
    if (ctx.proc) trace_release(ctx.proc);
    if (ctx.memfd >= 0) close(ctx.memfd);
    /* ENOENT: the target was interrupted or died meanwhile; nothing to answer */
    ioctl(g.listener, SECCOMP_IOCTL_NOTIF_SEND, resp);
  }
  free(req);
  free(resp);
  return NULL;
}

bool notify_start(int listener, int threads) {
  g.listener = listener;
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return false;
  install_handlers();
  uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
  /* best effort: without it a round trip costs a cross-CPU wake-up (kernel < 6.6) */
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags);
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, handler_thread, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) return i > 0;
  }
  return true;
}
