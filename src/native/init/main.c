/* uwrx-init: started by Node with the control socket on fd 3 (and the network socket on
 * fd 4), or on the fds `--control-fd N --net-fd M` name when Node passes descriptors to
 * the command: those are at their own numbers, and stay open and inheritable for the
 * command (every descriptor uwrx-init opens is close-on-exec, or closed before the
 * command's exec).
 *
 * The first process reads the plan and clones pid 1 of new user, mount, pid, net, uts
 * and ipc namespaces, writing its uid/gid maps from outside; it then only forwards
 * SIGINT/SIGTERM (not a terminal's Ctrl-C, which the tree got itself) and relays pid 1's
 * exit status. Pid 1 carries out the plan (mounts,
 * pivot_root), forks the command (which enters a nested user and mount namespace and
 * installs the seccomp filter), serves the notifications, reaps every process and ends
 * when none is left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_init_proto.h"

struct init_state g = {
  .sock = -1,
  .send_lock = PTHREAD_MUTEX_INITIALIZER,
  .listener = -1,
  .epoll = -1,
  .lock = PTHREAD_MUTEX_INITIALIZER,
};

static struct plan plan;

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

static bool write_maps(pid_t child);

/* ---- the command (pid 2) ---- */

/* One message on the command's setup socket: `err` (0, or a negated stage*1000+errno)
 * and optionally an fd. */
static void send_fd(int sock, int fd, int err) {
  struct iovec iov = { .iov_base = &err, .iov_len = sizeof err };
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (fd >= 0) {
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (sendmsg(sock, &msg, 0) < 0 && errno == EINTR) {}
}

/* Returns the fd, or -1 with *err set to what the child sent (EPIPE when it died). */
static int recv_fd(int sock, int *err) {
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = { .iov_base = err, .iov_len = sizeof *err };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  *err = EPIPE;
  ssize_t n;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (n <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* The capability bounding set uwrx was started with (bit n: capability n). A new user
 * namespace starts with a full one, so the command's would otherwise show (and, as root,
 * hold in its namespace) capabilities its caller lacks: a container's root often runs
 * without CAP_SYS_RESOURCE, say. Read before the namespaces are made. */
static uint64_t host_bounding = ~0ull;

static void read_host_bounding(void) {
  uint64_t set = 0;
  int cap = 0;
  for (; cap < 64; cap++) {
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) break; /* past the kernel's last capability */
    if (r == 1) set |= 1ull << cap;
  }
  if (cap > 0) host_bounding = set; /* none readable: leave the set as it is */
}

/* Drops from the bounding set what the caller's lacked (before exec: the command, and
 * everything it runs as root, then has no more than natively). */
static void match_host_bounding(void) {
  for (int cap = 0; cap < 64; cap++) {
    if (host_bounding & (1ull << cap)) continue;
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
}

/* Codes sent back by the command child before exec (negated to tell them from errno). */
enum { STAGE_CHDIR = 1, STAGE_FILTER = 2, STAGE_LOCK = 3, STAGE_PERSONALITY = 4 };

static __attribute__((noreturn)) void run_command(int sock) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  /* modes of the files the command creates must not depend on the caller's umask */
  umask(022);
  /* A mount namespace owned by a child user namespace: every mount of the sandbox is
   * copied in locked, so even a root command cannot unmount what hides the record. */
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    int err = errno;
    send_fd(sock, -1, -(STAGE_LOCK * 1000 + err));
    _exit(127);
  }
  send_fd(sock, -1, 0); /* pid 1 writes our maps: they need its CAP_SETUID */
  char ok = 0;
  if (read(sock, &ok, 1) != 1 || ok != 1) _exit(127);
  if (chdir(plan.cwd) != 0) {
    int err = errno;
    send_fd(sock, -1, -(STAGE_CHDIR * 1000 + err));
    _exit(127);
  }
  /* Stack, heap and mmap addresses leak into programs' output (glibc's temp names mix in
   * a stack address): the same everywhere in the tree, kept across fork and exec. */
  int persona = personality(0xffffffff);
  if (!plan.repro.aslr && (persona < 0 || personality((unsigned long)persona | ADDR_NO_RANDOMIZE) < 0)) {
    int err = errno;
    send_fd(sock, -1, -(STAGE_PERSONALITY * 1000 + err));
    _exit(127);
  }
  int listener = filter_install();
  if (listener < 0) {
    int err = errno;
    send_fd(sock, -1, -(STAGE_FILTER * 1000 + err));
    _exit(127);
  }
  send_fd(sock, listener, 0);
  close(listener);
  close(sock);
  match_host_bounding();
  /* execvpe searches the PATH of this process's own environment (empty): the command is
   * looked up as the caller's shell would, in the caller's PATH */
  const char *path = NULL;
  for (char **e = plan.env; *e; e++)
    if (!strncmp(*e, "PATH=", 5)) path = *e + 5;
  if (path) setenv("PATH", path, 1);
  execvpe(plan.argv[0], plan.argv, plan.env);
  int err = errno;
  fprintf(stderr, "uwrx: %s: %s\n", plan.argv[0], strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

/* ---- pid 1 ---- */

static int timer_fd = -1;
static int command_status = -1;
/* Processes still running when the linger time after the command's exit ran out: they
 * were terminated (logical pids). */
#define LINGER_REPORT_MAX 64
static int lingered[LINGER_REPORT_MAX];
static char lingered_name[LINGER_REPORT_MAX][16]; /* comm: also for a fork that did not exec */
static size_t nlingered, nlingered_total;
static bool linger_armed;

static void arm_timer(int ms) {
  struct itimerspec its = { 0 };
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L + 1;
  timerfd_settime(timer_fd, 0, &its, NULL);
}

/* SIGTERM to every process of the namespace now, SIGKILL after the grace period. */
static void start_termination(int grace_ms) {
  if (g.terminating) return;
  g.terminating = true;
  kill(-1, SIGTERM);
  arm_timer(grace_ms);
}

static void on_terminate(struct mp_reader *body) {
  int grace = plan.grace_ms;
  uint32_t m;
  if (mp_peek(body) == MP_MAP && mp_read_map(body, &m)) {
    while (m--) {
      const char *k;
      uint32_t klen;
      int64_t v;
      if (!mp_read_bytes(body, &k, &klen)) break;
      if (mp_key_is(k, klen, "graceMs") && mp_read_int(body, &v)) grace = (int)v;
      else mp_skip(body);
    }
  }
  start_termination(grace);
}

static void write_deferred(struct mp_writer *out) {
  size_t open;
  uint64_t answered, dropped;
  notify_deferred_stats(&open, &answered, &dropped);
  mp_write_map(out, 3);
  mp_write_cstr(out, "open");
  mp_write_uint(out, open);
  mp_write_cstr(out, "answered");
  mp_write_uint(out, answered);
  mp_write_cstr(out, "dropped");
  mp_write_uint(out, dropped);
}

static const char *on_stats(struct mp_reader *body, struct mp_writer *out) {
  (void)body;
  mp_write_map(out, 2);
  mp_write_cstr(out, "deferred");
  write_deferred(out);
  mp_write_cstr(out, "problems");
  problems_write(out);
  return NULL;
}

static void on_socket_message(void) {
  uint8_t *data;
  size_t len;
  if (!channel_read(g.sock, &data, &len)) {
    /* Node closed the channel: it is going away, so is the sandbox */
    epoll_ctl(g.epoll, EPOLL_CTL_DEL, g.sock, NULL);
    start_termination(0);
    return;
  }
  channel_dispatch(data, len);
  free(data);
}

/* Processes of the sandbox other than pid 1, as its /proc lists them. */
static size_t processes_left(void) {
  DIR *d = opendir("/proc");
  if (!d) return 0;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && strcmp(e->d_name, "1") != 0) n++;
  closedir(d);
  return n;
}

static void read_comm(pid_t pid, char out[16]) {
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/comm", pid);
  out[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, 15);
  close(fd);
  out[n > 0 ? n : 0] = 0;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) break;
    if (pid == g.command_pid) command_status = status;
    pthread_mutex_lock(&g.lock);
    procs_reaped(pid, status);
    pthread_mutex_unlock(&g.lock);
  }
}

static bool children_left(void) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0;
}

/* User and system time of `who` (RUSAGE_SELF: every thread of uwrx-init; RUSAGE_CHILDREN:
 * the command's tree, every process of it reaped by now), microseconds. */
static uint64_t cpu_us(int who) {
  struct rusage u;
  if (getrusage(who, &u) != 0) return 0;
  return (uint64_t)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000u + (uint64_t)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static void send_done(void) {
  struct mp_writer w;
  mp_writer_init(&w);
  uint64_t lost_records, lost_buffers;
  int lost_errno;
  trace_losses(&lost_records, &lost_buffers, &lost_errno);
  bool lost = lost_records || lost_buffers;
  int64_t newest = files_newest_ns();
  mp_write_map(&w, (lost ? 14 : 11) + (newest ? 1 : 0));
  /* where the run's CPU time went: the command's processes, and uwrx-init's own work */
  mp_write_cstr(&w, "cpuUs");
  mp_write_map(&w, 2);
  mp_write_cstr(&w, "command");
  mp_write_uint(&w, cpu_us(RUSAGE_CHILDREN));
  mp_write_cstr(&w, "init");
  mp_write_uint(&w, cpu_us(RUSAGE_SELF));
  mp_write_cstr(&w, "fileNotifications");
  mp_write_uint(&w, files_notifications());
  static const char *names[512];
  static uint64_t counts[512], handled_ns[512];
  size_t ncounts = notify_counts(names, counts, handled_ns, 512);
  mp_write_cstr(&w, "notifications");
  mp_write_map(&w, (uint32_t)ncounts);
  for (size_t i = 0; i < ncounts; i++) {
    mp_write_cstr(&w, names[i]);
    mp_write_uint(&w, counts[i]);
  }
  mp_write_cstr(&w, "notificationUs");
  mp_write_map(&w, (uint32_t)ncounts);
  for (size_t i = 0; i < ncounts; i++) {
    mp_write_cstr(&w, names[i]);
    mp_write_uint(&w, handled_ns[i] / 1000);
  }
  if (newest) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)newest);
    mp_write_cstr(&w, "newestFileNs");
    mp_write_cstr(&w, text);
  }
  if (lost) {
    mp_write_cstr(&w, "traceLostRecords");
    mp_write_uint(&w, lost_records);
    mp_write_cstr(&w, "traceLostBuffers");
    mp_write_uint(&w, lost_buffers);
    mp_write_cstr(&w, "traceErrno");
    mp_write_int(&w, lost_errno);
  }
  mp_write_cstr(&w, "terminated");
  mp_write_array(&w, (uint32_t)nlingered);
  for (size_t i = 0; i < nlingered; i++) {
    mp_write_map(&w, 2);
    mp_write_cstr(&w, "pid");
    mp_write_int(&w, lingered[i]);
    mp_write_cstr(&w, "name");
    mp_write_cstr(&w, lingered_name[i]);
  }
  mp_write_cstr(&w, "terminatedCount");
  mp_write_uint(&w, nlingered_total);
  mp_write_cstr(&w, "status");
  mp_write_int(&w, command_status >= 0 ? exit_code_of(command_status) : 1);
  mp_write_cstr(&w, "code");
  if (command_status >= 0 && WIFEXITED(command_status)) mp_write_int(&w, WEXITSTATUS(command_status));
  else mp_write_nil(&w);
  mp_write_cstr(&w, "signal");
  if (command_status >= 0 && WIFSIGNALED(command_status)) mp_write_int(&w, WTERMSIG(command_status));
  else mp_write_nil(&w);
  mp_write_cstr(&w, "time");
  mp_write_uint(&w, now_ns());
  mp_write_cstr(&w, "deferred");
  write_deferred(&w);
  channel_send(MSG_DONE, &w);
  mp_writer_free(&w);
}

/* A terminal's Ctrl-C (the kernel's SIGINT to the foreground group): it reaches the
 * command tree itself, which reacts as natively, and both uwrx-init processes too; they
 * leave it to the tree, and Node decides whether the tree is stopped after. */
static bool from_terminal(int signo, int code) { return signo == SIGINT && code == SI_KERNEL; }

/* The signals pid 1 takes through its signalfd: children ending, and requests to stop. */
static void handled_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGCHLD);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
}


static __attribute__((noreturn)) void pid1_main(void) {
  prctl(PR_SET_NAME, "uwrx-init");
  repro_configure(&plan.repro);
  features_configure(&plan);
  channel_on(MSG_TERMINATE, on_terminate);
  channel_handle(MSG_STATS, on_stats);
  if (!plan_execute(&plan)) _exit(125);

  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    channel_fail(-1, "socketpair", NULL, errno, "socketpair for the seccomp listener");
    _exit(125);
  }
  g.epoll = epoll_create1(EPOLL_CLOEXEC);
  procs_init();
  pid_t child = fork();
  if (child < 0) {
    channel_fail(-1, "fork", NULL, errno, "fork the command");
    _exit(125);
  }
  if (child == 0) {
    close(pair[0]);
    close(g.sock);
    run_command(pair[1]);
  }
  g.command_pid = child;
  close(pair[1]);
  int err;
  int listener = recv_fd(pair[0], &err);
  if (listener < 0 && err == 0) {
    char ok = write_maps(child) ? 1 : 0;
    if (write(pair[0], &ok, 1) != 1) ok = 0;
    listener = ok ? recv_fd(pair[0], &err) : -1;
    if (!ok) _exit(125); /* write_maps reported the failure */
  }
  close(pair[0]);
  if (listener < 0) {
    int e = err < 0 ? (-err) % 1000 : err;
    int stage = err < 0 ? (-err) / 1000 : 0;
    if (stage == STAGE_CHDIR)
      channel_fail(-1, "chdir", plan.cwd, e, "change directory to %s", plan.cwd);
    else if (stage == STAGE_LOCK)
      channel_fail(-1, "unshare", NULL, e, "create the command's user and mount namespaces");
    else if (stage == STAGE_PERSONALITY)
      channel_fail(-1, "personality", NULL, e, "turn address-space randomization off (ADDR_NO_RANDOMIZE)");
    else
      channel_fail(-1, "seccomp", NULL, e, "install the seccomp filter with a notification listener");
    kill(child, SIGKILL);
    _exit(125);
  }
  if (!notify_start(listener, plan.handler_threads)) {
    channel_fail(-1, "seccomp", NULL, errno, "start the notification handlers");
    kill(child, SIGKILL);
    _exit(125);
  }
  {
    struct mp_writer w;
    mp_writer_init(&w);
    mp_write_map(&w, 1);
    mp_write_cstr(&w, "time");
    mp_write_uint(&w, now_ns());
    channel_send(MSG_STARTED, &w);
    mp_writer_free(&w);
  }

  sigset_t set;
  handled_signals(&set);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  struct epoll_event ev = { .events = EPOLLIN };
  ev.data.u64 = EV_SIGNAL;
  epoll_ctl(g.epoll, EPOLL_CTL_ADD, sfd, &ev);
  ev.data.u64 = EV_SOCKET;
  epoll_ctl(g.epoll, EPOLL_CTL_ADD, g.sock, &ev);
  ev.data.u64 = EV_TIMER;
  epoll_ctl(g.epoll, EPOLL_CTL_ADD, timer_fd, &ev);
  int wake_fd = channel_wake_fd();
  ev.data.u64 = EV_WAKE;
  if (wake_fd >= 0) epoll_ctl(g.epoll, EPOLL_CTL_ADD, wake_fd, &ev);

  bool killed = false;
  /* pid 1's own children (the command, orphans) change only with a SIGCHLD: reaping and
   * the check for what is left wait for one, not for every wake-up (a process's end
   * wakes this loop through its pidfd, and its parent reaps it) */
  bool child_event = true;
  /* The last turn had work (events, notices written): the next wait keeps its timeout.
   * While processes run, the first notice held after a write would otherwise wake a loop
   * that waits without one only to start the timed wait that writes it: two wake-ups
   * per turn instead of one. A turn that found nothing lets the wait go untimed. */
  bool busy = true;
  for (;;) {
    if (child_event) {
      child_event = false;
      reap();
      if (!children_left()) break;
    }
    if (command_status >= 0 && !linger_armed && !g.terminating && plan.linger_ms >= 0) {
      linger_armed = true;
      arm_timer(plan.linger_ms);
    }
    struct epoll_event events[64];
    /* statuses not known at exit are retried every 20 ms, held notices written and
     * requests expired; with none of them (and a turn without work before) the wait has
     * no timeout. Decided under g.lock:
     * an exit made pending after it wakes the loop (procs.c, ending) */
    pthread_mutex_lock(&g.lock);
    bool timed = busy || procs_pending_any();
    bool untimed = !timed && channel_wait_begin();
    pthread_mutex_unlock(&g.lock);
    int n = epoll_wait(g.epoll, events, 64, untimed ? -1 : 20);
    if (untimed) channel_wait_end();
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == EV_WAKE) {
        /* read by channel_wait_end */
      } else if (tag == EV_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGCHLD) child_event = true;
          /* (a blocked signal is never dropped: pid 1 gets the terminal's too) */
          else if (from_terminal((int)si.ssi_signo, si.ssi_code)) continue;
          else start_termination(plan.grace_ms);
        }
      } else if (tag == EV_SOCKET) {
        on_socket_message();
      } else if (tag == EV_TIMER) {
        uint64_t ticks;
        if (read(timer_fd, &ticks, sizeof ticks) < 0) {}
        if (!g.terminating && linger_armed) {
          /* the command ended a while ago; what it left running goes now */
          pid_t tgid[LINGER_REPORT_MAX];
          pthread_mutex_lock(&g.lock);
          nlingered = procs_running(lingered, tgid, LINGER_REPORT_MAX);
          pthread_mutex_unlock(&g.lock);
          for (size_t i = 0; i < nlingered; i++) read_comm(tgid[i], lingered_name[i]);
          nlingered_total = nlingered;
          size_t seen = processes_left();
          if (seen > nlingered_total) nlingered_total = seen; /* some never made a notified call */
          start_termination(plan.grace_ms);
        } else if (g.terminating && !killed) {
          killed = true;
          kill(-1, SIGKILL);
        }
      } else {
        pthread_mutex_lock(&g.lock);
        procs_pidfd_ready(events[i].data.ptr);
        pthread_mutex_unlock(&g.lock);
        later_run(); /* the report's file work, without the lock (later.c) */
      }
    }
    if (child_event) reap(); /* the statuses of ended orphans, before the flush */
    pthread_mutex_lock(&g.lock);
    procs_flush_pending(false);
    pthread_mutex_unlock(&g.lock);
    later_run();
    channel_expire();
    busy = channel_flush(false) || n > 0;
  }
  notify_after_drain(); /* a note of the last answers, before the end is told */
  pthread_mutex_lock(&g.lock);
  g.finishing = true;
  procs_flush_pending(true);
  later_run(); /* every buffer closed (and its losses counted) before the end is told */
  files_finish();
  problems_flush();
  send_done();
  pthread_mutex_unlock(&g.lock);
  _exit(command_status >= 0 ? exit_code_of(command_status) : 1);
}

/* ---- the first process ---- */

/* Maps of a new user namespace must be written from its parent namespace: only there
 * does root hold the CAP_SETUID a full-range map needs. Used for the sandbox's namespace
 * (by the first process) and for the command's nested one (by pid 1). */
static bool write_maps(pid_t child) {
  char path[64];
  if (plan.deny_setgroups) {
    snprintf(path, sizeof path, "/proc/%d/setgroups", child);
    if (write_file(path, "deny") != 0) {
      channel_fail(-1, "setgroups", path, errno, "deny setgroups");
      return false;
    }
  }
  if (plan.uid_map) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", child);
    if (write_file(path, plan.uid_map) != 0) {
      channel_fail(-1, "uid_map", path, errno, "write uid map \"%s\"", plan.uid_map);
      return false;
    }
  }
  if (plan.gid_map) {
    snprintf(path, sizeof path, "/proc/%d/gid_map", child);
    if (write_file(path, plan.gid_map) != 0) {
      channel_fail(-1, "gid_map", path, errno, "write gid map \"%s\"", plan.gid_map);
      return false;
    }
  }
  return true;
}

/* `uwrx-init --probe-listener`: can a seccomp notification listener be installed here?
 * Exit 0: yes; 3: EBUSY (this process tree has one already: inside another uwrx run, or
 * under another supervisor); 4: another error. Tried in a child, which ends right after. */
static int probe_listener(void) {
  pid_t child = fork();
  if (child < 0) return 4;
  if (child == 0) {
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { .len = 1, .filter = allow };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(4);
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    _exit(fd >= 0 ? 0 : errno == EBUSY ? 3 : 4);
  }
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return 4;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}

/* A descriptor number of the command line (above 2), or -1. */
static int fd_arg(const char *text) {
  char *end;
  errno = 0;
  long fd = strtol(text, &end, 10);
  if (errno || *end || end == text || fd < 3 || fd >= INT_MAX) return -1;
  return (int)fd;
}

/* Where Node put the control socket and the network socket: UWRX_INIT_FD and
 * UWRX_INIT_NET_FD (when open) without arguments, else `--control-fd N [--net-fd M]`
 * (no network socket without --net-fd). False for any other command line. */
static bool own_fds(int argc, char **argv, int *control, int *net) {
  if (argc == 1) {
    *control = UWRX_INIT_FD;
    *net = fcntl(UWRX_INIT_NET_FD, F_GETFD) >= 0 ? UWRX_INIT_NET_FD : -1;
    return true;
  }
  if ((argc != 3 && argc != 5) || strcmp(argv[1], "--control-fd")) return false;
  *control = fd_arg(argv[2]);
  *net = -1;
  if (argc == 5) {
    if (strcmp(argv[3], "--net-fd")) return false;
    *net = fd_arg(argv[4]);
    if (*net < 0 || *net == *control) return false;
  }
  return *control >= 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--probe-listener")) return probe_listener();
  int control, net;
  if (!own_fds(argc, argv, &control, &net)) {
    fprintf(stderr, "uwrx-init: usage: uwrx-init [--control-fd N [--net-fd M]] (it is started by uwrx)\n");
    return 2;
  }
  if (fcntl(control, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "uwrx-init: expects the control socket on fd %d (it is started by uwrx)\n", control);
    return 2;
  }
  if (net >= 0 && fcntl(net, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "uwrx-init: expects the network socket on fd %d (it is started by uwrx)\n", net);
    return 2;
  }
  g.sock = control;
  net_init(net);
  pid_t node = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != node) return 1;

  uint8_t *data;
  size_t len;
  if (!channel_read(g.sock, &data, &len)) return 2;
  struct mp_reader r;
  mp_reader_init(&r, data, len);
  uint32_t n;
  bool have_plan = false;
  const char *why = "no plan message";
  if (mp_read_map(&r, &n)) {
    while (n--) {
      const char *k;
      uint32_t klen;
      if (!mp_read_bytes(&r, &k, &klen)) break;
      if (mp_key_is(k, klen, "body")) have_plan = plan_parse(&r, &plan, &why);
      else mp_skip(&r);
    }
  }
  if (!have_plan) {
    channel_fail(-1, "plan", NULL, 0, "invalid plan: %s", why);
    return 2;
  }
  sigset_t set;
  handled_signals(&set);
  sigprocmask(SIG_BLOCK, &set, NULL);
  read_host_bounding();

  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) {
    channel_fail(-1, "pipe", NULL, errno, "pipe");
    return 125;
  }
  /* fork-like clone: the child is pid 1 of the new pid namespace */
  pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                              CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, NULL, NULL, NULL, 0);
  if (init < 0) {
    channel_fail(-1, "clone", NULL, errno, "create user, mount, pid, net, uts and ipc namespaces");
    return 125;
  }
  if (init == 0) {
    /* die with the first process, which dies with Node; the pipe read below notices a
     * death before this took effect */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(go[1]);
    char ok = 0;
    ssize_t n;
    while ((n = read(go[0], &ok, 1)) < 0 && errno == EINTR) {}
    close(go[0]);
    if (n != 1 || ok != 1) _exit(125);
    pid1_main();
  }
  close(go[0]);
  char ok = write_maps(init) ? 1 : 0;
  if (write(go[1], &ok, 1) != 1 || !ok) {
    kill(init, SIGKILL);
    waitpid(init, NULL, 0);
    return 125;
  }
  close(go[1]);
  /* pid 1 holds the socket from here on; Node sees EOF when pid 1 ends */
  close(g.sock);
  g.sock = -1;
  net_close_in_parent();
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int status;
      pid_t pid = waitpid(init, &status, WNOHANG);
      if (pid == init) return exit_code_of(status);
    } else if (from_terminal(sig, si.si_code)) {
      /* left to the tree */
    } else {
      /* pid 1 only gets signals it handles; it turns this into SIGTERM for the tree */
      kill(init, SIGTERM);
    }
  }
}
