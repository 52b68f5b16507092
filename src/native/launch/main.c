/* uwrx: the `uwrx` command (package.json "bin"), run before Node.
 *
 * Node marks every descriptor it inherits close-on-exec as it starts (libuv's
 * uv_disable_stdio_inheritance: fds 0 to 15 at least), before any script runs, and then
 * the caller's descriptors cannot be told apart from Node's own. This program notes
 * which descriptors above 2 the caller left open for its child (open, not close-on-exec)
 * while nothing else is open, and runs bin/uwrx (through its #! line, as the command
 * would have been run without it) with that list in UWRX_INHERITED_FDS=<pid>:<fd>,<fd>...
 * bin/uwrx takes the variable out again (the pid says it is this process's, which
 * exec keeps) and uwrx passes those descriptors to the command at their numbers.
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

#define FDS_VAR "UWRX_INHERITED_FDS="

/* Where the script lies relative to this program (src/native/out/uwrx). */
static const char script_from_out[] = "/../../../bin/uwrx";

extern char **environ;

static int compare_ints(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* "UWRX_INHERITED_FDS=<pid>:<fd>,<fd>..." for the descriptors above 2 a child of this
 * process would get (NULL when /proc cannot be read: then none are passed). */
static char *inherited_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return NULL;
  size_t count = 0, room = 16;
  int *fds = malloc(room * sizeof *fds);
  if (!fds) {
    closedir(dir);
    return NULL;
  }
  struct dirent *e;
  while ((e = readdir(dir))) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || end == e->d_name || fd < 3 || fd > INT_MAX || fd == dirfd(dir)) continue;
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC)) continue;
    if (count == room) {
      int *more = realloc(fds, (room *= 2) * sizeof *fds);
      if (!more) {
        free(fds);
        closedir(dir);
        return NULL;
      }
      fds = more;
    }
    fds[count++] = (int)fd;
  }
  closedir(dir);
  qsort(fds, count, sizeof *fds, compare_ints);
  /* each fd: up to 10 digits and a comma */
  size_t size = sizeof FDS_VAR + 12 + count * 11 + 1;
  char *var = malloc(size);
  if (!var) {
    free(fds);
    return NULL;
  }
  size_t len = (size_t)snprintf(var, size, FDS_VAR "%ld:", (long)getpid());
  for (size_t i = 0; i < count; i++) len += (size_t)snprintf(var + len, size - len, i ? ",%d" : "%d", fds[i]);
  free(fds);
  return var;
}

int main(int argc, char **argv) {
  (void)argc;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - sizeof script_from_out);
  if (n <= 0 || (size_t)n >= sizeof exe - sizeof script_from_out) {
    fprintf(stderr, "uwrx: cannot find the uwrx script: /proc/self/exe: %s\n", n < 0 ? strerror(errno) : "too long");
    return 2;
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) slash = exe + n;
  memcpy(slash, script_from_out, sizeof script_from_out);

  /* the environment as it is, with the list appended (a stale list of another process
   * is dropped: the name is uwrx's) */
  size_t envc = 0;
  while (environ[envc]) envc++;
  char **env = malloc((envc + 2) * sizeof *env);
  if (!env) {
    fprintf(stderr, "uwrx: out of memory\n");
    return 2;
  }
  size_t k = 0;
  for (size_t i = 0; i < envc; i++)
    if (strncmp(environ[i], FDS_VAR, sizeof FDS_VAR - 1)) env[k++] = environ[i];
  char *var = inherited_fds();
  if (var) env[k++] = var;
  env[k] = NULL;

  argv[0] = exe;
  execve(exe, argv, env);
  fprintf(stderr, "uwrx: %s: %s\n", exe, strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
