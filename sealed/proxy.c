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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfy_chain.h"
#include "sfy_log.h"
#include "sfy_routes.h"
#include "session.h"

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
static int proxy_addr(int sock, const struct sfy_chain_hop *hop, struct sockaddr_storage *out, socklen_t *len)
{
	struct sockaddr_storage me;
	socklen_t mlen = sizeof me;
	if (getsockname(sock, (struct sockaddr *)&me, &mlen) < 0)
		return -1;
	const struct sockaddr_storage *p = &hop->sa;
	if (me.ss_family == p->ss_family) {
		*out = *p;
		*len = hop->salen;
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

static int connect_proxy(int sock, const struct sfy_chain_hop *hop)
{
	struct sockaddr_storage pa;
	socklen_t plen;
	if (proxy_addr(sock, hop, &pa, &plen) < 0)
		return -1;
	if (connect(sock, (struct sockaddr *)&pa, plen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -1;
	return sfy_connect_finish(sock, sfy_deadline_after(sfy_cfg.connect_timeout_ms));
}

/* The route for the job's destination, as the library picks it: the
 * first candidate (the program's socket cannot be swapped for another
 * attempt from here); NULL with *err when none may be used. */
static const struct sfy_chain *route_for(const struct job *j, struct sfy_route_state **st, int *err)
{
	struct sfy_routes_dest d = {.port = j->dst.port};
	struct sockaddr_storage ss;
	if (j->dst.atyp == S5_ATYP_DOMAIN)
		d.name = j->dst.u.domain.name;
	else if (sfy_socks_to_sockaddr(&j->dst, j->dst.atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET, &ss, 1) > 0)
		d.sa = (const struct sockaddr *)&ss;
	struct sfy_routes_pick pick;
	*st = sfy_cfg.n_routes > 1 || sfy_cfg.n_via > 0 ? sfy_session_route_state() : NULL;
	sfy_routes_choose(&sfy_cfg, *st, &d, sfy_now_ms(), (uint32_t)sfy_now_us(), &pick);
	if (pick.verdict == SFY_ROUTES_BLOCK || pick.verdict == SFY_ROUTES_ALL_DOWN) {
		*err = pick.verdict == SFY_ROUTES_BLOCK ? EACCES : pick.err ? pick.err : ECONNREFUSED;
		sfy_log(SFY_LOG_WARN, "sealed: connect for %s[%u] refused: %s", j->comm, j->n.pid,
			pick.verdict == SFY_ROUTES_BLOCK ? pick.reason : "every route is down (retry_after)");
		return NULL;
	}
	return pick.verdict == SFY_ROUTES_PROXY && pick.n > 0 ? pick.chain[0] : &sfy_cfg.routes[0];
}

static void outcome(const struct job *j, const struct sfy_chain *route, const struct sfy_chain_engine *c, int err,
		    long long t0)
{
	char what[300], via[SFY_CHAIN_MAX * 100] = "", step[SFY_CHAIN_STEP_MAX];
	s5_addr_text(&j->dst, what, sizeof what);
	for (int i = 0; route && i < route->n; i++) {
		size_t used = strlen(via);
		snprintf(via + used, sizeof via - used, "%s%s", i ? " > " : "", route->hop[i].text);
	}
	if (!err)
		sfy_log(SFY_LOG_INFO, "sealed: connect %s via %s for %s[%u] ok %.1fms", what, via, j->comm, j->n.pid,
			(double)(sfy_now_us() - t0) / 1000.0);
	else if (!sfy_cfg.valid)
		sfy_log(SFY_LOG_WARN, "sealed: connect %s for %s[%u] refused: configuration error (%s)", what, j->comm,
			j->n.pid, sfy_cfg.error);
	else if (route && c->e.rep > 0)
		sfy_log(SFY_LOG_WARN, "sealed: connect %s via %s for %s[%u] failed%s: proxy replied %d (%s)", what, via,
			j->comm, j->n.pid, route->n > 1 ? " at a later hop" : "", c->e.rep, sfy_engine_rep_text(&c->e));
	else if (route)
		sfy_log(SFY_LOG_WARN, "sealed: connect %s via %s for %s[%u] failed at %s: %s", what, via, j->comm, j->n.pid,
			sfy_chain_step(c, step, sizeof step), err == EPROTO ? "malformed or truncated reply" : strerror(err));
}

static void *worker(void *arg)
{
	struct job *j = arg;
	struct sfy_target t = {.n = &j->n, .listener = j->listener};
	struct sfy_chain_engine c;
	struct sfy_route_state *st = NULL;
	long long t0 = sfy_now_us();
	int rc = -1, err = EACCES;
	const struct sfy_chain *route = sfy_cfg.valid ? route_for(j, &st, &err) : NULL;
	int flags = fcntl(j->sock, F_GETFL);
	/* The program waits in connect() meanwhile: its mode can be lent. */
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(j->sock, F_SETFL, flags | O_NONBLOCK);
	if (route) {
		sfy_chain_start(&c, route, S5_CMD_CONNECT, &j->dst);
		/* A protected session needs the library's relay inside the
		 * program: a program the preload cannot reach has none. */
		if (route->hop[route->n - 1].hop.gssapi)
			sfy_chain_fail(&c, EACCES, "gssapi (not available in sealed mode to a program the preload cannot reach)");
		if (c.e.state != SFY_ENG_FAILED) {
			c.e.step = "connect to proxy";
			if (connect_proxy(j->sock, &route->hop[0]) == 0) {
				c.e.step = sfy_chain_first_step(&c);
				struct sfy_io io = {.fd = j->sock, .deadline = sfy_deadline_after(sfy_cfg.handshake_timeout_ms)};
				rc = sfy_chain_drive(&c, &io, NULL, NULL);
			} else {
				sfy_chain_fail(&c, errno, NULL);
			}
		}
		err = rc == 0 ? 0 : c.e.err ? c.e.err : errno;
		sfy_engine_release(&c.e);
		if (st)
			sfy_route_outcome(route, &c, err);
		if (rc < 0 && (c.at > 0 || c.e.step[0] != 'c'))
			shutdown(j->sock, SHUT_RDWR); /* no half-set-up session for the program to use */
	}
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(j->sock, F_SETFL, flags);
	outcome(j, route, &c, err, t0);
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
