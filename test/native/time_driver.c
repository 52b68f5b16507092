/* Runs deterministic-time scripts from stdin with the C implementation, one answer line
 * per operation (the format of test/fixtures/time-vectors.json; see test/time.test.ts):
 *   config MODE T0 STEP OFFSET     -> ok            (resets every clock, wait and timer)
 *   fork CHILD PARENT|-1 RANDOM    -> NOW CPU
 *   read|peek P CLOCK              -> 1 NS | 0
 *   tod P                          -> 1 SEC USEC | 0
 *   time P                         -> 1 SEC | 0
 *   rel P W REAL TIMEOUT           -> ACTIVE REAL_DEADLINE VIRTUAL_DEADLINE
 *   abs P W REAL CLOCK DEADLINE    -> 1 REMAINING ACTIVE | 0
 *   end P W REAL                   -> TIMED_OUT NOW
 *   join PARENT CHILD              -> NOW CHILDREN_CPU
 *   tset P T REAL VALUE INTERVAL   -> ACTIVE
 *   tfire P T REAL                 -> FIRED NOW
 *   state P                        -> NOW CPU CHILDREN_CPU
 *   after P N                      -> NOW CPU       (N reads folded in at once)
 *   times P TICK                   -> 1 RET UTIME STIME CUTIME CSTIME | 0
 *   rusage P CHILDREN              -> 1 USER SYS | 0
 * Built by test/time.test.ts with src/native/common/dettime.c. */
#include <stdio.h>
#include <string.h>

#include "dettime.h"

#define N 16

int main(void) {
  static uwrx_time_config c;
  static uwrx_clock k[N];
  static uwrx_wait w[N];
  static uwrx_timer t[N];
  char line[512], op[16];
  while (fgets(line, sizeof line, stdin)) {
    long long a = 0, b = 0, d = 0, e = 0, f = 0;
    unsigned long long r = 0;
    int n = sscanf(line, "%15s %lld %lld %lld %lld %lld", op, &a, &b, &d, &e, &f);
    int64_t x = 0, y = 0, z = 0;
    if (n < 1) {
      printf("error\n");
    } else if (!strcmp(op, "config")) {
      c = (uwrx_time_config){ .mode = (int)a, .t0_ns = b, .step_ns = d, .wall_offset_ns = e };
      memset(k, 0, sizeof k), memset(w, 0, sizeof w), memset(t, 0, sizeof t);
      printf("ok\n");
    } else if (!strcmp(op, "fork")) {
      sscanf(line, "%*s %lld %lld %llu", &a, &b, &r);
      uwrx_time_fork(&c, b < 0 ? NULL : &k[b], (uint64_t)r, &k[a]);
      printf("%lld %lld\n", (long long)k[a].now_ns, (long long)k[a].cpu_ns);
    } else if (!strcmp(op, "read") || !strcmp(op, "peek")) {
      int ok = op[0] == 'r' ? uwrx_time_read(&c, &k[a], (int32_t)b, &x) : uwrx_time_peek(&c, &k[a], (int32_t)b, &x);
      if (ok) printf("1 %lld\n", (long long)x);
      else printf("0\n");
    } else if (!strcmp(op, "tod")) {
      if (uwrx_time_gettimeofday(&c, &k[a], &x, &y)) printf("1 %lld %lld\n", (long long)x, (long long)y);
      else printf("0\n");
    } else if (!strcmp(op, "time")) {
      if (uwrx_time_time(&c, &k[a], &x)) printf("1 %lld\n", (long long)x);
      else printf("0\n");
    } else if (!strcmp(op, "rel")) {
      uwrx_time_wait_relative(&c, &k[a], &w[b], d, e);
      printf("%d %lld %lld\n", w[b].active, (long long)(w[b].active ? w[b].real_deadline_ns : 0),
             (long long)(w[b].active ? w[b].virtual_deadline_ns : 0));
    } else if (!strcmp(op, "abs")) {
      if (uwrx_time_wait_absolute(&c, &k[a], &w[b], d, (int32_t)e, f, &z)) printf("1 %lld %d\n", (long long)z, w[b].active);
      else printf("0\n");
    } else if (!strcmp(op, "end")) {
      int out = uwrx_time_wait_end(&c, &k[a], &w[b], d);
      printf("%d %lld\n", out, (long long)k[a].now_ns);
    } else if (!strcmp(op, "join")) {
      uwrx_time_join(&c, &k[a], &k[b]);
      printf("%lld %lld\n", (long long)k[a].now_ns, (long long)k[a].children_cpu_ns);
    } else if (!strcmp(op, "tset")) {
      uwrx_time_timer_set(&c, &k[a], &t[b], d, e, f);
      printf("%d\n", t[b].active);
    } else if (!strcmp(op, "tfire")) {
      int fired = uwrx_time_timer_fire(&c, &k[a], &t[b], d);
      printf("%d %lld\n", fired, (long long)k[a].now_ns);
    } else if (!strcmp(op, "times")) {
      int64_t out[5];
      if (uwrx_time_times(&c, &k[a], b, out))
        printf("1 %lld %lld %lld %lld %lld\n", (long long)out[0], (long long)out[1], (long long)out[2], (long long)out[3], (long long)out[4]);
      else printf("0\n");
    } else if (!strcmp(op, "rusage")) {
      if (uwrx_time_rusage(&c, &k[a], (int)b, &x, &y)) printf("1 %lld %lld\n", (long long)x, (long long)y);
      else printf("0\n");
    } else if (!strcmp(op, "after")) {
      uwrx_time_after_reads(&c, &k[a], (int64_t)b);
      printf("%lld %lld\n", (long long)k[a].now_ns, (long long)k[a].cpu_ns);
    } else if (!strcmp(op, "state")) {
      printf("%lld %lld %lld\n", (long long)k[a].now_ns, (long long)k[a].cpu_ns, (long long)k[a].children_cpu_ns);
    } else {
      printf("error\n");
    }
  }
  return 0;
}
