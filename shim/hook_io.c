/* The read/write family and getsockopt(SO_ERROR) on a handshaking fd: the
 * program's bytes never mix with the handshake's.  While it runs, reads and
 * writes fail with EAGAIN, as on a socket whose connect() is under way, and
 * step the handshake; once it failed they report its error; once it is
 * done they are libc's.  While no handshake is under way, each is one load
 * and libc's own call.  They also carry the DNS answering of dns_pkt.h (one
 * more load while no socket of the program was ever answered), and UDP
 * through the proxy (udp_assoc.h; one more load while no socket of the
 * program was ever associated). */
#include "async.h"
#include "dns_pkt.h"
#include "relay.h"
#include "udp_assoc.h"

#include <errno.h>

#define GUARD(fd)                                                                                                      \
	do {                                                                                                           \
		if (__builtin_expect(sfy_async_any(), 0) && sfy_async_io_check(fd) < 0)                                \
			return -1;                                                                                     \
	} while (0)

/* DNS answered in the process (dns_pkt.h): the receives of a UDP socket
 * of ours go through its filter, the writes of a "connected" one are
 * queries, those of a TCP one are answered after they are made. */
static inline int dns_kind(int fd)
{
	return __builtin_expect(sfy_dnsp_any(), 0) ? sfy_dnsp_kind(fd) : SFY_DNSP_NONE;
}
#define DNS_RECV(fd) (dns_kind(fd) == SFY_DNSP_UDP_CONN || dns_kind(fd) == SFY_DNSP_UDP_OPEN)

/* A UDP socket of the association's (udp_assoc.h): 1 ours, 2 also with a
 * virtual peer. */
static inline int udp_kind(int fd)
{
	return __builtin_expect(sfy_udpa_any(), 0) ? sfy_udpa_kind(fd) : 0;
}
#define UDP_RECV(fd) (udp_kind(fd) != 0)

static ssize_t sent(int fd, ssize_t rc)
{
	if (rc > 0 && dns_kind(fd) == SFY_DNSP_TCP)
		sfy_dnsp_tcp_sent(fd, rc);
	return rc;
}

/* A write on a virtually connected UDP socket: 1 and *rc when answered. */
static int dns_write(int fd, const struct iovec *iov, int n, int flags, ssize_t *rc)
{
	if (n < 0)
		return 0;
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	if (udp_kind(fd) == 2) {
		*rc = sfy_udpa_send(fd, &m, flags, NULL);
		return 1;
	}
	if (dns_kind(fd) != SFY_DNSP_UDP_CONN)
		return 0;
	*rc = sfy_dnsp_udp_send(fd, &m, flags, NULL, 0);
	return 1;
}

SFY_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	GUARD(fd);
	if (UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, 0, NULL, NULL);
	if (DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, 0, NULL, NULL);
	return REAL(read)(fd, buf, n);
}

SFY_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	GUARD(fd);
	if (n <= buflen && UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, 0, NULL, NULL);
	if (n <= buflen && DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, 0, NULL, NULL);
	return REAL(__read_chk)(fd, buf, n, buflen);
}

SFY_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	GUARD(fd);
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	ssize_t rc;
	if (dns_write(fd, &iov, 1, 0, &rc))
		return rc;
	return sent(fd, REAL(write)(fd, buf, n));
}

SFY_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	GUARD(fd);
	if (n >= 0 && (UDP_RECV(fd) || DNS_RECV(fd))) {
		struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
		return UDP_RECV(fd) ? sfy_udpa_recvmsg(fd, &m, 0) : sfy_dnsp_recvmsg(fd, &m, 0);
	}
	return REAL(readv)(fd, iov, n);
}

SFY_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	GUARD(fd);
	ssize_t rc;
	if (dns_write(fd, iov, n, 0, &rc))
		return rc;
	return sent(fd, REAL(writev)(fd, iov, n));
}

SFY_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	GUARD(fd);
	if (UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, flags, NULL, NULL);
	if (DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, flags, NULL, NULL);
	return REAL(recv)(fd, buf, n, flags);
}

SFY_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	GUARD(fd);
	if (n <= buflen && UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, flags, NULL, NULL);
	if (n <= buflen && DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, flags, NULL, NULL);
	return REAL(__recv_chk)(fd, buf, n, buflen, flags);
}

ssize_t sfy_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	GUARD(fd);
	if (UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, flags, from, len);
	if (DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, flags, from, len);
	return REAL(recvfrom)(fd, buf, n, flags, from, len);
}

SFY_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	return sfy_recvfrom(fd, buf, n, flags, from, len);
}

SFY_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from,
				  socklen_t *len)
{
	GUARD(fd);
	if (n <= buflen && UDP_RECV(fd))
		return sfy_udpa_recvfrom(fd, buf, n, flags, from, len);
	if (n <= buflen && DNS_RECV(fd))
		return sfy_dnsp_recvfrom(fd, buf, n, flags, from, len);
	return REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, from, len);
}

ssize_t sfy_recvmsg(int fd, struct msghdr *msg, int flags)
{
	GUARD(fd);
	if (msg && UDP_RECV(fd))
		return sfy_udpa_recvmsg(fd, msg, flags);
	if (msg && DNS_RECV(fd))
		return sfy_dnsp_recvmsg(fd, msg, flags);
	return REAL(recvmsg)(fd, msg, flags);
}

SFY_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	return sfy_recvmsg(fd, msg, flags);
}

/* Also syscall(SYS_recvmmsg) (libuv).  On a socket of ours: one message,
 * then whatever else is there without waiting. */
int sfy_recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout)
{
	GUARD(fd);
	int udp = vec && vlen && UDP_RECV(fd);
	if (!vec || !vlen || (!udp && !DNS_RECV(fd)))
		return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
	ssize_t (*one)(int, struct msghdr *, int) = udp ? sfy_udpa_recvmsg : sfy_dnsp_recvmsg;
	flags &= ~MSG_WAITFORONE;
	ssize_t n = one(fd, &vec[0].msg_hdr, flags);
	if (n < 0)
		return -1;
	vec[0].msg_len = (unsigned)n;
	int saved = errno;
	unsigned i = 1;
	for (; i < vlen && (n = one(fd, &vec[i].msg_hdr, flags | MSG_DONTWAIT)) >= 0; i++)
		vec[i].msg_len = (unsigned)n;
	errno = saved;
	return (int)i;
}

SFY_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout)
{
	return sfy_recvmmsg(fd, vec, vlen, flags, timeout);
}

SFY_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	GUARD(fd);
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	ssize_t rc;
	if (dns_write(fd, &iov, 1, flags, &rc))
		return rc;
	return sent(fd, REAL(send)(fd, buf, n, flags));
}

/* SO_ERROR: 0 while the handshake runs (as while a connect() is under
 * way), its error once (then 0, as the kernel clears its own).  A relayed
 * fd (relay.h) answers for the TCP socket behind it. */
SFY_EXPORT int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	if (__builtin_expect(sfy_async_any(), 0) && level == SOL_SOCKET && name == SO_ERROR && value && len &&
	    *len >= sizeof(int)) {
		int err = 0;
		switch (sfy_async_touch(fd, 1, &err)) {
		case SFY_ASYNC_PENDING:
		case SFY_ASYNC_FAILED:
			*(int *)value = err;
			*len = sizeof(int);
			return 0;
		default:
			break;
		}
	}
	int rc;
	if (__builtin_expect(sfy_relay_any(), 0) && sfy_relay_getsockopt(fd, level, name, value, len, &rc))
		return rc;
	return REAL(getsockopt)(fd, level, name, value, len);
}
