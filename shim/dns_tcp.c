/* DNS over TCP answered inside the process (see dns_pkt.h): the program's
 * socket is really connected to a loopback listener made for it, accepted
 * at once; the accepted end is ours (internal_fd.h).  Messages are framed
 * by a 2-byte length (RFC 1035 4.2.2); each write of the program is read
 * from our end and its complete messages are answered there. */
#include "dns_pkt.h"

#include "internal_fd.h"
#include "sfy_dns.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "sfy_resolve.h"
#include "shim.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_CONNS 64
#define FRAME_MAX (2 + 65535)  /* the largest message the framing allows */
#define REPLY_MAX 4096
#define ACCEPT_MS 2000         /* our own listener answers at once */
#define READ_MS 200            /* for the bytes the program just wrote */

struct dconn {
	int used, dead;
	int fd, h; /* the program's fd, our end's handle */
	pid_t pid;
	dev_t dev;
	ino_t ino;
	size_t have;
	uint8_t *buf; /* FRAME_MAX bytes */
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dconn conns[N_CONNS];

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listener on loopback for a socket of family fam: *addr is what that
 * socket connects to.  Its fd, or -1. */
static int make_listener(int fam, struct sockaddr_storage *addr, socklen_t *alen)
{
	for (int v6 = fam == AF_INET6; v6 >= 0; v6--) {
		struct sockaddr_storage a = {.ss_family = v6 ? AF_INET6 : AF_INET};
		socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
		if (v6)
			((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
		else
			((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int l = REAL(socket)(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (l < 0)
			continue;
		if (REAL(bind)(l, (struct sockaddr *)&a, len) == 0 && REAL(listen)(l, 4) == 0 &&
		    REAL(getsockname)(l, (struct sockaddr *)&a, &len) == 0) {
			if (fam == AF_INET6 && !v6) { /* no ::1: the v4-mapped form */
				struct sockaddr_in6 m;
				sfy_map_v4((struct sockaddr_in *)&a, &m);
				memcpy(&a, &m, sizeof m);
				len = sizeof m;
			}
			*addr = a;
			*alen = len;
			return l;
		}
		REAL(close)(l);
	}
	return -1;
}

/* Accept the program's connection (from local) on listener l: strangers
 * that got there first are turned away.  Our end, or -1. */
static int accept_program(int l, const struct sockaddr_storage *local)
{
	long long end = now_ms() + ACCEPT_MS;
	for (long long left = ACCEPT_MS; left > 0; left = end - now_ms()) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		if (REAL(poll)(&p, 1, (int)left) <= 0)
			continue;
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		int a = REAL(accept4)(l, (struct sockaddr *)&from, &flen, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (a < 0)
			continue;
		struct sockaddr_in x, y;
		const struct sockaddr *f = (struct sockaddr *)&from, *m = (const struct sockaddr *)local;
		if (sfy_unmap_v4(f, &x))
			f = (struct sockaddr *)&x;
		if (sfy_unmap_v4(m, &y))
			m = (struct sockaddr *)&y;
		size_t cmp = f->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		if (f->sa_family == m->sa_family && memcmp(f, m, cmp) == 0)
			return a;
		REAL(close)(a);
	}
	return -1;
}

static int add_conn(int fd, int h)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	pthread_mutex_lock(&conns_lock);
	struct dconn *c = NULL;
	for (int i = 0; i < N_CONNS && !c; i++)
		if (!conns[i].used || conns[i].fd == fd)
			c = &conns[i];
	int old_h = -1;
	uint8_t *old_buf = NULL;
	if (c && c->used) { /* a stale entry of this number */
		old_h = c->h;
		old_buf = c->buf;
	}
	if (c) {
		memset(c, 0, sizeof *c);
		c->used = 1;
		c->fd = fd;
		c->h = h;
		c->pid = getpid();
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		sfy_dnsp_mark(fd, SFY_DNSP_TCP);
	}
	pthread_mutex_unlock(&conns_lock);
	free(old_buf);
	sfy_ifd_release(old_h);
	return c ? 0 : -1;
}

int sfy_dnsp_tcp_connect(int fd, const struct sockaddr *ns, socklen_t len)
{
	struct sockaddr_storage mine, laddr;
	socklen_t mlen = sizeof mine, llen;
	if (REAL(getsockname)(fd, (struct sockaddr *)&mine, &mlen) < 0)
		return -1;
	int l = make_listener(mine.ss_family, &laddr, &llen);
	if (l < 0) {
		errno = ENOBUFS;
		return -1;
	}
	int rc = REAL(connect)(fd, (struct sockaddr *)&laddr, llen);
	int cerr = errno;
	mlen = sizeof mine;
	if ((rc < 0 && cerr != EINPROGRESS) || REAL(getsockname)(fd, (struct sockaddr *)&mine, &mlen) < 0) {
		REAL(close)(l);
		errno = rc < 0 ? cerr : ENOBUFS;
		return -1;
	}
	int a = accept_program(l, &mine);
	REAL(close)(l);
	int h = a < 0 ? -1 : sfy_ifd_adopt(a);
	struct sfy_fdinfo info = {.kind = SFY_FD_DNS_TCP, .app_family = mine.ss_family};
	info.peer_len = len < sizeof info.peer ? len : sizeof info.peer;
	memcpy(&info.peer, ns, info.peer_len);
	if (h < 0 || add_conn(fd, h) < 0 || sfy_fd_set(fd, &info) < 0) {
		if (h >= 0 && sfy_dnsp_kind(fd) != SFY_DNSP_TCP)
			sfy_ifd_release(h);
		sfy_dnsp_tcp_closed(fd);
		sfy_log(SFY_LOG_WARN, "connect on fd %d: cannot answer DNS over TCP here", fd);
		errno = ECONNREFUSED;
		return -1;
	}
	sfy_log(SFY_LOG_DEBUG, "connect on fd %d: DNS over TCP, answered in the process", fd);
	errno = cerr;
	return rc;
}

/* The reply to one message (frame payload q, n bytes) into out (framed):
 * its length, or 0 when the connection is to be closed. */
static size_t reply_frame(const uint8_t *q, size_t n, uint8_t *out)
{
	ssize_t r = sfy_dns_respond(q, n, out + 2, REPLY_MAX - 2);
	if (r < 0) {
		/* For the real resolver: over TCP we have no way there; the
		 * program retries, or asks over UDP, which does go there. */
		struct sfy_dns_question qq;
		if (sfy_dns_parse_query(q, n, &qq) < 0)
			return 0;
		r = sfy_dns_build_reply(q, &qq, SFY_DNS_R_SERVFAIL, NULL, 0, 0, out + 2, REPLY_MAX - 2);
	}
	if (r <= 0)
		return 0;
	out[0] = (uint8_t)(r >> 8);
	out[1] = (uint8_t)r;
	return (size_t)r + 2;
}

/* Answer every complete message in c's buffer on our end efd.  Caller
 * holds conns_lock and the registry (efd cannot move). */
static void answer_frames(struct dconn *c, int efd, uint8_t *out)
{
	while (!c->dead && c->have >= 2) {
		size_t flen = (size_t)c->buf[0] << 8 | c->buf[1];
		if (flen < SFY_DNS_HEADER) {
			c->dead = 1; /* nothing a DNS message can be */
			break;
		}
		if (c->have < 2 + flen)
			break;
		size_t n = reply_frame(c->buf + 2, flen, out);
		if (!n || REAL(send)(efd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
			c->dead = 1;
		c->have -= 2 + flen;
		memmove(c->buf, c->buf + 2 + flen, c->have);
	}
	if (c->dead) {
		sfy_log(SFY_LOG_DEBUG, "fd %d: bad DNS over TCP: connection closed", c->fd);
		shutdown(efd, SHUT_RDWR); /* the program reads its end of file */
	}
}

/* Read what is there on c's end and answer; bytes read, or -1 (gone). */
static ssize_t step(int fd, uint8_t *out)
{
	ssize_t got = -1;
	pthread_mutex_lock(&conns_lock);
	struct dconn *c = NULL;
	for (int i = 0; i < N_CONNS && !c; i++)
		if (conns[i].used && conns[i].fd == fd)
			c = &conns[i];
	if (c && !c->dead && (c->buf || (c->buf = malloc(FRAME_MAX)) != NULL)) {
		int efd = sfy_ifd_lock_fd(c->h);
		got = efd < 0 ? -1 : REAL(recv)(efd, c->buf + c->have, FRAME_MAX - c->have, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			got = 0;
		else if (got == 0)
			got = -1; /* the program shut its side down */
		if (got > 0) {
			c->have += (size_t)got;
			answer_frames(c, efd, out);
		}
		sfy_ifd_unlock();
	}
	pthread_mutex_unlock(&conns_lock);
	return got;
}

void sfy_dnsp_tcp_sent(int fd, ssize_t n)
{
	if (n <= 0)
		return;
	int saved = errno;
	uint8_t *out = malloc(REPLY_MAX);
	int h = -1;
	pthread_mutex_lock(&conns_lock);
	for (int i = 0; i < N_CONNS; i++)
		if (conns[i].used && conns[i].fd == fd)
			h = conns[i].h;
	pthread_mutex_unlock(&conns_lock);
	/* Loopback delivers at once, nearly always: wait a little (without
	 * any lock) only when what the program wrote is not all there yet. */
	long long end = now_ms() + READ_MS;
	ssize_t total = 0;
	while (out && h >= 0 && total < n) {
		ssize_t got = step(fd, out);
		if (got < 0)
			break;
		total += got;
		long long left = end - now_ms();
		if (total >= n || left <= 0)
			break;
		struct pollfd p = {.fd = sfy_ifd_peek_fd(h), .events = POLLIN};
		REAL(poll)(&p, 1, (int)left);
	}
	free(out);
	errno = saved;
}

void sfy_dnsp_tcp_closed(int fd)
{
	pid_t me = getpid(); /* a vfork() child must leave our state alone */
	int h = -1;
	uint8_t *buf = NULL;
	pthread_mutex_lock(&conns_lock);
	for (int i = 0; i < N_CONNS; i++) {
		struct dconn *c = &conns[i];
		if (!c->used || c->fd != fd || c->pid != me)
			continue;
		h = c->h;
		buf = c->buf;
		c->used = 0;
		sfy_dnsp_mark(fd, SFY_DNSP_NONE);
	}
	pthread_mutex_unlock(&conns_lock);
	free(buf);
	sfy_ifd_release(h);
}
