/* Parked handshakes.  node's happy eyeballs closes its first attempt when
 * it has not connected within 250 ms and then connects to the name's other
 * address; through a slow proxy the SOCKS handshake is part of that time.
 * Both addresses are fakes of one name, the same way through the proxy, so
 * the first attempt's proxy connection is kept for a moment (a private,
 * close-on-exec fd) with its handshake as it stood, and the next connect()
 * of this process to the same name and port through the same proxy takes
 * it over on its own fd number instead of opening another.  A parked
 * handshake nobody takes is closed after PARK_MS.  The program's close(),
 * dup2() or close_range() over a parked number drop it. */
#include "async_int.h"
#include "sfy_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define PARK_MAX 64
#define PARK_MS 1000
#define PARK_MIN_FD 512 /* out of the way of small numbers programs dup2() onto */

struct park {
	int fd;
	pid_t pid;
	long long until;
	struct ae_held held;
};

static struct park parks[PARK_MAX];
static int n_parks;
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;

static void discard(struct park *p)
{
	REAL(close)(p->fd);
	ae_job_free(p->held.job);
}

int ae_park(struct entry *a, const struct ae_held *held)
{
	const struct job *j = held->job;
	if (!j || j->c.dst.atyp != S5_ATYP_DOMAIN)
		return 0;
	int keep = REAL(fcntl)(a->fd, F_DUPFD_CLOEXEC, PARK_MIN_FD);
	if (keep < 0)
		keep = REAL(fcntl)(a->fd, F_DUPFD_CLOEXEC, 3);
	if (keep < 0)
		return 0;
	/* The socket outlives the program's close(): so would its epoll
	 * registrations, reporting events for a number the program let go. */
	for (int i = 0; i < a->n_regs; i++)
		REAL(epoll_ctl)(a->regs[i].epfd, EPOLL_CTL_DEL, a->fd, NULL);
	struct park old = {.fd = -1};
	pthread_mutex_lock(&park_lock);
	if (n_parks == PARK_MAX) {
		old = parks[0];
		memmove(parks, parks + 1, (PARK_MAX - 1) * sizeof *parks);
		n_parks--;
	}
	parks[n_parks++] = (struct park){.fd = keep, .pid = a->pid, .until = sfy_now_ms() + PARK_MS, .held = *held};
	pthread_mutex_unlock(&park_lock);
	if (old.fd >= 0)
		discard(&old);
	sfy_log(SFY_LOG_DEBUG, "fd %d closed during its handshake: parked as fd %d", a->fd, keep);
	return 1;
}

static int same_way(const struct job *j, const struct sfy_proxy *p, const struct s5_addr *dst)
{
	return j->c.dst.port == dst->port && strcmp(j->c.dst.u.domain.name, dst->u.domain.name) == 0 &&
	       j->proxy.len == p->len && memcmp(j->proxy.addr, p->addr, p->len) == 0;
}

int ae_adopt(int fd, pid_t pid, const struct sfy_proxy *p, const struct s5_addr *dst, struct ae_held *out)
{
	if (dst->atyp != S5_ATYP_DOMAIN || !__atomic_load_n(&n_parks, __ATOMIC_RELAXED))
		return 0;
	long long now = sfy_now_ms();
	struct park got = {.fd = -1};
	pthread_mutex_lock(&park_lock);
	for (int i = 0; i < n_parks; i++)
		if (parks[i].pid == pid && parks[i].until > now && same_way(parks[i].held.job, p, dst)) {
			got = parks[i];
			parks[i] = parks[--n_parks];
			break;
		}
	pthread_mutex_unlock(&park_lock);
	if (got.fd < 0)
		return 0;
	if (sfy_swap_socket(fd, got.fd) < 0) { /* closes got.fd either way */
		ae_job_free(got.held.job);
		return 0;
	}
	*out = got.held;
	return 1;
}

/* Take out the parks that match, at most PARK_MAX, then act outside the
 * lock. */
static void drop_where(int (*match)(const struct park *, long long, long long), long long x, long long y, int close_fd,
		       pid_t pid)
{
	struct park gone[PARK_MAX];
	int n = 0;
	if (!__atomic_load_n(&n_parks, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&park_lock);
	for (int i = 0; i < n_parks;)
		if (match(&parks[i], x, y) && (pid <= 0 || parks[i].pid == pid))
			gone[n++] = parks[i], parks[i] = parks[--n_parks];
		else
			i++;
	pthread_mutex_unlock(&park_lock);
	for (int i = 0; i < n; i++) {
		if (close_fd)
			REAL(close)(gone[i].fd);
		if (close_fd && pid < 0)
			sfy_log(SFY_LOG_DEBUG, "parked handshake (fd %d) taken by no one: closed", gone[i].fd);
		ae_job_free(gone[i].held.job);
	}
}

static int expired(const struct park *p, long long now, long long unused)
{
	(void)unused;
	return p->until <= now;
}

static int in_range(const struct park *p, long long first, long long last)
{
	return p->fd >= first && p->fd <= last;
}

static int any(const struct park *p, long long x, long long y)
{
	(void)p, (void)x, (void)y;
	return 1;
}

void ae_park_expire(void)
{
	drop_where(expired, sfy_now_ms(), 0, 1, -1); /* -1: any process's, logged */
}

void ae_park_closing(int first, int last)
{
	/* The program closes that number itself.  getpid(): a vfork() child's
	 * closes are not the parent's. */
	if (__atomic_load_n(&n_parks, __ATOMIC_RELAXED))
		drop_where(in_range, first, last, 0, getpid());
}

void ae_park_fork_child(void)
{
	pthread_mutex_init(&park_lock, NULL);
	drop_where(any, 0, 0, 1, 0);
}
