/* relay_test: the GSSAPI data relay (shim/relay.h) without Kerberos.
 *
 * Linked with the whole library (its hooks included, as the program's own
 * functions), it calls sfy_relay_start directly on a real loopback TCP
 * connection whose other end plays the proxy, with a fake protection: XOR
 * and a checksum byte (a corrupted token fails), max_in 1000 (chunking).
 * The library's log (stderr) goes to a file that the cases read.
 *
 *   relay_test [CASE]     all cases, or one; "ok CASE" / "not ok CASE: why"
 * Exit status 0 when all passed.  Each case is bounded by alarm(). */
#include "relay_util.h"

/* ---------------------------------------------------------------- cases */

struct bulk {
	int fd;
	uint8_t *buf;
	size_t n;
	int rc;
};

static void *app_writer(void *arg)
{
	struct bulk *b = arg;
	b->rc = write_all(b->fd, b->buf, b->n);
	shutdown(b->fd, SHUT_WR);
	return NULL;
}

static void *proxy_writer(void *arg)
{
	struct bulk *b = arg;
	static uint8_t f[4 + MAX_IN + 1];
	for (size_t off = 0, i = 0; off < b->n; i++) {
		size_t n = 1 + (i * 7919) % MAX_IN; /* varying chunk sizes */
		n = n > b->n - off ? b->n - off : n;
		if (write_all(b->fd, f, frame(f, b->buf + off, n)) < 0) {
			b->rc = -1;
			break;
		}
		off += n;
	}
	shutdown(b->fd, SHUT_WR);
	return NULL;
}

static void *proxy_reader(void *arg)
{
	struct bulk *b = arg;
	static uint8_t plain[65536];
	size_t got = 0;
	long n;
	while ((n = proxy_read_frame(b->fd, plain)) > 0 && got + (size_t)n <= b->n) {
		memcpy(b->buf + got, plain, (size_t)n);
		got += (size_t)n;
	}
	b->rc = n == 0 && got == b->n ? 0 : -1;
	return NULL;
}

/* 1 MiB each way at once, both ends shut down at the end. */
static int case_bulk(void)
{
	int app, px, base = tu_count_fds();
	uint8_t *up = malloc(MIB), *down = malloc(MIB), *up_got = malloc(MIB), *down_got = malloc(MIB);
	fill(up, MIB, 1);
	fill(down, MIB, 2);
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start: %s", strerror(errno));
	struct bulk aw = {app, up, MIB, 0}, pw = {px, down, MIB, 0}, pr = {px, up_got, MIB, 0};
	pthread_t t1, t2, t3;
	pthread_create(&t1, NULL, app_writer, &aw);
	pthread_create(&t2, NULL, proxy_writer, &pw);
	pthread_create(&t3, NULL, proxy_reader, &pr);
	int end = -1;
	size_t got = app_read_all(app, down_got, MIB, &end);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_join(t3, NULL);
	CHECK(aw.rc == 0 && pw.rc == 0, "writes failed");
	CHECK(pr.rc == 0 && memcmp(up, up_got, MIB) == 0, "program to proxy: bytes differ or no clean end");
	CHECK(got == MIB && end == 0 && memcmp(down, down_got, MIB) == 0, "proxy to program: %zu bytes, end %s", got,
	      tu_errname(end));
	CHECK(!frames_over, "%d frames above max_in", frames_over);
	close(app);
	close(px);
	free(up), free(down), free(up_got), free(down_got);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* Frames split byte by byte, and 50 frames in one write. */
static int case_split(void)
{
	int app, px, base = tu_count_fds(), end;
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	static uint8_t buf[60 * (5 + 100)], want[60 * 100], got[sizeof want + 1];
	fill(want, sizeof want, 3);
	size_t n = 0;
	for (int i = 0; i < 10; i++)
		n += frame(buf + n, want + i * 100, 100);
	for (size_t i = 0; i < n; i++) {
		CHECK(write(px, buf + i, 1) == 1, "write");
		if (i % 7 == 0)
			usleep(200);
	}
	size_t m = 0;
	for (int i = 10; i < 60; i++)
		m += frame(buf + m, want + i * 100, 100);
	CHECK(write_all(px, buf, m) == 0, "write");
	shutdown(px, SHUT_WR);
	size_t g = app_read_all(app, got, sizeof got, &end);
	CHECK(g == sizeof want && end == 0 && memcmp(got, want, g) == 0, "got %zu bytes, end %s", g, tu_errname(end));
	close(app);
	close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* Good frames, then bad bytes: the program gets the good bytes, then the
 * end (ECONNRESET), within the time bound, and the reason is logged. */
static int bad_tail(const char *name, const uint8_t *tail, size_t tn, int shut, const char *logged)
{
	int app, px, base = tu_count_fds(), end;
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "%s: relay start", name);
	uint8_t buf[2 * (5 + 500) + 64], good[1000], got[2000];
	fill(good, sizeof good, 4);
	size_t n = frame(buf, good, 500);
	n += frame(buf + n, good + 500, 500);
	memcpy(buf + n, tail, tn);
	CHECK(write_all(px, buf, n + tn) == 0, "%s: write", name);
	if (shut)
		shutdown(px, SHUT_WR);
	long t0 = tu_now_ms();
	size_t g = app_read_all(app, got, sizeof got, &end);
	CHECK(tu_now_ms() - t0 < 3000, "%s: took %ld ms", name, tu_now_ms() - t0);
	CHECK(g == sizeof good && memcmp(got, good, g) == 0, "%s: %zu good bytes read", name, g);
	CHECK(end == ECONNRESET, "%s: end %s, expected ECONNRESET", name, tu_errname(end));
	CHECK(log_has(logged), "%s: log lacks \"%s\"", name, logged);
	/* The proxy's connection is closed too. */
	char c;
	struct pollfd pfd = {px, POLLIN, 0};
	CHECK(poll(&pfd, 1, 3000) == 1 && read(px, &c, 1) <= 0, "%s: the proxy's side stays open", name);
	close(app);
	close(px);
	CHECK(fds_settle(base) == base, "%s: fds: %d before, %d after", name, base, tu_count_fds());
	return 0;
}

static int case_errors(void)
{
	uint8_t corrupt[4 + 11];
	uint8_t ten[10] = "0123456789";
	frame(corrupt, ten, 10);
	corrupt[9] ^= 1; /* a bit flipped in the token */
	static const uint8_t ver[] = {2, 3, 0, 1, 0}, mtyp[] = {1, 2, 0, 1, 0}, zero[] = {1, 3, 0, 0},
			     abort_[] = {1, 0xff}, mid[] = {1, 3, 0, 9, 1, 2};
	if (bad_tail("corrupt", corrupt, sizeof corrupt, 0, "unwrap: fake integrity check failed") < 0 ||
	    bad_tail("version", ver, sizeof ver, 0, "frame version 2") < 0 ||
	    bad_tail("mtyp", mtyp, sizeof mtyp, 0, "message type 2") < 0 ||
	    bad_tail("length0", zero, sizeof zero, 0, "length 0") < 0 ||
	    bad_tail("abort", abort_, sizeof abort_, 0, "aborted") < 0 ||
	    bad_tail("eof-mid-frame", mid, sizeof mid, 1, "middle of a frame (6 bytes") < 0 ||
	    bad_tail("eof-in-header", mid, 3, 1, "middle of a frame (3 bytes") < 0)
		return -1;
	return 0;
}

/* Each side ends its stream while the other keeps sending. */
static int case_halfclose(void)
{
	int app, px, base = tu_count_fds(), end;
	uint8_t f[64], plain[65536], got[16];
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	/* The program first: the proxy sees its bytes, then the end. */
	CHECK(write(app, "up", 2) == 2 && shutdown(app, SHUT_WR) == 0, "write/shutdown");
	CHECK(proxy_read_frame(px, plain) == 2 && !memcmp(plain, "up", 2), "proxy missed the bytes");
	CHECK(proxy_read_frame(px, plain) == 0, "proxy saw no end of stream");
	CHECK(write_all(px, f, frame(f, "down", 4)) == 0, "write");
	CHECK(read_full(app, got, 4) == 0 && !memcmp(got, "down", 4), "program missed the bytes after its shutdown");
	shutdown(px, SHUT_WR);
	CHECK(app_read_all(app, got, sizeof got, &end) == 0 && end == 0, "program saw no clean end");
	close(app);
	close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	/* The proxy first. */
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	CHECK(write_all(px, f, frame(f, "bye", 3)) == 0 && shutdown(px, SHUT_WR) == 0, "write");
	CHECK(app_read_all(app, got, sizeof got, &end) == 3 && end == 0 && !memcmp(got, "bye", 3), "no bytes then EOF");
	CHECK(write(app, "late", 4) == 4, "program cannot write after the proxy's end");
	CHECK(proxy_read_frame(px, plain) == 4 && !memcmp(plain, "late", 4), "proxy missed the late bytes");
	close(app); /* the program closes: the relay ends the stream to the proxy */
	CHECK(proxy_read_frame(px, plain) == 0, "proxy saw no end after the program's close");
	close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	/* The program closes while the proxy still sends: the relay ends. */
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	close(app);
	CHECK(proxy_read_frame(px, plain) == 0, "proxy saw no end after the program's close");
	close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* poll() reports readable only once a whole token is unwrapped; epoll
 * registrations and O_NONBLOCK are kept. */
static int case_readiness(void)
{
	int app, px, base = tu_count_fds();
	uint8_t f[64], got[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct sfy_epoll_reg reg = {ep, {.events = EPOLLIN, .data.u64 = 42}};
	CHECK(tcp_pair(&app, &px) == 0, "pair");
	CHECK(fcntl(app, F_SETFL, O_NONBLOCK) == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, app, &reg.ev) == 0, "setup");
	close(px);
	close(app);
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	CHECK(fcntl(app, F_SETFL, O_NONBLOCK) == 0, "nonblock");
	close(app), close(px);
	/* Registered before the start: kept. */
	CHECK(tcp_pair(&app, &px) == 0, "pair");
	fcntl(app, F_SETFL, O_NONBLOCK);
	epoll_ctl(ep, EPOLL_CTL_ADD, app, &reg.ev);
	struct sfy_fdinfo info = {.app_family = AF_INET};
	struct sfy_prot p = {&fake_ops, NULL, MAX_IN};
	CHECK(sfy_relay_start(app, &p, &info, &reg, 1, "readiness") == 0, "relay start");
	CHECK(fcntl(app, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	CHECK(read(app, got, 1) < 0 && errno == EAGAIN, "read did not say EAGAIN");
	size_t n = frame(f, "0123456789", 10);
	CHECK(write_all(px, f, n - 3) == 0, "write");
	struct pollfd pfd = {app, POLLIN, 0};
	struct epoll_event ev;
	CHECK(poll(&pfd, 1, 300) == 0, "readable with a partial token");
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0, "epoll: readable with a partial token");
	CHECK(write_all(px, f + n - 3, 3) == 0, "write");
	CHECK(poll(&pfd, 1, 3000) == 1 && (pfd.revents & POLLIN), "not readable after the whole token");
	CHECK(epoll_wait(ep, &ev, 1, 0) == 1 && ev.data.u64 == 42, "epoll registration lost");
	CHECK(read(app, got, sizeof got) == 10 && !memcmp(got, "0123456789", 10), "bytes");
	CHECK(poll(&pfd, 1, 200) == 0, "readable with nothing to read");
	close(app), close(px), close(ep);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* sendfile() from a file to the program's fd, splice() from it to a pipe. */
static int case_zerocopy(void)
{
	int app, px, base = tu_count_fds(), pp[2];
	static uint8_t data[256 * 1024], got[sizeof data], f[4 + MAX_IN + 1];
	fill(data, sizeof data, 5);
	char path[] = "/tmp/relay_test.XXXXXX";
	int file = mkstemp(path);
	unlink(path);
	CHECK(file >= 0 && write_all(file, data, sizeof data) == 0, "file");
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	struct bulk pr = {px, got, sizeof data, 0};
	pthread_t t;
	pthread_create(&t, NULL, proxy_reader, &pr);
	off_t off = 0;
	while (off < (off_t)sizeof data)
		CHECK(sendfile(app, file, &off, sizeof data - (size_t)off) > 0, "sendfile: %s", strerror(errno));
	shutdown(app, SHUT_WR);
	pthread_join(t, NULL);
	CHECK(pr.rc == 0 && !memcmp(got, data, sizeof data), "sendfile: the proxy got other bytes");
	CHECK(pipe(pp) == 0, "pipe");
	size_t sent = 0;
	for (size_t o = 0; o < 64 * 1024; o += MAX_IN) {
		size_t n = 64 * 1024 - o < MAX_IN ? 64 * 1024 - o : MAX_IN;
		CHECK(write_all(px, f, frame(f, data + o, n)) == 0, "write");
	}
	shutdown(px, SHUT_WR);
	while (sent < 64 * 1024) {
		ssize_t s = splice(app, NULL, pp[1], NULL, 64 * 1024 - sent, 0);
		CHECK(s > 0, "splice: %s", s < 0 ? strerror(errno) : "end of stream");
		CHECK(read_full(pp[0], got + sent, (size_t)s) == 0, "pipe read");
		sent += (size_t)s;
	}
	CHECK(!memcmp(got, data, sent), "splice: other bytes");
	close(pp[0]), close(pp[1]), close(file), close(app), close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof v;
	return getsockopt(fd, level, name, &v, &l) == 0 ? v : -100 - errno;
}

/* The fd still looks like the TCP socket, through a dup() too. */
static int case_looks_tcp(void)
{
	int app, px, base = tu_count_fds();
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	int d = dup(app);
	struct sockaddr_in a, pxa;
	char txt[64];
	for (int i = 0; i < 2; i++) {
		int fd = i ? d : app;
		socklen_t l = sizeof a;
		CHECK(getpeername(fd, (struct sockaddr *)&a, &l) == 0 && a.sin_family == AF_INET, "getpeername");
		inet_ntop(AF_INET, &a.sin_addr, txt, sizeof txt);
		CHECK(!strcmp(txt, "192.0.2.1") && ntohs(a.sin_port) == 80, "getpeername: %s", txt);
		l = sizeof a;
		socklen_t pl = sizeof pxa;
		CHECK(getsockname(fd, (struct sockaddr *)&a, &l) == 0 && a.sin_family == AF_INET, "getsockname");
		CHECK(getpeername(px, (struct sockaddr *)&pxa, &pl) == 0 && a.sin_port == pxa.sin_port,
		      "getsockname: not the TCP socket's port");
		CHECK(opt(fd, SOL_SOCKET, SO_DOMAIN) == AF_INET, "SO_DOMAIN %d", opt(fd, SOL_SOCKET, SO_DOMAIN));
		CHECK(opt(fd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "SO_TYPE");
		CHECK(opt(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, "SO_PROTOCOL");
		CHECK(opt(fd, SOL_SOCKET, SO_ERROR) == 0, "SO_ERROR");
	}
	int one = 1;
	CHECK(opt(app, IPPROTO_TCP, TCP_NODELAY) == 0, "TCP_NODELAY: %d", opt(app, IPPROTO_TCP, TCP_NODELAY));
	CHECK(setsockopt(app, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "set TCP_NODELAY");
	CHECK(opt(d, IPPROTO_TCP, TCP_NODELAY) == 1, "TCP_NODELAY not set");
	CHECK(setsockopt(app, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0, "set SO_KEEPALIVE");
	CHECK(opt(app, SOL_SOCKET, SO_KEEPALIVE) == 1, "SO_KEEPALIVE not set");
	CHECK(opt(app, IPPROTO_TCP, TCP_MAXSEG) > 0, "TCP_MAXSEG");
	/* The dup keeps the stream alive after the first number is closed. */
	close(app);
	uint8_t f[32], got[8];
	CHECK(write_all(px, f, frame(f, "dup", 3)) == 0, "write");
	CHECK(read_full(d, got, 3) == 0 && !memcmp(got, "dup", 3), "read through the dup");
	close(d), close(px);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* A fork child closes its copies of the relay's fds: a child that outlives
 * the process that relays sees the end of its stream, and the proxy sees
 * the connection close, instead of both hanging. */
static int case_fork(void)
{
	int app, px, rp[2], base = tu_count_fds();
	CHECK(tcp_pair(&app, &px) == 0 && pipe(rp) == 0, "setup");
	pid_t c1 = fork();
	if (c1 == 0) {
		close(px);
		close(rp[0]);
		struct sfy_fdinfo info = {.app_family = AF_INET};
		struct sfy_prot p = {&fake_ops, NULL, MAX_IN};
		if (sfy_relay_start(app, &p, &info, NULL, 0, "fork case") < 0)
			_exit(3);
		int before = tu_count_fds();
		if (fork() == 0) {
			/* Ours: the program's fds (stdio, log, app, rp[1], the
			 * directory) and none of the relay's 3. */
			int mine = tu_count_fds();
			char r = mine == before - 3 ? 'c' : 'L';
			struct pollfd pfd = {app, POLLIN, 0};
			char c;
			if (r == 'c' && poll(&pfd, 1, 8000) == 1) {
				ssize_t n = read(app, &c, 1);
				r = n == 0 ? 'E' : n < 0 && errno == ECONNRESET ? 'R' : 'd';
			}
			(void)!write(rp[1], &r, 1);
			_exit(0);
		}
		exit(0); /* with the relay thread: the child outlives it */
	}
	close(app);
	close(rp[1]);
	int st;
	waitpid(c1, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "first child: status %d", st);
	struct pollfd pfd = {rp[0], POLLIN, 0};
	char r = 0;
	CHECK(poll(&pfd, 1, 10000) == 1 && read(rp[0], &r, 1) == 1, "no word from the grandchild");
	CHECK(r == 'E' || r == 'R', "grandchild: %c (L: relay fds kept, d: data, c: hang)", r);
	pfd.fd = px;
	CHECK(poll(&pfd, 1, 3000) == 1 && read(px, &r, 1) <= 0, "the proxy's connection stays open");
	close(px), close(rp[0]);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* CPU time of the process (all threads), in ms. */
static long cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *flood(void *arg)
{
	struct bulk *b = arg;
	static uint8_t f[4 + MAX_IN + 1], chunk[MAX_IN];
	size_t n = frame(f, chunk, MAX_IN);
	while (b->n-- && write_all(b->fd, f, n) == 0)
		;
	return NULL;
}

/* The relay waits without spinning: while the program does not read (the
 * proxy keeps sending), after each side's end of stream, and after the
 * proxy resets the connection while the program does not read. */
static int case_nospin(void)
{
	int app, px, base = tu_count_fds();
	CHECK(relayed_pair(&app, &px, NULL, 0) == 0, "relay start");
	struct bulk fl = {px, NULL, 4000, 0};
	pthread_t t;
	pthread_create(&t, NULL, flood, &fl);
	usleep(300000);
	long c0 = cpu_ms();
	usleep(500000);
	CHECK(cpu_ms() - c0 < 100, "backpressure: %ld ms of CPU in 500 ms", cpu_ms() - c0);
	shutdown(app, SHUT_WR);
	usleep(100000);
	c0 = cpu_ms();
	usleep(500000);
	CHECK(cpu_ms() - c0 < 100, "after the program's shutdown: %ld ms of CPU in 500 ms", cpu_ms() - c0);
	struct linger lg = {1, 0};
	setsockopt(px, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	shutdown(px, SHUT_RDWR); /* the flood thread's write fails */
	pthread_join(t, NULL);
	close(px); /* a reset */
	usleep(100000);
	c0 = cpu_ms();
	usleep(500000);
	CHECK(cpu_ms() - c0 < 100, "after the proxy's reset: %ld ms of CPU in 500 ms", cpu_ms() - c0);
	static uint8_t sink[8 * MIB];
	int end;
	size_t g = app_read_all(app, sink, sizeof sink, &end);
	/* End of file, not ECONNRESET: the program shut its writing side, and
	 * the reset needs a byte sent from its end (see relay_reset_app). */
	CHECK(g > 0 && g % MAX_IN == 0 && end == 0, "%zu bytes, end %s", g, tu_errname(end));
	close(app);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* A program that writes and exits at once: its last bytes still reach the
 * proxy (the relay's exit drain, up to 2 s), then the end of the stream.
 * Small TCP buffers and a proxy that starts reading 500 ms late leave
 * most of them in the relay's end of the pair at the exit. */
static int case_exit_drain(void)
{
	int app, px, base = tu_count_fds(), cp[2], small = 32768;
	static uint8_t data[512 * 1024], got[sizeof data + 1], plain[65536];
	fill(data, sizeof data, 6);
	CHECK(tcp_pair(&app, &px) == 0 && pipe(cp) == 0, "setup");
	setsockopt(app, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(px, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	pid_t c = fork();
	if (c == 0) {
		close(px);
		struct sfy_fdinfo info = {.app_family = AF_INET};
		struct sfy_prot p = {&fake_ops, NULL, MAX_IN};
		if (sfy_relay_start(app, &p, &info, NULL, 0, "exit case") < 0)
			_exit(3);
		fcntl(app, F_SETFL, O_NONBLOCK);
		size_t n = 0;
		ssize_t w;
		while (n < sizeof data && (w = write(app, data + n, sizeof data - n)) > 0)
			n += (size_t)w;
		(void)!write(cp[1], &n, sizeof n);
		exit(0);
	}
	close(app);
	close(cp[1]);
	size_t want = 0, n = 0;
	CHECK(read(cp[0], &want, sizeof want) == sizeof want && want > 64 * 1024, "child wrote %zu bytes", want);
	usleep(500000);
	long r;
	while ((r = proxy_read_frame(px, plain)) > 0 && n + (size_t)r <= sizeof got) {
		memcpy(got + n, plain, (size_t)r);
		n += (size_t)r;
	}
	int st;
	waitpid(c, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %d", st);
	CHECK(r == 0 && n == want && !memcmp(got, data, n), "the proxy got %zu of %zu bytes (end %ld)", n, want, r);
	close(px), close(cp[0]);
	CHECK(fds_settle(base) == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

/* sfy_relay_start refuses what it cannot run, leaving fd alone. */
static int case_refuse(void)
{
	int app, px, base = tu_count_fds();
	CHECK(tcp_pair(&app, &px) == 0, "pair");
	struct sfy_fdinfo info = {.app_family = AF_INET};
	struct sfy_prot p = {&fake_ops, NULL, 70000};
	int f0 = freed;
	CHECK(sfy_relay_start(app, &p, &info, NULL, 0, "x") < 0 && errno == EINVAL && freed == f0 + 1, "max_in 70000");
	CHECK(sfy_relay_start(-1, &(struct sfy_prot){&fake_ops, NULL, 10}, &info, NULL, 0, "x") < 0, "fd -1");
	CHECK(opt(app, SOL_SOCKET, SO_DOMAIN) == AF_INET && write(app, "x", 1) == 1, "fd changed");
	char c;
	CHECK(read(px, &c, 1) == 1 && c == 'x', "the TCP socket is no longer at fd");
	close(app), close(px);
	CHECK(tu_count_fds() == base, "fds: %d before, %d after", base, tu_count_fds());
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{"bulk", case_bulk},         {"split", case_split},       {"errors", case_errors},
	{"halfclose", case_halfclose}, {"readiness", case_readiness}, {"zerocopy", case_zerocopy},
	{"looks_tcp", case_looks_tcp}, {"fork", case_fork},         {"refuse", case_refuse},
	{"nospin", case_nospin},     {"exit_drain", case_exit_drain},
};

int main(int argc, char **argv)
{
	char path[] = "/tmp/relay_test_log.XXXXXX";
	log_fd = mkstemp(path);
	if (log_fd < 0)
		return 2;
	unlink(path);
	dup2(log_fd, 2); /* the library's log lines */
	/* Start the relay thread (its eventfd stays): cases count fds after. */
	int app, px;
	if (relayed_pair(&app, &px, NULL, 0) < 0)
		return 2;
	close(app), close(px);
	usleep(100000);
	int failed = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		alarm(60);
		int rc = cases[i].fn();
		alarm(0);
		printf(rc == 0 ? "ok %s\n" : "not ok %s: %s\n", cases[i].name, why);
		fflush(stdout);
		failed |= rc != 0;
	}
	if (failed || getenv("RELAY_TEST_LOG")) {
		char buf[8192];
		ssize_t n = pread(log_fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		printf("library log:\n%s", buf);
	}
	return failed;
}
