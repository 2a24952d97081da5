/* SOCKS messages on the caller's fd (see struct sfy_io in shim.h): whole
 * writes, exact reads, and replies read without taking a byte more than
 * they hold.  Two ways to wait: a poll() with a deadline before each read
 * (the fd's mode does not matter: every call is MSG_DONTWAIT), or, for a
 * blocking fd with no limit of ours to keep, the plain blocking calls a
 * SOCKS client of its own would make. */
#include "sfy_wire.h"
#include "sfy_chain.h"
#include "sys.h"

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
	int fl = sfy_sys_fcntl(fd, F_GETFL, 0);
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
		int r = sfy_sys_poll(&p, 1, timeout);
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
	if (sfy_sys_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
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
		ssize_t n = sfy_sys_send(io->fd, buf + done, len - done, MSG_NOSIGNAL | (io->blocking ? 0 : MSG_DONTWAIT));
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

ssize_t sfy_recv_some(struct sfy_io *io, uint8_t *buf, size_t max, int wait_first)
{
	/* The message follows our own request, so it cannot be there yet:
	 * wait first rather than spend a recv() on EAGAIN. */
	if (wait_first && !io->blocking && sfy_wait_fd(io->fd, POLLIN, io->deadline) < 0)
		return -1;
	for (;;) {
		ssize_t n = sfy_sys_recv(io->fd, buf, max, io->blocking ? 0 : MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_more(io, POLLIN) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
}

int sfy_chain_drive(struct sfy_chain_engine *c, struct sfy_io *io, sfy_hop_done_fn hop_done, void *arg)
{
	for (int at = c->at;;) {
		const uint8_t *out;
		size_t len, max;
		uint8_t buf[SFY_ENG_IN_MAX];
		ssize_t n;
		enum sfy_want w = sfy_chain_want(c, &out, &len, &max);
		if (c->at != at && hop_done)
			hop_done(c, at, arg); /* hop `at` reached the next one */
		at = c->at;
		switch (w) {
		case SFY_WANT_WRITE:
			if (sfy_send_all(io, out, len) < 0)
				sfy_chain_fail(c, errno, NULL);
			else
				sfy_chain_sent(c, len);
			break;
		case SFY_WANT_READ:
			n = sfy_recv_some(io, buf, max, sfy_engine_at_message_start(&c->e));
			if (n > 0)
				sfy_chain_feed(c, buf, (size_t)n);
			else if (n == 0)
				sfy_chain_eof(c);
			else
				sfy_chain_fail(c, errno, NULL);
			break;
		case SFY_WANT_DONE:
			return 0;
		case SFY_WANT_FAILED:
			errno = c->e.err;
			return -1;
		}
	}
}
