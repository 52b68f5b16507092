/* A stand-in for uwrx-init's control-syscall handler, to test the shim alone:
 *   control_stub <at_random hex 32> <decision> <program> [args...]
 * runs the program under a seccomp filter that sends only UWRX_SYS_CONTROL to us, and
 * answers UWRX_CTL_EXEC_START by writing the given AT_RANDOM bytes into the target and
 * returning <decision> (0 = run, 0x100|status = skip); after a skip,
 * UWRX_CTL_SKIP_OUTPUT replays "recorded stdout\n" on fd 1 and "recorded stderr\n" on
 * fd 2. Exits with the program's exit status. Prints each control call on stderr as
 * "control: op=N". */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uwrx_control.h"

static int install_filter(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UWRX_SYS_CONTROL, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

static void send_fd(int sock, int fd) {
  char data = 0, cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, 0) != 1) _exit(126);
}

static int recv_fd(int sock) {
  char data, cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(sock, &msg, 0) != 1) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
  return fd;
}

static int write_target(pid_t pid, unsigned long addr, const void *buf, size_t n) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = pwrite(fd, buf, n, (off_t)addr);
  close(fd);
  return w == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv) {
  unsigned char random[16];
  if (argc < 4 || strlen(argv[1]) != 32) {
    fprintf(stderr, "usage: control_stub <at_random hex 32> <decision> <program> [args...]\n");
    return 2;
  }
  for (int i = 0; i < 16; i++) sscanf(argv[1] + 2 * i, "%2hhx", &random[i]);
  long decision = strtol(argv[2], NULL, 0);

  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) return perror("socketpair"), 2;
  pid_t child = fork();
  if (child == 0) {
    int listener = install_filter();
    if (listener < 0) _exit(125);
    send_fd(sp[1], listener);
    close(listener);
    execvp(argv[3], argv + 3);
    _exit(127);
  }
  close(sp[1]);
  int listener = recv_fd(sp[0]);
  if (listener < 0) return fprintf(stderr, "control_stub: no listener\n"), 2;

  const char *outputs[] = {"recorded stdout\n", "recorded stderr\n"};
  int next_output = 0;
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  for (;;) {
    struct pollfd p = {.fd = listener, .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
    if (!(p.revents & POLLIN)) break; /* POLLHUP: the program is gone */
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req)) continue;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    const __u64 *a = req.data.args;
    fprintf(stderr, "control: op=%llu\n", (unsigned long long)a[0]);
    if (a[5] != UWRX_CONTROL_MAGIC) {
      resp.error = -ENOSYS;
    } else if (a[0] == UWRX_CTL_HELLO) {
      resp.val = UWRX_CONTROL_VERSION;
    } else if (a[0] == UWRX_CTL_EXEC_START) {
      if (a[1] && a[2] == 16 && write_target(req.pid, a[1], random, 16)) resp.error = -EFAULT;
      else resp.val = decision;
    } else if (a[0] == UWRX_CTL_SKIP_OUTPUT) {
      if (next_output < 2) {
        const char *s = outputs[next_output];
        size_t n = strlen(s);
        if (n <= a[2] && write_target(req.pid, a[1], s, n) == 0) resp.val = (long long)(((__u64)(next_output + 1) << 32) | n);
        next_output++;
      }
    } else {
      resp.error = -ENOSYS;
    }
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
  int status;
  if (waitpid(child, &status, 0) < 0) return 2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
