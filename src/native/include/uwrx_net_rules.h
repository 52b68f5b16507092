/* Which connects uwrx-init must see (init/net.c), shared with the recorder, which makes
 * every other connect itself and records it as uwrx-init's trace would (recorder.c,
 * "connects"): one rule for both. */
#ifndef UWRX_NET_RULES_H
#define UWRX_NET_RULES_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Addresses the DNS actor hands out: 127.0.0.0/8 without its first and last /24 (`a` in
 * host order), and the private IPv6 prefix fd75:7772:7800::/48 ("uwrx"). */
static inline int uwrx_net_allocated_v4(uint32_t a) {
  return (a >> 24) == 127 && (a >> 8) != 0x7f0000 && (a >> 8) != 0x7fffff;
}

static inline int uwrx_net_allocated_v6(const uint8_t b[16]) {
  static const uint8_t prefix[6] = { 0xfd, 0x75, 0x77, 0x72, 0x78, 0x00 };
  return memcmp(b, prefix, sizeof prefix) == 0;
}

/* The sandbox's name server: 127.0.0.1:53, where the DNS actor's sockets are (`a` and
 * `port` in host order). */
static inline int uwrx_net_name_server_v4(uint32_t a, uint16_t port) { return a == INADDR_LOOPBACK && port == 53; }

static inline int uwrx_net_allocated(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) return uwrx_net_allocated_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
  if (sa->sa_family == AF_INET6) return uwrx_net_allocated_v6(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
  return 0;
}

static inline int uwrx_net_name_server(const struct sockaddr *sa) {
  if (sa->sa_family != AF_INET) return 0;
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  return uwrx_net_name_server_v4(ntohl(in->sin_addr.s_addr), ntohs(in->sin_port));
}

/* Whether a connect to `sa` (`len` bytes) is one uwrx-init answers for: the name server,
 * an address it handed out (also as an IPv4-mapped IPv6 address, which reaches IPv4
 * listeners), or an address of a family other than IPv4, IPv6 and Unix sockets, or too
 * short for its family. (Values, not a struct made here: a sockaddr_in read back through
 * a struct sockaddr pointer is an aliasing the compiler may drop.) */
static inline int uwrx_connect_for_init(const struct sockaddr *sa, size_t len) {
  if (len < sizeof(sa_family_t)) return 1;
  if (sa->sa_family == AF_UNIX) return 0;
  if (sa->sa_family == AF_INET) return len < sizeof(struct sockaddr_in) || uwrx_net_name_server(sa) || uwrx_net_allocated(sa);
  if (sa->sa_family != AF_INET6 || len < sizeof(struct sockaddr_in6)) return 1;
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
  if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return uwrx_net_allocated_v6(in6->sin6_addr.s6_addr);
  uint32_t a;
  memcpy(&a, &in6->sin6_addr.s6_addr[12], 4);
  a = ntohl(a);
  return uwrx_net_name_server_v4(a, ntohs(in6->sin6_port)) || uwrx_net_allocated_v4(a);
}

/* The address a connect's record holds, the same from uwrx-init's trace (init/trace.c)
 * and the recorder: IPv4's and IPv6's address bytes and port, a Unix socket's name (a
 * pathname ends at its NUL, an abstract one uses all bytes), the bytes after the family
 * for another family or an address too short for its own. `len`: the address's length,
 * at most sizeof(struct sockaddr_storage). */
static inline void uwrx_connect_address(const struct sockaddr *sa, size_t len, uint32_t *port, const void **bytes,
                                        size_t *n) {
  *port = 0;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    *port = ntohs(in->sin_port), *bytes = &in->sin_addr, *n = 4;
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    *port = ntohs(in6->sin6_port), *bytes = &in6->sin6_addr, *n = 16;
  } else if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    *bytes = un->sun_path;
    *n = len > off ? len - off : 0;
    if (*n && un->sun_path[0]) *n = strnlen(un->sun_path, *n);
  } else {
    *bytes = (const char *)sa + sizeof(sa_family_t);
    *n = len - sizeof(sa_family_t);
  }
}

#endif
