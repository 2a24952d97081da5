/* Unit tests for the chain engine (shim/chain.c): a 3-hop chain with the
 * exact bytes on the wire, a one-hop chain byte-identical to the single
 * engine, what a route cannot carry refused at start, the failover verdict
 * for every kind of failure, the hop named in the step, and BIND's second
 * reply through a chain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine_wire.h"
#include "sfy_chain.h"

static struct s5_addr name_addr(const char *name, uint16_t port)
{
	struct s5_addr a;
	memset(&a, 0, sizeof a);
	assert_int_equal(s5_addr_from_name(&a, name, port), 0);
	return a;
}

static const struct s5_addr V4 = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};

/* A chain of n hops of these types; hop i > 0 listens on "hopN.test". */
static void mk_chain(struct sfy_chain *ch, int n, const enum sfy_hop_type *types)
{
	memset(ch, 0, sizeof *ch);
	ch->n = n;
	for (int i = 0; i < n; i++) {
		ch->hop[i].hop.type = types[i];
		if (i == 0) {
			ch->hop[i].addr = (struct s5_addr){.atyp = S5_ATYP_IPV4, .port = 1080, .u.ipv4 = {198, 51, 100, 1}};
		} else {
			char name[32];
			snprintf(name, sizeof name, "hop%d.test", i + 1);
			ch->hop[i].addr = name_addr(name, (uint16_t)(1080 + i));
		}
	}
}

/* ---- driving the chain like a driver ------------------------------------ */

static enum sfy_want cwant(struct sfy_chain_engine *c)
{
	const uint8_t *out;
	size_t n, max;
	return sfy_chain_want(c, &out, &n, &max);
}

static void cexpect_write(struct sfy_chain_engine *c, const void *bytes, size_t len)
{
	const uint8_t *out;
	size_t n, max;
	assert_int_equal(sfy_chain_want(c, &out, &n, &max), SFY_WANT_WRITE);
	if (n != len || memcmp(out, bytes, len) != 0)
		fail_msg("hop %d: wrote %zu bytes, expected %zu", c->at + 1, n, len);
	sfy_chain_sent(c, n);
}

static size_t cfeed(struct sfy_chain_engine *c, const void *bytes, size_t len)
{
	const uint8_t *in = bytes;
	size_t used = 0;
	while (used < len) {
		const uint8_t *out;
		size_t n, max;
		if (sfy_chain_want(c, &out, &n, &max) != SFY_WANT_READ)
			break;
		assert_true(max > 0 && max <= SFY_ENG_IN_MAX);
		size_t give = len - used < max ? len - used : max;
		size_t took = sfy_chain_feed(c, in + used, give);
		int want_is_failed = sfy_chain_want(c, &out, &n, &max) == SFY_WANT_FAILED;
		/* Drivers drop what the engine leaves of a read within read_max. */
		assert_true(took == give || want_is_failed);
		used += took;
		if (took < give)
			break;
	}
	return used;
}

/* Run to the end with the proxies' bytes all there at once: the written
 * bytes go to out (cap), returns how many of srv were taken. */
static size_t run_stream(struct sfy_chain_engine *c, const uint8_t *srv, size_t srv_len, uint8_t *out, size_t cap,
			 size_t *out_len)
{
	size_t taken = 0;
	*out_len = 0;
	for (;;) {
		const uint8_t *o;
		size_t n, max;
		switch (sfy_chain_want(c, &o, &n, &max)) {
		case SFY_WANT_WRITE:
			assert_true(*out_len + n <= cap);
			memcpy(out + *out_len, o, n);
			*out_len += n;
			sfy_chain_sent(c, n);
			break;
		case SFY_WANT_READ:
			assert_true(max > 0 && max <= SFY_ENG_IN_MAX);
			if (taken == srv_len) {
				sfy_chain_eof(c);
				break;
			}
			if (max > srv_len - taken)
				max = srv_len - taken;
			size_t took = sfy_chain_feed(c, srv + taken, max);
			if (took != max && sfy_chain_want(c, &o, &n, &max) != SFY_WANT_FAILED)
				fail_msg("hop %d left bytes of a read within read_max", c->at + 1);
			taken += took;
			break;
		default:
			return taken;
		}
	}
}

/* ---- the good path -------------------------------------------------------- */

#define HOP2_CONNECT 5, 1, 0, 3, 9, 'h', 'o', 'p', '2', '.', 't', 'e', 's', 't', 0x04, 0x39
#define S5_OK 5, 0, 0, 1, 0, 0, 0, 0, 0, 0
#define HOP3_S4A 4, 1, 0x04, 0x3a, 0, 0, 0, 1, 0, 'h', 'o', 'p', '3', '.', 't', 'e', 's', 't', 0
static const char HOP3_HTTP_REQ[] = "CONNECT files.test:80 HTTP/1.1\r\nHost: files.test:80\r\n"
				    "Proxy-Authorization: Basic dTpw\r\n\r\n";
static const char HTTP_OK[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static void three_hops(struct sfy_chain *ch)
{
	static const enum sfy_hop_type t[] = {SFY_HOP_SOCKS5, SFY_HOP_SOCKS4A, SFY_HOP_HTTP};
	mk_chain(ch, 3, t);
	ch->hop[2].hop.user = "u";
	ch->hop[2].hop.pass = "p";
}

/* socks5 -> socks4a -> http, step by step, exact bytes. */
static void chain_socks5_socks4a_http(void **state)
{
	(void)state;
	struct sfy_chain ch;
	three_hops(&ch);
	struct s5_addr dst = name_addr("files.test", 80);
	struct sfy_chain_engine c;
	char step[64];
	sfy_chain_start(&c, &ch, S5_CMD_CONNECT, &dst);
	cexpect_write(&c, B(5, 1, 0));
	assert_string_equal(sfy_chain_step(&c, step, sizeof step), "greeting");
	cfeed(&c, B(5, 0));
	cexpect_write(&c, B(HOP2_CONNECT));
	cfeed(&c, B(S5_OK)); /* hop 1 done: hop 2 speaks next */
	cexpect_write(&c, B(HOP3_S4A));
	assert_int_equal(c.at, 1);
	assert_string_equal(sfy_chain_step(&c, step, sizeof step), "hop 2 reply");
	cfeed(&c, B(0, 90, 0, 0, 0, 0, 0, 0));
	cexpect_write(&c, HOP3_HTTP_REQ, sizeof HOP3_HTTP_REQ - 1);
	assert_int_equal(c.at, 2);
	char in[80];
	size_t hl = strlen(HTTP_OK);
	memcpy(in, HTTP_OK, hl);
	memcpy(in + hl, "EARLY", 5);
	assert_int_equal(cfeed(&c, in, hl + 5), hl); /* the tunnel's bytes stay */
	assert_int_equal(cwant(&c), SFY_WANT_DONE);
	assert_int_equal(c.e.rep, 200);
	assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_FINAL);
}

/* The same with every proxy's answer already in the socket: read_max keeps
 * each hop to its own reply. */
static void chain_all_at_once(void **state)
{
	(void)state;
	struct sfy_chain ch;
	three_hops(&ch);
	struct s5_addr dst = name_addr("files.test", 80);
	uint8_t srv[256], out[512], want_out[512];
	size_t sl = 0, wl = 0, ol;
#define PUT(buf, len, ...) do { const uint8_t x_[] = {__VA_ARGS__}; memcpy(buf + len, x_, sizeof x_); len += sizeof x_; } while (0)
	PUT(srv, sl, 5, 0, S5_OK, 0, 90, 0, 0, 0, 0, 0, 0);
	memcpy(srv + sl, HTTP_OK, strlen(HTTP_OK));
	sl += strlen(HTTP_OK);
	memcpy(srv + sl, "EARLY", 5);
	PUT(want_out, wl, 5, 1, 0, HOP2_CONNECT, HOP3_S4A);
	memcpy(want_out + wl, HOP3_HTTP_REQ, sizeof HOP3_HTTP_REQ - 1);
	wl += sizeof HOP3_HTTP_REQ - 1;
#undef PUT
	struct sfy_chain_engine c;
	sfy_chain_start(&c, &ch, S5_CMD_CONNECT, &dst);
	assert_int_equal(run_stream(&c, srv, sl + 5, out, sizeof out, &ol), sl);
	assert_int_equal(cwant(&c), SFY_WANT_DONE);
	assert_int_equal(ol, wl);
	assert_memory_equal(out, want_out, wl);
}

/* A one-hop chain writes and reads exactly what the single engine does,
 * pipelined or not. */
static void one_hop_is_the_engine(void **state)
{
	(void)state;
	static const enum sfy_hop_type t[] = {SFY_HOP_SOCKS5};
	for (int pipe = 0; pipe < 2; pipe++) {
		struct sfy_chain ch;
		mk_chain(&ch, 1, t);
		ch.hop[0].hop = (struct sfy_hop){.user = "u", .pass = "pw", .pipeline = pipe};
		struct sfy_chain_engine c;
		struct sfy_engine e;
		sfy_chain_start(&c, &ch, S5_CMD_CONNECT, &V4);
		sfy_engine_start(&e, &ch.hop[0].hop, S5_CMD_CONNECT, &V4);
		const uint8_t srv[] = {5, 2, 1, 0, S5_OK, 'x'};
		uint8_t o1[256], o2[256];
		size_t l1, l2;
		size_t t1 = run_stream(&c, srv, sizeof srv, o1, sizeof o1, &l1);
		/* The single engine, by the same loop, through a chain view of it. */
		struct sfy_chain one = ch;
		struct sfy_chain_engine c2 = {.chain = &one, .e = e};
		size_t t2 = run_stream(&c2, srv, sizeof srv, o2, sizeof o2, &l2);
		assert_int_equal(t1, t2);
		assert_int_equal(t1, sizeof srv - 1);
		assert_int_equal(l1, l2);
		assert_memory_equal(o1, o2, l1);
		assert_int_equal(cwant(&c), SFY_WANT_DONE);
	}
}

/* ---- refused at start ----------------------------------------------------- */

static void unsuited_routes(void **state)
{
	(void)state;
	struct s5_addr name = name_addr("files.test", 80);
	const struct {
		int n;
		enum sfy_hop_type t[3];
		uint8_t cmd;
		const struct s5_addr *dst;
		int err, at;
	} cases[] = {
		/* the last hop is socks4 and the destination a name */
		{2, {SFY_HOP_SOCKS5, SFY_HOP_SOCKS4}, S5_CMD_CONNECT, &name, EOPNOTSUPP, 1},
		/* hop 1 is socks4 and hop 2 is known by name: never resolved */
		{2, {SFY_HOP_SOCKS4, SFY_HOP_SOCKS5}, S5_CMD_CONNECT, &V4, EOPNOTSUPP, 0},
		{2, {SFY_HOP_SOCKS5, SFY_HOP_HTTP}, S5_CMD_BIND, &V4, EOPNOTSUPP, 1},
		{1, {SFY_HOP_SOCKS4}, S5_CMD_BIND, &V4, EOPNOTSUPP, 0},
		{2, {SFY_HOP_SOCKS5, SFY_HOP_SOCKS5}, S5_CMD_UDP_ASSOCIATE, &V4, EOPNOTSUPP, 1},
		{1, {SFY_HOP_HTTP}, S5_CMD_UDP_ASSOCIATE, &V4, EOPNOTSUPP, 0},
		{0, {SFY_HOP_SOCKS5}, S5_CMD_CONNECT, &V4, EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sfy_chain ch;
		mk_chain(&ch, cases[i].n, cases[i].t);
		struct sfy_chain_engine c;
		sfy_chain_start(&c, &ch, cases[i].cmd, cases[i].dst);
		if (cwant(&c) != SFY_WANT_FAILED || c.e.err != cases[i].err || sfy_chain_failed_at(&c) != cases[i].at)
			fail_msg("case %zu: want %d err %d at %d", i, cwant(&c), c.e.err, sfy_chain_failed_at(&c));
		assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_UNSUITED);
	}
	/* socks4a sends hop 2's name; BIND with a socks5 last hop is fine. */
	static const enum sfy_hop_type ok[] = {SFY_HOP_SOCKS4A, SFY_HOP_SOCKS5};
	struct sfy_chain ch;
	mk_chain(&ch, 2, ok);
	struct sfy_chain_engine c;
	sfy_chain_start(&c, &ch, S5_CMD_BIND, &V4);
	assert_int_equal(cwant(&c), SFY_WANT_WRITE);
	assert_int_equal(c.at, 0);
}

/* ---- failover verdicts ---------------------------------------------------- */

struct verdict_case {
	const char *what;
	int n;
	enum sfy_hop_type t[3];
	int fail_hop;           /* 0-based hop that misbehaves */
	const char *answer;     /* what it says after its request (bytes) */
	size_t answer_len;
	int greeting;           /* answer the greeting instead (SOCKS5) */
	int eof, timeout;
	int err, verdict;
};

#define A(...) (const char *)(const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define T(s) s, sizeof s - 1
#define S5S5 {SFY_HOP_SOCKS5, SFY_HOP_SOCKS5}

static const struct verdict_case verdicts[] = {
	{"hop 1 refuses our methods", 2, S5S5, 0, A(5, 0xff), 1, 0, 0, EACCES, SFY_CHAIN_ROUTE_DOWN},
	{"hop 2 refuses our methods", 2, S5S5, 1, A(5, 0xff), 1, 0, 0, EACCES, SFY_CHAIN_ROUTE_DOWN},
	{"hop 1 general failure", 2, S5S5, 0, A(5, 1, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNABORTED, SFY_CHAIN_ROUTE_DOWN},
	{"hop 1 refused hop 2", 2, S5S5, 0, A(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNREFUSED, SFY_CHAIN_ROUTE_DOWN},
	{"last hop: refused", 2, S5S5, 1, A(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNREFUSED, SFY_CHAIN_FINAL},
	{"last hop: not allowed", 2, S5S5, 1, A(5, 2, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, EACCES, SFY_CHAIN_FINAL},
	{"last hop: host unreachable", 2, S5S5, 1, A(5, 4, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, EHOSTUNREACH, SFY_CHAIN_FINAL},
	{"last hop: atyp unsupported", 2, S5S5, 1, A(5, 8, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, EAFNOSUPPORT, SFY_CHAIN_FINAL},
	{"last hop: general failure", 2, S5S5, 1, A(5, 1, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNABORTED, SFY_CHAIN_ROUTE_DOWN},
	{"last hop: unassigned", 2, S5S5, 1, A(5, 9, 0, 1, 0, 0, 0, 0, 0, 0), 0, 0, 0, EPROTO, SFY_CHAIN_ROUTE_DOWN},
	{"hop 2 garbage", 2, S5S5, 1, A(0x48, 0x54), 1, 0, 0, EPROTO, SFY_CHAIN_ROUTE_DOWN},
	{"hop 2 closes", 2, S5S5, 1, NULL, 0, 1, 1, 0, ECONNRESET, SFY_CHAIN_ROUTE_DOWN},
	{"hop 2 closes mid-reply", 2, S5S5, 1, A(5, 0, 0), 0, 1, 0, EPROTO, SFY_CHAIN_ROUTE_DOWN},
	{"hop 2 silent", 2, S5S5, 1, NULL, 0, 1, 0, 1, ETIMEDOUT, SFY_CHAIN_ROUTE_DOWN},
	{"last hop silent after request", 2, S5S5, 1, NULL, 0, 0, 0, 1, ETIMEDOUT, SFY_CHAIN_ROUTE_DOWN},
	{"last socks4: 91", 2, {SFY_HOP_SOCKS5, SFY_HOP_SOCKS4A}, 1, A(0, 91, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNREFUSED, SFY_CHAIN_FINAL},
	{"last socks4: 92 identd", 2, {SFY_HOP_SOCKS5, SFY_HOP_SOCKS4A}, 1, A(0, 92, 0, 0, 0, 0, 0, 0), 0, 0, 0, EACCES, SFY_CHAIN_ROUTE_DOWN},
	{"middle socks4: 91", 3, {SFY_HOP_SOCKS5, SFY_HOP_SOCKS4A, SFY_HOP_SOCKS5}, 1, A(0, 91, 0, 0, 0, 0, 0, 0), 0, 0, 0, ECONNREFUSED, SFY_CHAIN_ROUTE_DOWN},
	{"last http: 503", 2, {SFY_HOP_SOCKS5, SFY_HOP_HTTP}, 1, T("HTTP/1.1 503 Service Unavailable\r\n\r\n"), 0, 0, 0, ECONNREFUSED, SFY_CHAIN_FINAL},
	{"last http: 403", 2, {SFY_HOP_SOCKS5, SFY_HOP_HTTP}, 1, T("HTTP/1.1 403 Forbidden\r\n\r\n"), 0, 0, 0, EACCES, SFY_CHAIN_FINAL},
	{"last http: 407", 2, {SFY_HOP_SOCKS5, SFY_HOP_HTTP}, 1, T("HTTP/1.1 407 Proxy Auth\r\n\r\n"), 0, 0, 0, EACCES, SFY_CHAIN_ROUTE_DOWN},
	{"last http: garbage", 2, {SFY_HOP_SOCKS5, SFY_HOP_HTTP}, 1, T("\x05\x00"), 0, 0, 0, EPROTO, SFY_CHAIN_ROUTE_DOWN},
	{"middle http: 502", 3, {SFY_HOP_HTTP, SFY_HOP_HTTP, SFY_HOP_SOCKS5}, 0, T("HTTP/1.1 502 Bad Gateway\r\n\r\n"), 0, 0, 0, EHOSTUNREACH, SFY_CHAIN_ROUTE_DOWN},
	{"middle http: 502 at hop 2", 3, {SFY_HOP_HTTP, SFY_HOP_HTTP, SFY_HOP_SOCKS5}, 1, T("HTTP/1.1 502 Bad Gateway\r\n\r\n"), 0, 0, 0, EHOSTUNREACH, SFY_CHAIN_ROUTE_DOWN},
};

/* The well-behaved answer of hop i to everything it is sent. */
static void answer_ok(struct sfy_chain_engine *c)
{
	enum sfy_hop_type t = c->chain->hop[c->at].hop.type;
	if (t == SFY_HOP_SOCKS5) {
		assert_int_equal(cfeed(c, B(5, 0)), 2);
		skip_writes(&c->e);
		assert_int_equal(cfeed(c, B(S5_OK)), 10);
	} else if (t == SFY_HOP_HTTP) {
		assert_int_equal(cfeed(c, HTTP_OK, strlen(HTTP_OK)), strlen(HTTP_OK));
	} else {
		assert_int_equal(cfeed(c, B(0, 90, 0, 0, 0, 0, 0, 0)), 8);
	}
}

static void verdict_matrix(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
		const struct verdict_case *v = &verdicts[i];
		struct sfy_chain ch;
		mk_chain(&ch, v->n, v->t);
		struct sfy_chain_engine c;
		sfy_chain_start(&c, &ch, S5_CMD_CONNECT, &V4);
		while (c.at < v->fail_hop) {
			skip_writes(&c.e);
			answer_ok(&c);
			assert_int_equal(cwant(&c), SFY_WANT_WRITE); /* the next hop's turn */
		}
		skip_writes(&c.e);
		assert_int_equal(c.at, v->fail_hop);
		if (!v->greeting && v->t[v->fail_hop] == SFY_HOP_SOCKS5) {
			cfeed(&c, B(5, 0));
			skip_writes(&c.e);
		}
		if (v->answer)
			cfeed(&c, v->answer, v->answer_len);
		if (v->eof && cwant(&c) == SFY_WANT_READ)
			sfy_chain_eof(&c);
		if (v->timeout)
			sfy_chain_fail(&c, ETIMEDOUT, NULL);
		if (cwant(&c) != SFY_WANT_FAILED || c.e.err != v->err || sfy_chain_failed_at(&c) != v->fail_hop ||
		    sfy_chain_may_fail_over(&c) != v->verdict)
			fail_msg("%s: want %d err %d at %d verdict %d", v->what, cwant(&c), c.e.err, sfy_chain_failed_at(&c),
				 sfy_chain_may_fail_over(&c));
		char step[64];
		sfy_chain_step(&c, step, sizeof step);
		char prefix[16];
		snprintf(prefix, sizeof prefix, "hop %d ", v->fail_hop + 1);
		if (v->fail_hop > 0 && strncmp(step, prefix, strlen(prefix)) != 0)
			fail_msg("%s: step \"%s\"", v->what, step);
		if (v->fail_hop == 0 && strncmp(step, "hop", 3) == 0)
			fail_msg("%s: step \"%s\" for hop 1", v->what, step);
	}
}

/* The first hop cannot be reached: the driver says so. */
static void connect_failure(void **state)
{
	(void)state;
	static const enum sfy_hop_type t[] = {SFY_HOP_SOCKS5, SFY_HOP_HTTP};
	struct sfy_chain ch;
	mk_chain(&ch, 2, t);
	struct sfy_chain_engine c;
	sfy_chain_start(&c, &ch, S5_CMD_CONNECT, &V4);
	assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_FINAL); /* not failed */
	sfy_chain_fail(&c, ECONNREFUSED, "connect to proxy");
	assert_int_equal(cwant(&c), SFY_WANT_FAILED);
	assert_int_equal(sfy_chain_failed_at(&c), 0);
	assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_ROUTE_DOWN);
	char step[64];
	assert_string_equal(sfy_chain_step(&c, step, sizeof step), "connect to proxy");
}

/* ---- BIND through a chain ------------------------------------------------ */

static void bind_through_two_hops(void **state)
{
	(void)state;
	static const enum sfy_hop_type t[] = {SFY_HOP_HTTP, SFY_HOP_SOCKS5};
	struct sfy_chain ch;
	mk_chain(&ch, 2, t);
	struct sfy_chain_engine c;
	sfy_chain_start(&c, &ch, S5_CMD_BIND, &V4);
	const char *req = "CONNECT hop2.test:1081 HTTP/1.1\r\nHost: hop2.test:1081\r\n\r\n";
	cexpect_write(&c, req, strlen(req));
	cfeed(&c, HTTP_OK, strlen(HTTP_OK));
	cexpect_write(&c, B(5, 1, 0));
	cfeed(&c, B(5, 0));
	cexpect_write(&c, B(5, 2, 0, 1, 192, 0, 2, 7, 0, 80));
	cfeed(&c, B(5, 0, 0, 1, 203, 0, 113, 2, 0x30, 0x39));
	assert_int_equal(cwant(&c), SFY_WANT_DONE);
	assert_int_equal(c.e.reply.bnd.port, 12345);
	/* A copy of the engine carries on alone (as a driver's job would). */
	struct sfy_chain_engine copy = c;
	memset(&c, 0xa5, sizeof c);
	sfy_chain_next_reply(&copy);
	assert_int_equal(cwant(&copy), SFY_WANT_READ);
	char step[64];
	assert_string_equal(sfy_chain_step(&copy, step, sizeof step), "hop 2 reply 2");
	cfeed(&copy, B(5, 5, 0, 1, 0, 0, 0, 0, 0, 0));
	assert_int_equal(cwant(&copy), SFY_WANT_FAILED);
	assert_int_equal(copy.e.err, ECONNREFUSED);
	assert_int_equal(sfy_chain_failed_at(&copy), 1);
	assert_int_equal(sfy_chain_may_fail_over(&copy), SFY_CHAIN_FINAL);

	/* The second reply read later, by a chain engine of its own. */
	sfy_chain_start_reply(&c, &ch, S5_CMD_BIND);
	assert_int_equal(cwant(&c), SFY_WANT_READ);
	cfeed(&c, B(5, 0, 0, 1, 198, 51, 100, 9, 0, 21));
	assert_int_equal(cwant(&c), SFY_WANT_DONE);
	assert_int_equal(c.e.reply.bnd.port, 21);
	sfy_chain_eof(&c); /* a late EOF changes nothing for a finished reply... */
	assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_FINAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chain_socks5_socks4a_http),
		cmocka_unit_test(chain_all_at_once),
		cmocka_unit_test(one_hop_is_the_engine),
		cmocka_unit_test(unsuited_routes),
		cmocka_unit_test(verdict_matrix),
		cmocka_unit_test(connect_failure),
		cmocka_unit_test(bind_through_two_hops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
