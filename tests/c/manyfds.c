/* manyfds HOST PORT PATH select|poll|epoll
 *
 * A program with thousands of fds: raises RLIMIT_NOFILE, fills the low
 * numbers so that its socket lands above 2000 (past FD_SETSIZE), connects
 * it non-blocking, and waits for it with select() on a set it sized itself
 * for nfds (as programs with many fds do), with poll() or with epoll.  Then
 * sends "GET PATH" and prints the response.  Under socksify the handshake
 * runs inside those waits.  Prints "fd=N" and the body; errors print
 * "error: STEP: ENAME" and exit 1. */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#define LOW_FDS 2100
#define WAIT_MS 20000

static void die(const char *step)
{
	tu_report_errno(step, errno);
	exit(1);
}

static int wait_select(int fd)
{
	size_t words = (size_t)fd / (8 * sizeof(unsigned long)) + 1;
	unsigned long *w = calloc(words, sizeof *w);
	if (!w)
		return -1;
	w[fd / (8 * sizeof(unsigned long))] |= 1UL << (fd % (8 * sizeof(unsigned long)));
	struct timeval tv = {WAIT_MS / 1000, 0};
	int rc = select(fd + 1, NULL, (fd_set *)w, NULL, &tv);
	int set = rc > 0 && (w[fd / (8 * sizeof(unsigned long))] >> (fd % (8 * sizeof(unsigned long)))) & 1;
	free(w);
	return rc == 1 && set ? 0 : -1;
}

static int wait_poll(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	return poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLOUT) && !(p.revents & POLLERR) ? 0 : -1;
}

static int wait_epoll(int fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.fd = fd}, got;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	int rc = epoll_wait(ep, &got, 1, WAIT_MS);
	close(ep);
	return rc == 1 && got.data.fd == fd && (got.events & EPOLLOUT) ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	struct rlimit rl = {8192, 8192};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit");
	int null = open("/dev/null", O_RDONLY);
	for (int i = 0; i < LOW_FDS; i++)
		if (dup(null) < 0)
			die("dup");
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0)
		die("getaddrinfo");
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	printf("fd=%d\n", fd);
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS)
		die("connect");
	int rc = strcmp(argv[4], "select") == 0 ? wait_select(fd) : strcmp(argv[4], "poll") == 0 ? wait_poll(fd)
												 : wait_epoll(fd);
	int err = 0;
	socklen_t elen = sizeof err;
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
		errno = err ? err : ETIMEDOUT;
		die("wait");
	}
	char req[256];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", argv[3]);
	if (write(fd, req, (size_t)n) != n)
		die("write");
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	char buf[4096];
	ssize_t got;
	while ((got = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)got, stdout);
	freeaddrinfo(res);
	return 0;
}
