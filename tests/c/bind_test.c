/* bind_test SUBCOMMAND [HOST PORT] [options]: the listening side of active
 * FTP, one behaviour per subcommand, for socksify's BIND tests.
 *
 * With HOST PORT, a control connection comes first (getaddrinfo + connect,
 * kept open), so socksify has a "most recent CONNECT" to send as the BIND
 * destination.  Then a data socket is made, bound, listen()ed, and read
 * with getsockname(); what follows depends on the subcommand:
 *
 *   accept          accept one connection (blocking, or --nonblock with
 *                   --wait poll|select|epoll), then exchange data
 *   after           accept, then: data pending on the accepted fd leaves
 *                   the listening fd unreadable (200 ms), a second accept
 *                   gives EAGAIN, then exchange data
 *   close-listen    accept, close the listening fd, exchange data
 *   close-accepted  accept, close the accepted fd, check the listening fd
 *   connect         bind, then connect() to HOST PORT and GET / (a CONNECT)
 *   peer ADDR PORT  (internal) the remote side, exec'd without LD_PRELOAD
 *
 * Options: --family 4|6|any (control lookup), --data-family 4|6,
 * --bind-addr any|ctrl|loopback|none|ADDR, --bind-port N, --nonblock and
 * --cloexec (on the listening socket), --wait poll|select|epoll,
 * --accept4 nonblock,cloexec|0, --null-addr, --local-peer (spawn "peer"
 * without the shim, aimed at the bound address), --timeout-ms N,
 * --rounds N (N data sockets one after the other, like N FTP transfers),
 * --early-getsockname (also between bind and listen, as classic FTP
 * clients do: "early bnd=ADDR:PORT").
 *
 * Data exchange: read lines (printed "data=LINE") until HELLO-FROM-REMOTE,
 * send HELLO-FROM-CLIENT, shut down writing, read to EOF ("eof").
 * Failures print "error: STEP: ENAME (strerror)" and exit 1. */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HELLO_REMOTE "HELLO-FROM-REMOTE"
#define HELLO_CLIENT "HELLO-FROM-CLIENT"
#define QUIET_MS 200

struct opts {
	const char *cmd, *host, *port, *bind_addr, *wait;
	int family, data_family, bind_port, nonblock, cloexec, null_addr;
	int use_accept4, accept4_flags, local_peer, timeout_ms, rounds, early;
};

static struct opts o;
static int epfd = -1; /* --wait epoll: registered right after listen() */
static const char *who = ""; /* "peer " in the exec'd peer: its lines differ */

static void usage(void)
{
	fprintf(stderr, "usage: bind_test accept|after|close-listen|close-accepted"
		"|connect|peer [HOST PORT] [options] (see bind_test.c)\n");
	exit(2);
}

static void die(const char *what, int err)
{
	printf("%serror: %s: %s (%s)\n", who, what, tu_errname(err), strerror(err));
	exit(1);
}

static void parse_args(int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	int npos = 0;

	if (argc < 2)
		usage();
	o.cmd = argv[1];
	o.family = AF_UNSPEC;
	o.bind_addr = "any";
	o.wait = "poll";
	o.timeout_ms = 10000;
	o.rounds = 1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--nonblock") == 0)
			o.nonblock = 1;
		else if (strcmp(a, "--cloexec") == 0)
			o.cloexec = 1;
		else if (strcmp(a, "--null-addr") == 0)
			o.null_addr = 1;
		else if (strcmp(a, "--local-peer") == 0)
			o.local_peer = 1;
		else if (strcmp(a, "--early-getsockname") == 0)
			o.early = 1;
		else if (strncmp(a, "--", 2) == 0 && !v)
			usage();
		else if (strcmp(a, "--family") == 0)
			o.family = tu_parse_family(argv[++i]);
		else if (strcmp(a, "--data-family") == 0)
			o.data_family = tu_parse_family(argv[++i]);
		else if (strcmp(a, "--bind-addr") == 0)
			o.bind_addr = argv[++i];
		else if (strcmp(a, "--bind-port") == 0)
			o.bind_port = atoi(argv[++i]);
		else if (strcmp(a, "--wait") == 0)
			o.wait = argv[++i];
		else if (strcmp(a, "--rounds") == 0)
			o.rounds = atoi(argv[++i]);
		else if (strcmp(a, "--timeout-ms") == 0)
			o.timeout_ms = atoi(argv[++i]);
		else if (strcmp(a, "--accept4") == 0) {
			o.use_accept4 = 1;
			v = argv[++i];
			if (strstr(v, "nonblock"))
				o.accept4_flags |= SOCK_NONBLOCK;
			if (strstr(v, "cloexec"))
				o.accept4_flags |= SOCK_CLOEXEC;
		} else if (strncmp(a, "--", 2) != 0 && npos < 2)
			pos[npos++] = a;
		else
			usage();
	}
	if (o.family < 0 || o.data_family < 0 || npos == 1)
		usage();
	o.host = pos[0];
	o.port = pos[1];
}

static void print_addr(const char *label, const struct sockaddr *sa)
{
	char buf[128];
	tu_format_sockaddr(sa, buf, sizeof(buf));
	printf("%s=%s\n", label, buf);
}

/* ------------------------------------------------------------- waiting */
/* Is fd readable within ms?  1 yes, 0 no; exits on errors. */
static int readable(int fd, const char *how, int ms)
{
	if (strcmp(how, "poll") == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, ms);
		if (n < 0)
			die("poll", errno);
		return n > 0;
	}
	if (strcmp(how, "select") == 0) {
		fd_set rd;
		struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
		if (fd >= FD_SETSIZE)
			die("select", EBADF);
		FD_ZERO(&rd);
		FD_SET(fd, &rd);
		int n = select(fd + 1, &rd, NULL, NULL, &tv);
		if (n < 0)
			die("select", errno);
		return n > 0 && FD_ISSET(fd, &rd);
	}
	if (strcmp(how, "epoll") == 0 || strcmp(how, "epoll-new") == 0) {
		/* "epoll" uses the instance registered after listen(); "epoll-new"
		 * a fresh one made now. */
		int ep = epfd, fresh = strcmp(how, "epoll-new") == 0 || ep < 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		if (fresh) {
			ep = epoll_create1(EPOLL_CLOEXEC);
			if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
				die("epoll_ctl", errno);
		}
		int n = epoll_wait(ep, &ev, 1, ms);
		if (n < 0)
			die("epoll_wait", errno);
		if (fresh)
			close(ep);
		return n > 0 && ev.data.fd == fd;
	}
	usage();
	return 0;
}

static void wait_readable(int fd, const char *what)
{
	if (!readable(fd, "poll", o.timeout_ms))
		die(what, ETIMEDOUT);
}

/* --------------------------------------------------------- data stream */
static void send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0) {
			buf += n;
			len -= (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, o.timeout_ms) <= 0)
				die("send", ETIMEDOUT);
		} else if (errno != EINTR) {
			die("send", errno);
		}
	}
}

/* Reads what is there (waiting up to timeout_ms), prints each complete
 * line as "PREFIX=LINE"; returns 1 if LINE == want was seen, -1 at EOF. */
static int read_lines(int fd, char *buf, size_t *len, size_t cap,
		      const char *prefix, const char *want)
{
	int seen = 0;
	ssize_t n;

	wait_readable(fd, "recv");
	n = recv(fd, buf + *len, cap - *len - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		die("recv", errno);
	if (n == 0)
		return -1;
	*len += (size_t)n;
	buf[*len] = '\0';
	char *nl;
	while ((nl = strchr(buf, '\n'))) {
		*nl = '\0';
		printf("%s=%s\n", prefix, buf);
		if (want && strcmp(buf, want) == 0)
			seen = 1;
		*len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, *len + 1);
	}
	if (*len == cap - 1) /* a line too long for us: show it anyway */
		printf("%s=%s\n", prefix, buf), *len = 0;
	return seen;
}

/* One side of the exchange: wait for `want`, send `mine`, half-close,
 * read to EOF.  The client expects HELLO-FROM-REMOTE and sends
 * HELLO-FROM-CLIENT; "peer" (the remote) sends first, so passes want NULL. */
static void exchange(int fd, const char *prefix, const char *want, const char *mine)
{
	char buf[4096], line[64];
	size_t len = 0;
	int r = 0;

	if (!want) {
		snprintf(line, sizeof(line), "%s\n", mine);
		send_all(fd, line, strlen(line));
	}
	while (want && r == 0)
		r = read_lines(fd, buf, &len, sizeof(buf), prefix, want);
	if (r < 0) {
		printf("%serror: recv: EOF before %s\n", who, want);
		exit(1);
	}
	if (want) {
		snprintf(line, sizeof(line), "%s\n", mine);
		send_all(fd, line, strlen(line));
		printf("sent=%s\n", mine);
	}
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown", errno);
	while (read_lines(fd, buf, &len, sizeof(buf), prefix, NULL) >= 0)
		;
	if (len)
		printf("%s=%s\n", prefix, buf);
	printf("%seof\n", who);
}

/* ----------------------------------------------------------- set-up */
static int resolve_connect(const char *host, const char *port, int family,
			   int bind_first)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = family }, *res;
	int rc = getaddrinfo(host, port, &hints, &res), fd;

	if (rc != 0) {
		printf("error: getaddrinfo: %s (%s)\n", tu_eainame(rc), gai_strerror(rc));
		exit(1);
	}
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket", errno);
	if (bind_first) {
		struct sockaddr_storage ss = { .ss_family = (sa_family_t)res->ai_family };
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)o.bind_port);
		if (bind(fd, (struct sockaddr *)&ss, res->ai_family == AF_INET6 ?
			 sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) < 0)
			die("bind", errno);
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		die("connect", errno);
	freeaddrinfo(res);
	return fd;
}

/* The bind() address for the data socket, per --bind-addr. */
static socklen_t data_addr(int ctrl, int family, struct sockaddr_storage *ss)
{
	const char *a = o.bind_addr;
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	struct sockaddr_in *in = (void *)ss;
	struct sockaddr_in6 *in6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (strcmp(a, "ctrl") == 0) {
		socklen_t l = sizeof(*ss);
		if (ctrl < 0 || getsockname(ctrl, (struct sockaddr *)ss, &l) < 0)
			die("getsockname(control)", ctrl < 0 ? EINVAL : errno);
		if (ss->ss_family != family)
			die("bind-addr ctrl (family)", EAFNOSUPPORT);
	} else if (strcmp(a, "loopback") == 0) {
		if (family == AF_INET)
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else
			in6->sin6_addr = in6addr_loopback;
	} else if (strcmp(a, "any") != 0) {
		void *dst = family == AF_INET ? (void *)&in->sin_addr : (void *)&in6->sin6_addr;
		if (inet_pton(family, a, dst) != 1)
			usage();
	}
	if (family == AF_INET)
		in->sin_port = htons((uint16_t)o.bind_port);
	else
		in6->sin6_port = htons((uint16_t)o.bind_port);
	return len;
}

static void print_flags(const char *label, int fd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	if (fl < 0 || fdfl < 0)
		die("fcntl", errno);
	printf("%s nonblock=%d cloexec=%d\n", label, !!(fl & O_NONBLOCK), !!(fdfl & FD_CLOEXEC));
}

/* The remote side without socksify: re-exec ourselves as "peer" with
 * LD_PRELOAD (and every SOCKSIFY_* variable) removed from the env. */
static pid_t spawn_local_peer(const struct sockaddr *bnd)
{
	char host[INET6_ADDRSTRLEN], port[16];
	extern char **environ;
	char *env[64];
	int n = 0;

	if (bnd->sa_family == AF_INET) {
		struct in_addr a = ((const struct sockaddr_in *)(const void *)bnd)->sin_addr;
		if (a.s_addr == htonl(INADDR_ANY))
			a.s_addr = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &a, host, sizeof(host));
		snprintf(port, sizeof(port), "%u", ntohs(((const struct sockaddr_in *)(const void *)bnd)->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const void *)bnd;
		struct in6_addr a = in6->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(&a))
			a = in6addr_loopback;
		inet_ntop(AF_INET6, &a, host, sizeof(host));
		snprintf(port, sizeof(port), "%u", ntohs(in6->sin6_port));
	}
	for (char **e = environ; *e && n < 63; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "SOCKSIFY_", 9) != 0)
			env[n++] = *e;
	env[n] = NULL;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		char *args[] = { "bind_test", "peer", host, port, NULL };
		execve("/proc/self/exe", args, env);
		_exit(127);
	}
	return pid;
}

static int do_accept(int lfd, struct sockaddr_storage *peer, socklen_t *plen)
{
	struct sockaddr *sa = o.null_addr ? NULL : (struct sockaddr *)peer;
	socklen_t *lp = o.null_addr ? NULL : plen;

	*plen = sizeof(*peer);
	if (o.use_accept4)
		return accept4(lfd, sa, lp, o.accept4_flags);
	return accept(lfd, sa, lp);
}

/* accept() per the options: blocking, or non-blocking with EAGAIN first
 * and readiness from --wait.  Prints what it saw; returns the new fd. */
static int accept_one(int lfd)
{
	struct sockaddr_storage peer;
	socklen_t plen;
	long t0 = tu_now_ms();
	int fd, eagain = 0, err;

	fd = do_accept(lfd, &peer, &plen);
	err = errno;
	if (o.nonblock && fd < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
		printf("first accept: EAGAIN\n");
		printf("ready before=%d\n", readable(lfd, o.wait, 0));
		for (;;) {
			long left = o.timeout_ms - (tu_now_ms() - t0);
			if (left <= 0 || !readable(lfd, o.wait, (int)left)) {
				printf("elapsed_ms=%ld\n", tu_now_ms() - t0);
				die("wait", ETIMEDOUT);
			}
			fd = do_accept(lfd, &peer, &plen);
			err = errno;
			if (fd >= 0 || (err != EAGAIN && err != EWOULDBLOCK))
				break;
			eagain++;
			usleep(5000); /* a partial reply 2 may keep it readable */
		}
		printf("ready via %s\n", o.wait);
		printf("eagain_after_ready=%d\n", eagain);
	}
	printf("elapsed_ms=%ld\n", tu_now_ms() - t0);
	if (fd < 0)
		die("accept", err);
	printf("newfd_differs=%d\n", fd != lfd);
	if (o.null_addr)
		printf("accepted peer=(null)\n");
	else
		print_addr("accepted peer", (struct sockaddr *)&peer);
	socklen_t l = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &l) < 0)
		die("getpeername", errno);
	print_addr("getpeername", (struct sockaddr *)&peer);
	print_flags("flags", fd);
	print_flags("listen flags after", lfd);
	return fd;
}

/* Second accept on the old listening fd, made non-blocking. */
static void second_accept(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fl = fcntl(lfd, F_GETFL);

	fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
	int fd = accept(lfd, (struct sockaddr *)&ss, &len);
	if (fd >= 0) {
		print_addr("second accept: got a connection from", (struct sockaddr *)&ss);
		close(fd);
	} else {
		printf("second accept: %s\n", tu_errname(errno));
	}
}

static void quiet_check(int lfd, const char *when)
{
	printf("listen readable%s=%d via %s\n", when, readable(lfd, o.wait, QUIET_MS), o.wait);
	if (strcmp(o.wait, "epoll") == 0)
		printf("listen readable%s=%d via epoll-new\n", when, readable(lfd, "epoll-new", QUIET_MS));
}

static int peer_main(void)
{
	who = "peer ";
	int fd = resolve_connect(o.host, o.port, AF_UNSPEC, 0);
	exchange(fd, "peer read", NULL, HELLO_REMOTE);
	close(fd);
	return 0;
}

/* One data socket: bind, listen, getsockname, accept, then the subcommand. */
static void one_round(int ctrl)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd, fd, family;
	pid_t child = 0;

	family = o.data_family;
	if (family == AF_UNSPEC) {
		len = sizeof(ss);
		family = ctrl >= 0 && getsockname(ctrl, (struct sockaddr *)&ss, &len) == 0 ?
			ss.ss_family : AF_INET;
	}
	lfd = socket(family, SOCK_STREAM | (o.nonblock ? SOCK_NONBLOCK : 0) |
		     (o.cloexec ? SOCK_CLOEXEC : 0), 0);
	if (lfd < 0)
		die("socket", errno);
	if (strcmp(o.bind_addr, "none") != 0) {
		len = data_addr(ctrl, family, &ss);
		if (bind(lfd, (struct sockaddr *)&ss, len) < 0)
			die("bind", errno);
		print_addr("bound", (struct sockaddr *)&ss);
	}
	if (o.early) { /* BSD ftp, inetutils-ftp and curl read the port here */
		len = sizeof(ss);
		if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
			die("getsockname", errno);
		print_addr("early bnd", (struct sockaddr *)&ss);
	}
	if (listen(lfd, 1) < 0)
		die("listen", errno);
	printf("listen=0\n");
	if (strncmp(o.wait, "epoll", 5) == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
			die("epoll_ctl", errno);
	}
	len = sizeof(ss);
	if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname", errno);
	print_addr("bnd", (struct sockaddr *)&ss);
	print_flags("listen flags before", lfd);
	if (o.local_peer)
		child = spawn_local_peer((struct sockaddr *)&ss);

	fd = accept_one(lfd);
	if (strcmp(o.cmd, "accept") == 0) {
		exchange(fd, "data", HELLO_REMOTE, HELLO_CLIENT);
	} else if (strcmp(o.cmd, "after") == 0) {
		wait_readable(fd, "data wait");
		printf("accepted readable=1\n");
		quiet_check(lfd, "");
		second_accept(lfd);
		exchange(fd, "data", HELLO_REMOTE, HELLO_CLIENT);
		quiet_check(lfd, " after eof");
	} else if (strcmp(o.cmd, "close-listen") == 0) {
		printf("close listen=%d\n", close(lfd));
		lfd = -1;
		exchange(fd, "data", HELLO_REMOTE, HELLO_CLIENT);
	} else if (strcmp(o.cmd, "close-accepted") == 0) {
		printf("close accepted=%d\n", close(fd));
		fd = -1;
		quiet_check(lfd, "");
		second_accept(lfd);
		len = sizeof(ss);
		printf("getsockname after=%d\n", getsockname(lfd, (struct sockaddr *)&ss, &len));
		printf("close listen=%d\n", close(lfd));
		lfd = -1;
	} else {
		usage();
	}
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
	if (child > 0) {
		int st = 0;
		waitpid(child, &st, 0);
		printf("peer status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int ctrl = -1, fd;

	setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, in order with the peer's */
	parse_args(argc, argv);
	if (strcmp(o.cmd, "peer") == 0)
		return o.host ? peer_main() : (usage(), 2);
	if (strcmp(o.cmd, "connect") == 0) {
		if (!o.host)
			usage();
		fd = resolve_connect(o.host, o.port, o.family, 1);
		send_all(fd, "GET /bind-then-connect HTTP/1.0\r\n\r\n", 35);
		shutdown(fd, SHUT_WR);
		char buf[4096];
		size_t n = 0;
		while (n < sizeof(buf) - 1 && read_lines(fd, buf, &n, sizeof(buf), "line", NULL) >= 0)
			;
		printf("eof\n");
		return 0;
	}
	if (o.host) {
		ctrl = resolve_connect(o.host, o.port, o.family, 0);
		len = sizeof(ss);
		getpeername(ctrl, (struct sockaddr *)&ss, &len);
		print_addr("control peer", (struct sockaddr *)&ss);
	}
	for (int round = 1; round <= o.rounds; round++) {
		if (o.rounds > 1)
			printf("round=%d\n", round);
		one_round(ctrl);
	}
	if (ctrl >= 0)
		close(ctrl);
	printf("done\n");
	return 0;
}
