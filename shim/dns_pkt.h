/* DNS packets a program sends itself (shim/dns_pkt.c for UDP, shim/dns_tcp.c
 * for TCP): under remote DNS, queries to port 53 of a destination that would
 * go direct (sfy_dns_intercepted) are answered inside the process, on the
 * program's own socket, with the nameserver as the source.  No query
 * leaves, except one sfy_dns_respond() gives back to the real resolver (a
 * direct_domain name), which UDP sends on as the program did.
 *
 * UDP: the program's socket stays a real UDP socket (real readiness for
 * poll, epoll, select, io_uring).  connect() only records the nameserver
 * (a "virtual peer"); an answer is sent for real to the socket's own
 * address from an internal "injector" socket, and the recv hooks show it
 * as coming from the nameserver, and drop what else arrives on a virtually
 * connected socket (the kernel would have filtered it).
 * TCP: the program's socket is really connected to a loopback listener
 * made for it; the accepted end is ours, and each write of the program is
 * answered there, framed as DNS over TCP is.  Private to the library. */
#ifndef SFY_DNS_PKT_H
#define SFY_DNS_PKT_H

#include <sys/socket.h>
#include <sys/types.h>

enum { SFY_DNSP_NONE, SFY_DNSP_UDP_CONN, SFY_DNSP_UDP_OPEN, SFY_DNSP_TCP };

/* Set at the first fd this answering takes over: while 0, the I/O hooks
 * skip it with this one load. */
extern int sfy_dnsp_used;
static inline int sfy_dnsp_any(void)
{
	return __atomic_load_n(&sfy_dnsp_used, __ATOMIC_RELAXED) != 0;
}
/* What fd is to the answering (SFY_DNSP_*), without asking the kernel. */
int sfy_dnsp_kind(int fd);
void sfy_dnsp_mark(int fd, int kind);

/* connect() of UDP socket fd to nameserver ns: recorded, not made.  0, or
 * -1 with errno. */
int sfy_dnsp_udp_connect(int fd, const struct sockaddr *ns, socklen_t len);
/* A datagram the program sends on UDP socket fd to ns (NULL: fd's virtual
 * peer): answered.  Returns what the send call returns. */
ssize_t sfy_dnsp_udp_send(int fd, const struct msghdr *msg, int flags, const struct sockaddr *ns, socklen_t len);
/* recvmsg() on a UDP fd of ours: the answers' source rewritten, strangers
 * of a virtually connected socket dropped. */
ssize_t sfy_dnsp_recvmsg(int fd, struct msghdr *msg, int flags);
/* The same for buffer-style receives (recv, recvfrom, read). */
ssize_t sfy_dnsp_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len);

/* connect() of TCP socket fd to nameserver ns.  Returns what connect()
 * returns (0, or -1 with EINPROGRESS or another errno). */
int sfy_dnsp_tcp_connect(int fd, const struct sockaddr *ns, socklen_t len);
/* The program wrote n bytes on TCP fd of ours: answer what is complete. */
void sfy_dnsp_tcp_sent(int fd, ssize_t n);
void sfy_dnsp_tcp_closed(int fd);

/* The program closed fd (close, dup2 over it): its state goes, in the
 * process that made it (never in a vfork() child sharing our memory). */
void sfy_dnsp_closed(int fd);
void sfy_dnsp_closed_range(unsigned first, unsigned last);
/* fd is a new socket, or was connected elsewhere: forget it. */
void sfy_dnsp_forget(int fd);

#endif
