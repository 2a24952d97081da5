/* Unit tests for the GSSAPI method (shim/engine_gss.c) and the RFC 1961
 * framing (shim/codec_gss.c) where no KDC is needed: what the greeting
 * offers, the frame sizes, a proxy that answers our first token with
 * garbage or an abort, and the error when there is no ticket at all
 * (tests/bats/gssapi.bats runs the exchange against a real KDC). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfy_chain.h"
#include "sfy_engine.h"
#include "sfy_gss.h"

static const struct sfy_hop GSS = {.gssapi = 1, .gss_service = "rcmd@proxy.test", .gss_level = SFY_GSS_INTEGRITY};
static const struct sfy_hop GSS_AUTH = {.user = "u", .pass = "p", .pipeline = 1, .gssapi = 1,
					.gss_service = "rcmd@proxy.test"};

static void start(struct sfy_engine *e, const struct sfy_hop *hop)
{
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};
	sfy_engine_start(e, hop, S5_CMD_CONNECT, &dst);
}

/* Start e for hop, send the greeting, and let the proxy choose method:
 * what the engine wants then. */
static enum sfy_want proxy_picks(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t method)
{
	const uint8_t *out;
	size_t n, max;
	start(e, hop);
	assert_int_equal(sfy_engine_want(e, &out, &n, &max), SFY_WANT_WRITE);
	sfy_engine_sent(e, n);
	sfy_engine_feed(e, (const uint8_t[]){5, method}, 2);
	return sfy_engine_want(e, &out, &n, &max);
}

static void greeting_offers_gssapi_first(void **state)
{
	(void)state;
	struct sfy_engine e;
	const uint8_t *out;
	size_t n, max;
	start(&e, &GSS);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_WRITE);
	static const uint8_t want[] = {5, 2, S5_METHOD_GSSAPI, S5_METHOD_NONE};
	assert_int_equal(n, sizeof want);
	assert_memory_equal(out, want, n);
	/* Pipelining cannot hold: the request waits for the context. */
	start(&e, &GSS_AUTH);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_WRITE);
	static const uint8_t want2[] = {5, 3, S5_METHOD_GSSAPI, S5_METHOD_USERPASS, S5_METHOD_NONE};
	assert_int_equal(n, sizeof want2);
	assert_memory_equal(out, want2, n);
	sfy_engine_release(&e);
	/* gssapi = required: nothing else, credentials or not. */
	struct sfy_hop only = GSS_AUTH;
	only.gssapi = 2;
	start(&e, &only);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_WRITE);
	static const uint8_t want3[] = {5, 1, S5_METHOD_GSSAPI};
	assert_int_equal(n, sizeof want3);
	assert_memory_equal(out, want3, n);
	sfy_engine_sent(&e, n);
	/* ...and a proxy that picks "none" all the same is refused. */
	sfy_engine_feed(&e, (const uint8_t[]){5, S5_METHOD_NONE}, 2);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_FAILED);
	assert_int_equal(e.err, EPROTO);
}

static void frame_sizes(void **state)
{
	(void)state;
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1}, 1), 0);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 0xff}, 2), 2);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 1, 0}, 3), 0);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 1, 0, 7}, 4), 11);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 3, 0xff, 0xff}, 4), 4 + 65535);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){2, 1, 0, 7}, 4), S5_EVERSION);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){5}, 1), S5_EVERSION);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 4, 0, 7}, 4), S5_EINVAL);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 0, 0, 7}, 2), S5_EINVAL);
	assert_int_equal(s5_gss_frame_size((const uint8_t[]){1, 2, 0, 0}, 4), S5_EINVAL); /* LEN 0 */
	uint8_t h[4];
	assert_int_equal(s5_gss_header(h, S5_GSS_DATA, 0x1234), 4);
	assert_memory_equal(h, ((const uint8_t[]){1, 3, 0x12, 0x34}), 4);
	assert_int_equal(s5_gss_header(h, S5_GSS_DATA, 0), S5_EINVAL);
	assert_int_equal(s5_gss_header(h, S5_GSS_DATA, 65536), S5_EINVAL);
}

/* The proxy picks GSSAPI; with no credentials cache at all, the first
 * gss_init_sec_context fails: EACCES, and the step says to run kinit. */
static void no_ticket_is_eacces(void **state)
{
	(void)state;
	char why[200];
	if (sfy_gss_load(why, sizeof why) < 0)
		skip();
	setenv("KRB5CCNAME", "FILE:/nonexistent/socksify-unit-cc", 1);
	setenv("KRB5_CONFIG", "/dev/null", 1);
	struct sfy_engine e;
	assert_int_equal(proxy_picks(&e, &GSS, S5_METHOD_GSSAPI), SFY_WANT_FAILED);
	assert_int_equal(e.err, EACCES);
	assert_non_null(strstr(e.step, "kinit"));
	assert_non_null(strstr(e.step, "rcmd@proxy.test"));
	sfy_engine_release(&e);
	assert_non_null(e.step); /* no pointer into freed state */
	assert_string_equal(e.step, "gssapi");
}

/* A proxy that picks GSSAPI when we did not offer it. */
static void unoffered_gssapi(void **state)
{
	(void)state;
	static const struct sfy_hop plain = {.user = "", .pass = ""};
	struct sfy_engine e;
	assert_int_equal(proxy_picks(&e, &plain, S5_METHOD_GSSAPI), SFY_WANT_FAILED);
	assert_int_equal(e.err, EPROTO);
}

/* A reply-2 engine given a context reads a frame: 2 bytes first, never
 * 10 (an abort is 2 bytes long). */
static void reply_engine_reads_frames(void **state)
{
	(void)state;
	struct sfy_engine e;
	const uint8_t *out;
	size_t n, max;
	sfy_engine_start_reply(&e, S5_CMD_BIND);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_READ);
	assert_int_equal(max, 10);
	/* A context object is opaque; the engine only needs a non-NULL one
	 * to read frames, and unwraps nothing before a whole frame. */
	struct sfy_gss *fake = (struct sfy_gss *)&e; /* never dereferenced below */
	assert_int_equal(sfy_engine_use_gss(&e, fake), 0);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_READ);
	assert_int_equal(max, 2);
	assert_int_equal(sfy_engine_feed(&e, (const uint8_t[]){1, 3, 0x01}, 3), 3);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_READ);
	assert_int_equal(max, 1); /* the length's second byte */
	sfy_engine_feed(&e, (const uint8_t[]){0x00}, 1);
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_READ);
	assert_int_equal(max, 256); /* the token: never more than SFY_ENG_IN_MAX at a time */
	assert_true(max <= SFY_ENG_IN_MAX);
	assert_ptr_equal(sfy_engine_take_gss(&e), fake);
}

/* Bad framing in a protected reply fails without unwrapping. */
static void reply_engine_bad_frames(void **state)
{
	(void)state;
	const uint8_t *bad[] = {(const uint8_t[]){2, 3}, (const uint8_t[]){1, 9}, (const uint8_t[]){1, 3, 0, 0}};
	static const size_t len[] = {2, 2, 4};
	for (size_t i = 0; i < 3; i++) {
		struct sfy_engine e;
		const uint8_t *out;
		size_t n, max;
		sfy_engine_start_reply(&e, S5_CMD_BIND);
		struct sfy_gss *fake = (struct sfy_gss *)&e;
		assert_int_equal(sfy_engine_use_gss(&e, fake), 0);
		sfy_engine_feed(&e, bad[i], len[i]);
		assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_FAILED);
		assert_int_equal(e.err, EPROTO);
		assert_ptr_equal(sfy_engine_take_gss(&e), fake);
	}
}

/* UDP ASSOCIATE through a GSSAPI hop is refused before anything is sent
 * (RFC 1961's per-datagram wrapping is not implemented). */
static void udp_refused(void **state)
{
	(void)state;
	struct sfy_chain chain = {.n = 1};
	chain.hop[0].hop = GSS;
	struct sfy_chain_engine c;
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4};
	sfy_chain_start(&c, &chain, S5_CMD_UDP_ASSOCIATE, &dst);
	assert_int_equal(c.e.state, SFY_ENG_FAILED);
	assert_int_equal(c.e.err, EOPNOTSUPP);
	assert_int_equal(sfy_chain_may_fail_over(&c), SFY_CHAIN_UNSUITED);
	sfy_chain_start(&c, &chain, S5_CMD_CONNECT, &dst);
	assert_int_not_equal(c.e.state, SFY_ENG_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(greeting_offers_gssapi_first),
		cmocka_unit_test(frame_sizes),
		cmocka_unit_test(no_ticket_is_eacces),
		cmocka_unit_test(unoffered_gssapi),
		cmocka_unit_test(reply_engine_reads_frames),
		cmocka_unit_test(reply_engine_bad_frames),
		cmocka_unit_test(udp_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
