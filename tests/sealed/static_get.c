/* tests/sealed/static_get.c — an HTTP/1.0 GET from a statically linked
 * program (glibc, -static): no PT_INTERP, so the loader never reads
 * LD_PRELOAD and the preload cannot see its look-ups or connects.  Its
 * getaddrinfo() is static glibc's own: it reads /etc/hosts and sends DNS to
 * resolv.conf's nameserver itself.  Sealed mode must proxy both.
 *
 *   static_get [-n N] [-t] HOST PORT PATH
 *
 * Prints the body (with -n, of the last connection).  -n N: N sequential
 * connections, each with its own getaddrinfo, for the bench.  -t: the
 * latency summary line on stderr (client.h). */
#include "client.h"
#include <sys/socket.h>

static const char usage[] = "usage: static_get [-n N] [-t] HOST PORT PATH\n";

/* getaddrinfo, then each address in turn until one connects. */
static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		fail_gai(rc);
	int fd = -1, err = EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen)) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		fail_errno(err);
	return fd;
}

int main(int argc, char **argv)
{
	int n = 1, timing = 0, o;
	client_start();
	while ((o = getopt(argc, argv, "n:t")) != -1) {
		if (o == 'n')
			n = parse_count(optarg, usage);
		else if (o == 't')
			timing = 1;
		else {
			fprintf(stderr, "%s", usage);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "%s", usage);
		return EXIT_USAGE;
	}
	const char *host = argv[optind], *port = argv[optind + 1], *path = argv[optind + 2];
	double *t = malloc(sizeof *t * (size_t)n), t0 = now_us();
	if (!t)
		fail_errno(ENOMEM);
	for (int i = 0; i < n; i++) {
		double a = now_us();
		int fd = dial(host, port);
		if (http_exchange(fd, host, path, i == n - 1 ? stdout : NULL))
			fail_errno(errno);
		close(fd);
		t[i] = now_us() - a;
	}
	if (timing)
		lat_summary(t, n, now_us() - t0);
	free(t);
	return 0;
}
