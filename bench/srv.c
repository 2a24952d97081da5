/* bench/srv.c — the benchmark's HTTP/1.0 origin server (loopback only).
 * One process, one connection at a time (the benchmarks are sequential).
 * GET /bulk/N answers N bytes of body; anything else answers the client's
 * address (so the driver can check a connection really came through danted).
 * usage: srv ADDR PORT   (prints "ready" on stdout once listening) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void serve(int c, const char *peer)
{
	char req[2048];
	size_t got = 0;
	while (got < sizeof req - 1) {
		ssize_t r = read(c, req + got, sizeof req - 1 - got);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	int bulk = strncmp(req, "GET /bulk/", 10) == 0;
	unsigned long long body = bulk ? strtoull(req + 10, NULL, 10) : strlen(peer);
	char head[192];
	/* the small answer goes in one write, so the client's read count (and
	 * the syscall counts of the benchmark) does not depend on timing */
	int hn = snprintf(head, sizeof head,
			  "HTTP/1.0 200 OK\r\nContent-Length: %llu\r\n\r\n%s", body,
			  bulk ? "" : peer);
	if (write_all(c, head, (size_t)hn) || !bulk)
		return;
	static char buf[1 << 16];
	while (body) {
		size_t n = body < sizeof buf ? (size_t)body : sizeof buf;
		if (write_all(c, buf, n))
			return;
		body -= n;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: srv ADDR PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
		return 2;
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 128)) {
		perror("srv: bind/listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_in pa;
		socklen_t pl = sizeof pa;
		char peer[INET_ADDRSTRLEN] = "?";
		int c = accept(s, (struct sockaddr *)&pa, &pl);
		if (c < 0)
			continue;
		inet_ntop(AF_INET, &pa.sin_addr, peer, sizeof peer);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		serve(c, peer);
		close(c);
	}
}
