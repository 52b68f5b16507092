/* Calls getrandom (32 bytes) or clock_gettime(CLOCK_REALTIME) argv[2] times and prints
 * the TSC cycles per call (the clocks may be uwrx's, the TSC is not); `calibrate`
 * prints TSC cycles per microsecond of CLOCK_MONOTONIC (run it outside uwrx). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <x86intrin.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  long n = atol(argv[2]);
  unsigned char buf[32];
  struct timespec ts, end;
  if (!strcmp(argv[1], "calibrate")) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long c0 = __rdtsc();
    do clock_gettime(CLOCK_MONOTONIC, &end);
    while ((end.tv_sec - ts.tv_sec) * 1000000000L + (end.tv_nsec - ts.tv_nsec) < n * 1000000L);
    printf("cycles_per_us=%.1f\n", (double)(__rdtsc() - c0) / ((double)n * 1000.0));
    return 0;
  }
  unsigned sum = 0;
  unsigned long long c0 = __rdtsc();
  for (long i = 0; i < n; i++) {
    if (!strcmp(argv[1], "getrandom")) {
      if (getrandom(buf, sizeof buf, 0) != sizeof buf) return 1;
      sum += buf[0];
    } else {
      clock_gettime(CLOCK_REALTIME, &ts);
      sum += (unsigned)ts.tv_nsec;
    }
  }
  printf("cycles_per_call=%.0f sum=%u\n", (double)(__rdtsc() - c0) / (double)(n ? n : 1), sum);
  return 0;
}
