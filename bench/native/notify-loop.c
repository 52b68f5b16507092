/* Calls write(1, "", 0) N times and prints the mean cost per call in ns. Natively the
 * call does next to nothing; uwrx is notified of every write to fd 1 (the output
 * record), so run under a supervisor it measures that supervisor's handler path. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    if (n <= 0) {
        fprintf(stderr, "notify-loop: iteration count must be positive\n");
        return 2;
    }
    /* The raw syscall: one known call, nothing buffered. */
    for (long i = 0; i < n / 10 + 1; i++)
        syscall(SYS_write, 1, "", 0);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        if (syscall(SYS_write, 1, "", 0) != 0) {
            perror("notify-loop: write");
            return 1;
        }
    }
    long long elapsed = now_ns() - start;
    printf("%.1f\n", (double)elapsed / (double)n);
    return 0;
}
