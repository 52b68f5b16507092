/* Calls faccessat(AT_FDCWD, "/", F_OK) N times and prints the mean cost per call in ns.
 * Run natively and under a supervisor, it measures that supervisor's handler path. */
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
        fprintf(stderr, "access-loop: iteration count must be positive\n");
        return 2;
    }
    /* The raw syscall: glibc may pick faccessat2 and we want one known call. */
    for (long i = 0; i < n / 10 + 1; i++)
        syscall(SYS_faccessat, AT_FDCWD, "/", F_OK);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        if (syscall(SYS_faccessat, AT_FDCWD, "/", F_OK) != 0) {
            perror("access-loop: faccessat /");
            return 1;
        }
    }
    long long elapsed = now_ns() - start;
    printf("%.1f\n", (double)elapsed / (double)n);
    return 0;
}
