/* bind(), listen(), accept() and accept4(): a program's
 * listening socket becomes a SOCKS5 BIND on the same fd, so that a peer
 * behind the proxy can connect back (active-mode FTP).
 *
 * bind() records a candidate; listen() sends BIND and reads reply 1, whose
 * address getsockname() then reports; accept() reads reply 2, moves the
 * data stream to a new fd and leaves behind an inert listener that nobody
 * can reach, so the old fd behaves like a listener with nothing pending. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "gss_conn.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"

static int is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_in a4, b4;
	if (sfy_unmap_v4(a, &a4))
		a = (const struct sockaddr *)&a4;
	if (sfy_unmap_v4(b, &b4))
		b = (const struct sockaddr *)&b4;
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr);
}

enum { NOT_OURS, REAL_LOCAL, REPORTED };

/* Is addr the local address of one of our live proxied connections (an FTP
 * client binds its data socket to its control connection's address)?
 * REAL_LOCAL: the kernel's; REPORTED: the one getsockname() reported,
 * which is the proxy's and so cannot be bound here. */
static int local_of_proxied(const struct sockaddr *addr)
{
	int fds[64];
	int n = sfy_fd_list(SFY_FD_CONNECTED, fds, 64);
	for (int i = 0; i < n; i++) {
		struct sfy_fdinfo info;
		struct sockaddr_storage local;
		socklen_t len = sizeof local;
		if (!sfy_fd_get(fds[i], &info))
			continue;
		if (info.local_len && same_host(addr, (struct sockaddr *)&info.local))
			return REPORTED;
		if (REAL(getsockname)(fds[i], (struct sockaddr *)&local, &len) == 0 &&
		    same_host(addr, (struct sockaddr *)&local))
			return REAL_LOCAL;
	}
	return NOT_OURS;
}

static int is_bind_candidate(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (sfy_cfg.bind_mode == SFY_BIND_NEVER || !sfy_inet_addr_ok(addr, len) || sfy_socket_kind(fd) != 1)
		return 0;
	if (sfy_cfg.bind_mode == SFY_BIND_ALWAYS)
		return 1;
	struct sockaddr_in v4;
	const struct sockaddr *sa = sfy_unmap_v4(addr, &v4) ? (const struct sockaddr *)&v4 : addr;
	in_port_t port = sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
						  : ((const struct sockaddr_in6 *)sa)->sin6_port;
	if (port != 0)
		return 0; /* a local server: explicit port */
	/* The address reported for a proxied connection is the proxy's side:
	 * a loopback one there is another host's loopback (a last hop on the
	 * destination's own host answers with 127.0.0.1) unless the proxy
	 * itself is on this host's loopback. */
	struct sfy_config loopback_only = {.direct_loopback = 1};
	int ours = local_of_proxied(sa);
	if (ours == REPORTED && !sfy_addr_is_direct(&loopback_only, (const struct sockaddr *)&sfy_cfg.proxy))
		return 1;
	if (sfy_addr_is_direct(&loopback_only, sa))
		return 0; /* a local server on loopback */
	return is_wildcard(sa) || ours != NOT_OURS;
}

int sfy_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	sfy_init();
	int candidate = is_bind_candidate(fd, addr, len);
	/* The proxy's address we reported for a connection: not bindable here,
	 * and only ever asked for to listen there, which BIND does. */
	int reported = candidate && sfy_cfg.bind_mode != SFY_BIND_ALWAYS && !is_wildcard(addr) &&
		       local_of_proxied(addr) == REPORTED;
	int rc = reported ? 0 : REAL(bind)(fd, addr, len);
	if (rc == 0 && candidate) {
		struct sfy_fdinfo info = {.kind = SFY_FD_BIND_CANDIDATE, .app_family = addr->sa_family};
		sfy_fd_set(fd, &info);
	}
	return rc;
}

SFY_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return sfy_bind(fd, addr, len);
}

int sfy_bind_start(int fd, struct sfy_fdinfo *info)
{
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4};
	if (!sfy_cfg.bind_dst_zero)
		sfy_last_connect_dst(&dst); /* none yet: 0.0.0.0:0 */
	struct s5_reply reply1;
	if (sfy_proxy_bind(fd, &dst, &reply1, info->app_family) < 0) {
		int err = errno;
		sfy_fd_clear(fd);
		errno = err;
		return -1;
	}
	info->kind = SFY_FD_BIND_WAITING;
	info->wrapped = sfy_gss_parked(fd) != NULL; /* GSSAPI: reply 2 and the stream are wrapped */
	info->local_len = sfy_socks_to_sockaddr(&reply1.bnd, info->app_family, &info->local, 0);
	sfy_fd_set(fd, info);
	return 0;
}

/* FTP clients ask getsockname() before or after listen(): whichever comes
 * first starts the BIND (see the getsockname hook). */
int sfy_listen(int fd, int backlog)
{
	sfy_init();
	struct sfy_fdinfo info;
	if (!sfy_fd_get(fd, &info) || (info.kind != SFY_FD_BIND_CANDIDATE && info.kind != SFY_FD_BIND_WAITING))
		return REAL(listen)(fd, backlog);
	if (info.kind == SFY_FD_BIND_WAITING)
		return 0;
	return sfy_bind_start(fd, &info);
}

SFY_EXPORT int listen(int fd, int backlog)
{
	return sfy_listen(fd, backlog);
}

/* A listening socket nobody can connect to: a UNIX socket whose path is
 * removed right after listen().  It never becomes readable, and accept()
 * on it waits (or says EAGAIN) like a listener with nothing pending. */
static int inert_listener(void)
{
	int s = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	char dir[] = "/tmp/socksify-XXXXXX";
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (mkdtemp(dir)) {
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s/l", dir);
		int ok = REAL(bind)(s, (struct sockaddr *)&sun, sizeof sun) == 0 && REAL(listen)(s, 1) == 0;
		unlink(sun.sun_path);
		rmdir(dir);
		if (ok)
			return s;
	}
	/* No writable /tmp: an autobound abstract name (random, but listed in
	 * /proc/net/unix) is the next best thing. */
	if (REAL(bind)(s, (struct sockaddr *)&sun, sizeof(sa_family_t)) == 0 && REAL(listen)(s, 1) == 0)
		return s;
	REAL(close)(s);
	return -1;
}

/* Put an inert listener at fd in place of the BIND connection, keeping the
 * fd's O_NONBLOCK, FD_CLOEXEC and epoll registrations. */
static int swap_in_inert(int fd, const struct sfy_fdinfo *info)
{
	int inert = inert_listener();
	if (inert < 0)
		return -1;
	for (int i = 0; i < info->n_epoll; i++)
		REAL(epoll_ctl)(info->epoll[i].epfd, EPOLL_CTL_DEL, fd, NULL);
	int rc = sfy_swap_socket(fd, inert);
	for (int i = 0; i < info->n_epoll; i++) {
		struct epoll_event ev = info->epoll[i].ev;
		REAL(epoll_ctl)(info->epoll[i].epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	return rc;
}

/* After reply 2: the stream goes to a new fd, the old fd gets an inert
 * listener.  Returns the new fd. */
static int hand_over_stream(int fd, int stream, int flags, struct sfy_fdinfo *info, const struct s5_reply *reply2)
{
	if (swap_in_inert(fd, info) < 0) {
		int err = errno;
		REAL(close)(stream);
		errno = err;
		return -1;
	}
	int fl = REAL(fcntl)(stream, F_GETFL);
	fl = (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	REAL(fcntl)(stream, F_SETFL, fl);
	struct sfy_fdinfo accepted = {.kind = SFY_FD_ACCEPTED, .app_family = info->app_family};
	accepted.peer_len = sfy_socks_to_sockaddr(&reply2->bnd, info->app_family, &accepted.peer, 0);
	sfy_fd_set(stream, &accepted);
	info->kind = SFY_FD_BIND_DONE;
	sfy_fd_set(fd, info);
	char peer[300];
	s5_addr_text(&reply2->bnd, peer, sizeof peer);
	sfy_log(SFY_LOG_INFO, "bind on fd %d: accepted %s as fd %d", fd, peer, stream);
	return stream;
}

static int bind_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, struct sfy_fdinfo *info)
{
	int fl = REAL(fcntl)(fd, F_GETFL);
	if (fl < 0)
		return -1;
	/* Take the new fd number first: once reply 2 is read it cannot be put back. */
	int stream = REAL(fcntl)(fd, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	if (stream < 0)
		return -1;
	struct s5_reply reply2;
	if (sfy_bind_reply2(fd, !(fl & O_NONBLOCK), &reply2) < 0) {
		int err = errno;
		REAL(close)(stream);
		if (err != EAGAIN && err != EWOULDBLOCK && swap_in_inert(fd, info) == 0) {
			info->kind = SFY_FD_BIND_DONE; /* reported once; then nothing pending */
			sfy_fd_set(fd, info);
			sfy_gss_free(sfy_gss_unpark(fd));
		}
		errno = err;
		return -1;
	}
	struct sfy_gss *g = sfy_gss_unpark(fd); /* a GSSAPI BIND: the stream is wrapped */
	if (info->wrapped && !g) { /* its context is gone: never show wrapped bytes as plain */
		REAL(close)(stream);
		errno = EPROTO;
		return -1;
	}
	int nfd = hand_over_stream(fd, stream, flags, info, &reply2);
	if (nfd < 0) {
		sfy_gss_free(g); /* keeps errno */
		return -1;
	}
	struct sfy_fdinfo accepted;
	int got = sfy_fd_get(nfd, &accepted);
	if (g) { /* never a wrapped stream shown as plain: relayed, or no fd */
		int rc = -1;
		if (got)
			rc = sfy_gss_relay(nfd, g, &accepted, NULL, 0); /* frees g on failure */
		else
			sfy_gss_free(g), errno = EPROTO;
		if (rc < 0) {
			int err = errno;
			REAL(close)(nfd);
			errno = err;
			return -1;
		}
	}
	if (got)
		sfy_copy_sockaddr(&accepted.peer, accepted.peer_len, addr, len);
	return nfd;
}

int sfy_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	sfy_init();
	struct sfy_fdinfo info;
	if (!sfy_fd_get(fd, &info) || info.kind != SFY_FD_BIND_WAITING) {
		int nfd = REAL(accept4)(fd, addr, len, flags);
		sfy_sock_facts_set(nfd, 0); /* connected already: nothing for connect() */
		return nfd;
	}
	return bind_accept(fd, addr, len, flags, &info);
}

SFY_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return sfy_accept4(fd, addr, len, flags);
}

int sfy_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	sfy_init();
	struct sfy_fdinfo info;
	if (!sfy_fd_get(fd, &info) || info.kind != SFY_FD_BIND_WAITING) {
		int nfd = REAL(accept)(fd, addr, len);
		sfy_sock_facts_set(nfd, 0); /* connected already: nothing for connect() */
		return nfd;
	}
	return bind_accept(fd, addr, len, 0, &info);
}

SFY_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfy_accept(fd, addr, len);
}
