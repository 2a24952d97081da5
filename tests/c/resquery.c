/* resquery: the resolver's own interface, as socksify answers it.
 *
 *   resquery query NAME TYPE [--connect PORT [PATH]] [--ptr] [--anslen N]
 *   resquery search NAME TYPE                                       res_search
 *   resquery querydomain NAME DOMAIN TYPE                           res_querydomain
 *   resquery nquery NAME TYPE                         res_ninit + res_nquery
 *   resquery send NAME TYPE                           res_mkquery + res_send
 *   resquery sendraw HEX                              res_send of raw bytes
 *   resquery gai wait|nowait|signal|thread NAME...    getaddrinfo_a
 *
 * TYPE is A, AAAA, PTR, MX, TXT, SRV, HTTPS, SVCB, ANY or a number.
 * Query output: "rc=N herrno=NAME" (the n-variant adds "res_h_errno=NAME"),
 * then, when the buffer holds a reply (also with rc=-1: NODATA and NXDOMAIN
 * leave it there), "hdr rcode=N qd=N an=N tc=N aa=N ra=N rd=N" and one line
 * per answer: "A ADDR ttl=N", "AAAA ADDR ttl=N", "PTR NAME ttl=N" or
 * "RR type=N".  --connect: a TCP connection to the first address of the
 * answer, "GET PATH", and "body=FIRST LINE" or "connect_error=ENAME".
 * sendraw: "rc=N errno=ENAME".
 * gai: "gai NAME ret=0 addr=ADDR" or "gai NAME ret=EAI_xxx" per request,
 * after "getaddrinfo_a=N" and, for signal/thread, "notified=signal
 * code=SI_ASYNCNL value=42" or "notified=thread value=42 sigmask=full";
 * then "suspend=0|EAI_xxx" (gai_suspend once all are done: glibc says
 * EAI_ALLDONE for finished requests) and "cancel=0" (gai_cancel of the
 * first: EAI_ALLDONE).  query --ptr: then res_query PTR of the first
 * address ("ptr_rc=N herrno=NAME" and the reply). */
#include "testutil.h"

#include <arpa/nameser.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define BUF 4096
#define FILL 0xEE

static int parse_type(const char *s)
{
	static const struct { const char *name; int type; } t[] = {
		{"A", 1}, {"AAAA", 28}, {"PTR", 12}, {"MX", 15}, {"TXT", 16}, {"SRV", 33},
		{"HTTPS", 65}, {"SVCB", 64}, {"ANY", 255}, {"NS", 2}, {"CNAME", 5},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcasecmp(s, t[i].name) == 0)
			return t[i].type;
	return atoi(s);
}

static const char *herrno_name(int e)
{
	switch (e) {
	case NETDB_INTERNAL: return "NETDB_INTERNAL";
	case NETDB_SUCCESS: return "NETDB_SUCCESS";
	case HOST_NOT_FOUND: return "HOST_NOT_FOUND";
	case TRY_AGAIN: return "TRY_AGAIN";
	case NO_RECOVERY: return "NO_RECOVERY";
	case NO_DATA: return "NO_DATA";
	default: return "OTHER";
	}
}

static unsigned g16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Skip a (possibly compressed) name; offset past it or -1. */
static int skip_name(const unsigned char *m, int len, int off)
{
	while (off < len) {
		unsigned l = m[off];
		if ((l & 0xC0) == 0xC0)
			return off + 2 <= len ? off + 2 : -1;
		if (l == 0)
			return off + 1;
		off += 1 + (int)l;
	}
	return -1;
}

static char first_addr[INET6_ADDRSTRLEN];
static int first_family;

/* Print the reply in m (len bytes are valid). */
static void print_reply(const unsigned char *m, int len)
{
	if (len < 12 || m[2] == FILL)
		return;
	printf("hdr rcode=%u qd=%u an=%u tc=%u aa=%u ra=%u rd=%u\n", m[3] & 0xF, g16(m + 4), g16(m + 6),
	       (m[2] >> 1) & 1, (m[2] >> 2) & 1, m[3] >> 7, m[2] & 1);
	int off = 12;
	for (unsigned i = 0; i < g16(m + 4) && off >= 0; i++)
		off = skip_name(m, len, off) + 4;
	for (unsigned i = 0; i < g16(m + 6) && off >= 0 && off < len; i++) {
		off = skip_name(m, len, off);
		if (off < 0 || off + 10 > len)
			break;
		unsigned type = g16(m + off), rdlen = g16(m + off + 8);
		unsigned long ttl = (unsigned long)g16(m + off + 4) << 16 | g16(m + off + 6);
		const unsigned char *rd = m + off + 10;
		if (off + 10 + (int)rdlen > len)
			break;
		char text[NS_MAXDNAME];
		if (type == 1 && rdlen == 4) {
			inet_ntop(AF_INET, rd, text, sizeof text);
			printf("A %s ttl=%lu\n", text, ttl);
		} else if (type == 28 && rdlen == 16) {
			inet_ntop(AF_INET6, rd, text, sizeof text);
			printf("AAAA %s ttl=%lu\n", text, ttl);
		} else if (type == 12 && dn_expand(m, m + len, rd, text, sizeof text) > 0) {
			printf("PTR %s ttl=%lu\n", text, ttl);
		} else {
			printf("RR type=%u\n", type);
		}
		if ((type == 1 || type == 28) && !first_family) {
			first_family = type == 1 ? AF_INET : AF_INET6;
			inet_ntop(first_family, rd, first_addr, sizeof first_addr);
		}
		off += 10 + (int)rdlen;
	}
}

static void follow_up(const char *port, const char *path)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	if (first_family == AF_INET) {
		struct sockaddr_in *sin = (void *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(port));
		inet_pton(AF_INET, first_addr, &sin->sin_addr);
		sl = sizeof *sin;
	} else if (first_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (void *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)atoi(port));
		inet_pton(AF_INET6, first_addr, &sin6->sin6_addr);
		sl = sizeof *sin6;
	} else {
		printf("connect_error=NOADDR\n");
		return;
	}
	int fd = socket(first_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		printf("connect_error=%s\n", tu_errname(errno));
		return;
	}
	char req[512], resp[BUF];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n) {
		printf("connect_error=%s\n", tu_errname(errno));
		return;
	}
	size_t got = 0;
	ssize_t r;
	while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
		got += (size_t)r;
	resp[got] = '\0';
	close(fd);
	char *body = strstr(resp, "\r\n\r\n");
	body = body ? body + 4 : resp;
	body[strcspn(body, "\r\n")] = '\0';
	printf("body=%s\n", body);
}

/* PTR of the answer's first address, in the same process: "ptr_rc=N",
 * then the reply. */
static void reverse_first(void)
{
	unsigned char a[16], ans[BUF];
	char name[128];
	size_t o = 0;
	if (!first_family || inet_pton(first_family, first_addr, a) != 1) {
		printf("ptr_rc=noaddr\n");
		return;
	}
	if (first_family == AF_INET) {
		snprintf(name, sizeof name, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			o += (size_t)snprintf(name + o, sizeof name - o, "%x.%x.", a[i] & 15, a[i] >> 4);
		snprintf(name + o, sizeof name - o, "ip6.arpa");
	}
	memset(ans, FILL, sizeof ans);
	int rc = res_query(name, C_IN, 12, ans, sizeof ans);
	printf("ptr_rc=%d herrno=%s\n", rc, herrno_name(h_errno));
	print_reply(ans, rc > 0 ? rc : BUF);
}

static int cmd_query(int argc, char **argv)
{
	static unsigned char ans[BUF];
	int anslen = sizeof ans, rc, then_ptr = 0;
	const char *cmd = argv[1], *connect_port = NULL, *path = "/";
	if (argc < 4)
		return 2;
	int type = parse_type(argv[strcmp(cmd, "querydomain") == 0 ? 4 : 3]);
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--anslen") == 0 && i + 1 < argc)
			anslen = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ptr") == 0)
			then_ptr = 1;
		else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
			connect_port = argv[++i];
			if (i + 1 < argc && argv[i + 1][0] == '/')
				path = argv[++i];
		}
	}
	memset(ans, FILL, sizeof ans);
	h_errno = 0;
	if (strcmp(cmd, "query") == 0) {
		rc = res_query(argv[2], C_IN, type, ans, anslen);
	} else if (strcmp(cmd, "search") == 0) {
		rc = res_search(argv[2], C_IN, type, ans, anslen);
	} else if (strcmp(cmd, "querydomain") == 0) {
		rc = res_querydomain(argv[2], strcmp(argv[3], "-") ? argv[3] : NULL, C_IN, type, ans, anslen);
	} else if (strcmp(cmd, "nquery") == 0) {
		static struct __res_state st;
		if (res_ninit(&st) != 0) {
			printf("error: res_ninit\n");
			return 1;
		}
		st.res_h_errno = 0;
		rc = res_nquery(&st, argv[2], C_IN, type, ans, anslen);
		printf("res_h_errno=%s\n", herrno_name(st.res_h_errno));
		res_nclose(&st);
	} else if (strcmp(cmd, "send") == 0) {
		unsigned char q[BUF];
		int qlen = res_mkquery(QUERY, argv[2], C_IN, type, NULL, 0, NULL, q, sizeof q);
		if (qlen < 0) {
			printf("error: res_mkquery\n");
			return 1;
		}
		rc = res_send(q, qlen, ans, anslen);
		if (rc > 0 && (ans[0] != q[0] || ans[1] != q[1]))
			printf("error: id mismatch\n");
	} else {
		return 2;
	}
	printf("rc=%d herrno=%s\n", rc, herrno_name(h_errno));
	print_reply(ans, rc > 0 ? rc : anslen < BUF ? anslen : BUF);
	if (rc > anslen)
		printf("error: rc %d > anslen %d\n", rc, anslen);
	if (connect_port)
		follow_up(connect_port, path);
	if (then_ptr)
		reverse_first();
	return rc > 0 ? 0 : 1;
}

static int cmd_sendraw(const char *hex)
{
	unsigned char msg[BUF], ans[BUF];
	int n = 0;
	for (; hex[0] && hex[1] && n < BUF; hex += 2) {
		unsigned v;
		if (sscanf(hex, "%2x", &v) != 1)
			break;
		msg[n++] = (unsigned char)v;
	}
	memset(ans, FILL, sizeof ans);
	errno = 0;
	int rc = res_send(msg, n, ans, sizeof ans);
	printf("rc=%d errno=%s\n", rc, errno ? tu_errname(errno) : "0");
	if (rc > 0)
		print_reply(ans, rc);
	return rc > 0 ? 0 : 1;
}

static sem_t notified;
static int notify_value;
static int notify_mask_full;

static void on_thread_notify(union sigval v)
{
	sigset_t mask;
	notify_value = v.sival_int;
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	notify_mask_full = sigismember(&mask, SIGINT) && sigismember(&mask, SIGRTMIN);
	sem_post(&notified);
}

static int cmd_gai(int argc, char **argv)
{
	const char *mode = argv[2];
	int n = argc - 3;
	if (n < 1 || n > 16)
		return 2;
	struct gaicb reqs[16], *list[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct sigevent sev = {.sigev_notify = SIGEV_NONE};
	for (int i = 0; i < n; i++) {
		memset(&reqs[i], 0, sizeof reqs[i]);
		reqs[i].ar_name = argv[3 + i];
		reqs[i].ar_service = "80";
		reqs[i].ar_request = &hints;
		list[i] = &reqs[i];
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sem_init(&notified, 0, 0);
	int gmode = strcmp(mode, "wait") == 0 ? GAI_WAIT : GAI_NOWAIT;
	if (strcmp(mode, "signal") == 0) {
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = SIGRTMIN;
		sev.sigev_value.sival_int = 42;
	} else if (strcmp(mode, "thread") == 0) {
		sev.sigev_notify = SIGEV_THREAD;
		sev.sigev_notify_function = on_thread_notify;
		sev.sigev_value.sival_int = 42;
	}
	int rc = getaddrinfo_a(gmode, list, n, gmode == GAI_WAIT ? NULL : &sev);
	printf("getaddrinfo_a=%d\n", rc);
	struct timespec five = {5, 0};
	if (strcmp(mode, "signal") == 0) {
		siginfo_t si;
		if (sigtimedwait(&set, &si, &five) == SIGRTMIN)
			printf("notified=signal code=%s value=%d\n", si.si_code == SI_ASYNCNL ? "SI_ASYNCNL" : "other",
			       si.si_value.sival_int);
		else
			printf("notified=none\n");
	} else if (strcmp(mode, "thread") == 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		if (sem_timedwait(&notified, &until) == 0)
			printf("notified=thread value=%d sigmask=%s\n", notify_value, notify_mask_full ? "full" : "partial");
		else
			printf("notified=none\n");
	}
	/* Until every request is done (nowait without notification). */
	for (int tries = 0; tries < 50; tries++) {
		int busy = 0;
		for (int i = 0; i < n; i++)
			busy |= gai_error(list[i]) == EAI_INPROGRESS;
		if (!busy)
			break;
		struct timespec tenth = {0, 100000000};
		gai_suspend((const struct gaicb *const *)list, n, &tenth);
	}
	for (int i = 0; i < n; i++) {
		int e = gai_error(list[i]);
		if (e == 0 && reqs[i].ar_result) {
			char text[64];
			tu_format_sockaddr(reqs[i].ar_result->ai_addr, text, sizeof text);
			printf("gai %s ret=0 addr=%s\n", reqs[i].ar_name, text);
			freeaddrinfo(reqs[i].ar_result);
		} else {
			printf("gai %s ret=%s\n", reqs[i].ar_name, e == EAI_INPROGRESS ? "EAI_INPROGRESS" : tu_eainame(e));
		}
	}
	rc = gai_suspend((const struct gaicb *const *)list, n, &five);
	printf("suspend=%s\n", rc == 0 ? "0" : rc == EAI_ALLDONE ? "EAI_ALLDONE" : tu_eainame(rc));
	printf("cancel=%d\n", gai_cancel(list[0]) == EAI_ALLDONE ? 0 : 1);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "sendraw") == 0)
		rc = cmd_sendraw(argv[2]);
	else if (argc >= 4 && strcmp(argv[1], "gai") == 0)
		rc = cmd_gai(argc, argv);
	else if (argc >= 4)
		rc = cmd_query(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: see the top of tests/c/resquery.c\n");
	return rc;
}
