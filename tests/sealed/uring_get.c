/* tests/sealed/uring_get.c — an HTTP/1.0 GET whose connect, send and
 * receive are io_uring operations (IORING_OP_CONNECT / SEND / RECV): the
 * kernel does them, so no libc hook ever sees the connect.  Sealed mode
 * makes io_uring_setup fail with ENOSYS; then:
 *   without --fallback: prints "io_uring: <strerror>" on stderr, exits 3;
 *   with --fallback: says so on stderr and does plain connect/write/read,
 *   which sealed mode (or the preload) proxies.
 *
 *   uring_get [--fallback] HOST PORT PATH
 *
 * The name look-up is libc's getaddrinfo (this program is dynamic). */
#include "client.h"
#include <liburing.h>
#include <sys/socket.h>

#define EXIT_NO_URING 3

static const char usage[] = "usage: uring_get [--fallback] HOST PORT PATH\n";

/* Submit the one prepared operation and wait for it: its result (>= 0),
 * or -1 with errno. */
static int run_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit(ring);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	while ((rc = io_uring_wait_cqe(ring, &cqe)) == -EINTR)
		;
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	return res;
}

static int uring_exchange(struct io_uring *ring, int fd, const struct addrinfo *a,
			  const char *host, const char *path)
{
	io_uring_prep_connect(io_uring_get_sqe(ring), fd, a->ai_addr, a->ai_addrlen);
	if (run_one(ring) < 0)
		return -1;
	char req[1024], buf[16384];
	int n = http_request(req, sizeof req, host, path);
	if (n < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int off = 0; off < n;) {
		io_uring_prep_send(io_uring_get_sqe(ring), fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
		int w = run_one(ring);
		if (w < 0)
			return -1;
		off += w;
	}
	struct resp r = {.out = stdout};
	for (;;) {
		io_uring_prep_recv(io_uring_get_sqe(ring), fd, buf, sizeof buf, 0);
		int got = run_one(ring);
		if (got < 0)
			return -1;
		if (got == 0)
			return resp_done(&r);
		if (resp_feed(&r, buf, (size_t)got))
			return -1;
	}
}

int main(int argc, char **argv)
{
	int fallback = 0, i = 1;
	client_start();
	if (i < argc && !strcmp(argv[i], "--fallback"))
		fallback = 1, i++;
	if (argc - i != 3) {
		fprintf(stderr, "%s", usage);
		return EXIT_USAGE;
	}
	const char *host = argv[i], *port = argv[i + 1], *path = argv[i + 2];
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		fail_gai(rc);
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail_errno(errno);
	struct io_uring ring;
	rc = io_uring_queue_init(8, &ring, 0);
	if (rc < 0) {
		fprintf(stderr, "io_uring: %s\n", strerror(-rc));
		if (!fallback)
			return EXIT_NO_URING;
		fprintf(stderr, "uring_get: falling back to connect/write/read\n");
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) || http_exchange(fd, host, path, stdout))
			fail_errno(errno);
	} else {
		if (uring_exchange(&ring, fd, ai, host, path))
			fail_errno(errno);
		io_uring_queue_exit(&ring);
	}
	close(fd);
	freeaddrinfo(ai);
	return 0;
}
