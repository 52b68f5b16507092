/* Calls interrupted by signals, the way build tools see them.
 *   eintr_probe forks N   N fork+wait pairs under a SIGCHLD handler without SA_RESTART:
 *                         natively fork never fails with EINTR (it restarts)
 *   eintr_probe calls N   N rounds of open, stat, write(1), access under a SIGALRM
 *                         every 50 us, handler without SA_RESTART: counts EINTR of each
 * Results go to stderr as key=value words. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t signals;
static void on_signal(int sig) {
  (void)sig;
  signals++;
}

static void handle(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART */
  sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: eintr_probe forks|calls N\n");
    return 2;
  }
  long n = atol(argv[2]);
  if (!strcmp(argv[1], "forks")) {
    handle(SIGCHLD);
    long failed = 0;
    int first = 0;
    for (long i = 0; i < n; i++) {
      pid_t pid = fork();
      if (pid == 0) _exit(0);
      if (pid < 0) {
        if (!failed++) first = errno;
        continue;
      }
      /* waitpid may give EINTR natively too: that is not what is measured */
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, NULL); /* nothing may interrupt the report */
    fprintf(stderr, "forks=%ld failed=%ld errno=%d\n", n, failed, first);
    return 0;
  }
  if (!strcmp(argv[1], "calls")) {
    handle(SIGALRM);
    char path[] = "/tmp/eintr-probe-XXXXXX";
    int keep = mkstemp(path);
    if (keep < 0) {
      perror("eintr_probe: mkstemp");
      return 1;
    }
    close(keep);
    struct itimerval it = { { 0, 50 }, { 0, 50 } };
    setitimer(ITIMER_REAL, &it, NULL);
    long e_open = 0, e_stat = 0, e_write = 0, e_access = 0, other = 0;
    for (long i = 0; i < n; i++) {
      int fd = open(path, O_WRONLY);
      if (fd >= 0) close(fd);
      else if (errno == EINTR) e_open++;
      else other++;
      struct stat st;
      if (stat(path, &st) != 0) {
        if (errno == EINTR) e_stat++;
        else other++;
      }
      if (write(1, "", 0) < 0) {
        if (errno == EINTR) e_write++;
        else other++;
      }
      if (access(path, R_OK) != 0) {
        if (errno == EINTR) e_access++;
        else other++;
      }
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    /* a signal still pending must not interrupt the report (its write(2) is notified) */
    sigset_t alarm;
    sigemptyset(&alarm);
    sigaddset(&alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alarm, NULL);
    unlink(path);
    fprintf(stderr, "rounds=%ld signals=%ld open=%ld stat=%ld write=%ld access=%ld other=%ld\n", n, (long)signals,
            e_open, e_stat, e_write, e_access, other);
    return 0;
  }
  return 2;
}
