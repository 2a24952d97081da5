/* A chain of proxies on one byte stream (issue 14): one engine per hop, run
 * in turn on the same fd.  Hop 1 is reached by the driver's TCP connect;
 * hop i asks hop i+1's address of hop i, the last hop asks for the
 * destination.  Like the engine, the chain does no I/O: a driver moves the
 * bytes (blocking: shim/socks.c; event loop: shim/async.c; sealed mode:
 * sealed/proxy.c).  A chain of one SOCKS5 hop behaves exactly as the
 * single engine did. */
#ifndef SFY_CHAIN_H
#define SFY_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sfy_engine.h"
#include "socks5_codec.h"

#define SFY_CHAIN_MAX 8 /* hops in one route */

/* One hop of a route, as the configuration gives it. */
struct sfy_chain_hop {
	struct sfy_hop hop;   /* type, credentials, pipelining */
	struct s5_addr addr;  /* where it listens (a name only after hop 1:
			       * sent to the previous hop, never resolved) */
	struct sockaddr_storage sa; /* hop 1: the numeric address to connect to */
	socklen_t salen;
	char text[96];        /* "socks5://198.51.100.1:1080" for log lines */
	char gss_default[270]; /* "rcmd@" + the host as written: the GSSAPI
				* service when gssapi_service is not set */
};

struct sfy_chain {
	int n;
	struct sfy_chain_hop hop[SFY_CHAIN_MAX];
};

struct sfy_chain_engine {
	const struct sfy_chain *chain;
	int at;               /* the hop being negotiated, 0-based */
	uint8_t cmd;
	struct s5_addr dst;
	struct sfy_engine e;  /* hop `at`'s engine; e.step/e.rep/e.err/e.reply as before */
	int unsuited;         /* failed before a byte: the route cannot carry this */
	int bound;            /* BIND: the first reply succeeded */
};

/* Start: hop 1 (index 0) is asked for hop 2's addr, ..., the last hop for
 * dst with cmd.  Whatever a hop cannot carry is found here, before the
 * driver connects: a name for a socks4 hop (EOPNOTSUPP), an IPv6 address
 * for socks4/4a (EAFNOSUPPORT), BIND unless the last hop is SOCKS5 and UDP
 * ASSOCIATE unless the route is one SOCKS5 hop (EOPNOTSUPP), more than
 * SFY_CHAIN_MAX hops (EINVAL): the chain is FAILED at that hop and
 * sfy_chain_may_fail_over says SFY_CHAIN_UNSUITED.  The engine state
 * (c->e) may be copied with c: nothing in it points into c. */
void sfy_chain_start(struct sfy_chain_engine *c, const struct sfy_chain *chain, uint8_t cmd, const struct s5_addr *dst);
enum sfy_want sfy_chain_want(struct sfy_chain_engine *c, const uint8_t **out, size_t *out_len, size_t *read_max);
void sfy_chain_sent(struct sfy_chain_engine *c, size_t n);
size_t sfy_chain_feed(struct sfy_chain_engine *c, const uint8_t *in, size_t n);
void sfy_chain_eof(struct sfy_chain_engine *c);
void sfy_chain_fail(struct sfy_chain_engine *c, int err, const char *step);
/* After DONE for BIND's first reply: expect the second (from the last
 * hop, which is SOCKS5). */
void sfy_chain_next_reply(struct sfy_chain_engine *c);
/* A chain engine that only waits for BIND's second reply, read later on a
 * connection the chain set up before (see sfy_engine_start_reply). */
void sfy_chain_start_reply(struct sfy_chain_engine *c, const struct sfy_chain *chain, uint8_t cmd);

/* After FAILED: the hop that failed (0-based), and whether another route
 * may be tried: not when the last hop answered for the destination
 * (REP 02-08 of SOCKS5, 91 of SOCKS4 for the destination, HTTP 4xx/5xx of
 * the last hop but 407): that is the destination's answer. */
int sfy_chain_failed_at(const struct sfy_chain_engine *c);

enum sfy_chain_verdict {
	SFY_CHAIN_FINAL = 0,      /* the destination's answer (or not failed):
				   * the call fails with e.err, no other route */
	SFY_CHAIN_ROUTE_DOWN = 1, /* a hop unreachable, silent, garbled, refusing
				   * our greeting or credentials, or an
				   * intermediate hop refusing the next: try the
				   * next route, skip this one for retry_after */
	SFY_CHAIN_UNSUITED = 2,   /* the route cannot carry this request (found
				   * at start, nothing sent): try the next route,
				   * but the route is not down */
};
/* An enum sfy_chain_verdict: non-zero when another route may be tried. */
int sfy_chain_may_fail_over(const struct sfy_chain_engine *c);

/* Where the chain is, for log lines: e.step for hop 1 ("greeting", as a
 * single engine says it), "hop N STEP" for a later hop ("hop 2 reply").
 * Formatted into buf on demand rather than kept in e.step, so that a copy
 * of the engine never points into another copy. */
const char *sfy_chain_step(const struct sfy_chain_engine *c, char *buf, size_t cap);
/* A buffer for it that holds a GSS-API status text too. */
#define SFY_CHAIN_STEP_MAX 400

/* The step of hop 1 once the TCP connect is made (a driver names its own
 * step, "connect to proxy", meanwhile). */
const char *sfy_chain_first_step(const struct sfy_chain_engine *c);

#endif
