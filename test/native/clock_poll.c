/* Polls clock_gettime(CLOCK_MONOTONIC) until argv[1] seconds (default 2) have passed,
 * then prints how many reads that took: a busy wait that must end under every time mode. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  double wait = argc > 1 ? atof(argv[1]) : 2.0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  unsigned long reads = 1;
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
    reads++;
  } while ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 < wait);
  printf("reads=%lu\n", reads);
  return 0;
}
