/* The relay test's fake protection, fake proxy and helpers
 * (tests/c/relay_test.c, its only user: every function here is used). */
#ifndef RELAY_UTIL_H
#define RELAY_UTIL_H

#include "testutil.h"

#include <dlfcn.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "sfy_fdtable.h"

#define MAX_IN 1000
#define MIB (1024 * 1024)
#define CHECK(c, ...)                                                                                                  \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			snprintf(why, sizeof why, __VA_ARGS__);                                                        \
			return -1;                                                                                     \
		}                                                                                                      \
	} while (0)

static char why[512]; /* what the failing CHECK said */
static int log_fd;
static int frames_over; /* frames the proxy saw above max_in + 1 */

/* ------------------------------------------------ the fake protection */

static long fake_wrap(void *ctx, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap)
{
	(void)ctx;
	if (n + 1 > cap) {
		snprintf(err, errcap, "too long");
		return -1;
	}
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		out[i] = in[i] ^ 0x5a;
		sum += in[i];
	}
	out[n] = sum;
	return (long)n + 1;
}

static long fake_unwrap(void *ctx, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap)
{
	(void)ctx;
	uint8_t sum = 0;
	if (n < 1 || n - 1 > cap) {
		snprintf(err, errcap, "bad token size %zu", n);
		return -1;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		out[i] = tok[i] ^ 0x5a;
		sum += out[i];
	}
	if (sum != tok[n - 1]) {
		snprintf(err, errcap, "fake integrity check failed");
		return -1;
	}
	return (long)n - 1;
}

static int freed;
static void fake_free(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&freed, 1, __ATOMIC_RELAXED);
}

static const struct sfy_prot_ops fake_ops = {fake_wrap, fake_unwrap, fake_free};

/* ------------------------------------------------------------ helpers */

/* Wait up to 3 s for the fd count to come down to want. */
static int fds_settle(int want)
{
	long end = tu_now_ms() + 3000;
	while (tu_count_fds() != want && tu_now_ms() < end)
		usleep(5000);
	return tu_count_fds();
}

/* A loopback TCP connection: *app the client (relayed), *px the proxy.
 * connect() is libc's: the library's own would route it. */
static int tcp_pair(int *app, int *px)
{
	int (*real_connect)(int, const struct sockaddr *, socklen_t) = dlsym(RTLD_NEXT, "connect");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		return -1;
	*app = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*app < 0 || real_connect(*app, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	*px = accept(l, NULL, NULL);
	close(l);
	int one = 1;
	setsockopt(*px, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return *px < 0 ? -1 : 0;
}

/* Relay *app: the program-side fd stays *app. */
static int relayed_pair(int *app, int *px, const struct sfy_epoll_reg *regs, int n)
{
	if (tcp_pair(app, px) < 0)
		return -1;
	struct sfy_fdinfo info = {.app_family = AF_INET};
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(80)};
	inet_pton(AF_INET, "192.0.2.1", &peer.sin_addr);
	memcpy(&info.peer, &peer, sizeof peer);
	info.peer_len = sizeof peer;
	struct sfy_prot p = {&fake_ops, NULL, MAX_IN};
	char what[64];
	snprintf(what, sizeof what, "fd %d to 192.0.2.1:80", *app);
	return sfy_relay_start(*app, &p, &info, regs, n, what);
}

/* One frame of plain bytes, as the proxy sends it.  Returns its length. */
static size_t frame(uint8_t *out, const void *plain, size_t n)
{
	char err[64];
	long t = fake_wrap(NULL, plain, n, out + 4, 65535, err, sizeof err);
	out[0] = 1;
	out[1] = 3;
	out[2] = (uint8_t)(t >> 8);
	out[3] = (uint8_t)t;
	return 4 + (size_t)t;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The proxy reads one frame and unwraps it: its plain length, 0 at end
 * of stream, -1 on a bad frame. */
static long proxy_read_frame(int px, uint8_t *plain)
{
	uint8_t h[4], tok[65536];
	ssize_t r = read(px, h, 1);
	if (r == 0)
		return 0;
	if (r < 0 || read_full(px, h + 1, 3) < 0 || h[0] != 1 || h[1] != 3)
		return -1;
	size_t len = (size_t)h[2] << 8 | h[3];
	if (len > MAX_IN + 1)
		__atomic_add_fetch(&frames_over, 1, __ATOMIC_RELAXED);
	char err[64];
	if (len == 0 || read_full(px, tok, len) < 0)
		return -1;
	return fake_unwrap(NULL, tok, len, plain, 65535, err, sizeof err);
}

/* What the app reads until end of stream: its length; *end the errno of
 * the end (0: EOF). */
static size_t app_read_all(int fd, uint8_t *buf, size_t cap, int *end)
{
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		*end = r == 0 ? 0 : errno;
		if (r < 0 && *end == ECONNRESET)
			(void)!read(fd, buf + got, cap - got); /* then EOF */
		return got;
	}
}

static int log_has(const char *text)
{
	char buf[16384];
	ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, text) != NULL;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		b[i] = (uint8_t)(seed >> 16);
	}
}

#endif
