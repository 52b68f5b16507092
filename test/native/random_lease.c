/* getrandom and getentropy from the main thread, a second thread, a forked child and
 * the next image after exec, printed in hex; a bad buffer and bad flags print their
 * errors. Usage: random_lease [after-exec] */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *who, const unsigned char *b, size_t n) {
  printf("%s", who);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
}

static void draw(const char *who) {
  unsigned char b[16];
  ssize_t r = getrandom(b, sizeof b, 0);
  if (r != (ssize_t)sizeof b) printf("%s failed %zd %d\n", who, r, errno);
  else show(who, b, sizeof b);
}

static void *in_thread(void *arg) {
  (void)arg;
  draw("thread ");
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
    draw("after exec ");
    return 0;
  }
  draw("main 1 ");
  draw("main 2 ");
  unsigned char e[32];
  if (getentropy(e, sizeof e) == 0) show("entropy ", e, sizeof e);
  static unsigned char big[100000];
  if (getrandom(big, sizeof big, GRND_NONBLOCK) == (ssize_t)sizeof big) show("big tail ", big + sizeof big - 8, 8);
  errno = 0;
  void *volatile bad = (void *)8; /* an address the compiler cannot see through */
  ssize_t r = getrandom(bad, 16, 0);
  printf("bad buffer %zd %d\n", r, errno);
  errno = 0;
  r = getrandom(e, 16, GRND_RANDOM | GRND_INSECURE);
  printf("bad flags %zd %d\n", r, errno);
  pthread_t t;
  pthread_create(&t, NULL, in_thread, NULL);
  pthread_join(t, NULL);
  draw("main 3 ");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    draw("child 1 ");
    draw("child 2 ");
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
  draw("main 4 ");
  fflush(stdout);
  execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
  return 1;
}
