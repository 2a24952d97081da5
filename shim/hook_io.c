/* The read/write family and getsockopt(SO_ERROR) on a handshaking fd: the
 * program's bytes never mix with the handshake's.  While it runs, reads and
 * writes fail with EAGAIN, as on a socket whose connect() is under way, and
 * step the handshake; once it failed they report its error; once it is
 * done they are libc's.  While no handshake is under way, each is one load
 * and libc's own call. */
#include "async.h"

#include <errno.h>

#define GUARD(fd)                                                                                                      \
	do {                                                                                                           \
		if (__builtin_expect(sfy_async_any(), 0) && sfy_async_io_check(fd) < 0)                                \
			return -1;                                                                                     \
	} while (0)

SFY_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	GUARD(fd);
	return REAL(read)(fd, buf, n);
}

SFY_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	GUARD(fd);
	return REAL(__read_chk)(fd, buf, n, buflen);
}

SFY_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	GUARD(fd);
	return REAL(write)(fd, buf, n);
}

SFY_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	GUARD(fd);
	return REAL(readv)(fd, iov, n);
}

SFY_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	GUARD(fd);
	return REAL(writev)(fd, iov, n);
}

SFY_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	GUARD(fd);
	return REAL(recv)(fd, buf, n, flags);
}

SFY_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	GUARD(fd);
	return REAL(__recv_chk)(fd, buf, n, buflen, flags);
}

SFY_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	GUARD(fd);
	return REAL(recvfrom)(fd, buf, n, flags, from, len);
}

SFY_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *from,
				  socklen_t *len)
{
	GUARD(fd);
	return REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, from, len);
}

SFY_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	GUARD(fd);
	return REAL(recvmsg)(fd, msg, flags);
}

SFY_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	GUARD(fd);
	return REAL(send)(fd, buf, n, flags);
}

/* SO_ERROR: 0 while the handshake runs (as while a connect() is under
 * way), its error once (then 0, as the kernel clears its own). */
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
	return REAL(getsockopt)(fd, level, name, value, len);
}
