/* Unit tests for the HTTP CONNECT engine (shim/engine_http.c): the request
 * bytes, Basic auth, the response head read byte-exactly (never a byte of
 * the tunnel), every status class, truncation at every byte, garbage and
 * oversized heads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine_wire.h"

static const struct sfy_hop HTTP = {.type = SFY_HOP_HTTP};
/* RFC 7617's example credentials. */
static const struct sfy_hop HTTP_AUTH = {.user = "Aladdin", .pass = "open sesame", .type = SFY_HOP_HTTP};

static const char OK_HEAD[] = "HTTP/1.1 200 Connection established\r\nProxy-Agent: test/1\r\n\r\n";

static void start_name(struct sfy_engine *e, const struct sfy_hop *hop)
{
	struct s5_addr dst;
	assert_int_equal(s5_addr_from_name(&dst, "files.test", 443), 0);
	sfy_engine_start(e, hop, S5_CMD_CONNECT, &dst);
}

static void request_bytes(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_name(&e, &HTTP);
	const char *want1 = "CONNECT files.test:443 HTTP/1.1\r\nHost: files.test:443\r\n\r\n";
	expect_write(&e, want1, strlen(want1));
	assert_int_equal(read_max(&e), 16); /* "HTTP/1.1 200\r\n\r\n" at least */

	start_name(&e, &HTTP_AUTH);
	const char *want2 = "CONNECT files.test:443 HTTP/1.1\r\nHost: files.test:443\r\n"
			    "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n";
	expect_write(&e, want2, strlen(want2));

	struct s5_addr v4 = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};
	sfy_engine_start(&e, &HTTP, S5_CMD_CONNECT, &v4);
	const char *want3 = "CONNECT 192.0.2.7:80 HTTP/1.1\r\nHost: 192.0.2.7:80\r\n\r\n";
	expect_write(&e, want3, strlen(want3));

	struct s5_addr v6 = {.atyp = S5_ATYP_IPV6, .port = 443, .u.ipv6 = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
	sfy_engine_start(&e, &HTTP, S5_CMD_CONNECT, &v6);
	const char *want4 = "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n";
	expect_write(&e, want4, strlen(want4));
}

/* The longest credentials and name still fit the output buffer. */
static void longest_request(void **state)
{
	(void)state;
	char user[256], pass[256], name[256];
	memset(user, 'u', 255), user[255] = 0;
	memset(pass, 'p', 255), pass[255] = 0;
	memset(name, 'n', 255), name[255] = 0;
	struct sfy_hop hop = {.user = user, .pass = pass, .type = SFY_HOP_HTTP};
	struct s5_addr dst;
	s5_addr_from_name(&dst, name, 65535);
	struct sfy_engine e;
	sfy_engine_start(&e, &hop, S5_CMD_CONNECT, &dst);
	const uint8_t *out;
	size_t n, max;
	assert_int_equal(sfy_engine_want(&e, &out, &n, &max), SFY_WANT_WRITE);
	assert_true(n <= SFY_HTTP_REQUEST_MAX);
	assert_memory_equal(out + n - 4, "\r\n\r\n", 4);
	char longer[300];
	memset(longer, 'x', 299), longer[299] = 0;
	hop.pass = longer;
	sfy_engine_start(&e, &hop, S5_CMD_CONNECT, &dst);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EINVAL);
}

static void refused_at_start(void **state)
{
	(void)state;
	struct sfy_engine e;
	struct s5_addr dst;
	const char *bad_names[] = {"a b", "evil\r\nX-Injected: 1", "a/b", "a@b", "a:80", "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		s5_addr_from_name(&dst, bad_names[i], 80);
		sfy_engine_start(&e, &HTTP, S5_CMD_CONNECT, &dst);
		assert_int_equal(want(&e), SFY_WANT_FAILED);
		assert_int_equal(e.err, EINVAL);
	}
	s5_addr_from_name(&dst, "files.test", 80);
	struct sfy_hop colon = {.user = "a:b", .pass = "p", .type = SFY_HOP_HTTP};
	sfy_engine_start(&e, &colon, S5_CMD_CONNECT, &dst);
	assert_int_equal(e.err, EINVAL);
	sfy_engine_start(&e, &HTTP, S5_CMD_BIND, &dst);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EOPNOTSUPP);
	sfy_engine_start(&e, &HTTP, S5_CMD_UDP_ASSOCIATE, &dst);
	assert_int_equal(e.err, EOPNOTSUPP);
	sfy_engine_start_reply_hop(&e, &HTTP, S5_CMD_BIND);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EOPNOTSUPP);
}

/* Feed head + tunnel bytes as a driver would: the engine must stop exactly
 * at the end of the head, whatever the read sizes. */
static void head_then_tunnel(void **state)
{
	(void)state;
	const char *heads[] = {
		OK_HEAD,
		"HTTP/1.1 200\r\n\r\n",
		"HTTP/1.0 200 Connection established\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA: b\r\n\r\n",
		"HTTP/1.1 204 \r\nX: \xff\t\r\nY:\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 299 whatever\r\nContent-Length: 10\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
		for (int drip = 0; drip < 2; drip++) {
			struct sfy_engine e;
			start_name(&e, &HTTP);
			skip_writes(&e);
			char in[256];
			size_t len = strlen(heads[i]);
			memcpy(in, heads[i], len);
			memcpy(in + len, "\r\n\r\nEARLY", 9); /* tunnel bytes that look like a head's end */
			size_t took = feed(&e, in, len + 9, drip);
			if (took != len || want(&e) != SFY_WANT_DONE)
				fail_msg("head %zu drip %d: took %zu of %zu, want %d", i, drip, took, len, want(&e));
			const char *last = heads[i], *p; /* the final head's status */
			while ((p = strstr(last + 1, "HTTP/1.")))
				last = p;
			assert_int_equal(e.rep, (last[9] - '0') * 100 + (last[10] - '0') * 10 + last[11] - '0');
			assert_int_equal(e.reply.rep, 0);
			assert_int_equal(sfy_engine_feed(&e, (const uint8_t *)"x", 1), 0);
		}
}

/* read_max never exceeds what could still belong to the head. */
static void read_max_bounds(void **state)
{
	(void)state;
	struct sfy_engine e;
	start_name(&e, &HTTP);
	skip_writes(&e);
	const char *h = OK_HEAD;
	size_t len = strlen(h), at = 0;
	while (at < len) {
		size_t max = read_max(&e);
		assert_true(max <= len - at);
		assert_int_equal(sfy_engine_feed(&e, (const uint8_t *)h + at, max), max);
		at += max;
	}
	assert_int_equal(want(&e), SFY_WANT_DONE);
}

static void status_codes(void **state)
{
	(void)state;
	const struct {
		int status;
		int err;
	} cases[] = {
		{200, 0}, {201, 0}, {299, 0}, {101, EPROTO}, {300, ECONNREFUSED}, {400, ECONNREFUSED},
		{401, EACCES}, {403, EACCES}, {404, ECONNREFUSED}, {407, EACCES}, {500, ECONNREFUSED},
		{502, EHOSTUNREACH}, {503, ECONNREFUSED}, {504, ETIMEDOUT}, {599, ECONNREFUSED},
		{600, EPROTO}, {999, EPROTO}, {0, EPROTO},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sfy_engine e;
		start_name(&e, &HTTP);
		skip_writes(&e);
		char head[64];
		int n = snprintf(head, sizeof head, "HTTP/1.1 %03d Some Reason\r\nX: y\r\n\r\n", cases[i].status);
		assert_int_equal(feed(&e, head, (size_t)n, 0), n);
		assert_int_equal(e.rep, cases[i].status);
		if (!cases[i].err) {
			assert_int_equal(want(&e), SFY_WANT_DONE);
			continue;
		}
		if (want(&e) != SFY_WANT_FAILED || e.err != cases[i].err)
			fail_msg("status %d: want %d err %d, expected %d", cases[i].status, want(&e), e.err, cases[i].err);
		assert_non_null(sfy_engine_rep_text(&e));
	}
	struct sfy_engine e;
	start_name(&e, &HTTP);
	skip_writes(&e);
	feed(&e, "HTTP/1.1 407 x\r\n\r\n", 18, 0);
	assert_string_equal(sfy_engine_rep_text(&e), "proxy authentication required");
}

static void garbage(void **state)
{
	(void)state;
	const struct {
		const char *b;
		size_t len;
	} cases[] = {
#define S(s) {s, sizeof s - 1}
		S("SSH-2.0-OpenSSH_9.2\r\n"),
		S("\x05\x00"),
		S("\x00\x5a\x00\x00\x00\x00\x00\x00"),
		S("HTTP/2 200\r\n\r\n"),
		S("HTTP/1.1 2x0 OK\r\n\r\n"),
		S("HTTP/1.1  200 OK\r\n\r\n"),
		S("HTTP/1.1 200OK\r\n\r\n"),
		S("http/1.1 200 OK\r\n\r\n"),
		S("HTTP/1.1 200 OK\n\n"),          /* bare LF */
		S("HTTP/1.1 200 OK\r\nA: b\n\r\n"), /* bare LF in a field */
		S("HTTP/1.1 200 OK\rX\r\n\r\n"),    /* bare CR */
		S("HTTP/1.1 200 OK\r\n\rX"),
		S("HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n"),
		S("HTTP/1.1 200 OK\r\nA: \x7f\r\n\r\n"),
		S("HTTP/1.1 200 O\0K\r\n\r\n"),
		S("\r\n\r\n"),
#undef S
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int drip = 0; drip < 2; drip++) {
			struct sfy_engine e;
			start_name(&e, &HTTP);
			skip_writes(&e);
			feed(&e, cases[i].b, cases[i].len, drip);
			if (want(&e) == SFY_WANT_READ)
				sfy_engine_eof(&e);
			if (want(&e) != SFY_WANT_FAILED || e.err != EPROTO)
				fail_msg("garbage %zu drip %d: want %d err %d", i, drip, want(&e), e.err);
		}
}

/* A head of exactly SFY_HTTP_HEAD_MAX bytes passes, one byte more fails. */
static void oversized_head(void **state)
{
	(void)state;
	for (int extra = 0; extra < 2; extra++) {
		static char head[SFY_HTTP_HEAD_MAX + 16];
		const char *start = "HTTP/1.1 200 OK\r\nX: ";
		size_t n = strlen(start);
		memcpy(head, start, n);
		size_t fill = SFY_HTTP_HEAD_MAX - n - 4 + (size_t)extra;
		memset(head + n, 'a', fill);
		memcpy(head + n + fill, "\r\n\r\n", 4);
		size_t len = n + fill + 4;
		struct sfy_engine e;
		start_name(&e, &HTTP);
		skip_writes(&e);
		feed(&e, head, len, 0);
		assert_int_equal(want(&e), extra ? SFY_WANT_FAILED : SFY_WANT_DONE);
		if (extra)
			assert_int_equal(e.err, EPROTO);
	}
	/* Endless interim responses count towards the cap too. */
	struct sfy_engine e;
	start_name(&e, &HTTP);
	skip_writes(&e);
	for (int i = 0; i < 1000 && want(&e) == SFY_WANT_READ; i++)
		feed(&e, "HTTP/1.1 100 Continue\r\n\r\n", 25, 0);
	assert_int_equal(want(&e), SFY_WANT_FAILED);
	assert_int_equal(e.err, EPROTO);
}

static void truncated_every_byte(void **state)
{
	(void)state;
	size_t len = strlen(OK_HEAD);
	for (size_t k = 0; k < len; k++) {
		struct sfy_engine e;
		start_name(&e, &HTTP);
		skip_writes(&e);
		assert_int_equal(feed(&e, OK_HEAD, k, 1), k);
		assert_int_equal(want(&e), SFY_WANT_READ);
		assert_int_equal(sfy_engine_at_message_start(&e), k == 0);
		sfy_engine_eof(&e);
		assert_int_equal(want(&e), SFY_WANT_FAILED);
		assert_int_equal(e.err, k ? EPROTO : ECONNRESET);
		assert_int_equal(e.rep, -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_bytes),
		cmocka_unit_test(longest_request),
		cmocka_unit_test(refused_at_start),
		cmocka_unit_test(head_then_tunnel),
		cmocka_unit_test(read_max_bounds),
		cmocka_unit_test(status_codes),
		cmocka_unit_test(garbage),
		cmocka_unit_test(oversized_head),
		cmocka_unit_test(truncated_every_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
