/* One relay session's bytes (see relay.h, relay_int.h), moved without
 * waiting: the relay thread (shim/relay.c) polls, then calls relay_step.
 *
 * Proxy to program: frame bytes are read into rbuf (never more than one
 * frame's room), a complete frame is unwrapped into pbuf only once pbuf is
 * empty, and pbuf goes to our end of the pair.  So the program receives a
 * byte only after its token unwrapped, and nothing is read that cannot be
 * held.  Program to proxy: at most max_in bytes are read from our end,
 * only once the previous frame is written, and wrapped into one frame.
 * Errors of the data phase stop both directions, except that the good
 * bytes already unwrapped are still delivered; then the program's end is
 * reset (relay_reset_app). */
#include "relay_int.h"

#include "internal_fd.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define STEP_ROUNDS 64 /* rounds per step: other sessions get their turn */

/* I/O on an internal fd by handle: the registry is locked so that its
 * number cannot change under us (the program's dup2() over it moves it);
 * the fds are non-blocking, so the lock is never held across a wait. */
static ssize_t h_recv(int h, void *buf, size_t n)
{
	int fd = sfy_ifd_lock_fd(h);
	ssize_t rc = fd < 0 ? -1 : REAL(recv)(fd, buf, n, MSG_DONTWAIT);
	int err = fd < 0 ? EBADF : errno;
	sfy_ifd_unlock();
	errno = err;
	return rc;
}

static ssize_t h_send(int h, const void *buf, size_t n)
{
	int fd = sfy_ifd_lock_fd(h);
	ssize_t rc = fd < 0 ? -1 : REAL(send)(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	int err = fd < 0 ? EBADF : errno;
	sfy_ifd_unlock();
	errno = err;
	return rc;
}

static void h_shutdown_wr(int h)
{
	int fd = sfy_ifd_lock_fd(h);
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
	sfy_ifd_unlock();
}

static int again(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* One error line (the reason never holds key material: the ops give GSS
 * status text), then the session fails. */
__attribute__((format(printf, 2, 3))) static void fail(struct relay_sess *s, const char *fmt, ...)
{
	char why[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	sfy_log(SFY_LOG_ERROR, "GSSAPI data on %s: %s; connection reset", s->what, why);
	s->flags |= R_FAILED;
}

/* A wrap or unwrap failed: fail(), or quietly when the program is
 * exiting and the GSS library has been shut down (ESHUTDOWN). */
static void op_failed(struct relay_sess *s, const char *op, const char *err, const char *none)
{
	if (errno == ESHUTDOWN) {
		sfy_log(SFY_LOG_DEBUG, "GSSAPI data on %s: %s at exit; connection reset", s->what, op);
		s->flags |= R_FAILED;
		return;
	}
	fail(s, "%s: %s", op, err[0] ? err : none);
}

/* rbuf's first frame, checked as soon as its header bytes arrive.  Returns
 * the frame's token length when it is complete, 0 when incomplete, -1
 * after fail(). */
static long frame_ready(struct relay_sess *s)
{
	const uint8_t *b = s->rbuf;
	int size = s5_gss_frame_size(b, s->rlen); /* the framing the engine reads too */
	if (size == S5_EVERSION) {
		fail(s, "frame version %d (expected 1)", b[0]);
		return -1;
	}
	if (s->rlen >= 2 && b[1] == S5_GSS_ABORT) {
		fail(s, "the proxy aborted the session (mtyp X'FF')");
		return -1;
	}
	if (s->rlen >= 2 && b[1] != S5_GSS_DATA) { /* context and level messages are over */
		fail(s, "frame of message type %d (expected 3)", b[1]);
		return -1;
	}
	if (size < 0) {
		fail(s, "frame of length 0");
		return -1;
	}
	return size > 0 && s->rlen >= (size_t)size ? size - S5_GSS_HEADER : 0;
}

/* Unwrap rbuf's first frame (len bytes of token) into pbuf. */
static void unwrap_frame(struct relay_sess *s, long len)
{
	char err[256] = "";
	long n = s->p.ops->unwrap(s->p.ctx, s->rbuf + S5_GSS_HEADER, (size_t)len, s->pbuf, SFY_RELAY_TOKEN_MAX, err, sizeof err);
	if (n < 0 || n > SFY_RELAY_TOKEN_MAX) {
		op_failed(s, "unwrap", err, "failed");
		return;
	}
	s->poff = 0;
	s->plen = (size_t)n;
	s->rlen -= S5_GSS_HEADER + (size_t)len;
	memmove(s->rbuf, s->rbuf + S5_GSS_HEADER + len, s->rlen);
}

/* pbuf to the program.  1: progress. */
static int flush_to_app(struct relay_sess *s)
{
	if (s->flags & R_APP_GONE) {
		s->plen = 0;
		return 0;
	}
	ssize_t n = h_send(s->ha, s->pbuf + s->poff, s->plen);
	if (n > 0) {
		s->poff += (size_t)n;
		s->plen -= (size_t)n;
		return 1;
	}
	if (n < 0 && again())
		return 0;
	s->flags |= R_APP_GONE; /* EPIPE: the program closed its end or shut its reading side */
	s->plen = 0;
	return 1;
}

/* Read frame bytes from the proxy into rbuf's free room.  1: progress. */
static int read_net(struct relay_sess *s)
{
	ssize_t n = h_recv(s->hn, s->rbuf + s->rlen, RELAY_FRAME_MAX - s->rlen);
	if (n > 0) {
		s->rlen += (size_t)n;
		return 1;
	}
	if (n == 0) {
		s->flags |= R_NET_EOF;
		return 1;
	}
	if (again())
		return 0;
	fail(s, "reading from the proxy: %s", strerror(errno));
	return 1;
}

static int to_app(struct relay_sess *s)
{
	if (s->plen)
		return flush_to_app(s);
	if (s->flags & (R_FAILED | R_APP_GONE))
		return 0;
	long len = frame_ready(s);
	if (len < 0)
		return 1;
	if (len > 0) {
		unwrap_frame(s, len);
		return 1;
	}
	if (!(s->flags & R_NET_EOF))
		return read_net(s);
	if (s->flags & R_APP_WR_SHUT)
		return 0;
	if (s->rlen) {
		fail(s, "the proxy closed the connection in the middle of a frame (%zu bytes of it read)", s->rlen);
		return 1;
	}
	h_shutdown_wr(s->ha); /* the proxy's end of stream, at a frame boundary: the program's */
	s->flags |= R_APP_WR_SHUT;
	return 1;
}

/* Read a chunk from the program and wrap it into wbuf.  1: progress. */
static int wrap_from_app(struct relay_sess *s)
{
	ssize_t n = h_recv(s->ha, s->plain, s->p.max_in);
	if (n < 0 && again())
		return 0;
	if (n <= 0) {
		/* 0: shutdown(SHUT_WR) or close; ECONNRESET: closed with bytes
		 * of ours unread.  Either way the program has no more to say. */
		s->flags |= R_APP_EOF | (n < 0 ? R_APP_GONE : 0);
		return 1;
	}
	char err[256] = "";
	long t = s->p.ops->wrap(s->p.ctx, s->plain, (size_t)n, s->wbuf + S5_GSS_HEADER, SFY_RELAY_TOKEN_MAX, err, sizeof err);
	if (t <= 0 || t > SFY_RELAY_TOKEN_MAX) {
		op_failed(s, "wrap", err, "token does not fit in a frame");
		return 1;
	}
	s5_gss_header(s->wbuf, S5_GSS_DATA, (size_t)t);
	s->woff = 0;
	s->wlen = S5_GSS_HEADER + (size_t)t;
	return 1;
}

static int to_net(struct relay_sess *s)
{
	if (s->flags & R_FAILED)
		return 0;
	if (s->woff < s->wlen) {
		ssize_t n = h_send(s->hn, s->wbuf + s->woff, s->wlen - s->woff);
		if (n > 0) {
			s->woff += (size_t)n;
			return 1;
		}
		if (n < 0 && again())
			return 0;
		fail(s, "writing to the proxy: %s", strerror(n < 0 ? errno : EPIPE));
		return 1;
	}
	if (!(s->flags & R_APP_EOF))
		return wrap_from_app(s);
	if (s->flags & R_NET_WR_SHUT)
		return 0;
	h_shutdown_wr(s->hn); /* the program's end of stream: the proxy's */
	s->flags |= R_NET_WR_SHUT;
	return 1;
}

static int finished(const struct relay_sess *s)
{
	unsigned f = s->flags;
	if (f & R_FAILED)
		return (f & R_APP_GONE) || s->plen == 0;
	if (f & R_APP_GONE)
		return (f & R_APP_EOF) && s->woff == s->wlen;
	return (f & R_NET_WR_SHUT) && (f & R_APP_WR_SHUT);
}

void relay_interest(const struct relay_sess *s, short *net_ev, short *app_ev, int *poll_net, int *poll_app)
{
	unsigned f = s->flags;
	short n = 0, a = 0;
	if (!(f & (R_FAILED | R_APP_GONE | R_NET_EOF)) && s->plen == 0 && s->rlen < RELAY_FRAME_MAX)
		n |= POLLIN;
	if (!(f & R_FAILED) && s->woff < s->wlen)
		n |= POLLOUT;
	if (s->plen && !(f & R_APP_GONE))
		a |= POLLOUT;
	if (!(f & (R_FAILED | R_APP_EOF)) && s->woff == s->wlen)
		a |= POLLIN;
	*net_ev = n;
	*app_ev = a;
	/* With no events, an fd is still polled for HUP/ERR, until one is
	 * seen: poll reports those whatever was asked, and would not wait. */
	*poll_net = n || !(f & R_NET_HUP);
	*poll_app = a || !(f & R_APP_HUP);
}

int relay_step(struct relay_sess *s, short net_rev, short app_rev)
{
	if (net_rev & (POLLHUP | POLLERR))
		s->flags |= R_NET_HUP;
	if (app_rev & (POLLHUP | POLLERR)) {
		s->flags |= R_APP_HUP;
		/* Both sides shut down (HUP) before we shut ours, or reset
		 * (ERR): the program will read no more. */
		if ((app_rev & POLLERR) || !(s->flags & R_APP_WR_SHUT))
			s->flags |= R_APP_GONE;
	}
	for (int round = 0; round < STEP_ROUNDS; round++) {
		int moved = to_app(s);
		moved |= to_net(s);
		if (finished(s))
			return 1;
		if (!moved)
			return 0;
	}
	return 2;
}

/* The program's end, if fd (or a copy of it listed in the fd table) still
 * is it: a new fd for it (close-on-exec), else -1. */
static int app_end_copy(const struct relay_sess *s, int fd)
{
	int c = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
	struct stat st;
	if (c >= 0 && fstat(c, &st) == 0 && st.st_dev == s->app_dev && st.st_ino == s->app_ino)
		return c;
	if (c >= 0)
		REAL(close)(c);
	return -1;
}

void relay_reset_app(struct relay_sess *s)
{
	if (s->flags & R_APP_GONE)
		return;
	/* Closing an AF_UNIX stream socket whose receive queue holds unread
	 * bytes sets ECONNRESET on its peer, reported once the peer's own
	 * queue is read: so the program gets every good byte, then
	 * ECONNRESET, then end of file.  If nothing of the program's is
	 * unread at our end, one byte is sent from a copy of the program's
	 * end to ours.  Where no copy can be had, it sees end of file. */
	int fd = sfy_ifd_lock_fd(s->ha), queued = 0;
	if (fd >= 0 && REAL(ioctl)(fd, FIONREAD, &queued) < 0)
		queued = 0;
	sfy_ifd_unlock();
	if (queued > 0)
		return;
	int c = app_end_copy(s, s->app_fd);
	if (c < 0) {
		int list[16];
		int n = sfy_fd_list(SFY_FD_RELAYED, list, 16);
		for (int i = 0; i < n && c < 0; i++)
			c = app_end_copy(s, list[i]);
	}
	if (c < 0)
		return;
	REAL(send)(c, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	REAL(close)(c);
}
