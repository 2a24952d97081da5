/* threads HOST PORT NTHREADS NCONN [PEER]
 *
 * NTHREADS threads each do NCONN x (getaddrinfo + connect + GET /tT-I) and
 * check that the body names their own path, so crossed or lost
 * connections inside socksify's per-fd state show up as failures.  With
 * PEER, the body must also say that the server saw the connection come
 * from PEER (tests/servers/http_server.py answers "path=P peer=ADDR"): the
 * proxy's outbound address proves the request went through the proxy.
 * Prints "ok TOTAL" and exits 0 when every request succeeded; otherwise
 * one "fail ..." line per failure, then "failed F of TOTAL", exit 1. */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

static const char *g_host, *g_port, *g_peer;
static int g_nconn;
static pthread_mutex_t g_out_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(int t, int i, const char *what, const char *detail)
{
	pthread_mutex_lock(&g_out_lock);
	printf("fail thread=%d conn=%d: %s: %s\n", t, i, what, detail);
	fflush(stdout);
	pthread_mutex_unlock(&g_out_lock);
}

static int connect_host(int t, int i)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc = getaddrinfo(g_host, g_port, &hints, &res);
	int fd;

	if (rc != 0) {
		report(t, i, "getaddrinfo", tu_eainame(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		report(t, i, "connect", tu_errname(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Reads the whole response into buf (NUL-terminated, truncated to fit). */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while ((n = recv(fd, buf + len, cap - 1 - len, 0)) > 0) {
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	buf[len] = '\0';
	return n < 0 ? errno : 0;
}

static int one_request(int t, int i)
{
	char req[256], want[64], resp[4096];
	int fd = connect_host(t, i), err;

	if (fd < 0)
		return 0;
	if (g_peer)
		snprintf(want, sizeof(want), "path=/t%d-%d peer=%s\n", t, i, g_peer);
	else
		snprintf(want, sizeof(want), "path=/t%d-%d ", t, i);
	snprintf(req, sizeof(req), "GET /t%d-%d HTTP/1.0\r\n\r\n", t, i);
	err = tu_send_all(fd, req, strlen(req));
	if (!err)
		err = read_response(fd, resp, sizeof(resp));
	close(fd);
	if (err) {
		report(t, i, "io", tu_errname(err));
		return 0;
	}
	if (!strstr(resp, want)) {
		report(t, i, "body", g_peer ? "missing own path or the proxy's address" : "missing own path");
		return 0;
	}
	return 1;
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	long ok = 0;

	for (int i = 0; i < g_nconn; i++)
		ok += one_request(t, i);
	return (void *)ok;
}

int main(int argc, char **argv)
{
	pthread_t *tids;
	long total = 0;
	int nthreads;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: threads HOST PORT NTHREADS NCONN [PEER]\n");
		return 2;
	}
	g_peer = argc == 6 ? argv[5] : NULL;
	g_host = argv[1];
	g_port = argv[2];
	nthreads = atoi(argv[3]);
	g_nconn = atoi(argv[4]);
	if (nthreads <= 0 || g_nconn <= 0)
		return 2;
	tids = calloc((size_t)nthreads, sizeof(*tids));
	for (long t = 0; t < nthreads; t++)
		pthread_create(&tids[t], NULL, worker, (void *)t);
	for (int t = 0; t < nthreads; t++) {
		void *ok;
		pthread_join(tids[t], &ok);
		total += (long)ok;
	}
	free(tids);
	if (total == (long)nthreads * g_nconn) {
		printf("ok %ld\n", total);
		return 0;
	}
	printf("failed %ld of %ld\n", (long)nthreads * g_nconn - total,
	       (long)nthreads * g_nconn);
	return 1;
}
