/* The relay's sessions and its thread (see relay.h; one session's bytes
 * are shim/relay_pump.c's).  Sessions sit in one list under one mutex:
 * sfy_relay_start adds to it, the thread alone takes from it and frees,
 * and the lock is never held across the thread's poll(). */
#include "relay_int.h"

#include "internal_fd.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#define IDLE_MS 5000          /* the thread's longest wait: it never sleeps unbounded */
#define MAX_SESS (SFY_IFD_MAX / 2) /* two internal fds each: the registry is the bound */
#define EXIT_DRAIN_MS 2000    /* at exit, how long the program's last bytes may take to leave */

int sfy_relay_used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay_sess *sessions; /* under lock */
static struct relay_sess *orphans;  /* a fork child's copies of its parent's: kept, never used */
static int wake_h = -1;             /* the thread's eventfd (handle); -1: no thread in this process */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------- sessions */

static void sess_free(struct relay_sess *s)
{
	free(s->rbuf);
	free(s->pbuf);
	free(s->plain);
	free(s->wbuf);
	free(s);
}

static void prot_free(const struct sfy_prot *p)
{
	if (p && p->ops && p->ops->free)
		p->ops->free(p->ctx);
}

static struct relay_sess *sess_new(const struct sfy_prot *p, const char *what)
{
	struct relay_sess *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->p = *p;
	s->hn = s->ha = -1;
	snprintf(s->what, sizeof s->what, "%s", what ? what : "a connection");
	s->rbuf = malloc(RELAY_FRAME_MAX);
	s->pbuf = malloc(SFY_RELAY_TOKEN_MAX);
	s->plain = malloc(p->max_in);
	s->wbuf = malloc(RELAY_FRAME_MAX);
	if (!s->rbuf || !s->pbuf || !s->plain || !s->wbuf) {
		sess_free(s);
		return NULL;
	}
	return s;
}

/* The thread is done with s. */
static void end_session(struct relay_sess *s)
{
	if (s->flags & R_FAILED)
		relay_reset_app(s);
	pthread_mutex_lock(&lock);
	for (struct relay_sess **pp = &sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	/* Under the lock, so that a fork child never holds fds of a session
	 * that is in no list. */
	sfy_ifd_release(s->ha);
	sfy_ifd_release(s->hn);
	pthread_mutex_unlock(&lock);
	sfy_log(SFY_LOG_DEBUG, "GSSAPI data on %s: relay ended", s->what);
	prot_free(&s->p);
	sess_free(s);
}

/* ------------------------------------------------------------ thread */

static void drain_wake(int h)
{
	uint64_t v;
	int fd = sfy_ifd_lock_fd(h);
	if (fd >= 0)
		(void)!REAL(read)(fd, &v, sizeof v);
	sfy_ifd_unlock();
}

/* Caller holds lock. */
static void wake_locked(void)
{
	uint64_t one = 1;
	int fd = sfy_ifd_lock_fd(wake_h);
	if (fd >= 0)
		(void)!REAL(write)(fd, &one, sizeof one);
	sfy_ifd_unlock();
}

struct poll_set {
	struct pollfd pfd[1 + 2 * MAX_SESS];
	struct relay_sess *sess[MAX_SESS];
	int net_i[MAX_SESS], app_i[MAX_SESS]; /* index in pfd, -1: not polled */
	int n, k;
};

/* What to wait for: the wake eventfd, then each session's two fds. */
static void build_poll_set(struct poll_set *ps, int wake)
{
	ps->pfd[0] = (struct pollfd){.fd = sfy_ifd_peek_fd(wake), .events = POLLIN};
	ps->n = 1;
	ps->k = 0;
	pthread_mutex_lock(&lock);
	for (struct relay_sess *s = sessions; s && ps->k < MAX_SESS; s = s->next) {
		short ne, ae;
		int pn, pa, k = ps->k++;
		relay_interest(s, &ne, &ae, &pn, &pa);
		ps->sess[k] = s;
		ps->net_i[k] = pn ? ps->n : -1;
		if (pn)
			ps->pfd[ps->n++] = (struct pollfd){.fd = sfy_ifd_peek_fd(s->hn), .events = ne};
		ps->app_i[k] = pa ? ps->n : -1;
		if (pa)
			ps->pfd[ps->n++] = (struct pollfd){.fd = sfy_ifd_peek_fd(s->ha), .events = ae};
	}
	pthread_mutex_unlock(&lock);
}

static short revents(const struct poll_set *ps, int i, int *kick)
{
	short r = i >= 0 ? ps->pfd[i].revents : 0;
	if (r & POLLNVAL)
		*kick = 1; /* the number moved (dup2 over it) since we looked: look again */
	return (short)(r & ~POLLNVAL);
}

/* One process's relay thread: all signals blocked (set by its creator),
 * runs until the process ends.  Its poll set lives in static memory:
 * there is one such thread per process. */
static void *relay_main(void *arg)
{
	static struct poll_set ps;
	int wake = (int)(intptr_t)arg, busy = 0;
	for (;;) {
		build_poll_set(&ps, wake);
		int rc = REAL(poll)(ps.pfd, (nfds_t)ps.n, busy ? 0 : IDLE_MS);
		if (rc < 0 && errno != EINTR) {
			struct timespec ts = {0, 10 * 1000 * 1000}; /* ENOMEM: no spinning */
			nanosleep(&ts, NULL);
		}
		if (ps.pfd[0].revents & POLLIN)
			drain_wake(wake);
		busy = 0;
		for (int i = 0; i < ps.k; i++) {
			struct relay_sess *s = ps.sess[i];
			int kick = s->busy || s->fresh;
			short nr = revents(&ps, ps.net_i[i], &kick), ar = revents(&ps, ps.app_i[i], &kick);
			if (!kick && !nr && !ar)
				continue;
			s->fresh = 0;
			int st = relay_step(s, nr, ar);
			s->busy = st == 2;
			busy |= s->busy;
			__atomic_store_n(&s->out_pending, !(s->flags & R_FAILED) && s->woff < s->wlen, __ATOMIC_RELAXED);
			if (st == 1)
				end_session(s);
		}
	}
	return NULL;
}

/* Caller holds lock. */
static int start_thread_locked(void)
{
	if (wake_h >= 0)
		return 0;
	int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int h = e < 0 ? -1 : sfy_ifd_adopt(e);
	if (h < 0)
		return -1;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits it: no signal of the program's lands there */
	pthread_attr_t attr;
	pthread_t tid;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&tid, &attr, relay_main, (void *)(intptr_t)h);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sfy_ifd_release(h);
		errno = rc;
		return -1;
	}
	wake_h = h;
	return 0;
}

/* -------------------------------------------------------------- fork */

/* fork(): the child's copies of the relay's fds are closed and its
 * sessions forgotten; the parent's thread keeps serving them, and the
 * thread does not exist in the child, which starts its own at need.  The
 * sessions' memory stays reachable (orphans): their protection contexts
 * are not freed in the child, whose GSS library may hold locks of threads
 * that are gone.  A vfork() child runs no handler and execs. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
	struct relay_sess *next;
	for (struct relay_sess *s = sessions; s; s = next) {
		next = s->next;
		sfy_ifd_release(s->ha);
		sfy_ifd_release(s->hn);
		s->next = orphans;
		orphans = s;
	}
	sessions = NULL;
	if (wake_h >= 0)
		sfy_ifd_release(wake_h);
	wake_h = -1;
	pthread_mutex_unlock(&lock);
}

static void fork_setup(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* At exit, the bytes the program wrote last may still be in our end of
 * the pair or in a frame: give them a bounded time to leave (a TCP
 * socket's would leave after the process).  _exit() skips this. */
static int out_pending(void)
{
	int pending = 0;
	pthread_mutex_lock(&lock);
	for (struct relay_sess *s = sessions; s && !pending; s = s->next) {
		int queued = 0, fd = sfy_ifd_lock_fd(s->ha);
		if (fd >= 0 && REAL(ioctl)(fd, FIONREAD, &queued) < 0)
			queued = 0;
		sfy_ifd_unlock();
		pending = queued > 0 || __atomic_load_n(&s->out_pending, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&lock);
	return pending;
}

__attribute__((destructor)) static void relay_at_exit(void)
{
	if (!sfy_relay_any())
		return;
	int saved = errno;
	for (int ms = 0; ms < EXIT_DRAIN_MS && out_pending(); ms += 5) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	errno = saved;
}

int relay_with_net(dev_t dev, ino_t ino, int (*fn)(int fd, void *arg), void *arg, int *rc)
{
	int found = 0, err = errno;
	pthread_mutex_lock(&lock);
	for (struct relay_sess *s = sessions; s && !found; s = s->next) {
		if (s->app_dev != dev || s->app_ino != ino)
			continue;
		found = 1;
		int fd = sfy_ifd_lock_fd(s->hn);
		errno = err;
		*rc = fd < 0 ? (errno = EBADF, -1) : fn(fd, arg);
		err = errno;
		sfy_ifd_unlock();
	}
	pthread_mutex_unlock(&lock);
	errno = err;
	return found;
}

/* ------------------------------------------------------------- start */

/* Replace the TCP socket at fd with the program's end of the pair,
 * keeping its flags and epoll registrations (epoll watches the open file,
 * not the number: each registration is moved by hand). */
static int swap_in_pair_end(int fd, int app_end, const struct sfy_epoll_reg *regs, int n_regs)
{
	for (int i = 0; i < n_regs; i++)
		REAL(epoll_ctl)(regs[i].epfd, EPOLL_CTL_DEL, fd, NULL);
	int rc = sfy_swap_socket(fd, app_end); /* closes app_end either way */
	int err = errno;
	for (int i = 0; i < n_regs; i++) {
		struct epoll_event ev = regs[i].ev;
		REAL(epoll_ctl)(regs[i].epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	errno = err;
	return rc;
}

/* The fd table's entry for the relayed fd; getsockname() shows the TCP
 * socket's own address when the caller has none (a reply of 0.0.0.0). */
static void record_entry(int fd, const struct sfy_fdinfo *info, const struct sockaddr_storage *real, socklen_t rlen)
{
	struct sfy_fdinfo e = *info;
	e.kind = SFY_FD_RELAYED;
	e.n_epoll = 0;
	if (!e.local_len && rlen)
		e.local_len = sfy_sockname_for_app(real, rlen, e.app_family, &e.local);
	sfy_fd_set(fd, &e); /* identity: the pair end's inode, which dup() copies share */
	sfy_sock_facts_set(fd, 0); /* no longer the TCP socket socket() made */
}

/* Everything that can fail, before fd is touched: the session, the pair,
 * the internal fds, the thread.  *app_end: the program's end of the pair. */
static struct relay_sess *prepare(int fd, const struct sfy_prot *p, const char *what, int *app_end)
{
	struct relay_sess *s = sess_new(p, what);
	int sv[2];
	struct stat st;
	if (!s || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail;
	if (fstat(sv[0], &st) < 0 || REAL(fcntl)(sv[1], F_SETFL, O_NONBLOCK) < 0) {
		REAL(close)(sv[0]);
		REAL(close)(sv[1]);
		goto fail;
	}
	s->app_dev = st.st_dev;
	s->app_ino = st.st_ino;
	s->app_fd = fd;
	s->ha = sfy_ifd_adopt(sv[1]); /* takes sv[1] either way */
	int net = s->ha < 0 ? -1 : REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
	s->hn = net < 0 ? -1 : sfy_ifd_adopt(net);
	pthread_mutex_lock(&lock);
	int ok = s->hn >= 0 && start_thread_locked() == 0;
	pthread_mutex_unlock(&lock);
	if (!ok) {
		int err = errno;
		REAL(close)(sv[0]);
		sfy_ifd_release(s->ha);
		sfy_ifd_release(s->hn);
		errno = err;
		goto fail;
	}
	*app_end = sv[0];
	return s;
fail:
	if (s)
		sess_free(s);
	return NULL;
}

int sfy_relay_start(int fd, const struct sfy_prot *p, const struct sfy_fdinfo *info, const struct sfy_epoll_reg *regs,
		    int n_regs, const char *what)
{
	int saved = errno, app_end = -1;
	pthread_once(&fork_once, fork_setup);
	if (!p || !p->ops || !p->ops->wrap || !p->ops->unwrap || p->max_in < 1 || p->max_in > SFY_RELAY_TOKEN_MAX ||
	    !info || n_regs < 0 || (n_regs && !regs)) {
		prot_free(p);
		errno = EINVAL;
		return -1;
	}
	struct relay_sess *s = prepare(fd, p, what, &app_end);
	if (!s || swap_in_pair_end(fd, app_end, regs, n_regs) < 0) {
		int err = s ? errno : (errno ? errno : ENOMEM);
		if (s) {
			sfy_ifd_release(s->ha);
			sfy_ifd_release(s->hn);
			sess_free(s);
		}
		sfy_log(SFY_LOG_ERROR, "GSSAPI data on %s: cannot start the relay: %s", what ? what : "?", strerror(err));
		prot_free(p);
		errno = err;
		return -1;
	}
	/* From here the TCP socket's open file is ours alone. */
	struct sockaddr_storage local;
	socklen_t llen = sizeof local;
	int net = sfy_ifd_lock_fd(s->hn);
	int fl = net < 0 ? -1 : REAL(fcntl)(net, F_GETFL);
	if (fl >= 0)
		REAL(fcntl)(net, F_SETFL, fl | O_NONBLOCK);
	if (net < 0 || REAL(getsockname)(net, (struct sockaddr *)&local, &llen) < 0)
		llen = 0;
	sfy_ifd_unlock();
	record_entry(fd, info, &local, llen); /* not under the registry's lock: the fd table has its own */
	s->fresh = 1;
	pthread_mutex_lock(&lock);
	s->next = sessions;
	sessions = s;
	__atomic_store_n(&sfy_relay_used, 1, __ATOMIC_RELAXED);
	wake_locked();
	pthread_mutex_unlock(&lock);
	sfy_log(SFY_LOG_DEBUG, "GSSAPI data on %s: relayed, up to %zu plain bytes per frame", s->what, p->max_in);
	errno = saved;
	return 0;
}
