/* Route choice and the session-shared route state (include/sfy_routes.h).
 * Pure: no I/O, no globals; the drivers pass the config, the state block
 * (the session object's) and the time. */
#include "sfy_routes.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- shared state ------------------------------------------------------ */

uint64_t sfy_routes_key(const struct sfy_chain *c)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (int i = 0; i < c->n; i++) {
		const struct sfy_chain_hop *hp = &c->hop[i];
		const unsigned char *parts[2] = {(const unsigned char *)hp->text,
						 (const unsigned char *)(hp->hop.user ? hp->hop.user : "")};
		for (int k = 0; k < 2; k++) {
			for (const unsigned char *s = parts[k]; *s; s++)
				h = (h ^ *s) * 1099511628211ull;
			h = (h ^ 0xff) * 1099511628211ull; /* separator */
		}
	}
	return h ? h : 1; /* 0 marks a free slot */
}

uint32_t sfy_routes_next_rr(struct sfy_route_state *st)
{
	return __atomic_fetch_add(&st->rr, 1, __ATOMIC_RELAXED);
}

static struct sfy_route_slot *find_slot(struct sfy_route_state *st, uint64_t key)
{
	for (int i = 0; i < SFY_ROUTE_SLOTS; i++)
		if (__atomic_load_n(&st->slot[i].key, __ATOMIC_ACQUIRE) == key)
			return &st->slot[i];
	return NULL;
}

void sfy_routes_mark_down(struct sfy_route_state *st, const struct sfy_chain *c, int err, int64_t now_ms,
			  int retry_after)
{
	if (!st || retry_after <= 0)
		return;
	uint64_t key = sfy_routes_key(c);
	struct sfy_route_slot *s = find_slot(st, key);
	/* A free slot, else one whose time has passed, else the one that
	 * frees soonest: never more than SFY_ROUTE_SLOTS routes down at once. */
	for (int i = 0; !s && i < SFY_ROUTE_SLOTS; i++) {
		uint64_t old = __atomic_load_n(&st->slot[i].key, __ATOMIC_ACQUIRE);
		if ((old == 0 || __atomic_load_n(&st->slot[i].until_ms, __ATOMIC_RELAXED) <= now_ms) &&
		    __atomic_compare_exchange_n(&st->slot[i].key, &old, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			s = &st->slot[i];
	}
	if (!s) {
		s = &st->slot[0];
		for (int i = 1; i < SFY_ROUTE_SLOTS; i++)
			if (__atomic_load_n(&st->slot[i].until_ms, __ATOMIC_RELAXED) <
			    __atomic_load_n(&s->until_ms, __ATOMIC_RELAXED))
				s = &st->slot[i];
		__atomic_store_n(&s->key, key, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&s->err, err, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, __atomic_add_fetch(&st->seq, 1, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	__atomic_store_n(&s->until_ms, now_ms + (int64_t)retry_after * 1000, __ATOMIC_RELEASE);
}

void sfy_routes_mark_up(struct sfy_route_state *st, const struct sfy_chain *c)
{
	struct sfy_route_slot *s = st ? find_slot(st, sfy_routes_key(c)) : NULL;
	if (s)
		__atomic_store_n(&s->until_ms, 0, __ATOMIC_RELEASE);
}

int sfy_routes_is_down(struct sfy_route_state *st, const struct sfy_chain *c, int64_t now_ms, int *err,
		       uint32_t *seq)
{
	struct sfy_route_slot *s = st ? find_slot(st, sfy_routes_key(c)) : NULL;
	if (!s || __atomic_load_n(&s->until_ms, __ATOMIC_ACQUIRE) <= now_ms)
		return 0;
	if (err)
		*err = __atomic_load_n(&s->err, __ATOMIC_RELAXED);
	if (seq)
		*seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	return 1;
}

/* ---- matching ---------------------------------------------------------- */

static int name_equal(const char *a, size_t alen, const char *name)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	return n == alen && strncasecmp(a, name, n) == 0;
}

static int pattern_matches(const struct sfy_pattern *p, const struct sfy_routes_dest *d)
{
	char suffix[256];
	switch (p->kind) {
	case SFY_PAT_PORT:
		return d->port == p->port;
	case SFY_PAT_CIDR:
		return d->sa && (d->sa->sa_family == AF_INET || d->sa->sa_family == AF_INET6) &&
		       sfy_cidr_match(&p->cidr, d->sa);
	case SFY_PAT_NAME:
		return d->name && (!p->port || p->port == d->port) && name_equal(p->text + p->name_off, p->name_len, d->name);
	case SFY_PAT_SUFFIX:
		if (!d->name || (p->port && p->port != d->port))
			return 0;
		memcpy(suffix, p->text + p->name_off, p->name_len);
		suffix[p->name_len] = '\0';
		return sfy_domain_match(suffix, d->name);
	}
	return 0;
}

/* Why d goes direct before any route rule, or NULL. */
static const char *direct_reason(const struct sfy_config *cfg, const struct sfy_routes_dest *d)
{
	if (d->name && sfy_name_is_direct(cfg, d->name))
		return "direct_domain";
	if (!d->sa)
		return NULL;
	if (sfy_addr_is_proxy(cfg, d->sa))
		return "a proxy's own address";
	if (sfy_addr_is_direct(cfg, d->sa))
		return "direct (loopback or a direct rule)";
	return NULL;
}

/* ---- choosing ---------------------------------------------------------- */

/* Candidates in order from start, the down ones left out. */
static void take(struct sfy_routes_pick *out, struct sfy_route_state *st, const struct sfy_chain *const *chains,
		 int n, int start, int first_route, int64_t now_ms)
{
	uint32_t latest = 0;
	int have_latest = 0;
	for (int k = 0; k < n; k++) {
		int i = (start + k) % n;
		int err = 0;
		uint32_t seq = 0;
		if (sfy_routes_is_down(st, chains[i], now_ms, &err, &seq)) {
			out->down++;
			if (!have_latest || (int32_t)(seq - latest) > 0)
				latest = seq, out->err = err, have_latest = 1;
			continue;
		}
		out->chain[out->n] = chains[i];
		out->route[out->n++] = first_route ? i + 1 : 0;
	}
	out->verdict = out->n ? SFY_ROUTES_PROXY : SFY_ROUTES_ALL_DOWN;
	if (!out->n && !out->err)
		out->err = ECONNREFUSED;
}

static void choose_rule(const struct sfy_config *cfg, struct sfy_route_state *st, int r, int pat, int64_t now_ms,
			struct sfy_routes_pick *out)
{
	const struct sfy_route_rule *rule = &cfg->rules[r];
	static const char *const names[] = {"via", "direct", "block"};
	out->rule = r + 1;
	out->pattern = pat;
	snprintf(out->reason, sizeof out->reason, "route %d (%.100s %s)", r + 1, cfg->patterns[pat].text,
		 names[rule->action]);
	if (rule->action == SFY_RULE_DIRECT) {
		out->verdict = SFY_ROUTES_DIRECT;
	} else if (rule->action == SFY_RULE_BLOCK) {
		out->verdict = SFY_ROUTES_BLOCK;
	} else {
		const struct sfy_chain *c = &cfg->via[rule->via];
		take(out, st, &c, 1, 0, 0, now_ms);
	}
}

static void choose_proxy(const struct sfy_config *cfg, struct sfy_route_state *st, int64_t now_ms, uint32_t rnd,
			 struct sfy_routes_pick *out)
{
	const struct sfy_chain *chains[SFY_MAX_ROUTES];
	int n = cfg->n_routes > 0 ? cfg->n_routes : 0, start = 0;
	static const char *const names[] = {"failover", "round robin", "random"};
	for (int i = 0; i < n; i++)
		chains[i] = &cfg->routes[i];
	if (n > 1 && cfg->pick == SFY_PICK_ROUND_ROBIN && st)
		start = (int)(sfy_routes_next_rr(st) % (uint32_t)n);
	else if (n > 1 && cfg->pick == SFY_PICK_RANDOM)
		start = (int)(rnd % (uint32_t)n);
	take(out, st, chains, n, start, 1, now_ms);
	int len = snprintf(out->reason, sizeof out->reason, n > 1 ? "%s" : "proxy", names[cfg->pick % 3]);
	if (out->n && n > 1)
		len += snprintf(out->reason + len, sizeof out->reason - (size_t)len, ": proxy %d of %d", out->route[0], n);
	if (out->down)
		snprintf(out->reason + len, sizeof out->reason - (size_t)len, ", %d down", out->down);
}

void sfy_routes_choose(const struct sfy_config *cfg, struct sfy_route_state *st, const struct sfy_routes_dest *d,
		       int64_t now_ms, uint32_t rnd, struct sfy_routes_pick *out)
{
	memset(out, 0, sizeof *out);
	out->pattern = -1;
	const char *why = direct_reason(cfg, d);
	if (why) {
		out->verdict = SFY_ROUTES_DIRECT;
		snprintf(out->reason, sizeof out->reason, "%s", why);
		return;
	}
	for (int r = 0; r < cfg->n_rules; r++) {
		const struct sfy_route_rule *rule = &cfg->rules[r];
		for (int k = 0; k < rule->n; k++) {
			if (pattern_matches(&cfg->patterns[rule->first + k], d)) {
				choose_rule(cfg, st, r, rule->first + k, now_ms, out);
				return;
			}
		}
	}
	choose_proxy(cfg, st, now_ms, rnd, out);
}
