/* The SOCKS5 exchange (CONNECT, and BIND's two replies) on the caller's own
 * fd, which keeps its mode throughout (see shim/wire.c for the reads and
 * writes). */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sfy_fdtable.h"
#include "sfy_log.h"

struct exchange {
	struct sfy_io io;
	const char *step; /* for the log line when it fails */
	int rep;          /* reply code, -1 until one arrived */
};

/* The proxy's choice among the methods we offered (NONE and/or USERPASS). */
static int read_method(struct exchange *x, int offered_none, int offered_userpass)
{
	uint8_t buf[2], method;
	x->step = "greeting";
	if (sfy_recv_exact(&x->io, buf, 2) < 0)
		return -1;
	if (s5_decode_method(buf, 2, &method) != 2) {
		errno = EPROTO;
		return -1;
	}
	if (method == S5_METHOD_UNACCEPTABLE) {
		x->step = offered_userpass ? "greeting (proxy accepts none of our methods)"
					   : "greeting (proxy requires authentication; set a username and password)";
		errno = EACCES;
		return -1;
	}
	if (method == S5_METHOD_USERPASS && offered_userpass)
		return S5_METHOD_USERPASS;
	if (method == S5_METHOD_NONE && offered_none)
		return S5_METHOD_NONE;
	x->step = "greeting (proxy chose a method we did not offer)";
	errno = EPROTO;
	return -1;
}

static int encode_auth(uint8_t *buf, size_t cap)
{
	int n = s5_encode_auth(buf, cap, sfy_cfg.user, sfy_cfg.pass);
	if (n < 0)
		errno = EINVAL;
	return n;
}

static int read_auth_status(struct exchange *x)
{
	uint8_t buf[2], status;
	x->step = "authentication";
	if (sfy_recv_exact(&x->io, buf, 2) < 0)
		return -1;
	if (s5_decode_auth(buf, 2, &status) != 2) {
		errno = EPROTO;
		return -1;
	}
	if (status != 0) {
		x->step = "authentication (user name or password rejected)";
		errno = EACCES;
		return -1;
	}
	return 0;
}

static int encode_request(struct exchange *x, uint8_t *buf, size_t cap, uint8_t cmd, const struct s5_addr *dst)
{
	int n = s5_encode_request(buf, cap, cmd, dst);
	x->step = "request";
	if (n < 0)
		errno = EINVAL;
	return n;
}

static int read_request_reply(struct exchange *x, struct s5_reply *reply)
{
	x->step = "reply";
	if (sfy_read_reply(&x->io, reply) < 0)
		return -1;
	x->rep = reply->rep;
	if (reply->rep != S5_REP_SUCCEEDED) {
		errno = s5_rep_errno(reply->rep);
		return -1;
	}
	return 0;
}

/* One message and its answer at a time: greeting, method, [RFC 1929
 * request, status,] request, reply.  Every proxy takes this. */
static int exchange_stepwise(struct exchange *x, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply)
{
	uint8_t buf[S5_AUTH_REQUEST_MAX];
	int with_auth = sfy_cfg.user[0] != '\0';
	int n = s5_encode_greeting(buf, sizeof buf, with_auth), method;
	x->step = "greeting";
	if (sfy_send_all(&x->io, buf, (size_t)n) < 0 || (method = read_method(x, 1, with_auth)) < 0)
		return -1;
	if (method == S5_METHOD_USERPASS &&
	    ((n = encode_auth(buf, sizeof buf)) < 0 || sfy_send_all(&x->io, buf, (size_t)n) < 0 || read_auth_status(x) < 0))
		return -1;
	if ((n = encode_request(x, buf, sizeof buf, cmd, dst)) < 0 || sfy_send_all(&x->io, buf, (size_t)n) < 0)
		return -1;
	return read_request_reply(x, reply);
}

/* pipeline = yes: a greeting offering only the method we will use, the
 * RFC 1929 request if that is the one, and the request, in one write; then
 * the answers in order.  One round trip instead of two (or three), but a
 * proxy that reads one message per recv() (microsocks) never answers. */
static int exchange_pipelined(struct exchange *x, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply)
{
	uint8_t buf[3 + S5_AUTH_REQUEST_MAX + S5_REQUEST_MAX];
	int with_auth = sfy_cfg.user[0] != '\0';
	int n = s5_encode_greeting_for(buf, sizeof buf, with_auth ? S5_METHOD_USERPASS : S5_METHOD_NONE), m;
	if (with_auth && (m = encode_auth(buf + n, sizeof buf - (size_t)n)) < 0)
		return -1;
	n += with_auth ? m : 0;
	if ((m = encode_request(x, buf + n, sizeof buf - (size_t)n, cmd, dst)) < 0)
		return -1;
	x->step = "greeting";
	if (sfy_send_all(&x->io, buf, (size_t)(n + m)) < 0 || read_method(x, !with_auth, with_auth) < 0)
		return -1;
	if (with_auth && read_auth_status(x) < 0)
		return -1;
	return read_request_reply(x, reply);
}

/* Connect fd to the proxy within connect_timeout, in the fd's own mode: a
 * non-blocking fd connects in the background and is polled; a blocking one
 * connects in place, bounded by SO_SNDTIMEO (which bounds connect() on
 * Linux), set for the call and put back after it.  connect_timeout = 0:
 * no bound of ours, as the program's own connect() would be. */
static int connect_proxy(int fd, unsigned facts, int nonblock, const struct sockaddr *proxy, socklen_t len)
{
	long long deadline = sfy_deadline_after(sfy_cfg.connect_timeout_ms);
	int bound = !nonblock && sfy_cfg.connect_timeout_ms > 0;
	struct timeval saved = {0, 0};
	socklen_t slen = sizeof saved;
	if (bound) {
		/* The program's own send timeout comes back afterwards: read it
		 * unless socket() made this fd and it never set one. */
		if ((facts & (SFY_SOCK_TCP | SFY_SOCK_SNDTIMEO)) != SFY_SOCK_TCP &&
		    getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &saved, &slen) < 0)
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
		if (getsockopt(from, level, name, a, &alen) < 0 || getsockopt(to, level, name, b, &blen) < 0)
			continue;
		if (alen == blen && memcmp(a, b, alen) == 0)
			continue; /* left at the default: do not pin it (buffers autotune) */
		if ((name == SO_RCVBUF || name == SO_SNDBUF) && level == SOL_SOCKET && alen == sizeof(int)) {
			int v;
			memcpy(&v, a, sizeof v);
			v /= 2; /* the kernel reports twice what was set */
			memcpy(a, &v, sizeof v);
		}
		setsockopt(to, level, name, a, alen);
	}
}

int sfy_swap_socket(int fd, int fresh)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	int rc = fl < 0 || fdfl < 0 ? -1 : REAL(dup3)(fresh, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	int saved = errno;
	REAL(close)(fresh);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	return fcntl(fd, F_SETFL, fl);
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
static int proxy_addr_for(int fd, int family, struct sockaddr_storage *out, socklen_t *len)
{
	int v6only = 0;
	socklen_t vlen = sizeof v6only;
	int pfamily = sfy_cfg.proxy.ss_family;
	memcpy(out, &sfy_cfg.proxy, sizeof *out);
	*len = sfy_cfg.proxy_len;
	if (family == pfamily)
		return 0;
	if (family == AF_INET6 && pfamily == AF_INET &&
	    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vlen) == 0 && !v6only) {
		memset(out, 0, sizeof *out);
		sfy_map_v4((const struct sockaddr_in *)&sfy_cfg.proxy, (struct sockaddr_in6 *)out);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	sfy_log(SFY_LOG_DEBUG, "fd %d: socket family %d cannot reach proxy %s; replacing the socket", fd, family,
		sfy_cfg.proxy_text);
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

/* One log line for the outcome; the destination is formatted only when
 * the line is written. */
static void log_outcome(uint8_t cmd, const struct s5_addr *dst, const struct exchange *x, int err, long long t0)
{
	const char *verb = cmd == S5_CMD_CONNECT ? "connect" : "bind";
	char what[300];
	if (!sfy_log_enabled(err ? SFY_LOG_WARN : SFY_LOG_INFO))
		return;
	s5_addr_text(dst, what, sizeof what);
	if (!x)
		sfy_log(SFY_LOG_WARN, "%s %s refused: configuration error (%s)", verb, what, sfy_cfg.error);
	else if (!err)
		sfy_log(SFY_LOG_INFO, "%s %s via %s (%s dns) ok %.1fms", verb, what, sfy_cfg.proxy_text,
			dst->atyp == S5_ATYP_DOMAIN ? "remote" : "no", (double)(sfy_now_us() - t0) / 1000.0);
	else if (x->rep >= 0)
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed: proxy replied %d (%s)", verb, what, sfy_cfg.proxy_text, x->rep,
			s5_rep_text((uint8_t)x->rep));
	else
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed at %s: %s", verb, what, sfy_cfg.proxy_text, x->step,
			err == EPROTO ? "malformed or truncated reply" : strerror(err));
}

/* What CONNECT and BIND share: reach the proxy on fd, negotiate, send cmd
 * for dst and read the (first) reply.  Logs the outcome either way. */
static int run_request(int fd, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply, int app_family)
{
	if (!sfy_cfg.valid) {
		log_outcome(cmd, dst, NULL, EACCES, 0);
		errno = EACCES;
		return -1;
	}
	struct sockaddr_storage proxy;
	socklen_t proxy_len;
	unsigned facts = sfy_sock_facts(fd);
	int nonblock = (facts & SFY_SOCK_TCP) ? (facts & SFY_SOCK_NONBLOCK) != 0 : sfy_fd_nonblocking(fd);
	if (nonblock < 0 || proxy_addr_for(fd, app_family, &proxy, &proxy_len) < 0)
		return -1;
	long long t0 = sfy_now_us();
	struct exchange x = {.io.fd = fd, .step = "connect to proxy", .rep = -1};
	int rc = -1;
	if (connect_proxy(fd, facts, nonblock, (struct sockaddr *)&proxy, proxy_len) == 0) {
		x.io.deadline = sfy_deadline_after(sfy_cfg.handshake_timeout_ms);
		x.io.blocking = !nonblock && x.io.deadline == SFY_NO_DEADLINE;
		rc = sfy_cfg.pipeline ? exchange_pipelined(&x, cmd, dst, reply) : exchange_stepwise(&x, cmd, dst, reply);
	}
	int err = rc == 0 ? 0 : errno;
	log_outcome(cmd, dst, &x, err, t0);
	if (rc == 0)
		return 0;
	if (x.step[0] != 'c') /* past the TCP connect: the proxy must not keep a half-set-up session */
		shutdown(fd, SHUT_RDWR);
	errno = err;
	return -1;
}

int sfy_proxy_connect(int fd, const struct sockaddr *app_addr, socklen_t app_len, const struct s5_addr *dst)
{
	struct sfy_fdinfo info = {.kind = SFY_FD_CONNECTED, .peer_len = app_len, .app_family = app_addr->sa_family};
	struct s5_reply reply;
	memcpy(&info.peer, app_addr, app_len < sizeof info.peer ? app_len : sizeof info.peer);
	if (run_request(fd, S5_CMD_CONNECT, dst, &reply, info.app_family) < 0)
		return -1;
	/* getsockname() will report the proxy's side of the connection, as the
	 * peer sees it: programs that put their own address in the protocol
	 * (FTP PORT/EPRT, as curl does) must advertise that one. */
	if (!s5_addr_unspecified(&reply.bnd))
		info.local_len = sfy_socks_to_sockaddr(&reply.bnd, info.app_family, &info.local, 1);
	sfy_fd_set(fd, &info);
	pthread_mutex_lock(&last_dst_lock);
	last_dst = *dst;
	have_last_dst = 1;
	pthread_mutex_unlock(&last_dst_lock);
	return 0;
}

int sfy_proxy_bind(int fd, const struct s5_addr *dst, struct s5_reply *reply1, int app_family)
{
	return run_request(fd, S5_CMD_BIND, dst, reply1, app_family);
}

/* Reply 2 without waiting: EAGAIN until all of it is there, and nothing
 * consumed before that (peek, then take exactly the reply). */
static int reply2_now(int fd, struct s5_reply *reply)
{
	uint8_t buf[S5_REPLY_MAX];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0) {
		if (n == 0)
			errno = ECONNRESET;
		return -1;
	}
	int used = s5_decode_reply(buf, (size_t)n, reply);
	if (used < 0) {
		errno = EPROTO;
		return -1;
	}
	if (used == 0) {
		/* A part is here: is the rest still coming, or did the proxy close? */
		struct pollfd p = {.fd = fd, .events = POLLRDHUP};
		errno = poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? EPROTO : EAGAIN;
		return -1;
	}
	return recv(fd, buf, (size_t)used, MSG_DONTWAIT) == used ? 0 : -1;
}

int sfy_bind_reply2(int fd, int wait, struct s5_reply *reply)
{
	struct sfy_io io = {.fd = fd, .deadline = sfy_deadline_after(sfy_cfg.bind_timeout_ms)};
	int rc = wait ? sfy_read_reply(&io, reply) : reply2_now(fd, reply);
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

