/* The program's waits: poll(), ppoll(), select(), pselect() and the
 * epoll_wait() family.  While no asynchronous handshake is under way they
 * are libc's own; otherwise a handshaking fd is waited on for what its
 * handshake needs, its events are taken (and the handshake stepped) rather
 * than shown, and the program sees it writable once the handshake is done,
 * or failed (POLLERR) once it failed.  A wait that would return nothing
 * but hidden events waits again for the rest of its time; the earliest
 * handshake deadline caps every wait so that handshake_timeout holds. */
#include "async.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sfy_fdtable.h"

/* glibc declares poll()'s array write-only (access attribute), though the
 * kernel reads its fds and events: reading them here is no bug. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* Remaining milliseconds until end (SFY_NO_DEADLINE: -1). */
static long long left_ms(long long end)
{
	if (end == SFY_NO_DEADLINE)
		return -1;
	long long left = end - sfy_now_ms();
	return left > 0 ? left : 0;
}

static long long end_after(long long timeout_ms)
{
	return timeout_ms < 0 ? SFY_NO_DEADLINE : sfy_now_ms() + timeout_ms;
}

/* The wait until the earlier of end and the first handshake deadline. */
static int capped_ms(long long end)
{
	long long until = sfy_async_deadline();
	long long left = left_ms(until < end ? until : end);
	return left > INT_MAX ? INT_MAX : (int)left;
}

#define SAVED_ON_STACK 256

/* After a plain wait: a handshake that began in another thread meanwhile
 * may have fds among these.  saved: the program's events. */
static int poll_after(struct pollfd *fds, nfds_t n, short *saved)
{
	int hidden = 0;
	for (nfds_t i = 0; i < n; i++)
		saved[i] = sfy_async_fd_involved(fds[i].fd) ? fds[i].events : (short)-1;
	return sfy_async_poll_finish(fds, n, saved, &hidden);
}

static int wait_poll(struct pollfd *fds, nfds_t n, long long timeout_ms, const sigset_t *mask, int plain)
{
	short stack[SAVED_ON_STACK], *saved = n <= SAVED_ON_STACK ? stack : malloc(n * sizeof *saved);
	if (!saved) {
		errno = ENOMEM;
		return -1;
	}
	long long end = end_after(timeout_ms);
	int rc;
	for (;;) {
		int ready = plain ? 0 : sfy_async_poll_prepare(fds, n, saved);
		int ms = ready ? 0 : plain ? (int)left_ms(end) : capped_ms(end);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		rc = mask ? REAL(ppoll)(fds, n, ms < 0 ? NULL : &ts, mask) : REAL(poll)(fds, n, ms);
		if (rc < 0) {
			int err = errno;
			for (nfds_t i = 0; !plain && i < n; i++)
				if (saved[i] != (short)-1) {
					fds[i].events = saved[i];
					if (fds[i].fd < 0) /* a held-back attempt's, skipped */
						fds[i].fd = -1 - fds[i].fd;
				}
			errno = err;
			break;
		}
		if (plain) {
			if (rc == 0 || !sfy_async_any())
				break;
			rc = poll_after(fds, n, saved);
		} else {
			sfy_async_expire();
			int hidden = 0;
			rc = sfy_async_poll_finish(fds, n, saved, &hidden);
		}
		plain = 0;
		if (rc > 0 || timeout_ms == 0 || left_ms(end) == 0)
			break;
	}
	if (saved != stack)
		free(saved);
	return rc;
}

static int poll_common(struct pollfd *fds, nfds_t n, long long timeout_ms, const sigset_t *mask)
{
	return wait_poll(fds, n, timeout_ms, mask, !fds || !sfy_async_poll_involved(fds, n));
}

static long long ts_ms(const struct timespec *ts)
{
	if (!ts)
		return -1;
	return (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
}

SFY_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (__builtin_expect(!sfy_async_any(), 1))
		return REAL(poll)(fds, n, timeout);
	return poll_common(fds, n, timeout < 0 ? -1 : timeout, NULL);
}

SFY_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (__builtin_expect(!sfy_async_any(), 1) || fdslen / sizeof *fds < n)
		return REAL(__poll_chk)(fds, n, timeout, fdslen); /* its own check reports an overflow */
	return poll_common(fds, n, timeout < 0 ? -1 : timeout, NULL);
}

SFY_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	if (__builtin_expect(!sfy_async_any(), 1))
		return REAL(ppoll)(fds, n, ts, mask);
	return poll_common(fds, n, ts_ms(ts), mask);
}

SFY_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask,
			   size_t fdslen)
{
	if (__builtin_expect(!sfy_async_any(), 1) || fdslen / sizeof *fds < n)
		return REAL(__ppoll_chk)(fds, n, ts, mask, fdslen);
	return poll_common(fds, n, ts_ms(ts), mask);
}

/* ------------------------------------------------------------ select */

/* Bit fd of a set the program sized for nfds (FD_ISSET's fortified form
 * refuses fds past FD_SETSIZE, which a program with a larger set uses). */
#define NBITS (8 * (int)sizeof(unsigned long))
static int bit(const fd_set *set, int fd)
{
	return set && (((const unsigned long *)set)[fd / NBITS] >> (fd % NBITS)) & 1;
}

static void set_bit(fd_set *set, int fd)
{
	((unsigned long *)set)[fd / NBITS] |= 1UL << (fd % NBITS);
}

static int select_involved(int nfds, const fd_set *r, const fd_set *w)
{
	for (int fd = 0; fd < nfds; fd++)
		if ((bit(r, fd) || bit(w, fd)) && sfy_async_fd_involved(fd))
			return 1;
	return 0;
}

static void clear_set(fd_set *set, int nfds)
{
	if (set)
		memset(set, 0, (size_t)((nfds + NBITS - 1) / NBITS) * sizeof(unsigned long));
}

/* select() as poll(), with the kernel's mapping of poll events to sets. */
static int select_by_poll(int nfds, fd_set *r, fd_set *w, fd_set *x, long long timeout_ms, const sigset_t *mask)
{
	struct pollfd *p = calloc((size_t)nfds, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	nfds_t n = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = (short)((bit(r, fd) ? POLLIN : 0) | (bit(w, fd) ? POLLOUT : 0) | (bit(x, fd) ? POLLPRI : 0));
		if (ev)
			p[n++] = (struct pollfd){.fd = fd, .events = ev};
	}
	int rc = wait_poll(p, n, timeout_ms, mask, 0);
	if (rc >= 0) {
		fd_set *sets[3] = {r, w, x};
		for (nfds_t i = 0; i < n; i++)
			if (p[i].revents & POLLNVAL) {
				free(p);
				errno = EBADF;
				return -1;
			}
		for (int k = 0; k < 3; k++)
			clear_set(sets[k], nfds);
		rc = 0;
		for (nfds_t i = 0; i < n; i++) {
			short ev = p[i].events, got = p[i].revents;
			if ((ev & POLLIN) && (got & (POLLIN | POLLHUP | POLLERR)))
				set_bit(r, p[i].fd), rc++;
			if ((ev & POLLOUT) && (got & (POLLOUT | POLLERR)))
				set_bit(w, p[i].fd), rc++;
			if ((ev & POLLPRI) && (got & POLLPRI))
				set_bit(x, p[i].fd), rc++;
		}
	}
	free(p);
	return rc;
}

SFY_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	if (__builtin_expect(!sfy_async_any(), 1) || nfds <= 0 || !select_involved(nfds, r, w))
		return REAL(select)(nfds, r, w, x, tv);
	long long ms = tv ? (long long)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000 : -1;
	long long end = end_after(ms);
	int rc = select_by_poll(nfds, r, w, x, ms, NULL);
	if (tv) { /* Linux reports the time left */
		long long left = left_ms(end);
		tv->tv_sec = left / 1000;
		tv->tv_usec = (left % 1000) * 1000;
	}
	return rc;
}

SFY_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts, const sigset_t *mask)
{
	if (__builtin_expect(!sfy_async_any(), 1) || nfds <= 0 || !select_involved(nfds, r, w))
		return REAL(pselect)(nfds, r, w, x, ts, mask);
	return select_by_poll(nfds, r, w, x, ts_ms(ts), mask);
}

/* ------------------------------------------------------------ epoll */

SFY_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int rc = sfy_async_epoll_ctl(epfd, op, fd, ev);
	if (rc == 0)
		sfy_fd_note_epoll(fd, epfd, op, ev); /* BIND's replay when accept() swaps the socket */
	return rc;
}

/* Handshakes ended during this wait gave the program its registrations
 * back, and the kernel has their events now: they go out with this call's
 * (node runs its overdue timers before its next wait, and a connection
 * that one of them was racing must not lose).  Events already among the
 * first n are not repeated. */
static int collect_ended(int epfd, struct epoll_event *ev, int n, int max, const sigset_t *mask)
{
	int more = REAL(epoll_pwait)(epfd, ev + n, max - n, 0, mask);
	if (more <= 0)
		return 0;
	more = sfy_async_epoll_filter(epfd, ev + n, more);
	int kept = 0;
	for (int i = n; i < n + more; i++) {
		int seen = 0;
		for (int j = 0; j < n && !seen; j++)
			seen = ev[j].data.u64 == ev[i].data.u64;
		if (!seen)
			ev[n + kept++] = ev[i];
	}
	return kept;
}

static int epoll_common(int epfd, struct epoll_event *ev, int max, long long timeout_ms, const sigset_t *mask)
{
	if (__builtin_expect(!__atomic_load_n(&sfy_async_used, __ATOMIC_ACQUIRE), 1)) {
		/* No handshake ever: libc's own wait, no clock read.  One may
		 * have begun in another thread meanwhile: then look again at
		 * the events (and wait on, for the program's whole time, should
		 * they all be the handshake's: a rare overshoot). */
		int rc = REAL(epoll_pwait)(epfd, ev, max, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms, mask);
		if (rc <= 0 || !__atomic_load_n(&sfy_async_used, __ATOMIC_ACQUIRE) ||
		    (rc = sfy_async_epoll_filter(epfd, ev, rc)) > 0 || timeout_ms == 0)
			return rc;
	}
	long long end = end_after(timeout_ms);
	int collect = 0;
	for (;;) {
		int used = __atomic_load_n(&sfy_async_used, __ATOMIC_ACQUIRE);
		int ms = collect ? 0 : used ? capped_ms(end) : (int)left_ms(end);
		unsigned settled = __atomic_load_n(&sfy_async_settled, __ATOMIC_ACQUIRE);
		int rc = REAL(epoll_pwait)(epfd, ev, max, ms, mask);
		/* A handshake may have begun in another thread during the wait:
		 * read the flag again before trusting the events. */
		if (rc < 0 || !__atomic_load_n(&sfy_async_used, __ATOMIC_ACQUIRE))
			return rc;
		sfy_async_expire();
		rc = sfy_async_epoll_filter(epfd, ev, rc);
		/* A handshake that ended here gave the program its registration
		 * back, and the kernel has its event now: one more look without
		 * waiting, even when the time is up (a timer of the program's
		 * must not run before the connection it was racing is seen). */
		int ended = __atomic_load_n(&sfy_async_settled, __ATOMIC_ACQUIRE) != settled;
		if (ended && rc > 0 && rc < max)
			rc += collect_ended(epfd, ev, rc, max, mask);
		int timeup = timeout_ms == 0 || left_ms(end) == 0;
		if (rc > 0 || (timeup && (collect || !ended)))
			return rc;
		collect = ended && !collect;
	}
}

SFY_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	return epoll_common(epfd, ev, max, timeout < 0 ? -1 : timeout, NULL);
}

SFY_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	return epoll_common(epfd, ev, max, timeout < 0 ? -1 : timeout, mask);
}

SFY_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			    const sigset_t *mask)
{
	if (__builtin_expect(!__atomic_load_n(&sfy_async_used, __ATOMIC_RELAXED), 1)) {
		if (!REAL(epoll_pwait2)) {
			errno = ENOSYS;
			return -1;
		}
		int rc = REAL(epoll_pwait2)(epfd, ev, max, ts, mask);
		if (rc <= 0 || !__atomic_load_n(&sfy_async_used, __ATOMIC_ACQUIRE))
			return rc;
		if ((rc = sfy_async_epoll_filter(epfd, ev, rc)) > 0 || (ts && !ts->tv_sec && !ts->tv_nsec))
			return rc;
	}
	return epoll_common(epfd, ev, max, ts_ms(ts), mask);
}
