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
#include "sfy_gss.h"
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
	char step[SFY_CHAIN_STEP_MAX];
	const struct sfy_engine *e = &c->e;
	printf("hop %d     FAILED after %.1f ms at %s: ", c->at + 1, ms_since(t0), sfy_chain_step(c, step, sizeof step));
	if (e->rep > 0)
		printf("%s replied %d (%s)", c->chain->hop[c->at].text, e->rep, sfy_engine_rep_text(e));
	else
		printf("%s", e->err == EPROTO ? "malformed or truncated reply" : strerror(e->err));
	printf("; a program would get %s\n", strerror(e->err));
}

/* One hop done: it reached the next one (arg: when that hop began). */
static void hop_reached(const struct sfy_chain_engine *c, int hop, void *arg)
{
	long long *t0 = arg;
	printf("hop %d     ok in %.1f ms: %s reached %s\n", hop + 1, ms_since(*t0), c->chain->hop[hop].text,
	       c->chain->hop[hop + 1].text);
	*t0 = sfy_now_us();
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
	long long hop_t0 = sfy_now_us();
	int rc = sfy_chain_drive(&c, &io, hop_reached, &hop_t0);
	int level;
	char hop[24] = "";
	if (route->n > 1)
		snprintf(hop, sizeof hop, "hop %d     ", c.at + 1);
	if (sfy_engine_gss_level(&c.e, &level)) {
		/* The context and the level were agreed before the request. */
		printf("%sgssapi context    ok: a Kerberos context with %s (mutual authentication)\n", hop,
		       route->hop[c.at].hop.gss_service);
		printf("%sgssapi protection ok: %s; the request, the reply and every byte after them are wrapped\n", hop,
		       level == SFY_GSS_CONFIDENTIALITY ? "confidentiality" : "integrity");
	}
	if (rc == 0 && route->n == 1)
		printf("CONNECT   ok in %.1f ms: %s through %s\n", ms_since(hop_t0), what, route->hop[0].text);
	else if (rc == 0)
		printf("hop %d     ok in %.1f ms: CONNECT %s through %s\n", c.at + 1, ms_since(hop_t0), what,
		       route->hop[c.at].text);
	else
		failed(&c, hop_t0);
	sfy_engine_release(&c.e);
	close(fd);
	return rc;
}
