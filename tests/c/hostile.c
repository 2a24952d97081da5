/* hostile ADDR PORT [--bind] [--attempts N] [--expect-data TEXT]
 *
 * The client side of the hostile-proxy matrix (tests/bats/hostile.bats).
 * Run under the shim (LD_PRELOAD), against a misbehaving test server.
 *
 * Counts the entries of /proc/self/fd, then makes N attempts (default 3),
 * each on a fresh TCP socket that is closed afterwards:
 *   default   connect() to ADDR:PORT (numeric IPv4 or IPv6), which the
 *             shim turns into a SOCKS5 CONNECT;
 *   --bind    bind() to the wildcard address, port 0, listen() (the shim's
 *             BIND and reply 1) and a blocking accept() (reply 2); the
 *             accepted fd is closed too.
 * On success with --expect-data, the bytes that follow the reply must be
 * exactly TEXT (read within 3 s): "data=ok", else "data=bad:GOT".
 *
 * One line per attempt:
 *   attempt=I step=STEP errno=ENAME elapsed_ms=N [data=...]
 * where STEP is the call that decided the outcome (connect, listen or
 * accept; on success the slowest one) and elapsed_ms its duration; then
 * the summary, the line the suite parses:
 *   errno=ENAME elapsed_ms=MAX fds_before=A fds_after=B
 * ENAME is "0" on success, the attempts' common errno name, or "MIXED".
 * With --expect-data the summary also carries data=ok|bad.
 * Exit status 0 when all attempts agree and no fd leaked, else 1. */
#include "testutil.h"

#include <dirent.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define DATA_WAIT_MS 3000

struct opts {
	const char *addr, *port, *expect;
	int bind, attempts;
};

struct outcome {
	int err;
	const char *step;
	long elapsed_ms;
	int data_ok;
};

static void usage(void)
{
	fprintf(stderr, "usage: hostile ADDR PORT [--bind] [--attempts N] [--expect-data TEXT]\n");
	exit(2);
}

/* Entries of /proc/self/fd (the directory's own fd counts in both calls). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Read exactly want bytes within DATA_WAIT_MS and compare them. */
static int check_data(int fd, const char *want, char *got, size_t cap)
{
	size_t len = strlen(want), have = 0;
	long deadline = tu_now_ms() + DATA_WAIT_MS;

	if (len >= cap)
		len = cap - 1;
	while (have < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = deadline - tu_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, got + have, len - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	got[have] = '\0';
	return have == len && memcmp(got, want, len) == 0;
}

static void parse_addr(const struct opts *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	int port = atoi(o->port);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, o->addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
	} else if (inet_pton(AF_INET6, o->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
	} else {
		usage();
	}
}

/* Times one call: sets *ms; returns the call's result with errno kept. */
#define TIMED(ms, call) ({ long t0_ = tu_now_ms(); int r_ = (call); int e_ = errno; \
	*(ms) = tu_now_ms() - t0_; errno = e_; r_; })

static void try_connect(const struct opts *o, struct outcome *out, char *got, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len;
	parse_addr(o, &ss, &len);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		out->err = errno;
		out->step = "socket";
		return;
	}
	out->step = "connect";
	if (TIMED(&out->elapsed_ms, connect(fd, (struct sockaddr *)&ss, len)) < 0)
		out->err = errno;
	else if (o->expect)
		out->data_ok = check_data(fd, o->expect, got, cap);
	close(fd);
}

static void try_bind(const struct opts *o, struct outcome *out, char *got, size_t cap)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	long listen_ms = 0, accept_ms = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), afd = -1;

	out->step = "socket";
	if (fd < 0) {
		out->err = errno;
		return;
	}
	out->step = "bind";
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
		out->err = errno;
		goto done;
	}
	out->step = "listen";
	if (TIMED(&listen_ms, listen(fd, 1)) < 0) {
		out->err = errno;
		out->elapsed_ms = listen_ms;
		goto done;
	}
	out->step = "accept";
	afd = TIMED(&accept_ms, accept(fd, NULL, NULL));
	if (afd < 0) {
		out->err = errno;
		out->elapsed_ms = accept_ms;
		goto done;
	}
	if (listen_ms > accept_ms)
		out->step = "listen";
	out->elapsed_ms = listen_ms > accept_ms ? listen_ms : accept_ms;
	if (o->expect)
		out->data_ok = check_data(afd, o->expect, got, cap);
	close(afd);
done:
	close(fd);
}

int main(int argc, char **argv)
{
	struct opts o = { .attempts = 3 };
	const char *pos[2];
	int npos = 0, agree = 1, all_data = 1, first_err = -1;
	long max_ms = 0;
	char got[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bind") == 0)
			o.bind = 1;
		else if (strcmp(argv[i], "--attempts") == 0 && i + 1 < argc)
			o.attempts = atoi(argv[++i]);
		else if (strcmp(argv[i], "--expect-data") == 0 && i + 1 < argc)
			o.expect = argv[++i];
		else if (strncmp(argv[i], "--", 2) != 0 && npos < 2)
			pos[npos++] = argv[i];
		else
			usage();
	}
	if (npos != 2 || o.attempts < 1)
		usage();
	o.addr = pos[0];
	o.port = pos[1];

	int before = count_fds();
	for (int i = 0; i < o.attempts; i++) {
		struct outcome out = { .err = 0 };
		got[0] = '\0';
		if (o.bind)
			try_bind(&o, &out, got, sizeof(got));
		else
			try_connect(&o, &out, got, sizeof(got));
		printf("attempt=%d step=%s errno=%s elapsed_ms=%ld", i, out.step,
		       out.err ? tu_errname(out.err) : "0", out.elapsed_ms);
		if (o.expect && !out.err)
			printf(out.data_ok ? " data=ok" : " data=bad:%s", got);
		printf("\n");
		if (first_err < 0)
			first_err = out.err;
		else if (first_err != out.err)
			agree = 0;
		if (o.expect && (out.err || !out.data_ok))
			all_data = 0;
		if (out.elapsed_ms > max_ms)
			max_ms = out.elapsed_ms;
	}
	int after = count_fds();
	printf("errno=%s elapsed_ms=%ld fds_before=%d fds_after=%d",
	       !agree ? "MIXED" : first_err ? tu_errname(first_err) : "0",
	       max_ms, before, after);
	if (o.expect)
		printf(" data=%s", all_data ? "ok" : "bad");
	printf("\n");
	return agree && before == after && before >= 0 ? 0 : 1;
}
