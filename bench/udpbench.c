/* bench/udpbench.c — UDP round trips and throughput, for bench/udp.py.
 *
 *   udpbench -s ADDR PORT            echo server (one thread); prints
 *                                    "ready" once bound.  A datagram
 *                                    "?whoami" is answered with the
 *                                    sender's address instead
 *   udpbench HOST PORT who           prints the address the server saw
 *   udpbench [-n N] [-l LEN] HOST PORT lat
 *       N sequential round trips of LEN-byte datagrams on one unconnected
 *       socket (sendto/recvfrom); prints the median round trip in us, then
 *       "from=ADDR" (the source of the last echo) on stderr
 *   udpbench [-n N] [-l LEN] [-w W] HOST PORT tput
 *       N datagrams of LEN bytes with at most W unanswered at a time (a
 *       sliding window: each echo lets one more go); a datagram lost is
 *       given up after 200 ms of silence (the whole window counts as lost).  Prints "DGRAMS_PER_S MB_PER_S
 *       RECEIVED".
 * The socket is made and the first datagram sent before the clock starts
 * (an association through a proxy is set up there). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int serve(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE }, *ai;
	char buf[65536];
	int fd;

	if (getaddrinfo(addr, port, &hints, &ai) != 0)
		return 1;
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("udpbench: bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (void *)&from, &fl);
		if (n == 7 && memcmp(buf, "?whoami", 7) == 0) {
			char who[INET6_ADDRSTRLEN] = "?";
			if (from.ss_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, who, sizeof(who));
			sendto(fd, who, strlen(who), 0, (void *)&from, fl);
			continue;
		}
		if (n >= 0)
			sendto(fd, buf, (size_t)n, 0, (void *)&from, fl);
	}
}

static int wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai;
	int n = 2000, len = 64, win = 32, opt, fd, i;
	char buf[65536], host[64] = "?";
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);

	while ((opt = getopt(argc, argv, "sn:l:w:")) != -1) {
		if (opt == 's')
			return argc - optind == 2 ? serve(argv[optind], argv[optind + 1]) : 2;
		if (opt == 'n')
			n = atoi(optarg);
		else if (opt == 'l')
			len = atoi(optarg);
		else if (opt == 'w')
			win = atoi(optarg);
		else
			return 2;
	}
	if (argc - optind != 3 || n < 1 || len < 1 || len > 60000 || win < 1)
		return 2;
	if (getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai) != 0)
		return 1;
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	memset(buf, 'u', (size_t)len);
	/* Warm-up round trip: the association (if any) is made here. */
	if (sendto(fd, buf, (size_t)len, 0, ai->ai_addr, ai->ai_addrlen) < 0 || !wait_in(fd, 3000) ||
	    recvfrom(fd, buf, sizeof(buf), 0, (void *)&from, &fl) < 0) {
		perror("udpbench: warm-up");
		return 1;
	}
	if (from.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, host, sizeof(host));
	if (strcmp(argv[optind + 2], "who") == 0) {
		ssize_t r;
		if (sendto(fd, "?whoami", 7, 0, ai->ai_addr, ai->ai_addrlen) < 0 || !wait_in(fd, 3000) ||
		    (r = recv(fd, buf, sizeof(buf) - 1, 0)) < 0)
			return 1;
		buf[r] = 0;
		printf("%s\n", buf);
	} else if (strcmp(argv[optind + 2], "lat") == 0) {
		double *t = calloc((size_t)n, sizeof(*t));
		for (i = 0; i < n; i++) {
			double t0 = now_us();
			if (sendto(fd, buf, (size_t)len, 0, ai->ai_addr, ai->ai_addrlen) < 0 ||
			    !wait_in(fd, 1000) || recv(fd, buf, sizeof(buf), 0) < 0) {
				fprintf(stderr, "udpbench: round trip %d lost\n", i);
				return 1;
			}
			t[i] = now_us() - t0;
		}
		qsort(t, (size_t)n, sizeof(*t), cmp);
		printf("%.2f\n", t[n / 2]);
	} else {
		int sent = 0, got = 0, lost = 0;
		double t0 = now_us(), el;
		while (got + lost < n) {
			while (sent < n && sent - got - lost < win) {
				if (sendto(fd, buf, (size_t)len, 0, ai->ai_addr, ai->ai_addrlen) < 0)
					break;
				sent++;
			}
			if (!wait_in(fd, 200)) {
				lost += sent - got - lost; /* given up on the window */
				continue;
			}
			while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
				got++;
		}
		el = (now_us() - t0) / 1e6;
		printf("%.0f %.2f %d\n", got / el, got * (double)len / el / 1e6, got);
	}
	fprintf(stderr, "from=%s\n", host);
	return 0;
}
