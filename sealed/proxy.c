/* A program's TCP connect made through the proxy by the supervisor: on a
 * copy of the program's socket (pidfd_getfd shares the open file), the TCP
 * connect to the proxy and the SOCKS exchange by the library's engine,
 * then the answer to the program's connect().  The program keeps its fd
 * and its mode; 0 is the answer for a non-blocking socket too (Go's
 * netpoller, and any program, takes a connect that finished at once).
 *
 * Each runs on a thread of its own, so a slow proxy holds up only the
 * connect it serves; the notification loop goes on. */
#include "shim.h"
#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfy_log.h"

#define SFY_SEALED_WORKERS 256 /* connects in progress at once; more wait for EAGAIN */

struct job {
	struct seccomp_notif n;
	int listener;
	int sock;
	struct s5_addr dst;
	char comm[16];
};

static int busy;

int sfy_proxy_busy(void)
{
	return __atomic_load_n(&busy, __ATOMIC_ACQUIRE);
}

/* The proxy's address for a socket of the program's family: an IPv4 proxy
 * is reached from an IPv6 socket by its v4-mapped address. */
static int proxy_addr(int sock, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_storage me;
	socklen_t mlen = sizeof me;
	if (getsockname(sock, (struct sockaddr *)&me, &mlen) < 0)
		return -1;
	const struct sockaddr_storage *p = &sfy_cfg.proxy;
	if (me.ss_family == p->ss_family) {
		*out = *p;
		*len = sfy_cfg.proxy_len;
		return 0;
	}
	if (me.ss_family == AF_INET6 && p->ss_family == AF_INET) {
		sfy_map_v4((const struct sockaddr_in *)p, (struct sockaddr_in6 *)out);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	errno = EAFNOSUPPORT; /* an IPv4 socket cannot reach an IPv6 proxy */
	return -1;
}

/* The engine to its end on a non-blocking socket, every wait bounded by
 * deadline. */
static int drive(struct sfy_engine *e, int sock, long long deadline)
{
	struct sfy_io io = {.fd = sock, .deadline = deadline, .blocking = 0};
	for (;;) {
		const uint8_t *out;
		size_t len, max;
		uint8_t buf[SFY_ENG_IN_MAX];
		ssize_t n;
		switch (sfy_engine_want(e, &out, &len, &max)) {
		case SFY_WANT_WRITE:
			if (sfy_send_all(&io, out, len) < 0)
				sfy_engine_fail(e, errno, NULL);
			else
				sfy_engine_sent(e, len);
			break;
		case SFY_WANT_READ:
			n = sfy_recv_some(&io, buf, max, sfy_engine_at_message_start(e));
			if (n > 0)
				sfy_engine_feed(e, buf, (size_t)n);
			else if (n == 0)
				sfy_engine_eof(e);
			else
				sfy_engine_fail(e, errno, NULL);
			break;
		case SFY_WANT_DONE:
			return 0;
		case SFY_WANT_FAILED:
			errno = e->err;
			return -1;
		}
	}
}

static int connect_proxy(int sock)
{
	struct sockaddr_storage pa;
	socklen_t plen;
	if (proxy_addr(sock, &pa, &plen) < 0)
		return -1;
	if (connect(sock, (struct sockaddr *)&pa, plen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -1;
	return sfy_connect_finish(sock, sfy_deadline_after(sfy_cfg.connect_timeout_ms));
}

static void outcome(const struct job *j, const struct sfy_engine *e, int err, long long t0)
{
	char what[300];
	s5_addr_text(&j->dst, what, sizeof what);
	if (!err)
		sfy_log(SFY_LOG_INFO, "sealed: connect %s via %s for %s[%u] ok %.1fms", what, sfy_cfg.proxy_text, j->comm,
			j->n.pid, (double)(sfy_now_us() - t0) / 1000.0);
	else if (!sfy_cfg.valid)
		sfy_log(SFY_LOG_WARN, "sealed: connect %s for %s[%u] refused: configuration error (%s)", what, j->comm,
			j->n.pid, sfy_cfg.error);
	else if (e->rep > 0)
		sfy_log(SFY_LOG_WARN, "sealed: connect %s via %s for %s[%u] failed: proxy replied %d (%s)", what,
			sfy_cfg.proxy_text, j->comm, j->n.pid, e->rep, s5_rep_text((uint8_t)e->rep));
	else
		sfy_log(SFY_LOG_WARN, "sealed: connect %s via %s for %s[%u] failed at %s: %s", what, sfy_cfg.proxy_text,
			j->comm, j->n.pid, e->step, err == EPROTO ? "malformed or truncated reply" : strerror(err));
}

static void *worker(void *arg)
{
	struct job *j = arg;
	struct sfy_target t = {.n = &j->n, .listener = j->listener};
	struct sfy_hop hop = {.user = sfy_cfg.user, .pass = sfy_cfg.pass, .pipeline = sfy_cfg.pipeline};
	struct sfy_engine e;
	long long t0 = sfy_now_us();
	int rc = -1, err = EACCES;
	sfy_engine_start(&e, &hop, S5_CMD_CONNECT, &j->dst);
	int flags = fcntl(j->sock, F_GETFL);
	/* The program waits in connect() meanwhile: its mode can be lent. */
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(j->sock, F_SETFL, flags | O_NONBLOCK);
	if (sfy_cfg.valid) {
		e.step = "connect to proxy";
		if (connect_proxy(j->sock) == 0) {
			e.step = "greeting";
			rc = drive(&e, j->sock, sfy_deadline_after(sfy_cfg.handshake_timeout_ms));
		} else {
			sfy_engine_fail(&e, errno, NULL);
		}
		err = rc == 0 ? 0 : e.err ? e.err : errno;
	}
	if (rc < 0 && e.step[0] != 'c')
		shutdown(j->sock, SHUT_RDWR); /* no half-set-up session for the program to use */
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(j->sock, F_SETFL, flags);
	outcome(j, &e, err, t0);
	if (rc == 0)
		sfy_reply_val(&t, 0);
	else
		sfy_reply_err(&t, err);
	close(j->sock);
	free(j);
	__atomic_sub_fetch(&busy, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

void sfy_proxy_start(const struct sfy_target *t, int sock, const struct s5_addr *dst, const char *comm)
{
	struct job *j = calloc(1, sizeof *j);
	pthread_attr_t attr;
	pthread_t th;
	if (!j || __atomic_add_fetch(&busy, 1, __ATOMIC_ACQ_REL) > SFY_SEALED_WORKERS) {
		if (j)
			__atomic_sub_fetch(&busy, 1, __ATOMIC_ACQ_REL);
		sfy_log(SFY_LOG_WARN, "sealed: too many connects in progress; one of %s[%u] fails (EAGAIN)", comm, t->n->pid);
		sfy_reply_err(t, EAGAIN);
		free(j);
		close(sock);
		return;
	}
	j->n = *t->n;
	j->listener = t->listener;
	j->sock = sock;
	j->dst = *dst;
	memcpy(j->comm, comm, sizeof j->comm);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	int rc = pthread_create(&th, &attr, worker, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		__atomic_sub_fetch(&busy, 1, __ATOMIC_ACQ_REL);
		sfy_reply_err(t, EAGAIN);
		close(sock);
		free(j);
	}
}
