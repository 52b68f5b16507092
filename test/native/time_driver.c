/* Answers deterministic-time queries from stdin with the C implementation:
 *   <mode> <t0_ns> <step_ns> <query> <clock_id> [<wall_offset_ns>]  ->  "clock <1 ns|0> tod <1 sec usec|0> time <1 sec|0>"
 * Built by test/time.test.ts with src/native/common/dettime.c. */
#include <stdio.h>

#include "dettime.h"

int main(void) {
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    int mode, clock_id;
    long long t0, step, offset = 0;
    unsigned long long query;
    if (sscanf(line, "%d %lld %lld %llu %d %lld", &mode, &t0, &step, &query, &clock_id, &offset) < 5) {
      printf("error\n");
      continue;
    }
    uwrx_time_config c = {.mode = mode, .t0_ns = t0, .step_ns = step, .wall_offset_ns = offset};
    int64_t ns, sec, usec;
    if (uwrx_time_clock_ns(&c, query, clock_id, &ns)) printf("clock 1 %lld", (long long)ns);
    else printf("clock 0");
    if (uwrx_time_gettimeofday(&c, query, &sec, &usec)) printf(" tod 1 %lld %lld", (long long)sec, (long long)usec);
    else printf(" tod 0");
    if (uwrx_time_time(&c, query, &sec)) printf(" time 1 %lld\n", (long long)sec);
    else printf(" time 0\n");
  }
  return 0;
}
