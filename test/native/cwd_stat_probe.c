/* cwd_stat_probe LOOPS DIR NAME [DIR NAME]...: for each pair, changes into DIR, then
 * stats NAME (relative) LOOPS times; prints how many stats succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int loops = atoi(argv[1]), found = 0;
  struct stat st;
  for (int a = 2; a + 1 < argc; a += 2) {
    if (chdir(argv[a]) != 0) return 2;
    for (int i = 0; i < loops; i++) found += lstat(argv[a + 1], &st) == 0;
  }
  printf("found %d\n", found);
  return 0;
}
