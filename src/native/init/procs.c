/* Process tracking: first sight, logical pids, execs, exits. Everything here runs with
 * g.lock held (handler threads and pid 1's main loop both call in). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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
#define PIDFD_INFO_PID_BIT (1ULL << 0)
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
static struct proc **all;     /* in order of registration */
static size_t nall, capall;
static struct proc *pending;  /* ended, status not known yet */
static struct child_list root_children; /* of uwrx itself: the command and orphans */

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts); /* the clock of trace events (src/protocol/events.ts) */
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void procs_init(void) {
  if (g.next_logical < 2) g.next_logical = 2;
}

/* ---- replayed logical pids ----
 * On replay a process gets the pid its tree key had in the replayed attempt, so pids (and
 * with them files-<pid>/ and the resolution rule) do not depend on which sibling the
 * scheduler let make its first call first. Keys the record lacks get pids after its
 * largest one (g.next_logical starts there). */
struct replay_key {
  int ppid;      /* 0: empty slot */
  uint32_t ordinal;
  int pid;
};
static struct replay_key *replay_keys; /* open addressing, capacity a power of two */
static size_t replay_cap;
static uint8_t *replay_used;           /* by recorded pid: already given in this run */
static int replay_max;

static size_t replay_slot(int ppid, uint32_t ordinal) {
  uint64_t h = ((uint64_t)(uint32_t)ppid << 32 | ordinal) * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 20) & (replay_cap - 1);
  while (replay_keys[i].ppid && (replay_keys[i].ppid != ppid || replay_keys[i].ordinal != ordinal))
    i = (i + 1) & (replay_cap - 1);
  return i;
}

bool procs_parse_replay_pids(struct mp_reader *r) {
  uint32_t n;
  if (!mp_read_array(r, &n) || n % 3) return false;
  size_t keys = n / 3;
  replay_cap = 16;
  while (replay_cap < keys * 2) replay_cap *= 2;
  replay_keys = calloc(replay_cap, sizeof *replay_keys);
  if (!replay_keys) return false;
  for (size_t k = 0; k < keys; k++) {
    int64_t ppid, ordinal, pid;
    if (!mp_read_int(r, &ppid) || !mp_read_int(r, &ordinal) || !mp_read_int(r, &pid)) return false;
    if (ppid < 1 || ordinal < 0 || ordinal >= UINT32_MAX || pid < 2 || pid > (1 << 26)) return false;
    size_t i = replay_slot((int)ppid, (uint32_t)ordinal + 1);
    replay_keys[i] = (struct replay_key){ (int)ppid, (uint32_t)ordinal + 1, (int)pid };
    if (pid > replay_max) replay_max = (int)pid;
  }
  replay_used = calloc((size_t)replay_max + 1, 1);
  if (!replay_used) return false;
  g.next_logical = replay_max + 1;
  return true;
}

/* The logical pid of a process first seen now: its recorded one on replay (unless an
 * earlier process of this run took it), else the next fresh one. */
static int assign_logical(int parent_logical, uint32_t ordinal) {
  if (replay_keys) {
    struct replay_key *k = &replay_keys[replay_slot(parent_logical, ordinal)];
    if (k->ppid && !replay_used[k->pid]) {
      replay_used[k->pid] = 1;
      return k->pid;
    }
  }
  return g.next_logical++;
}

/* ---- the tree ---- */

static bool contains(const pid_t *pids, size_t n, pid_t pid) {
  for (size_t i = 0; i < n; i++)
    if (pids[i] == pid) return true;
  return false;
}

/* Adds the children below `pid` listed in a thread's children file `fd` (read from its
 * start with pread, so an open file can be read again). */
static void read_thread_children(int fd, pid_t pid, struct child_list *out) {
  /* read in chunks, carrying a pid cut at a chunk's end */
  char buf[4096 + 16];
  size_t kept = 0;
  off_t at = 0;
  ssize_t n;
  while ((n = pread(fd, buf + kept, 4096, at)) > 0) {
    at += n;
    /* procfs fills a read until the list ends or the next pid does not fit: a read well
     * short of the request was the last, and the read that would say so is saved */
    bool last_read = n < 4096 - 32;
    size_t len = kept + (size_t)n;
    size_t last = len;
    while (last > 0 && buf[last - 1] != ' ') last--;
    buf[last ? last - 1 : 0] = 0;
    for (char *s = buf, *end; last && *s; s = end) {
      long child = strtol(s, &end, 10);
      if (end == s) break;
      if (child <= 0 || child >= pid) continue;
      if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        pid_t *grown = realloc(out->pids, cap * sizeof *grown);
        if (!grown) continue;
        out->pids = grown;
        out->cap = cap;
      }
      out->pids[out->n++] = (pid_t)child;
    }
    kept = len - last;
    if (kept > 16) kept = 0; /* not a pid: give up on it */
    memmove(buf, buf + last, kept);
    if (last_read) break;
  }
}

/* Lists the threads in the task directory `dfd` (from its start) and adds each one's
 * children below `pid`; `main_children`: the children file of thread `ppid`, open
 * already (-1: opened here like the others). The directory is listed with getdents64
 * itself (opendir adds an fstat and a 32 KiB buffer per call, and this runs for every
 * new process). */
static void list_task_children(int dfd, pid_t ppid, int main_children, pid_t pid, struct child_list *out) {
  char ents[4096] __attribute__((aligned(8)));
  ssize_t got;
  while ((got = getdents64(dfd, ents, sizeof ents)) > 0) {
    for (ssize_t off = 0; off < got;) {
      const struct dirent64 *e = (const struct dirent64 *)(ents + off);
      off += e->d_reclen;
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      out->threads++;
      if (main_children >= 0 && atoi(e->d_name) == ppid) {
        read_thread_children(main_children, pid, out);
        continue;
      }
      char rel[280];
      size_t len = strnlen(e->d_name, 255);
      memcpy(rel, e->d_name, len);
      memcpy(rel + len, "/children", 10);
      int fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      read_thread_children(fd, pid, out);
      close(fd);
    }
    /* likewise a listing well short of the buffer was the whole of it */
    if ((size_t)got < sizeof ents - 512) break;
  }
}

/* ---- a parent's /proc files, kept open ----
 * Every new process lists its parent's threads and their children (child_ordinal). A
 * shell or make that starts thousands of children would have them opened and closed
 * for each: open, list, open, read, close, close is about 12 us of CPU, most of it the
 * path walks through /proc/<pid>; with the files kept open the same reads take 3 us.
 * The files stay open while the parent runs (closed at its exit report, under the same
 * lock, so no reader uses a closed descriptor), for at most KEPT_MAX parents at a time
 * (two descriptors each); others are read by path as before. The files name the
 * parent's struct pid, not its number: a reused pid never reads another process. */
#define KEPT_MAX 256
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned kept_count;

static void read_by_path(pid_t ppid, pid_t pid, struct child_list *out) {
  char path[PROC_PATH_MAX];
  int dfd = open(proc_path(path, ppid, "task", -1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  list_task_children(dfd, ppid, -1, pid, out);
  close(dfd);
}

/* The children of `ppid` alive now with a pid below `pid`, from every thread's
 * /proc/<ppid>/task/<tid>/children ("pid pid ... "): read without the table's lock.
 * `parent`: the registered process of `ppid` (NULL: none), whose files are kept. */
static void read_older_children(struct proc *parent, pid_t ppid, pid_t pid, struct child_list *out) {
  out->n = 0;
  out->threads = 0;
  if (parent && parent->tgid == ppid) {
    pthread_mutex_lock(&kept_lock);
    if (parent->task_fd == -1 && kept_count < KEPT_MAX) {
      char path[PROC_PATH_MAX], rel[32];
      int dfd = open(proc_path(path, ppid, "task", -1), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      snprintf(rel, sizeof rel, "%d/children", (int)ppid);
      int cfd = dfd >= 0 ? openat(dfd, rel, O_RDONLY | O_CLOEXEC) : -1;
      if (cfd >= 0) {
        parent->task_fd = dfd;
        parent->children_fd = cfd;
        kept_count++;
      } else if (dfd >= 0) {
        close(dfd);
      }
    }
    bool kept = parent->task_fd >= 0 && lseek(parent->task_fd, 0, SEEK_SET) == 0;
    if (kept) list_task_children(parent->task_fd, ppid, parent->children_fd, pid, out);
    pthread_mutex_unlock(&kept_lock);
    if (kept) return;
  }
  read_by_path(ppid, pid, out);
}

/* The process ended: its kept files go (-2: not opened again). */
static void forget_kept(struct proc *p) {
  pthread_mutex_lock(&kept_lock);
  if (p->task_fd >= 0) {
    later_close(p->task_fd);
    later_close(p->children_fd);
    kept_count--;
  }
  p->task_fd = p->children_fd = -2;
  pthread_mutex_unlock(&kept_lock);
}

/* 1 + the number of the parent's children with a pid below `pid`: those registered
 * before (`siblings`) and those alive when `older` was read (a child registers at its
 * first notified call, exit_group at the latest, so none is missed before its parent
 * could reap it; `older` may be read before the lock is taken, since a child that ends
 * after that read registered before it ended). Pids grow in creation order, so this is
 * the order in which the parent created its children, however the scheduler ordered
 * their first calls. */
static uint32_t child_ordinal(struct child_list *siblings, const struct child_list *older, pid_t pid) {
  uint32_t below = 0;
  for (size_t i = 0; i < siblings->n; i++)
    if (siblings->pids[i] < pid) below++;
  for (size_t i = 0; i < older->n; i++)
    if (!contains(siblings->pids, siblings->n, older->pids[i])) below++;
  if (siblings->n == siblings->cap) {
    size_t cap = siblings->cap ? siblings->cap * 2 : 8;
    pid_t *grown = realloc(siblings->pids, cap * sizeof *grown);
    if (grown) siblings->pids = grown, siblings->cap = cap;
  }
  if (siblings->n < siblings->cap) siblings->pids[siblings->n++] = pid;
  return below + 1;
}

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
  p->mapped_tids++;
}

/* Drops the entries of `p` from bucket b; false once none is left anywhere. */
static bool map_remove_in(unsigned b, struct proc *p) {
  struct tid_entry **pp = &buckets[b];
  while (*pp && p->mapped_tids) {
    if ((*pp)->proc == p) {
      struct tid_entry *dead = *pp;
      *pp = dead->next;
      free(dead);
      p->mapped_tids--;
    } else pp = &(*pp)->next;
  }
  return p->mapped_tids > 0;
}

/* Forget every thread of `p`, so a reused tid registers a new process. The main thread's
 * bucket first: a single-threaded process (most) is then done without a scan. */
static void map_remove_proc(struct proc *p) {
  if (!map_remove_in((unsigned)p->tgid % BUCKETS, p)) return;
  for (unsigned b = 0; b < BUCKETS && map_remove_in(b, p); b++) {}
}

static bool read_status_ids(pid_t tid, pid_t *tgid, pid_t *ppid) {
  char path[PROC_PATH_MAX], buf[4096];
  int fd = open(proc_path(path, tid, "status", -1), O_RDONLY | O_CLOEXEC);
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
  mp_write_array(&w, 6);
  mp_write_uint(&w, PROC_SPAWN);
  mp_write_int(&w, p->logical);
  mp_write_int(&w, p->parent_logical);
  mp_write_uint(&w, p->ordinal - 1);
  mp_write_int(&w, p->tgid);
  mp_write_uint(&w, p->start_time);
  channel_post_proc(&w);
  mp_writer_free(&w);
}

struct proc *procs_find(pid_t tid) { return map_find(tid); }

/* ---- the working directory ----
 * Every exec's record names its cwd, and reading /proc/<pid>/cwd makes a proc inode for
 * it (8 us; 20 when it is the pid's first lookup, a vfork child's). A process's
 * cwd is its parent's at fork and changes only by a call of its own (chdir, fchdir,
 * chroot, unshare, setns: all notified, see on_cwd_call), by a process sharing its fs
 * (clone with CLONE_FS), or by a change of what paths lead to (files.c counts renames
 * and removals of directories and mounts: a string read while the count is quiet holds
 * until it moves). So while neither moved its cwd, a child has its parent's directory,
 * whenever either is looked at: the string is handed down at registration and read from
 * /proc only when not known. Kept only for a process that never moved its cwd, so no
 * chdir under way in another of its threads can race with the read. */

/* A process entered or made a pid namespace: orphans there go to its first process,
 * which nothing marks (adopts), so nothing is handed down from now on. */
static bool pid_namespaces;

bool procs_pid_namespaces(void) { return __atomic_load_n(&pid_namespaces, __ATOMIC_RELAXED); }

/* Its known cwd, if it may be used under generation `gen`. g.lock held. */
static const char *cwd_known(const struct proc *p, uint64_t gen) {
  return p->cwd && gen && p->cwd_gen == gen && !p->cwd_moved && !p->cwd_opaque ? p->cwd : NULL;
}

static void cwd_forget(struct proc *p) {
  free(p->cwd);
  p->cwd = NULL;
}

/* `p` is registered now as a child of `parent` (NULL: none known). Not handed down to an
 * orphan (its parent now is not the process that forked it: uwrx-init, a subreaper, a
 * pid namespace's init), nor between processes sharing one fs. g.lock held. */
static void cwd_at_spawn(struct proc *p, struct proc *parent) {
  if (p->ppid <= 1) {
    /* uwrx-init forked the command (no CLONE_FS); any other is an orphan */
    p->cwd_opaque = p->tgid != g.command_pid;
    return;
  }
  if (!parent || parent->tgid != p->ppid || parent->adopts || __atomic_load_n(&pid_namespaces, __ATOMIC_RELAXED)) {
    p->cwd_opaque = true;
    return;
  }
  long order = syscall(SYS_kcmp, p->tgid, p->ppid, KCMP_FS, 0, 0);
  if (order <= 0) {
    /* one fs for both (or unknown): a chdir of either moves the other's cwd */
    p->cwd_opaque = true;
    if (order == 0) {
      parent->cwd_opaque = true;
      cwd_forget(parent);
    }
    return;
  }
  uint64_t gen = files_dirs_quiet();
  const char *known = cwd_known(parent, gen);
  if (known && (p->cwd = strdup(known))) p->cwd_gen = gen;
}

/* Registers process `tgid` (first seen through thread `tid`, child of `ppid`). The
 * pidfd is taken while the process is known to be the one meant: `notif_id` (0: none)
 * is a notification it waits in; `child` (0: none) a registered-now child whose
 * parent it still is. */
static struct proc *register_proc(pid_t tid, pid_t tgid, pid_t ppid, uint64_t notif_id, pid_t child, uint64_t time,
                                  const struct child_list *older, int pidfd);

/* The parent of a process seen for the first time, registered first if it was not yet:
 * since fork is not notified, a parent may fork before any call of its own was seen.
 * Its children's ordinals and logical parent depend on it being known. */
static struct proc *parent_of(pid_t ppid, pid_t child, uint64_t time) {
  struct proc *parent = map_find(ppid);
  if (parent || ppid <= 1) return parent;
  pid_t tgid, grand;
  if (!read_status_ids(ppid, &tgid, &grand) || tgid != ppid) return NULL;
  return register_proc(ppid, tgid, grand, 0, child, time, NULL, -1);
}

/* `older`: the parent's children below `tgid` as read before the lock; NULL: read now.
 * `pidfd`: of `tgid`, opened before (this takes it), or -1: opened now. */
static struct proc *register_proc(pid_t tid, pid_t tgid, pid_t ppid, uint64_t notif_id, pid_t child, uint64_t time,
                                  const struct child_list *older, int pidfd) {
  struct child_list read_now = { 0 };
  if (!older) {
    read_older_children(map_find(ppid), ppid, tgid, &read_now);
    older = &read_now;
  }
  struct proc *parent = parent_of(ppid, tgid, time);
  struct proc *p = calloc(1, sizeof *p);
  if (!p) {
    free(read_now.pids);
    if (pidfd >= 0) close(pidfd);
    problem(PROBLEM_NO_MEMORY);
    return NULL;
  }
  if (nall == capall) {
    size_t cap = capall ? capall * 2 : 256;
    struct proc **grown = realloc(all, cap * sizeof *all);
    if (!grown) {
      free(p);
      free(read_now.pids);
      if (pidfd >= 0) close(pidfd);
      problem(PROBLEM_NO_MEMORY);
      return NULL;
    }
    all = grown;
    capall = cap;
  }
  all[nall++] = p;
  p->task_fd = p->children_fd = -1;
  p->tgid = tgid;
  p->ppid = ppid;
  p->parent_threads = older->threads;
  p->parent_logical = parent ? parent->logical : 1;
  p->ordinal = child_ordinal(parent ? &parent->children : &root_children, older, tgid);
  free(read_now.pids);
  p->logical = assign_logical(p->parent_logical, p->ordinal);
  p->start_time = time;
  p->pidfd = pidfd >= 0 ? pidfd : (int)syscall(SYS_pidfd_open, tgid, 0);
  if (p->pidfd >= 0) {
    /* the pid must still name this process: the target waits in its notification, or
     * the child we came from still has it as parent */
    pid_t t, pp;
    bool same = notif_id ? notif_id_valid(notif_id)
                         : read_status_ids(child, &t, &pp) && pp == tgid;
    if (!same) {
      /* died meanwhile: the pid may already name another process; the final flush
       * reports this one */
      close(p->pidfd);
      p->pidfd = -1;
    }
  }
  if (p->pidfd >= 0) {
    /* one shot: the exit disarms it, so no EPOLL_CTL_DEL is needed after (closing the
     * pidfd takes it out of the set) */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = p };
    epoll_ctl(g.epoll, EPOLL_CTL_ADD, p->pidfd, &ev);
  }
  cwd_at_spawn(p, parent);
  map_add(tgid, p);
  if (tid != tgid) map_add(tid, p);
  send_spawn(p);
  redirects_spawned(p, parent);
  features_spawn(p, parent);
  return p;
}

/* The ids of process `pid` from a pidfd (kernel 6.13 and later), which registering it
 * needs anyway: no /proc/<pid>/status to format and parse. False for a thread other
 * than the main one (no pidfd names it) or an older kernel. */
static bool pidfd_ids(pid_t pid, pid_t *ppid, int *pidfd) {
  static bool unsupported; /* the kernel lacks PIDFD_GET_INFO: not tried again */
  if (__atomic_load_n(&unsupported, __ATOMIC_RELAXED)) return false;
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return false;
  struct pidfd_exit_info info;
  memset(&info, 0, sizeof info);
  info.mask = PIDFD_INFO_PID_BIT;
  if (ioctl(fd, PIDFD_GET_INFO_IOCTL, &info) != 0 || !(info.mask & PIDFD_INFO_PID_BIT) || (pid_t)info.tgid != pid) {
    if (errno == ENOTTY || errno == EINVAL) __atomic_store_n(&unsupported, true, __ATOMIC_RELAXED);
    close(fd);
    return false;
  }
  *ppid = (pid_t)info.ppid;
  *pidfd = fd;
  return true;
}

void procs_first_sight(pid_t tid, struct first_sight *f) {
  memset(f, 0, sizeof *f);
  f->pidfd = -1;
  if (pidfd_ids(tid, &f->ppid, &f->pidfd)) f->tgid = tid, f->known = true;
  else f->known = read_status_ids(tid, &f->tgid, &f->ppid);
  if (!f->known) return;
  /* the parent's kept files, if it is registered (processes are never freed) */
  pthread_mutex_lock(&g.lock);
  struct proc *parent = f->ppid > 1 ? map_find(f->ppid) : NULL;
  pthread_mutex_unlock(&g.lock);
  read_older_children(parent, f->ppid, f->tgid, &f->older);
}

void procs_first_sight_free(struct first_sight *f) {
  free(f->older.pids);
  f->older.pids = NULL;
  if (f->pidfd >= 0) close(f->pidfd);
  f->pidfd = -1;
}

struct proc *procs_get(pid_t tid, uint64_t notif_id, uint64_t time, struct first_sight *f) {
  struct proc *p = map_find(tid);
  if (p || g.finishing) return p;
  pid_t tgid, ppid;
  if (f && f->known) tgid = f->tgid, ppid = f->ppid;
  else if (!read_status_ids(tid, &tgid, &ppid)) return NULL;
  if (tgid != tid && (p = map_find(tgid))) {
    map_add(tid, p);
    return p;
  }
  int pidfd = -1;
  if (f && f->known && f->pidfd >= 0 && f->tgid == tgid) pidfd = f->pidfd, f->pidfd = -1;
  return register_proc(tid, tgid, ppid, notif_id, 0, time, f && f->known ? &f->older : NULL, pidfd);
}

/* ---- execs ---- */

/* The executable of process `pid` now (zeros when /proc does not say). */
static void snapshot(pid_t pid, struct exec_snapshot *s) {
  char path[PROC_PATH_MAX];
  struct stat st;
  memset(s, 0, sizeof *s);
  if (stat(proc_path(path, pid, "exe", -1), &st) == 0) {
    s->exe_dev = st.st_dev;
    s->exe_ino = st.st_ino;
  }
}

/* The snapshot of vfork child `c` before its exec: its executable, which is its
 * parent's (they share one image). The parent's is looked at once per image, by its
 * first vfork child, instead of a stat of /proc/<pid>/exe per child (the new pid's first
 * lookup of exe in /proc). Not while the parent has an exec of its own under way. */
static void vfork_snapshot(const struct proc *c, struct exec_snapshot *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_lock(&g.lock);
  struct proc *parent = map_find(c->ppid);
  if (parent && (parent->tgid != c->ppid || parent->exec)) parent = NULL;
  uint64_t gen = parent ? parent->image_gen : 0;
  bool known = parent && parent->exe_gen == gen + 1;
  if (known) s->exe_dev = parent->exe_dev, s->exe_ino = parent->exe_ino;
  pthread_mutex_unlock(&g.lock);
  if (known) return;
  snapshot(c->tgid, s);
  if (!parent || (!s->exe_dev && !s->exe_ino)) return;
  pthread_mutex_lock(&g.lock);
  if (!parent->exec && parent->image_gen == gen) {
    parent->exe_dev = s->exe_dev;
    parent->exe_ino = s->exe_ino;
    parent->exe_gen = gen + 1;
  }
  pthread_mutex_unlock(&g.lock);
}

/* Whether processes `a` and `b` share one address space: 1 yes, 0 no, -1 unknown. A `b`
 * that has exited (a zombie, or on its way out) has none left, and kcmp then answers
 * "different" whatever `a` did: its vsize in /proc (0 without an address space), read
 * after kcmp, tells. */
static int same_vm(pid_t a, pid_t b) {
  if (b <= 1) return -1;
  long r = syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0);
  if (r < 0) return -1;
  if (r == 0) return 1;
  char buf[2048];
  const char *vsize = proc_read(b, "stat", buf, sizeof buf) ? proc_stat_field(buf, 23) : NULL;
  return vsize && strtoull(vsize, NULL, 10) != 0 ? 0 : -1;
}

/* Whether `a` shares the address space of live process `b` (a vfork child and its
 * parent): kcmp alone, where same_vm reads b's /proc/<b>/stat as well to tell a `b`
 * without one, which says "no" here all the same. */
static bool shares_vm(pid_t a, pid_t b) { return b > 1 && syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0; }

static void free_exec(struct pending_exec *e) {
  if (!e) return;
  free(e->path);
  free(e->cwd);
  free(e->abs_path);
  free(e->arg0);
  mp_writer_free(&e->argv);
  if (e->old_mm >= 0) close(e->old_mm);
  free(e);
}

/* The image that called execve is gone: its memory reads as empty (the kernel holds no
 * users of that mm any more). A vfork child's exec leaves the shared image alive, so
 * this only ever proves success. */
static bool old_image_gone(const struct pending_exec *e) {
  char byte;
  return e->old_mm >= 0 && e->old_addr && pread(e->old_mm, &byte, 1, (off_t)e->old_addr) == 0;
}

/* `e->before` is taken by the caller, without the lock, while the exec waits. */
void procs_exec_seen(struct proc *p, struct pending_exec *e) {
  free_exec(p->exec);
  p->exec = e;
}

static void send_exec(const struct proc *p, const struct pending_exec *e) {
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_array(&w, 6);
  mp_write_uint(&w, PROC_EXEC);
  mp_write_int(&w, p->logical);
  mp_write_bin(&w, e->path, strlen(e->path));
  mp_write_raw(&w, e->argv.data, e->argv.len);
  if (e->cwd) mp_write_bin(&w, e->cwd, strlen(e->cwd));
  else mp_write_nil(&w);
  mp_write_uint(&w, e->time);
  channel_post_proc(&w);
  mp_writer_free(&w);
  features_exec(p, e);
}

/* argv[0] of an exec's argv as read at its call; NULL when it has none. */
static char *first_arg(const struct mp_writer *argv) {
  struct mp_reader r;
  uint32_t n;
  char *arg = NULL;
  mp_reader_init(&r, argv->data, argv->len);
  if (!argv->failed && mp_read_array(&r, &n) && n > 0 && !mp_read_strdup(&r, &arg)) arg = NULL;
  return arg;
}

/* The exec's path, a relative one joined to its cwd; NULL when that is not known. */
static char *absolute_path(const struct pending_exec *e) {
  if (!e->path || !e->path[0]) return NULL;
  if (e->path[0] == '/') return strdup(e->path);
  char *s;
  if (!e->cwd || e->cwd[0] != '/' || strstr(e->cwd, " (deleted)") || asprintf(&s, "%s/%s", e->cwd, e->path) < 0) return NULL;
  return s;
}

/* A successful exec leaves the old image without users, which the descriptor of its
 * memory opened at the call tells with one read (nothing at an address it had); a
 * failed one leaves it in use. Only a process sharing its memory with another that is
 * not its vfork parent keeps the old image alive through a successful exec: then the
 * executable decides (an exec of the program it runs is taken for a failure there).
 * Only the calling thread's own next call proves failure: a sibling thread may run
 * before the exec completes. */
void procs_check_exec(struct proc *p, pid_t tid, bool proven) {
  struct pending_exec *e = p->exec;
  /* Proven by the new image's shim; else a vfork child's exec succeeded once it has an
   * image of its own; else the old image gone settles it with one read; only what is
   * left (a failed exec, a static program, kcmp unavailable) compares snapshots. */
  bool changed;
  int shared;
  /* a prepared exec's shim says so in the header (uwrx_recorder.h) */
  bool taken = !proven && repro_exec_taken(p, e);
  if (proven || taken) changed = true;
  else if (e->shares_parent_vm && (shared = same_vm(p->tgid, p->ppid)) >= 0) changed = shared == 0;
  /* (without kcmp's answer, a vfork child's old image gone means its parent ended too) */
  else if (old_image_gone(e)) changed = true;
  else {
    struct exec_snapshot now;
    snapshot(p->tgid, &now);
    changed = now.exe_dev != e->before.exe_dev || now.exe_ino != e->before.exe_ino;
  }
  if (changed) {
    p->image_gen++; /* its vfork children's snapshot (vfork_snapshot) is looked at again */
    if (!taken) redirects_exec(p, e->path);
    /* (for the control call that follows: rebuild.c) */
    free(p->exec_arg0);
    p->exec_arg0 = proven ? e->arg0 : NULL;
    free(p->exec_path);
    p->exec_path = proven ? e->abs_path : NULL;
    if (proven) e->arg0 = e->abs_path = NULL;
    p->repro.vdso_hidden = false; /* until the new program's shim says otherwise */
    /* (a prepared exec's shim took over the clocks as a control call hands them out) */
    if (taken) repro_exec_adopt(p, e);
    else {
      clocks_exec(p);
      repro_exec_untaken(p, e, true);
    }
    send_exec(p, e);
  }
  else if (tid != e->tid) return;
  else repro_exec_untaken(p, e, false);
  p->exec = NULL;
  free_exec(e);
}

/* ---- exits ---- */

static void send_exit(struct proc *p, bool known, int status) {
  struct mp_writer w;
  uwrx_clock clock;
  bool virtual_clock = clocks_final(p, &clock);
  mp_writer_init(&w);
  mp_write_array(&w, 6);
  mp_write_uint(&w, PROC_EXIT);
  mp_write_int(&w, p->logical);
  if (known && WIFEXITED(status)) mp_write_int(&w, WEXITSTATUS(status));
  else mp_write_nil(&w);
  if (known && WIFSIGNALED(status)) mp_write_int(&w, WTERMSIG(status));
  else mp_write_nil(&w);
  mp_write_uint(&w, p->end_time);
  /* where its clocks ended: a replay that skips it ends it there too (clocks_skipped) */
  if (virtual_clock) {
    mp_write_array(&w, 3);
    mp_write_int(&w, clock.now_ns);
    mp_write_int(&w, clock.cpu_ns);
    mp_write_int(&w, clock.children_cpu_ns);
  } else {
    mp_write_nil(&w);
  }
  channel_post_proc(&w);
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
  redirects_image_ended(p); /* (no exit_group seen) before the features let go of its header */
  features_exit(p, known, status);
  notify_drop_process(p);
  forget_kept(p);
  p->reported = true;
  if (p->pidfd >= 0) {
    /* disarmed or out of the epoll set already (see end()) */
    later_close(p->pidfd);
    p->pidfd = -1;
  }
  map_remove_proc(p);
  return true;
}

/* `fired`: its pidfd's one-shot event came, which disarmed it. */
static void end(struct proc *p, bool fired) {
  if (p->ended) return;
  p->ended = true;
  /* exit_group is the moment a voluntary exit happened; the pidfd wakes us later */
  p->end_time = p->exit_group_seen ? p->exit_group_time : now_ns();
  if (p->pidfd >= 0 && !fired) epoll_ctl(g.epoll, EPOLL_CTL_DEL, p->pidfd, NULL);
  if (!try_report(p, false)) {
    p->next_pending = pending;
    pending = p;
  }
}

void procs_pidfd_ready(struct proc *p) { end(p, true); }

/* exit_group was seen, its process waits in it (g.lock held): it ends now, at the time
 * exit_group gave. Its pidfd leaves the epoll set, so its exit costs pid 1's loop no
 * wake-up of its own: the status is there only once its parent reaped it, mostly after
 * the wake-up the pidfd gave (the report then waited for the retry anyway), so the exit
 * goes on the retried list right away, and is reported at the loop's next round (at most
 * 20 ms, the wait's timeout while an exit is retried) after the parent reaped it. */
static void ending(struct proc *p) {
  if (p->ended || p->pidfd < 0) return;
  p->ended = true;
  p->end_time = p->exit_group_time;
  epoll_ctl(g.epoll, EPOLL_CTL_DEL, p->pidfd, NULL);
  bool first = pending == NULL;
  p->next_pending = pending;
  pending = p;
  if (first) channel_wake(); /* the loop may wait without a timeout */
}

void procs_reaped(pid_t pid, int status) {
  /* the newest process with this pid: tids are forgotten once reported */
  struct proc *p = map_find(pid);
  if (!p || p->tgid != pid) return;
  p->reaped = true;
  p->wait_status = status;
}

size_t procs_running(int *logical, pid_t *tgid, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < nall && n < max; i++) {
    if (all[i]->ended || all[i]->reaped) continue;
    logical[n] = all[i]->logical;
    tgid[n++] = all[i]->tgid;
  }
  return n;
}

void procs_each_running(void (*fn)(struct proc *, void *), void *arg) {
  for (size_t i = 0; i < nall; i++)
    if (!all[i]->ended && !all[i]->reaped) fn(all[i], arg);
}

bool procs_was_reaped(const struct proc *p) {
  if (p->reported || p->reaped) return true;
  /* the pidfd was lost (it died before uwrx saw it): nothing more will happen to it */
  if (p->pidfd < 0) return true;
  /* exit information appears when the process is released, i.e. reaped (6.15) */
  struct pidfd_exit_info info;
  memset(&info, 0, sizeof info);
  info.mask = PIDFD_INFO_EXIT_BIT;
  return ioctl(p->pidfd, PIDFD_GET_INFO_IOCTL, &info) == 0 && (info.mask & PIDFD_INFO_EXIT_BIT);
}

bool procs_pending_any(void) { return pending != NULL; }

void procs_flush_pending(bool final) {
  if (final)
    for (size_t i = 0; i < nall; i++) end(all[i], false);
  struct proc **pp = &pending;
  while (*pp) {
    if (try_report(*pp, final)) *pp = (*pp)->next_pending;
    else pp = &(*pp)->next_pending;
  }
}

/* ---- the processes feature: execve, execveat, exit_group ---- */

#define MAX_ARGV_BYTES (256 * 1024)
#define MAX_ARGS 8192

static char *read_link(const char *path) {
  char buf[4096];
  ssize_t len = readlink(path, buf, sizeof buf - 1);
  if (len < 0) return NULL;
  buf[len] = 0;
  return strdup(buf);
}

/* The cwd of thread `tid` of `p`, which waits in an exec: the known one, else read from
 * /proc (and kept when the directory paths did not change meanwhile). */
static char *exec_cwd(struct proc *p, pid_t tid) {
  uint64_t gen = files_dirs_quiet();
  char *cwd = NULL;
  pthread_mutex_lock(&g.lock);
  const char *known = cwd_known(p, gen);
  if (known) cwd = strdup(known);
  pthread_mutex_unlock(&g.lock);
  if (cwd) return cwd;
  char link[PROC_PATH_MAX];
  cwd = read_link(proc_path(link, tid, "cwd", -1));
  if (!cwd || !gen || files_dirs_quiet() != gen) return cwd;
  pthread_mutex_lock(&g.lock);
  if (!p->cwd_moved && !p->cwd_opaque) {
    cwd_forget(p);
    if ((p->cwd = strdup(cwd))) p->cwd_gen = gen;
  }
  pthread_mutex_unlock(&g.lock);
  return cwd;
}

/* Where an exec's path and argv are read from: /proc/<pid>/mem, which stays open as the
 * old image (old_image_gone), or for a vfork child target_read_whole: its old image is
 * its parent's, which the exec leaves alive, so procs_check_exec tells the outcome with
 * kcmp, or with the executables' snapshots once the parent is gone, and never reads it
 * (a vfork child's snapshot has no stack address), and opening
 * /proc/<pid>/mem would cost an open and a close (the new pid's first lookup in /proc). */
struct exec_source {
  struct notif_ctx *ctx;
  int memfd; /* -1: target_read_whole */
};

static ssize_t exec_read(const struct exec_source *s, void *buf, size_t len, uint64_t addr) {
  return s->memfd >= 0 ? pread(s->memfd, buf, len, (off_t)addr) : target_read_whole(s->ctx, buf, len, addr);
}

static char *exec_read_string(const struct exec_source *s, uint64_t addr, size_t max) {
  return s->memfd >= 0 ? target_read_string(s->memfd, addr, max) : target_read_string_whole(s->ctx, addr, max);
}

/* Strings peeked at together: at most PEEK_MAX bytes of each, never past its page. */
#define PEEK_BATCH 65 /* the path and a chunk of argv pointers */
#define PEEK_MAX 256

/* The strings at addrs[0..n) read with one process_vm_readv, where reading each alone
 * (up to its page's end) cost a call per argument. Each element stops at its page's end,
 * so none fails for a neighbour's sake; the kernel stops at the first that fails.
 * out[i]: a copy when its NUL was within what was read, else NULL (read alone then). */
static void peek_strings(pid_t tid, const uint64_t *addrs, size_t n, char **out) {
  char buf[PEEK_BATCH * PEEK_MAX];
  struct iovec local[PEEK_BATCH], remote[PEEK_BATCH];
  for (size_t i = 0; i < n; i++) {
    size_t len = 4096 - (addrs[i] & 4095);
    if (len > PEEK_MAX) len = PEEK_MAX;
    local[i] = (struct iovec){ buf + i * PEEK_MAX, len };
    remote[i] = (struct iovec){ (void *)(uintptr_t)addrs[i], len };
    out[i] = NULL;
  }
  ssize_t got = n ? process_vm_readv(tid, local, (unsigned long)n, remote, (unsigned long)n, 0) : 0;
  size_t left = got > 0 ? (size_t)got : 0;
  for (size_t i = 0; i < n && left > 0; i++) {
    size_t have = left < local[i].iov_len ? left : local[i].iov_len;
    const char *nul = memchr(local[i].iov_base, 0, have);
    if (nul) out[i] = strndup(local[i].iov_base, (size_t)(nul - (const char *)local[i].iov_base));
    left -= have;
  }
}

/* The exec's path (at `path_addr`, *path: NULL when unreadable) and argv (an array of
 * pointers at `addr`, each read as a string) as a msgpack array of bin. Each chunk of
 * pointers is read up to its page's end (a read across it could fail, and then go
 * through /proc/<pid>/mem), and its strings, with the path in the first, in one call;
 * an argument that is the path itself (often argv[0]) is not read again. */
static void read_exec_args(const struct exec_source *src, uint64_t path_addr, uint64_t addr, char **path,
                           struct mp_writer *out) {
  pid_t tid = (pid_t)src->ctx->req->pid;
  uint64_t ptrs[64], want[PEEK_BATCH];
  char *peeked[PEEK_BATCH];
  bool path_read = false;
  size_t total = 0, count = 0, index = 0;
  struct mp_writer items;
  mp_writer_init(&items);
  *path = NULL;
  while (addr && index < MAX_ARGS && total < MAX_ARGV_BYTES) {
    uint64_t at = addr + index * 8;
    size_t room = 4096 - (at & 4095);
    if (room > sizeof ptrs) room = sizeof ptrs;
    if (room > (MAX_ARGS - index) * 8) room = (MAX_ARGS - index) * 8;
    ssize_t n = exec_read(src, ptrs, room, at);
    if (n < 8) break;
    size_t k = (size_t)n / 8, m = 0;
    while (m < k && ptrs[m]) m++;
    size_t nw = 0;
    if (!path_read) want[nw++] = path_addr;
    for (size_t i = 0; i < m; i++)
      if (ptrs[i] != path_addr) want[nw++] = ptrs[i];
    peek_strings(tid, want, nw, peeked);
    size_t w = 0;
    if (!path_read) {
      path_read = true;
      *path = peeked[w++];
      if (!*path) *path = exec_read_string(src, path_addr, 4096);
    }
    bool end = false;
    for (size_t i = 0; i < m; i++) {
      bool known = ptrs[i] == path_addr;
      char *arg = known ? NULL : peeked[w++];
      /* as read alone: a string that does not fit what is left ends argv */
      if (arg && strlen(arg) >= MAX_ARGV_BYTES - total) {
        free(arg);
        arg = NULL;
      }
      if (!known && !arg) arg = exec_read_string(src, ptrs[i], MAX_ARGV_BYTES - total);
      const char *text = known ? *path : arg;
      if (!text || (known && strlen(text) >= MAX_ARGV_BYTES - total)) {
        free(arg);
        end = true;
        break;
      }
      size_t len = strlen(text);
      mp_write_bin(&items, text, len);
      total += len;
      count++;
      free(arg);
    }
    while (w < nw) free(peeked[w++]); /* past an argument that ended argv */
    if (end || m < k) break;
    index += k;
  }
  if (!path_read) *path = exec_read_string(src, path_addr, 4096);
  mp_writer_init(out);
  mp_write_array(out, (uint32_t)count);
  mp_write_raw(out, items.data, items.len);
  mp_writer_free(&items);
}

/* Whether `path` names the calling process's own executable through /proc: self,
 * thread-self, or its process or thread id. */
static bool is_self_exe(const char *path, pid_t tgid, pid_t tid) {
  if (strncmp(path, "/proc/", 6)) return false;
  const char *rest = path + 6;
  if (!strcmp(rest, "self/exe") || !strcmp(rest, "thread-self/exe")) return true;
  char *end;
  long id = strtol(rest, &end, 10);
  return end != rest && !strcmp(end, "/exe") && (id == tgid || id == tid);
}

/* execve(path, argv, envp) and execveat(dirfd, path, argv, envp, flags). The outcome is
 * known only later (shells try every PATH entry): procs_check_exec decides. */
static enum verdict on_exec_call(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct call_args a;
  if (!ctx->proc || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  bool vfork_child = shares_vm(ctx->proc->tgid, ctx->proc->ppid);
  struct exec_source src = { ctx, vfork_child ? -1 : target_mem(ctx) };
  if (!vfork_child && src.memfd < 0) return VERDICT_CONTINUE;
  struct pending_exec *e = calloc(1, sizeof *e);
  if (!e) {
    problem(PROBLEM_NO_MEMORY);
    return VERDICT_CONTINUE;
  }
  e->tid = req->pid;
  e->time = ctx->time;
  e->old_mm = -1;
  read_exec_args(&src, a.path.addr, a.buf, &e->path, &e->argv);
  if (e->path && a.path.dirfd != AT_FDCWD && (e->path[0] != '/' || (!e->path[0] && (a.flags & AT_EMPTY_PATH)))) {
    char link[PROC_PATH_MAX];
    char *dir = read_link(proc_path(link, (pid_t)req->pid, "fd", a.path.dirfd));
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
  /* the kernel runs the program the caller's /proc/self/exe names (Chromium starts its
   * helpers so): the record names that program, and so does the program's key */
  if (e->path && is_self_exe(e->path, ctx->proc->tgid, (pid_t)req->pid)) {
    char link[PROC_PATH_MAX];
    char *exe = read_link(proc_path(link, (pid_t)req->pid, "exe", -1));
    if (exe && exe[0] == '/' && !strstr(exe, " (deleted)")) {
      free(e->path);
      e->path = exe;
    } else {
      free(exe);
    }
  }
  e->cwd = exec_cwd(ctx->proc, (pid_t)req->pid);
  e->shares_parent_vm = vfork_child;
  if (vfork_child) vfork_snapshot(ctx->proc, &e->before);
  else snapshot(ctx->proc->tgid, &e->before);
  /* the memory read is only meaningful if the target still waits in this call */
  if (!notif_id_valid(req->id) || !e->path) {
    free_exec(e);
    return VERDICT_CONTINUE;
  }
  /* the descriptor read from stays: opened before the exec, it names the old image
   * (old_image_gone); the handler loop then has none to close */
  if (src.memfd >= 0) {
    e->old_mm = src.memfd;
    e->old_addr = a.path.addr;
    ctx->memfd = -1;
  }
  e->abs_path = absolute_path(e);
  e->arg0 = first_arg(&e->argv);
  repro_exec_prepare(ctx, e);
  pthread_mutex_lock(&g.lock);
  procs_exec_seen(ctx->proc, e);
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

static enum verdict on_exit_group(struct notif_ctx *ctx) {
  struct call_args a;
  if (!ctx->proc || !decode_call(ctx, &a)) return VERDICT_CONTINUE;
  pthread_mutex_lock(&g.lock);
  ctx->proc->exit_group_seen = true;
  ctx->proc->exit_group_code = (int)(a.extra & 0xff);
  ctx->proc->exit_group_time = ctx->time;
  if (ctx->proc->exec) procs_check_exec(ctx->proc, ctx->req->pid, false);
  /* the image's calls are all made (atexit's flushes too): learnt before its parent's
   * wait returns, so before the parent's next exec of the same program */
  redirects_image_ended(ctx->proc);
  ending(ctx->proc);
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

/* chdir, fchdir, chroot, unshare, setns: the call may move the caller's cwd (and the
 * calls after, for unshare(CLONE_FS) or a thread's own fs): its cwd is read at every exec
 * from now on. Marked before the call runs, so no exec reads a cwd it moved. */
static enum verdict on_cwd_call(struct notif_ctx *ctx) {
  if (!ctx->proc) return VERDICT_CONTINUE;
  pthread_mutex_lock(&g.lock);
  ctx->proc->cwd_moved = true;
  cwd_forget(ctx->proc);
  int nr = ctx->req->data.nr;
  if ((nr == SYS_unshare && (ctx->req->data.args[0] & CLONE_NEWPID)) || nr == SYS_setns)
    __atomic_store_n(&pid_namespaces, true, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

/* prctl(PR_SET_CHILD_SUBREAPER): orphans below it become its children. */
static enum verdict on_subreaper(struct notif_ctx *ctx) {
  if (!ctx->proc) return VERDICT_CONTINUE;
  pthread_mutex_lock(&g.lock);
  ctx->proc->adopts = true;
  pthread_mutex_unlock(&g.lock);
  return VERDICT_CONTINUE;
}

static const struct arg_match subreaper_op = { .arg = 0, .count = 1, .values = { PR_SET_CHILD_SUBREAPER } };
/* unshare moves a cwd with a mount namespace (CLONE_FS, CLONE_NEWNS); not the recorder's
 * unshare(CLONE_VM), which asks whether the process is alone (recorder/redirect.c) */
static const struct arg_match unshare_moves = { .arg = 0, .count = 1, .test = ARG_ANY_BIT,
                                                .values = { CLONE_FS | CLONE_NEWNS | CLONE_NEWPID } };

static const struct subscription process_calls[] = {
  { SYS_execve, on_exec_call, NULL, NULL },
  { SYS_execveat, on_exec_call, NULL, NULL },
  { SYS_exit_group, on_exit_group, NULL, NULL },
  { SYS_chdir, on_cwd_call, NULL, NULL },
  { SYS_fchdir, on_cwd_call, NULL, NULL },
  { SYS_chroot, on_cwd_call, NULL, NULL },
  { SYS_unshare, on_cwd_call, &unshare_moves, NULL },
  { SYS_setns, on_cwd_call, NULL, NULL },
  { SYS_prctl, on_subreaper, &subreaper_op, NULL },
};

/* Always on: the process table is what every other feature hangs on. Processes are
 * registered at their first notified call (see procs_get), so fork and clone are not
 * notified at all: no notification, no EINTR a native fork would not give. */
const struct feature feature_processes = {
  .name = "processes",
  .subs = SUBSCRIPTIONS(process_calls),
};
