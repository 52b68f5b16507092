/* Process tracking: first sight, logical pids, execs, exits. Everything here runs with
 * g.lock held (handler threads and pid 1's main loop both call in). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_init_proto.h"

/* PIDFD_GET_INFO (6.13) with PIDFD_INFO_EXIT (6.15): the wait status of a process this
 * pid 1 did not reap. Declared here because the build headers predate it. */
struct pidfd_exit_info {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
#define PIDFD_INFO_EXIT_BIT (1ULL << 3)
#define PIDFD_GET_INFO_IOCTL _IOWR(0xFF, 11, struct pidfd_exit_info)

#define BUCKETS 4096

/* thread id -> process; threads of a process all point at it */
struct tid_entry {
  pid_t tid;
  struct proc *proc;
  struct tid_entry *next;
};

static struct tid_entry *buckets[BUCKETS];
static struct proc **all;     /* by logical pid - 2 */
static size_t nall, capall;
static struct proc *pending;  /* ended, status not known yet */

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts); /* the clock of trace events (src/protocol/events.ts) */
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void procs_init(void) { g.next_logical = 2; }

static struct proc *map_find(pid_t tid) {
  for (struct tid_entry *e = buckets[(unsigned)tid % BUCKETS]; e; e = e->next)
    if (e->tid == tid) return e->proc;
  return NULL;
}

static void map_add(pid_t tid, struct proc *p) {
  struct tid_entry *e = malloc(sizeof *e);
  if (!e) return;
  e->tid = tid;
  e->proc = p;
  e->next = buckets[(unsigned)tid % BUCKETS];
  buckets[(unsigned)tid % BUCKETS] = e;
}

/* Forget every thread of `p`, so a reused tid registers a new process. */
static void map_remove_proc(struct proc *p) {
  for (unsigned b = 0; b < BUCKETS; b++) {
    struct tid_entry **pp = &buckets[b];
    while (*pp) {
      if ((*pp)->proc == p) {
        struct tid_entry *dead = *pp;
        *pp = dead->next;
        free(dead);
      } else pp = &(*pp)->next;
    }
  }
}

static bool read_status_ids(pid_t tid, pid_t *tgid, pid_t *ppid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  char *t = strstr(buf, "\nTgid:"), *p = strstr(buf, "\nPPid:");
  if (!t || !p) return false;
  *tgid = (pid_t)strtol(t + 6, NULL, 10);
  *ppid = (pid_t)strtol(p + 6, NULL, 10);
  return *tgid > 0;
}

static void send_spawn(const struct proc *p) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 4);
  mp_write_cstr(&w, "pid");
  mp_write_int(&w, p->logical);
  mp_write_cstr(&w, "ppid");
  mp_write_int(&w, p->parent_logical);
  mp_write_cstr(&w, "nspid");
  mp_write_int(&w, p->tgid);
  mp_write_cstr(&w, "time");
  mp_write_uint(&w, p->start_time);
  channel_send(MSG_SPAWN, &w);
  mp_writer_free(&w);
}

struct proc *procs_find(pid_t tid) { return map_find(tid); }

struct proc *procs_get(pid_t tid, uint64_t notif_id, uint64_t time) {
  struct proc *p = map_find(tid);
  if (p || g.finishing) return p;
  pid_t tgid, ppid;
  if (!read_status_ids(tid, &tgid, &ppid)) return NULL;
  if (tgid != tid && (p = map_find(tgid))) {
    map_add(tid, p);
    return p;
  }
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  if (nall == capall) {
    size_t cap = capall ? capall * 2 : 256;
    struct proc **grown = realloc(all, cap * sizeof *all);
    if (!grown) {
      free(p);
      return NULL;
    }
    all = grown;
    capall = cap;
  }
  all[nall++] = p;
  p->tgid = tgid;
  p->logical = g.next_logical++;
  struct proc *parent = map_find(ppid);
  p->parent_logical = parent ? parent->logical : 1;
  repro_proc_init(p, parent, ppid);
  p->start_time = time;
  /* the pidfd is taken while the target waits in its notification, so it names this
   * process and not a later one with the same pid */
  p->pidfd = (int)syscall(SYS_pidfd_open, tgid, 0);
  if (p->pidfd >= 0 && !notif_id_valid(notif_id)) {
    /* died meanwhile: the pid may already name another process; the final flush
     * reports this one */
    close(p->pidfd);
    p->pidfd = -1;
  }
  if (p->pidfd >= 0) {
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
    epoll_ctl(g.epoll, EPOLL_CTL_ADD, p->pidfd, &ev);
  }
  map_add(tgid, p);
  if (tid != tgid) map_add(tid, p);
  send_spawn(p);
  trace_proc_started(p, parent);
  return p;
}

/* ---- execs ---- */

static void snapshot(pid_t pid, struct exec_snapshot *s) {
  char path[64], buf[2048];
  struct stat st;
  memset(s, 0, sizeof *s);
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  if (stat(path, &st) == 0) {
    s->exe_dev = st.st_dev;
    s->exe_ino = st.st_ino;
  }
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  /* fields after the command name, which may hold spaces and parentheses */
  char *f = strrchr(buf, ')');
  if (!f) return;
  /* field 3 (state) starts at f + 2; startstack is field 28 */
  int field = 2;
  for (char *c = f + 1; *c; c++) {
    if (*c == ' ') {
      field++;
      if (field == 28) {
        s->start_stack = strtoull(c + 1, NULL, 10);
        break;
      }
    }
  }
}

static void free_exec(struct pending_exec *e) {
  if (!e) return;
  free(e->path);
  free(e->cwd);
  mp_writer_free(&e->argv);
  free(e);
}

void procs_exec_seen(struct proc *p, struct pending_exec *e) {
  free_exec(p->exec);
  snapshot(p->tgid, &e->before);
  p->exec = e;
}

static void send_exec(const struct proc *p, const struct pending_exec *e) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 5);
  mp_write_cstr(&w, "pid");
  mp_write_int(&w, p->logical);
  mp_write_cstr(&w, "path");
  mp_write_bin(&w, e->path, strlen(e->path));
  mp_write_cstr(&w, "argv");
  mp_write_raw(&w, e->argv.data, e->argv.len);
  mp_write_cstr(&w, "cwd");
  if (e->cwd) mp_write_bin(&w, e->cwd, strlen(e->cwd));
  else mp_write_nil(&w);
  mp_write_cstr(&w, "time");
  mp_write_uint(&w, e->time);
  channel_send(MSG_EXEC, &w);
  mp_writer_free(&w);
  trace_exec(p, e);
}

/* A successful exec replaces the executable and the stack (at a fresh random address);
 * a failed one changes neither. Only the calling thread's own next call proves failure:
 * a sibling thread may run before the exec completes. */
void procs_check_exec(struct proc *p, pid_t tid) {
  struct pending_exec *e = p->exec;
  struct exec_snapshot now;
  snapshot(p->tgid, &now);
  bool changed = now.exe_dev != e->before.exe_dev || now.exe_ino != e->before.exe_ino ||
                 now.start_stack != e->before.start_stack;
  if (changed) send_exec(p, e);
  else if (tid != e->tid) return;
  p->exec = NULL;
  free_exec(e);
}

/* ---- exits ---- */

static void send_exit(struct proc *p, bool known, int status) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 4);
  mp_write_cstr(&w, "pid");
  mp_write_int(&w, p->logical);
  mp_write_cstr(&w, "code");
  if (known && WIFEXITED(status)) mp_write_int(&w, WEXITSTATUS(status));
  else mp_write_nil(&w);
  mp_write_cstr(&w, "signal");
  if (known && WIFSIGNALED(status)) mp_write_int(&w, WTERMSIG(status));
  else mp_write_nil(&w);
  mp_write_cstr(&w, "time");
  mp_write_uint(&w, p->end_time);
  channel_send(MSG_EXIT, &w);
  mp_writer_free(&w);
}

/* Reports the exit of `p` once its status is known; with `final`, with what is known. */
static bool try_report(struct proc *p, bool final) {
  if (p->reported) return true;
  bool known = false;
  int status = 0;
  if (p->reaped) {
    known = true;
    status = p->wait_status;
  } else if (p->pidfd >= 0) {
    struct pidfd_exit_info info;
    memset(&info, 0, sizeof info);
    info.mask = PIDFD_INFO_EXIT_BIT;
    if (ioctl(p->pidfd, PIDFD_GET_INFO_IOCTL, &info) == 0 && (info.mask & PIDFD_INFO_EXIT_BIT)) {
      known = true;
      status = info.exit_code;
    }
  }
  if (!known && !final) return false;
  if (!known && p->exit_group_seen) {
    known = true;
    status = (p->exit_group_code & 0xff) << 8;
  }
  if (p->exec) {
    /* died before any further call: the exec most likely succeeded */
    send_exec(p, p->exec);
    free_exec(p->exec);
    p->exec = NULL;
  }
  send_exit(p, known, status);
  trace_exit(p, known, status);
  trace_proc_ended(p);
  files_proc_ended(p->logical);
  p->reported = true;
  if (p->pidfd >= 0) {
    epoll_ctl(g.epoll, EPOLL_CTL_DEL, p->pidfd, NULL);
    close(p->pidfd);
    p->pidfd = -1;
  }
  map_remove_proc(p);
  return true;
}

static void end(struct proc *p) {
  if (p->ended) return;
  p->ended = true;
  /* exit_group is the moment a voluntary exit happened; the pidfd wakes us later */
  p->end_time = p->exit_group_seen ? p->exit_group_time : now_ns();
  if (p->pidfd >= 0) epoll_ctl(g.epoll, EPOLL_CTL_DEL, p->pidfd, NULL);
  if (!try_report(p, false)) {
    p->next_pending = pending;
    pending = p;
  }
}

void procs_pidfd_ready(struct proc *p) { end(p); }

void procs_reaped(pid_t pid, int status) {
  /* the newest process with this pid: tids are forgotten once reported */
  struct proc *p = map_find(pid);
  if (!p || p->tgid != pid) return;
  p->reaped = true;
  p->wait_status = status;
}

void procs_flush_pending(bool final) {
  if (final)
    for (size_t i = 0; i < nall; i++) end(all[i]);
  struct proc **pp = &pending;
  while (*pp) {
    if (try_report(*pp, final)) *pp = (*pp)->next_pending;
    else pp = &(*pp)->next_pending;
  }
}
