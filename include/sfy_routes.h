/* Route choice (issue 14, shim/routes.c): for one destination, DIRECT,
 * BLOCK, or the chains to try in order, with the reason for log lines and
 * --check.  Pure: the config, the shared state and the time are passed in.
 *
 * The order of the checks: the direct keys (direct_loopback, direct,
 * direct_domain) and the proxies' own addresses go direct; then the route
 * rules in file order, first match wins; then the proxy lines, chosen by
 * `pick`.  Name patterns match the destination's name (under remote DNS
 * the fake pool gives it), address patterns its address, ":PORT" either. */
#ifndef SFY_ROUTES_H
#define SFY_ROUTES_H

#include <stdint.h>
#include <sys/socket.h>

#include "sfy_config.h"

#define SFY_ROUTE_SLOTS 16 /* routes remembered as down at once */

/* The state every process of a session shares (the session object's, see
 * sfy_pool_route_state; a process without a session keeps its own): the
 * round-robin position and which routes are down until when.  Only atomic
 * operations touch it; a race costs at most one extra try of a route. */
struct sfy_route_slot {
	uint64_t key;     /* the route (sfy_routes_key), 0: free */
	int64_t until_ms; /* skipped until this CLOCK_MONOTONIC time (ms) */
	int32_t err;      /* errno of its last failure */
	uint32_t seq;     /* when it failed, in failures counted */
};

struct sfy_route_state {
	uint32_t rr;      /* round-robin turns taken */
	uint32_t seq;     /* failures counted */
	struct sfy_route_slot slot[SFY_ROUTE_SLOTS];
};

/* A route's identity across the processes of a session (whose configs
 * may differ): a hash of its hops' types, addresses and user names. */
uint64_t sfy_routes_key(const struct sfy_chain *c);
/* The next round-robin turn (shared: successive commands rotate). */
uint32_t sfy_routes_next_rr(struct sfy_route_state *st);
/* Route c failed with err at now_ms: skipped for retry_after seconds (0:
 * not at all) by every process of the session. */
void sfy_routes_mark_down(struct sfy_route_state *st, const struct sfy_chain *c, int err, int64_t now_ms,
			  int retry_after);
/* c worked: forget its failure. */
void sfy_routes_mark_up(struct sfy_route_state *st, const struct sfy_chain *c);
/* 1 while c is skipped (with *err, *seq of its failure when not NULL), else 0. */
int sfy_routes_is_down(struct sfy_route_state *st, const struct sfy_chain *c, int64_t now_ms, int *err,
		       uint32_t *seq);

enum sfy_routes_verdict {
	SFY_ROUTES_PROXY,    /* try chain[0..n) in order, failing over on the way */
	SFY_ROUTES_DIRECT,
	SFY_ROUTES_BLOCK,    /* a `route = ... block` rule: fail with EACCES */
	SFY_ROUTES_ALL_DOWN, /* every candidate is down: fail at once with err */
};

struct sfy_routes_dest {
	const char *name;          /* its name (fake pool, --check HOST), or NULL */
	const struct sockaddr *sa; /* its address (port included), or NULL */
	uint16_t port;             /* host order */
};

struct sfy_routes_pick {
	enum sfy_routes_verdict verdict;
	int n;
	const struct sfy_chain *chain[SFY_MAX_ROUTES];
	int route[SFY_MAX_ROUTES]; /* chain[i]'s proxy line, 1-based; 0: the matching rule's via */
	int rule;                  /* the route rule that matched, 1-based; 0: none */
	int pattern;               /* its pattern that matched (index into cfg->patterns), -1: none */
	int down;                  /* candidates skipped as down */
	int err;                   /* SFY_ROUTES_ALL_DOWN: errno of the latest failure */
	char reason[160];          /* "route 3 (.corp.example.com)", "round robin", ... */
};

/* Choose for d.  st may be NULL (nothing down, no rotation); rnd: a
 * random number for pick = random. */
void sfy_routes_choose(const struct sfy_config *cfg, struct sfy_route_state *st, const struct sfy_routes_dest *d,
		       int64_t now_ms, uint32_t rnd, struct sfy_routes_pick *out);

#endif
