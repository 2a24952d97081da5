/* The event driver (see shim/async.h): one entry per fd number, kept for
 * the life of the process (so a pointer to one never dangles), each with
 * its own lock, held only around non-blocking calls.  Entries that are not
 * idle sit in one list, whose lock is never held while an entry's is
 * taken the other way round (entry, then list). */
#include "async_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gss_conn.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"

int sfy_async_count;
int sfy_async_used;
unsigned sfy_async_settled;
int ae_failed_count; /* entries in A_FAILED: epoll events to mark */

#define CHUNK 256
#define NCHUNKS (SFY_FD_MAX / CHUNK)
static struct entry *chunks[NCHUNKS];
pthread_mutex_t ae_list_lock = PTHREAD_MUTEX_INITIALIZER;
struct entry *ae_active;
static pid_t my_pid;


struct entry *ae_get(int fd, int create)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return NULL;
	struct entry **chunk = &chunks[fd / CHUNK];
	struct entry *c = __atomic_load_n(chunk, __ATOMIC_ACQUIRE);
	if (!c && create) {
		pthread_mutex_lock(&ae_list_lock);
		if (!(c = *chunk)) {
			void *m = mmap(NULL, CHUNK * sizeof *c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m != MAP_FAILED) {
				c = m;
				for (int i = 0; i < CHUNK; i++)
					c[i].fd = (fd / CHUNK) * CHUNK + i;
				__atomic_store_n(chunk, c, __ATOMIC_RELEASE);
			} else {
				c = NULL;
			}
		}
		pthread_mutex_unlock(&ae_list_lock);
	}
	return c ? &c[fd % CHUNK] : NULL;
}

int ae_state(const struct entry *a)
{
	return __atomic_load_n(&a->state, __ATOMIC_ACQUIRE);
}

/* Caller holds a->lock. */
static void ae_set_state(struct entry *a, int state)
{
	int was = a->state;
	if (was == state)
		return;
	__atomic_store_n(&a->state, state, __ATOMIC_RELEASE);
	if ((was == A_FAILED) != (state == A_FAILED))
		__atomic_add_fetch(&ae_failed_count, state == A_FAILED ? 1 : -1, __ATOMIC_RELEASE);
	if ((was == A_IDLE) == (state == A_IDLE))
		return;
	pthread_mutex_lock(&ae_list_lock);
	if (state != A_IDLE) {
		a->prev = NULL;
		a->next = ae_active;
		if (ae_active)
			ae_active->prev = a;
		ae_active = a;
		__atomic_add_fetch(&sfy_async_count, 1, __ATOMIC_RELEASE);
	} else {
		if (a->prev)
			a->prev->next = a->next;
		else
			ae_active = a->next;
		if (a->next)
			a->next->prev = a->prev;
		__atomic_sub_fetch(&sfy_async_count, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&ae_list_lock);
}

short ae_interest(const struct entry *a)
{
	const uint8_t *out;
	size_t len, max;
	if (a->state != A_HANDSHAKE)
		return POLLOUT;
	return sfy_chain_want(&a->job->c, &out, &len, &max) == SFY_WANT_WRITE ? POLLOUT : POLLIN;
}

/* The kernel's registrations: the engine's interest while handshaking,
 * the program's own once done (re-arming an edge-triggered one makes the
 * kernel report a ready socket afresh: the program's edge). */
void ae_arm(struct entry *a)
{
	for (int i = 0; i < a->n_regs; i++) {
		struct epoll_event ev = a->regs[i].ev;
		if (a->state == A_CONNECTING || a->state == A_HANDSHAKE || a->state == A_QUEUED) {
			/* Held back: no events (the unconnected socket's hang-up
			 * comes once, and is taken). */
			ev.events = (a->state == A_QUEUED ? 0 : (uint32_t)ae_interest(a)) | EPOLLONESHOT;
			ev.data.u64 = MARK | (uint32_t)a->fd;
		}
		int op = a->regs_stale ? EPOLL_CTL_ADD : EPOLL_CTL_MOD; /* a new socket behind the number */
		if (REAL(epoll_ctl)(a->regs[i].epfd, op, a->fd, &ev) < 0 && errno == ENOENT)
			a->regs[i--] = a->regs[--a->n_regs]; /* gone behind our back */
	}
	a->regs_stale = 0;
}

/* The happy-eyeballs pair (see sfy_async_queue): same name, other family. */
static int siblings(const struct job *x, const struct job *y)
{
	return x && y && x->fam != y->fam && x->c.dst.atyp == S5_ATYP_DOMAIN && y->c.dst.atyp == S5_ATYP_DOMAIN &&
	       strcmp(x->c.dst.u.domain.name, y->c.dst.u.domain.name) == 0;
}

/* a's attempt ended (or was dropped): its held-back siblings may go, at
 * once after a failure, after a grace second after a success. */
static void wake_siblings(const struct entry *a, long long when)
{
	pthread_mutex_lock(&ae_list_lock);
	for (struct entry *q = ae_active; q; q = q->next)
		if (q != a && ae_state(q) == A_QUEUED && ae_mine(q) && siblings(q->job, a->job))
			__atomic_store_n(&q->wake, when, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ae_list_lock);
}

/* An attempt of a's name through the other family is under way.  (q->job
 * is read under the list lock: a job is freed only after its entry left
 * the list or became queued-never, see finish.) */
static int sibling_pending(const struct entry *a)
{
	int found = 0;
	pthread_mutex_lock(&ae_list_lock);
	for (struct entry *q = ae_active; q && !found; q = q->next) {
		int st = ae_state(q);
		found = q != a && (st == A_CONNECTING || st == A_HANDSHAKE) && ae_mine(q) && siblings(q->job, a->job);
	}
	pthread_mutex_unlock(&ae_list_lock);
	return found;
}

/* Other entries' jobs are read under the list lock (siblings): one is
 * taken away under it too.  Caller holds a->lock. */
static struct job *take_job(struct entry *a)
{
	pthread_mutex_lock(&ae_list_lock);
	struct job *j = a->job;
	a->job = NULL;
	pthread_mutex_unlock(&ae_list_lock);
	return j;
}

void ae_job_free(struct job *j)
{
	if (!j)
		return;
	sfy_engine_release(&j->c.e);
	free(j);
}

static void drop_job(struct entry *a)
{
	ae_job_free(take_job(a));
}

/* Caller holds a->lock; a is idle or held back. */
static void take_over(struct entry *a, const struct ae_held *h)
{
	pthread_mutex_lock(&ae_list_lock);
	struct job *old = a->job;
	a->job = h->job;
	pthread_mutex_unlock(&ae_list_lock);
	ae_job_free(old);
	a->err = 0;
	__atomic_store_n(&a->deadline, h->deadline, __ATOMIC_RELAXED);
	a->regs_stale = 1;
	ae_set_state(a, h->state);
	ae_arm(a);
	sfy_log(SFY_LOG_DEBUG, "fd %d: took over the handshake of an attempt the program closed", a->fd);
}

/* Caller holds a->lock. */
static void finish(struct entry *a, int err)
{
	struct job *j = a->job;
	__atomic_add_fetch(&sfy_async_settled, 1, __ATOMIC_RELEASE);
	wake_siblings(a, err ? sfy_now_ms() : sfy_now_ms() + 1000);
	sfy_log_outcome(&j->proxy, &j->c.dst, &j->c, err, j->t0);
	sfy_route_outcome(j->proxy.chain, &j->c, err);
	if (err) {
		if (a->state == A_HANDSHAKE) /* the proxy must not keep a half-set-up session */
			shutdown(a->fd, SHUT_RDWR);
		a->err = err;
		ae_set_state(a, A_FAILED);
	} else {
		sfy_connect_established(a->fd, &j->info, &j->c.e.reply, &j->c.dst);
		struct sfy_gss *g = sfy_engine_take_gss(&j->c.e);
		if (g && sfy_gss_relay(a->fd, g, &j->info, a->regs, a->n_regs) < 0) {
			/* No plain byte may pass unprotected: the connection fails. */
			a->err = errno;
			shutdown(a->fd, SHUT_RDWR);
			ae_set_state(a, A_FAILED);
		} else {
			ae_set_state(a, A_IDLE);
		}
	}
	drop_job(a);
	ae_arm(a);
	/* Given back: a connected socket's registrations are the program's
	 * business from now on (and an idle entry with none costs close()
	 * nothing). */
	if (!err)
		a->n_regs = 0;
}

static void fail(struct entry *a, int err, const char *step)
{
	sfy_chain_fail(&a->job->c, err, step);
	finish(a, a->job->c.e.err);
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

/* Let a held-back attempt go: its TCP connect to the proxy starts now. */
static void start_queued(struct entry *a)
{
	struct job *j = a->job;
	struct ae_held h;
	if (ae_adopt(a->fd, a->pid, &j->proxy, &j->c.dst, &h)) {
		h.job->info = j->info;
		h.job->fam = j->fam;
		take_over(a, &h);
		return;
	}
	__atomic_store_n(&a->deadline, sfy_deadline_after(sfy_cfg.connect_timeout_ms), __ATOMIC_RELAXED);
	int rc = REAL(connect)(a->fd, (struct sockaddr *)&j->proxy_sa, j->proxy_salen);
	if (rc < 0 && errno != EINPROGRESS) {
		fail(a, errno, NULL);
		return;
	}
	a->state = A_CONNECTING; /* still active: no list change */
	ae_arm(a);
}

/* A held-back attempt: go once no sibling is under way and its wake time
 * came (or at once when force: the program blocks on it). */
int ae_queued_go(struct entry *a, int force)
{
	if (!force && sibling_pending(a)) {
		__atomic_store_n(&a->wake, SFY_NO_DEADLINE, __ATOMIC_RELAXED);
		return 0;
	}
	long long wake = __atomic_load_n(&a->wake, __ATOMIC_RELAXED);
	if (!force && wake != SFY_NO_DEADLINE && sfy_now_ms() < wake)
		return 0;
	start_queued(a);
	return a->state == A_CONNECTING || a->state == A_HANDSHAKE;
}

/* Move the exchange as far as the socket lets it, without waiting: after
 * a write, the answer cannot be there yet, so the next read waits for the
 * program's next wait (no recv() spent on EAGAIN).  seen: the events a
 * wait reported (0: unknown).  Caller holds a->lock; a is connecting,
 * handshaking or held back. */
void ae_step(struct entry *a, short seen)
{
	int wrote = 0;
	if (a->state == A_QUEUED && !ae_queued_go(a, 0))
		return;
	if (sfy_now_ms() >= a->deadline) {
		fail(a, ETIMEDOUT, NULL);
		return;
	}
	if (a->state == A_CONNECTING) {
		if (connected(a, seen & (POLLOUT | POLLERR | POLLHUP)) <= 0)
			return;
		__atomic_store_n(&a->deadline, sfy_deadline_after(sfy_cfg.handshake_timeout_ms), __ATOMIC_RELAXED);
		a->state = A_HANDSHAKE; /* still ae_active: no list change */
		a->job->c.e.step = sfy_chain_first_step(&a->job->c);
	}
	struct sfy_chain_engine *e = &a->job->c;
	for (;;) {
		const uint8_t *out;
		size_t len, max;
		uint8_t buf[SFY_ENG_IN_MAX];
		ssize_t n;
		switch (sfy_chain_want(e, &out, &len, &max)) {
		case SFY_WANT_WRITE:
			n = REAL(send)(a->fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sfy_chain_sent(e, (size_t)n), wrote = 1;
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			else if (errno != EINTR)
				sfy_chain_fail(e, errno, NULL);
			break;
		case SFY_WANT_READ:
			if (wrote)
				return;
			n = REAL(recv)(a->fd, buf, max, MSG_DONTWAIT);
			if (n > 0)
				sfy_chain_feed(e, buf, (size_t)n);
			else if (n == 0)
				sfy_chain_eof(e);
			else if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			else if (errno != EINTR)
				sfy_chain_fail(e, errno, NULL);
			break;
		case SFY_WANT_DONE:
			finish(a, 0);
			return;
		case SFY_WANT_FAILED:
			finish(a, e->e.err);
			return;
		}
	}
}

int ae_mine(const struct entry *a)
{
	return a->pid == my_pid;
}

/* The family of the address the program connected to (a v4-mapped one
 * counts as IPv4). */
static int fake_family(const struct sfy_fdinfo *info)
{
	struct sockaddr_in v4;
	return sfy_unmap_v4((const struct sockaddr *)&info->peer, &v4) ? AF_INET : info->peer.ss_family;
}

static void job_init(struct job *j, const struct sfy_proxy *p, const struct sfy_chain_engine *c,
		     const struct sfy_fdinfo *info, long long t0)
{
	memset(j, 0, sizeof *j);
	j->c = *c; /* its hops live in sfy_cfg, not in the caller's frame */
	j->proxy = *p;
	j->info = *info;
	j->t0 = t0;
	j->fam = fake_family(info);
}

int sfy_async_begin(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info,
		    int is_connected, long long t0)
{
	struct entry *a = ae_get(fd, 1);
	struct job *j = a ? malloc(sizeof *j) : NULL;
	if (!j) {
		errno = ENOBUFS;
		return -1;
	}
	job_init(j, p, c, info, t0);
	__atomic_store_n(&sfy_async_used, 1, __ATOMIC_RELAXED);
	if (!my_pid)
		my_pid = getpid();
	pthread_mutex_lock(&a->lock);
	a->pid = my_pid;
	a->job = j;
	a->err = 0;
	__atomic_store_n(&a->deadline, sfy_deadline_after(sfy_cfg.connect_timeout_ms), __ATOMIC_RELAXED);
	ae_set_state(a, A_CONNECTING);
	if (is_connected)
		ae_step(a, POLLOUT);
	if (ae_state(a) != A_IDLE && ae_state(a) != A_FAILED)
		ae_arm(a);
	pthread_mutex_unlock(&a->lock);
	errno = EINPROGRESS;
	return -1;
}

static void forget(struct entry *a)
{
	pthread_mutex_lock(&a->lock);
	if (a->job && (a->state == A_CONNECTING || a->state == A_HANDSHAKE))
		wake_siblings(a, sfy_now_ms()); /* closed before it ended: the other may go */
	drop_job(a);
	a->n_regs = 0;
	ae_set_state(a, A_IDLE);
	pthread_mutex_unlock(&a->lock);
}

int sfy_async_adopt(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info)
{
	struct ae_held h;
	if (!my_pid || !ae_adopt(fd, my_pid, p, &c->dst, &h))
		return 0;
	struct entry *a = ae_get(fd, 1);
	if (!a) { /* fd holds a half-done exchange now: it must not look usable */
		shutdown(fd, SHUT_RDWR);
		ae_job_free(h.job);
		errno = ENOBUFS;
		return -1;
	}
	h.job->info = *info;
	h.job->fam = fake_family(info);
	pthread_mutex_lock(&a->lock);
	a->pid = my_pid;
	take_over(a, &h);
	pthread_mutex_unlock(&a->lock);
	errno = EINPROGRESS;
	return -1;
}

int sfy_async_queue(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info,
		    const struct sockaddr *proxy, socklen_t proxy_len, long long t0)
{
	if (c->dst.atyp != S5_ATYP_DOMAIN || !__atomic_load_n(&sfy_async_used, __ATOMIC_RELAXED))
		return 0;
	/* Only the second address a happy-eyeballs client tries, the IPv6 one
	 * (AF_UNSPEC answers IPv4 first), waits; a first attempt never does. */
	struct job probe = {.c.dst = c->dst, .fam = fake_family(info)};
	if (probe.fam != AF_INET6)
		return 0;
	struct entry self = {.fd = -1, .job = &probe, .pid = my_pid};
	if (!my_pid || !sibling_pending(&self))
		return 0;
	struct entry *a = ae_get(fd, 1);
	struct job *j = a ? malloc(sizeof *j) : NULL;
	if (!j)
		return 0; /* connect as usual */
	job_init(j, p, c, info, t0);
	memcpy(&j->proxy_sa, proxy, proxy_len);
	j->proxy_salen = proxy_len;
	pthread_mutex_lock(&a->lock);
	a->pid = my_pid;
	a->job = j;
	a->err = 0;
	__atomic_store_n(&a->deadline, SFY_NO_DEADLINE, __ATOMIC_RELAXED);
	__atomic_store_n(&a->wake, SFY_NO_DEADLINE, __ATOMIC_RELAXED);
	ae_set_state(a, A_QUEUED);
	ae_arm(a);
	pthread_mutex_unlock(&a->lock);
	sfy_log(SFY_LOG_DEBUG, "fd %d: second attempt for %s held back while the first is under way", fd,
		c->dst.u.domain.name);
	errno = EINPROGRESS;
	return -1;
}

/* a's state after stepping it; caller holds nothing. */
int ae_touch(struct entry *a, int consume, int *err, short seen)
{
	if (!ae_mine(a)) { /* a fork child: the parent's handshake, not ours to move */
		*err = ECONNABORTED;
		if (consume)
			forget(a);
		return SFY_ASYNC_FAILED;
	}
	pthread_mutex_lock(&a->lock);
	if (ae_pending_state(a->state)) {
		ae_step(a, seen);
		if (a->state == A_CONNECTING || a->state == A_HANDSHAKE)
			ae_arm(a); /* a held-back one stays disarmed */
	}
	int st = a->state, rc = SFY_ASYNC_NONE;
	if (ae_pending_state(st)) {
		rc = SFY_ASYNC_PENDING;
	} else if (st == A_FAILED) {
		*err = a->err;
		rc = SFY_ASYNC_FAILED;
		if (consume) {
			ae_set_state(a, A_IDLE);
			a->n_regs = 0; /* reported: nothing left to mark */
		}
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

struct entry *ae_busy(int fd)
{
	struct entry *a = ae_get(fd, 0);
	return a && ae_state(a) != A_IDLE ? a : NULL;
}

int sfy_async_touch(int fd, int consume, int *err)
{
	struct entry *a = ae_busy(fd);
	return a ? ae_touch(a, consume, err, 0) : SFY_ASYNC_NONE;
}

/* A handshake the program closes is parked (see shim/async_park.c).
 * Caller holds a->lock.  1 when parked. */
static int park(struct entry *a)
{
	if (!(a->state == A_CONNECTING || a->state == A_HANDSHAKE) || !a->job || !ae_mine(a))
		return 0;
	struct ae_held h = {.job = a->job, .state = a->state, .deadline = a->deadline};
	if (!ae_park(a, &h))
		return 0;
	wake_siblings(a, sfy_now_ms());
	take_job(a);
	a->n_regs = 0;
	ae_set_state(a, A_IDLE);
	return 1;
}

void sfy_async_closed(int fd)
{
	ae_park_closing(fd, fd);
	struct entry *a = ae_get(fd, 0);
	if (!a || (ae_state(a) == A_IDLE && !__atomic_load_n(&a->n_regs, __ATOMIC_RELAXED)))
		return;
	/* getpid(), not the pid noted at fork: a vfork() child shares our
	 * memory, and its close() must leave the parent's handshake be.  An
	 * entry a fork() child inherited is its own copy to drop. */
	pid_t me = getpid();
	if (a->pid && a->pid != me && a->pid == my_pid)
		return;
	pthread_mutex_lock(&a->lock);
	int parked = a->pid == me && park(a);
	pthread_mutex_unlock(&a->lock);
	if (!parked)
		forget(a);
}

void sfy_async_closed_range(unsigned first, unsigned last)
{
	ae_park_closing((int)(first > INT_MAX ? INT_MAX : first), (int)(last > INT_MAX ? INT_MAX : last));
	for (;;) {
		int fd = -1;
		pthread_mutex_lock(&ae_list_lock);
		for (struct entry *a = ae_active; a && fd < 0; a = a->next)
			if ((unsigned)a->fd >= first && (unsigned)a->fd <= last && a->pid == getpid())
				fd = a->fd;
		pthread_mutex_unlock(&ae_list_lock);
		if (fd < 0)
			return;
		forget(ae_get(fd, 0));
	}
}

void sfy_async_new_socket(int fd)
{
	struct entry *a = ae_get(fd, 0);
	if (a && (ae_state(a) != A_IDLE || __atomic_load_n(&a->n_regs, __ATOMIC_RELAXED)))
		forget(a);
}

/* ------------------------------------------------------------ fork */

void sfy_async_fork_prepare(void)
{
	pthread_mutex_lock(&ae_list_lock);
}

void sfy_async_fork_parent(void)
{
	pthread_mutex_unlock(&ae_list_lock);
}

/* The child owns copies of the parent's entries, whose locks another
 * thread may have held at the fork: fresh locks, and the handshakes stay
 * the parent's (see ae_mine()). */
void sfy_async_fork_child(void)
{
	ae_park_fork_child();
	my_pid = 0; /* asked again at the child's own first handshake */
	for (int c = 0; c < NCHUNKS; c++)
		for (int i = 0; chunks[c] && i < CHUNK; i++)
			pthread_mutex_init(&chunks[c][i].lock, NULL);
	pthread_mutex_unlock(&ae_list_lock);
}
