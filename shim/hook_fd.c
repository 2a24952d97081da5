/* Hooks that keep the per-fd table true (close, dup*, fcntl F_DUPFD*,
 * close_range) and the ones that read it (getpeername, getsockname).  Only
 * getsockname() can need the configuration (it may start a BIND): the
 * others do not initialise, so a program that only opens and closes files
 * never reads it. */
#include "shim.h"
#include "async.h"
#include "dns_pkt.h"
#include "internal_fd.h"
#include "relay.h"
#include "udp_assoc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>

#include "sfy_fdtable.h"
#include "sfy_log.h"

/* close() and close_range() leave the fd table alone: a closed fd's entry
 * is dead by itself (see sfy_fdtable.h).  Clearing here would be wrong in a
 * vfork() child (Python's subprocess), which shares the parent's memory
 * while it closes the fds the new program must not get.  Socket facts are
 * cleared: a vfork() child clearing the parent's only costs the parent a
 * question to the kernel at its next connect(). */
/* What a close of fd means to the tables, whichever way it is made. */
static void closing(int fd)
{
	sfy_log_fd_closing(fd, 0);
	sfy_sock_facts_set(fd, 0);
	sfy_async_closed(fd);
	if (sfy_dnsp_any())
		sfy_dnsp_closed(fd);
	if (sfy_udpa_any())
		sfy_udpa_closed(fd); /* its association ends with it */
}

/* The library's own fds (internal_fd.h) are not the program's to close:
 * to it they do not exist. */
static int refuse_internal(int fd)
{
	if (!sfy_ifd_is(fd))
		return 0;
	errno = EBADF;
	return 1;
}

int sfy_close_prepare(int fd)
{
	if (refuse_internal(fd))
		return -1;
	closing(fd);
	return 0;
}

SFY_EXPORT int close(int fd)
{
	if (sfy_close_prepare(fd) < 0)
		return -1;
	return REAL(close)(fd);
}

SFY_EXPORT int dup(int fd)
{
	int nfd = REAL(dup)(fd);
	if (nfd >= 0)
		sfy_fd_copy(fd, nfd);
	return nfd;
}

/* dup2()/dup3() over one of the library's own fds moves ours away first;
 * over a DNS socket of ours, that socket is closed. */
static int over(int nfd)
{
	if (sfy_udpa_any())
		sfy_udpa_closed(nfd);
	if (!sfy_ifd_any() && !sfy_dnsp_any())
		return 0;
	if (sfy_ifd_make_room(nfd) < 0)
		return -1;
	sfy_dnsp_closed(nfd);
	return 0;
}

SFY_EXPORT int dup2(int fd, int nfd)
{
	if (fd != nfd) {
		if (over(nfd) < 0)
			return -1;
		sfy_log_fd_closing(nfd, 1);
		sfy_async_closed(nfd);
	}
	int rc = REAL(dup2)(fd, nfd);
	if (rc >= 0)
		sfy_fd_copy(fd, rc);
	return rc;
}

SFY_EXPORT int dup3(int fd, int nfd, int flags)
{
	if (fd != nfd && over(nfd) < 0)
		return -1;
	sfy_log_fd_closing(nfd, 1);
	if (fd != nfd)
		sfy_async_closed(nfd);
	int rc = REAL(dup3)(fd, nfd, flags);
	if (rc >= 0)
		sfy_fd_copy(fd, rc);
	return rc;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, va_list ap)
{
	/* Every fcntl argument is an int, a pointer or absent: passing a
	 * pointer-sized value on covers them all, as libc itself does. */
	void *arg = va_arg(ap, void *);
	int rc = real(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		sfy_fd_copy(fd, rc);
	else if (rc >= 0 && cmd == F_SETFL)
		sfy_sock_facts_nonblock(fd, ((long)arg & O_NONBLOCK) != 0);
	return rc;
}

SFY_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	int rc = fcntl_common(REAL(fcntl), fd, cmd, ap);
	va_end(ap);
	return rc;
}

SFY_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	int rc = fcntl_common(REAL(fcntl64) ? REAL(fcntl64) : REAL(fcntl), fd, cmd, ap);
	va_end(ap);
	return rc;
}

int sfy_close_range(unsigned first, unsigned last, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && sfy_dnsp_any())
		sfy_dnsp_closed_range(first, last);
	if (!(flags & CLOSE_RANGE_CLOEXEC) && sfy_udpa_any())
		sfy_udpa_closed_range(first, last);
	int rc = sfy_ifd_close_range(first, last, flags); /* never ours */
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		sfy_log_fds_closing(first, last);
		sfy_sock_facts_clear_range(first, last);
		if (sfy_async_any())
			sfy_async_closed_range(first, last);
	}
	return rc;
}

SFY_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	return sfy_close_range(first, last, flags);
}

/* glibc's closefrom() calls the close_range system call itself, which
 * would take the library's own fds (the UDP association's control
 * connection, the DNS injectors) too: the same path as close_range(), and
 * where that fails, one close() at a time below the fd limit. */
SFY_EXPORT void closefrom(int lowfd)
{
	int saved = errno;
	if (lowfd < 0)
		lowfd = 0;
	if (sfy_close_range((unsigned)lowfd, ~0U, 0) < 0) {
		long max = sysconf(_SC_OPEN_MAX);
		for (long fd = lowfd; fd < max && fd < SFY_FD_MAX; fd++)
			if (!sfy_ifd_is((int)fd) && REAL(fcntl)((int)fd, F_GETFD) >= 0) {
				closing((int)fd);
				REAL(close)((int)fd);
			}
	}
	errno = saved;
}

void sfy_copy_sockaddr(const void *src, socklen_t src_len, struct sockaddr *addr, socklen_t *len)
{
	if (!addr || !len)
		return;
	memcpy(addr, src, src_len < *len ? src_len : *len); /* POSIX: truncate, report full size */
	*len = src_len;
}

int sfy_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sfy_fdinfo info;
	int err;
	if (sfy_async_any() && sfy_async_touch(fd, 0, &err) != SFY_ASYNC_NONE) {
		errno = ENOTCONN; /* not connected until the handshake is done */
		return -1;
	}
	if (!addr || !len || !sfy_fd_get(fd, &info) || info.kind == SFY_FD_BIND_CANDIDATE)
		return REAL(getpeername)(fd, addr, len);
	if (info.kind == SFY_FD_BIND_WAITING || info.kind == SFY_FD_BIND_DONE) {
		errno = ENOTCONN; /* a listener has no peer */
		return -1;
	}
	sfy_copy_sockaddr(&info.peer, info.peer_len, addr, len);
	return 0;
}

SFY_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfy_getpeername(fd, addr, len);
}

int sfy_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	sfy_init();
	struct sfy_fdinfo info;
	struct sockaddr_storage real;
	socklen_t rlen = sizeof real;
	int have = addr && len && sfy_fd_get(fd, &info);
	if (have && info.kind == SFY_FD_BIND_CANDIDATE && sfy_bind_start(fd, &info) < 0)
		return -1;
	if (have && info.kind != SFY_FD_BIND_CANDIDATE && info.local_len) {
		sfy_copy_sockaddr(&info.local, info.local_len, addr, len); /* what the peer sees or must connect to */
		return 0;
	}
	if (!have)
		return REAL(getsockname)(fd, addr, len);
	if (REAL(getsockname)(fd, (struct sockaddr *)&real, &rlen) < 0)
		return -1;
	struct sockaddr_storage shown;
	socklen_t slen = sfy_sockname_for_app(&real, rlen, info.app_family, &shown);
	sfy_copy_sockaddr(&shown, slen, addr, len);
	return 0;
}

SFY_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfy_getsockname(fd, addr, len);
}
