/* cwd_stat_probe LOOPS DIR NAME: changes into DIR, then stats NAME (relative) LOOPS
 * times; prints how many stats succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4 || chdir(argv[2]) != 0) return 2;
  int loops = atoi(argv[1]), found = 0;
  struct stat st;
  for (int i = 0; i < loops; i++) found += lstat(argv[3], &st) == 0;
  printf("found %d\n", found);
  return 0;
}
