/* The SOCKS5 CONNECT exchange on the caller's own fd, and the routing
 * decision that precedes it.  The fd is put in non-blocking mode for the
 * exchange so that every wait is a poll() with a deadline; the program's
 * flags are restored afterwards. */
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
#include <time.h>
#include <unistd.h>

#include "sfy_fdtable.h"
#include "sfy_log.h"

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long now_ms(void)
{
	return now_us() / 1000;
}

/* Wait for events on fd until deadline; EINTR restarts with the time left.
 * Returns the events that arrived (never 0), or -1 with errno. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return p.revents; /* readiness or an error: the next call reports which */
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int send_all(int fd, const uint8_t *buf, size_t len, long long deadline)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* Read exactly len bytes (never more: what follows belongs to the program).
 * EOF: ECONNRESET before any byte of the message, else EPROTO.  The message
 * follows our own request, so it cannot be there yet: wait first rather
 * than spend a recv() on EAGAIN. */
static int recv_exact(int fd, uint8_t *buf, size_t len, long long deadline)
{
	size_t got = 0;
	if (wait_fd(fd, POLLIN, deadline) < 0)
		return -1;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			errno = got ? EPROTO : ECONNRESET;
			return -1;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(fd, POLLIN, deadline) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* Bytes a reply occupies, from its first len bytes: 0 while unknown,
 * -1 when malformed.  A name shorter than 3 bytes would make a reply under
 * 10 bytes; read_reply() cannot take one (see there), so it is malformed
 * here (no real proxy sends one). */
static int reply_size(const uint8_t *buf, size_t len)
{
	if ((len >= 1 && buf[0] != S5_VERSION) || (len >= 3 && buf[2] != 0))
		return -1;
	if (len < 4)
		return 0;
	switch (buf[3]) {
	case S5_ATYP_IPV4: return 10;
	case S5_ATYP_IPV6: return 22;
	case S5_ATYP_DOMAIN: return len < 5 ? 0 : buf[4] < 3 ? -1 : 7 + buf[4];
	default: return -1;
	}
}

/* A reply is VER REP RSV ATYP then 4, 16 or 1+N address bytes and a port.
 * Reads ask for 10 bytes first, the whole of the usual IPv4 reply, so one
 * recv() usually does; then exactly the rest.  Never more than the reply:
 * what follows belongs to the program.  A malformed head fails at once,
 * without waiting for bytes that may never come. */
static int read_reply(int fd, struct s5_reply *reply, long long deadline)
{
	uint8_t buf[S5_REPLY_MAX];
	size_t got = 0, want = 10;
	if (wait_fd(fd, POLLIN, deadline) < 0) /* it follows our request: wait first */
		return -1;
	while (got < want) {
		ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			int size = reply_size(buf, got);
			if (size < 0) {
				errno = EPROTO;
				return -1;
			}
			if (size > 0)
				want = (size_t)size; /* never below 10: nothing read past the reply */
		} else if (n == 0) {
			errno = got ? EPROTO : ECONNRESET;
			return -1;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(fd, POLLIN, deadline) < 0)
				return -1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	if (s5_decode_reply(buf, got, reply) != (int)got) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

struct exchange {
	int fd;
	long long deadline;
	const char *step; /* for the log line when it fails */
	int rep;          /* reply code, -1 until one arrived */
};

static int negotiate_method(struct exchange *x)
{
	uint8_t buf[S5_AUTH_REQUEST_MAX];
	int with_auth = sfy_cfg.user[0] != '\0';
	int n = s5_encode_greeting(buf, sizeof buf, with_auth);
	uint8_t method;
	x->step = "greeting";
	if (send_all(x->fd, buf, (size_t)n, x->deadline) < 0 || recv_exact(x->fd, buf, 2, x->deadline) < 0)
		return -1;
	if (s5_decode_method(buf, 2, &method) != 2) {
		errno = EPROTO;
		return -1;
	}
	if (method == S5_METHOD_NONE)
		return 0;
	if (method == S5_METHOD_UNACCEPTABLE) {
		x->step = with_auth ? "greeting (proxy accepts none of our methods)"
				    : "greeting (proxy requires authentication; set a username and password)";
		errno = EACCES;
		return -1;
	}
	if (method != S5_METHOD_USERPASS || !with_auth) {
		x->step = "greeting (proxy chose a method we did not offer)";
		errno = EPROTO;
		return -1;
	}
	x->step = "authentication";
	n = s5_encode_auth(buf, sizeof buf, sfy_cfg.user, sfy_cfg.pass);
	uint8_t status;
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	if (send_all(x->fd, buf, (size_t)n, x->deadline) < 0 || recv_exact(x->fd, buf, 2, x->deadline) < 0)
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

static int request(struct exchange *x, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply)
{
	uint8_t buf[S5_REQUEST_MAX];
	int n = s5_encode_request(buf, sizeof buf, cmd, dst);
	x->step = "request";
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	if (send_all(x->fd, buf, (size_t)n, x->deadline) < 0)
		return -1;
	x->step = "reply";
	if (read_reply(x->fd, reply, x->deadline) < 0)
		return -1;
	x->rep = reply->rep;
	if (reply->rep != S5_REP_SUCCEEDED) {
		errno = s5_rep_errno(reply->rep);
		return -1;
	}
	return 0;
}

/* Connect fd (non-blocking by now) to the proxy within connect_timeout. */
static int connect_proxy(int fd, const struct sockaddr *proxy, socklen_t len)
{
	if (REAL(connect)(fd, proxy, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	int revents = wait_fd(fd, POLLOUT, now_ms() + sfy_cfg.connect_timeout_ms);
	if (revents < 0)
		return -1;
	/* A clean POLLOUT is a connected socket; ask for the error only if
	 * there is one to ask about. */
	if (!(revents & (POLLERR | POLLHUP)))
		return 0;
	int err = 0;
	socklen_t elen = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -1;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
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

/* The program's socket cannot reach the proxy's family: put a socket of the
 * proxy's family on the same fd number, keeping flags and options. */
static int replace_socket(int fd, int family)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	int fresh = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fl < 0 || fdfl < 0 || fresh < 0) {
		if (fresh >= 0)
			REAL(close)(fresh);
		return -1;
	}
	carry_options(fd, fresh);
	int rc = REAL(dup3)(fresh, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	int saved = errno;
	REAL(close)(fresh);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	return fcntl(fd, F_SETFL, fl);
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
		const struct sockaddr_in *p4 = (const struct sockaddr_in *)&sfy_cfg.proxy;
		struct sockaddr_in6 *m = (struct sockaddr_in6 *)out;
		memset(out, 0, sizeof *out);
		m->sin6_family = AF_INET6;
		m->sin6_port = p4->sin_port;
		m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
		memcpy(m->sin6_addr.s6_addr + 12, &p4->sin_addr, 4);
		*len = sizeof *m;
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

/* What CONNECT and BIND share: reach the proxy on fd, negotiate, send cmd
 * for dst and read the (first) reply.  Logs the outcome either way. */
static int run_request(int fd, uint8_t cmd, const struct s5_addr *dst, struct s5_reply *reply, int app_family)
{
	const char *verb = cmd == S5_CMD_CONNECT ? "connect" : "bind";
	char what[300];
	s5_addr_text(dst, what, sizeof what);
	if (!sfy_cfg.valid) {
		sfy_log(SFY_LOG_WARN, "%s %s refused: configuration error (%s)", verb, what, sfy_cfg.error);
		errno = EACCES;
		return -1;
	}
	struct sockaddr_storage proxy;
	socklen_t proxy_len;
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || proxy_addr_for(fd, app_family, &proxy, &proxy_len) < 0)
		return -1;
	long long t0 = now_us();
	struct exchange x = {.fd = fd, .step = "connect to proxy", .rep = -1};
	int rc = -1;
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	if (connect_proxy(fd, (struct sockaddr *)&proxy, proxy_len) == 0) {
		x.deadline = now_ms() + sfy_cfg.handshake_timeout_ms;
		if (negotiate_method(&x) == 0 && request(&x, cmd, dst, reply) == 0)
			rc = 0;
	}
	int err = errno;
	if (!(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags);
	if (rc == 0) {
		sfy_log(SFY_LOG_INFO, "%s %s via %s (%s dns) ok %.1fms", verb, what, sfy_cfg.proxy_text,
			dst->atyp == S5_ATYP_DOMAIN ? "remote" : "no", (double)(now_us() - t0) / 1000.0);
		return 0;
	}
	if (x.rep >= 0)
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed: proxy replied %d (%s)", verb, what, sfy_cfg.proxy_text, x.rep,
			s5_rep_text((uint8_t)x.rep));
	else
		sfy_log(SFY_LOG_WARN, "%s %s via %s failed at %s: %s", verb, what, sfy_cfg.proxy_text, x.step,
			err == EPROTO ? "malformed or truncated reply" : strerror(err));
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

int s5_addr_unspecified(const struct s5_addr *a)
{
	static const uint8_t zero[16];
	if (a->atyp == S5_ATYP_IPV4)
		return memcmp(a->u.ipv4, zero, 4) == 0;
	if (a->atyp == S5_ATYP_IPV6)
		return memcmp(a->u.ipv6, zero, 16) == 0;
	return 1; /* a name is no address to report */
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
	int rc = wait ? read_reply(fd, reply, now_ms() + sfy_cfg.bind_timeout_ms) : reply2_now(fd, reply);
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

/* A SOCKS address as a sockaddr of family: the proxy's own address stands
 * in for an unspecified one (0.0.0.0, ::) or a name. */
socklen_t sfy_socks_to_sockaddr(const struct s5_addr *a, int family, struct sockaddr_storage *out, int strict)
{
	uint8_t raw[16] = {0};
	int raw_family = a->atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET;
	static const uint8_t zero[16];
	if (a->atyp == S5_ATYP_IPV4)
		memcpy(raw, a->u.ipv4, 4);
	else if (a->atyp == S5_ATYP_IPV6)
		memcpy(raw, a->u.ipv6, 16);
	if (a->atyp == S5_ATYP_DOMAIN || memcmp(raw, zero, raw_family == AF_INET ? 4 : 16) == 0) {
		raw_family = sfy_cfg.proxy.ss_family;
		if (raw_family == AF_INET)
			memcpy(raw, &((struct sockaddr_in *)&sfy_cfg.proxy)->sin_addr, 4);
		else
			memcpy(raw, &((struct sockaddr_in6 *)&sfy_cfg.proxy)->sin6_addr, 16);
	}
	memset(out, 0, sizeof *out);
	if (raw_family == AF_INET6 && family == AF_INET) {
		/* An IPv6 address cannot be shown on an IPv4 socket: a CONNECT
		 * falls back to the kernel's answer; a BIND can only hope the
		 * proxy also listens on its own (IPv4) address. */
		if (strict || sfy_cfg.proxy.ss_family != AF_INET)
			return 0;
		raw_family = AF_INET;
		memcpy(raw, &((struct sockaddr_in *)&sfy_cfg.proxy)->sin_addr, 4);
	}
	if (raw_family == AF_INET && family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, raw, 4);
		return sizeof *sin;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(a->port);
	if (raw_family == AF_INET) { /* IPv4 on an IPv6 socket: v4-mapped */
		sin6->sin6_addr.s6_addr[10] = sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(sin6->sin6_addr.s6_addr + 12, raw, 4);
	} else {
		memcpy(&sin6->sin6_addr, raw, 16);
	}
	return sizeof *sin6;
}

enum sfy_route sfy_route_for(const struct sockaddr *sa, int is_stream, struct s5_addr *dst, int *err)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	char name[S5_NAME_MAX + 1];
	int fake = sfy_fake_name(sa, name, sizeof name);
	uint16_t port = ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
						       : ((const struct sockaddr_in6 *)sa)->sin6_port);
	if (fake < 0 || (fake > 0 && !is_stream)) {
		*err = fake < 0 ? EHOSTUNREACH : EPERM;
		return SFY_ROUTE_REFUSE;
	}
	if (fake > 0) {
		s5_addr_from_name(dst, name, port);
		return SFY_ROUTE_PROXY;
	}
	if (sfy_addr_is_proxy(&sfy_cfg, sa) || sfy_addr_is_direct(&sfy_cfg, sa))
		return SFY_ROUTE_DIRECT;
	if (!is_stream) {
		*err = EPERM;
		return sfy_cfg.udp_allow ? SFY_ROUTE_DIRECT : SFY_ROUTE_REFUSE;
	}
	memset(dst, 0, sizeof *dst);
	dst->port = port;
	if (sa->sa_family == AF_INET) {
		dst->atyp = S5_ATYP_IPV4;
		memcpy(dst->u.ipv4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		dst->atyp = S5_ATYP_IPV6;
		memcpy(dst->u.ipv6, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
	}
	return SFY_ROUTE_PROXY;
}
