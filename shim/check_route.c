/* socksify --check HOST: every hop of the route HOST takes, step by step,
 * with the same chain engine the library drives (issue 14). */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sfy_chain.h"
#include "sfy_wire.h"

static double ms_since(long long t0)
{
	return (double)(sfy_now_us() - t0) / 1000.0;
}

static int dial(const struct sfy_chain_hop *h, long long deadline)
{
	int fd = socket(h->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&h->sa, h->salen) == 0 ||
	    ((errno == EINPROGRESS || errno == EINTR) && sfy_connect_finish(fd, deadline) == 0))
		return fd;
	int err = errno;
	close(fd);
	errno = err;
	return -1;
}

static void failed(const struct sfy_chain_engine *c, long long t0)
{
	char step[64];
	const struct sfy_engine *e = &c->e;
	printf("hop %d     FAILED after %.1f ms at %s: ", c->at + 1, ms_since(t0), sfy_chain_step(c, step, sizeof step));
	if (e->rep > 0)
		printf("%s replied %d (%s)", c->chain->hop[c->at].text, e->rep, sfy_engine_rep_text(e));
	else
		printf("%s", e->err == EPROTO ? "malformed or truncated reply" : strerror(e->err));
	printf("; a program would get %s\n", strerror(e->err));
}

int sfy_check_probe_route(const struct sfy_config *cfg, const struct sfy_chain *route, const struct s5_addr *dst)
{
	char what[300];
	long long t0 = sfy_now_us(), deadline = sfy_now_ms() + (cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000);
	s5_addr_text(dst, what, sizeof what);
	int fd = dial(&route->hop[0], deadline);
	if (fd < 0) {
		printf("hop 1     FAILED after %.1f ms: TCP connection to %s: %s\n", ms_since(t0), route->hop[0].text,
		       strerror(errno));
		return -1;
	}
	printf("hop 1     connect ok in %.1f ms: TCP connection to %s\n", ms_since(t0), route->hop[0].text);
	struct sfy_chain_engine c;
	sfy_chain_start(&c, route, S5_CMD_CONNECT, dst);
	struct sfy_io io = {.fd = fd, .deadline = sfy_now_ms() + (cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 10000)};
	int at = 0, rc = -1;
	t0 = sfy_now_us();
	for (int done = 0; !done;) {
		const uint8_t *out;
		size_t len, max;
		uint8_t buf[SFY_ENG_IN_MAX];
		ssize_t n;
		enum sfy_want w = sfy_chain_want(&c, &out, &len, &max);
		if (c.at != at) { /* the hop before reached this one */
			printf("hop %d     ok in %.1f ms: %s reached %s\n", at + 1, ms_since(t0), route->hop[at].text,
			       route->hop[c.at].text);
			at = c.at;
			t0 = sfy_now_us();
		}
		switch (w) {
		case SFY_WANT_WRITE:
			if (sfy_send_all(&io, out, len) < 0)
				sfy_chain_fail(&c, errno, NULL);
			else
				sfy_chain_sent(&c, len);
			break;
		case SFY_WANT_READ:
			n = sfy_recv_some(&io, buf, max, sfy_engine_at_message_start(&c.e));
			if (n > 0)
				sfy_chain_feed(&c, buf, (size_t)n);
			else if (n == 0)
				sfy_chain_eof(&c);
			else
				sfy_chain_fail(&c, errno, NULL);
			break;
		case SFY_WANT_DONE:
			printf("hop %d     ok in %.1f ms: CONNECT %s through %s\n", at + 1, ms_since(t0), what,
			       route->hop[at].text);
			rc = 0;
			done = 1;
			break;
		case SFY_WANT_FAILED:
			failed(&c, t0);
			done = 1;
			break;
		}
	}
	close(fd);
	return rc;
}
