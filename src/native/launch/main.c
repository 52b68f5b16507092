/* uwrx: the `uwrx` command (package.json "bin"), run before Node.
 *
 * Node marks every descriptor it inherits close-on-exec as it starts (libuv's
 * uv_disable_stdio_inheritance: fds 0 to 15 at least), before any script runs, and then
 * the caller's descriptors cannot be told apart from Node's own. This program notes
 * which descriptors above 2 the caller left open for its child (open, not close-on-exec)
 * while nothing else is open, in UWRX_INHERITED_FDS=<pid>:<fd>,<fd>... (bin/uwrx takes
 * the variable out again; the pid, which exec keeps, says it is this process's), and
 * starts Node on bin/uwrx as bin/uwrx's #! line does (`env -S` with NODE_EXTRA_CA_CERTS
 * emptied and kept aside, the `node` on PATH), without that exec of env(1): some 0.5 ms
 * of CPU, more than this program costs.
 *
 * The environment is otherwise handed on as it is, in its order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FDS_NAME "UWRX_INHERITED_FDS"

/* bin/uwrx from this program's path (<root>/src/native/out/uwrx); NULL when it has no
 * such form. */
static char *script_path(void) {
  static char path[PATH_MAX];
  static const char script[] = "/bin/uwrx";
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof script);
  if (n <= 0 || (size_t)n >= sizeof path - sizeof script) return NULL;
  path[n] = 0;
  for (int up = 0; up < 4; up++) {
    char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    *slash = 0;
  }
  strcat(path, script);
  return path;
}

static int compare_ints(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* "<pid>:<fd>,<fd>..." for the descriptors above 2 a child of this process would get
 * (NULL when /proc cannot be read or memory is short: then none are passed). */
static char *inherited_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return NULL;
  size_t count = 0, room = 16;
  int *fds = malloc(room * sizeof *fds);
  struct dirent *e;
  while (fds && (e = readdir(dir))) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || end == e->d_name || fd < 3 || fd > INT_MAX || fd == dirfd(dir)) continue;
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC)) continue;
    if (count == room) {
      int *more = realloc(fds, (room *= 2) * sizeof *fds);
      if (!more) free(fds);
      fds = more;
      if (!fds) break;
    }
    fds[count++] = (int)fd;
  }
  closedir(dir);
  if (!fds) return NULL;
  qsort(fds, count, sizeof *fds, compare_ints);
  /* the pid and each fd: up to 10 digits and a separator */
  size_t size = 12 + count * 11 + 1;
  char *list = malloc(size);
  if (list) {
    size_t len = (size_t)snprintf(list, size, "%ld:", (long)getpid());
    for (size_t i = 0; i < count; i++) len += (size_t)snprintf(list + len, size - len, i ? ",%d" : "%d", fds[i]);
  }
  free(fds);
  return list;
}

int main(int argc, char **argv) {
  char *script = script_path();
  if (!script || access(script, R_OK) != 0) {
    fprintf(stderr, "uwrx: no %s: this program runs from src/native/out/ of the uwrx package\n", script ? script : "bin/uwrx");
    return 2;
  }
  /* a stale list of another process goes: the name is uwrx's */
  unsetenv(FDS_NAME);
  char *fds = inherited_fds();
  if (fds && setenv(FDS_NAME, fds, 1) != 0) return 2;
  /* bin/uwrx's #! line: setenv, as env(1) does, replaces a variable in its place and
   * appends a new one (bin/uwrx puts NODE_EXTRA_CA_CERTS back from that order) */
  const char *extra = getenv("NODE_EXTRA_CA_CERTS");
  if (setenv("UWRX_NODE_EXTRA_CA_CERTS", extra ? extra : "", 1) != 0 || setenv("NODE_EXTRA_CA_CERTS", "", 1) != 0) {
    fprintf(stderr, "uwrx: out of memory\n");
    return 2;
  }
  char **args = malloc(((size_t)argc + 2) * sizeof *args);
  if (!args) {
    fprintf(stderr, "uwrx: out of memory\n");
    return 2;
  }
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i <= argc; i++) args[i + 1] = argv[i];
  execvp("node", args);
  fprintf(stderr, "uwrx: node: %s\n", strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
