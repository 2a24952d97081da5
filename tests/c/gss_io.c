/* gss_io: clients for the GSSAPI suite (tests/bats/gssapi.bats).
 *
 * gss_io loop HOST PORT COUNT
 *     COUNT connections one after the other (IPv4 address HOST).  Each
 *     that connects sends "GET /loop HTTP/1.0" and reads until EOF.  One
 *     line per attempt: "attempt=I ok bytes=N ms=T" or
 *     "attempt=I error: STEP: ENAME (strerror) ms=T", T measured around
 *     that attempt only (never process start-up).  For the server's
 *     truncate=N --each mode: attempt I sees the first I octets.
 *
 * gss_io files HOST PORT UPFILE DOWN OUTFILE
 *     The bulk protocol of tests/servers/bulk.py with the kernel's file
 *     paths: writes "BULK <size of UPFILE> DOWN\n", then UPFILE with
 *     sendfile(2); meanwhile (a thread) moves everything it receives to
 *     OUTFILE with splice(2) through a pipe.  Prints "sent=N" and
 *     "received=N"; failures "error: STEP: ENAME (strerror)", exit 1.
 *     First, "copy_file_range=ENAME": what copy_file_range(2) from UPFILE
 *     to the socket gave (the kernel copies between regular files only:
 *     EINVAL on any socket, relayed or not); nothing is sent by it.
 */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 10000

static int connect_to(const char *host, const char *port, int *fd_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000 };
	int fd;

	sa.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return EINVAL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	/* Bounded reads and writes: a hang must fail the test, not stall it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

static void print_err(int i, const char *step, int err, long ms)
{
	printf("attempt=%d error: %s: %s (%s) ms=%ld\n", i, step,
	       tu_errname(err), strerror(err), ms);
}

static int loop(const char *host, const char *port, int count)
{
	static const char req[] = "GET /loop HTTP/1.0\r\n\r\n";
	char buf[4096];

	for (int i = 0; i < count; i++) {
		long t0 = tu_now_ms(), total = 0;
		int fd, err = connect_to(host, port, &fd);
		ssize_t n;

		if (err) {
			print_err(i, "connect", err, tu_now_ms() - t0);
			continue;
		}
		err = tu_send_all(fd, req, sizeof(req) - 1);
		if (err) {
			print_err(i, "send", err, tu_now_ms() - t0);
			close(fd);
			continue;
		}
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			total += n;
		if (n < 0)
			print_err(i, "recv", errno, tu_now_ms() - t0);
		else
			printf("attempt=%d ok bytes=%ld ms=%ld\n", i, total,
			       tu_now_ms() - t0);
		close(fd);
		fflush(stdout);
	}
	return 0;
}

struct sink {
	int sock, out, err;
	long received;
};

/* socket -> pipe -> file, with splice, until EOF. */
static void *splice_down(void *arg)
{
	struct sink *s = arg;
	int p[2];

	if (pipe(p) < 0) {
		s->err = errno;
		return NULL;
	}
	for (;;) {
		ssize_t n = splice(s->sock, NULL, p[1], NULL, 65536, SPLICE_F_MOVE);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			s->err = errno;
			break;
		}
		while (n > 0) {
			ssize_t m = splice(p[0], NULL, s->out, NULL, (size_t)n, SPLICE_F_MOVE);
			if (m <= 0) {
				s->err = m < 0 ? errno : EIO;
				goto out;
			}
			n -= m;
			s->received += m;
		}
	}
out:
	close(p[0]);
	close(p[1]);
	return NULL;
}

static int files(char **argv)
{
	struct sink s = { 0 };
	struct stat st;
	pthread_t t;
	char head[64];
	off_t off = 0;
	int in, err;

	in = open(argv[2], O_RDONLY | O_CLOEXEC);
	s.out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || s.out < 0 || fstat(in, &st) < 0) {
		tu_report_errno("open", errno);
		return 1;
	}
	err = connect_to(argv[0], argv[1], &s.sock);
	if (err) {
		tu_report_errno("connect", err);
		return 1;
	}
	ssize_t c = copy_file_range(in, NULL, s.sock, NULL, 1, 0);
	printf("copy_file_range=%s\n", c < 0 ? tu_errname(errno) : "ok");
	if (c > 0) /* it did send a byte after all: the server would see junk */
		return 1;
	pthread_create(&t, NULL, splice_down, &s);
	snprintf(head, sizeof(head), "BULK %lld %s\n", (long long)st.st_size, argv[3]);
	err = tu_send_all(s.sock, head, strlen(head));
	while (!err && off < st.st_size) {
		ssize_t n = sendfile(s.sock, in, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno != EINTR)
			err = errno;
		else if (n == 0)
			err = EIO;
	}
	printf("sent=%lld\n", (long long)off);
	pthread_join(t, NULL);
	printf("received=%ld\n", s.received);
	if (err) {
		tu_report_errno("sendfile", err);
		return 1;
	}
	if (s.err) {
		tu_report_errno("splice", s.err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "loop") == 0)
		return loop(argv[2], argv[3], atoi(argv[4]));
	if (argc == 7 && strcmp(argv[1], "files") == 0)
		return files(argv + 2);
	fprintf(stderr, "usage: gss_io loop HOST PORT COUNT | "
		"gss_io files HOST PORT UPFILE DOWN OUTFILE\n");
	return 2;
}
