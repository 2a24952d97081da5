/* Unit tests for the sans-I/O SOCKS5 client engine (shim/engine.c): bytes
 * in, bytes out, no sockets.  Every protocol case of the hostile-proxy
 * matrix (tests/bats/hostile.bats) has its twin here, fed as bytes: what
 * the proxy sends, where it stops, and the errno the program would get. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfy_engine.h"

static const struct sfy_hop NOAUTH = {.user = "", .pass = "", .pipeline = 0};
static const struct sfy_hop AUTH = {.user = "u", .pass = "pw", .pipeline = 0};
static const struct sfy_hop NOAUTH_PIPE = {.user = "", .pass = "", .pipeline = 1};
static const struct sfy_hop AUTH_PIPE = {.user = "u", .pass = "pw", .pipeline = 1};

static const uint8_t OK_REPLY[] = {5, 0, 0, 1, 127, 0, 0, 2, 0x1f, 0x90};

static void start_v4(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t cmd)
{
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};
	sfy_engine_start(e, hop, cmd, &dst);
}

/* The engine must want to write exactly these bytes; they are "sent". */
static void expect_write(struct sfy_engine *e, const uint8_t *bytes, size_t len)
{
	const uint8_t *out;
	size_t n, max;
	assert_int_equal(sfy_engine_want(e, &out, &n, &max), SFY_WANT_WRITE);
	assert_int_equal(n, len);
	assert_memory_equal(out, bytes, len);
	sfy_engine_sent(e, n);
}

/* Feed bytes as a driver would: never more than read_max at a time, and
 * one byte at a time when drip.  Returns how many the engine took. */
static size_t feed(struct sfy_engine *e, const uint8_t *in, size_t len, int drip)
{
	size_t used = 0;
	while (used < len) {
		const uint8_t *out;
		size_t n, max;
		if (sfy_engine_want(e, &out, &n, &max) != SFY_WANT_READ)
			break;
		assert_true(max > 0);
		size_t give = len - used < max ? len - used : max;
		if (drip)
			give = 1;
		size_t took = sfy_engine_feed(e, in + used, give);
		assert_true(took <= give);
		used += took;
		if (took < give)
			break;
	}
	return used;
}

static enum sfy_want want(struct sfy_engine *e)
{
	const uint8_t *out;
	size_t n, max;
	return sfy_engine_want(e, &out, &n, &max);
}

static void skip_writes(struct sfy_engine *e)
{
	const uint8_t *out;
	size_t n, max;
	while (sfy_engine_want(e, &out, &n, &max) == SFY_WANT_WRITE)
		sfy_engine_sent(e, n);
}

/* ---- the good path ---------------------------------------------------- */

static void stepwise_noauth(void **state)
{
	(void)state;
	for (int drip = 0; drip < 2; drip++) {
		struct sfy_engine e;
		start_v4(&e, &NOAUTH, S5_CMD_CONNECT);
		expect_write(&e, (const uint8_t[]){5, 1, 0}, 3);
		assert_int_equal(feed(&e, (const uint8_t[]){5, 0}, 2, drip), 2);
		expect_write(&e, (const uint8_t[]){5, 1, 0, 1, 192, 0, 2, 7, 0, 80}, 10);
		assert_int_equal(feed(&e, OK_REPLY, sizeof OK_REPLY, drip), sizeof OK_REPLY);
		assert_int_equal(want(&e), SFY_WANT_DONE);
		assert_int_equal(e.reply.rep, 0);
		assert_int_equal(e.reply.bnd.port, 8080);
		assert_memory_equal(e.reply.bnd.u.ipv4, ((const uint8_t[]){127, 0, 0, 2}), 4);
	}
}

static void stepwise_userpass(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &AUTH, S5_CMD_CONNECT);
	expect_write(&e, (const uint8_t[]){5, 2, 2, 0}, 4);
	feed(&e, (const uint8_t[]){5, 2}, 2, 0);
	expect_write(&e, (const uint8_t[]){1, 1, 'u', 2, 'p', 'w'}, 6);
	const uint8_t *out;
	size_t n, max;
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_READ);
	assert_int_equal(max, 2); /* the status is read in one go */
	feed(&e, (const uint8_t[]){1, 0}, 2, 0);
	expect_write(&e, (const uint8_t[]){5, 1, 0, 1, 192, 0, 2, 7, 0, 80}, 10);
	feed(&e, OK_REPLY, sizeof OK_REPLY, 0);
	assert_int_equal(want(&e), SFY_WANT_DONE);
}

/* A proxy may pick "none" even when we offer username/password. */
static void stepwise_userpass_offered_none_chosen(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &AUTH, S5_CMD_CONNECT);
	skip_writes(&e);
	feed(&e, (const uint8_t[]){5, 0}, 2, 0);
	expect_write(&e, (const uint8_t[]){5, 1, 0, 1, 192, 0, 2, 7, 0, 80}, 10);
}

static void pipelined(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &NOAUTH_PIPE, S5_CMD_CONNECT);
	expect_write(&e, (const uint8_t[]){5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 0, 80}, 13);
	uint8_t in[2 + sizeof OK_REPLY];
	memcpy(in, (const uint8_t[]){5, 0}, 2);
	memcpy(in + 2, OK_REPLY, sizeof OK_REPLY);
	assert_int_equal(feed(&e, in, sizeof in, 0), sizeof in);
	assert_int_equal(want(&e), SFY_WANT_DONE);

	start_v4(&e, &AUTH_PIPE, S5_CMD_CONNECT);
	expect_write(&e, (const uint8_t[]){5, 1, 2, 1, 1, 'u', 2, 'p', 'w', 5, 1, 0, 1, 192, 0, 2, 7, 0, 80}, 19);
	uint8_t in2[4 + sizeof OK_REPLY] = {5, 2, 1, 0};
	memcpy(in2 + 4, OK_REPLY, sizeof OK_REPLY);
	for (int drip = 0; drip < 2; drip++) {
		if (drip) {
			start_v4(&e, &AUTH_PIPE, S5_CMD_CONNECT);
			skip_writes(&e);
		}
		assert_int_equal(feed(&e, in2, sizeof in2, drip), sizeof in2);
		assert_int_equal(want(&e), SFY_WANT_DONE);
	}
}

/* Bytes after the reply belong to the program: the engine never takes them. */
static void data_after_reply_left(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &NOAUTH, S5_CMD_CONNECT);
	skip_writes(&e);
	feed(&e, (const uint8_t[]){5, 0}, 2, 0);
	skip_writes(&e);
	uint8_t in[sizeof OK_REPLY + 5];
	memcpy(in, OK_REPLY, sizeof OK_REPLY);
	memcpy(in + sizeof OK_REPLY, "EARLY", 5);
	assert_int_equal(sfy_engine_feed(&e, in, sizeof in), sizeof OK_REPLY);
	assert_int_equal(want(&e), SFY_WANT_DONE);
}

static void reply_sizes(void **state)
{
	(void)state;
	uint8_t v6[22] = {5, 0, 0, 4};
	v6[19] = 1;
	uint8_t name[7 + 255] = {5, 0, 0, 3, 255};
	memset(name + 5, 'a', 255);
	const struct {
		const uint8_t *b;
		size_t len;
	} cases[] = {{v6, sizeof v6}, {name, sizeof name}, {(const uint8_t[]){5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 1}, 10}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int drip = 0; drip < 2; drip++) {
			struct sfy_engine e;
			start_v4(&e, &NOAUTH, S5_CMD_CONNECT);
			skip_writes(&e);
			feed(&e, (const uint8_t[]){5, 0}, 2, 0);
			skip_writes(&e);
			uint8_t *in = malloc(cases[i].len + 3);
			memcpy(in, cases[i].b, cases[i].len);
			memcpy(in + cases[i].len, "xyz", 3);
			assert_int_equal(feed(&e, in, cases[i].len + 3, drip), cases[i].len);
			free(in);
			assert_int_equal(want(&e), SFY_WANT_DONE);
		}
}

static void bind_two_replies(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &NOAUTH, S5_CMD_BIND);
	expect_write(&e, (const uint8_t[]){5, 1, 0}, 3);
	feed(&e, (const uint8_t[]){5, 0}, 2, 0);
	expect_write(&e, (const uint8_t[]){5, 2, 0, 1, 192, 0, 2, 7, 0, 80}, 10);
	feed(&e, OK_REPLY, sizeof OK_REPLY, 0);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	assert_int_equal(e.replies, 1);
	sfy_engine_next_reply(&e);
	assert_int_equal(want(&e), SFY_WANT_READ);
	const uint8_t r2[] = {5, 0, 0, 1, 198, 51, 100, 9, 0x30, 0x39};
	feed(&e, r2, sizeof r2, 1);
	assert_int_equal(want(&e), SFY_WANT_DONE);
	assert_int_equal(e.replies, 2);
	assert_int_equal(e.reply.bnd.port, 12345);

	/* Reply 2 read later, by an engine of its own, failing. */
	sfy_engine_start_reply(&e, S5_CMD_BIND);
	feed(&e, (const uint8_t[]){5, 5, 0, 1, 0, 0, 0, 0, 0, 0}, 10, 0);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, ECONNREFUSED);
	assert_int_equal(e.rep, 5);
}

static void methods_table(void **state)
{
	(void)state;
	size_t n;
	const struct sfy_auth_method *m = sfy_auth_methods(&n);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].id, S5_METHOD_GSSAPI); /* offered only with gssapi = yes */
	assert_false(m[0].usable(&AUTH));
	assert_int_equal(m[1].id, S5_METHOD_USERPASS);
	assert_int_equal(m[2].id, S5_METHOD_NONE);
	assert_true(m[1].usable(&AUTH));
	assert_false(m[1].usable(&NOAUTH));
}

/* ---- the hostile matrix, as bytes ---------------------------------- */

struct bad {
	const char *what;
	const struct sfy_hop *hop;
	int stage; /* 0: answer to the greeting, 1: to the auth, 2: the reply */
	const uint8_t *bytes;
	size_t len;
	int eof;   /* the proxy closes after the bytes */
	int err;   /* errno, 0: still waiting for more */
	int rep;
};

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static const struct bad bad_cases[] = {
	{"method VER 4", &NOAUTH, 0, B(4, 0), 0, EPROTO, -1},
	{"method VER 0", &NOAUTH, 0, B(0, 0), 0, EPROTO, -1},
	{"userpass chosen, not offered", &NOAUTH, 0, B(5, 2), 0, EPROTO, -1},
	{"GSSAPI chosen, not offered", &NOAUTH, 0, B(5, 1), 0, EPROTO, -1},
	{"no acceptable methods", &NOAUTH, 0, B(5, 0xff), 0, EACCES, -1},
	{"no acceptable methods (auth)", &AUTH, 0, B(5, 0xff), 0, EACCES, -1},
	{"pipelined: other method", &NOAUTH_PIPE, 0, B(5, 2), 0, EPROTO, -1},
	{"method truncated, EOF", &NOAUTH, 0, B(5), 1, EPROTO, -1},
	{"method truncated, waits", &NOAUTH, 0, B(5), 0, 0, -1},
	{"closed before any answer", &NOAUTH, 0, NULL, 0, 1, ECONNRESET, -1},
	{"auth VER 5", &AUTH, 1, B(5, 0), 0, EPROTO, -1},
	{"auth rejected", &AUTH, 1, B(1, 1), 0, EACCES, -1},
	{"auth rejected 0xff", &AUTH, 1, B(1, 0xff), 0, EACCES, -1},
	{"auth truncated, EOF", &AUTH, 1, B(1), 1, EPROTO, -1},
	{"auth closed", &AUTH, 1, NULL, 0, 1, ECONNRESET, -1},
	{"reply VER 4", &NOAUTH, 2, B(4, 0, 0, 1, 127, 0, 0, 2, 0x1f, 0x90), 0, EPROTO, -1},
	{"reply RSV 1", &NOAUTH, 2, B(5, 0, 1, 1, 127, 0, 0, 2, 0x1f, 0x90), 0, EPROTO, -1},
	{"reply ATYP 9", &NOAUTH, 2, B(5, 0, 0, 9, 127, 0, 0, 2, 0x1f, 0x90), 0, EPROTO, -1},
	{"reply ATYP 0", &NOAUTH, 2, B(5, 0, 0, 0, 127, 0, 0, 2, 0x1f, 0x90), 0, EPROTO, -1},
	{"reply ATYP 2", &NOAUTH, 2, B(5, 0, 0, 2, 127, 0, 0, 2, 0x1f, 0x90), 0, EPROTO, -1},
	{"reply empty name", &NOAUTH, 2, B(5, 0, 0, 3, 0, 0, 0x50), 0, EPROTO, -1},
	{"reply 2-byte name", &NOAUTH, 2, B(5, 0, 0, 3, 2, 'a', 'b', 0, 0x50), 0, EPROTO, -1},
	{"reply head only, EOF", &NOAUTH, 2, B(5, 0, 0), 1, EPROTO, -1},
	{"reply 9 of 10, EOF", &NOAUTH, 2, B(5, 0, 0, 1, 127, 0, 0, 2, 0x1f), 1, EPROTO, -1},
	{"reply 9 of 10, waits", &NOAUTH, 2, B(5, 0, 0, 1, 127, 0, 0, 2, 0x1f), 0, 0, -1},
	{"reply v6 cut, EOF", &NOAUTH, 2, B(5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0), 1, EPROTO, -1},
	{"reply closed", &NOAUTH, 2, NULL, 0, 1, ECONNRESET, -1},
	{"general failure", &NOAUTH, 2, B(5, 1, 0, 1, 0, 0, 0, 0, 0, 0), 0, ECONNABORTED, 1},
	{"not allowed", &NOAUTH, 2, B(5, 2, 0, 1, 0, 0, 0, 0, 0, 0), 0, EACCES, 2},
	{"network unreachable", &NOAUTH, 2, B(5, 3, 0, 1, 0, 0, 0, 0, 0, 0), 0, ENETUNREACH, 3},
	{"host unreachable", &NOAUTH, 2, B(5, 4, 0, 1, 0, 0, 0, 0, 0, 0), 0, EHOSTUNREACH, 4},
	{"refused", &NOAUTH, 2, B(5, 5, 0, 1, 0, 0, 0, 0, 0, 0), 0, ECONNREFUSED, 5},
	{"TTL expired", &NOAUTH, 2, B(5, 6, 0, 1, 0, 0, 0, 0, 0, 0), 0, ETIMEDOUT, 6},
	{"command not supported", &NOAUTH, 2, B(5, 7, 0, 1, 0, 0, 0, 0, 0, 0), 0, EOPNOTSUPP, 7},
	{"address type not supported", &NOAUTH, 2, B(5, 8, 0, 1, 0, 0, 0, 0, 0, 0), 0, EAFNOSUPPORT, 8},
	{"unassigned code", &NOAUTH, 2, B(5, 9, 0, 1, 0, 0, 0, 0, 0, 0), 0, EPROTO, 9},
};

static void to_stage(struct sfy_engine *e, const struct bad *c)
{
	start_v4(e, c->hop, S5_CMD_CONNECT);
	skip_writes(e);
	if (c->stage >= 1)
		feed(e, (const uint8_t[]){5, c->hop == &AUTH ? 2 : 0}, 2, 0);
	skip_writes(e);
	if (c->stage >= 2 && c->hop == &AUTH)
		feed(e, B(1, 0), 0);
	skip_writes(e);
}

static void hostile_matrix(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad *c = &bad_cases[i];
		for (int drip = 0; drip < 2; drip++) {
			struct sfy_engine e;
			to_stage(&e, c);
			assert_int_equal(want(&e), SFY_WANT_READ);
			if (c->bytes)
				feed(&e, c->bytes, c->len, drip);
			if (c->eof && want(&e) == SFY_WANT_READ)
				sfy_engine_eof(&e);
			if (!c->err) {
				if (want(&e) != SFY_WANT_READ)
					fail_msg("%s: should still wait", c->what);
				continue;
			}
			if (want(&e) != SFY_WANT_FAILED || e.err != c->err || e.rep != c->rep)
				fail_msg("%s (drip %d): want %d err %d rep %d, expected err %d rep %d", c->what, drip,
					 want(&e), e.err, e.rep, c->err, c->rep);
			assert_non_null(e.step);
		}
	}
}

static void unencodable_credentials(void **state)
{
	(void)state;
	char longname[300];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	struct sfy_hop hop = {.user = longname, .pass = "p", .pipeline = 1};
	struct sfy_engine e;
	start_v4(&e, &hop, S5_CMD_CONNECT);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EINVAL);
	hop.pipeline = 0; /* found out when the proxy picks the method */
	start_v4(&e, &hop, S5_CMD_CONNECT);
	skip_writes(&e);
	feed(&e, B(5, 2), 0);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EINVAL);
}

/* A driver's own failure (socket error, timeout) keeps the first cause. */
static void driver_failure(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_v4(&e, &NOAUTH, S5_CMD_CONNECT);
	sfy_engine_fail(&e, ETIMEDOUT, NULL);
	sfy_engine_fail(&e, EPIPE, NULL);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, ETIMEDOUT);
	assert_string_equal(e.step, "greeting");
	/* Nothing more is taken once failed. */
	assert_int_equal(sfy_engine_feed(&e, B(5, 0)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stepwise_noauth),
		cmocka_unit_test(stepwise_userpass),
		cmocka_unit_test(stepwise_userpass_offered_none_chosen),
		cmocka_unit_test(pipelined),
		cmocka_unit_test(data_after_reply_left),
		cmocka_unit_test(reply_sizes),
		cmocka_unit_test(bind_two_replies),
		cmocka_unit_test(methods_table),
		cmocka_unit_test(hostile_matrix),
		cmocka_unit_test(unencodable_credentials),
		cmocka_unit_test(driver_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
