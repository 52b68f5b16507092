/* Processes and threads the in-process recorder must keep answering for (src/native/
 * recorder/recorder.c). Prints clock values so that runs can be compared.
 *   fork_kinds raw       a child made by a raw fork system call (no atfork handler ran,
 *                        as Chromium's zygote forks): its clock reads and stats
 *   fork_kinds helper    a fork that makes a call and execs /bin/true, then this program
 *                        again by the same path (`reader`), which reads the clock
 *   fork_kinds reader    1000 clock reads
 *   fork_kinds waiters N N threads idling in timed waits while the main thread reads
 *                        the clock 20,000 times (prints nothing that depends on time) */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long reads(int n) {
  long long a = mono(), b = a;
  for (int i = 0; i < n; i++) b = mono();
  return b - a;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stop;

static void *waiter(void *arg) {
  pthread_mutex_lock(&lock);
  while (!stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&cond, &lock, &ts);
  }
  pthread_mutex_unlock(&lock);
  return arg;
}

static void wait_child(pid_t pid) {
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) exit(4);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (!strcmp(argv[1], "reader")) {
    printf("reader %lld\n", reads(1000));
    return 0;
  }
  if (!strcmp(argv[1], "raw")) {
    long long a = mono();
    struct stat st;
    stat("/etc/passwd", &st);
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
      long long b = mono();
      long long r = reads(1000);
      for (int i = 0; i < 100; i++) stat("/etc/hostname", &st);
      printf("child %lld %lld\n", b - a, r);
      fflush(stdout);
      _exit(0);
    }
    wait_child(pid);
    printf("parent %lld\n", mono() - a);
    return 0;
  }
  if (!strcmp(argv[1], "helper")) {
    pid_t pid = fork();
    if (pid == 0) {
      /* a call of its own before the exec, as a browser's child closing its descriptors */
      struct stat st;
      stat("/", &st);
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    wait_child(pid);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
      execl(argv[0], argv[0], "reader", (char *)NULL);
      _exit(127);
    }
    wait_child(pid);
    return 0;
  }
  if (!strcmp(argv[1], "waiters") && argc > 2) {
    int n = atoi(argv[2]);
    pthread_t t[64];
    if (n > 64) n = 64;
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, waiter, NULL);
    usleep(50000); /* all of them waiting */
    reads(20000);
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    printf("waiters %d\n", n);
    return 0;
  }
  return 2;
}
