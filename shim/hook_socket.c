/* socket(), setsockopt() and ioctl(): note what connect() will want to know
 * about a socket (see sfy_sock_facts in sfy_fdtable.h), so that it need not
 * ask the kernel.  None of them needs the configuration. */
#include "shim.h"
#include "async.h"
#include "dns_pkt.h"
#include "relay.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <sys/ioctl.h>

#include "sfy_fdtable.h"

int sfy_socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);
	if (fd < 0)
		return fd;
	int kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int tcp = (domain == AF_INET || domain == AF_INET6) && kind == SOCK_STREAM &&
		  (protocol == 0 || protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP);
	sfy_fd_clear(fd); /* a new socket: what the table held for this number is gone */
	sfy_async_new_socket(fd);
	if (sfy_dnsp_any())
		sfy_dnsp_forget(fd);
	sfy_sock_facts_set(fd, tcp ? SFY_SOCK_TCP | SFY_SOCK_FRESH | ((type & SOCK_NONBLOCK) ? SFY_SOCK_NONBLOCK : 0) : 0);
	return fd;
}

SFY_EXPORT int socket(int domain, int type, int protocol)
{
	return sfy_socket(domain, type, protocol);
}

/* A relayed fd (relay.h): the connection's options go to the TCP socket. */
SFY_EXPORT int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	int rc;
	if (__builtin_expect(sfy_relay_any(), 0) && sfy_relay_setsockopt(fd, level, name, value, len, &rc))
		return rc;
	rc = REAL(setsockopt)(fd, level, name, value, len);
	if (rc == 0 && level == SOL_SOCKET && (name == SO_SNDTIMEO
#if defined(SO_SNDTIMEO_NEW) && SO_SNDTIMEO_NEW != SO_SNDTIMEO
					      || name == SO_SNDTIMEO_NEW
#endif
					      ))
		sfy_sock_facts_change(fd, SFY_SOCK_SNDTIMEO, 0);
	return rc;
}

SFY_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	/* Every ioctl argument is a pointer, an int or absent: passing a
	 * pointer-sized value on covers them all, as libc itself does. */
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int rc = REAL(ioctl)(fd, request, arg);
	if (rc == 0 && request == FIONBIO && arg)
		sfy_sock_facts_nonblock(fd, *(const int *)arg != 0);
	return rc;
}
