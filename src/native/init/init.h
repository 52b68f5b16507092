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
  bool aslr;            /* keep address-space randomization in the command tree */
  bool notified_waits;  /* every timed wait notified (the plan's inProcessWaits false) */
};

/* Per thread of a process: its getrandom stream, its timed wait in progress. */
struct repro_thread {
  pid_t tid;
  bool has_stream;      /* given a getrandom stream (counts for later threads' ordinals) */
  bool busy;            /* something below waits for the thread's next call */
  bool reaping;         /* in wait4/waitid: join the children it reaped */
  bool reap_blocking;   /* that wait blocks until a child ends (no WNOHANG) */
  bool settled;         /* busy: the wait's effect on the clock was applied already */
  int entry_last_pid;   /* busy: the namespace's last pid when the call was made */
  pid_t reap_pid;       /* the child it waits for: 0 any, -1 one uwrx cannot tell (a pidfd) */
  uwrx_stream stream;
  uwrx_wait wait;
  /* an absolute deadline rewritten in the target's memory, restored at its next call */
  uint64_t rewrite_addr;
  uint32_t rewrite_len;
  uint8_t original[16], written[16];
  struct repro_thread *next;
};

/* The clock of a process before each change, with the namespace's last allocated pid
 * when the call that caused the change was made: a child forked before that call has a
 * smaller pid and starts from the value before it (clocks.c, fork_clock). */
#define CLOCK_MARKS 16
struct clock_mark {
  int last_pid;   /* -1: a clock event of the recorder's, at its place `reads` */
  int64_t now_ns;
  uint64_t reads; /* the recorder's read count folded into now_ns (clocks.c, clock lease) */
};

/* Timers of a process whose expiry moves its clocks: alarm/ITIMER_REAL and a few
 * timerfds (the oldest is forgotten when more are armed). */
#define REPRO_TIMERS 4

/* Per process; lives in `struct proc`, kept across exec. */
struct proc_repro {
  uwrx_proc_rng rng;         /* process seed and stream ordinals */
  uwrx_clock clock;          /* its deterministic clocks (g.lock) */
  struct clock_mark marks[CLOCK_MARKS]; /* ring, the newest at (nmarks - 1) % CLOCK_MARKS */
  unsigned nmarks;
  bool vdso_hidden;          /* its program went through the shim: it reads the virtual
                                clocks (a static program reads the real ones in the vDSO) */
  bool unjoined_counted;     /* ended, counted in its parent's header's reap_unjoined */
  struct proc **children_procs; /* registered children its clock has not joined yet */
  size_t nchildren_procs, capchildren_procs;
  struct repro_thread *threads;
  int busy_threads;          /* threads with busy set (atomic reads skip the lookup) */
  uwrx_timer timers[REPRO_TIMERS]; /* ITIMER_REAL (key -1) and timerfds (key: fd) */
  int armed_timers;          /* active entries of timers (atomic reads skip the check) */
  /* The clock lease (clocks.c): reads the in-process recorder answers. */
  struct uwrx_rec_header *lease_hdr; /* its recorder buffer's header, mapped here (g.lock) */
  dev_t lease_dev;           /* and the buffer file's identity (clocks.c: kept mappings) */
  ino_t lease_ino;
  uint64_t lease_addr;       /* address of the recorder's read count in the current image */
  uint64_t lease_reads;      /* the value of that count already folded into clock */
  uint32_t lease_events;     /* the header's clock events folded into clock */
};

/* Plan keys "seed", "t0Ns", "timeMode", "timeStepNs": 1 consumed, 0 malformed, -1 not ours. */
int repro_parse_plan_key(struct mp_reader *r, const char *k, uint32_t klen, struct repro_config *c);
/* Pid 1, before the command starts. */
void repro_configure(const struct repro_config *c);
/* Plan step "devrandom": a FUSE file with deterministic streams over `path` (a file).
 * False with errno without FUSE: the host's device stays there. */
bool repro_mount_devrandom(const char *path, bool dev_random);
/* The configuration from the plan (read-only after repro_configure). */
const struct repro_config *repro_config_get(void);
/* Hands the main thread's getrandom stream to the recorder buffer header `h` of `p`
 * (mapped by uwrx-init for good): from then on both paths read it there. g.lock held. */
struct uwrx_rec_header;
void repro_rng_lease(struct proc *p, struct uwrx_rec_header *h);
/* The entry of thread `tid` of `p`, created when missing (NULL: out of memory). g.lock held. */
struct repro_thread *repro_thread(struct proc *p, pid_t tid);
/* Target memory of the notifying thread, only while it still waits in this call:
 * process_vm_readv/writev, so a bad address fails as the kernel would (EFAULT). */
struct notif_ctx;
bool target_read(struct notif_ctx *ctx, uint64_t addr, void *out, size_t n);
bool target_write(struct notif_ctx *ctx, uint64_t addr, const void *data, size_t n);

/* UWRX_CTL_EXEC_START's own work (the AT_RANDOM bytes, the vDSO note, the recorder
 * buffer); false when the target's buffer is bad (answer EFAULT). `runs`: the answer is
 * "run" and may go with the recorder buffer's descriptor (ctx->sent then says it went). */
bool repro_exec_start(struct notif_ctx *ctx, bool runs);
/* The same work done at the execve notification, where the exec needs no answer
 * (uwrx_recorder.h, "prepared execs"; e->abs_path and e->arg0 for rebuild's list). Sets
 * e->prepared_seq when the new image's shim can take it. */
struct pending_exec;
void repro_exec_prepare(struct notif_ctx *ctx, struct pending_exec *e);
/* Whether the new image's shim took prepared exec `e` (g.lock held): the exec ran. */
bool repro_exec_taken(struct proc *p, const struct pending_exec *e);
/* ... and what its control call would have done, done (g.lock held). */
void repro_exec_adopt(struct proc *p, const struct pending_exec *e);
/* Prepared exec `e` was not taken (g.lock held): it failed (`ran` false: nothing of it
 * stays), or ran another way (a static program, the control call). */
void repro_exec_untaken(struct proc *p, const struct pending_exec *e, bool ran);

/* ---- rebuild (rebuild.c): the skip-or-run question of whitelisted execs ---- */

/* The feature (registered in feature.c) holds the shim's UWRX_CTL_EXEC_START of a program
 * named in the plan's "skippable" list and asks Node (MSG_REBUILD_EXEC) whether to run
 * it; on skip it serves the recorded output through UWRX_CTL_SKIP_OUTPUT. */
struct rebuild_skip;
/* Plan step "replayed": keeps a handle on the replayed attempt (before pivot_root hides
 * it), so a skipped exec's outputs are copied from their stored versions there. */
bool rebuild_open_replayed(const char *path);
/* Whether an exec of `path` (absolute) as `arg0` needs no word from this feature: none is
 * listed, or neither name nor the executable the path is known to run (a path whose
 * executable is not known yet: false, the shim asks). */
bool rebuild_exec_unlisted(const char *arg0, const char *path);

/* ---- clocks (clocks.c): deterministic clocks, timed waits, causality between
 * processes (docs/reproducibility.md): the feature feature_clocks ---- */

/* The time of a change the process makes (a file it writes): its virtual CLOCK_REALTIME,
 * which then moves on as after a read, so whatever it changes or reaps later is newer.
 * False when the clocks are not virtual. */
bool clocks_stamp(struct proc *p, int64_t *ns);
/* The clocks of `p` as it ends (lock held; what it read in process folded in), which
 * its exit report carries; false when they are not virtual. */
bool clocks_final(struct proc *p, uwrx_clock *out);
/* `p` is skipped in a replay (lock held): its clocks move to where the recorded
 * process's ended (`recorded`, from its exit report), never back, so that its parent
 * joins the same end as in the recorded run. */
void clocks_skipped(struct proc *p, const uwrx_clock *recorded);
/* The recorder of `p` set up (its buffer is `fd`; its read count at `count_addr`, 0 in
 * a `fresh_image`: the exec's own state page): publishes the process's clocks for reads
 * in process. */
void clocks_recorder(struct proc *p, int fd, uint64_t count_addr, bool fresh_image);
/* `p` runs a new program (lock held): its recorder, and its read count, are gone. */
void clocks_exec(struct proc *p);
/* A prepared exec of `p` (lock held; its buffer is `fd`): the header mapped and the old
 * image's reads folded; the new image's lease (its read count at `count_addr`) opened
 * now where no image of `p` used the header yet (out->opened), else once its shim is known
 * to have run (clocks_exec_adopt). The header, or NULL without one. A failed exec puts
 * back the lease its process had (clocks_exec_unprepare). */
struct prepared_lease;
struct uwrx_rec_header *clocks_exec_prepare(struct proc *p, int fd, uint64_t count_addr, struct prepared_lease *out);
void clocks_exec_adopt(struct proc *p, uint64_t count_addr);
void clocks_exec_unprepare(struct proc *p, const struct prepared_lease *before);

/* ---- file times (filetimes.c): when this attempt changed its files ---- */

/* `ctx`'s process changed `path` (a files.meta operation: write, create, rename_from,
 * rename_to, delete, mkdir ...): it now reads that process's virtual time. chmod, chown
 * and attr (a new link count, an extended attribute) change no time. */
void filetimes_changed(struct notif_ctx *ctx, const char *path, const char *op);
/* The directory `from` is renamed `to`: the paths below it keep their times there. */
void filetimes_move_below(const char *from, const char *to);
/* The outcome of a rename from `from` to `to` recorded with rename_from/rename_to: its
 * file keeps its published time at the new name; one that failed keeps its time at the
 * old name, published no more. */
void filetimes_renamed(const char *from, const char *to, bool done);
/* The program set `path`'s times itself (utimensat with times): they stay as set. */
void filetimes_explicit(const char *path);
/* `added` (a new name of the file `existing`) shows the times `existing` shows. */
void filetimes_same(const char *added, const char *existing);
/* The time of a change of this attempt to `path`; false when it made none. */
bool filetimes_lookup(const char *path, int64_t *ns, bool *explicit_times);
/* The recorders' table of changed files' times (uwrx_stat_times.h): made once, with the
 * first recorder buffer; `path`'s entry published there under (dev, ino) as showing
 * `shown`, when the entry still holds `changed` and `explicit_times`; every entry taken
 * away (a path of a directory may change). */
void filetimes_open_table(void);
void filetimes_publish(const char *path, int64_t changed, bool explicit_times, int64_t shown, uint64_t dev, uint64_t ino);
void filetimes_unpublish_all(void);
/* Calls `fn` for every path this attempt changed and that still exists. */
void filetimes_each(void (*fn)(const char *path, int64_t ns, bool explicit_times, void *arg), void *arg);

/* ---- trace (trace.c): events of the run's processes into traces/<logical pid> ---- */

struct uwrx_tracebuf;
struct trace_threads;
struct pending_exec;
struct proc;
struct notif_ctx;
/* Plan step "traces": opens the traces directory (before pivot_root hides it). */
bool trace_open_dir(const char *path);
/* Whether that directory is on tmpfs (uwrx_recorder.h, UWRX_REC_TMPFS). */
bool trace_on_tmpfs(void);
/* Around each handler call, so a process killed meanwhile keeps its buffer open. */
void trace_hold(struct proc *p);
void trace_release(struct proc *p);
/* Logical tid of thread `tid` of `p`: the logical pid for the main thread, else
 * ordinal * 1000000 + logical pid (ordinal 1, 2, ... in first-seen order). */
uint32_t trace_logical_tid(struct proc *p, pid_t tid);
/* Records the buffers could not hold, processes that got no buffer, first errno. */
void trace_losses(uint64_t *records, uint64_t *buffers, int *err);
/* Plan key "recorder": the in-process recorder may be set up (uwrx_recorder.h). */
void trace_enable_recorder(bool on);
/* UWRX_CTL_RECORDER: hands the process its recorder buffer; on success the fd's
 * installation answers the notification. */
void trace_handle_recorder(struct notif_ctx *ctx);
/* UWRX_CTL_EXEC_START with the shim's state page at `state` (uwrx_recorder.h): the
 * recorder buffer (the process's trace buffer, whose descriptor stays uwrx-init's: the
 * caller puts it into the target and does not close it), or -1. */
int trace_exec_recorder(struct notif_ctx *ctx, uint64_t state);
/* The recorder region of `p`'s buffer set up (once per process; `pid`: its pid, whose
 * mounts the stat rules name): the buffer's descriptor (uwrx-init's), or -1. */
int trace_recorder_region(struct proc *p, pid_t pid);
/* Prepared execs (uwrx_recorder.h): <traces>/TRACE_EXEC_DIR, bound at UWRX_EXEC_DIR. */
#define TRACE_EXEC_DIR "exec"
bool trace_exec_dir_ready(void);
/* Links `p`'s buffer there as `pid` (once per process; g.lock held); false: not linked. */
bool trace_exec_link(struct proc *p, pid_t pid);
/* Removes the link named `pid` left by an ended process (g.lock held), unless it is `p`'s. */
void trace_exec_unlink_stale(struct proc *p, pid_t pid);

/* ---- network (net.c): sockets for the DNS and proxy actors ---- */

/* The first process, before the clone: the network socket Node passed (-1: none). */
void net_init(int fd);
/* The first process, after the clone: only pid 1 hands sockets over. */
void net_close_in_parent(void);
/* Plan steps netsocket (a bound udp/tcp socket handed to Node), netaddr and netroute
 * (an address, or a local route for a prefix, on lo): 0, or -1 with errno. */
int net_hand_over_socket(const char *kind, const char *address, unsigned port);
int net_add_address(const char *address, unsigned prefix, bool local_route);
/* The feature (registered in feature.c): connect to an allocated address gets a
 * listener first. Enabled when Node passed the network socket. */

/* ---- files (files.c): files.meta, per-process versions, stat time squashing ---- */

struct plan;
/* Plan key "files" (src/sandbox/plan.ts FilesPlan); false when malformed. */
bool files_parse_plan(struct mp_reader *r);
/* Plan step "files" (before the steps hide the run directory): opens files.meta, the
 * versions directory, the uppers and the parents' layers. False with errno and the
 * path that failed in *what. */
bool files_open(const struct plan *plan, const char **what);
/* [[mount point, touched]...] of the overlays (nil without a file record): a path in an
 * untouched one is as the layers below show it (the rebuild policy checks it once). */
void files_write_overlays(struct mp_writer *w);
/* Pid 1, when every process ended: flushes files.meta, stamps the changed files' times. */
void files_finish(void);
/* Where this attempt's own files are squashed, relative to T0 (0 without a files plan):
 * the wall clocks start there too. */
int64_t files_wall_offset_ns(void);
/* Fills the stat rules of a new recorder buffer's header (uwrx_stat_times.h) for the
 * process of `tid`. */
struct uwrx_rec_header;
void files_stat_rules(struct uwrx_rec_header *h, pid_t tid);
/* The generation of directory paths: a path string read now stays right while this
 * returns the same value; 0 when none can be trusted (a change in flight or never
 * settled, or no file record). Thread-safe. */
uint64_t files_dirs_quiet(void);
/* Publishes the count of directory path changes to the recorders (UWRX_DIRS_PATH), once. */
void files_publish_dirs(void);
/* The newest time a file of this attempt shows at its end (after files_finish; times set
 * explicitly left out): newest.txt. 0 without file times. */
int64_t files_newest_ns(void);
/* File calls notified so far (opens, stats, access checks, mutations): the slow path's
 * count in the benchmarks. */
uint64_t files_notifications(void);
/* Partial rebuild: leaves `path` (absolute, as the sandbox sees it) as a skipped process
 * `p` left it in the record, as if `p` had done it: versions kept, files.meta lines and
 * file times as for its own calls. Called without g.lock. False when it failed. */
enum replayed_kind { REPLAYED_FILE, REPLAYED_DIR, REPLAYED_ABSENT };
bool files_change_for(struct proc *p, const char *path, enum replayed_kind kind, uint32_t mode, const uint8_t *data,
                      size_t len, const char *exe);

/* ---- plan (plan.c) ---- */

struct plan_step {
  char *op;
  char *source, *target, *fstype, *data, *path, *name;
  uint64_t flags;
  uint32_t mode;
  bool best_effort;     /* a failure is a warning (some operations always are) */
  bool ahead;           /* a mount whose filesystem is made ahead (ahead.c) */
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
  int linger_ms;              /* after the command's main process ended: -1 waits for all */
  struct repro_config repro;  /* repro.c */
  char *traces_dir;           /* trace.c: absolute <runDir>/traces, NULL: no tracing */
  bool test_deferral;         /* testdefer.c: the deferral test feature is on */
  char **skippable;           /* rebuild.c: executable names asked about at exec (NULL-terminated) */
  bool rebuild_wait;          /* rebuild.c: the exec waits for the answer (a replay with a policy) */
};

/* Parses a plan message body; returns false with a reason in `why`. */
bool plan_parse(struct mp_reader *r, struct plan *plan, const char **why);
/* Runs every step in order through the op table; a failing step is reported to Node
 * and ends the run (false), unless it is best effort (one warning line on stderr). */
bool plan_execute(const struct plan *plan);

/* ---- mounts made ahead (ahead.c) ---- */

/* Starts making the filesystems of the plan's `ahead` mount steps on worker threads. */
void ahead_start(const struct plan *plan);
/* Attaches step `s`'s filesystem at its target once made (0), or -1: mount it by
 * mount(2). After the last such step the workers are gone. */
int ahead_attach(const struct plan_step *s);
/* Step `s`'s filesystem as a detached mount (made now if no worker made it), or -1. */
int ahead_take(const struct plan_step *s);
/* Stops the workers and drops what they made (the plan failed, or it is done). */
void ahead_abandon(void);
/* Creates the filesystem of context `fs` (closed) as a detached mount with the mount
 * flags `flags`; -1 with errno. */
int ahead_create(int fs, uint64_t flags);

/* ---- trees bound read-only until first changed (lazy.c) ---- */

/* Plan step "lazy": binds `host_dir` read-only (and shared) at `target`, keeping the
 * detached overlay `overlay_fd` (owned from now on) to attach at `inside` (the same
 * directory after pivot_root) before the first change below it; with `overlay_fd` -1,
 * the overlay of step `s` is configured now and created then (lazy_deferred). False with
 * errno. */
bool lazy_bind(const struct plan_step *s, const char *host_dir, const char *target, const char *inside, int overlay_fd);
/* Whether the lazy trees' overlays are created at their first change: the kernel takes
 * overlayfs layers as descriptors, which stay usable after pivot_root (asked once).
 * Otherwise they are made ahead at set-up. */
bool lazy_deferred(void);
extern const struct feature feature_lazy;
/* uwrx-init itself is about to change absolute path `path` for process `tid`: the
 * overlay of a tree still bound read-only is attached first. */
void lazy_before_change(const char *path, pid_t tid);
/* The overlay of `mount_point` was attached (lazy.c): the recorders made from now on
 * count its mount, as process `tid` sees it, as an overlay's. */
void files_overlay_attached(const char *mount_point, pid_t tid);

/* ---- channel to Node (channel.c) ---- */

/* Reads one frame (blocking); caller frees *data. False on EOF or error. */
bool channel_read(int fd, uint8_t **data, size_t *len);
/* Sends one notification; `body` may be NULL. Thread-safe. */
void channel_send(const char *type, const struct mp_writer *body);
/* Sends one notification soon: held with others, written before the next message sent
 * with channel_send or channel_request, or by channel_flush. Thread-safe. */
void channel_post(const char *type, const struct mp_writer *body);
/* Posts one process notice (an entry of MSG_PROCS: a msgpack array, see
 * uwrx_init_proto.h) as channel_post would: entries held together go in one MSG_PROCS
 * envelope. Thread-safe. */
void channel_post_proc(const struct mp_writer *entry);
/* Writes what channel_post holds: all of it, or only once it was held long enough
 * (pid 1's main loop calls this at every turn); true when it wrote. */
bool channel_flush(bool all); /* true: it wrote what was held */

/* Asks Node; `on_reply` runs later in pid 1's main loop with the answer's body, or with
 * NULL and a reason (Node's error, "timed out"). Thread-safe; returns the request id
 * (0: out of memory, on_reply is never called). */
typedef void (*channel_reply_fn)(void *arg, struct mp_reader *body, const char *error);
uint64_t channel_request(const char *type, const struct mp_writer *body, unsigned timeout_ms,
                         channel_reply_fn on_reply, void *arg);
/* Requests from Node of `type`: the handler writes the answer's body into `out` and
 * returns NULL, or returns the error. Notifications of `type`. Register before the
 * command starts. */
typedef const char *(*channel_request_fn)(struct mp_reader *body, struct mp_writer *out);
typedef void (*channel_notice_fn)(struct mp_reader *body);
void channel_handle(const char *type, channel_request_fn on_request);
void channel_on(const char *type, channel_notice_fn on_notice);
/* Pid 1's main loop: one frame from Node (answer, request or notification; an unknown
 * type is a problem and, for a request, an error answer); the requests past their time. */
void channel_dispatch(const uint8_t *data, size_t len);
void channel_expire(void);
/* pid 1's loop: an eventfd (in its epoll set) that wakes it while it waits without a
 * timeout; channel_wait_begin says whether it may (nothing held, no request open: then
 * the next one wakes it), channel_wait_end after the wait. */
int channel_wake_fd(void);
bool channel_wait_begin(void);
/* Wakes pid 1's loop if it waits without a timeout (for work that needs the timed wait
 * and wrote no notice: an exit whose report waits for its status). */
void channel_wake(void);
void channel_wait_end(void);
size_t channel_requests_open(void);
/* Sends the error envelope naming a failed step; errno_value 0 when not from a syscall. */
void channel_fail(int step, const char *op, const char *path, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- processes (procs.c) ---- */

/* The executable before an exec, which a successful one of another program replaces
 * (see procs_check_exec: what decides when nothing else does). */
struct exec_snapshot {
  uint64_t exe_dev, exe_ino;
};

struct pending_exec {
  pid_t tid;            /* thread that called execve */
  /* repro.c: the exec_seq it was prepared with (uwrx_recorder.h; 0: not prepared), and
   * what was decided there for the new image (redirects.c) */
  uint32_t prepared_seq;
  bool prepared_skip, prepared_no_library;
  struct prepared_lease {
    bool opened;          /* the new image's lease opened at the preparing */
    uint64_t addr, reads; /* the process's lease until then (clocks.c) */
  } lease;
  uint64_t time;
  char *path;
  struct mp_writer argv; /* msgpack array of bin, ready to send */
  char *cwd;
  char *abs_path;       /* path joined to cwd (NULL: not known), and argv[0] (NULL: none), */
  char *arg0;           /* read once at the call for rebuild's list (rebuild.c) */
  struct exec_snapshot before;
  int old_mm;           /* /proc/<tid>/mem of the calling image: reads nothing at old_addr
                         * once an exec replaced it */
  uint64_t old_addr;    /* an address of the calling image: the exec's path, read from it */
  bool shares_parent_vm; /* a vfork child (posix_spawn, a shell's commands): the image stays
                          * its parent's until the exec succeeds, which kcmp tells exactly;
                          * `before` then holds only the executable */
};

/* The children a process (or uwrx itself) has registered, by pid: the next child's
 * ordinal counts those created before it. */
struct child_list {
  pid_t *pids;
  size_t n, cap;
  unsigned threads;     /* read_older_children: the parent's threads it listed */
};

struct proc {
  pid_t tgid;           /* pid inside the sandbox's pid namespace */
  int logical;          /* uwrx logical pid: 2, 3, ... in first-seen order, or on replay
                           the replayed attempt's pid for the same tree key */
  int parent_logical;   /* 1 = uwrx itself (pid 1 of the sandbox or unknown) */
  pid_t ppid;           /* the parent's pid when first seen */
  uint32_t ordinal;     /* 1 + the number of the parent's children created before it:
                           the tree key is <parent_logical>.<ordinal - 1> */
  struct child_list children;
  int pidfd;
  /* procs.c: its /proc/<pid>/task and its main thread's children file, kept open while
   * it runs (-1: not opened yet, -2: no more) */
  int task_fd, children_fd;
  /* procs.c: execs seen to succeed, and its executable as its vfork children found it
   * (valid while exe_gen == image_gen + 1) */
  uint64_t image_gen, exe_gen, exe_dev, exe_ino;
  uint64_t start_time;
  struct pending_exec *exec;   /* execve seen, success not yet confirmed */
  unsigned parent_threads; /* the parent's threads when this process was first seen
                              (0: not counted) */
  char *exec_arg0;      /* argv[0] of the exec the new image's shim proved, until its
                           control call is handled (rebuild.c) */
  char *exec_path;      /* that exec's path, absolute (NULL: its cwd was not known), until
                           the same call (rebuild.c) */
  bool exit_group_seen;
  int exit_group_code;
  uint64_t exit_group_time;
  bool reaped;          /* pid 1 reaped it: `wait_status` is exact */
  int wait_status;
  bool ended;           /* pidfd reported the exit, or exit_group was seen (procs.c) */
  uint64_t end_time;
  bool reported;        /* exit message sent */
  struct proc *next_pending;  /* ended but status not known yet */
  struct proc_repro repro;    /* repro.c */
  struct uwrx_tracebuf *trace;  /* trace.c: NULL when tracing is off or the buffer failed */
  int trace_users;              /* handler calls in progress (atomic) */
  bool trace_done;              /* exit reported: close the buffer when unused (atomic) */
  uint64_t trace_len;           /* its buffer's records in bytes when its exit was reported */
  struct trace_threads *threads; /* logical tids of threads other than the main one */
  bool recorder;                /* its trace buffer has its recorder region (final once renamed) */
  bool exec_linked;             /* trace.c: its buffer is linked for prepared execs */
  struct rebuild_skip *skip;    /* rebuild.c: the recorded output of a skipped exec */
  unsigned mapped_tids;         /* procs.c: entries of the tid map naming this process */
  /* redirects.c: the program of the current image (0: not known), whether the
   * recorder was told to leave libc alone in it ... */
  uint64_t image_key;
  bool image_left_alone;
  bool image_no_library; /* ... and to load no recorder library in it (UWRX_REC_NO_LIBRARY) */
  bool image_forked;     /* the image is its parent's, run on after a fork (redirects_image_ended) */
  /* procs.c: its working directory as /proc/<pid>/cwd reads, while the directory paths'
   * generation is cwd_gen (files_dirs_quiet) and it never moved (NULL: not known) */
  char *cwd;
  uint64_t cwd_gen;
  bool cwd_moved;       /* made a call that can change its cwd (chdir ...): read it at exec */
  bool cwd_opaque;      /* its cwd may change without a call of its own: never kept */
  bool adopts;          /* a subreaper: its children may be orphans of other processes */
};

void procs_init(void);
/* Plan key "replayPids": the replayed attempt's tree keys and pids as flat triples
 * (parent pid, ordinal from 0, pid); false when malformed. */
bool procs_parse_replay_pids(struct mp_reader *r);
/* What registering a thread seen for the first time reads from /proc, read before the
 * table's lock is taken so that other handlers do not wait for it. */
struct first_sight {
  bool known;                 /* its ids were read */
  pid_t tgid, ppid;
  int pidfd;                  /* of tgid when the ids came from one, else -1 */
  struct child_list older;    /* the parent's children alive with a pid below tgid */
};
void procs_first_sight(pid_t tid, struct first_sight *f);
void procs_first_sight_free(struct first_sight *f);
/* Process of thread `tid`, registering it on first sight (with `f` when read before,
 * else reading /proc now). The table lock must be held. NULL when the thread vanished. */
struct proc *procs_get(pid_t tid, uint64_t notif_id, uint64_t time, struct first_sight *f);
/* Process of thread `tid` if registered, NULL otherwise. The table lock must be held. */
struct proc *procs_find(pid_t tid);
/* Called with the lock held on each notification of a process with a pending exec;
 * `proven`: the call itself proves the exec succeeded (the new image's shim asks to
 * start it), so nothing needs to be read to tell. */
void procs_check_exec(struct proc *p, pid_t tid, bool proven);
/* Whether a process of the tree made a pid namespace of its own (unshare, setns): its
 * pids are not all the sandbox's any more. */
bool procs_pid_namespaces(void);
/* A thread called execve/execveat: remember it until the outcome is known. */
void procs_exec_seen(struct proc *p, struct pending_exec *exec);
/* pid 1 reaped `pid` with `status`. */
void procs_reaped(pid_t pid, int status);
/* Whether `p` was reaped (by its parent or pid 1): its clocks are final. Lock held. */
bool procs_was_reaped(const struct proc *p);
/* epoll reported the pidfd of `p` readable. */
void procs_pidfd_ready(struct proc *p);
/* Logical pids and pids of the processes not ended yet (at most `max`); returns how many. */
size_t procs_running(int *logical, pid_t *tgid, size_t max);
/* Calls fn for each process not ended yet (g.lock held). */
void procs_each_running(void (*fn)(struct proc *, void *), void *arg);
/* Retries exit reports whose status was not known yet. */
void procs_flush_pending(bool final);
/* Whether exits wait for their status (procs_flush_pending retries them). */
bool procs_pending_any(void);
uint64_t now_ns(void);

/* ---- work after the table's lock (later.c) ----
 * What an exit report (g.lock held) leaves for pid 1 to do once it let go of the lock:
 * queued by anyone, run by pid 1's loop (later_run, without g.lock, or at the end). */
void later(void (*fn)(void *arg, size_t n), void *arg, size_t n);
void later_unmap(void *addr, size_t len);
void later_close(int fd);
void later_run(void);

/* ---- seccomp (filter.c, notify.c) ---- */

/* In the command's process: install the filter generated from the enabled features'
 * subscriptions (features_configure first), return the listener fd (or -1, errno). */
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
  bool deferred;        /* notify_defer was called: the answer comes later */
  bool sent;            /* the handler answered it itself (an fd put in with the answer) */
  uint64_t answering;   /* now_ns() as the answer went out (notify_answering), or 0 */
  /* work the answer need not wait for (a note to Node), set by notify_after: run by the
   * handler thread once the answer is sent (or handed to whoever answers later) */
  void (*after)(void *after_arg);
  void *after_arg;
  /* target_path_at's answers in this notification, by argument: a changing call's path
   * is wanted by the lazy trees and by the files record both (target_paths_forget) */
  struct {
    uint64_t addr;
    int dirfd;
    char *path;
  } paths[2];
};

/* Leaves `fn(arg)` for after the answer. Set before the answer can go out (a handler
 * that sends it itself): the run does not end (notify_after_drain) while one is left. */
void notify_after(struct notif_ctx *ctx, void (*fn)(void *), void *arg);
/* Takes back what notify_after left (the handler does it now, or not at all). */
void notify_after_cancel(struct notif_ctx *ctx);
/* Waits (at most a second) until no handler thread has work left after an answer: the
 * run's last process may have ended on that answer before its note went out. */
void notify_after_drain(void);
/* A handler about to do something that may take long (a large copy): another handler
 * thread takes the turn to receive now, so other processes' calls are not held up. */
void notify_may_block(void);

/* Marks the moment a handler sends the answer itself (ADDFD with SEND): the handler time
 * counted per call ends there. With the synchronous wake-up the answer switches to the
 * target at once, and what the handler thread waits after that is the target's time. */
void notify_answering(struct notif_ctx *ctx);

/* Reads a NUL-terminated string of at most `max` bytes at `addr` in thread `tid`. */
char *target_read_string(int memfd, uint64_t addr, size_t max);
bool notif_id_valid(uint64_t id);

/* ---- deferred answers (notify.c) ----
 * A handler that cannot answer yet (it waits for Node, or for another thread) calls
 * notify_defer and returns VERDICT_PENDING: only the calling thread of the target
 * waits, the handler thread goes on with other notifications. The returned handle
 * (0: out of memory, answer now) is given to notify_reply later, from any thread. A
 * target killed meanwhile drops its deferred answers when its exit is reported; a
 * reply after that finds nothing and returns false. (The filter's WAIT_KILLABLE_RECV
 * flag keeps other signals from interrupting the wait once the call was received.) */
uint64_t notify_defer(struct notif_ctx *ctx);
/* Sends the answer: `val`, or -1 with errno `error`, or lets the kernel run the call.
 * False when the target no longer waits (the answer is dropped). */
bool notify_reply(uint64_t handle, int64_t val, int error, bool continue_call);
/* The process's exit was reported: its deferred answers are dropped (lock held). */
void notify_drop_process(struct proc *p);
/* Deferred answers waiting now, answered and dropped so far. */
void notify_deferred_stats(size_t *open, uint64_t *answered, uint64_t *dropped);
/* Notifications received so far by system call name (the control call is
 * "uwrx_control", numbers without a name "other"), those with a count only; at most
 * `cap` entries, their number returned. */
/* Notifications by system call name so far, and the ns the handler threads spent on
 * each kind; returns how many names. */
size_t notify_counts(const char **names, uint64_t *counts, uint64_t *ns, size_t cap);

/* ---- features (feature.c): the registry ----
 * A feature is a named set of syscall subscriptions and lifecycle hooks. The seccomp
 * filter notifies exactly the calls some enabled feature subscribed to; a notification
 * goes to its subscribers in registration order until one answers. */
enum verdict {
  VERDICT_CONTINUE,  /* not answered: the next subscriber, or the kernel, runs the call */
  VERDICT_ANSWERED,  /* ctx->resp holds the answer */
  VERDICT_PENDING,   /* notify_defer was called: the answer comes later */
};

typedef enum verdict (*syscall_handler)(struct notif_ctx *ctx);

/* A condition the BPF filter checks itself on args[arg]:
 *   ARG_ONE_OF    its low 32 bits (the kernel reads only those of an int) are one of `values`;
 *   ARG_NONZERO   the whole argument is not 0 (a pointer is set);
 *   ARG_POSITIVE  its low 32 bits, as an int, are > 0 (a timeout in ms);
 *   ARG_ANY_BIT   its low 32 bits have a bit of values[0] set (flags). */
#define ARG_MATCH_MAX 8
enum arg_test { ARG_ONE_OF, ARG_NONZERO, ARG_POSITIVE, ARG_ANY_BIT };
struct arg_match {
  uint8_t arg;
  uint8_t count;
  uint8_t test;  /* enum arg_test */
  uint32_t values[ARG_MATCH_MAX];
};

struct subscription {
  int nr;
  syscall_handler on_syscall;
  const struct arg_match *match;            /* NULL: every call */
  bool (*wanted)(const struct plan *plan);  /* NULL: whenever the feature is enabled */
};

struct feature {
  const char *name;
  bool (*enabled)(const struct plan *plan);  /* NULL: always */
  const struct subscription *subs;
  size_t nsubs;
  /* Lifecycle, called with g.lock held: first sight of a process (parent NULL: started
   * by uwrx or re-parented), a confirmed exec, the exit as reported to Node. */
  void (*on_spawn)(struct proc *p, struct proc *parent);
  void (*on_exec)(const struct proc *p, const struct pending_exec *e);
  void (*on_exit)(struct proc *p, bool known, int status);
  /* Every notification of a registered process, before any subscriber sees it (the
   * calling thread is back from whatever it did since its previous notified call). */
  void (*on_call)(struct notif_ctx *ctx);
};

#define SUBSCRIPTIONS(arr) (arr), (sizeof(arr) / sizeof((arr)[0]))

extern const struct feature feature_processes, feature_trace, feature_files, feature_reproducibility,
    feature_clocks, feature_deferral_test, feature_network, feature_rebuild;

/* Pid 1, before the command starts: picks the enabled features and their handlers. */
void features_configure(const struct plan *plan);
/* Offers a notification to the subscribers of its call. */
enum verdict features_dispatch(struct notif_ctx *ctx);
void features_spawn(struct proc *p, struct proc *parent);

/* Where the recorder redirects libc's entries (redirects.c; g.lock held): an exec of
 * `path` succeeded in `p`; `p` was forked from `parent`; a new image's recorder header
 * is about to be handed out (sets its redirect_skip); the image ended (exec, exit_group,
 * exit). */
void redirects_exec(struct proc *p, const char *path);
void redirects_spawned(struct proc *p, const struct proc *parent);
void redirects_image_started(struct proc *p, struct uwrx_rec_header *h);
void redirects_image_ended(struct proc *p);
/* A prepared exec of `path` (uwrx_recorder.h; the old image ended before, with
 * redirects_image_ended): the new image's choices written to `h` and returned; then,
 * once its shim took it, `p` runs them (no count reset: the new image counts since its
 * start). */
void redirects_exec_prepare(const char *path, struct uwrx_rec_header *h, bool *skip, bool *no_library);
void redirects_exec_adopt(struct proc *p, const char *path, bool skip, bool no_library);
void features_exec(const struct proc *p, const struct pending_exec *e);
void features_exit(struct proc *p, bool known, int status);
void features_call(struct notif_ctx *ctx);

/* What the filter does with one syscall number (merged over every subscriber). */
enum rule_action { RULE_NOTIFY, RULE_ENOSYS };
struct filter_rule {
  uint32_t nr;
  enum rule_action action;
  bool conditional;        /* notify only when `match` holds */
  struct arg_match match;
};
/* The rules of the enabled features, sorted by nr; returns their number (<= cap). */
size_t features_filter_rules(struct filter_rule *out, size_t cap);

/* Fills in ctx's answer: val, or -1 with errno `error` (never CONTINUE). */
enum verdict notify_answer_now(struct notif_ctx *ctx, int64_t val, int error);

/* ---- run-time problems (problems.c) ----
 * Things that went wrong during the run without stopping it: something the record
 * should hold and does not. Counted by kind and reported to Node (MSG_PROBLEM), so the
 * attempt's status, the summary line and `uwrx check` show them. Thread-safe. */
enum problem {
  PROBLEM_VERSION_LOST,     /* a version of a file could not be preserved */
  PROBLEM_TRACE_BUFFER,     /* a process's trace buffer could not be opened or written */
  PROBLEM_NO_MEMORY,        /* an allocation failed: something was not recorded */
  PROBLEM_REQUEST_TIMEOUT,  /* Node did not answer a request in time */
  PROBLEM_BAD_MESSAGE,      /* Node sent a message of unknown type or shape */
  PROBLEM_COUNT
};
void problem(enum problem kind);
/* The same, with what it was about (a path) for the first report of its kind. */
void problem_at(enum problem kind, const char *detail);
/* Reports the counts not reported yet (before the done message). */
void problems_flush(void);
/* A msgpack map {kind: count} of the kinds seen (an empty map when none). */
void problems_write(struct mp_writer *w);
uint64_t problems_count(enum problem kind);

/* ---- syscall arguments (args.c) ---- */

#define MAX_SYSCALL 512
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* A path argument: relative to dirfd (AT_FDCWD: the cwd), at `addr` in the target. */
struct path_arg {
  int dirfd;
  uint64_t addr;
  bool follow;    /* the last component's symlink is followed */
  bool empty_ok;  /* AT_EMPTY_PATH: an empty path names dirfd itself */
};

/* The arguments of one call by meaning; fields the call lacks are 0 (fd: -1). */
struct call_args {
  struct path_arg path;   /* the path acted on (link/symlink: the new name) */
  struct path_arg path2;  /* rename's new path, link's old one */
  bool has_path, has_path2;
  int fd;                 /* fd calls (fstat, fchmod, write ...), -1 otherwise */
  uint64_t flags;         /* open flags (openat2: from open_how), AT_*, RENAME_* (low 32 bits) */
  uint32_t mode;
  uint32_t uid, gid;
  uint64_t length;        /* truncate's length, write's count, writev's iovcnt ... */
  uint64_t buf, buf2;     /* the call's buffer(s): stat result, write data, argv, tz ... */
  uint64_t extra;         /* statx's mask, openat2's size, exit code, clock id */
};

/* Decodes the arguments of ctx's call; false for a call without a layout (or an
 * unreadable open_how): the handler lets the kernel run it. */
bool decode_call(struct notif_ctx *ctx, struct call_args *out);

/* ---- path arguments (paths.c) ---- */

#define PATH_MAX_TARGET 4096
/* Room for "/proc/<pid>/<what>" with the short `what`s used here. */
#define PROC_PATH_MAX 64
/* "/proc/<pid>/<what>", or with fd >= 0 "/proc/<pid>/<what>/<fd>", into `buf`
 * (PROC_PATH_MAX bytes; a longer `what` is cut): formatted by hand, since the handler
 * path formats several such paths per process and snprintf showed in its profile. */
const char *proc_path(char *buf, pid_t pid, const char *what, int fd);
/* The target's memory, opened on first use and closed after the handler. */
int target_mem(struct notif_ctx *ctx);
/* A NUL-terminated string of at most `max` bytes at `addr` of the target: malloc'd or NULL. */
char *target_string(struct notif_ctx *ctx, uint64_t addr, size_t max);
/* `len` bytes at `addr` of the target as /proc/<tid>/mem reads them (pread), without
 * opening it when process_vm_readv reads them whole (the common case; the file's forced
 * access also reads what process_vm_readv cannot, such as PROT_NONE pages). */
ssize_t target_read_whole(struct notif_ctx *ctx, void *buf, size_t len, uint64_t addr);
/* target_read_string, read with target_read_whole. */
char *target_read_string_whole(struct notif_ctx *ctx, uint64_t addr, size_t max);
/* Collapses "." and ".." and repeated slashes of an absolute path in place, lexically. */
void path_normalize(char *path);
/* Absolute directory of `dirfd` (AT_FDCWD: the cwd) of thread `tid`; malloc'd or NULL. */
char *target_dir_path(pid_t tid, int dirfd);
/* /proc/<tid>/<what> (e.g. "stat", "fdinfo/3") read into buf, NUL-terminated: false when
 * it cannot be read or is empty. One read: enough for the small files asked for. */
bool proc_read(pid_t tid, const char *what, char *buf, size_t size);
/* stat of what fd `fd` of `tid` names (through /proc/<tid>/fd/<fd>); false when it cannot
 * be looked at. */
struct stat;
bool proc_fd_stat(pid_t tid, int fd, struct stat *st);
/* A descriptor of this process for the open file fd `fd` of process `pidfd` names
 * (pidfd_getfd: the same open file, its offset shared); -1 when it cannot be had. */
int proc_getfd(int pidfd, int fd);
/* Field `n` (1-based, as proc(5) numbers them) of a /proc/<pid>/stat line: the text just
 * after its leading space, or NULL. Counted after the command name, which may hold spaces. */
const char *proc_stat_field(const char *stat, int n);
/* The path argument at `addr`, made absolute against `dirfd` and lexically normalised
 * ("." and ".." collapsed without following symlinks); malloc'd, NULL with errno set.
 * Read from the target once per notification: asked again, a copy of the first answer. */
char *target_path_at(struct notif_ctx *ctx, int dirfd, uint64_t addr);
/* Frees what target_path_at kept of a notification. */
void target_paths_forget(struct notif_ctx *ctx);

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
#define EV_WAKE ((uint64_t)4)

#endif
