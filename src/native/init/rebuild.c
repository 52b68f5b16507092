/* Partial rebuild, the mechanism: the shim's UWRX_CTL_EXEC_START of a program whose name
 * is in the plan's "skippable" list is held (VERDICT_PENDING) while Node's rebuild policy
 * (src/features/rebuild.ts) compares the process with the replayed record. The answer is
 * "run" or "skip with this exit status and this output": then the shim asks for the
 * output chunk by chunk (UWRX_CTL_SKIP_OUTPUT), writes it to the same fds, and exits with
 * the status without ever entering ld.so. The output's writes and the exit go through
 * the usual handlers, so the new record shows them as the process's own. Only the
 * calling process waits; the rest of the tree goes on. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_hash.h"
#include "uwrx_control.h"
#include "uwrx_events.h"
#include "uwrx_init_proto.h"
#include "../common/tracebuf.h"

/* The policy may hash many files before its first answer: give it time. */
#define DECIDE_TIMEOUT_MS 600000
#define PROC_FILE_MAX (4u << 20)

/* Recorded output of a skipped exec: records of (u8 fd, u32 LE length, bytes). */
struct rebuild_skip {
  uint8_t *data;
  size_t len, pos;
};

static char **names; /* from the plan, NULL-terminated */
/* The replayed attempt (plan step "replayed"): skipped outputs' stored versions. */
static int replayed_fd = -1;

bool rebuild_open_replayed(const char *path) {
  replayed_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return replayed_fd >= 0;
}

/* A stored version of the replayed attempt, mapped read-only (*len 0: empty, nothing
 * mapped); MAP_FAILED when it cannot be read. Never leaves the attempt's directory. */
static void *map_stored(const char *relative, size_t *len) {
  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  int fd = replayed_fd < 0 ? -1 : (int)syscall(SYS_openat2, replayed_fd, relative, &how, sizeof how);
  if (fd < 0) return MAP_FAILED;
  struct stat st;
  void *m = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    *len = (size_t)st.st_size;
    m = *len == 0 ? NULL : mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  return m;
}
/* A replay with a policy: the exec waits for the answer. Otherwise (a capture) Node only
 * notes the process for the attempt's rebuild index and the exec goes on at once. */
static bool wait_answers;

/* A name as the whitelist knows it: "x86_64-linux-gnu-gcc-12" -> "gcc" (the target
 * prefix and the version suffix of Debian's tool names go). */
static void normalise(const char *name, char *out, size_t cap) {
  const char *triplet = NULL;
  for (const char *s = strstr(name, "-linux-"); s; s = strstr(s + 1, "-linux-")) triplet = s;
  if (triplet) {
    const char *rest = strchr(triplet + 7, '-');
    if (rest) name = rest + 1;
  }
  size_t len = strnlen(name, cap - 1); /* (a copy: snprintf's formatting ran at every exec) */
  memcpy(out, name, len);
  out[len] = 0;
  char *dash = strrchr(out, '-');
  if (dash && dash[1] >= '0' && dash[1] <= '9' && strspn(dash + 1, "0123456789.") == strlen(dash + 1)) *dash = 0;
}

/* Exact, or "prefix*". */
static bool name_listed(const char *name) {
  for (char **n = names; n && *n; n++) {
    size_t len = strlen(*n);
    if (len && (*n)[len - 1] == '*') {
      if (strncmp(name, *n, len - 1) == 0) return true;
    } else if (strcmp(name, *n) == 0) {
      return true;
    }
  }
  return false;
}

static bool listed(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char normal[256];
  normalise(base, normal, sizeof normal);
  return name_listed(base) || name_listed(normal);
}

/* A whole /proc file (cmdline, environ); NULL when unreadable. */
static uint8_t *read_proc_file(pid_t pid, const char *what, size_t *len) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      if (cap >= PROC_FILE_MAX) break;
      uint8_t *grown = realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  *len = n;
  return buf;
}

static char *read_link(pid_t pid, const char *what) {
  char path[PROC_PATH_MAX], target[PATH_MAX];
  ssize_t n = readlink(proc_path(path, pid, what, -1), target, sizeof target - 1);
  if (n < 0) return NULL;
  target[n] = 0;
  return strdup(target);
}

/* ---- the executable of a new image ----
 * Its /proc/<pid>/exe link was the only lookup of a vfork child's pid in /proc, and the
 * first lookup of a pid makes its proc inodes (about 20 us). A binary exec'd by an
 * absolute path (the cwd joined to a relative one) is the file at that path: the link
 * read for one process is kept with that file's identity, and a later exec of the same
 * path reuses it while the file there is the same one (device, inode, change time: a
 * rename of the file itself changes that) and no directory or symlink was renamed or
 * removed and nothing mounted (files_dirs_quiet). Kept only when the link's target was
 * that very file: not for scripts (the link names the interpreter) nor a file deleted
 * since. */
#define EXE_SLOTS 512

struct exe_entry {
  char *path, *exe;
  uint64_t gen;
  dev_t dev;
  ino_t ino;
  struct timespec ctime;
};

static struct exe_entry exe_cache[EXE_SLOTS];
static pthread_mutex_t exe_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t exe_slot(const char *path) { return (size_t)(uwrx_hash_str(path) % EXE_SLOTS); }

static bool same_file(const struct exe_entry *e, const struct stat *st) {
  return e->dev == st->st_dev && e->ino == st->st_ino && e->ctime.tv_sec == st->st_ctim.tv_sec &&
         e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* The kept executable of an exec of `path`, the file `st` there under generation `gen`
 * (a copy), or NULL. */
static char *exe_kept(const char *path, uint64_t gen, const struct stat *st) {
  char *exe = NULL;
  struct exe_entry *e = &exe_cache[exe_slot(path)];
  pthread_mutex_lock(&exe_lock);
  if (e->path && e->gen == gen && same_file(e, st) && !strcmp(e->path, path)) exe = strdup(e->exe);
  pthread_mutex_unlock(&exe_lock);
  return exe;
}

/* The target of /proc/<pid>/exe of the image exec'd as `path` (absolute, or NULL). */
static char *exe_of(pid_t pid, const char *path) {
  uint64_t gen = path ? files_dirs_quiet() : 0;
  struct stat st;
  bool keyed = gen && stat(path, &st) == 0;
  char *exe = keyed ? exe_kept(path, gen, &st) : NULL;
  if (exe) return exe;
  exe = read_link(pid, "exe");
  if (!keyed || !exe) return exe;
  char link[PROC_PATH_MAX];
  struct stat ran;
  size_t len = strlen(exe);
  if (stat(proc_path(link, pid, "exe", -1), &ran) != 0 || ran.st_dev != st.st_dev || ran.st_ino != st.st_ino ||
      (len >= 10 && !strcmp(exe + len - 10, " (deleted)")) || files_dirs_quiet() != gen)
    return exe;
  char *path_copy = strdup(path), *exe_copy = strdup(exe);
  if (!path_copy || !exe_copy) {
    free(path_copy);
    free(exe_copy);
    return exe;
  }
  struct exe_entry *e = &exe_cache[exe_slot(path)];
  pthread_mutex_lock(&exe_lock);
  free(e->path);
  free(e->exe);
  *e = (struct exe_entry){ path_copy, exe_copy, gen, st.st_dev, st.st_ino, st.st_ctim };
  pthread_mutex_unlock(&exe_lock);
  return exe;
}

bool rebuild_exec_unlisted(const char *arg0, const char *path) {
  if (!names || !names[0]) return true;
  if (!arg0 || !path || path[0] != '/' || listed(arg0) || listed(path)) return false;
  uint64_t gen = files_dirs_quiet();
  struct stat st;
  char *exe = gen && stat(path, &st) == 0 ? exe_kept(path, gen, &st) : NULL;
  bool unlisted = exe && !listed(exe);
  free(exe);
  return unlisted;
}

/* NUL-separated strings as a msgpack array of bin. */
static void write_strings(struct mp_writer *w, const uint8_t *data, size_t len) {
  uint32_t count = 0;
  for (size_t i = 0; i < len; i++) count += data[i] == 0;
  if (len && data[len - 1] != 0) count++;
  mp_write_array(w, count);
  for (size_t i = 0; i < len;) {
    size_t end = i;
    while (end < len && data[end]) end++;
    mp_write_bin(w, data + i, end - i);
    i = end + 1;
  }
}

struct question {
  uint64_t handle;
  pid_t tgid;
  char *exe;
};

/* The answer's "files": [{path, kind (0 file, 1 directory, 2 absent), mode, and a file's
 * bytes as data or as source (its stored version in the replayed attempt)}], in the
 * order the record changed them. */
static bool place_files(struct proc *p, struct mp_reader *files, const char *exe) {
  if (!files->p) return true;
  uint32_t count;
  if (!mp_read_array(files, &count)) return false;
  while (count--) {
    uint32_t n;
    if (!mp_read_map(files, &n)) return false;
    char *path = NULL, *source = NULL;
    const char *data = NULL;
    uint32_t sent_len = 0;
    int64_t kind = -1, mode = 0644;
    while (n--) {
      const char *k;
      uint32_t klen;
      if (!mp_read_bytes(files, &k, &klen)) break;
      if (mp_key_is(k, klen, "path")) mp_read_strdup(files, &path);
      else if (mp_key_is(k, klen, "kind")) mp_read_int(files, &kind);
      else if (mp_key_is(k, klen, "mode")) mp_read_int(files, &mode);
      else if (mp_key_is(k, klen, "data") && mp_peek(files) != MP_NIL) mp_read_bytes(files, &data, &sent_len);
      else if (mp_key_is(k, klen, "source") && mp_peek(files) != MP_NIL) mp_read_strdup(files, &source);
      else mp_skip(files);
    }
    /* a stored version is mapped, not read: its bytes go once, to the new file */
    void *mapped = NULL;
    size_t len = sent_len;
    bool ok = !files->failed && path && path[0] == '/' && kind >= REPLAYED_FILE && kind <= REPLAYED_ABSENT;
    if (ok && source) {
      mapped = map_stored(source, &len);
      ok = mapped != MAP_FAILED;
      data = mapped;
    }
    ok = ok && files_change_for(p, path, (enum replayed_kind)kind, (uint32_t)mode, (const uint8_t *)data, len, exe);
    if (mapped && mapped != MAP_FAILED) munmap(mapped, len);
    free(path);
    free(source);
    if (!ok) return false;
  }
  return true;
}

static void on_answer(void *arg, struct mp_reader *body, const char *error) {
  struct question *q = arg;
  bool skip = false;
  int64_t status = 0;
  const char *output = NULL, *reason = "";
  uint32_t output_len = 0, reason_len = 0, n;
  struct mp_reader files = { 0 };
  /* where the recorded process's clocks ended (absent from older indexes) */
  uwrx_clock clock = { 0 };
  bool has_clock = false;
  if (!error && body && mp_read_map(body, &n)) {
    while (n--) {
      const char *k;
      uint32_t klen;
      if (!mp_read_bytes(body, &k, &klen)) break;
      if (mp_key_is(k, klen, "skip")) mp_read_bool(body, &skip);
      else if (mp_key_is(k, klen, "status")) mp_read_int(body, &status);
      else if (mp_key_is(k, klen, "output") && mp_peek(body) != MP_NIL) mp_read_bytes(body, &output, &output_len);
      else if (mp_key_is(k, klen, "reason") && mp_peek(body) != MP_NIL) mp_read_bytes(body, &reason, &reason_len);
      else if (mp_key_is(k, klen, "files")) files = *body, mp_skip(body);
      else if (mp_key_is(k, klen, "clock") && mp_peek(body) != MP_NIL) {
        /* read from a copy, the value skipped whole: a malformed one leaves no clock */
        struct mp_reader at = *body;
        uint32_t parts;
        mp_skip(body);
        has_clock = mp_read_array(&at, &parts) && parts == 3 && mp_read_int(&at, &clock.now_ns) &&
                    mp_read_int(&at, &clock.cpu_ns) && mp_read_int(&at, &clock.children_cpu_ns);
      } else mp_skip(body);
    }
    if (body->failed) skip = false;
  }
  if (!skip) {
    notify_reply(q->handle, UWRX_EXEC_RUN, 0, false);
  } else {
    struct rebuild_skip *s = calloc(1, sizeof *s);
    if (s && output_len) {
      s->data = malloc(output_len);
      if (s->data) memcpy(s->data, output, output_len), s->len = output_len;
    }
    pthread_mutex_lock(&g.lock);
    struct proc *p = procs_find(q->tgid);
    pthread_mutex_unlock(&g.lock);
    /* its recorded effect on files first: once answered, the process is gone */
    bool placed = p && s && (output_len == 0 || s->data) && place_files(p, &files, q->exe);
    pthread_mutex_lock(&g.lock);
    if (placed && procs_find(q->tgid) == p) {
      free(p->skip ? p->skip->data : NULL);
      free(p->skip);
      p->skip = s;
      s = NULL;
      if (has_clock) clocks_skipped(p, &clock);
      if (p->trace) {
        struct uwrx_ev_skip ev = { .status = (int32_t)(status & 0xff) };
        struct uwrx_blob blobs[2] = { { q->exe, strlen(q->exe) }, { reason, reason_len } };
        uwrx_trace_emit(p->trace, UWRX_EV_SKIP, (uint32_t)p->logical, &ev, sizeof ev, blobs, 2);
      }
      pthread_mutex_unlock(&g.lock);
      notify_reply(q->handle, UWRX_EXEC_SKIP | (status & 0xff), 0, false);
    } else {
      pthread_mutex_unlock(&g.lock);
      /* nowhere to keep the output, or the files could not be put in place: running
       * (it writes them all again) is always right */
      notify_reply(q->handle, UWRX_EXEC_RUN, 0, false);
    }
    if (s) free(s->data);
    free(s);
  }
  free(q->exe);
  free(q);
}

/* The question about an exec, for Node: read while the process waits in its control
 * call, so what it holds is what the process had at its exec. */
static void write_question(struct notif_ctx *ctx, const char *exe, const uint8_t *argv, size_t argv_len,
                           struct mp_writer *w) {
  pid_t pid = ctx->req->pid;
  size_t env_len = 0;
  uint8_t *env = read_proc_file(pid, "environ", &env_len);
  char *cwd = read_link(pid, "cwd");
  mp_writer_init(w);
  mp_write_map(w, 8);
  mp_write_cstr(w, "pid");
  mp_write_int(w, ctx->proc->logical);
  /* the process seed derives from its place in the tree (docs/reproducibility.md), not
   * from the order processes were first seen: the policy finds the recorded twin by it */
  mp_write_cstr(w, "seed");
  pthread_mutex_lock(&g.lock);
  uwrx_seed seed = ctx->proc->repro.rng.seed;
  pthread_mutex_unlock(&g.lock);
  if (repro_config_get()->enabled) mp_write_bin(w, seed.bytes, sizeof seed.bytes);
  else mp_write_nil(w);
  mp_write_cstr(w, "exe");
  mp_write_bin(w, exe, strlen(exe));
  mp_write_cstr(w, "argv");
  write_strings(w, argv, argv_len);
  mp_write_cstr(w, "cwd");
  if (cwd) mp_write_bin(w, cwd, strlen(cwd));
  else mp_write_nil(w);
  mp_write_cstr(w, "env");
  write_strings(w, env ? env : (const uint8_t *)"", env ? env_len : 0);
  /* where its stdout and stderr go: of what its descendants write on fds 1 and 2, only
   * that is its output (gcc -pipe: cc1's stdout is the pipe to as) */
  mp_write_cstr(w, "stdio");
  mp_write_array(w, 2);
  for (int fd = 1; fd <= 2; fd++) {
    char id[48];
    struct stat st;
    if (!proc_fd_stat(pid, fd, &st)) {
      mp_write_nil(w);
      continue;
    }
    snprintf(id, sizeof id, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    mp_write_cstr(w, id);
  }
  mp_write_cstr(w, "overlays");
  files_write_overlays(w);
  free(env);
  free(cwd);
}

/* A question whose answer the exec does not wait for: noted once the exec runs. */
struct note {
  struct mp_writer w;
  struct question *q;
};

static void free_note(struct note *n) {
  free(n->q->exe);
  free(n->q);
  mp_writer_free(&n->w);
  free(n);
}

/* Nothing waits for an answer: the exec is noted, not asked about (a notice held with the
 * others, one write for many, and no answer for Node to send). */
static void send_note(void *arg) {
  struct note *n = arg;
  channel_post(MSG_REBUILD_EXEC, &n->w);
  free_note(n);
}

static enum verdict on_exec_start(struct notif_ctx *ctx) {
  if (!ctx->proc || !names) return VERDICT_CONTINUE;
  pid_t pid = ctx->req->pid;
  /* argv[0] as the exec's own call gave it saves reading the whole command line of
   * every exec: only a listed program's is sent */
  pthread_mutex_lock(&g.lock);
  char *arg0 = ctx->proc->exec_arg0, *path = ctx->proc->exec_path;
  ctx->proc->exec_arg0 = ctx->proc->exec_path = NULL;
  pthread_mutex_unlock(&g.lock);
  size_t argv_len = 0;
  uint8_t *argv = arg0 ? NULL : read_proc_file(pid, "cmdline", &argv_len);
  char *exe = exe_of(pid, path);
  free(path);
  bool ask = (arg0 || argv) && exe && (listed(arg0 ? arg0 : (const char *)argv) || listed(exe));
  free(arg0);
  if (ask && !argv) argv = read_proc_file(pid, "cmdline", &argv_len);
  if (!ask || !argv) {
    free(argv);
    free(exe);
    return VERDICT_CONTINUE; /* reproducibility answers it */
  }
  /* what the question holds is read while the process still waits: without a policy
   * the exec runs whatever Node says, so it is sent after the answer (send_note), and
   * the recorder's descriptor goes in with the answer */
  struct note *note = calloc(1, sizeof *note);
  struct question *q = calloc(1, sizeof *q);
  if (!note || !q) {
    free(note);
    free(q);
    free(argv);
    free(exe);
    if (!repro_exec_start(ctx, false)) return notify_answer_now(ctx, 0, EFAULT);
    return notify_answer_now(ctx, UWRX_EXEC_RUN, 0);
  }
  write_question(ctx, exe, argv, argv_len, &note->w);
  free(argv);
  q->tgid = ctx->proc->tgid;
  q->exe = exe;
  note->q = q;
  /* (left before the answer, which repro_exec_start may send) */
  if (!wait_answers) notify_after(ctx, send_note, note);
  if (!repro_exec_start(ctx, !wait_answers)) {
    notify_after_cancel(ctx);
    free_note(note);
    return notify_answer_now(ctx, 0, EFAULT);
  }
  if (!wait_answers) return ctx->sent ? VERDICT_ANSWERED : notify_answer_now(ctx, UWRX_EXEC_RUN, 0);
  uint64_t handle = notify_defer(ctx);
  if (!handle) {
    free_note(note);
    return notify_answer_now(ctx, UWRX_EXEC_RUN, 0);
  }
  q->handle = handle;
  if (!channel_request(MSG_REBUILD_EXEC, &note->w, DECIDE_TIMEOUT_MS, on_answer, q)) {
    notify_reply(handle, UWRX_EXEC_RUN, 0, false);
    free(q->exe);
    free(q);
  }
  mp_writer_free(&note->w);
  free(note);
  return VERDICT_PENDING;
}

/* The next piece of the skipped exec's output: (fd << 32) | n bytes written to the
 * caller's buffer, 0 when all was given. */
static enum verdict on_skip_output(struct notif_ctx *ctx) {
  const __u64 *a = ctx->req->data.args;
  if (!ctx->proc) return notify_answer_now(ctx, 0, 0);
  pthread_mutex_lock(&g.lock);
  struct rebuild_skip *s = ctx->proc->skip;
  uint8_t fd = 0;
  size_t n = 0;
  uint8_t *copy = NULL;
  if (s && s->pos + 5 <= s->len) {
    fd = s->data[s->pos];
    uint32_t len;
    memcpy(&len, s->data + s->pos + 1, 4);
    size_t avail = s->len - s->pos - 5;
    if (len > avail) len = (uint32_t)avail;
    n = len < a[2] ? len : (size_t)a[2];
    copy = n ? malloc(n) : NULL;
    if (copy) memcpy(copy, s->data + s->pos + 5, n);
    if (n && !copy) {
      n = 0;
    } else if (n < len) {
      /* the rest of this record stays: its header moves to just before it */
      s->pos += n;
      s->data[s->pos] = fd;
      uint32_t rest = len - (uint32_t)n;
      memcpy(s->data + s->pos + 1, &rest, 4);
    } else {
      s->pos += 5 + len;
    }
  }
  pthread_mutex_unlock(&g.lock);
  if (n == 0) return notify_answer_now(ctx, 0, 0);
  bool ok = target_write(ctx, a[1], copy, n);
  free(copy);
  if (!ok) return notify_answer_now(ctx, 0, EFAULT);
  return notify_answer_now(ctx, (int64_t)(((uint64_t)fd << 32) | n), 0);
}

static void forget(struct proc *p, bool known, int status) {
  (void)known;
  (void)status;
  if (!p->skip) return;
  free(p->skip->data);
  free(p->skip);
  p->skip = NULL;
}

static bool configured(const struct plan *plan) {
  names = plan->skippable;
  wait_answers = plan->rebuild_wait;
  return plan->skippable != NULL && plan->skippable[0] != NULL;
}

static const struct arg_match exec_start_op = { .arg = 0, .count = 1, .values = { UWRX_CTL_EXEC_START } };
static const struct arg_match skip_output_op = { .arg = 0, .count = 1, .values = { UWRX_CTL_SKIP_OUTPUT } };

static const struct subscription rebuild_calls[] = {
  { UWRX_SYS_CONTROL, on_exec_start, &exec_start_op, NULL },
  { UWRX_SYS_CONTROL, on_skip_output, &skip_output_op, NULL },
};

const struct feature feature_rebuild = {
  .name = "rebuild",
  .enabled = configured,
  .subs = SUBSCRIPTIONS(rebuild_calls),
  .on_exit = forget,
};
