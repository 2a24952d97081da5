/* Unit tests for the SOCKS4/4a engine (shim/engine_s4.c): exact request
 * bytes, every reply code, truncation at every byte, what SOCKS4 cannot
 * carry refused before a byte is sent, BIND's two replies, and bytes after
 * a reply left alone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine_wire.h"

static const struct sfy_hop S4 = {.type = SFY_HOP_SOCKS4};
static const struct sfy_hop S4_USER = {.user = "alice", .pass = "ignored", .type = SFY_HOP_SOCKS4};
static const struct sfy_hop S4A = {.type = SFY_HOP_SOCKS4A};

static const struct s5_addr V4 = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};
static const uint8_t GRANTED[] = {0, 90, 0x1f, 0x90, 198, 51, 100, 1};

static struct s5_addr name_addr(const char *name, uint16_t port)
{
	struct s5_addr a;
	memset(&a, 0, sizeof a);
	assert_int_equal(s5_addr_from_name(&a, name, port), 0);
	return a;
}

static void connect_v4(void **state)
{
	(void)state;
	for (int drip = 0; drip < 2; drip++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
		expect_write(&e, B(4, 1, 0, 80, 192, 0, 2, 7, 0));
		assert_int_equal(read_max(&e), 8);
		assert_true(sfy_engine_at_message_start(&e));
		assert_int_equal(feed(&e, GRANTED, sizeof GRANTED, drip), 8);
		assert_int_equal(want(&e), SFY_WANT_DONE);
		assert_int_equal(e.rep, 90);
		assert_int_equal(e.reply.rep, 0);
		assert_int_equal(e.reply.bnd.atyp, S5_ATYP_IPV4);
		assert_int_equal(e.reply.bnd.port, 8080);
		assert_memory_equal(e.reply.bnd.u.ipv4, ((const uint8_t[]){198, 51, 100, 1}), 4);
		assert_string_equal(sfy_engine_rep_text(&e), "request granted");
	}
}

static void userid_sent(void **state)
{
	(void)state;
	struct sfy_engine e;
	sfy_engine_start(&e, &S4_USER, S5_CMD_CONNECT, &V4);
	expect_write(&e, B(4, 1, 0, 80, 192, 0, 2, 7, 'a', 'l', 'i', 'c', 'e', 0));
	char longname[300];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	struct sfy_hop hop = {.user = longname, .type = SFY_HOP_SOCKS4};
	sfy_engine_start(&e, &hop, S5_CMD_CONNECT, &V4);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EINVAL);
}

/* SOCKS4a: a name goes after the USERID, with DSTIP 0.0.0.1; an address
 * goes as plain SOCKS4. */
static void socks4a_name(void **state)
{
	(void)state;
	struct sfy_engine e;
	struct s5_addr dst = name_addr("files.test", 443);
	sfy_engine_start(&e, &S4A, S5_CMD_CONNECT, &dst);
	expect_write(&e, B(4, 1, 1, 0xbb, 0, 0, 0, 1, 0, 'f', 'i', 'l', 'e', 's', '.', 't', 'e', 's', 't', 0));
	feed(&e, GRANTED, sizeof GRANTED, 0);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	sfy_engine_start(&e, &S4A, S5_CMD_CONNECT, &V4);
	expect_write(&e, B(4, 1, 0, 80, 192, 0, 2, 7, 0));
}

/* What SOCKS4 cannot carry fails at start: nothing to write, a clear
 * errno, never a lookup. */
static void refused_at_start(void **state)
{
	(void)state;
	struct s5_addr name = name_addr("files.test", 80);
	struct s5_addr v6 = {.atyp = S5_ATYP_IPV6, .port = 80, .u.ipv6 = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
	struct s5_addr zero_x = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {0, 0, 0, 9}};
	const struct {
		const struct sfy_hop *hop;
		uint8_t cmd;
		const struct s5_addr *dst;
		int err;
	} cases[] = {
		{&S4, S5_CMD_CONNECT, &name, EOPNOTSUPP},
		{&S4, S5_CMD_CONNECT, &v6, EAFNOSUPPORT},
		{&S4A, S5_CMD_CONNECT, &v6, EAFNOSUPPORT},
		{&S4, S5_CMD_CONNECT, &zero_x, EINVAL},
		{&S4A, S5_CMD_CONNECT, &zero_x, EINVAL},
		{&S4, S5_CMD_UDP_ASSOCIATE, &V4, EOPNOTSUPP},
		{&S4A, S5_CMD_UDP_ASSOCIATE, &name, EOPNOTSUPP},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sfy_engine e;
		sfy_engine_start(&e, cases[i].hop, cases[i].cmd, cases[i].dst);
		if (want(&e) != SFY_WANT_FAILED || e.err != cases[i].err)
			fail_msg("case %zu: want %d err %d, expected err %d", i, want(&e), e.err, cases[i].err);
		assert_non_null(e.step);
		assert_int_equal(e.rep, -1);
	}
}

/* ::ffff:a.b.c.d is an IPv4 destination. */
static void v4_mapped(void **state)
{
	(void)state;
	struct s5_addr m = {.atyp = S5_ATYP_IPV6, .port = 80, .u.ipv6 = {[10] = 0xff, [11] = 0xff, 192, 0, 2, 7}};
	struct sfy_engine e;
	sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &m);
	expect_write(&e, B(4, 1, 0, 80, 192, 0, 2, 7, 0));
}

static void every_reply_code(void **state)
{
	(void)state;
	for (int cd = 0; cd < 256; cd++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
		skip_writes(&e);
		uint8_t r[8] = {0, (uint8_t)cd, 0, 0, 0, 0, 0, 0};
		assert_int_equal(feed(&e, r, sizeof r, 0), 8);
		int expect = cd == 90 ? 0 : cd == 91 ? ECONNREFUSED : cd == 92 || cd == 93 ? EACCES : EPROTO;
		assert_int_equal(e.rep, cd);
		if (!expect) {
			assert_int_equal(want(&e), SFY_WANT_DONE);
			continue;
		}
		assert_int_equal(want(&e), SFY_WANT_FAILED);
		assert_int_equal(e.err, expect);
		assert_string_equal(e.step, "reply");
		assert_non_null(sfy_engine_rep_text(&e));
	}
}

/* A reply whose VN is not 0 (a SOCKS5 server answers 5) fails at once. */
static void bad_version(void **state)
{
	(void)state;
	for (int vn = 1; vn < 256; vn++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
		skip_writes(&e);
		uint8_t r[8] = {(uint8_t)vn, 90};
		feed(&e, r, sizeof r, 1);
		assert_int_equal(want(&e), SFY_WANT_FAILED);
		assert_int_equal(e.err, EPROTO);
		assert_int_equal(e.rep, -1);
	}
}

static void truncated_every_byte(void **state)
{
	(void)state;
	for (size_t k = 0; k < 8; k++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
		skip_writes(&e);
		assert_int_equal(feed(&e, GRANTED, k, 0), k);
		assert_int_equal(want(&e), SFY_WANT_READ);
		assert_int_equal(read_max(&e), 8 - k);
		assert_int_equal(sfy_engine_at_message_start(&e), k == 0);
		sfy_engine_eof(&e);
		assert_int_equal(want(&e), SFY_WANT_FAILED);
		assert_int_equal(e.err, k ? EPROTO : ECONNRESET);
	}
}

static void data_after_reply_left(void **state)
{
	(void)state;
	struct sfy_engine e;
	sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
	skip_writes(&e);
	uint8_t in[sizeof GRANTED + 5];
	memcpy(in, GRANTED, sizeof GRANTED);
	memcpy(in + sizeof GRANTED, "EARLY", 5);
	assert_int_equal(sfy_engine_feed(&e, in, sizeof in), 8);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	assert_int_equal(sfy_engine_feed(&e, in + 8, 5), 0);
}

static void bind_two_replies(void **state)
{
	(void)state;
	struct sfy_engine e;
	sfy_engine_start(&e, &S4A, S5_CMD_BIND, &V4);
	expect_write(&e, B(4, 2, 0, 80, 192, 0, 2, 7, 0));
	feed(&e, B(0, 90, 0x30, 0x39, 0, 0, 0, 0), 0);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	assert_int_equal(e.replies, 1);
	assert_int_equal(e.reply.bnd.port, 12345);
	sfy_engine_next_reply(&e);
	assert_int_equal(read_max(&e), 8);
	assert_string_equal(e.step, "reply 2");
	feed(&e, B(0, 90, 0, 21, 192, 0, 2, 7), 1);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	assert_int_equal(e.replies, 2);
	assert_int_equal(e.reply.bnd.port, 21);

	/* Reply 2 read later by an engine of its own, failing. */
	sfy_engine_start_reply_hop(&e, &S4, S5_CMD_BIND);
	assert_int_equal(read_max(&e), 8);
	feed(&e, B(0, 91, 0, 0, 0, 0, 0, 0), 0);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, ECONNREFUSED);
	assert_int_equal(e.rep, 91);
	assert_string_equal(e.step, "reply 2");
}

/* A driver's failure keeps the first cause; nothing is taken afterwards. */
static void driver_failure(void **state)
{
	(void)state;
	struct sfy_engine e;
	sfy_engine_start(&e, &S4, S5_CMD_CONNECT, &V4);
	skip_writes(&e);
	sfy_engine_fail(&e, ETIMEDOUT, NULL);
	sfy_engine_eof(&e);
	assert_int_equal(e.err, ETIMEDOUT);
	assert_int_equal(sfy_engine_feed(&e, GRANTED, sizeof GRANTED), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connect_v4),
		cmocka_unit_test(userid_sent),
		cmocka_unit_test(socks4a_name),
		cmocka_unit_test(refused_at_start),
		cmocka_unit_test(v4_mapped),
		cmocka_unit_test(every_reply_code),
		cmocka_unit_test(bad_version),
		cmocka_unit_test(truncated_every_byte),
		cmocka_unit_test(data_after_reply_left),
		cmocka_unit_test(bind_two_replies),
		cmocka_unit_test(driver_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
