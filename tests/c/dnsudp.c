/* dnsudp NS NAME [--type A|AAAA] [--tcp] [--close-range] [--dup2-all]
 *        [--get PORT PATH] [--garbage]
 *
 * A program with its own DNS client, as dig or c-ares are: asks NS (an
 * address; port 53) for NAME and prints one line per way of asking:
 *   "connected: peer=ADDR from=ADDR rcode=N addr=IP" (connect + send + recvfrom)
 *   "unconnected: from=ADDR rcode=N addr=IP"          (sendto + recvfrom)
 *   "tcp: rcode=N addr=IP"                            (--tcp: DNS over TCP)
 * and "source_ok=1" per UDP way when the answer's source is NS:53.
 * --close-range  close_range(3, ~0U, 0) after the first question
 * --dup2-all     after the first question, dup2() /dev/null over every fd
 *                >= 3 in /proc/self/fd, then close them
 * --get PORT PATH  then connects to the address got, sends "GET PATH", and
 *                prints "peer=ADDR" and the response's first line
 * --garbage      sends bad input instead (see garbage()), one line each.
 * Failures print "error: STEP: ENAME (...)" and exit 1. */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WAIT_MS 3000

static struct sockaddr_storage ns;
static socklen_t ns_len;
static int qtype = 1;

static size_t build_query(unsigned char *q, const char *name, int type, unsigned id)
{
	size_t n = 0;
	unsigned char hdr[12] = {id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	memcpy(q, hdr, 12);
	n = 12;
	while (*name) {
		size_t l = strcspn(name, ".");
		q[n++] = (unsigned char)l;
		memcpy(q + n, name, l);
		n += l;
		name += l + (name[l] == '.');
	}
	q[n++] = 0;
	q[n++] = 0, q[n++] = (unsigned char)type, q[n++] = 0, q[n++] = 1;
	return n;
}

static size_t skip_name(const unsigned char *m, size_t len, size_t at)
{
	while (at < len) {
		if ((m[at] & 0xc0) == 0xc0)
			return at + 2;
		if (m[at] == 0)
			return at + 1;
		at += m[at] + 1u;
	}
	return len;
}

/* rcode, and the first A/AAAA answer as text in addr ("-" if none). */
static int parse_reply(const unsigned char *m, size_t len, char *addr, size_t cap)
{
	snprintf(addr, cap, "-");
	if (len < 12)
		return -1;
	unsigned an = m[6] << 8 | m[7];
	size_t at = skip_name(m, len, 12) + 4;
	for (unsigned i = 0; i < an && at < len; i++) {
		at = skip_name(m, len, at);
		if (at + 10 > len)
			break;
		unsigned type = m[at] << 8 | m[at + 1], rdlen = m[at + 8] << 8 | m[at + 9];
		at += 10;
		if (at + rdlen > len)
			break;
		if ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)) {
			inet_ntop(type == 1 ? AF_INET : AF_INET6, m + at, addr, (socklen_t)cap);
			break;
		}
		at += rdlen;
	}
	return m[3] & 15;
}

static int wait_in(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static int same_as_ns(const struct sockaddr *from)
{
	char a[80], b[80];
	tu_format_sockaddr(from, a, sizeof a);
	tu_format_sockaddr((struct sockaddr *)&ns, b, sizeof b);
	return strcmp(a, b) == 0;
}

/* One UDP question; 0 and the address got in addr, or -1. */
static int udp_ask(const char *name, int connected, char *addr, size_t cap)
{
	const char *way = connected ? "connected" : "unconnected";
	unsigned char q[512], r[4096];
	int fd = socket(ns.ss_family, SOCK_DGRAM, 0);
	size_t qn = build_query(q, name, qtype, 0x1234 + (unsigned)connected);
	char peer[80] = "-", from_s[80];
	if (connected) {
		struct sockaddr_storage p;
		socklen_t plen = sizeof p;
		if (connect(fd, (struct sockaddr *)&ns, ns_len) < 0)
			return tu_report_errno("connect", errno), -1;
		if (getpeername(fd, (struct sockaddr *)&p, &plen) < 0)
			return tu_report_errno("getpeername", errno), -1;
		tu_format_sockaddr((struct sockaddr *)&p, peer, sizeof peer);
		if (send(fd, q, qn, 0) != (ssize_t)qn)
			return tu_report_errno("send", errno), -1;
	} else if (sendto(fd, q, qn, 0, (struct sockaddr *)&ns, ns_len) != (ssize_t)qn) {
		return tu_report_errno("sendto", errno), -1;
	}
	if (!wait_in(fd, WAIT_MS))
		return tu_report_errno(connected ? "recv connected" : "recv unconnected", ETIMEDOUT), -1;
	struct sockaddr_storage from;
	socklen_t flen = sizeof from;
	ssize_t n = recvfrom(fd, r, sizeof r, 0, (struct sockaddr *)&from, &flen);
	if (n < 0)
		return tu_report_errno("recvfrom", errno), -1;
	tu_format_sockaddr((struct sockaddr *)&from, from_s, sizeof from_s);
	int rcode = parse_reply(r, (size_t)n, addr, cap);
	if (connected)
		printf("%s: peer=%s from=%s rcode=%d addr=%s\n", way, peer, from_s, rcode, addr);
	else
		printf("%s: from=%s rcode=%d addr=%s\n", way, from_s, rcode, addr);
	if (same_as_ns((struct sockaddr *)&from))
		printf("source_ok=1\n");
	fflush(stdout);
	close(fd);
	return 0;
}

static int tcp_connect_ns(void)
{
	int fd = socket(ns.ss_family, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&ns, ns_len) < 0)
		return tu_report_errno("tcp connect", errno), -1;
	return fd;
}

/* Whatever arrives within WAIT_MS: a framed reply's rcode, "eof", or "none". */
static void tcp_read_reply(int fd, const char *what, char *addr, size_t cap)
{
	unsigned char r[70000];
	size_t have = 0;
	while (wait_in(fd, WAIT_MS)) {
		ssize_t n = read(fd, r + have, sizeof r - have);
		if (n <= 0) {
			printf("%s: %s\n", what, n == 0 ? "eof" : "error");
			return;
		}
		have += (size_t)n;
		if (have >= 2 && have >= 2u + (r[0] << 8 | r[1])) {
			printf("%s: rcode=%d", what, parse_reply(r + 2, have - 2, addr, cap));
			printf(" addr=%s\n", addr);
			return;
		}
	}
	printf("%s: none\n", what);
}

static int tcp_ask(const char *name, char *addr, size_t cap)
{
	unsigned char q[514];
	int fd = tcp_connect_ns();
	if (fd < 0)
		return -1;
	size_t n = build_query(q + 2, name, qtype, 0x4321);
	q[0] = (unsigned char)(n >> 8), q[1] = (unsigned char)n;
	if (tu_send_all(fd, (char *)q, n + 2) != 0)
		return tu_report_errno("tcp send", errno), -1;
	tcp_read_reply(fd, "tcp", addr, cap);
	close(fd);
	return 0;
}

static void udp_garbage(const char *what, const unsigned char *m, size_t n)
{
	unsigned char r[4096];
	char addr[64];
	int fd = socket(ns.ss_family, SOCK_DGRAM, 0);
	connect(fd, (struct sockaddr *)&ns, ns_len);
	ssize_t s = send(fd, m, n, 0);
	if (s < 0) {
		printf("%s: send %s\n", what, tu_errname(errno));
	} else if (!wait_in(fd, 500)) {
		printf("%s: no reply\n", what);
	} else {
		ssize_t got = recv(fd, r, sizeof r, 0);
		printf("%s: rcode=%d\n", what, got < 0 ? -1 : parse_reply(r, (size_t)got, addr, sizeof addr));
	}
	close(fd);
}

static void garbage(const char *name)
{
	static unsigned char big[65536];
	unsigned char m[512];
	char addr[64];
	udp_garbage("short", (const unsigned char *)"abc", 3);
	unsigned char response[12] = {0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	udp_garbage("response", response, 12);
	unsigned char truncated[12] = {0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	udp_garbage("truncated", truncated, 12);
	memset(big, 'x', sizeof big);
	udp_garbage("big", big, 65000);
	udp_garbage("toobig", big, sizeof big);
	int fd = tcp_connect_ns();
	if (fd >= 0) {
		write(fd, "\0\0", 2);
		tcp_read_reply(fd, "tcp-zero", addr, sizeof addr);
		close(fd);
	}
	if ((fd = tcp_connect_ns()) >= 0) {
		big[0] = big[1] = 0xff;
		tu_send_all(fd, (char *)big, 2 + 65535);
		tcp_read_reply(fd, "tcp-huge", addr, sizeof addr);
		close(fd);
	}
	size_t n = build_query(m, name, qtype, 7);
	(void)n;
	if (udp_ask(name, 1, addr, sizeof addr) == 0)
		printf("after: ok\n");
}

static void dup2_all(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int fds[1024], n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 1024) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dirfd(d) && fd != null)
			fds[n++] = fd;
	}
	if (d)
		closedir(d);
	int refused = 0;
	for (int i = 0; i < n; i++) {
		if (dup2(null, fds[i]) < 0)
			refused++;
		close(fds[i]);
		syscall(SYS_close, fds[i]);
	}
	close(null);
	printf("dup2-all: %d fds, %d refused\n", n, refused);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return fprintf(stderr, "usage: dnsudp NS NAME [options]\n"), 2;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM}, *ai;
	if (getaddrinfo(argv[1], "53", &hints, &ai) != 0)
		return fprintf(stderr, "bad address %s\n", argv[1]), 2;
	memcpy(&ns, ai->ai_addr, ai->ai_addrlen);
	ns_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	const char *name = argv[2], *port = NULL, *path = "/";
	int tcp = 0, crange = 0, dup2s = 0, bad = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc)
			qtype = !strcmp(argv[++i], "AAAA") ? 28 : 1;
		else if (!strcmp(argv[i], "--tcp"))
			tcp = 1;
		else if (!strcmp(argv[i], "--close-range"))
			crange = 1;
		else if (!strcmp(argv[i], "--dup2-all"))
			dup2s = 1;
		else if (!strcmp(argv[i], "--garbage"))
			bad = 1;
		else if (!strcmp(argv[i], "--get") && i + 2 < argc)
			port = argv[++i], path = argv[++i];
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (bad)
		return garbage(name), 0;
	char addr[64];
	if (udp_ask(name, 1, addr, sizeof addr) < 0)
		return 1;
	if (crange)
		printf("close_range: %d\n", (int)syscall(SYS_close_range, 3, ~0U, 0) == 0 ? 0 : errno);
	if (dup2s)
		dup2_all();
	if (udp_ask(name, 0, addr, sizeof addr) < 0)
		return 1;
	if (tcp && tcp_ask(name, addr, sizeof addr) < 0)
		return 1;
	if (!port)
		return 0;
	struct addrinfo h2 = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
	if (getaddrinfo(addr, port, &h2, &ai) != 0)
		return tu_report_errno("no address to connect to", EINVAL), 1;
	int fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		return tu_report_errno("connect", errno), 1;
	char req[300], resp[512], peer[80];
	struct sockaddr_storage p;
	socklen_t plen = sizeof p;
	getpeername(fd, (struct sockaddr *)&p, &plen);
	tu_format_sockaddr((struct sockaddr *)&p, peer, sizeof peer);
	printf("peer=%s\n", peer);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, name);
	tu_send_all(fd, req, strlen(req));
	ssize_t n = wait_in(fd, WAIT_MS) ? read(fd, resp, sizeof resp - 1) : -1;
	resp[n > 0 ? n : 0] = '\0';
	resp[strcspn(resp, "\r\n")] = '\0';
	printf("response: %s\n", resp);
	return n > 0 ? 0 : 1;
}
