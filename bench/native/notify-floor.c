/* The floor of one seccomp-notified syscall answered CONTINUE on this machine.
 *
 * A child installs a filter that notifies only write to fd 1 (x86_64; the fd checked by
 * the filter, as uwrx's does), hands the listener fd to the parent over SCM_RIGHTS and
 * calls write(1, "", 0) N times;
 * the parent answers every notification with SECCOMP_USER_NOTIF_FLAG_CONTINUE and does
 * nothing else. Prints the child's mean ns per call.
 *
 * usage: notify-floor <iterations> default|sync
 *   sync: SECCOMP_IOCTL_NOTIF_SET_FLAGS(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP), kernel 6.6+ */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

static void die(const char *what)
{
    fprintf(stderr, "notify-floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int install_filter(void)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /* any other call: past the fd test, to ALLOW */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("PR_SET_NO_NEW_PRIVS");
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0)
        die("seccomp(SET_MODE_FILTER, NEW_LISTENER)");
    return fd;
}

static void send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    if (sendmsg(sock, &msg, 0) != 1)
        die("sendmsg listener fd");
}

static int recv_fd(int sock)
{
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
    if (recvmsg(sock, &msg, 0) != 1)
        die("recvmsg listener fd");
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == NULL || cmsg->cmsg_type != SCM_RIGHTS)
        die("no listener fd received");
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

/* The child: filter, hand over the listener, wait for the go, then the timed loop. */
static void run_target(int sock, long warmup, long n)
{
    /* the result goes out through a copy of stdout: writes to fd 1 itself are notified,
     * and the parent answers only the timed loop's */
    int out = dup(1);
    if (out < 0)
        die("dup stdout");
    int listener = install_filter();
    send_fd(sock, listener);
    close(listener);
    char go;
    if (read(sock, &go, 1) != 1)
        die("read go");
    for (long i = 0; i < warmup; i++)
        syscall(SYS_write, 1, "", 0);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        if (syscall(SYS_write, 1, "", 0) != 0)
            die("write");
    }
    long long elapsed = now_ns() - start;
    dprintf(out, "%.1f\n", (double)elapsed / (double)n);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "sync") != 0 && strcmp(argv[2], "default") != 0)) {
        fprintf(stderr, "usage: notify-floor <iterations> default|sync\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    if (n <= 0) {
        fprintf(stderr, "notify-floor: iteration count must be positive\n");
        return 2;
    }
    long warmup = n / 10 + 1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(sv[0]);
        run_target(sv[1], warmup, n);
    }
    close(sv[1]);
    int listener = recv_fd(sv[0]);
    if (strcmp(argv[2], "sync") == 0) {
        __u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) != 0)
            die("SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP)");
    }
    /* A stuck child must not hang the benchmark: RECV waits forever without a target. */
    alarm(120);
    if (write(sv[0], "g", 1) != 1)
        die("write go");

    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (long i = 0; i < warmup + n; i++) {
        memset(&req, 0, sizeof(req));
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
            if (errno == EINTR)
                continue;
            die("SECCOMP_IOCTL_NOTIF_RECV");
        }
        memset(&resp, 0, sizeof(resp));
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        /* ENOENT: the call was interrupted and will come again as a new notification. */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT)
            die("SECCOMP_IOCTL_NOTIF_SEND");
    }
    int status;
    if (waitpid(child, &status, 0) != child)
        die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
