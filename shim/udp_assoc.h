/* UDP through the proxy (RFC 1928 section 7) on the program's own UDP
 * socket (shim/udp_assoc.c).  The first datagram to a proxied destination
 * opens a control TCP connection of the library's (internal_fd.h) and asks
 * for UDP ASSOCIATE; datagrams then go to the relay with the RFC header in
 * front, and the receive hooks strip it and show the real source.  The
 * socket stays a real UDP socket (real readiness for poll/epoll/select).
 * connect() to a proxied destination only records a virtual peer.  One
 * association per socket serves every destination; it ends with close(),
 * and a fork child shares it (the control fd is inherited).  Private. */
#ifndef SFY_UDP_ASSOC_H
#define SFY_UDP_ASSOC_H

#include <sys/socket.h>
#include <sys/types.h>

#include "socks5_codec.h"

/* Set at the first socket this module takes: while 0 the hooks skip it. */
extern int sfy_udpa_used;
static inline int sfy_udpa_any(void)
{
	return __atomic_load_n(&sfy_udpa_used, __ATOMIC_RELAXED) != 0;
}
/* 0: not ours; 1: ours (receives are filtered); 2: also virtually
 * connected (sends without an address go to the peer). */
int sfy_udpa_kind(int fd);

/* connect() of UDP socket fd to peer (app's address), proxied as dst:
 * recorded, not made.  0, or -1 with errno. */
int sfy_udpa_connect(int fd, const struct sockaddr *peer, socklen_t len, const struct s5_addr *dst);
/* fd was connected elsewhere or "disconnected" (AF_UNSPEC): no virtual peer. */
void sfy_udpa_disconnect(int fd);
/* A datagram of msg for dst (NULL: the virtual peer) through fd's
 * association, made at need.  Returns what the send call returns. */
ssize_t sfy_udpa_send(int fd, const struct msghdr *msg, int flags, const struct s5_addr *dst);
/* recvmsg()/recvfrom() on a socket of ours: relay datagrams unwrapped,
 * strangers and fragments dropped. */
ssize_t sfy_udpa_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t sfy_udpa_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len);
/* The program closed fd: its association goes (in this process). */
void sfy_udpa_closed(int fd);
void sfy_udpa_closed_range(unsigned first, unsigned last);

#endif
