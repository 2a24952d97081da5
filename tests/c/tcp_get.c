/* tcp_get HOST PORT [PATH] [--nonblock] [--family 4|6|any] [--v6sock] [--raw]
 *
 * Resolves HOST with getaddrinfo, connects to the first result, sends
 * "GET PATH HTTP/1.0" and prints the response body (everything with
 * --raw).  After connecting it prints "peer=ADDR:PORT" (getpeername) to
 * stderr.  Failures print "error: STEP: ENAME (strerror)" and exit 1, so
 * the bats suite can assert the exact errno socksify produced.
 *
 * Whether it succeeded or not, connect() is timed here and reported as
 * "connect_ms=N" on stderr (with --nonblock: until the outcome is known),
 * so the suite's time limits never include process, wrapper or namespace
 * start-up.
 *
 * --nonblock  O_NONBLOCK socket: connect() may return 0 or EINPROGRESS,
 *             completion is awaited with poll() + SO_ERROR, and all I/O
 *             goes through poll(), like an event-loop client.
 * --v6sock    use an AF_INET6 socket even for an IPv4 result, connecting
 *             to the v4-mapped address (::ffff:a.b.c.d). */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 30000

struct opts {
	const char *host, *port, *path;
	int nonblock, v6sock, raw, family;
};

static void usage(void)
{
	fprintf(stderr, "usage: tcp_get HOST PORT [PATH] [--nonblock] "
		"[--family 4|6|any] [--v6sock] [--raw]\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	const char *pos[3] = { NULL, NULL, NULL };
	int npos = 0;

	memset(o, 0, sizeof(*o));
	o->path = "/";
	o->family = AF_UNSPEC;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--nonblock") == 0)
			o->nonblock = 1;
		else if (strcmp(argv[i], "--v6sock") == 0)
			o->v6sock = 1;
		else if (strcmp(argv[i], "--raw") == 0)
			o->raw = 1;
		else if (strcmp(argv[i], "--family") == 0 && i + 1 < argc)
			o->family = tu_parse_family(argv[++i]);
		else if (strncmp(argv[i], "--", 2) != 0 && npos < 3)
			pos[npos++] = argv[i];
		else
			usage();
	}
	if (npos < 2 || o->family < 0)
		usage();
	o->host = pos[0];
	o->port = pos[1];
	if (npos == 3)
		o->path = pos[2];
}

/* Wait until fd is ready for events; 0 or ETIMEDOUT / errno. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int n = poll(&p, 1, IO_TIMEOUT_MS);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* Non-blocking connect: accept both immediate success and EINPROGRESS,
 * then read the outcome from SO_ERROR as event loops do. */
static int connect_nonblock(int fd, const struct sockaddr *sa, socklen_t len)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return errno;
	err = wait_fd(fd, POLLOUT);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return errno;
	return err;
}

static int open_and_connect(const struct opts *o, const struct addrinfo *ai)
{
	struct sockaddr_in6 mapped;
	const struct sockaddr *sa = ai->ai_addr;
	socklen_t len = ai->ai_addrlen;
	int family = ai->ai_family;
	int fd, err;
	long t0;

	if (o->v6sock && family == AF_INET) {
		tu_map_v4((const struct sockaddr_in *)(const void *)sa, &mapped);
		sa = (const struct sockaddr *)&mapped;
		len = sizeof(mapped);
		family = AF_INET6;
	}
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0) {
		tu_report_errno("socket", errno);
		exit(1);
	}
	if (o->nonblock)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	t0 = tu_now_ms();
	if (o->nonblock)
		err = connect_nonblock(fd, sa, len);
	else
		err = connect(fd, sa, len) == 0 ? 0 : errno;
	fprintf(stderr, "connect_ms=%ld\n", tu_now_ms() - t0);
	fflush(stderr);
	if (err) {
		tu_report_errno("connect", err);
		exit(1);
	}
	return fd;
}

static void print_peer(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[128];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		tu_report_errno("getpeername", errno);
		exit(1);
	}
	tu_format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf));
	fprintf(stderr, "peer=%s\n", buf);
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		tu_format_sockaddr((struct sockaddr *)&ss, buf, sizeof(buf));
		fprintf(stderr, "local=%s\n", buf);
	}
}

/* send() everything, polling on EAGAIN in non-blocking mode. */
static int send_request(int fd, const char *req, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, req, len, MSG_NOSIGNAL);
		if (n >= 0) {
			req += n;
			len -= (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int err = wait_fd(fd, POLLOUT);
			if (err)
				return err;
		} else if (errno != EINTR) {
			return errno;
		}
	}
	return 0;
}

/* Read until EOF into a growing buffer; 0 or an errno value. */
static int read_all(int fd, char **out, size_t *outlen)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	for (;;) {
		ssize_t n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		if (!buf)
			return ENOMEM;
		n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			len += (size_t)n;
		} else if (n == 0) {
			break;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int err = wait_fd(fd, POLLIN);
			if (err)
				return free(buf), err;
		} else if (errno != EINTR) {
			return free(buf), errno;
		}
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static void print_response(const char *buf, size_t len, int raw)
{
	const char *body = raw ? NULL : memmem(buf, len, "\r\n\r\n", 4);
	size_t skip = body ? (size_t)(body - buf) + 4 : 0;

	fwrite(buf + skip, 1, len - skip, stdout);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	struct opts o;
	char req[1024], *resp = NULL;
	size_t resp_len = 0;
	int fd, rc, err;

	parse_args(argc, argv, &o);
	hints.ai_family = o.family;
	rc = getaddrinfo(o.host, o.port, &hints, &res);
	if (rc != 0) {
		printf("error: getaddrinfo: %s (%s)\n", tu_eainame(rc),
		       gai_strerror(rc));
		return 1;
	}
	fd = open_and_connect(&o, res);
	freeaddrinfo(res);
	print_peer(fd);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
		 o.path, o.host);
	err = send_request(fd, req, strlen(req));
	if (err) {
		tu_report_errno("send", err);
		return 1;
	}
	err = read_all(fd, &resp, &resp_len);
	if (err) {
		tu_report_errno("recv", err);
		return 1;
	}
	print_response(resp, resp_len, o.raw);
	free(resp);
	close(fd);
	return 0;
}
