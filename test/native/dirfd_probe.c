/* Stats relative to directory descriptors whose directory changes: the same descriptor
 * number for another directory, a directory made here renamed while open, a directory
 * opened below another as fts does (openat with O_NOFOLLOW, then a duplicate), its parent
 * renamed by another process, and another directory duplicated over a descriptor.
 * Usage: dirfd_probe DIR (DIR holds a/ and b/; each stat's name is missing, so it leaves
 * a probe). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* another process renames `from` to `to` */
static int moved(const char *from, const char *to) {
  pid_t c = fork();
  if (c == 0) {
    execlp("mv", "mv", from, to, (char *)NULL);
    _exit(127);
  }
  int status;
  return c > 0 && waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void probe(int fd, const char *name) {
  struct stat st;
  fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW);
}

int main(int argc, char **argv) {
  if (argc != 2 || chdir(argv[1]) != 0) return 2;
  int a = open("a", O_RDONLY | O_DIRECTORY);
  probe(a, "in-a-1");
  probe(a, "in-a-2");
  close(a);
  int b = open("b", O_RDONLY | O_DIRECTORY); /* the same number as a had */
  probe(b, "in-b");
  close(b);
  if (mkdir("d", 0755) != 0) return 1;
  int d = open("d", O_RDONLY | O_DIRECTORY);
  probe(d, "in-d");
  if (rename("d", "e") != 0) return 1;
  probe(d, "in-e");
  close(d);
  if (mkdir("f", 0755) != 0 || mkdir("f/g", 0755) != 0) return 1;
  int f = open("f", O_RDONLY | O_DIRECTORY);
  int g = openat(f, "g", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  int g2 = fcntl(g, F_DUPFD_CLOEXEC, 0);
  probe(g2, "in-g");
  if (!moved("f", "h")) return 1;
  probe(g2, "in-h-g");
  probe(g, "in-h-g-2");
  int c = open("b", O_RDONLY | O_DIRECTORY);
  probe(c, "in-b-2");
  if (dup2(f, c) != c) return 1;
  probe(c, "in-h");
  printf("%d\n", a == b);
  return 0;
}
