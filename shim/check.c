/* socksify-check: the program behind "socksify --check [HOST[:PORT]]".
 *
 * Prints the configuration the library would load in this environment and
 * where it came from, says which rule HOST falls under, then talks to the
 * proxy itself (greeting, auth, CONNECT) and reports every step with its
 * timing.  It is a separate program, not part of the library: it must run
 * un-preloaded, and it uses blocking steps with poll() deadlines, which is
 * simpler than the library's in-place exchange and enough for a diagnosis.
 * It shares the library's config parser, rules and codec, so what it says
 * is what the library would do. */
#include "check.h"
#include "sfy_chain.h"
#include "sfy_config.h"
#include "sfy_hosts.h"
#include "sfy_wire.h"
#include "socks5_codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What the user asked about: HOST[:PORT], split and classified. */
struct target {
	char host[S5_NAME_MAX + 1];
	uint16_t port;
	struct sockaddr_storage sa; /* the literal (or locally resolved) address */
	int direct;                 /* 1: the connection would not use the proxy */
	int via_name;               /* 1: CONNECT carries the name (remote DNS) */
};

/* A timeout of 0 is no limit in the library; the probe still ends. */
#define PROBE_NO_LIMIT_MS 30000
static int probe_ms(int configured)
{
	return configured ? configured : PROBE_NO_LIMIT_MS;
}

/* Milliseconds with a fraction, for the step timings printed. */
static double now_ms(void)
{
	return (double)sfy_now_us() / 1e3;
}

/* HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address; the port defaults to 80. */
static int parse_target(const char *arg, struct target *t)
{
	const char *host = arg, *port = NULL;
	size_t hlen;
	memset(t, 0, sizeof *t);
	t->port = 80;
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -1;
		host = arg + 1, hlen = (size_t)(end - host);
		port = end[1] ? end + 2 : NULL;
	} else {
		const char *colon = strchr(arg, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* bare IPv6: no port */
		hlen = colon ? (size_t)(colon - arg) : strlen(arg);
		port = colon ? colon + 1 : NULL;
	}
	if (hlen < 1 || hlen > S5_NAME_MAX)
		return -1;
	memcpy(t->host, host, hlen);
	t->host[hlen] = '\0';
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			return -1;
		t->port = (uint16_t)p;
	}
	return 0;
}

static int literal_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return 1;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		return 1;
	}
	return 0;
}

/* The reason an address goes direct, or NULL when it goes via the proxy;
 * mirrors sfy_addr_is_direct, which only answers yes or no. */
static const char *direct_reason(const struct sfy_config *cfg, const struct sockaddr *sa, char *buf, size_t cap)
{
	if (sfy_addr_is_proxy(cfg, sa))
		return "it is the proxy's own address";
	if (!sfy_addr_is_direct(cfg, sa))
		return NULL;
	char text[80];
	for (int i = 0; i < cfg->n_direct; i++)
		if (sfy_cidr_match(&cfg->direct[i], sa)) {
			sfy_check_cidr_text(&cfg->direct[i], text, sizeof text);
			snprintf(buf, cap, "it matches \"direct = %s\"", text);
			return buf;
		}
	return "loopback, and direct_loopback = yes";
}

static void explain_addr(const struct sfy_config *cfg, struct target *t)
{
	char why[128];
	const char *reason = direct_reason(cfg, (struct sockaddr *)&t->sa, why, sizeof why);
	if (reason) {
		t->direct = 1;
		printf("rule: %s:%u goes DIRECT, not through the proxy: %s\n", t->host, t->port, reason);
	} else {
		printf("rule: %s:%u goes via proxy %s (CONNECT to the address; no direct rule matches)\n", t->host,
		       t->port, cfg->proxy_text);
	}
}

/* remote_dns = no: libc resolves the name, then the address rules apply. */
static int explain_local_name(const struct sfy_config *cfg, struct target *t)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(t->host, NULL, &hints, &res);
	if (rc != 0) {
		printf("rule: %s is resolved locally (remote_dns = no), and that failed: %s\n", t->host,
		       gai_strerror(rc));
		return -1;
	}
	memcpy(&t->sa, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	((struct sockaddr_in *)&t->sa)->sin_port = htons(t->port); /* same offset in sockaddr_in6 */
	char a[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = (struct sockaddr *)&t->sa;
	inet_ntop(sa->sa_family,
		  sa->sa_family == AF_INET ? (void *)&((struct sockaddr_in *)sa)->sin_addr
					   : (void *)&((struct sockaddr_in6 *)sa)->sin6_addr,
		  a, sizeof a);
	printf("name: %s is resolved locally (remote_dns = no): %s\n", t->host, a);
	explain_addr(cfg, t);
	return 0;
}

/* Names in /etc/hosts (and localhost) are read from the file by the
 * library, before any other rule, so the address rules decide. */
static int explain_hosts_name(const struct sfy_config *cfg, struct target *t)
{
	struct sfy_host_addr a;
	char text[INET6_ADDRSTRLEN];
	if (sfy_hosts_lookup("/etc/hosts", t->host, AF_UNSPEC, &a, 1) < 1) {
		if (strcasecmp(t->host, "localhost") != 0)
			return 0;
		a.family = AF_INET;
		a.u.v4.s_addr = htonl(INADDR_LOOPBACK);
	}
	inet_ntop(a.family, &a.u, text, sizeof text);
	literal_addr(text, t->port, &t->sa);
	printf("name: %s is read from /etc/hosts: %s (no DNS)\n", t->host, text);
	explain_addr(cfg, t);
	return 1;
}

static int explain_target(const struct sfy_config *cfg, struct target *t)
{
	if (literal_addr(t->host, t->port, &t->sa)) {
			explain_addr(cfg, t);
		return 0;
	}
	if (explain_hosts_name(cfg, t))
		return 0;
	for (int i = 0; i < cfg->n_direct_domain; i++)
		if (sfy_domain_match(cfg->direct_domain[i], t->host)) {
			t->direct = 1;
			printf("rule: %s:%u goes DIRECT, not through the proxy: it matches \"direct_domain = %s\" "
			       "(resolved locally, connected directly)\n",
			       t->host, t->port, cfg->direct_domain[i]);
			return 0;
		}
	if (!cfg->remote_dns)
		return explain_local_name(cfg, t);
	t->via_name = 1;
	printf("rule: %s:%u goes via proxy %s; the name is resolved by the proxy (remote DNS), "
	       "never locally\n",
	       t->host, t->port, cfg->proxy_text);
	return 0;
}

/* Connects to the proxy within connect_timeout; the fd or -1 with errno. */
static int dial_proxy(const struct sfy_config *cfg)
{
	const struct sockaddr *sa = (const struct sockaddr *)&cfg->proxy;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, sa, cfg->proxy_len) < 0 &&
	    (errno != EINPROGRESS || sfy_connect_finish(fd, sfy_now_ms() + probe_ms(cfg->connect_timeout_ms)) < 0)) {
		int err = errno;
		close(fd);
		return errno = err, -1;
	}
	return fd;
}

/* Appends whatever arrives to buf; -1 with errno, ECONNRESET for EOF. */
static int recv_more(struct sfy_io *io, uint8_t *buf, size_t cap, size_t *len)
{
	for (;;) {
		if (*len >= cap)
			return errno = EPROTO, -1;
		ssize_t n = recv(io->fd, buf + *len, cap - *len, 0);
		if (n > 0) {
			*len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return errno = ECONNRESET, -1;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if (sfy_wait_fd(io->fd, POLLIN, io->deadline) < 0)
			return -1;
	}
}

/* One failed step, in words a user can act on. */
static void step_failed(const char *step, double t0, int err, const struct sfy_config *cfg)
{
	double ms = now_ms() - t0;
	if (err == ETIMEDOUT && strcmp(step, "connect") != 0)
		printf("%-9s FAILED after %.1f ms: no answer from the proxy within handshake_timeout (%gs)\n", step,
		       ms, probe_ms(cfg->handshake_timeout_ms) / 1e3);
	else if (err == ETIMEDOUT)
		printf("%-9s FAILED after %.1f ms: %s did not answer within connect_timeout (%gs)\n", step, ms,
		       cfg->proxy_text, probe_ms(cfg->connect_timeout_ms) / 1e3);
	else if (err == ECONNRESET)
		printf("%-9s FAILED after %.1f ms: the proxy closed the connection\n", step, ms);
	else if (err == EPROTO)
		printf("%-9s FAILED after %.1f ms: malformed answer (not a SOCKS5 proxy?)\n", step, ms);
	else
		printf("%-9s FAILED after %.1f ms: %s\n", step, ms, strerror(err));
}

/* The UDP probe repeats the greeting and auth on a second connection:
 * their "ok" lines are shown once. */
static int quiet_ok;

/* Greeting; returns the method the proxy chose, or -1 (reported). */
static int step_greeting(struct sfy_io *io, const struct sfy_config *cfg)
{
	uint8_t out[S5_GREETING_MAX], in[8];
	size_t len = 0;
	uint8_t method;
	double t0 = now_ms();
	int n = s5_encode_greeting(out, sizeof out, cfg->user[0] != 0);
	if (sfy_send_all(io, out, (size_t)n) < 0)
		return step_failed("greeting", t0, errno, cfg), -1;
	while ((n = s5_decode_method(in, len, &method)) == 0)
		if (recv_more(io, in, sizeof in, &len) < 0)
			return step_failed("greeting", t0, errno, cfg), -1;
	if (n < 0)
		return step_failed("greeting", t0, EPROTO, cfg), -1;
	double ms = now_ms() - t0;
	if (method == S5_METHOD_NONE || (method == S5_METHOD_USERPASS && cfg->user[0])) {
		if (!quiet_ok)
			printf("greeting  ok in %.1f ms: proxy chose method X'%02X' (%s)\n", ms, method,
		       method == S5_METHOD_NONE ? "no authentication" : "username/password");
		return method;
	}
	printf("greeting  FAILED after %.1f ms: proxy answered method X'%02X' (%s); we offered %s\n", ms, method,
	       method == S5_METHOD_UNACCEPTABLE ? "no acceptable methods" : "a method we did not offer",
	       cfg->user[0] ? "no-auth and username/password" : "no-auth only: does it need a username/password?");
	return -1;
}

/* RFC 1929 sub-negotiation; 0 or -1 (reported). */
static int step_auth(struct sfy_io *io, const struct sfy_config *cfg)
{
	uint8_t out[S5_AUTH_REQUEST_MAX], in[8];
	size_t len = 0;
	uint8_t status;
	double t0 = now_ms();
	int n = s5_encode_auth(out, sizeof out, cfg->user, cfg->pass);
	if (n < 0 || sfy_send_all(io, out, (size_t)n) < 0)
		return step_failed("auth", t0, n < 0 ? EINVAL : errno, cfg), -1;
	while ((n = s5_decode_auth(in, len, &status)) == 0)
		if (recv_more(io, in, sizeof in, &len) < 0)
			return step_failed("auth", t0, errno, cfg), -1;
	if (n < 0)
		return step_failed("auth", t0, EPROTO, cfg), -1;
	double ms = now_ms() - t0;
	if (status != 0) {
		printf("auth      FAILED after %.1f ms: username/password rejected for user \"%s\" (status %u)\n", ms,
		       cfg->user, status);
		return -1;
	}
	if (!quiet_ok)
		printf("auth      ok in %.1f ms: username/password accepted for user \"%s\"\n", ms, cfg->user);
	return 0;
}

static void target_addr(const struct target *t, struct s5_addr *dst)
{
	memset(dst, 0, sizeof *dst);
	if (t->via_name) {
		s5_addr_from_name(dst, t->host, t->port);
		return;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&t->sa;
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	s5_addr_from_sockaddr(dst, sa, t->port);
}

/* CONNECT to the target; 0 or -1 (reported). */
static int step_connect(struct sfy_io *io, const struct sfy_config *cfg, const struct target *t)
{
	uint8_t out[S5_REQUEST_MAX], in[S5_REPLY_MAX];
	size_t len = 0;
	struct s5_addr dst;
	struct s5_reply reply;
	char what[300], bnd[300];
	double t0 = now_ms();
	target_addr(t, &dst);
	s5_addr_text(&dst, what, sizeof what);
	int n = s5_encode_request(out, sizeof out, S5_CMD_CONNECT, &dst);
	if (n < 0 || sfy_send_all(io, out, (size_t)n) < 0)
		return step_failed("CONNECT", t0, n < 0 ? EINVAL : errno, cfg), -1;
	while ((n = s5_decode_reply(in, len, &reply)) == 0)
		if (recv_more(io, in, sizeof in, &len) < 0)
			return step_failed("CONNECT", t0, errno, cfg), -1;
	if (n < 0)
		return step_failed("CONNECT", t0, EPROTO, cfg), -1;
	double ms = now_ms() - t0;
	if (reply.rep != S5_REP_SUCCEEDED) {
		printf("CONNECT   FAILED after %.1f ms: %s: proxy replied %u (%s); a program would get %s\n", ms,
		       what, reply.rep, s5_rep_text(reply.rep), strerror(s5_rep_errno(reply.rep)));
		return -1;
	}
	s5_addr_text(&reply.bnd, bnd, sizeof bnd);
	printf("CONNECT   ok in %.1f ms: %s: proxy replied 0 (%s), bound %s\n", ms, what, s5_rep_text(0), bnd);
	return 0;
}

/* UDP ASSOCIATE with DST 0.0.0.0:0 on a connection of its own: what
 * udp = proxy will get.  Informational: a proxy without UDP is no error
 * of the configuration. */
static void step_udp(const struct sfy_config *cfg)
{
	uint8_t out[S5_REQUEST_MAX], in[S5_REPLY_MAX];
	size_t len = 0;
	struct s5_addr dst = {.atyp = cfg->proxy.ss_family == AF_INET ? S5_ATYP_IPV4 : S5_ATYP_IPV6};
	struct s5_reply reply;
	char bnd[300];
	if (cfg->udp_mode != SFY_UDP_PROXY) {
		printf("udp       skipped: udp = %s\n", cfg->udp_mode == SFY_UDP_BLOCK ? "block" : "allow");
		return;
	}
	double t0 = now_ms();
	int fd = dial_proxy(cfg);
	if (fd < 0) {
		step_failed("udp", t0, errno, cfg);
		return;
	}
	struct sfy_io io = {.fd = fd, .deadline = sfy_now_ms() + probe_ms(cfg->handshake_timeout_ms)};
	quiet_ok = 1;
	int method = step_greeting(&io, cfg);
	if (method == S5_METHOD_USERPASS && step_auth(&io, cfg) < 0)
		method = -1;
	quiet_ok = 0;
	int n = method < 0 ? -1 : s5_encode_request(out, sizeof out, S5_CMD_UDP_ASSOCIATE, &dst);
	if (n > 0 && sfy_send_all(&io, out, (size_t)n) < 0) {
		step_failed("udp", t0, errno, cfg);
		n = -1;
	}
	if (n > 0)
		while ((n = s5_decode_reply(in, len, &reply)) == 0)
			if (recv_more(&io, in, sizeof in, &len) < 0) {
				step_failed("udp", t0, errno, cfg);
				n = -1;
				break;
			}
	close(fd);
	if (n == S5_EVERSION || n == S5_ERSV || n == S5_EATYP || n == S5_ENAME)
		step_failed("udp", t0, EPROTO, cfg);
	if (n <= 0)
		return;
	if (reply.rep != S5_REP_SUCCEEDED) {
		printf("udp       NOT available after %.1f ms: udp associate refused: proxy replied %u (%s); "
		       "a program's UDP to proxied destinations fails with %s (never direct)\n",
		       now_ms() - t0, reply.rep, s5_rep_text(reply.rep), strerror(s5_rep_errno(reply.rep)));
		return;
	}
	s5_addr_text(&reply.bnd, bnd, sizeof bnd);
	printf("udp       ok in %.1f ms: udp associate ok, relay %s%s\n", now_ms() - t0, bnd,
	       strncmp(bnd, "0.0.0.0:", 8) && strncmp(bnd, "[::]:", 5) ? "" : " (the proxy's own address)");
}

/* The live probe: TCP connect, greeting, auth, CONNECT; 0 when all pass. */
static int probe(const struct sfy_config *cfg, const struct target *t)
{
	double t0 = now_ms();
	int fd = dial_proxy(cfg);
	if (fd < 0) {
		step_failed("connect", t0, errno, cfg);
		printf("          is a SOCKS5 proxy running at %s?\n", cfg->proxy_text);
		return -1;
	}
	printf("connect   ok in %.1f ms: TCP connection to %s\n", now_ms() - t0, cfg->proxy_text);
	if (cfg->gssapi)
		printf("gssapi    not probed here: give a destination (socksify --check HOST) to run the GSSAPI "
		       "exchange; this probe offers %s only\n", cfg->user[0] ? "username/password and no-auth" : "no-auth");
	/* One deadline for the whole exchange, as the library has. */
	struct sfy_io io = {.fd = fd, .deadline = sfy_now_ms() + probe_ms(cfg->handshake_timeout_ms)};
	int rc = -1, method = step_greeting(&io, cfg);
	if (method == S5_METHOD_USERPASS && step_auth(&io, cfg) < 0)
		method = -1;
	if (method == S5_METHOD_NONE && cfg->user[0])
		printf("auth      skipped: the proxy needs no authentication\n");
	if (method >= 0 && t && !t->direct)
		rc = step_connect(&io, cfg, t);
	else if (method >= 0)
		rc = 0;
	close(fd);
	if (method >= 0)
		step_udp(cfg);
	return rc;
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	struct sfy_config cfg;
	struct target t;
	if (argc > 2 || (argc == 2 && (argv[1][0] == '-' || parse_target(argv[1], &t) < 0))) {
		fprintf(stderr, "usage: socksify --check [HOST[:PORT]]   (HOST may be a name, an IPv4 "
				"address or [IPv6]; PORT defaults to 80)\n");
		return 2;
	}
	/* Never setuid: the environment counts, as for the programs it checks. */
	sfy_config_load(&cfg, 0, env_get);
	sfy_check_print_config(&cfg);
	sfy_check_print_session(&cfg);
	sfy_check_print_sealed(&cfg);
	if (!cfg.valid) {
		printf("config ERROR: %s\n", cfg.error);
		printf("every proxied connection fails (EACCES) until this is fixed\n");
		return 1;
	}
	int ok = 1;
	const struct sfy_chain *route = NULL;
	if (argc == 2 && explain_target(&cfg, &t) < 0)
		ok = 0;
	if (argc == 2 && ok)
		route = sfy_check_print_route_for(&cfg, t.host, t.via_name ? t.host : NULL,
						  t.via_name ? NULL : (const struct sockaddr *)&t.sa, t.port);
	if (argc == 2 && t.direct)
		printf("CONNECT   skipped: %s does not use the proxy\n", t.host);
	if (route && !t.direct &&
	    (route != &cfg.routes[0] || route->n > 1 || route->hop[0].hop.type != SFY_HOP_SOCKS5 ||
	     route->hop[route->n - 1].hop.gssapi)) {
		/* A chain, another route, another protocol or GSSAPI: every hop
		 * of it, through the engine the library drives. */
		struct s5_addr dst;
		target_addr(&t, &dst);
		printf("probe: the route for %s, hop by hop\n", t.host);
		if (sfy_check_probe_route(&cfg, route, &dst) < 0)
			ok = 0;
	} else {
		printf("probe: %s\n", cfg.proxy_text);
		if (probe(&cfg, argc == 2 && ok ? &t : NULL) < 0)
			ok = 0;
	}
	printf("result: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
