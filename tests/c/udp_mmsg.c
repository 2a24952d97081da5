/* udp_mmsg HOST PORT poll|epoll N
 * udp_mmsg HOST PORT stress THREADS PER_THREAD
 *
 * A UDP client of an echo server built on sendmmsg/recvmmsg, for socksify's
 * UDP ASSOCIATE tests (tests/bats/lab_udp.bats).
 *
 * poll|epoll: one unconnected socket sends N datagrams (N <= 64) in one
 * sendmmsg, each with its own destination (msg_name), then waits with poll()
 * or epoll_wait() and reads with recvmmsg(MSG_DONTWAIT) until every echo is
 * back or 5 s have passed.  Prints
 *   "sent=N received=M matched=K from=ADDR:PORT wakeups=W elapsed_ms=T"
 * (from= the source of the last echo); exit status 0 only if all N echoes
 * came back intact.
 *
 * stress: THREADS threads, each with its own socket, send PER_THREAD
 * datagrams in sendmmsg batches of 32 and read the echoes between batches
 * (poll, at most 200 ms per batch) and at the end (1 s).  Datagrams may be
 * lost.  Prints
 *   "fds_before=A fds_after=B sent=S received=R send_errors=E elapsed_ms=T"
 * where the fds are counted in /proc/self/fd before the first socket and
 * after every socket is closed; exit status 0 only if no send failed, every
 * received echo was one of ours and A == B. */
#include "testutil.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAXB 64
#define DLEN 64

static struct addrinfo *dst;

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		snprintf(out, len, "family-%d", ss->ss_family);
	}
}

/* Sends n datagrams "TAG-i" (i from base) in one sendmmsg; returns how many
 * left, or -1 with errno. */
static int send_batch(int fd, const char *tag, int base, int n)
{
	static __thread char bufs[MAXB][DLEN];
	struct mmsghdr msgs[MAXB];
	struct iovec iov[MAXB];
	int i, sent = 0;

	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < n; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = (size_t)snprintf(bufs[i], DLEN, "%s-%d", tag, base + i);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = dst->ai_addr;
		msgs[i].msg_hdr.msg_namelen = dst->ai_addrlen;
	}
	while (sent < n) {
		int r = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), 0);
		if (r < 0)
			return -1;
		sent += r;
	}
	return sent;
}

/* Reads every datagram readable now; counts those starting with TAG-. */
static int drain(int fd, const char *tag, int *matched, struct sockaddr_storage *last)
{
	char bufs[MAXB][DLEN + 1];
	struct sockaddr_storage from[MAXB];
	struct mmsghdr msgs[MAXB];
	struct iovec iov[MAXB];
	size_t tl = strlen(tag);
	int i, r, total = 0;

	for (;;) {
		memset(msgs, 0, sizeof(msgs));
		for (i = 0; i < MAXB; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = DLEN;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		r = recvmmsg(fd, msgs, MAXB, MSG_DONTWAIT, NULL);
		if (r <= 0)
			return total;
		for (i = 0; i < r; i++) {
			bufs[i][msgs[i].msg_len < DLEN ? msgs[i].msg_len : DLEN] = 0;
			if (strncmp(bufs[i], tag, tl) == 0 && bufs[i][tl] == '-')
				(*matched)++;
			if (last)
				*last = from[i];
		}
		total += r;
	}
}

static int one_socket(int use_epoll, int n)
{
	struct sockaddr_storage last = { 0 };
	char tag[32], where[80] = "none";
	int fd, ep = -1, received = 0, matched = 0, wakeups = 0;
	long t0 = tu_now_ms(), end = t0 + 5000;

	fd = socket(dst->ai_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		tu_report_errno("socket", errno);
		return 1;
	}
	snprintf(tag, sizeof(tag), "mmsg%d", (int)getpid());
	if (send_batch(fd, tag, 0, n) < 0) {
		tu_report_errno("sendmmsg", errno);
		return 1;
	}
	if (use_epoll) {
		struct epoll_event ev = { .events = EPOLLIN };
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			tu_report_errno("epoll", errno);
			return 1;
		}
	}
	while (matched < n && tu_now_ms() < end) {
		int r;
		if (use_epoll) {
			struct epoll_event ev;
			r = epoll_wait(ep, &ev, 1, (int)(end - tu_now_ms()));
		} else {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			r = poll(&p, 1, (int)(end - tu_now_ms()));
		}
		if (r < 0 && errno != EINTR) {
			tu_report_errno(use_epoll ? "epoll_wait" : "poll", errno);
			return 1;
		}
		if (r <= 0)
			continue;
		wakeups++;
		received += drain(fd, tag, &matched, &last);
	}
	if (received)
		fmt_addr(&last, where, sizeof(where));
	printf("sent=%d received=%d matched=%d from=%s wakeups=%d elapsed_ms=%ld\n",
	       n, received, matched, where, wakeups, tu_now_ms() - t0);
	if (ep >= 0)
		close(ep);
	close(fd);
	return matched == n ? 0 : 1;
}

struct worker {
	pthread_t tid;
	int index, count, sent, received, matched, send_errors;
};

static void wait_drain(int fd, const char *tag, struct worker *w, int ms)
{
	long end = tu_now_ms() + ms;

	while (w->matched < w->sent && tu_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(end - tu_now_ms())) > 0)
			w->received += drain(fd, tag, &w->matched, NULL);
	}
}

static void *stress_worker(void *arg)
{
	struct worker *w = arg;
	char tag[32];
	int fd = socket(dst->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		w->send_errors = w->count;
		return NULL;
	}
	snprintf(tag, sizeof(tag), "st%d", w->index);
	while (w->sent < w->count) {
		int n = w->count - w->sent < 32 ? w->count - w->sent : 32;
		if (send_batch(fd, tag, w->sent, n) < 0) {
			w->send_errors++;
			if (w->send_errors == 1)
				tu_report_errno("sendmmsg", errno);
			if (w->send_errors > 10)
				break;
			continue;
		}
		w->sent += n;
		wait_drain(fd, tag, w, 200);
	}
	wait_drain(fd, tag, w, 1000);
	close(fd);
	return NULL;
}

static int stress(int threads, int per)
{
	struct worker w[64];
	int i, before, after, sent = 0, received = 0, matched = 0, errs = 0;
	long t0 = tu_now_ms();

	if (threads < 1 || threads > 64)
		return 2;
	before = tu_count_fds();
	for (i = 0; i < threads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].index = i;
		w[i].count = per;
		if (pthread_create(&w[i].tid, NULL, stress_worker, &w[i]) != 0)
			return 2;
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		sent += w[i].sent;
		received += w[i].received;
		matched += w[i].matched;
		errs += w[i].send_errors;
	}
	after = tu_count_fds();
	printf("fds_before=%d fds_after=%d sent=%d received=%d matched=%d send_errors=%d elapsed_ms=%ld\n",
	       before, after, sent, received, matched, errs, tu_now_ms() - t0);
	return errs == 0 && before == after && matched == received ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM };
	int rc;

	if (argc < 5) {
		fprintf(stderr, "usage: udp_mmsg HOST PORT poll|epoll N | stress THREADS PER_THREAD\n");
		return 2;
	}
	rc = getaddrinfo(argv[1], argv[2], &hints, &dst);
	if (rc != 0) {
		printf("error: getaddrinfo: %s\n", tu_eainame(rc));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[3], "stress") == 0 && argc >= 6)
		rc = stress(atoi(argv[4]), atoi(argv[5]));
	else if (strcmp(argv[3], "poll") == 0 || strcmp(argv[3], "epoll") == 0)
		rc = one_socket(argv[3][0] == 'e', atoi(argv[4]) > MAXB ? MAXB : atoi(argv[4]));
	else
		rc = 2;
	freeaddrinfo(dst);
	return rc;
}
