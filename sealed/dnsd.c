/* The supervisor's DNS answerer: programs the preload does not see (Go's
 * own resolver, static glibc) send their queries for the local resolver
 * here instead, and get the session pool's answers, the same ones the
 * preloaded library gives (shim/dns_answer.c): fake addresses, so the
 * connect that follows reaches the proxy by name.  No query leaves.
 *
 * UDP and TCP, on loopback, IPv4 and IPv6 (when the namespace has ::1).  A
 * connected socket is connected here (sfy_dnsd_redirect); an unconnected
 * one's datagram is sent here from the program's own socket
 * (sfy_dnsd_forward), so the answer comes back to it.  The answer's source
 * is this answerer, not the nameserver: resolvers that check it (musl)
 * drop it, and their names fail, closed. */
#include "shim.h"
#include "sup.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfy_dns.h"
#include "sfy_log.h"
#include "sfy_resolve.h"

#define SFY_DNSD_TCP_CONNS 16     /* TCP clients at once; more are closed */
#define SFY_DNSD_TCP_IDLE_MS 10000 /* a TCP client silent this long is closed */
#define SFY_DNS_MSG_MAX 65535

static int udp4 = -1, udp6 = -1, tcp4 = -1, tcp6 = -1;
static struct sockaddr_in at4;
static struct sockaddr_in6 at6;
static int tcp_conns;

static int open_one(int family, int type, struct sockaddr_storage *addr)
{
	int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int one = 1;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)addr, len) < 0 || (type == SOCK_STREAM && listen(fd, 16) < 0) ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* UDP and TCP on the same port number, so one address serves both. */
static int open_pair(int family, int *u, int *t, struct sockaddr_storage *addr)
{
	for (int tries = 0; tries < 8; tries++) {
		struct sockaddr_storage a = *addr;
		*u = open_one(family, SOCK_DGRAM, &a);
		if (*u < 0)
			return -1;
		*t = open_one(family, SOCK_STREAM, &a);
		if (*t >= 0) {
			*addr = a;
			return 0;
		}
		close(*u);
		*u = -1;
	}
	return -1;
}

int sfy_dnsd_start(void)
{
	struct sockaddr_storage a4 = {0}, a6 = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a6;
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s6->sin6_family = AF_INET6;
	s6->sin6_addr = in6addr_loopback;
	if (open_pair(AF_INET, &udp4, &tcp4, &a4) < 0)
		return -1;
	at4 = *s4;
	if (open_pair(AF_INET6, &udp6, &tcp6, &a6) == 0)
		at6 = *s6; /* else no ::1 here: IPv6 sockets use ::ffff:127.0.0.1 */
	return 0;
}

int sfy_dnsd_fds(int *fds)
{
	int n = 0, all[4] = {udp4, udp6, tcp4, tcp6};
	for (int i = 0; i < 4; i++)
		if (all[i] >= 0)
			fds[n++] = all[i];
	return n;
}

/* The answer to one query: the session's, or SERVFAIL for a name only
 * the real resolver may answer (direct_domain): the supervisor does not
 * forward.  Length, or 0 to drop. */
static ssize_t answer(const uint8_t *q, size_t len, uint8_t *out, size_t cap)
{
	ssize_t r = sfy_dns_respond(q, len, out, cap);
	if (r >= 0)
		return r;
	struct sfy_dns_question qq;
	if (sfy_dns_parse_query(q, len, &qq) < 0)
		return 0;
	sfy_log(SFY_LOG_WARN, "sealed: %s is a direct_domain name, which the supervisor does not resolve: SERVFAIL", qq.name);
	r = sfy_dns_build_reply(q, &qq, SFY_DNS_R_SERVFAIL, NULL, 0, 0, out, cap);
	return r < 0 ? 0 : r;
}

static void serve_udp(int fd)
{
	for (int i = 0; i < 64; i++) { /* bounded: the loop has other work */
		uint8_t q[4096], out[4096];
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		ssize_t r = answer(q, (size_t)n, out, sizeof out);
		if (r > 0)
			sendto(fd, out, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
	}
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, SFY_DNSD_TCP_IDLE_MS) <= 0)
			return -1;
		ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

static void *tcp_client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *q = malloc(SFY_DNS_MSG_MAX), *out = malloc(SFY_DNS_MSG_MAX + 2);
	uint8_t hdr[2];
	while (q && out && read_full(fd, hdr, 2) == 0) {
		size_t len = (size_t)hdr[0] << 8 | hdr[1];
		if (read_full(fd, q, len) < 0)
			break;
		ssize_t r = answer(q, len, out + 2, SFY_DNS_MSG_MAX);
		if (r <= 0)
			break;
		out[0] = (uint8_t)(r >> 8);
		out[1] = (uint8_t)r;
		struct sfy_io io = {.fd = fd, .deadline = sfy_deadline_after(SFY_DNSD_TCP_IDLE_MS)};
		if (sfy_send_all(&io, out, (size_t)r + 2) < 0)
			break;
	}
	free(q);
	free(out);
	close(fd);
	__atomic_sub_fetch(&tcp_conns, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

static void serve_tcp(int fd)
{
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	if (__atomic_add_fetch(&tcp_conns, 1, __ATOMIC_ACQ_REL) > SFY_DNSD_TCP_CONNS ||
	    pthread_create(&th, &attr, tcp_client, (void *)(intptr_t)c) != 0) {
		__atomic_sub_fetch(&tcp_conns, 1, __ATOMIC_ACQ_REL);
		close(c);
	}
	pthread_attr_destroy(&attr);
}

void sfy_dnsd_serve(int fd)
{
	if (fd == udp4 || fd == udp6)
		serve_udp(fd);
	else
		serve_tcp(fd);
}

/* The answerer's address for a socket of family: 0 and *addr, or -1. */
static int target_for(int family, int v6_mapped, struct sockaddr_storage *addr, socklen_t *len)
{
	memset(addr, 0, sizeof *addr);
	if (family == AF_INET) {
		memcpy(addr, &at4, sizeof at4);
		*len = sizeof at4;
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	if (v6_mapped) {
		sfy_map_v4(&at4, (struct sockaddr_in6 *)addr);
	} else {
		if (at6.sin6_family != AF_INET6)
			return -1;
		memcpy(addr, &at6, sizeof at6);
	}
	*len = sizeof(struct sockaddr_in6);
	return 0;
}

static int sock_family(int sock)
{
	int family = -1;
	socklen_t len = sizeof family;
	return getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &family, &len) == 0 ? family : -1;
}

int sfy_dnsd_redirect(int sock, int type)
{
	int family = sock_family(sock);
	for (int mapped = 1; mapped >= 0; mapped--) {
		struct sockaddr_storage a;
		socklen_t len;
		if (target_for(family, mapped, &a, &len) < 0)
			continue;
		if (connect(sock, (struct sockaddr *)&a, len) == 0)
			return 0;
		if (type == SOCK_STREAM && (errno == EINPROGRESS || errno == EINTR))
			return sfy_connect_finish(sock, sfy_deadline_after(2000));
		if (family == AF_INET)
			break;
	}
	if (!errno)
		errno = EAFNOSUPPORT;
	return -1;
}

int sfy_dnsd_forward(int sock, const void *query, size_t len)
{
	int family = sock_family(sock);
	for (int mapped = 1; mapped >= 0; mapped--) {
		struct sockaddr_storage a;
		socklen_t alen;
		if (target_for(family, mapped, &a, &alen) < 0)
			continue;
		if (sendto(sock, query, len, MSG_DONTWAIT, (struct sockaddr *)&a, alen) >= 0)
			return 0;
		if (family == AF_INET)
			break;
	}
	if (!errno)
		errno = EAFNOSUPPORT;
	return -1;
}
