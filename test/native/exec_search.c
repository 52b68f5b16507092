/* Execs that fail and a PATH search: each answer is printed, then the search's program
 * runs. Under uwrx the output is the native one whichever path answers
 * (test/exec-search.test.ts). argv[1]: a directory holding "not-executable" (mode 644)
 * and "found" (a script printing "found ran"). */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void try_exec(const char *path) {
  char *argv[] = { (char *)path, NULL };
  execve(path, argv, environ);
  printf("execve %s: %s\n", path, strerror(errno));
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char missing[4096], file_as_dir[4096], not_exec[4096], path[8192];
  snprintf(missing, sizeof missing, "%s/missing", argv[1]);
  snprintf(file_as_dir, sizeof file_as_dir, "%s/not-executable/x", argv[1]);
  snprintf(not_exec, sizeof not_exec, "%s/not-executable", argv[1]);
  try_exec(missing);
  try_exec(file_as_dir);
  try_exec(not_exec);
  try_exec(argv[1]);
  try_exec("");
  try_exec("relative/missing");
  /* posix_spawnp along a PATH without the program, then with it after missing dirs */
  pid_t pid;
  char *spawn_argv[] = { "found", NULL };
  setenv("PATH", "/nonexistent-a:/nonexistent-b", 1);
  int r = posix_spawnp(&pid, "found", NULL, NULL, spawn_argv, environ);
  printf("posix_spawnp without it: %s\n", r ? strerror(r) : "started");
  snprintf(path, sizeof path, "/nonexistent-a:/etc/passwd:%s:/nonexistent-b:%s", not_exec, argv[1]);
  setenv("PATH", path, 1);
  r = posix_spawnp(&pid, "found", NULL, NULL, spawn_argv, environ);
  printf("posix_spawnp: %s\n", r ? strerror(r) : "started");
  int status;
  if (r == 0 && waitpid(pid, &status, 0) == pid) printf("spawned exit %d\n", WEXITSTATUS(status));
  fflush(stdout);
  /* and execvp, the way gcc runs `as` */
  execvp("found", spawn_argv);
  printf("execvp: %s\n", strerror(errno));
  return 1;
}
