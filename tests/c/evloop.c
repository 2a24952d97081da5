/* evloop --mode MODE [--register-before] [--conns N] --host HOST --port PORT
 *        [--path P] [--expect-body TEXT] [--timeout-ms MS]
 *
 * A one-thread event-loop HTTP client, for socksify's asynchronous SOCKS
 * handshake (tests/bats/async.bats).  HOST goes through getaddrinfo (a name
 * works under socksify's remote DNS, a literal too); N non-blocking sockets
 * connect() to the first result (0 or EINPROGRESS accepted), then a single
 * loop drives them all with the chosen wait primitive:
 *
 *   poll, select     level-triggered waits, one send()/recv() per wakeup
 *   epoll-lt         epoll, EPOLLOUT until the request is out, then EPOLLIN
 *   epoll-et         epoll, EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET registered
 *                    once; each wakeup sends/reads until EAGAIN
 *   epoll-oneshot    EPOLLONESHOT, re-armed with EPOLL_CTL_MOD each time
 *
 * --register-before adds each fd to epoll before its connect(), as nginx
 * does.  On writable: getsockopt(SO_ERROR) must be 0, then
 * "GET P HTTP/1.0" is sent and the response read to EOF; it must start
 * with "HTTP/1." (no SOCKS byte may leak into the program's stream) and
 * contain --expect-body.  Prints "einprogress=K" (how many connect() calls
 * returned EINPROGRESS rather than 0), then "ok N ms=ELAPSED"
 * (CLOCK_MONOTONIC, from before getaddrinfo to the last EOF) or
 * "error: conn I: STEP: ENAME (strerror)" and exits 1.
 *
 * Modes that probe single points of the contract:
 *   check-errors        one connect, then at once: connect() again (EALREADY,
 *                       or EISCONN if already writable), read() and write()
 *                       (EAGAIN); poll for POLLOUT; prints revents, SO_ERROR,
 *                       SO_ERROR again, connect() again, and with
 *                       --expect-body (when SO_ERROR is 0) the GET's result:
 *                       one "key=value" line each.
 *   epoll-wait-forever  one connect, EPOLLET registration, epoll_wait(-1):
 *                       prints events=, so_error= and elapsed_ms=.
 *   thread-waiter       thread A sits in epoll_wait(-1) on an empty set;
 *                       then the main thread connects N sockets and adds
 *                       them (EPOLLOUT|EPOLLET): A must see each writable
 *                       with SO_ERROR 0; then every GET must work.
 *   fork-during         N connects, fork() during the handshakes (the child
 *                       _exit(0)s at once), then the parent completes all.
 *   close-during        N connects; half are closed during the handshake
 *                       (one by dup2() of /dev/null over it), their numbers
 *                       are reused by new sockets that connect too, and all
 *                       live ones must complete; the /dev/null fd must read
 *                       as EOF.
 *
 * A watchdog (SIGALRM at --timeout-ms + 3 s) ends a hung program with
 * "error: watchdog: ETIMEDOUT" and exit 3. */
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1000

enum mode {
	M_POLL, M_SELECT, M_EPOLL_LT, M_EPOLL_ET, M_EPOLL_ONESHOT,
	M_CHECK_ERRORS, M_EPOLL_FOREVER, M_THREAD_WAITER, M_FORK_DURING,
	M_CLOSE_DURING,
};

static const char *const mode_names[] = {
	"poll", "select", "epoll-lt", "epoll-et", "epoll-oneshot",
	"check-errors", "epoll-wait-forever", "thread-waiter", "fork-during",
	"close-during",
};

struct opts {
	enum mode mode;
	int register_before, conns, timeout_ms;
	const char *host, *port, *path, *expect;
};

enum state { S_CONNECTING, S_SENDING, S_READING, S_DONE, S_CLOSED };
static const char *const state_names[] = {
	"connect", "send", "recv", "done", "closed",
};

struct conn {
	int fd, idx;
	enum state st;
	size_t sent;
	char *buf;
	size_t len, cap;
	uint32_t reg; /* epoll: the events registered */
};

static struct opts o;
static struct conn conns[MAX_CONNS];
static int nconns;
static char request[1024];
static size_t request_len;
static long t_start;
static int epfd = -1;
static int einprogress; /* connect() calls that returned EINPROGRESS */

static void usage(void)
{
	fprintf(stderr, "usage: evloop --mode poll|select|epoll-lt|epoll-et|"
		"epoll-oneshot|check-errors|epoll-wait-forever|thread-waiter|"
		"fork-during|close-during [--register-before] [--conns N] "
		"--host HOST --port PORT [--path P] [--expect-body TEXT] "
		"[--timeout-ms MS]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	int mode = -1;

	o.conns = 1;
	o.timeout_ms = 20000;
	o.path = "/";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--register-before") == 0) {
			o.register_before = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--mode") == 0) {
			for (size_t m = 0; m < sizeof(mode_names) / sizeof(*mode_names); m++)
				if (strcmp(v, mode_names[m]) == 0)
					mode = (int)m;
		} else if (strcmp(a, "--conns") == 0) {
			o.conns = atoi(v);
		} else if (strcmp(a, "--host") == 0) {
			o.host = v;
		} else if (strcmp(a, "--port") == 0) {
			o.port = v;
		} else if (strcmp(a, "--path") == 0) {
			o.path = v;
		} else if (strcmp(a, "--expect-body") == 0) {
			o.expect = v;
		} else if (strcmp(a, "--timeout-ms") == 0) {
			o.timeout_ms = atoi(v);
		} else {
			usage();
		}
	}
	if (mode < 0 || !o.host || !o.port || o.conns < 1 ||
	    o.conns > MAX_CONNS / 2 || o.timeout_ms < 1)
		usage();
	o.mode = (enum mode)mode;
}

/* ------------------------------------------------------------ reporting */
static void die_conn(const struct conn *c, const char *step, int err)
{
	char what[64];
	snprintf(what, sizeof(what), "conn %d: %s", c->idx, step);
	tu_report_errno(what, err);
	exit(1);
}

static void die(const char *step, int err)
{
	tu_report_errno(step, err);
	exit(1);
}

static void watchdog(int sig)
{
	static const char msg[] = "error: watchdog: ETIMEDOUT (the program hung)\n";
	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to do */
	}
	_exit(3);
}

static void start_watchdog(void)
{
	struct itimerval it = { 0 };
	long ms = o.timeout_ms + 3000L;

	signal(SIGALRM, watchdog);
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void append_flag(char *out, size_t cap, unsigned have, unsigned bit,
			const char *name)
{
	if (!(have & bit))
		return;
	if (*out)
		strncat(out, "|", cap - strlen(out) - 1);
	strncat(out, name, cap - strlen(out) - 1);
}

static const char *poll_flags(short revents, char *out, size_t cap)
{
	unsigned r = (unsigned short)revents;
	*out = 0;
	append_flag(out, cap, r, POLLIN, "POLLIN");
	append_flag(out, cap, r, POLLPRI, "POLLPRI");
	append_flag(out, cap, r, POLLOUT, "POLLOUT");
	append_flag(out, cap, r, POLLERR, "POLLERR");
	append_flag(out, cap, r, POLLHUP, "POLLHUP");
	append_flag(out, cap, r, POLLRDHUP, "POLLRDHUP");
	append_flag(out, cap, r, POLLNVAL, "POLLNVAL");
	if (!*out)
		snprintf(out, cap, "0");
	return out;
}

static const char *epoll_flags(uint32_t ev, char *out, size_t cap)
{
	*out = 0;
	append_flag(out, cap, ev, EPOLLIN, "EPOLLIN");
	append_flag(out, cap, ev, EPOLLPRI, "EPOLLPRI");
	append_flag(out, cap, ev, EPOLLOUT, "EPOLLOUT");
	append_flag(out, cap, ev, EPOLLERR, "EPOLLERR");
	append_flag(out, cap, ev, EPOLLHUP, "EPOLLHUP");
	append_flag(out, cap, ev, EPOLLRDHUP, "EPOLLRDHUP");
	if (!*out)
		snprintf(out, cap, "0");
	return out;
}

static const char *err_or_zero(int err)
{
	return err ? tu_errname(err) : "0";
}

/* ---------------------------------------------------------- connections */
static struct addrinfo *resolve(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc = getaddrinfo(o.host, o.port, &hints, &res);

	if (rc != 0) {
		printf("error: getaddrinfo: %s (%s)\n", tu_eainame(rc),
		       gai_strerror(rc));
		exit(1);
	}
	return res;
}

static int so_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static void epoll_add(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die_conn(c, "epoll_ctl(ADD)", errno);
	c->reg = events;
}

static void epoll_mod(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die_conn(c, "epoll_ctl(MOD)", errno);
	c->reg = events;
}

/* The registration each epoll mode starts with. */
static uint32_t initial_events(void)
{
	switch (o.mode) {
	case M_EPOLL_ET:
		return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	case M_EPOLL_ONESHOT:
		return EPOLLOUT | EPOLLONESHOT;
	default:
		return EPOLLOUT;
	}
}

static int uses_epoll(void)
{
	return o.mode == M_EPOLL_LT || o.mode == M_EPOLL_ET ||
	       o.mode == M_EPOLL_ONESHOT;
}

/* A non-blocking TCP socket for ai, connect() started (0 or EINPROGRESS). */
static void open_conn(struct conn *c, int idx, const struct addrinfo *ai)
{
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die_conn(c, "socket", errno);
	if (uses_epoll() && o.register_before)
		epoll_add(c, initial_events());
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			die_conn(c, "connect", errno);
		einprogress++;
	}
	if (uses_epoll() && !o.register_before)
		epoll_add(c, initial_events());
	c->st = S_CONNECTING;
}

static void check_response(struct conn *c)
{
	static const char http[] = "HTTP/1.";
	const char *body;

	if (c->len < sizeof(http) - 1 || memcmp(c->buf, http, sizeof(http) - 1) != 0) {
		printf("error: conn %d: response: EBADMSG (does not start with "
		       "HTTP/1.: %.*s)\n", c->idx,
		       (int)(c->len < 80 ? c->len : 80), c->buf ? c->buf : "");
		exit(1);
	}
	body = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (o.expect && (!body || !memmem(body, c->len - (size_t)(body - c->buf),
					   o.expect, strlen(o.expect)))) {
		printf("error: conn %d: body: EBADMSG (expected '%s', got: %.*s)\n",
		       c->idx, o.expect, (int)(c->len < 300 ? c->len : 300), c->buf);
		exit(1);
	}
}

static void finish(struct conn *c)
{
	check_response(c);
	if (uses_epoll() && epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL) < 0)
		die_conn(c, "epoll_ctl(DEL)", errno);
	close(c->fd);
	free(c->buf);
	c->buf = NULL;
	c->st = S_DONE;
}

/* The fd is writable (or has an error) while connecting. */
static void connected(struct conn *c)
{
	int err = so_error(c->fd);

	if (err)
		die_conn(c, "connect", err);
	c->st = S_SENDING;
}

/* One send() (all: until EAGAIN); 1 when it would block. */
static int do_send(struct conn *c, int all)
{
	do {
		ssize_t n = send(c->fd, request + c->sent, request_len - c->sent,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			if (errno == EINTR)
				continue;
			die_conn(c, "send", errno);
		}
		c->sent += (size_t)n;
		if (c->sent == request_len) {
			c->st = S_READING;
			return 0;
		}
	} while (all);
	return 0;
}

/* One recv() (all: until EAGAIN or EOF); 1 when it would block. */
static int do_recv(struct conn *c, int all)
{
	do {
		ssize_t n;
		if (c->cap - c->len < 4096) {
			c->cap = c->cap ? c->cap * 2 : 8192;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				die_conn(c, "recv", ENOMEM);
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			if (errno == EINTR)
				continue;
			die_conn(c, "recv", errno);
		}
		if (n == 0) {
			finish(c);
			return 0;
		}
		c->len += (size_t)n;
	} while (all);
	return 0;
}

/* Readiness reported for c: writable/readable as the wait primitive said. */
static void on_ready(struct conn *c, int writable, int readable, int errhup,
		     const char *evtext)
{
	int all = o.mode == M_EPOLL_ET || o.mode == M_EPOLL_ONESHOT;

	if (c->st == S_CONNECTING) {
		if (!writable && !errhup) {
			printf("error: conn %d: connect: EPROTO (readable before "
			       "writable: %s)\n", c->idx, evtext);
			exit(1);
		}
		connected(c);
		if (!writable)
			die_conn(c, "connect", EPROTO); /* error, SO_ERROR 0 */
		if (do_send(c, all))
			return;
		if (!all)
			return;
	} else if (c->st == S_SENDING) {
		if (writable || errhup) {
			if (do_send(c, all))
				return;
			if (!all)
				return;
		}
	}
	if (c->st == S_READING && (readable || errhup || all))
		do_recv(c, all);
}

static int remaining(void)
{
	int n = 0;
	for (int i = 0; i < nconns; i++)
		if (conns[i].st != S_DONE && conns[i].st != S_CLOSED)
			n++;
	return n;
}

static void timed_out(void)
{
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		if (c->st != S_DONE && c->st != S_CLOSED) {
			char step[64];
			snprintf(step, sizeof(step), "wait(%s)", state_names[c->st]);
			die_conn(c, step, ETIMEDOUT);
		}
	}
	die("wait", ETIMEDOUT);
}

static int wait_ms(long deadline)
{
	long left = deadline - tu_now_ms();
	if (left <= 0)
		timed_out();
	return left > 1000 ? 1000 : (int)left;
}

static void loop_poll(long deadline)
{
	struct pollfd pfd[MAX_CONNS];
	struct conn *who[MAX_CONNS];

	while (remaining()) {
		int n = 0, rc;
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			if (c->st == S_DONE || c->st == S_CLOSED)
				continue;
			pfd[n].fd = c->fd;
			pfd[n].events = c->st == S_READING ? POLLIN : POLLOUT;
			pfd[n].revents = 0;
			who[n++] = c;
		}
		rc = poll(pfd, (nfds_t)n, wait_ms(deadline));
		if (rc < 0 && errno != EINTR)
			die("poll", errno);
		for (int i = 0; rc > 0 && i < n; i++) {
			char txt[96];
			short r = pfd[i].revents;
			if (!r)
				continue;
			if (r & POLLNVAL)
				die_conn(who[i], "poll", EBADF);
			on_ready(who[i], !!(r & POLLOUT), !!(r & POLLIN),
				 !!(r & (POLLERR | POLLHUP)),
				 poll_flags(r, txt, sizeof(txt)));
		}
	}
}

static void loop_select(long deadline)
{
	while (remaining()) {
		fd_set rd, wr;
		int maxfd = -1, rc, ms;
		struct timeval tv;

		FD_ZERO(&rd);
		FD_ZERO(&wr);
		for (int i = 0; i < nconns; i++) {
			struct conn *c = &conns[i];
			if (c->st == S_DONE || c->st == S_CLOSED)
				continue;
			if (c->fd >= FD_SETSIZE)
				die_conn(c, "select", EBADF);
			FD_SET(c->fd, c->st == S_READING ? &rd : &wr);
			if (c->fd > maxfd)
				maxfd = c->fd;
		}
		ms = wait_ms(deadline);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		rc = select(maxfd + 1, &rd, &wr, NULL, &tv);
		if (rc < 0 && errno != EINTR)
			die("select", errno);
		for (int i = 0; rc > 0 && i < nconns; i++) {
			struct conn *c = &conns[i];
			int w, r;
			if (c->st == S_DONE || c->st == S_CLOSED)
				continue;
			w = FD_ISSET(c->fd, &wr);
			r = FD_ISSET(c->fd, &rd);
			if (w || r)
				on_ready(c, w, r, 0, w ? "writable" : "readable");
		}
	}
}

static void loop_epoll(long deadline)
{
	struct epoll_event evs[64];

	while (remaining()) {
		int rc = epoll_wait(epfd, evs, 64, wait_ms(deadline));
		if (rc < 0 && errno != EINTR)
			die("epoll_wait", errno);
		for (int i = 0; i < rc; i++) {
			struct conn *c = evs[i].data.ptr;
			uint32_t e = evs[i].events;
			char txt[96];
			if (c->st == S_DONE || c->st == S_CLOSED)
				continue;
			on_ready(c, !!(e & EPOLLOUT), !!(e & EPOLLIN),
				 !!(e & (EPOLLERR | EPOLLHUP)),
				 epoll_flags(e, txt, sizeof(txt)));
			if (o.mode == M_EPOLL_LT && c->st == S_READING &&
			    c->reg != EPOLLIN)
				epoll_mod(c, EPOLLIN);
			else if (o.mode == M_EPOLL_ONESHOT &&
				 c->st != S_DONE && c->st != S_CLOSED)
				epoll_mod(c, (c->st == S_READING ? EPOLLIN : EPOLLOUT) |
					  EPOLLONESHOT);
		}
	}
}

static void run_loop(void)
{
	long deadline = t_start + o.timeout_ms;

	switch (o.mode) {
	case M_SELECT:
		loop_select(deadline);
		break;
	case M_EPOLL_LT:
	case M_EPOLL_ET:
	case M_EPOLL_ONESHOT:
		loop_epoll(deadline);
		break;
	default:
		loop_poll(deadline);
		break;
	}
}

static void open_all(const struct addrinfo *ai, int n)
{
	for (int i = 0; i < n; i++)
		open_conn(&conns[nconns + i], nconns + i, ai);
	nconns += n;
}

static void print_ok(int done)
{
	long ms = tu_now_ms() - t_start;

	printf("einprogress=%d\n", einprogress);
	printf("ok %d ms=%ld\n", done, ms);
}

/* ------------------------------------------------------- special modes */
/* Blocking-style GET on a connected non-blocking fd, with poll(). */
static void get_on(struct conn *c)
{
	long deadline = t_start + o.timeout_ms;

	c->st = S_SENDING;
	while (c->st != S_DONE) {
		struct pollfd p = { .fd = c->fd,
				    .events = c->st == S_READING ? POLLIN : POLLOUT };
		int rc = poll(&p, 1, wait_ms(deadline));
		char txt[96];
		if (rc < 0 && errno != EINTR)
			die_conn(c, "poll", errno);
		if (rc > 0)
			on_ready(c, !!(p.revents & POLLOUT), !!(p.revents & POLLIN),
				 !!(p.revents & (POLLERR | POLLHUP)),
				 poll_flags(p.revents, txt, sizeof(txt)));
	}
}

static int mode_check_errors(const struct addrinfo *ai)
{
	struct conn *c = &conns[0];
	struct pollfd p;
	char txt[96];
	int rc, err;
	char byte;

	memset(c, 0, sizeof(*c));
	nconns = 1;
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket", errno);
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	printf("connect1=%s\n", rc == 0 ? "0" : tu_errname(errno));
	if (rc < 0 && errno != EINPROGRESS)
		return 1;

	/* At once, while the handshake runs. */
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	err = rc == 0 ? 0 : errno;
	if (err == EISCONN || rc == 0) {
		/* Only fine if the handshake already finished. */
		p = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
			printf("connect_again=%s\n", err_or_zero(err));
			printf("connect_again_ok=no (connected but not writable)\n");
			return 1;
		}
		printf("connect_again=%s\n", err_or_zero(err));
		printf("connect_again_ok=yes (the handshake had finished)\n");
	} else {
		printf("connect_again=%s\n", tu_errname(err));
		printf("connect_again_ok=%s\n", err == EALREADY ? "yes" : "no");
	}
	rc = (int)read(c->fd, &byte, 1);
	printf("read=%s\n", rc < 0 ? tu_errname(errno) : (rc == 0 ? "EOF" : "DATA"));
	rc = (int)write(c->fd, "X", 1);
	printf("write=%s\n", rc < 0 ? tu_errname(errno) : "SENT");
	fflush(stdout);

	p = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
	for (;;) {
		rc = poll(&p, 1, o.timeout_ms);
		if (rc < 0 && errno == EINTR)
			continue;
		break;
	}
	if (rc < 0)
		die("poll", errno);
	if (rc == 0)
		die("poll", ETIMEDOUT);
	printf("revents=%s\n", poll_flags(p.revents, txt, sizeof(txt)));
	err = so_error(c->fd);
	printf("so_error=%s\n", err_or_zero(err));
	printf("so_error2=%s\n", err_or_zero(so_error(c->fd)));
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	printf("connect2=%s\n", rc == 0 ? "0" : tu_errname(errno));
	if (err == 0 && o.expect) {
		c->sent = 0;
		get_on(c);
		printf("body=ok\n");
	}
	printf("elapsed_ms=%ld\n", tu_now_ms() - t_start);
	return 0;
}

static int mode_epoll_forever(const struct addrinfo *ai)
{
	struct conn *c = &conns[0];
	struct epoll_event ev;
	char txt[96];
	int rc, err;

	nconns = 1;
	memset(c, 0, sizeof(*c));
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket", errno);
	rc = connect(c->fd, ai->ai_addr, ai->ai_addrlen);
	if (rc < 0 && errno != EINPROGRESS)
		die("connect", errno);
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.fd = c->fd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl", errno);
	do
		rc = epoll_wait(epfd, &ev, 1, -1);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		die("epoll_wait", errno);
	err = so_error(c->fd);
	printf("events=%s\n", epoll_flags(ev.events, txt, sizeof(txt)));
	printf("so_error=%s\n", err_or_zero(err));
	printf("elapsed_ms=%ld\n", tu_now_ms() - t_start);
	if (err == 0 && o.expect) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		get_on(c);
		printf("body=ok\n");
	}
	return 0;
}

/* thread-waiter: thread A waits in epoll_wait(-1) from before the first
 * connect(); it must see each fd writable once its handshake is done. */
static int waiter_seen, waiter_target;
static char waiter_detail[256];

static void *waiter_thread(void *arg)
{
	struct epoll_event evs[64];

	(void)arg;
	while (__atomic_load_n(&waiter_seen, __ATOMIC_ACQUIRE) < waiter_target) {
		int rc = epoll_wait(epfd, evs, 64, -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			snprintf(waiter_detail, sizeof(waiter_detail),
				 "epoll_wait: %s", tu_errname(errno));
			return NULL;
		}
		for (int i = 0; i < rc; i++) {
			struct conn *c = evs[i].data.ptr;
			char txt[96];
			int err;
			if (c->st != S_CONNECTING)
				continue;
			err = so_error(c->fd);
			if (!(evs[i].events & EPOLLOUT) || err) {
				snprintf(waiter_detail, sizeof(waiter_detail),
					 "conn %d: events=%s so_error=%s", c->idx,
					 epoll_flags(evs[i].events, txt, sizeof(txt)),
					 err_or_zero(err));
				return NULL;
			}
			c->st = S_SENDING;
			__atomic_add_fetch(&waiter_seen, 1, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static int mode_thread_waiter(const struct addrinfo *ai)
{
	pthread_t a;
	struct timespec pause = { 0, 200 * 1000000L };

	waiter_target = o.conns;
	if (pthread_create(&a, NULL, waiter_thread, NULL) != 0)
		die("pthread_create", EAGAIN);
	nanosleep(&pause, NULL); /* A is in epoll_wait(-1) by now */
	for (int i = 0; i < o.conns; i++) {
		struct conn *c = &conns[i];
		open_conn(c, i, ai);
		nconns = i + 1;
		epoll_add(c, EPOLLOUT | EPOLLET);
	}
	pthread_join(a, NULL);
	if (waiter_detail[0]) {
		printf("error: waiter: %s\n", waiter_detail);
		return 1;
	}
	printf("waiter_seen=%d so_error=0\n", waiter_seen);
	for (int i = 0; i < nconns; i++) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, conns[i].fd, NULL);
		get_on(&conns[i]);
	}
	print_ok(nconns);
	return 0;
}

static int mode_fork_during(const struct addrinfo *ai)
{
	pid_t pid;
	int status;

	open_all(ai, o.conns);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork", errno);
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid", errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("error: child: ECHILD (status 0x%x)\n", status);
		return 1;
	}
	run_loop();
	printf("child=exited0\n");
	print_ok(nconns);
	return 0;
}

static int mode_close_during(const struct addrinfo *ai)
{
	int devnull, dupfd = -1, closed = 0, reopen = 0, done = 0;
	char byte;
	ssize_t n;

	open_all(ai, o.conns);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		die("open", errno);
	for (int i = 0; i < o.conns; i += 2) {
		struct conn *c = &conns[i];
		if (i == 0) {
			if (dup2(devnull, c->fd) < 0)
				die_conn(c, "dup2", errno);
			dupfd = c->fd;
		} else {
			close(c->fd);
			reopen++;
		}
		c->st = S_CLOSED;
		closed++;
	}
	close(devnull);
	/* New sockets get the numbers just freed: no state may stick to them. */
	open_all(ai, reopen);
	run_loop();
	for (int i = 0; i < nconns; i++)
		done += conns[i].st == S_DONE;
	if (dupfd >= 0) {
		n = read(dupfd, &byte, 1);
		printf("devnull_read=%s\n", n == 0 ? "EOF" : n < 0 ? tu_errname(errno) : "DATA");
		close(dupfd);
	}
	printf("closed=%d reopened=%d\n", closed, reopen);
	print_ok(done);
	return 0;
}

int main(int argc, char **argv)
{
	struct addrinfo *ai;
	int rc = 0;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	start_watchdog();
	t_start = tu_now_ms();
	ai = resolve();
	snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
		 o.path, o.host);
	request_len = strlen(request);
	if (uses_epoll() || o.mode == M_EPOLL_FOREVER || o.mode == M_THREAD_WAITER) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1", errno);
	}
	switch (o.mode) {
	case M_CHECK_ERRORS:
		rc = mode_check_errors(ai);
		break;
	case M_EPOLL_FOREVER:
		rc = mode_epoll_forever(ai);
		break;
	case M_THREAD_WAITER:
		rc = mode_thread_waiter(ai);
		break;
	case M_FORK_DURING:
		rc = mode_fork_during(ai);
		break;
	case M_CLOSE_DURING:
		rc = mode_close_during(ai);
		break;
	default:
		open_all(ai, o.conns);
		run_loop();
		print_ok(nconns);
		break;
	}
	freeaddrinfo(ai);
	return rc;
}
