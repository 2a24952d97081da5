/* tests/sealed/client.h — what the sealed-mode test clients share: error
 * reporting in the form the bats suites assert on, the HTTP/1.0 exchange on
 * a connected socket, and the latency summary of -n N -t.
 *
 * Every client prints the response body on stdout.  On failure it prints
 *   ERR <errno name> <strerror>      (e.g. "ERR ECONNREFUSED Connection refused")
 * on stderr and exits 2; a failed name look-up prints ERR EAI_<code> with
 * gai_strerror's text.  Usage errors exit 64.
 *
 * Header-only (static functions) so that each client is one translation
 * unit and build.sh stays one compiler line per client. */
#ifndef SEALED_CLIENT_H
#define SEALED_CLIENT_H

#include <errno.h>
#include <signal.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAIL 2
#define EXIT_USAGE 64

/* A peer that closes early is an error to report (ERR EPIPE), not a
 * SIGPIPE death: write() stays plain write() (no MSG_NOSIGNAL send), so
 * the clients make the same calls as an ordinary program. */
static inline void client_start(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static inline void fail_errno(int err)
{
	const char *name = strerrorname_np(err);
	fprintf(stderr, "ERR %s %s\n", name ? name : "E?", strerror(err));
	exit(EXIT_FAIL);
}

static inline void fail_gai(int rc)
{
	static const struct { int code; const char *name; } names[] = {
		{EAI_NONAME, "EAI_NONAME"}, {EAI_AGAIN, "EAI_AGAIN"},
		{EAI_FAIL, "EAI_FAIL"},     {EAI_FAMILY, "EAI_FAMILY"},
		{EAI_SERVICE, "EAI_SERVICE"}, {EAI_MEMORY, "EAI_MEMORY"},
	};
	if (rc == EAI_SYSTEM)
		fail_errno(errno);
	const char *name = "EAI_OTHER";
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].code == rc)
			name = names[i].name;
	fprintf(stderr, "ERR %s %s\n", name, gai_strerror(rc));
	exit(EXIT_FAIL);
}

/* The request for HOST PATH into buf; its length, or -1 when too long. */
static inline int http_request(char *buf, size_t cap, const char *host, const char *path)
{
	int n = snprintf(buf, cap, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
			 path, host);
	return n > 0 && (size_t)n < cap ? n : -1;
}

/* Collects a response fed in pieces and writes its body to out (NULL: keep
 * nothing).  The header is at most sizeof hdr; anything longer is an error,
 * so a response is never stored whole. */
struct resp {
	char hdr[8192];
	size_t got;   /* bytes of hdr in use until the end of the header */
	int in_body;
	FILE *out;
};

/* 0, or -1 with errno = EPROTO when the header does not fit. */
static inline int resp_feed(struct resp *r, const char *b, size_t n)
{
	if (r->in_body) {
		if (r->out)
			fwrite(b, 1, n, r->out);
		return 0;
	}
	size_t take = sizeof r->hdr - r->got;
	if (take > n)
		take = n;
	memcpy(r->hdr + r->got, b, take);
	r->got += take;
	char *end = memmem(r->hdr, r->got, "\r\n\r\n", 4);
	if (!end) {
		if (r->got == sizeof r->hdr) {
			errno = EPROTO;
			return -1;
		}
		return 0;
	}
	r->in_body = 1;
	size_t hlen = (size_t)(end + 4 - r->hdr);
	if (r->out)
		fwrite(r->hdr + hlen, 1, r->got - hlen, r->out);
	if (take < n && r->out)
		fwrite(b + take, 1, n - take, r->out);
	return 0;
}

/* The response ended: 0 when it had a header and an HTTP status line. */
static inline int resp_done(struct resp *r)
{
	if (!r->in_body || r->got < 5 || memcmp(r->hdr, "HTTP/", 5)) {
		errno = EPROTO;
		return -1;
	}
	if (r->out)
		fflush(r->out);
	return 0;
}

/* Write the request and read the response to EOF with read()/write(). */
static inline int http_exchange(int fd, const char *host, const char *path, FILE *out)
{
	char req[1024], buf[16384];
	int n = http_request(req, sizeof req, host, path);
	if (n < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, req + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (int)w;
	}
	struct resp r = {.out = out};
	for (;;) {
		ssize_t got = read(fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			return resp_done(&r);
		if (resp_feed(&r, buf, (size_t)got))
			return -1;
	}
}

static inline double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* -t: one line on stderr (the same fields goget prints):
 *   lat n=N median_us=M p10_us=A p90_us=B total_s=T conn_per_s=R */
static inline void lat_summary(double *t, int n, double total_us)
{
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	fprintf(stderr, "lat n=%d median_us=%.1f p10_us=%.1f p90_us=%.1f total_s=%.3f conn_per_s=%.1f\n",
		n, t[n / 2], t[n / 10], t[n * 9 / 10], total_us / 1e6, n / (total_us / 1e6));
}

/* A positive count for -n, or a usage error. */
static inline int parse_count(const char *s, const char *usage)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || v < 1 || v > 10000000) {
		fprintf(stderr, "%s", usage);
		exit(EXIT_USAGE);
	}
	return (int)v;
}

#endif
