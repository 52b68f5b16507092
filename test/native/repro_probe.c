/* Prints everything a build could read that uwrx makes deterministic, one key=value per
 * line: the vDSO pointer, AT_RANDOM, the clocks, getrandom, /dev/urandom, hostname. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void hex(const char *key, const unsigned char *p, size_t n) {
  printf("%s=", key);
  for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
  printf("\n");
}

int main(void) {
  printf("vdso=%#lx\n", getauxval(AT_SYSINFO_EHDR));
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  if (r) hex("at_random", r, 16);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  printf("realtime=%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  printf("monotonic=%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("gettimeofday=%lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
  printf("time=%lld\n", (long long)time(NULL));
  unsigned char buf[32];
  if (getrandom(buf, sizeof buf, 0) == (ssize_t)sizeof buf) hex("getrandom", buf, sizeof buf);
  int fd = open("/dev/urandom", O_RDONLY);
  if (fd >= 0 && read(fd, buf, sizeof buf) == (ssize_t)sizeof buf) hex("urandom", buf, sizeof buf);
  if (fd >= 0) close(fd);
  char host[256] = "";
  gethostname(host, sizeof host);
  printf("hostname=%s\n", host);
  return 0;
}
