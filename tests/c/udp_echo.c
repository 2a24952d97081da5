/* udp_echo [options] HOST PORT
 *
 * A UDP echo client for tests/bats/udp.bats: sends datagrams to an echo
 * server and checks every reply's content and source.
 *   --connect        connect() then send()/recv() (default: sendto/recvfrom)
 *   --msg            sendmsg()/recvmsg() (two iovecs each way)
 *   --mmsg           sendmmsg()/recvmmsg() (batches of 4)
 *   --rw             connect() then write()/read()
 *   --size N         payload bytes (default 32, at most 65000)
 *   --rounds N       round trips (default 1)
 *   --peek           recv(MSG_PEEK | MSG_TRUNC) first: must report the full size
 *   --trunc          a receive buffer of 8 bytes with MSG_TRUNC: full size, MSG_TRUNC set
 *   --fork           after the first round trip, a child does the rounds, then the parent
 *   --closefrom      after the first round, closefrom(fd + 1), close_range and
 *                    dup2() of the socket over every number above it (then
 *                    closed): the association must survive all three
 *   --wait-file F    after the first round, wait (20 s at most) until F exists,
 *                    then send until a send fails and once more after it
 * At the end, "fds: same" when closing the socket left as many fds open
 * as before it was made (its association's control connection went).
 * Prints "ok: ROUNDS rounds of SIZE bytes from ADDR:PORT" (and
 * "peer: ADDR:PORT" / "local: ADDR:PORT" in --connect modes), or
 * "error: CALL: ENAME (text)" and exits 1. */
#include "testutil.h"

#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { SENDTO, CONNECT, MSG, MMSG, RW };

static int mode = SENDTO, size = 32, rounds = 1, peek, trunc_check;
static struct sockaddr_storage last_from;
static socklen_t last_from_len;

static void fill(unsigned char *buf, int n, int round)
{
	for (int i = 0; i < n; i++)
		buf[i] = (unsigned char)('a' + (i + round) % 26);
}

static int wait_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, 5000);
	if (r == 0)
		errno = ETIMEDOUT;
	return r == 1 ? 0 : -1;
}

static ssize_t do_send(int fd, const struct addrinfo *ai, unsigned char *buf, int n)
{
	int half = n / 2;
	struct iovec iov[2] = {{buf, (size_t)half}, {buf + half, (size_t)(n - half)}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	struct mmsghdr mm[1];
	switch (mode) {
	case CONNECT: return send(fd, buf, (size_t)n, 0);
	case RW: return write(fd, buf, (size_t)n);
	case MSG:
		m.msg_name = ai->ai_addr;
		m.msg_namelen = ai->ai_addrlen;
		return sendmsg(fd, &m, 0);
	case MMSG:
		m.msg_name = ai->ai_addr;
		m.msg_namelen = ai->ai_addrlen;
		mm[0].msg_hdr = m;
		return sendmmsg(fd, mm, 1, 0) == 1 ? (ssize_t)mm[0].msg_len : -1;
	default: return sendto(fd, buf, (size_t)n, 0, ai->ai_addr, ai->ai_addrlen);
	}
}

static ssize_t do_recv(int fd, unsigned char *buf, int cap)
{
	struct iovec iov[2] = {{buf, 5}, {buf + 5, (size_t)cap - 5}};
	struct msghdr m = {.msg_name = &last_from, .msg_namelen = sizeof last_from, .msg_iov = iov, .msg_iovlen = 2};
	struct mmsghdr mm[4];
	ssize_t n;
	last_from_len = sizeof last_from;
	if (wait_readable(fd) < 0)
		return -1;
	switch (mode) {
	case CONNECT: n = recv(fd, buf, (size_t)cap, 0); break;
	case RW: n = read(fd, buf, (size_t)cap); break;
	case MSG:
		n = recvmsg(fd, &m, 0);
		last_from_len = m.msg_namelen;
		break;
	case MMSG:
		memset(mm, 0, sizeof mm);
		mm[0].msg_hdr = m;
		n = recvmmsg(fd, mm, 4, MSG_WAITFORONE, NULL);
		if (n >= 1) {
			last_from_len = mm[0].msg_hdr.msg_namelen;
			n = mm[0].msg_len;
		}
		break;
	default: n = recvfrom(fd, buf, (size_t)cap, 0, (struct sockaddr *)&last_from, &last_from_len); break;
	}
	return n;
}

/* One round trip; 0, or -1 reported. */
static int round_trip(int fd, const struct addrinfo *ai, int round)
{
	static unsigned char out[65536], in[65536];
	fill(out, size, round);
	if (do_send(fd, ai, out, size) != size) {
		tu_report_errno("send", errno);
		return -1;
	}
	if (peek || trunc_check) {
		unsigned char small[8];
		if (wait_readable(fd) < 0) {
			tu_report_errno("poll", errno);
			return -1;
		}
		ssize_t p = recv(fd, small, sizeof small, (peek ? MSG_PEEK : 0) | MSG_TRUNC);
		if (p != size) {
			printf("error: %s reported %zd bytes, sent %d\n", peek ? "peek" : "trunc", p, size);
			return -1;
		}
		if (trunc_check)
			return memcmp(small, out, sizeof small) == 0 ? 0 : (printf("error: trunc content\n"), -1);
	}
	ssize_t n = do_recv(fd, in, (int)sizeof in);
	if (n < 0) {
		tu_report_errno("recv", errno);
		return -1;
	}
	if (n != size || memcmp(in, out, (size_t)size) != 0) {
		printf("error: round %d: got %zd bytes, want %d (content %s)\n", round, n, size,
		       n == size ? "differs" : "-");
		return -1;
	}
	return 0;
}

static int run_rounds(int fd, const struct addrinfo *ai, int first, int count)
{
	for (int r = first; r < first + count; r++)
		if (round_trip(fd, ai, r) < 0)
			return -1;
	return 0;
}

/* After the control connection was killed: sends until one fails (the
 * association's death is seen at a send), then one more must work. */
static int after_kill(int fd, const struct addrinfo *ai, const char *file)
{
	struct stat st;
	for (int i = 0; i < 200 && stat(file, &st) < 0; i++)
		usleep(100000);
	for (int i = 0; i < 20; i++) {
		unsigned char b[4] = "ping";
		if (do_send(fd, ai, b, 4) < 0) {
			printf("after kill: send failed: %s\n", tu_errname(errno));
			return run_rounds(fd, ai, 100, 1);
		}
		usleep(100000);
	}
	printf("error: sends kept working after the control connection was killed\n");
	return -1;
}

int main(int argc, char **argv)
{
	int do_fork = 0, do_close = 0, i = 1;
	const char *wait_file = NULL;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--connect")) mode = CONNECT;
		else if (!strcmp(argv[i], "--msg")) mode = MSG;
		else if (!strcmp(argv[i], "--mmsg")) mode = MMSG;
		else if (!strcmp(argv[i], "--rw")) mode = RW;
		else if (!strcmp(argv[i], "--peek")) peek = 1;
		else if (!strcmp(argv[i], "--trunc")) trunc_check = 1;
		else if (!strcmp(argv[i], "--fork")) do_fork = 1;
		else if (!strcmp(argv[i], "--closefrom")) do_close = 1;
		else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--wait-file") && i + 1 < argc) wait_file = argv[++i];
		else break;
	}
	if (argc - i != 2 || size < 8 || size > 65000 || rounds < 1) {
		fprintf(stderr, "usage: udp_echo [--connect|--msg|--mmsg|--rw] [--size N] [--rounds N] [--peek] "
				"[--trunc] [--fork] [--wait-file F] HOST PORT\n");
		return 2;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
	int rc = getaddrinfo(argv[i], argv[i + 1], &hints, &ai);
	if (rc) {
		printf("error: getaddrinfo: %s\n", tu_eainame(rc));
		return 1;
	}
	int fds_before = tu_count_fds();
	int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || ((mode == CONNECT || mode == RW) && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)) {
		tu_report_errno(fd < 0 ? "socket" : "connect", errno);
		return 1;
	}
	char text[128];
	if (mode == CONNECT || mode == RW) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
			tu_report_errno("getpeername", errno);
			return 1;
		}
		tu_format_sockaddr((struct sockaddr *)&ss, text, sizeof text);
		printf("peer: %s\n", text);
	}
	if (run_rounds(fd, ai, 0, 1) < 0)
		return 1;
	if (do_close) {
		closefrom(fd + 1);
		if (run_rounds(fd, ai, 1, 1) < 0)
			return 1;
		close_range((unsigned)fd + 1, ~0U, 0);
		if (run_rounds(fd, ai, 1, 1) < 0)
			return 1;
		for (int n = fd + 1; n < 1024; n++)
			if (dup2(fd, n) == n)
				close(n);
		printf("closes: survived\n");
	}
	if (do_fork) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			_exit(run_rounds(fd, ai, 1, rounds) < 0 ? 1 : (printf("child: ok\n"), fflush(stdout), 0));
		int st = 0;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("error: the child failed\n");
			return 1;
		}
	}
	if (run_rounds(fd, ai, 1, rounds - 1) < 0)
		return 1;
	if (wait_file && after_kill(fd, ai, wait_file) < 0)
		return 1;
	if (mode == CONNECT || mode == RW) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		tu_format_sockaddr((struct sockaddr *)&ss, text, sizeof text);
		printf("local: %s\n", text);
	}
	if (mode == CONNECT || mode == RW) {
		printf("ok: %d rounds of %d bytes\n", rounds, size);
	} else {
		tu_format_sockaddr((struct sockaddr *)&last_from, text, sizeof text);
		printf("ok: %d rounds of %d bytes from %s\n", rounds, size, text);
	}
	close(fd);
	int fds_after = tu_count_fds();
	if (fds_after == fds_before)
		printf("fds: same\n");
	else
		printf("fds: before=%d after=%d\n", fds_before, fds_after);
	freeaddrinfo(ai);
	return 0;
}
