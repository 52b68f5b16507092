/* uwrx-init: shared declarations. Global state lives in `struct init_state` (one
 * instance, `g`); per-process state in `struct proc`. */
#ifndef UWRX_INIT_H
#define UWRX_INIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/seccomp.h>

#include "../common/msgpack.h"

/* ---- plan (plan.c) ---- */

struct plan_step {
  char *op;
  char *source, *target, *fstype, *data, *path, *name;
  uint64_t flags;
  uint32_t mode;
};

struct plan {
  char **argv;          /* NULL-terminated */
  char **env;           /* NULL-terminated, "K=V" */
  char *cwd;
  char *uid_map, *gid_map;
  bool deny_setgroups;
  struct plan_step *steps;
  size_t nsteps;
  int handler_threads;
  int grace_ms;
};

/* Parses a plan message body; returns false with a reason in `why`. */
bool plan_parse(struct mp_reader *r, struct plan *plan, const char **why);
/* Runs every step in order; on failure reports the failing step to Node and returns false. */
bool plan_execute(const struct plan *plan);

/* ---- channel to Node (channel.c) ---- */

/* Reads one frame (blocking); caller frees *data. False on EOF or error. */
bool channel_read(int fd, uint8_t **data, size_t *len);
/* Sends one envelope; `body` may be NULL. Thread-safe. */
void channel_send(const char *type, const struct mp_writer *body);
/* Sends the error envelope naming a failed step; errno_value 0 when not from a syscall. */
void channel_fail(int step, const char *op, const char *path, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- processes (procs.c) ---- */

/* What tells a successful exec from a failed one (see procs_check_exec). */
struct exec_snapshot {
  uint64_t exe_dev, exe_ino;
  uint64_t start_stack;
};

struct pending_exec {
  pid_t tid;            /* thread that called execve */
  uint64_t time;
  char *path;
  struct mp_writer argv; /* msgpack array of bin, ready to send */
  char *cwd;
  struct exec_snapshot before;
};

struct proc {
  pid_t tgid;           /* pid inside the sandbox's pid namespace */
  int logical;          /* uwrx logical pid: 2, 3, ... in first-seen order */
  int parent_logical;   /* 1 = uwrx itself (pid 1 of the sandbox or unknown) */
  int pidfd;
  uint64_t start_time;
  struct pending_exec *exec;   /* execve seen, success not yet confirmed */
  bool exit_group_seen;
  int exit_group_code;
  uint64_t exit_group_time;
  bool reaped;          /* pid 1 reaped it: `wait_status` is exact */
  int wait_status;
  bool ended;           /* pidfd reported the exit */
  uint64_t end_time;
  bool reported;        /* exit message sent */
  struct proc *next_pending;  /* ended but status not known yet */
};

void procs_init(void);
/* Process of thread `tid`, registering it on first sight (reads /proc). The table lock
 * must be held. NULL when the thread vanished. */
struct proc *procs_get(pid_t tid, uint64_t notif_id, uint64_t time);
/* Called with the lock held on each notification of a process with a pending exec. */
void procs_check_exec(struct proc *p, pid_t tid);
/* A thread called execve/execveat: remember it until the outcome is known. */
void procs_exec_seen(struct proc *p, struct pending_exec *exec);
/* pid 1 reaped `pid` with `status`. */
void procs_reaped(pid_t pid, int status);
/* epoll reported the pidfd of `p` readable. */
void procs_pidfd_ready(struct proc *p);
/* Retries exit reports whose status was not known yet. */
void procs_flush_pending(bool final);
uint64_t now_ns(void);

/* ---- seccomp (filter.c, notify.c) ---- */

/* In the command's process: install the filter, return the listener fd (or -1, errno). */
int filter_install(void);
/* In pid 1: start the handler threads on the listener. */
bool notify_start(int listener, int threads);

/* Per-notification context handed to each handler. */
struct notif_ctx {
  const struct seccomp_notif *req;
  struct seccomp_notif_resp *resp;
  struct proc *proc;    /* registered process of req->pid (NULL if it vanished) */
  uint64_t time;
  int memfd;            /* /proc/<tid>/mem, -1 until target_mem() opens it */
};

typedef void (*syscall_handler)(struct notif_ctx *ctx);

/* Reads a NUL-terminated string of at most `max` bytes at `addr` in thread `tid`. */
char *target_read_string(int memfd, uint64_t addr, size_t max);
bool notif_id_valid(uint64_t id);

/* ---- path arguments (paths.c) ---- */

#define PATH_MAX_TARGET 4096
/* The target's memory, opened on first use and closed after the handler. */
int target_mem(struct notif_ctx *ctx);
/* Absolute directory of `dirfd` (AT_FDCWD: the cwd) of thread `tid`; malloc'd or NULL. */
char *target_dir_path(pid_t tid, int dirfd);
/* The path argument at `addr`, made absolute against `dirfd` and lexically normalised
 * ("." and ".." collapsed without following symlinks); malloc'd, NULL with errno set. */
char *target_path_at(struct notif_ctx *ctx, int dirfd, uint64_t addr);

/* ---- global state ---- */

struct init_state {
  int sock;                  /* to Node */
  pthread_mutex_t send_lock;
  int listener;
  int epoll;
  pthread_mutex_t lock;      /* process table */
  int next_logical;
  pid_t command_pid;         /* pid 2 as pid 1 sees it */
  bool finishing;
  bool terminating;
};

extern struct init_state g;

/* epoll tags that are not process pointers */
#define EV_SIGNAL ((uint64_t)1)
#define EV_SOCKET ((uint64_t)2)
#define EV_TIMER ((uint64_t)3)

#endif
