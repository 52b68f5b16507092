/* Network: the sockets the DNS and proxy actors serve the sandbox with.
 *
 * Node cannot enter the sandbox's network namespace (setns needs CAP_SYS_ADMIN in its
 * own user namespace), so pid 1 makes the sockets here and hands them over: each fd goes
 * on the dedicated SOCK_SEQPACKET socket (net_init) with its id, then a
 * MSG_NET_FD channel message says what it is. A connect to an allocated loopback address
 * (127.x.y.z outside 127.0.0.0/24 and 127.255.255.0/24) gets a listener on that address
 * and port before it continues: the kernel queues the connection in the listen backlog
 * until Node accepts it, so the connect never waits for Node. The connecting socket is
 * bound first (port 0) so its source port names the process in MSG_NET_CONNECT. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "init.h"
#include "uwrx_net_rules.h"
#include "uwrx_init_proto.h"


#define LISTEN_BACKLOG 1024

struct listener {
  struct sockaddr_storage addr;
  socklen_t len;
  struct listener *next;
};

static struct {
  int sock;               /* the network socket (net_init), -1 without network */
  pthread_mutex_t lock;   /* listeners; keeps each fd and its message in order */
  struct listener *listeners;
  uint32_t next_id;
} net = { .sock = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

void net_init(int fd) {
  net.sock = fd;
}

void net_close_in_parent(void) {
  if (net.sock >= 0) close(net.sock);
  net.sock = -1;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t size, unsigned *port) {
  out[0] = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)size);
    *port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)size);
    *port = ntohs(in6->sin6_port);
  }
}

/* Sends `fd` to Node (lock held) with a message naming it; false with errno. */
static bool send_fd(int fd, const char *kind, const struct sockaddr *sa) {
  uint32_t id = ++net.next_id;
  struct iovec iov = { .iov_base = &id, .iov_len = sizeof id };
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  while ((n = sendmsg(net.sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  if (n < 0) return false;
  char text[INET6_ADDRSTRLEN];
  unsigned port = 0;
  format_addr(sa, text, sizeof text, &port);
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 4);
  mp_write_cstr(&w, "id");
  mp_write_uint(&w, id);
  mp_write_cstr(&w, "kind");
  mp_write_cstr(&w, kind);
  mp_write_cstr(&w, "address");
  mp_write_cstr(&w, text);
  mp_write_cstr(&w, "port");
  mp_write_uint(&w, port);
  channel_send(MSG_NET_FD, &w);
  mp_writer_free(&w);
  return true;
}

static bool parse_addr(const char *text, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *len = sizeof *in;
    return true;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
    return true;
  }
  errno = EINVAL;
  return false;
}

/* A bound socket (listening when stream); -1 with errno. */
static int make_socket(const struct sockaddr *sa, socklen_t len, bool stream) {
  int fd = socket(sa->sa_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* addresses of the private IPv6 prefix are local by route, not assigned */
  if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
  if (bind(fd, sa, len) != 0 || (stream && listen(fd, LISTEN_BACKLOG) != 0)) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

int net_hand_over_socket(const char *kind, const char *address, unsigned port) {
  if (net.sock < 0) {
    errno = EBADF;
    return -1;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  if (!parse_addr(address, port, &ss, &len)) return -1;
  int fd = make_socket((struct sockaddr *)&ss, len, !strcmp(kind, "tcp"));
  if (fd < 0) return -1;
  pthread_mutex_lock(&net.lock);
  bool ok = send_fd(fd, kind, (struct sockaddr *)&ss);
  pthread_mutex_unlock(&net.lock);
  int err = errno;
  close(fd);
  errno = err;
  return ok ? 0 : -1;
}

/* Sends one rtnetlink request and reads its acknowledgement; 0, or -1 with errno. */
static int netlink_request(struct nlmsghdr *h) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  int rc = -1;
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) >= 0) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n >= (ssize_t)sizeof(struct nlmsghdr)) {
      struct nlmsghdr *r = (struct nlmsghdr *)buf;
      if (r->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(r);
        if (e->error == 0 || e->error == -EEXIST) rc = 0;
        else errno = -e->error;
      }
    }
  }
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

/* One rtnetlink request being built: a header, the payload, attributes. */
union nl_message {
  struct nlmsghdr h;
  char buf[256];
};

/* Starts a creating request of `type` with a zeroed payload of `payload` bytes. */
static void *nl_begin(union nl_message *m, unsigned short type, size_t payload) {
  memset(m, 0, sizeof *m);
  m->h.nlmsg_len = (unsigned)NLMSG_LENGTH(payload);
  m->h.nlmsg_type = type;
  m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  return NLMSG_DATA(&m->h);
}

static void add_attr(struct nlmsghdr *h, unsigned short type, const void *data, size_t len) {
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int add_address(const char *text, unsigned prefix) {
  union nl_message m;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!parse_addr(text, 0, &ss, &len)) return -1;
  bool v6 = ss.ss_family == AF_INET6;
  const void *bytes = v6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
  size_t blen = v6 ? 16 : 4;
  struct ifaddrmsg *ifa = nl_begin(&m, RTM_NEWADDR, sizeof *ifa);
  ifa->ifa_family = (unsigned char)ss.ss_family;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_flags = v6 ? IFA_F_NODAD : 0;
  ifa->ifa_scope = RT_SCOPE_HOST;
  ifa->ifa_index = if_nametoindex("lo");
  add_attr(&m.h, IFA_LOCAL, bytes, blen);
  add_attr(&m.h, IFA_ADDRESS, bytes, blen);
  return netlink_request(&m.h);
}

static int add_local_route(const char *text, unsigned prefix) {
  union nl_message m;
  struct sockaddr_storage ss;
  socklen_t len;
  if (!parse_addr(text, 0, &ss, &len) || ss.ss_family != AF_INET6) {
    errno = EINVAL;
    return -1;
  }
  struct rtmsg *rt = nl_begin(&m, RTM_NEWROUTE, sizeof *rt);
  rt->rtm_family = AF_INET6;
  rt->rtm_dst_len = (unsigned char)prefix;
  rt->rtm_table = RT_TABLE_LOCAL;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_HOST;
  rt->rtm_type = RTN_LOCAL;
  int ifindex = (int)if_nametoindex("lo");
  add_attr(&m.h, RTA_DST, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
  add_attr(&m.h, RTA_OIF, &ifindex, sizeof ifindex);
  return netlink_request(&m.h);
}

/* An address on lo, or with `local_route` a local route for the whole prefix (any
 * address of it is then bindable). */
int net_add_address(const char *address, unsigned prefix, bool local_route) {
  return local_route ? add_local_route(address, prefix) : add_address(address, prefix);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (a->ss_family != b->sa_family) return false;
  if (b->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
  return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* A listener for `sa` exists (made now if needed). Errors leave the connect to fail
 * with ECONNREFUSED by itself. */
static void ensure_listener(const struct sockaddr *sa, socklen_t len) {
  pthread_mutex_lock(&net.lock);
  for (struct listener *l = net.listeners; l; l = l->next)
    if (same_addr(&l->addr, sa)) {
      pthread_mutex_unlock(&net.lock);
      return;
    }
  int fd = make_socket(sa, len, true);
  if (fd >= 0 && send_fd(fd, "listen", sa)) {
    struct listener *l = calloc(1, sizeof *l);
    if (l) {
      memcpy(&l->addr, sa, len);
      l->len = len;
      l->next = net.listeners;
      net.listeners = l;
    }
  }
  if (fd >= 0) close(fd);
  pthread_mutex_unlock(&net.lock);
}

/* An IPv4 address in IPv6 form (::ffff:a.b.c.d), which a dual-stack IPv6 socket (the
 * JVM's, for one) connects to for an IPv4 address: rewritten in `ss` as that IPv4
 * address. The connection itself reaches IPv4 listeners as IPv4. */
static bool unmap_ipv4(struct sockaddr_storage *ss) {
  if (ss->ss_family != AF_INET6) return false;
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
  if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return false;
  struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = in6->sin6_port };
  memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
  memset(ss, 0, sizeof *ss);
  memcpy(ss, &in, sizeof in);
  return true;
}

/* Binds the target's socket to an ephemeral port (unless bound) and reports which
 * process owns that port, so the proxy (or, for the name server, the DNS actor) can put
 * the exchange on its track. `mapped`: the target's socket is IPv6, `sa` the IPv4
 * address it named in IPv6 form. */
static void report_connect(struct notif_ctx *ctx, const struct sockaddr *sa, bool mapped) {
  struct proc *p = ctx->proc;
  if (!p || p->pidfd < 0) return;
  int fd = proc_getfd(p->pidfd, (int)(ctx->req->data.args[0] & 0xffffffffu));
  if (fd < 0) return;
  int type = 0;
  socklen_t tlen = sizeof type;
  struct sockaddr_storage local;
  socklen_t llen = sizeof local;
  bool dns = uwrx_net_name_server(sa);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || !(type == SOCK_STREAM || (dns && type == SOCK_DGRAM)) ||
      getsockname(fd, (struct sockaddr *)&local, &llen) != 0 || local.ss_family != (mapped ? AF_INET6 : sa->sa_family)) {
    close(fd);
    return;
  }
  unsigned port = 0;
  char text[INET6_ADDRSTRLEN];
  format_addr((struct sockaddr *)&local, text, sizeof text, &port);
  if (port == 0) {
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = local.ss_family;
    socklen_t alen = local.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    llen = sizeof local;
    if (bind(fd, (struct sockaddr *)&any, alen) == 0 && getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
      format_addr((struct sockaddr *)&local, text, sizeof text, &port);
  }
  close(fd);
  if (port == 0 || !notif_id_valid(ctx->req->id)) return;
  char target[INET6_ADDRSTRLEN];
  unsigned target_port = 0;
  format_addr(sa, target, sizeof target, &target_port);
  struct mp_writer w;
  mp_writer_init(&w);
  mp_write_map(&w, 6);
  mp_write_cstr(&w, "kind");
  mp_write_cstr(&w, type == SOCK_DGRAM ? "udp" : "tcp");
  mp_write_cstr(&w, "pid");
  mp_write_int(&w, p->logical);
  mp_write_cstr(&w, "address");
  mp_write_cstr(&w, target);
  mp_write_cstr(&w, "port");
  mp_write_uint(&w, target_port);
  mp_write_cstr(&w, "sourcePort");
  mp_write_uint(&w, port);
  mp_write_cstr(&w, "time");
  mp_write_uint(&w, ctx->time);
  channel_send(MSG_NET_CONNECT, &w);
  mp_writer_free(&w);
}

/* connect(fd, addr, addrlen): the call continues in the kernel, which queues the
 * connection on the listener made here. */
static enum verdict on_connect(struct notif_ctx *ctx) {
  const struct seccomp_notif *req = ctx->req;
  struct sockaddr_storage sa;
  size_t len = (size_t)(req->data.args[2] & 0xffffffffu);
  if (len > sizeof sa) len = sizeof sa;
  if (len < sizeof(struct sockaddr_in)) return VERDICT_CONTINUE;
  memset(&sa, 0, sizeof sa);
  struct iovec local = { &sa, len };
  struct iovec remote = { (void *)(uintptr_t)req->data.args[1], len };
  if (process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len) return VERDICT_CONTINUE;
  if (sa.ss_family == AF_INET6 && len < sizeof(struct sockaddr_in6)) return VERDICT_CONTINUE;
  bool mapped = unmap_ipv4(&sa);
  if (uwrx_net_name_server((struct sockaddr *)&sa)) {
    report_connect(ctx, (struct sockaddr *)&sa, mapped);
    return VERDICT_CONTINUE;
  }
  if (!uwrx_net_allocated((struct sockaddr *)&sa)) return VERDICT_CONTINUE;
  socklen_t alen = sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  ensure_listener((struct sockaddr *)&sa, alen);
  report_connect(ctx, (struct sockaddr *)&sa, mapped);
  return VERDICT_CONTINUE;
}

static bool network_enabled(const struct plan *plan) {
  (void)plan;
  return net.sock >= 0;
}

static const struct subscription network_calls[] = {
  { SYS_connect, on_connect, NULL, NULL },
};

const struct feature feature_network = {
  .name = "network",
  .enabled = network_enabled,
  .subs = SUBSCRIPTIONS(network_calls),
};
