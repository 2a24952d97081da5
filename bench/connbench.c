/* bench/connbench.c — N sequential connect+request+response in one process.
 *
 *   connbench [-n N] [-x PROXYHOST:PORT] [-m] [-v] HOST PORT
 *
 * Each connection: getaddrinfo(HOST) (or of the proxy with -x), socket,
 * connect, write a GET, read to EOF, close, freeaddrinfo.  With -x the
 * program speaks SOCKS5 itself (the "native" client): greeting, method,
 * CONNECT with ATYP 3 (name) or 1 (IPv4 literal), and the reply read with
 * one read of 10 bytes (the whole reply for ATYP 1) plus, only for a longer
 * reply, a second read of the rest.
 *
 * Prints: "median_us p10_us p90_us n" over the per-connection wall times.
 * With -m, raw close() syscalls on fds -901..-904 mark the phases for strace:
 *   -901 | getaddrinfo | -902 | socket+connect | -903 | GET..close | -904
 * (raw syscalls, so that no preloaded close() hook sees them).
 * With -v, the body of the last response goes to stderr. */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int marks, verbose;
static const char *host, *port, *phost, *pport;

static void mark(int n)
{
	if (marks)
		syscall(SYS_close, -n);
}

static int rd_exact(int fd, unsigned char *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int socks5(int fd)
{
	unsigned char b[300];
	size_t hl = strlen(host), n = 0;
	if (write(fd, "\x05\x01\x00", 3) != 3 || rd_exact(fd, b, 2) || b[0] != 5 || b[1] != 0)
		return -1;
	b[n++] = 5, b[n++] = 1, b[n++] = 0;
	struct in_addr ip;
	if (inet_pton(AF_INET, host, &ip) == 1) {
		b[n++] = 1;
		memcpy(b + n, &ip, 4), n += 4;
	} else {
		if (hl > 255)
			return -1;
		b[n++] = 3, b[n++] = (unsigned char)hl;
		memcpy(b + n, host, hl), n += hl;
	}
	unsigned p = (unsigned)atoi(port);
	b[n++] = (unsigned char)(p >> 8), b[n++] = (unsigned char)p;
	if (write(fd, b, n) != (ssize_t)n || rd_exact(fd, b, 10) || b[1] != 0)
		return -1;
	size_t total = b[3] == 1 ? 10 : b[3] == 4 ? 22 : b[3] == 3 ? 7u + b[4] : 0;
	if (total < 10 || (total > 10 && rd_exact(fd, b + 10, total - 10)))
		return -1;
	return 0;
}

__attribute__((noinline)) int one_conn(void)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	mark(901);
	if (getaddrinfo(phost ? phost : host, phost ? pport : port, &hints, &ai))
		return -1;
	mark(902);
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) || (phost && socks5(fd))) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		errno = err;
		return -1;
	}
	mark(903);
	char req[320], buf[4096];
	int rn = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host);
	int rc = write(fd, req, (size_t)rn) == rn ? 0 : -1;
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)r;
	if (r < 0 || got < 12 || memcmp(buf, "HTTP/1.0 200", 12))
		rc = -1;
	else if (verbose) {
		buf[got] = 0;
		char *body = strstr(buf, "\r\n\r\n");
		fprintf(stderr, "%s\n", body ? body + 4 : "");
	}
	close(fd);
	freeaddrinfo(ai);
	mark(904);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = 100, o;
	while ((o = getopt(argc, argv, "n:x:mv")) != -1) {
		if (o == 'n')
			n = atoi(optarg);
		else if (o == 'm')
			marks = 1;
		else if (o == 'v')
			verbose = 1;
		else if (o == 'x') {
			char *c = strrchr(optarg, ':');
			if (!c)
				return 2;
			*c = 0;
			phost = optarg, pport = c + 1;
		} else
			return 2;
	}
	if (argc - optind != 2 || n < 1) {
		fprintf(stderr, "usage: connbench [-n N] [-x PROXYHOST:PORT] [-m] [-v] HOST PORT\n");
		return 2;
	}
	host = argv[optind], port = argv[optind + 1];
	double *t = malloc(sizeof *t * (size_t)n);
	if (!t)
		return 1;
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (one_conn()) {
			fprintf(stderr, "connbench: connection %d failed: %s\n", i, strerror(errno));
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("%.1f %.1f %.1f %d\n", t[n / 2], t[n / 10], t[n * 9 / 10], n);
	return 0;
}
