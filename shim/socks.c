/* The SOCKS5 exchange (CONNECT, and BIND's two replies) on the caller's own
 * fd, which keeps its mode throughout (see shim/wire.c for the reads and
 * writes). */
#include "shim.h"
#include "async.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gss_conn.h"
#include "sfy_chain.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "sfy_routes.h"
#include "session.h"

void sfy_proxy_of_chain(struct sfy_proxy *p, const struct sfy_chain *c)
{
	p->chain = c;
	p->addr = &c->hop[0].sa;
	p->len = c->hop[0].salen;
	p->text = c == &sfy_cfg.routes[0] ? sfy_cfg.proxy_text : c->hop[0].text;
	p->hop = c->hop[0].hop;
}

void sfy_proxy_configured(struct sfy_proxy *p)
{
	sfy_proxy_of_chain(p, &sfy_cfg.routes[0]);
}

/* Connect fd to the proxy within connect_timeout, in the fd's own mode: a
 * non-blocking fd connects in the background and is polled; a blocking one
 * connects in place, bounded by SO_SNDTIMEO (which bounds connect() on
 * Linux), set for the call and put back after it.  connect_timeout = 0:
 * no bound of ours, as the program's own connect() would be. */
static int connect_proxy(int fd, unsigned facts, int nonblock, const struct sockaddr *proxy, socklen_t len, int async)
{
	long long deadline = sfy_deadline_after(sfy_cfg.connect_timeout_ms);
	int bound = !nonblock && sfy_cfg.connect_timeout_ms > 0;
	struct timeval saved = {0, 0};
	socklen_t slen = sizeof saved;
	if (bound) {
		/* The program's own send timeout comes back afterwards: read it
		 * unless socket() made this fd and it never set one. */
		if ((facts & (SFY_SOCK_TCP | SFY_SOCK_SNDTIMEO)) != SFY_SOCK_TCP &&
		    REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &saved, &slen) < 0)
			return -1;
		struct timeval limit = {sfy_cfg.connect_timeout_ms / 1000, (sfy_cfg.connect_timeout_ms % 1000) * 1000};
		if (REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0)
			return -1;
	}
	int rc = REAL(connect)(fd, proxy, len);
	int err = errno;
	if (bound)
		REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &saved, sizeof saved);
	if (rc == 0)
		return 0;
	if (async && nonblock && err == EINPROGRESS)
		return 1; /* the event driver takes it from here */
	/* Blocking and EINPROGRESS: a send timeout ran out, ours (the attempt
	 * goes on: wait for what is left of the deadline) or the program's
	 * own (a timeout).  Non-blocking: in progress.  EINTR: a signal came
	 * while the attempt goes on. */
	if (err == EINPROGRESS && !nonblock && !bound && !sfy_fd_nonblocking(fd)) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (err != EINPROGRESS && err != EINTR) {
		errno = err;
		return -1;
	}
	return sfy_connect_finish(fd, deadline);
}

/* Options a program may have set that a replacement socket must carry. */
static const struct { int level, name; } carried_opts[] = {
	{SOL_SOCKET, SO_KEEPALIVE}, {SOL_SOCKET, SO_LINGER}, {SOL_SOCKET, SO_RCVTIMEO},
	{SOL_SOCKET, SO_SNDTIMEO}, {SOL_SOCKET, SO_PRIORITY}, {SOL_SOCKET, SO_MARK},
	{SOL_SOCKET, SO_OOBINLINE}, {SOL_SOCKET, SO_RCVBUF}, {SOL_SOCKET, SO_SNDBUF},
	{IPPROTO_TCP, TCP_NODELAY}, {IPPROTO_TCP, TCP_KEEPIDLE}, {IPPROTO_TCP, TCP_KEEPINTVL},
	{IPPROTO_TCP, TCP_KEEPCNT}, {IPPROTO_TCP, TCP_USER_TIMEOUT}, {IPPROTO_TCP, TCP_CONGESTION},
};

static void carry_options(int from, int to)
{
	for (size_t i = 0; i < sizeof carried_opts / sizeof carried_opts[0]; i++) {
		char a[64], b[64];
		socklen_t alen = sizeof a, blen = sizeof b;
		int level = carried_opts[i].level, name = carried_opts[i].name;
		if (REAL(getsockopt)(from, level, name, a, &alen) < 0 || REAL(getsockopt)(to, level, name, b, &blen) < 0)
			continue;
		if (alen == blen && memcmp(a, b, alen) == 0)
			continue; /* left at the default: do not pin it (buffers autotune) */
		if ((name == SO_RCVBUF || name == SO_SNDBUF) && level == SOL_SOCKET && alen == sizeof(int)) {
			int v;
			memcpy(&v, a, sizeof v);
			v /= 2; /* the kernel reports twice what was set */
			memcpy(a, &v, sizeof v);
		}
		REAL(setsockopt)(to, level, name, a, alen);
	}
}

int sfy_swap_socket(int fd, int fresh)
{
	int fl = REAL(fcntl)(fd, F_GETFL), fdfl = REAL(fcntl)(fd, F_GETFD);
	int rc = fl < 0 || fdfl < 0 ? -1 : REAL(dup3)(fresh, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	int saved = errno;
	REAL(close)(fresh);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	return REAL(fcntl)(fd, F_SETFL, fl);
}

/* The program's socket cannot reach the proxy's family: put a socket of the
 * proxy's family on the same fd number, keeping flags and options. */
static int replace_socket(int fd, int family)
{
	int fresh = REAL(socket)(family, SOCK_STREAM | SOCK_CLOEXEC, 0); /* closed by the swap: no facts to note */
	if (fresh < 0)
		return -1;
	carry_options(fd, fresh);
	return sfy_swap_socket(fd, fresh);
}

/* Proxy address usable on fd, whose family is the program's (connect()
 * and bind() only take addresses of the socket's own family): as
 * configured, v4-mapped for an IPv6 socket, or after replacing the socket. */
static int proxy_addr_for(int fd, int family, const struct sfy_proxy *p, struct sockaddr_storage *out, socklen_t *len)
{
	int v6only = 0;
	socklen_t vlen = sizeof v6only;
	int pfamily = p->addr->ss_family;
	memcpy(out, p->addr, sizeof *out);
	*len = p->len;
	if (family == pfamily)
		return 0;
	if (family == AF_INET6 && pfamily == AF_INET &&
	    REAL(getsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vlen) == 0 && !v6only) {
		memset(out, 0, sizeof *out);
		sfy_map_v4((const struct sockaddr_in *)p->addr, (struct sockaddr_in6 *)out);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	sfy_log(SFY_LOG_DEBUG, "fd %d: socket family %d cannot reach proxy %s; replacing the socket", fd, family, p->text);
	return replace_socket(fd, pfamily);
}

static pthread_mutex_t last_dst_lock = PTHREAD_MUTEX_INITIALIZER;
static struct s5_addr last_dst;
static int have_last_dst;

int sfy_last_connect_dst(struct s5_addr *out)
{
	pthread_mutex_lock(&last_dst_lock);
	int have = have_last_dst;
	if (have)
		*out = last_dst;
	pthread_mutex_unlock(&last_dst_lock);
	return have;
}

/* A route for log lines: its hops, "198.51.100.1:1080 > http://203.0.113.2:3128"
 * (SOCKS5 hops without their scheme, as a single proxy always was shown). */
void sfy_route_text(const struct sfy_proxy *p, char *out, size_t cap)
{
	const struct sfy_chain *c = p->chain;
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0; c && i < c->n && used < cap; i++) {
		const char *t = i == 0 ? p->text : c->hop[i].text;
		if (strncmp(t, "socks5h://", 10) == 0)
			t += 10;
		else if (strncmp(t, "socks5://", 9) == 0)
			t += 9;
		int n = snprintf(out + used, cap - used, "%s%s", i ? " > " : "", t);
		used += n > 0 ? (size_t)n : 0;
	}
	if (!c)
		snprintf(out, cap, "%s", p->text);
}

/* One log line for the outcome; the destination is formatted only when
 * the line is written.  c is NULL when the configuration is invalid.  A
 * failure in a route of several hops names the hop ("failed at hop 2"). */
void sfy_log_outcome(const struct sfy_proxy *p, const struct s5_addr *dst, const struct sfy_chain_engine *c, int err,
		     long long t0)
{
	const struct sfy_engine *e = c ? &c->e : NULL;
	const char *verb = !c || c->cmd == S5_CMD_CONNECT ? "connect" : c->cmd == S5_CMD_BIND ? "bind" : "udp associate";
	char what[300], via[SFY_CHAIN_MAX * 100], at[24] = "", step[SFY_CHAIN_STEP_MAX];
	if (!sfy_log_enabled(err ? SFY_LOG_WARN : SFY_LOG_INFO))
		return;
	s5_addr_text(dst, what, sizeof what);
	sfy_route_text(p, via, sizeof via);
	/* A hop's reply code is about the next hop (hop 2 refused is hop 1's
	 * REP 5), except the last hop's, which is the destination's answer. */
	if (c && p->chain && p->chain->n > 1 && e && e->rep > 0 && sfy_chain_failed_at(c) < p->chain->n - 1)
		snprintf(at, sizeof at, " at hop %d", sfy_chain_failed_at(c) + 2);
	if (!e)
		sfy_log(SFY_LOG_WARN, "%s %s refused: configuration error (%s)", verb, what, sfy_cfg.error);
	else if (!err)
		sfy_log(SFY_LOG_INFO, "%s %s via %s (%s dns) ok %.1fms", verb, what, via,
			dst->atyp == S5_ATYP_DOMAIN ? "remote" : "no", (double)(sfy_now_us() - t0) / 1000.0);
	else if (e->rep > 0)
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed%s: proxy replied %d (%s)", verb, what, via, at, e->rep,
			sfy_engine_rep_text(e));
	else
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed at %s: %s", verb, what, via, sfy_chain_step(c, step, sizeof step),
			err == EPROTO ? "malformed or truncated reply" : strerror(err));
}

/* One route's attempt: reach its first hop on fd, negotiate every hop,
 * send cmd for dst and read the (first) reply.  Logs the outcome either
 * way; c tells a failure's hop and kind.  With job (a CONNECT on a
 * non-blocking socket), the exchange goes on in the event driver once the
 * TCP connect is under way: -1 with EINPROGRESS. */
static int try_route(int fd, const struct sfy_chain *route, uint8_t cmd, const struct s5_addr *dst,
		     struct s5_reply *reply, int app_family, struct sfy_fdinfo *job, struct sfy_chain_engine *c)
{
	struct sfy_proxy p;
	sfy_proxy_of_chain(&p, route);
	sfy_chain_start(c, route, cmd, dst);
	struct sockaddr_storage proxy;
	socklen_t proxy_len;
	unsigned facts = sfy_sock_facts(fd);
	int nonblock = (facts & SFY_SOCK_TCP) ? (facts & SFY_SOCK_NONBLOCK) != 0 : sfy_fd_nonblocking(fd);
	if (nonblock < 0 || proxy_addr_for(fd, app_family, &p, &proxy, &proxy_len) < 0)
		return -1;
	long long t0 = sfy_now_us();
	if (c->e.state == SFY_ENG_FAILED) { /* this route cannot carry it */
		sfy_log_outcome(&p, dst, c, c->e.err, t0);
		errno = c->e.err;
		return -1;
	}
	c->e.step = "connect to proxy";
	if (job && nonblock &&
	    (sfy_async_adopt(fd, &p, c, job) < 0 || sfy_async_queue(fd, &p, c, job, (struct sockaddr *)&proxy, proxy_len, t0) < 0))
		return -1; /* a closed attempt's handshake taken over, or held back: happy eyeballs */
	int started = connect_proxy(fd, facts, nonblock, (struct sockaddr *)&proxy, proxy_len, job != NULL);
	if (started < 0 && errno == EISCONN)
		return -1; /* connect() again on a connection made: nothing to log */
	if (started >= 0 && job && nonblock)
		return sfy_async_begin(fd, &p, c, job, started == 0, t0);
	int rc = -1;
	if (started == 0) {
		c->e.step = sfy_chain_first_step(c);
		struct sfy_io io = {.fd = fd, .deadline = sfy_deadline_after(sfy_cfg.handshake_timeout_ms)};
		io.blocking = !nonblock && io.deadline == SFY_NO_DEADLINE;
		if ((rc = sfy_chain_drive(c, &io, NULL, NULL)) == 0)
			*reply = c->e.reply;
	} else {
		sfy_chain_fail(c, errno, NULL);
	}
	int err = rc == 0 ? 0 : errno;
	sfy_log_outcome(&p, dst, c, err, t0);
	if (rc == 0)
		return 0;
	if (c->at > 0 || c->e.step[0] != 'c') /* past the TCP connect: no half-set-up session left behind */
		shutdown(fd, SHUT_RDWR);
	errno = err;
	return -1;
}

/* The routes for dst in the order to try, and the state they share with
 * the session's other processes (NULL with one route: nothing to rotate
 * or skip, and a proxy that failed is asked again next time, as always). */
static struct sfy_route_state *routes_for(const struct s5_addr *dst, struct sfy_routes_pick *pick)
{
	struct sfy_routes_dest d = {.port = dst->port};
	struct sockaddr_storage ss;
	if (dst->atyp == S5_ATYP_DOMAIN) {
		d.name = dst->u.domain.name;
	} else if (sfy_socks_to_sockaddr(dst, dst->atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET, &ss, 1) > 0) {
		d.sa = (const struct sockaddr *)&ss;
	}
	struct sfy_route_state *st = sfy_cfg.n_routes > 1 || sfy_cfg.n_via > 0 ? sfy_session_route_state() : NULL;
	uint32_t rnd = 0;
	if (sfy_cfg.pick == SFY_PICK_RANDOM)
		rnd = (uint32_t)(sfy_now_us() ^ ((unsigned long long)getpid() << 16));
	sfy_routes_choose(&sfy_cfg, st, &d, sfy_now_ms(), rnd, pick);
	if (pick->verdict != SFY_ROUTES_PROXY || pick->n == 0) {
		/* DIRECT: the caller decided to use the proxy all the same (a
		 * BIND, a UDP association): the first route. */
		if (pick->verdict == SFY_ROUTES_DIRECT || pick->n == 0)
			pick->n = 1, pick->chain[0] = &sfy_cfg.routes[0], pick->route[0] = 1;
	}
	return st;
}

/* What CONNECT, BIND and UDP ASSOCIATE share: the route for dst, then its
 * attempts in order.  A route that fails before the last hop answers for
 * the destination is skipped by the whole session for retry_after seconds
 * (with several routes) and the next one is tried on a fresh socket; the
 * last hop's answer for the destination (REP 02-08) is final. */
static int run_request(int fd, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply, int app_family,
		       struct sfy_fdinfo *job, struct sfy_gss **gss)
{
	char what[300];
	struct sfy_routes_pick pick;
	if (!sfy_cfg.valid) {
		struct sfy_proxy p;
		sfy_proxy_configured(&p);
		sfy_log_outcome(&p, dst, NULL, EACCES, 0);
		errno = EACCES;
		return -1;
	}
	struct sfy_route_state *st = routes_for(dst, &pick);
	s5_addr_text(dst, what, sizeof what);
	if (pick.verdict == SFY_ROUTES_BLOCK || pick.verdict == SFY_ROUTES_ALL_DOWN) {
		int err = pick.verdict == SFY_ROUTES_BLOCK ? EACCES : pick.err ? pick.err : ECONNREFUSED;
		sfy_log(SFY_LOG_WARN, "connect %s refused: %s", what,
			pick.verdict == SFY_ROUTES_BLOCK ? pick.reason : "every route is down (retry_after)");
		errno = err;
		return -1;
	}
	if (pick.n > 1 || sfy_cfg.n_rules > 0)
		sfy_log(SFY_LOG_INFO, "%s: %s", what, pick.reason);
	for (int i = 0;; i++) {
		struct sfy_chain_engine c;
		if (try_route(fd, pick.chain[i], cmd, dst, reply, app_family, job, &c) == 0) {
			if (st)
				sfy_route_outcome(pick.chain[i], &c, 0);
			*gss = sfy_engine_take_gss(&c.e); /* the caller's: the relay, or BIND's reply 2 */
			return 0;
		}
		int err = errno;
		if (err == EINPROGRESS || err == EISCONN || err == EALREADY)
			return -1; /* the event driver has it (the engine went with it), or nothing happened */
		sfy_engine_release(&c.e);
		int kind = sfy_chain_may_fail_over(&c);
		if (st)
			sfy_route_outcome(pick.chain[i], &c, err);
		if (kind == SFY_CHAIN_FINAL || i + 1 >= pick.n || replace_socket(fd, app_family) < 0) {
			errno = err;
			return -1;
		}
		sfy_log(SFY_LOG_INFO, "connect %s: route %d failed (%s); failover to route %d", what, pick.route[i],
			strerror(err), pick.route[i + 1]);
	}
}

void sfy_connect_established(int fd, struct sfy_fdinfo *info, const struct s5_reply *reply, const struct s5_addr *dst)
{
	/* getsockname() will report the proxy's side of the connection, as the
	 * peer sees it: programs that put their own address in the protocol
	 * (FTP PORT/EPRT, as curl does) must advertise that one. */
	if (!s5_addr_unspecified(&reply->bnd))
		info->local_len = sfy_socks_to_sockaddr(&reply->bnd, info->app_family, &info->local, 1);
	sfy_fd_set(fd, info);
	pthread_mutex_lock(&last_dst_lock);
	last_dst = *dst;
	have_last_dst = 1;
	pthread_mutex_unlock(&last_dst_lock);
}

int sfy_proxy_connect(int fd, const struct sockaddr *app_addr, socklen_t app_len, const struct s5_addr *dst)
{
	struct sfy_fdinfo info = {.kind = SFY_FD_CONNECTED, .peer_len = app_len, .app_family = app_addr->sa_family};
	struct s5_reply reply;
	struct sfy_gss *g = NULL;
	memcpy(&info.peer, app_addr, app_len < sizeof info.peer ? app_len : sizeof info.peer);
	if (run_request(fd, S5_CMD_CONNECT, dst, &reply, info.app_family, &info, &g) < 0)
		return -1;
	sfy_connect_established(fd, &info, &reply, dst);
	if (g && sfy_gss_relay(fd, g, &info, NULL, 0) < 0) {
		int err = errno; /* nothing may pass unprotected: the connection fails */
		shutdown(fd, SHUT_RDWR);
		errno = err;
		return -1;
	}
	return 0;
}

int sfy_proxy_udp_associate(int ctl, const struct s5_addr *dst, struct s5_reply *reply)
{
	struct sfy_gss *g = NULL;
	int rc = run_request(ctl, S5_CMD_UDP_ASSOCIATE, dst, reply, sfy_cfg.proxy.ss_family, NULL, &g);
	sfy_gss_free(g); /* never set: the chain refuses UDP ASSOCIATE with GSSAPI */
	return rc;
}

int sfy_proxy_bind(int fd, const struct s5_addr *dst, struct s5_reply *reply1, int app_family)
{
	struct sfy_gss *g = NULL;
	if (run_request(fd, S5_CMD_BIND, dst, reply1, app_family, NULL, &g) < 0)
		return -1;
	/* Reply 2 and the stream after it are wrapped: the context waits for
	 * accept() by the fd's number. */
	if (g && sfy_gss_park(fd, g) < 0) {
		int err = errno;
		sfy_gss_free(g);
		shutdown(fd, SHUT_RDWR);
		errno = err;
		return -1;
	}
	return 0;
}

/* An engine for BIND's second reply, which comes from the route's last
 * hop, a SOCKS5 one (a BIND needs it), whatever came before it; wrapped
 * when g, the parked context (the engine borrows it: sfy_engine_take_gss
 * gives it back).  -1 (ENOMEM). */
static int reply2_engine(struct sfy_chain_engine *c, struct sfy_gss *g)
{
	static const struct sfy_chain socks5 = {.n = 1};
	sfy_chain_start_reply(c, &socks5, S5_CMD_BIND);
	return g ? sfy_engine_use_gss(&c->e, g) : 0;
}

/* Reply 2 of a BIND without waiting: what has come is peeked (a plain
 * reply, or a GSSAPI frame of up to 64 KiB whole), fed to an engine, and
 * taken only when it makes a whole reply, so that a partial one costs
 * nothing (unwrapping a frame twice would look like a replay to the GSS
 * context).  g: the parked context, or NULL. */
static int reply2_now(int fd, struct sfy_gss *g, struct s5_reply *reply)
{
	size_t cap = g ? S5_GSS_FRAME_MAX : S5_REPLY_MAX;
	uint8_t *buf = malloc(cap);
	struct sfy_chain_engine c;
	int rc = -1;
	if (!buf || reply2_engine(&c, g) < 0) {
		free(buf);
		errno = ENOMEM;
		return -1;
	}
	ssize_t n = REAL(recv)(fd, buf, cap, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		errno = ECONNRESET;
	if (n > 0) {
		size_t used = sfy_chain_feed(&c, buf, (size_t)n);
		if (c.e.state == SFY_ENG_DONE || (c.e.state == SFY_ENG_FAILED && c.e.rep >= 0)) {
			*reply = c.e.reply;
			rc = REAL(recv)(fd, buf, used, MSG_DONTWAIT) == (ssize_t)used ? 0 : -1;
		} else if (c.e.state == SFY_ENG_FAILED) {
			errno = c.e.err;
		} else {
			/* A part is here: is the rest still coming, or did the proxy close? */
			struct pollfd p = {.fd = fd, .events = POLLRDHUP};
			errno = REAL(poll)(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? EPROTO : EAGAIN;
		}
	}
	sfy_engine_take_gss(&c.e); /* still the parked one */
	free(buf);
	return rc;
}

int sfy_bind_reply2(int fd, int wait, struct s5_reply *reply)
{
	struct sfy_io io = {.fd = fd, .deadline = sfy_deadline_after(sfy_cfg.bind_timeout_ms)};
	struct sfy_gss *g = sfy_gss_parked(fd); /* reply 1 was wrapped: so is reply 2 */
	int rc;
	if (wait) {
		struct sfy_chain_engine c;
		if (reply2_engine(&c, g) < 0)
			return -1;
		if ((rc = sfy_chain_drive(&c, &io, NULL, NULL)) == 0 || c.e.rep >= 0)
			*reply = c.e.reply, rc = 0; /* a failure code is reported below */
		sfy_engine_take_gss(&c.e); /* still the parked one */
	} else {
		rc = reply2_now(fd, g, reply); /* EAGAIN until all of it is there */
	}
	if (rc < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			sfy_log(SFY_LOG_WARN, "bind on fd %d: reply 2 from %s failed: %s", fd, sfy_cfg.proxy_text,
				errno == EPROTO ? "malformed or truncated reply" : strerror(errno));
		return -1;
	}
	if (reply->rep != S5_REP_SUCCEEDED) {
		sfy_log(SFY_LOG_WARN, "bind on fd %d: reply 2 from %s: proxy replied %d (%s)", fd, sfy_cfg.proxy_text,
			reply->rep, s5_rep_text(reply->rep));
		errno = s5_rep_errno(reply->rep);
		return -1;
	}
	return 0;
}

