/* Writes to stdout and stderr every way a program does, for test/output-fast.test.ts:
 * the write family, stdio buffered and unbuffered, a write larger than one record, the
 * null device as stdout, a vfork and a fork child, and a write after a thread ran. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG 200000

static void *thread_main(void *arg) {
  (void)arg;
  if (write(1, "thread\n", 7) != 7) exit(3);
  return NULL;
}

int main(void) {
  if (write(1, "write\n", 6) != 6) return 3;
  struct iovec v[3] = { { "write", 5 }, { "", 0 }, { "v\n", 2 } };
  if (writev(1, v, 3) != 7) return 3;
  /* stdout is a pipe: fully buffered until the flush */
  printf("printf %d\n", 1);
  fputs("fputs\n", stdout);
  fflush(stdout);
  fprintf(stderr, "stderr %d\n", 2);
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("unbuffered %s\n", "printf");
  puts("puts");
  char *big = malloc(BIG);
  if (!big) return 3;
  for (int i = 0; i < BIG; i++) big[i] = (char)('a' + i % 26);
  big[BIG - 1] = '\n';
  for (size_t done = 0; done < BIG;) {
    ssize_t n = write(1, big + done, BIG - done);
    if (n <= 0) return 3;
    done += (size_t)n;
  }
  /* on a pipe these fail (ESPIPE); their bytes are output all the same, as the kernel
   * was asked to write them */
  if (pwrite(1, "pwrite\n", 7, 0) >= 0) return 3;
  struct iovec pv = { "pwritev\n", 8 };
  if (pwritev(1, &pv, 1, 0) >= 0) return 3;

  int saved = dup(1), null = open("/dev/null", O_WRONLY);
  if (saved < 0 || null < 0 || dup2(null, 1) != 1) return 3;
  if (write(1, "null\n", 5) != 5) return 3;
  printf("null printf\n");
  if (dup2(saved, 1) != 1) return 3;
  close(null);
  close(saved);

  pid_t child = vfork();
  if (child == 0) {
    if (write(1, "vfork child\n", 12) != 12) _exit(3);
    _exit(0);
  }
  int status;
  if (child < 0 || waitpid(child, &status, 0) != child || status != 0) return 4;
  child = fork();
  if (child == 0) {
    printf("fork child\n");
    _exit(0);
  }
  if (child < 0 || waitpid(child, &status, 0) != child || status != 0) return 4;

  pthread_t thread;
  if (pthread_create(&thread, NULL, thread_main, NULL) != 0 || pthread_join(thread, NULL) != 0) return 5;
  printf("after thread\n");
  return 0;
}
