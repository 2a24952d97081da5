/* The chain engine (include/sfy_chain.h): the engines of a route's hops,
 * run in turn on one byte stream.  Hop i's engine asks its proxy to
 * CONNECT to hop i+1; once it is DONE the bytes on the stream are hop
 * i+1's, which starts from its greeting.  Each engine reads no further than
 * its own last reply, so nothing of the next hop's (nor the program's) is
 * ever taken early.  No I/O, no clock, no global. */
#include "sfy_chain.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* What hop i asks its proxy for. */
static void hop_target(const struct sfy_chain_engine *c, int i, uint8_t *cmd, const struct s5_addr **dst)
{
	if (i < c->chain->n - 1) {
		*cmd = S5_CMD_CONNECT;
		*dst = &c->chain->hop[i + 1].addr;
	} else {
		*cmd = c->cmd;
		*dst = &c->dst;
	}
}

static void start_hop(struct sfy_chain_engine *c, int i)
{
	uint8_t cmd;
	const struct s5_addr *dst;
	hop_target(c, i, &cmd, &dst);
	c->at = i;
	sfy_engine_release(&c->e); /* the previous hop's (GSSAPI is the last hop's only) */
	sfy_engine_start(&c->e, &c->chain->hop[i].hop, cmd, dst);
	if (c->e.state == SFY_ENG_FAILED)
		c->unsuited = 1;
}

/* Fail at hop i before anything was sent. */
static void refuse(struct sfy_chain_engine *c, int i, int err, const char *step)
{
	c->at = i;
	c->unsuited = 1;
	sfy_engine_fail(&c->e, err, step);
}

void sfy_chain_start(struct sfy_chain_engine *c, const struct sfy_chain *chain, uint8_t cmd, const struct s5_addr *dst)
{
	memset(c, 0, sizeof *c);
	c->chain = chain;
	c->cmd = cmd;
	c->dst = *dst;
	c->e.rep = -1;
	c->e.step = "greeting";
	if (chain->n < 1 || chain->n > SFY_CHAIN_MAX) {
		refuse(c, 0, EINVAL, "greeting (a route has 1 to 8 hops)");
		return;
	}
	int last = chain->n - 1;
	if (cmd == S5_CMD_BIND && chain->hop[last].hop.type != SFY_HOP_SOCKS5) {
		refuse(c, last, EOPNOTSUPP, "request (only a socks5 last hop can BIND)");
		return;
	}
	if (cmd == S5_CMD_UDP_ASSOCIATE && (chain->n > 1 || chain->hop[0].hop.type != SFY_HOP_SOCKS5)) {
		refuse(c, last, EOPNOTSUPP, "request (UDP ASSOCIATE needs a route of one socks5 hop)");
		return;
	}
	if (cmd == S5_CMD_UDP_ASSOCIATE && chain->hop[0].hop.gssapi) {
		refuse(c, last, EOPNOTSUPP, "request (UDP ASSOCIATE with GSSAPI is not supported)");
		return;
	}
	/* Every hop's request is encoded now, so that one a hop cannot send
	 * (a name to socks4, an IPv6 address to socks4a) fails the route
	 * before the driver connects, not after the hops before it spoke. */
	for (int i = last; i >= 0; i--) {
		start_hop(c, i);
		if (c->e.state == SFY_ENG_FAILED)
			return;
	}
}

/* Hop `at` is DONE and not the last: the next hop speaks now. */
static void advance(struct sfy_chain_engine *c)
{
	start_hop(c, c->at + 1);
	/* Checked at start: a failure here would be a changed config. */
}

enum sfy_want sfy_chain_want(struct sfy_chain_engine *c, const uint8_t **out, size_t *out_len, size_t *read_max)
{
	for (;;) {
		enum sfy_want w = sfy_engine_want(&c->e, out, out_len, read_max);
		if (w != SFY_WANT_DONE || c->at >= c->chain->n - 1)
			return w;
		advance(c);
	}
}

void sfy_chain_sent(struct sfy_chain_engine *c, size_t n)
{
	sfy_engine_sent(&c->e, n);
}

size_t sfy_chain_feed(struct sfy_chain_engine *c, const uint8_t *in, size_t n)
{
	return sfy_engine_feed(&c->e, in, n);
}

void sfy_chain_eof(struct sfy_chain_engine *c)
{
	sfy_engine_eof(&c->e);
}

void sfy_chain_fail(struct sfy_chain_engine *c, int err, const char *step)
{
	sfy_engine_fail(&c->e, err, step);
}

void sfy_chain_next_reply(struct sfy_chain_engine *c)
{
	if (c->e.state != SFY_ENG_DONE || c->at != c->chain->n - 1)
		return;
	c->bound = 1;
	sfy_engine_next_reply(&c->e);
}

void sfy_chain_start_reply(struct sfy_chain_engine *c, const struct sfy_chain *chain, uint8_t cmd)
{
	memset(c, 0, sizeof *c);
	c->chain = chain;
	c->cmd = cmd;
	c->bound = 1;
	c->at = chain->n > 0 ? chain->n - 1 : 0;
	sfy_engine_start_reply_hop(&c->e, &chain->hop[c->at].hop, cmd);
}

int sfy_chain_failed_at(const struct sfy_chain_engine *c)
{
	return c->at;
}

/* The last hop's reply is about the destination (so no other route would
 * fare better): SOCKS5 REP 02-08 (01 is the proxy's own failure), SOCKS4
 * 91 (92/93 are its identd check of us), HTTP 4xx/5xx but 407 (our
 * credentials). */
static int destination_answered(const struct sfy_engine *e)
{
	switch (e->type) {
	case SFY_HOP_SOCKS5: return e->rep >= 2 && e->rep <= 8;
	case SFY_HOP_SOCKS4:
	case SFY_HOP_SOCKS4A: return e->rep == 91;
	case SFY_HOP_HTTP: return e->rep >= 400 && e->rep <= 599 && e->rep != 407;
	}
	return 0;
}

int sfy_chain_may_fail_over(const struct sfy_chain_engine *c)
{
	if (c->e.state != SFY_ENG_FAILED)
		return SFY_CHAIN_FINAL;
	if (c->unsuited)
		return SFY_CHAIN_UNSUITED;
	if (c->at < c->chain->n - 1)
		return SFY_CHAIN_ROUTE_DOWN; /* an intermediate hop: the route's failure */
	/* After BIND's first reply the program holds the address: whatever
	 * happens to the second is this connection's outcome. */
	if (c->bound || destination_answered(&c->e))
		return SFY_CHAIN_FINAL;
	return SFY_CHAIN_ROUTE_DOWN;
}

const char *sfy_chain_step(const struct sfy_chain_engine *c, char *buf, size_t cap)
{
	const char *step = c->e.step ? c->e.step : "greeting";
	if (c->at == 0)
		snprintf(buf, cap, "%s", step);
	else
		snprintf(buf, cap, "hop %d %s", c->at + 1, step);
	return buf;
}

const char *sfy_chain_first_step(const struct sfy_chain_engine *c)
{
	switch (c->chain->hop[0].hop.type) {
	case SFY_HOP_SOCKS4:
	case SFY_HOP_SOCKS4A:
		return "reply";
	case SFY_HOP_HTTP:
		return "request";
	default:
		return "greeting";
	}
}
