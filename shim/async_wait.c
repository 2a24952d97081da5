/* The event driver in the program's waits (see shim/async.h): which fds a
 * poll() or select() waits on for a handshake instead of for the program,
 * what it shows the program afterwards, the program's epoll registrations
 * of handshaking fds, and the deadlines that cap every wait. */
#include "async_int.h"

#include <errno.h>
#include <limits.h>

#include "sfy_log.h"

long long sfy_async_deadline(void)
{
	long long first = SFY_NO_DEADLINE;
	pthread_mutex_lock(&ae_list_lock);
	for (struct entry *a = ae_active; a; a = a->next) {
		long long d = ae_due(a);
		int st = ae_state(a);
		if (ae_pending_state(st) && ae_mine(a) && d < first)
			first = d;
	}
	pthread_mutex_unlock(&ae_list_lock);
	return first;
}

/* Each due entry is stepped once a call (a held-back one whose sibling is
 * still under way becomes due again only at that sibling's end). */
#define EXPIRE_BATCH 64
void sfy_async_expire(void)
{
	ae_park_expire();
	long long now = sfy_now_ms();
	int fds[EXPIRE_BATCH], n = 0, err;
	pthread_mutex_lock(&ae_list_lock);
	for (struct entry *a = ae_active; a && n < EXPIRE_BATCH; a = a->next)
		if (ae_pending_state(ae_state(a)) && ae_mine(a) && ae_due(a) <= now)
			fds[n++] = a->fd;
	pthread_mutex_unlock(&ae_list_lock);
	for (int i = 0; i < n; i++) {
		struct entry *a = ae_busy(fds[i]);
		if (a)
			ae_touch(a, 0, &err, 0); /* fails it past its deadline, or lets it go */
	}
}

int sfy_async_fd_involved(int fd)
{
	return ae_busy(fd) != NULL;
}

/* ------------------------------------------------------------ waits */

/* What the program is to see of fd after a failure: an error and a hang-up,
 * readable and writable, as a socket whose connect() failed. */
static short failed_events(short events)
{
	return (short)(POLLERR | POLLHUP | (events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM)));
}

int sfy_async_poll_involved(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if (ae_busy(fds[i].fd))
			return 1;
	return 0;
}

#define NOT_INVOLVED ((short)-1)

int sfy_async_poll_prepare(struct pollfd *fds, nfds_t n, short *saved)
{
	int ready = 0;
	for (nfds_t i = 0; i < n; i++) {
		struct entry *a = ae_busy(fds[i].fd);
		saved[i] = NOT_INVOLVED;
		if (!a)
			continue;
		saved[i] = fds[i].events;
		pthread_mutex_lock(&a->lock);
		if (!ae_mine(a) || a->state == A_FAILED) {
			fds[i].events = 0;
			ready++;
		} else if (a->state == A_QUEUED) {
			fds[i].fd = -1 - fds[i].fd; /* not waited on: poll() skips negative fds */
		} else if (a->state != A_IDLE) {
			fds[i].events = ae_interest(a);
		}
		pthread_mutex_unlock(&a->lock);
	}
	return ready;
}

/* fd is connected through the proxy now: what a poll of its own shows (a
 * socket just connected is writable: no need to ask for that alone). */
static short now_ready(int fd, short events)
{
	if (!(events & ~(POLLOUT | POLLWRNORM)))
		return events;
	struct pollfd p = {.fd = fd, .events = events};
	return REAL(poll)(&p, 1, 0) == 1 ? p.revents : 0;
}

int sfy_async_poll_finish(struct pollfd *fds, nfds_t n, const short *saved, int *hidden)
{
	int count = 0, err;
	for (nfds_t i = 0; i < n; i++) {
		if (saved[i] == NOT_INVOLVED) {
			count += fds[i].revents != 0;
			continue;
		}
		short events = saved[i], got = fds[i].revents;
		fds[i].events = events;
		if (fds[i].fd < 0)
			fds[i].fd = -1 - fds[i].fd;
		struct entry *a = ae_get(fds[i].fd, 0);
		int st = ae_state(a);
		if (!got && ae_mine(a) && ae_pending_state(st) && sfy_now_ms() < ae_due(a)) {
			fds[i].revents = 0; /* nothing new for the handshake */
			continue;
		}
		st = ae_touch(a, 0, &err, got);
		if (st == SFY_ASYNC_FAILED)
			fds[i].revents = failed_events(events);
		else if (st == SFY_ASYNC_NONE)
			fds[i].revents = now_ready(fds[i].fd, events);
		else
			fds[i].revents = 0;
		if (got && !fds[i].revents)
			*hidden = 1;
		count += fds[i].revents != 0;
	}
	return count;
}

/* ------------------------------------------------------------ epoll */

/* Caller holds a->lock. */
static void note_reg(struct entry *a, int epfd, int op, const struct epoll_event *ev)
{
	if (sfy_epoll_reg_note(a->regs, &a->n_regs, epfd, op, ev) < 0 && ev)
		sfy_log(SFY_LOG_WARN, "fd %d: in more than %d epoll sets; the handshake cannot follow the others", a->fd,
			SFY_FD_MAX_EPOLL);
}

int sfy_async_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	/* Registrations of a socket that may yet connect through us are kept,
	 * so that its handshake can borrow them (nginx adds a socket before
	 * it connects). */
	int fresh = (sfy_sock_facts(fd) & (SFY_SOCK_TCP | SFY_SOCK_FRESH)) == (SFY_SOCK_TCP | SFY_SOCK_FRESH);
	struct entry *a = ae_get(fd, fresh);
	if (!a || (!fresh && ae_state(a) == A_IDLE))
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	pthread_mutex_lock(&a->lock);
	int rc;
	if (ae_pending_state(a->state) && ae_mine(a) && op != EPOLL_CTL_DEL && ev) {
		uint32_t want = a->state == A_QUEUED ? 0 : (uint32_t)ae_interest(a);
		struct epoll_event ours = {.events = want | EPOLLONESHOT, .data.u64 = MARK | (uint32_t)fd};
		rc = REAL(epoll_ctl)(epfd, op, fd, &ours);
	} else {
		rc = REAL(epoll_ctl)(epfd, op, fd, ev);
	}
	if (rc == 0)
		note_reg(a, epfd, op, ev);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

/* A failed handshake's registration on epfd with this data: the event
 * carries EPOLLERR, as a failed connect()'s does. */
static int failed_reg(int epfd, uint64_t data)
{
	int found = 0;
	pthread_mutex_lock(&ae_list_lock);
	for (struct entry *a = ae_active; a && !found; a = a->next)
		if (ae_state(a) == A_FAILED)
			for (int i = 0; i < a->n_regs && !found; i++)
				found = a->regs[i].epfd == epfd && a->regs[i].ev.data.u64 == data;
	pthread_mutex_unlock(&ae_list_lock);
	return found;
}

int sfy_async_epoll_filter(int epfd, struct epoll_event *ev, int n)
{
	int kept = 0, err;
	int failures = __atomic_load_n(&ae_failed_count, __ATOMIC_ACQUIRE) != 0;
	for (int i = 0; i < n; i++) {
		uint64_t d = ev[i].data.u64;
		if ((d & MARK_MASK) == MARK) {
			struct entry *a = ae_get((int)(uint32_t)d, 0);
			if (a && ae_mine(a))
				ae_touch(a, 0, &err, (short)ev[i].events); /* steps and re-arms, or restores */
			continue;                    /* never the program's to see */
		}
		if (failures && failed_reg(epfd, d))
			ev[i].events |= EPOLLERR;
		ev[kept++] = ev[i];
	}
	return kept;
}

/* ------------------------------------------------- blocking calls */

/* A blocking call on a handshaking fd (the program made it blocking
 * again): wait for the end, as the kernel waits out a connect, within the
 * handshake's deadline.  No lock is held while waiting. */
static void settle(struct entry *a)
{
	for (;;) {
		pthread_mutex_lock(&a->lock);
		int pending = ae_pending_state(a->state) && ae_mine(a);
		if (pending && a->state == A_QUEUED)
			ae_queued_go(a, 1); /* the program blocks on this one: let it go */
		if (pending && a->state != A_FAILED)
			ae_step(a, 0);
		pending = pending && (a->state == A_CONNECTING || a->state == A_HANDSHAKE);
		struct pollfd p = {.fd = a->fd, .events = pending ? ae_interest(a) : 0};
		long long left = pending ? a->deadline - sfy_now_ms() : 0;
		if (pending)
			ae_arm(a);
		pthread_mutex_unlock(&a->lock);
		if (!pending)
			return;
		if (REAL(poll)(&p, 1, left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
			return;
	}
}

/* fd's state, waiting for the handshake's end first when fd is blocking. */
static int touch_settled(int fd, int consume, int *err)
{
	int st = sfy_async_touch(fd, consume, err);
	if (st == SFY_ASYNC_PENDING && sfy_fd_nonblocking(fd) == 0) {
		settle(ae_get(fd, 0));
		st = sfy_async_touch(fd, consume, err);
	}
	return st;
}

int sfy_async_io_check(int fd)
{
	int err = 0, saved = errno;
	switch (touch_settled(fd, 1, &err)) {
	case SFY_ASYNC_PENDING:
		errno = EAGAIN; /* as on a socket whose connect() is under way */
		return -1;
	case SFY_ASYNC_FAILED:
		errno = err;
		return -1;
	default:
		errno = saved;
		return 0;
	}
}

int sfy_async_connect_again(int fd, int *rc)
{
	int err = 0;
	switch (touch_settled(fd, 1, &err)) {
	case SFY_ASYNC_PENDING:
		err = EALREADY;
		break;
	case SFY_ASYNC_FAILED:
		break;
	default:
		return 0;
	}
	errno = err;
	*rc = -1;
	return 1;
}
