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

/* ---- repro (repro.c): deterministic randomness, time, the shim's control call ---- */

#include "../common/dettime.h"
#include "../common/prng.h"

/* From the plan: the attempt's root seed and clock configuration. */
struct repro_config {
  bool enabled;         /* the plan carried a seed */
  uwrx_seed seed;
  uwrx_time_config time;
};

/* The getrandom stream of one thread. */
struct thread_rng {
  pid_t tid;
  uwrx_stream stream;
  struct thread_rng *next;
};

/* Per process; lives in `struct proc`, kept across exec. */
struct proc_repro {
  uwrx_proc_rng rng;         /* process seed and stream ordinals */
  uint64_t time_queries;     /* clock reads answered so far (atomic) */
  pid_t *children;           /* registered children (pids), for the next child's ordinal */
  size_t nchildren, capchildren;
  struct thread_rng *threads;
};

/* Plan keys "seed", "t0Ns", "timeMode", "timeStepNs": 1 consumed, 0 malformed, -1 not ours. */
int repro_parse_plan_key(struct mp_reader *r, const char *k, uint32_t klen, struct repro_config *c);
/* Pid 1, before the command starts. */
void repro_configure(const struct repro_config *c);
/* A process registered: its seed from its parent's (NULL: uwrx, the root seed) and its
 * place among the parent's children. Lock held. */
struct proc;
void repro_proc_init(struct proc *p, struct proc *parent, pid_t ppid);
/* Plan step "devrandom": a FUSE file with deterministic streams over `path` (a file).
 * Without FUSE the host's device stays there and one warning line goes to stderr. */
void repro_mount_devrandom(const char *path, bool dev_random);
/* Handlers: getrandom; clock_gettime, gettimeofday, time; UWRX_SYS_CONTROL. */
struct notif_ctx;
void repro_handle_random(struct notif_ctx *ctx);
void repro_handle_time(struct notif_ctx *ctx);
void repro_handle_control(struct notif_ctx *ctx);

/* ---- trace (trace.c): events of the run's processes into traces/<logical pid> ---- */

struct uwrx_tracebuf;
struct trace_threads;
struct pending_exec;
struct proc;
struct notif_ctx;
/* Opens the plan's traces directory (before pivot_root hides it); false with errno. */
bool trace_open_dir(const char *path);
/* A process registered (lock held): opens its buffer, writes the spawn record into the
 * parent's buffer (parent NULL: started by uwrx). */
void trace_proc_started(struct proc *p, struct proc *parent);
/* A confirmed exec; the exit as reported to Node (lock held). */
void trace_exec(const struct proc *p, const struct pending_exec *e);
void trace_exit(struct proc *p, bool known, int status);
/* The exit was reported: the buffer closes once no handler uses it. */
void trace_proc_ended(struct proc *p);
/* Around each handler call, so a process killed meanwhile keeps its buffer open. */
void trace_hold(struct proc *p);
void trace_release(struct proc *p);
/* Logical tid of thread `tid` of `p`: the logical pid for the main thread, else
 * ordinal * 1000000 + logical pid (ordinal 1, 2, ... in first-seen order). */
uint32_t trace_logical_tid(struct proc *p, pid_t tid);
/* Handlers: write/writev/pwrite* to fd 1 and 2 (output events), connect. */
void handle_output(struct notif_ctx *ctx);
void handle_connect(struct notif_ctx *ctx);

/* ---- files (files.c): files.meta, per-process versions, stat time squashing ---- */

struct plan;
/* Plan key "files" (src/sandbox/plan.ts FilesPlan); false when malformed. */
bool files_parse_plan(struct mp_reader *r);
/* Pid 1, before the plan's steps hide the run directory: opens files.meta, the versions
 * directory, the uppers and the parents' layers. False after reporting the failure. */
bool files_init(const struct plan *plan);
/* Pid 1, when every process ended: flushes files.meta, writes the versions index. */
void files_finish(void);
/* Where this attempt's own files are squashed, relative to T0 (0 without a files plan):
 * the wall clocks start there too. */
int64_t files_wall_offset_ns(void);
/* Handlers: open* and the stat family (access: nothing); the mutations. */
void files_handle_file(struct notif_ctx *ctx);
void files_handle_mutation(struct notif_ctx *ctx);
/* Thread `tid` makes a call: its last recorded call's outcome is known now. */
void files_confirm(pid_t tid);
/* Process `logical` ended (0: the run): the outcomes of its calls are known now. */
void files_proc_ended(int logical);

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
  struct repro_config repro;  /* repro.c */
  char *traces_dir;           /* trace.c: absolute <runDir>/traces, NULL: no tracing */
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
  struct proc_repro repro;    /* repro.c */
  struct uwrx_tracebuf *trace;  /* trace.c: NULL when tracing is off or the buffer failed */
  int trace_users;              /* handler calls in progress (atomic) */
  bool trace_done;              /* exit reported: close the buffer when unused (atomic) */
  struct trace_threads *threads; /* logical tids of threads other than the main one */
};

void procs_init(void);
/* Process of thread `tid`, registering it on first sight (reads /proc). The table lock
 * must be held. NULL when the thread vanished. */
struct proc *procs_get(pid_t tid, uint64_t notif_id, uint64_t time);
/* Process of thread `tid` if registered, NULL otherwise. The table lock must be held. */
struct proc *procs_find(pid_t tid);
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
/* A NUL-terminated string of at most `max` bytes at `addr` of the target: malloc'd or NULL. */
char *target_string(struct notif_ctx *ctx, uint64_t addr, size_t max);
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
