/* connect() and the datagram senders: route, then proxy, pass or refuse. */
#include "shim.h"
#include "async.h"
#include "dns_pkt.h"
#include "udp_assoc.h"

#include <errno.h>
#include <netinet/in.h>

#include "sfy_fdtable.h"
#include "sfy_gss.h"
#include "sfy_log.h"

/* 1 for TCP-like stream sockets we can proxy, 0 for other INET sockets,
 * -1 when fd is not a socket (pass through untouched).  The kernel reports
 * the real protocol even when the program passed 0, so one call is enough. */
int sfy_socket_kind(int fd)
{
	int proto = 0, saved = errno;
	socklen_t plen = sizeof proto;
	int ok = REAL(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0;
	errno = saved;
	if (!ok)
		return -1;
	return proto == IPPROTO_TCP || proto == IPPROTO_MPTCP;
}

int sfy_inet_addr_ok(const struct sockaddr *sa, socklen_t len)
{
	if (!sa)
		return 0;
	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
		return 1;
	return len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6;
}

/* A UDP socket (not ICMP, not raw): what UDP ASSOCIATE can carry. */
static int is_udp_proto(int fd)
{
	int proto = 0, type = 0, saved = errno;
	socklen_t plen = sizeof proto, tlen = sizeof type;
	int ok = REAL(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0 &&
		 REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_DGRAM &&
		 proto == IPPROTO_UDP;
	errno = saved;
	return ok;
}

/* A datagram socket (SO_TYPE), as the DNS answering needs. */
static int is_udp(int fd)
{
	int type = 0, saved = errno;
	socklen_t tlen = sizeof type;
	int ok = REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_DGRAM;
	errno = saved;
	return ok;
}

/* 0: go ahead with the real call; 1: DNS we answer; 2: through the UDP
 * association, to *dst; -1: refused, errno set. */
static int datagram_check(int fd, const struct sockaddr *sa, socklen_t len, const char *call, struct s5_addr *dst)
{
	int err = 0;
	if (!sfy_inet_addr_ok(sa, len) || sfy_socket_kind(fd) != 0)
		return 0;
	enum sfy_route r = sfy_route_for(sa, 0, dst, &err);
	if (r == SFY_ROUTE_DNS)
		return is_udp(fd);
	if (r == SFY_ROUTE_PROXY && is_udp_proto(fd))
		return 2;
	if (r == SFY_ROUTE_DIRECT)
		return 0;
	if (r == SFY_ROUTE_PROXY)
		err = EPERM; /* a datagram socket that is no UDP (ICMP): nothing to relay it */
	sfy_log(SFY_LOG_WARN, "%s on fd %d refused: %s", call, fd,
		err == EHOSTUNREACH ? "fake address no longer mapped to a name"
				    : "non-TCP traffic to a non-direct address (udp = block, or not UDP)");
	errno = err;
	return -1;
}

/* The DNS answering's and the UDP policy's part of a send of m on fd: 1
 * and *rc when the send was answered or refused here, 0 when the real
 * call goes ahead. */
static int send_check(int fd, const struct msghdr *m, int flags, const char *call, ssize_t *rc)
{
	if (!m->msg_name || !m->msg_namelen) {
		if (sfy_udpa_any() && sfy_udpa_kind(fd) == 2) {
			*rc = sfy_udpa_send(fd, m, flags, NULL);
			return 1;
		}
		if (sfy_dnsp_kind(fd) != SFY_DNSP_UDP_CONN)
			return 0;
		*rc = sfy_dnsp_udp_send(fd, m, flags, NULL, 0);
		return 1;
	}
	struct s5_addr dst;
	int r = datagram_check(fd, m->msg_name, m->msg_namelen, call, &dst);
	if (r == 0)
		return 0;
	if (r == 2)
		*rc = sfy_udpa_send(fd, m, flags, &dst);
	else
		*rc = r < 0 ? -1 : sfy_dnsp_udp_send(fd, m, flags, m->msg_name, m->msg_namelen);
	return 1;
}

/* After a real send: DNS over TCP to a nameserver we answer for. */
static ssize_t sent(int fd, ssize_t rc)
{
	if (rc > 0 && sfy_dnsp_kind(fd) == SFY_DNSP_TCP)
		sfy_dnsp_tcp_sent(fd, rc);
	return rc;
}

int sfy_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (sfy_gss_native) /* libkrb5 reaching its KDC inside our GSSAPI exchange */
		return REAL(connect)(fd, addr, len);
	sfy_init();
	int rc;
	if (sfy_async_any() && sfy_async_connect_again(fd, &rc))
		return rc; /* EALREADY while the handshake runs, its error once */
	if (!sfy_inet_addr_ok(addr, len)) {
		if (addr && len >= sizeof addr->sa_family && addr->sa_family == AF_UNSPEC && sfy_dnsp_kind(fd)) {
			sfy_dnsp_forget(fd); /* UDP "disconnect": no longer a nameserver of ours */
			sfy_fd_clear(fd);
		}
		if (addr && len >= sizeof addr->sa_family && addr->sa_family == AF_UNSPEC && sfy_udpa_any() &&
		    sfy_udpa_kind(fd) == 2) {
			sfy_udpa_disconnect(fd); /* keeps the association, forgets the peer */
			sfy_fd_clear(fd);
		}
		return REAL(connect)(fd, addr, len);
	}
	/* Connected through the proxy already.  The kernel may not say so: a
	 * socket whose non-blocking connect() the event driver saw through
	 * with poll() still counts as connecting, and its next connect()
	 * returns 0. */
	struct sfy_fdinfo info;
	if (!(sfy_sock_facts(fd) & SFY_SOCK_FRESH) && sfy_fd_get(fd, &info) &&
	    (info.kind == SFY_FD_CONNECTED || info.kind == SFY_FD_DNS_TCP)) {
		errno = EISCONN;
		return -1;
	}
	sfy_sock_facts_change(fd, 0, SFY_SOCK_FRESH);
	/* A TCP socket socket() made needs no question to the kernel.  Were
	 * the fact stale (the number reused behind our back), the proxy would
	 * get a connection attempt that fails: never a direct one. */
	int kind = (sfy_sock_facts(fd) & SFY_SOCK_TCP) ? 1 : sfy_socket_kind(fd);
	if (kind < 0)
		return REAL(connect)(fd, addr, len);
	struct s5_addr dst;
	int err = 0;
	switch (sfy_route_for(addr, kind == 1, &dst, &err)) {
	case SFY_ROUTE_DIRECT:
		sfy_fd_clear(fd); /* no longer (if ever) a proxied connection */
		sfy_dnsp_forget(fd);
		sfy_udpa_disconnect(fd);
		return REAL(connect)(fd, addr, len);
	case SFY_ROUTE_DNS:
		sfy_udpa_disconnect(fd);
		if (kind == 1)
			return sfy_dnsp_tcp_connect(fd, addr, len);
		if (is_udp(fd))
			return sfy_dnsp_udp_connect(fd, addr, len);
		sfy_fd_clear(fd);
		return REAL(connect)(fd, addr, len);
	case SFY_ROUTE_REFUSE:
		sfy_log(SFY_LOG_WARN, "connect on fd %d refused: %s", fd,
			err == EHOSTUNREACH ? "fake address no longer mapped to a name" : "non-TCP traffic to a non-direct address (udp = block)");
		errno = err;
		return -1;
	case SFY_ROUTE_PROXY:
		break;
	}
	if (kind == 0 && is_udp_proto(fd)) {
		sfy_dnsp_forget(fd);
		return sfy_udpa_connect(fd, addr, len, &dst); /* a virtual peer behind UDP ASSOCIATE */
	}
	if (kind == 0) {
		sfy_log(SFY_LOG_WARN, "connect on fd %d refused: a datagram socket that is not UDP", fd);
		errno = EPERM;
		return -1;
	}
	return sfy_proxy_connect(fd, addr, len, &dst);
}

SFY_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return sfy_connect(fd, addr, len);
}

/* TCP Fast Open sends data with the connect: connect through our connect()
 * first (a second sendto() on a connected socket is fine), then send. */
static int fastopen_connect(int fd, int flags, const struct sockaddr *to, socklen_t len)
{
	if (!(flags & MSG_FASTOPEN) || !sfy_inet_addr_ok(to, len) || sfy_socket_kind(fd) != 1)
		return 0;
	return sfy_connect(fd, to, len) < 0 && errno != EISCONN ? -1 : 1;
}

ssize_t sfy_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len)
{
	if (sfy_gss_native)
		return REAL(sendto)(fd, buf, n, flags, to, len);
	sfy_init();
	if (sfy_async_any() && sfy_async_io_check(fd) < 0)
		return -1;
	int tfo = fastopen_connect(fd, flags, to, len);
	if (tfo)
		return tfo < 0 ? -1 : sent(fd, REAL(send)(fd, buf, n, flags & ~MSG_FASTOPEN));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	struct msghdr m = {.msg_name = (void *)to, .msg_namelen = to ? len : 0, .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t rc;
	if (send_check(fd, &m, flags, "sendto", &rc))
		return rc;
	return sent(fd, REAL(sendto)(fd, buf, n, flags, to, len));
}

SFY_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len)
{
	return sfy_sendto(fd, buf, n, flags, to, len);
}

ssize_t sfy_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (sfy_gss_native)
		return REAL(sendmsg)(fd, msg, flags);
	sfy_init();
	if (sfy_async_any() && sfy_async_io_check(fd) < 0)
		return -1;
	const struct sockaddr *to = msg ? msg->msg_name : NULL;
	socklen_t len = msg ? msg->msg_namelen : 0;
	int tfo = fastopen_connect(fd, flags, to, len);
	if (tfo < 0)
		return -1;
	if (tfo) {
		struct msghdr copy = *msg;
		copy.msg_name = NULL;
		copy.msg_namelen = 0;
		return sent(fd, REAL(sendmsg)(fd, &copy, flags & ~MSG_FASTOPEN));
	}
	ssize_t rc;
	if (msg && send_check(fd, msg, flags, "sendmsg", &rc))
		return rc;
	return sent(fd, REAL(sendmsg)(fd, msg, flags));
}

SFY_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return sfy_sendmsg(fd, msg, flags);
}

/* Also syscall(SYS_sendmmsg): libuv (bind9's dig, host, nslookup; node)
 * sends that way. */
int sfy_sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
	if (sfy_gss_native)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	sfy_init();
	int dns = sfy_dnsp_kind(fd) != SFY_DNSP_NONE || (sfy_udpa_any() && sfy_udpa_kind(fd) == 2);
	for (unsigned i = 0; vec && i < vlen; i++) {
		struct s5_addr dst;
		int r = datagram_check(fd, vec[i].msg_hdr.msg_name, vec[i].msg_hdr.msg_namelen, "sendmmsg", &dst);
		if (r < 0)
			return -1;
		dns |= r;
	}
	if (!dns || !vec)
		return REAL(sendmmsg)(fd, vec, vlen, flags);
	/* One at a time: some of them are answered or relayed here. */
	for (unsigned i = 0; i < vlen; i++) {
		ssize_t rc;
		if (!send_check(fd, &vec[i].msg_hdr, flags, "sendmmsg", &rc))
			rc = sent(fd, REAL(sendmsg)(fd, &vec[i].msg_hdr, flags));
		if (rc < 0)
			return i ? (int)i : -1;
		vec[i].msg_len = (unsigned)rc;
	}
	return (int)vlen;
}

SFY_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
	return sfy_sendmmsg(fd, vec, vlen, flags);
}
