/* SOCKS messages on the caller's fd (see struct sfy_io in shim.h): whole
 * writes, exact reads, and replies read without taking a byte more than
 * they hold.  Two ways to wait: a poll() with a deadline before each read
 * (the fd's mode does not matter: every call is MSG_DONTWAIT), or, for a
 * blocking fd with no limit of ours to keep, the plain blocking calls a
 * SOCKS client of its own would make. */
#include "sfy_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

long long sfy_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long sfy_now_ms(void)
{
	return sfy_now_us() / 1000;
}

int sfy_fd_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : (fl & O_NONBLOCK) != 0;
}

long long sfy_deadline_after(int ms)
{
	return ms ? sfy_now_ms() + ms : SFY_NO_DEADLINE;
}

int sfy_wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		int timeout = -1;
		if (deadline != SFY_NO_DEADLINE) {
			long long left = deadline - sfy_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, timeout);
		if (r > 0)
			return p.revents; /* readiness or an error: the next call reports which */
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

int sfy_connect_finish(int fd, long long deadline)
{
	int revents = sfy_wait_fd(fd, POLLOUT, deadline);
	if (revents < 0)
		return -1;
	/* A clean POLLOUT is a connected socket; ask for the error only if
	 * there is one to ask about. */
	if (!(revents & (POLLERR | POLLHUP)))
		return 0;
	int err = 0;
	socklen_t elen = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -1;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* EAGAIN from a blocking call is the program's own SO_RCVTIMEO or
 * SO_SNDTIMEO running out: a timeout; unless the fd was non-blocking after
 * all (made so through a dup() or by another process, behind the hooks),
 * and then it is a wait from now on.  Otherwise, wait for events. */
static int wait_more(struct sfy_io *io, short events)
{
	if (io->blocking && !sfy_fd_nonblocking(io->fd)) {
		errno = ETIMEDOUT;
		return -1;
	}
	io->blocking = 0;
	return sfy_wait_fd(io->fd, events, io->deadline) < 0 ? -1 : 0;
}

int sfy_send_all(struct sfy_io *io, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(io->fd, buf + done, len - done, MSG_NOSIGNAL | (io->blocking ? 0 : MSG_DONTWAIT));
		if (n > 0) {
			done += (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_more(io, POLLOUT) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* Reads into buf until size_of() says the message is whole (it may raise
 * *len as the head tells more), never past it: what follows belongs to the
 * program.  EOF: ECONNRESET before any byte, else EPROTO.  The message
 * follows our own request, so it cannot be there yet: wait first rather
 * than spend a recv() on EAGAIN. */
static int recv_message(struct sfy_io *io, uint8_t *buf, size_t *len, int (*size_of)(const uint8_t *, size_t))
{
	size_t got = 0;
	if (!io->blocking && sfy_wait_fd(io->fd, POLLIN, io->deadline) < 0)
		return -1;
	while (got < *len) {
		ssize_t n = recv(io->fd, buf + got, *len - got, io->blocking ? 0 : MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			int size = size_of ? size_of(buf, got) : 0;
			if (size < 0) {
				errno = EPROTO;
				return -1;
			}
			if (size > 0)
				*len = (size_t)size;
		} else if (n == 0) {
			errno = got ? EPROTO : ECONNRESET;
			return -1;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_more(io, POLLIN) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

int sfy_recv_exact(struct sfy_io *io, uint8_t *buf, size_t len)
{
	return recv_message(io, buf, &len, NULL);
}

/* Bytes a reply occupies, from its first len bytes: 0 while unknown,
 * -1 when malformed.  A name shorter than 3 bytes would make a reply under
 * 10 bytes, less than the first read asks for (see sfy_read_reply), so it
 * is malformed here (no real proxy sends one). */
static int reply_size(const uint8_t *buf, size_t len)
{
	if ((len >= 1 && buf[0] != S5_VERSION) || (len >= 3 && buf[2] != 0))
		return -1;
	if (len < 4)
		return 0;
	switch (buf[3]) {
	case S5_ATYP_IPV4: return 10;
	case S5_ATYP_IPV6: return 22;
	case S5_ATYP_DOMAIN: return len < 5 ? 0 : buf[4] < 3 ? -1 : 7 + buf[4];
	default: return -1;
	}
}

/* A reply is VER REP RSV ATYP then 4, 16 or 1+N address bytes and a port.
 * The first read asks for 10 bytes, the whole of the usual IPv4 reply, so
 * one recv() usually does; then exactly the rest.  A malformed head fails
 * at once, without waiting for bytes that may never come. */
int sfy_read_reply(struct sfy_io *io, struct s5_reply *reply)
{
	uint8_t buf[S5_REPLY_MAX];
	size_t len = 10;
	if (recv_message(io, buf, &len, reply_size) < 0)
		return -1;
	if (s5_decode_reply(buf, len, reply) != (int)len) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}
