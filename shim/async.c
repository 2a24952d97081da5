/* The event driver (see shim/async.h): one entry per fd number, kept for
 * the life of the process (so a pointer to one never dangles), each with
 * its own lock, held only around non-blocking calls.  Entries that are not
 * idle sit in one list, whose lock is never held while an entry's is
 * taken the other way round (entry, then list). */
#include "async.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sfy_fdtable.h"
#include "sfy_log.h"

enum { A_IDLE, A_CONNECTING, A_HANDSHAKE, A_FAILED };

struct job {
	struct sfy_engine e;
	struct sfy_proxy proxy; /* the engine's hop is proxy.hop */
	struct sfy_fdinfo info;
	long long t0;
};

struct entry {
	pthread_mutex_t lock; /* all zero is PTHREAD_MUTEX_INITIALIZER */
	int state;
	int err;          /* A_FAILED: what SO_ERROR reports, once */
	pid_t pid;        /* process that started it: a fork child leaves it alone */
	long long deadline;
	struct job *job;  /* while connecting or handshaking */
	int n_regs;       /* the program's epoll registrations of this fd */
	struct sfy_epoll_reg regs[SFY_FD_MAX_EPOLL];
	int fd;
	struct entry *prev, *next; /* the active list */
};

int sfy_async_count;
int sfy_async_used;
static int failed_count; /* entries in A_FAILED: epoll events to mark */

#define CHUNK 256
#define NCHUNKS (SFY_FD_MAX / CHUNK)
static struct entry *chunks[NCHUNKS];
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *active;
static pid_t my_pid;

/* Our own epoll data: no user-space pointer has these top bits. */
#define MARK 0xFEEDC0DE00000000ULL
#define MARK_MASK 0xFFFFFFFF00000000ULL

static struct entry *entry_for(int fd, int create)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return NULL;
	struct entry **chunk = &chunks[fd / CHUNK];
	struct entry *c = __atomic_load_n(chunk, __ATOMIC_ACQUIRE);
	if (!c && create) {
		pthread_mutex_lock(&list_lock);
		if (!(c = *chunk)) {
			void *m = mmap(NULL, CHUNK * sizeof *c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m != MAP_FAILED)
				__atomic_store_n(chunk, c = m, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&list_lock);
	}
	if (!c)
		return NULL;
	c[fd % CHUNK].fd = fd;
	return &c[fd % CHUNK];
}

static int state_of(const struct entry *a)
{
	return __atomic_load_n(&a->state, __ATOMIC_ACQUIRE);
}

/* Caller holds a->lock. */
static void set_state(struct entry *a, int state)
{
	int was = a->state;
	if (was == state)
		return;
	__atomic_store_n(&a->state, state, __ATOMIC_RELEASE);
	if ((was == A_FAILED) != (state == A_FAILED))
		__atomic_add_fetch(&failed_count, state == A_FAILED ? 1 : -1, __ATOMIC_RELEASE);
	if ((was == A_IDLE) == (state == A_IDLE))
		return;
	pthread_mutex_lock(&list_lock);
	if (state != A_IDLE) {
		a->prev = NULL;
		a->next = active;
		if (active)
			active->prev = a;
		active = a;
		__atomic_add_fetch(&sfy_async_count, 1, __ATOMIC_RELEASE);
	} else {
		if (a->prev)
			a->prev->next = a->next;
		else
			active = a->next;
		if (a->next)
			a->next->prev = a->prev;
		__atomic_sub_fetch(&sfy_async_count, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&list_lock);
}

static short interest(const struct entry *a)
{
	const uint8_t *out;
	size_t len, max;
	if (a->state != A_HANDSHAKE)
		return POLLOUT;
	return sfy_engine_want(&a->job->e, &out, &len, &max) == SFY_WANT_WRITE ? POLLOUT : POLLIN;
}

/* The kernel's registrations: the engine's interest while handshaking,
 * the program's own once done (re-arming an edge-triggered one makes the
 * kernel report a ready socket afresh: the program's edge). */
static void arm(struct entry *a)
{
	for (int i = 0; i < a->n_regs; i++) {
		struct epoll_event ev = a->regs[i].ev;
		if (a->state == A_CONNECTING || a->state == A_HANDSHAKE) {
			ev.events = (uint32_t)interest(a) | EPOLLONESHOT;
			ev.data.u64 = MARK | (uint32_t)a->fd;
		}
		if (REAL(epoll_ctl)(a->regs[i].epfd, EPOLL_CTL_MOD, a->fd, &ev) < 0 && errno == ENOENT)
			a->regs[i--] = a->regs[--a->n_regs]; /* gone behind our back */
	}
}

/* Caller holds a->lock. */
static void finish(struct entry *a, int err)
{
	struct job *j = a->job;
	sfy_log_outcome(&j->proxy, &j->e.dst, &j->e, err, j->t0);
	if (err) {
		if (a->state == A_HANDSHAKE) /* the proxy must not keep a half-set-up session */
			shutdown(a->fd, SHUT_RDWR);
		a->err = err;
		set_state(a, A_FAILED);
	} else {
		sfy_connect_established(a->fd, &j->info, &j->e.reply, &j->e.dst);
		set_state(a, A_IDLE);
	}
	a->job = NULL;
	free(j);
	arm(a);
}

static void fail(struct entry *a, int err, const char *step)
{
	sfy_engine_fail(&a->job->e, err, step);
	finish(a, a->job->e.err);
}

/* The TCP connect to the proxy: 1 done, 0 not yet, -1 failed.  seen:
 * what a wait of the program's just reported for POLLOUT (0: unknown). */
static int connected(struct entry *a, short seen)
{
	struct pollfd p = {.fd = a->fd, .events = POLLOUT, .revents = seen};
	if (!seen && REAL(poll)(&p, 1, 0) == 0)
		return 0;
	if (!(p.revents & (POLLERR | POLLHUP)))
		return 1;
	int err = 0;
	socklen_t len = sizeof err;
	if (REAL(getsockopt)(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	fail(a, err ? err : ECONNREFUSED, NULL);
	return -1;
}

/* Move the exchange as far as the socket lets it, without waiting: after
 * a write, the answer cannot be there yet, so the next read waits for the
 * program's next wait (no recv() spent on EAGAIN).  seen: the events a
 * wait reported (0: unknown).  Caller holds a->lock; a is connecting or
 * handshaking. */
static void step(struct entry *a, short seen)
{
	int wrote = 0;
	if (sfy_now_ms() >= a->deadline) {
		fail(a, ETIMEDOUT, NULL);
		return;
	}
	if (a->state == A_CONNECTING) {
		if (connected(a, seen & (POLLOUT | POLLERR | POLLHUP)) <= 0)
			return;
		__atomic_store_n(&a->deadline, sfy_deadline_after(sfy_cfg.handshake_timeout_ms), __ATOMIC_RELAXED);
		a->state = A_HANDSHAKE; /* still active: no list change */
		a->job->e.step = "greeting";
	}
	struct sfy_engine *e = &a->job->e;
	for (;;) {
		const uint8_t *out;
		size_t len, max;
		uint8_t buf[SFY_ENG_IN_MAX];
		ssize_t n;
		switch (sfy_engine_want(e, &out, &len, &max)) {
		case SFY_WANT_WRITE:
			n = REAL(send)(a->fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sfy_engine_sent(e, (size_t)n), wrote = 1;
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			else if (errno != EINTR)
				sfy_engine_fail(e, errno, NULL);
			break;
		case SFY_WANT_READ:
			if (wrote)
				return;
			n = REAL(recv)(a->fd, buf, max, MSG_DONTWAIT);
			if (n > 0)
				sfy_engine_feed(e, buf, (size_t)n);
			else if (n == 0)
				sfy_engine_eof(e);
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			else if (errno != EINTR)
				sfy_engine_fail(e, errno, NULL);
			break;
		case SFY_WANT_DONE:
			finish(a, 0);
			return;
		case SFY_WANT_FAILED:
			finish(a, e->err);
			return;
		}
	}
}

static int mine(const struct entry *a)
{
	return a->pid == my_pid;
}

int sfy_async_begin(int fd, const struct sfy_proxy *p, const struct sfy_engine *e, const struct sfy_fdinfo *info,
		    int is_connected, long long t0)
{
	struct entry *a = entry_for(fd, 1);
	struct job *j = a ? malloc(sizeof *j) : NULL;
	if (!j) {
		free(j);
		errno = ENOBUFS;
		return -1;
	}
	j->e = *e;
	j->proxy = *p;
	j->e.hop = &j->proxy.hop;
	j->info = *info;
	j->t0 = t0;
	__atomic_store_n(&sfy_async_used, 1, __ATOMIC_RELAXED);
	if (!my_pid)
		my_pid = getpid();
	pthread_mutex_lock(&a->lock);
	a->pid = my_pid;
	a->job = j;
	a->err = 0;
	__atomic_store_n(&a->deadline, sfy_deadline_after(sfy_cfg.connect_timeout_ms), __ATOMIC_RELAXED);
	set_state(a, A_CONNECTING);
	if (is_connected)
		step(a, POLLOUT);
	if (state_of(a) != A_IDLE && state_of(a) != A_FAILED)
		arm(a);
	pthread_mutex_unlock(&a->lock);
	errno = EINPROGRESS;
	return -1;
}

static void forget(struct entry *a)
{
	pthread_mutex_lock(&a->lock);
	if (a->job) {
		free(a->job);
		a->job = NULL;
	}
	a->n_regs = 0;
	set_state(a, A_IDLE);
	pthread_mutex_unlock(&a->lock);
}

/* a's state after stepping it; caller holds nothing. */
static int touch_entry(struct entry *a, int consume, int *err, short seen)
{
	if (!mine(a)) { /* a fork child: the parent's handshake, not ours to move */
		*err = ECONNABORTED;
		if (consume)
			forget(a);
		return SFY_ASYNC_FAILED;
	}
	pthread_mutex_lock(&a->lock);
	if (a->state == A_CONNECTING || a->state == A_HANDSHAKE) {
		step(a, seen);
		if (a->state == A_CONNECTING || a->state == A_HANDSHAKE)
			arm(a);
	}
	int st = a->state, rc = SFY_ASYNC_NONE;
	if (st == A_CONNECTING || st == A_HANDSHAKE) {
		rc = SFY_ASYNC_PENDING;
	} else if (st == A_FAILED) {
		*err = a->err;
		rc = SFY_ASYNC_FAILED;
		if (consume)
			set_state(a, A_IDLE);
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static struct entry *busy_entry(int fd)
{
	struct entry *a = entry_for(fd, 0);
	return a && state_of(a) != A_IDLE ? a : NULL;
}

int sfy_async_touch(int fd, int consume, int *err)
{
	struct entry *a = busy_entry(fd);
	return a ? touch_entry(a, consume, err, 0) : SFY_ASYNC_NONE;
}

/* A blocking call on a handshaking fd (the program made it blocking
 * again): wait for the end, as the kernel waits out a connect, within the
 * handshake's deadline.  No lock is held while waiting. */
static void settle(struct entry *a)
{
	for (;;) {
		pthread_mutex_lock(&a->lock);
		int pending = (a->state == A_CONNECTING || a->state == A_HANDSHAKE) && mine(a);
		if (pending)
			step(a, 0);
		pending = pending && (a->state == A_CONNECTING || a->state == A_HANDSHAKE);
		struct pollfd p = {.fd = a->fd, .events = pending ? interest(a) : 0};
		long long left = pending ? a->deadline - sfy_now_ms() : 0;
		if (pending)
			arm(a);
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
		settle(entry_for(fd, 0));
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

void sfy_async_closed(int fd)
{
	struct entry *a = entry_for(fd, 0);
	if (!a || (state_of(a) == A_IDLE && !__atomic_load_n(&a->n_regs, __ATOMIC_RELAXED)))
		return;
	/* getpid(), not the pid noted at fork: a vfork() child shares our
	 * memory, and its close() must leave the parent's handshake be.  An
	 * entry a fork() child inherited is its own copy to drop. */
	if (!a->pid || a->pid == getpid() || a->pid != my_pid)
		forget(a);
}

void sfy_async_closed_range(unsigned first, unsigned last)
{
	for (;;) {
		int fd = -1;
		pthread_mutex_lock(&list_lock);
		for (struct entry *a = active; a && fd < 0; a = a->next)
			if ((unsigned)a->fd >= first && (unsigned)a->fd <= last && a->pid == getpid())
				fd = a->fd;
		pthread_mutex_unlock(&list_lock);
		if (fd < 0)
			return;
		forget(entry_for(fd, 0));
	}
}

void sfy_async_new_socket(int fd)
{
	struct entry *a = entry_for(fd, 0);
	if (a && (state_of(a) != A_IDLE || __atomic_load_n(&a->n_regs, __ATOMIC_RELAXED)))
		forget(a);
}

long long sfy_async_deadline(void)
{
	long long first = SFY_NO_DEADLINE;
	pthread_mutex_lock(&list_lock);
	for (struct entry *a = active; a; a = a->next) {
		long long d = __atomic_load_n(&a->deadline, __ATOMIC_RELAXED);
		int st = state_of(a);
		if ((st == A_CONNECTING || st == A_HANDSHAKE) && a->pid == my_pid && d < first)
			first = d;
	}
	pthread_mutex_unlock(&list_lock);
	return first;
}

void sfy_async_expire(void)
{
	long long now = sfy_now_ms();
	for (;;) {
		struct entry *late = NULL;
		pthread_mutex_lock(&list_lock);
		for (struct entry *a = active; a && !late; a = a->next) {
			int st = state_of(a);
			if ((st == A_CONNECTING || st == A_HANDSHAKE) && a->pid == my_pid &&
			    __atomic_load_n(&a->deadline, __ATOMIC_RELAXED) <= now)
				late = a;
		}
		pthread_mutex_unlock(&list_lock);
		if (!late)
			return;
		int err;
		touch_entry(late, 0, &err, 0); /* step() fails it: past its deadline */
	}
}

int sfy_async_fd_involved(int fd)
{
	return busy_entry(fd) != NULL;
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
		if (busy_entry(fds[i].fd))
			return 1;
	return 0;
}

#define NOT_INVOLVED ((short)-1)

int sfy_async_poll_prepare(struct pollfd *fds, nfds_t n, short *saved)
{
	int ready = 0;
	for (nfds_t i = 0; i < n; i++) {
		struct entry *a = busy_entry(fds[i].fd);
		saved[i] = NOT_INVOLVED;
		if (!a)
			continue;
		saved[i] = fds[i].events;
		pthread_mutex_lock(&a->lock);
		if (!mine(a) || a->state == A_FAILED) {
			fds[i].events = 0;
			ready++;
		} else if (a->state != A_IDLE) {
			fds[i].events = interest(a);
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
		struct entry *a = entry_for(fds[i].fd, 0);
		int st = state_of(a);
		if (!got && mine(a) && (st == A_CONNECTING || st == A_HANDSHAKE) &&
		    sfy_now_ms() < __atomic_load_n(&a->deadline, __ATOMIC_RELAXED)) {
			fds[i].revents = 0; /* nothing new for the handshake */
			continue;
		}
		st = touch_entry(a, 0, &err, got);
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
	int i = 0;
	while (i < a->n_regs && a->regs[i].epfd != epfd)
		i++;
	if (op == EPOLL_CTL_DEL) {
		if (i < a->n_regs)
			a->regs[i] = a->regs[--a->n_regs];
	} else if (ev && i < SFY_FD_MAX_EPOLL) {
		a->regs[i].epfd = epfd;
		a->regs[i].ev = *ev;
		if (i == a->n_regs)
			a->n_regs++;
	} else {
		sfy_log(SFY_LOG_WARN, "fd %d: in more than %d epoll sets; the handshake cannot follow the others", a->fd,
			SFY_FD_MAX_EPOLL);
	}
}

int sfy_async_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	/* Registrations of a socket that may yet connect through us are kept,
	 * so that its handshake can borrow them (nginx adds a socket before
	 * it connects). */
	int fresh = (sfy_sock_facts(fd) & (SFY_SOCK_TCP | SFY_SOCK_FRESH)) == (SFY_SOCK_TCP | SFY_SOCK_FRESH);
	struct entry *a = entry_for(fd, fresh);
	if (!a || (!fresh && state_of(a) == A_IDLE))
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	pthread_mutex_lock(&a->lock);
	int rc;
	if ((a->state == A_CONNECTING || a->state == A_HANDSHAKE) && mine(a) && op != EPOLL_CTL_DEL && ev) {
		struct epoll_event ours = {.events = (uint32_t)interest(a) | EPOLLONESHOT, .data.u64 = MARK | (uint32_t)fd};
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
	pthread_mutex_lock(&list_lock);
	for (struct entry *a = active; a && !found; a = a->next)
		if (state_of(a) == A_FAILED)
			for (int i = 0; i < a->n_regs && !found; i++)
				found = a->regs[i].epfd == epfd && a->regs[i].ev.data.u64 == data;
	pthread_mutex_unlock(&list_lock);
	return found;
}

int sfy_async_epoll_filter(int epfd, struct epoll_event *ev, int n)
{
	int kept = 0, err;
	int failures = __atomic_load_n(&failed_count, __ATOMIC_ACQUIRE) != 0;
	for (int i = 0; i < n; i++) {
		uint64_t d = ev[i].data.u64;
		if ((d & MARK_MASK) == MARK) {
			struct entry *a = entry_for((int)(uint32_t)d, 0);
			if (a && mine(a))
				touch_entry(a, 0, &err, (short)ev[i].events); /* steps and re-arms, or restores */
			continue;                    /* never the program's to see */
		}
		if (failures && failed_reg(epfd, d))
			ev[i].events |= EPOLLERR;
		ev[kept++] = ev[i];
	}
	return kept;
}

/* ------------------------------------------------------------ fork */

void sfy_async_fork_prepare(void)
{
	pthread_mutex_lock(&list_lock);
}

void sfy_async_fork_parent(void)
{
	pthread_mutex_unlock(&list_lock);
}

/* The child owns copies of the parent's entries, whose locks another
 * thread may have held at the fork: fresh locks, and the handshakes stay
 * the parent's (see mine()). */
void sfy_async_fork_child(void)
{
	my_pid = getpid();
	for (struct entry *a = active; a; a = a->next)
		pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_unlock(&list_lock);
}
