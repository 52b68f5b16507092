/* dlopen after start: argv[1] in the process, then argv[2] in a forked child that loads
 * it first thing, and argv[3] in a forked child that makes a file call (its recorder
 * sets up) before it loads. Exits 0 when all three loaded. */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int in_child(const char *lib, int call_first) {
  pid_t pid = fork();
  if (pid == 0) {
    if (call_first && access("/", F_OK) != 0) _exit(1);
    _exit(dlopen(lib, RTLD_NOW) ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: dlopen_probe LIB CHILD_LIB LATER_CHILD_LIB\n");
    return 2;
  }
  if (!dlopen(argv[1], RTLD_NOW)) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  return in_child(argv[2], 0) && in_child(argv[3], 1) ? 0 : 1;
}
