/* Stats relative to directory descriptors whose directory changes: the same descriptor
 * number for another directory, and a directory made here renamed while open. Usage:
 * dirfd_probe DIR (DIR holds a/ and b/; each stat's name is missing, so it leaves a
 * probe). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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
  printf("%d\n", a == b);
  return 0;
}
