/* dlopen after start: argv[1] in the process, then argv[2] in a forked child. Exits 0
 * when both loaded. */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: dlopen_probe LIB CHILD_LIB\n");
    return 2;
  }
  if (!dlopen(argv[1], RTLD_NOW)) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  pid_t pid = fork();
  if (pid == 0) _exit(dlopen(argv[2], RTLD_NOW) ? 0 : 1);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
