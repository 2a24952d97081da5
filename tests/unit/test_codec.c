/* Unit tests for the SOCKS5 wire codec (shim/codec.c, include/socks5_codec.h).
 * Buffers handed to the decoders are heap copies of exactly the length
 * passed, so AddressSanitizer reports any read past len. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "socks5_codec.h"

/* ---- helpers ---------------------------------------------------------- */

/* Heap copy of exactly len bytes (malloc(0) under ASan is a 0-byte block). */
static uint8_t *exact_copy(const uint8_t *src, size_t len)
{
	uint8_t *b = malloc(len);
	if (len) {
		assert_non_null(b);
		memcpy(b, src, len);
	}
	return b;
}

static int decode_reply_exact(const uint8_t *msg, size_t len, struct s5_reply *r)
{
	uint8_t *b = exact_copy(msg, len);
	int n = s5_decode_reply(b, len, r);
	free(b);
	return n;
}

static int decode_request_exact(const uint8_t *msg, size_t len, uint8_t *cmd, struct s5_addr *a)
{
	uint8_t *b = exact_copy(msg, len);
	int n = s5_decode_request(b, len, cmd, a);
	free(b);
	return n;
}

static void addr_v4(struct s5_addr *a, uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3, uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->atyp = S5_ATYP_IPV4;
	a->port = port;
	a->u.ipv4[0] = b0, a->u.ipv4[1] = b1, a->u.ipv4[2] = b2, a->u.ipv4[3] = b3;
}

static void addr_v6_seq(struct s5_addr *a, uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->atyp = S5_ATYP_IPV6;
	a->port = port;
	for (int i = 0; i < 16; i++)
		a->u.ipv6[i] = (uint8_t)(0x20 + i);
}

static char *repeat_char(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Build a reply/request message: VER code RSV ATYP addr port. */
static size_t build_msg(uint8_t *out, uint8_t code, uint8_t atyp, const uint8_t *addr, size_t alen, uint16_t port)
{
	size_t n = 0;
	out[n++] = S5_VERSION;
	out[n++] = code;
	out[n++] = 0;
	out[n++] = atyp;
	memcpy(out + n, addr, alen);
	n += alen;
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)port;
	return n;
}

/* ---- greeting / method ------------------------------------------------ */

static void test_greeting_no_auth(void **state)
{
	(void)state;
	uint8_t *out = malloc(3);
	assert_int_equal(s5_encode_greeting(out, 3, 0), 3);
	const uint8_t want[] = {0x05, 0x01, 0x00};
	assert_memory_equal(out, want, 3);
	free(out);
}

static void test_greeting_userpass(void **state)
{
	(void)state;
	uint8_t *out = malloc(S5_GREETING_MAX);
	assert_int_equal(s5_encode_greeting(out, S5_GREETING_MAX, 1), 4);
	const uint8_t want[] = {0x05, 0x02, 0x00, 0x02};
	assert_memory_equal(out, want, 4);
	free(out);
}

/* Pipelined greetings offer the one method whose bytes follow. */
static void test_greeting_for_one_method(void **state)
{
	(void)state;
	uint8_t out[8];
	static const uint8_t none[] = {5, 1, 0}, userpass[] = {5, 1, 2};
	assert_int_equal(s5_encode_greeting_for(out, sizeof out, S5_METHOD_NONE), 3);
	assert_memory_equal(out, none, 3);
	assert_int_equal(s5_encode_greeting_for(out, 3, S5_METHOD_USERPASS), 3);
	assert_memory_equal(out, userpass, 3);
	assert_int_equal(s5_encode_greeting_for(out, 2, S5_METHOD_NONE), S5_ESPACE);
}

static void test_addr_from_sockaddr(void **state)
{
	(void)state;
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct s5_addr a;
	static const uint8_t v4[4] = {192, 0, 2, 9};
	inet_pton(AF_INET, "192.0.2.9", &in.sin_addr);
	inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
	memset(&a, 0x5a, sizeof a);
	s5_addr_from_sockaddr(&a, (struct sockaddr *)&in, 8080);
	assert_int_equal(a.atyp, S5_ATYP_IPV4);
	assert_int_equal(a.port, 8080);
	assert_memory_equal(a.u.ipv4, v4, 4);
	s5_addr_from_sockaddr(&a, (struct sockaddr *)&in6, 443);
	assert_int_equal(a.atyp, S5_ATYP_IPV6);
	assert_int_equal(a.port, 443);
	assert_memory_equal(a.u.ipv6, in6.sin6_addr.s6_addr, 16);
}

static void test_greeting_space(void **state)
{
	(void)state;
	uint8_t out[4];
	assert_int_equal(s5_encode_greeting(out, 2, 0), S5_ESPACE);
	assert_int_equal(s5_encode_greeting(out, 3, 1), S5_ESPACE);
	assert_int_equal(s5_encode_greeting(out, 0, 0), S5_ESPACE);
}

static void test_decode_method(void **state)
{
	(void)state;
	const uint8_t ok[] = {0x05, 0x02, 0xAA};
	uint8_t m = 0x77;
	uint8_t *b = exact_copy(ok, 0);
	assert_int_equal(s5_decode_method(b, 0, &m), 0);
	free(b);
	b = exact_copy(ok, 1);
	assert_int_equal(s5_decode_method(b, 1, &m), 0);
	assert_int_equal(m, 0x77);
	free(b);
	b = exact_copy(ok, 2);
	assert_int_equal(s5_decode_method(b, 2, &m), 2);
	assert_int_equal(m, S5_METHOD_USERPASS);
	free(b);
	/* Trailing bytes are not part of the message. */
	assert_int_equal(s5_decode_method(ok, 3, &m), 2);
	const uint8_t none[] = {0x05, 0xFF};
	assert_int_equal(s5_decode_method(none, 2, &m), 2);
	assert_int_equal(m, S5_METHOD_UNACCEPTABLE);
}

static void test_decode_method_bad_version(void **state)
{
	(void)state;
	const uint8_t v4[] = {0x04, 0x00};
	uint8_t m;
	assert_int_equal(s5_decode_method(v4, 1, &m), S5_EVERSION);
	assert_int_equal(s5_decode_method(v4, 2, &m), S5_EVERSION);
	const uint8_t auth_ver[] = {0x01, 0x00};
	assert_int_equal(s5_decode_method(auth_ver, 2, &m), S5_EVERSION);
}

/* ---- username/password ------------------------------------------------ */

static void test_auth_encode_basic(void **state)
{
	(void)state;
	uint8_t *out = malloc(14);
	assert_int_equal(s5_encode_auth(out, 14, "alice", "secret"), 14);
	const uint8_t want[] = {0x01, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', 'e', 'c', 'r', 'e', 't'};
	assert_memory_equal(out, want, sizeof want);
	free(out);
}

static void test_auth_encode_max_lengths(void **state)
{
	(void)state;
	char *user = repeat_char('u', 255), *pass = repeat_char('p', 255);
	uint8_t *out = malloc(S5_AUTH_REQUEST_MAX);
	assert_int_equal(s5_encode_auth(out, S5_AUTH_REQUEST_MAX, user, pass), 513);
	assert_int_equal(out[0], 0x01);
	assert_int_equal(out[1], 255);
	assert_memory_equal(out + 2, user, 255);
	assert_int_equal(out[257], 255);
	assert_memory_equal(out + 258, pass, 255);
	free(out);
	free(user);
	free(pass);
}

static void test_auth_encode_too_long(void **state)
{
	(void)state;
	char *u256 = repeat_char('u', 256), *p256 = repeat_char('p', 256);
	uint8_t out[S5_AUTH_REQUEST_MAX + 8];
	assert_int_equal(s5_encode_auth(out, sizeof out, u256, "x"), S5_EINVAL);
	assert_int_equal(s5_encode_auth(out, sizeof out, "x", p256), S5_EINVAL);
	assert_int_equal(s5_encode_auth(out, sizeof out, u256, p256), S5_EINVAL);
	free(u256);
	free(p256);
}

static void test_auth_encode_empty_user(void **state)
{
	(void)state;
	uint8_t out[64];
	assert_int_equal(s5_encode_auth(out, sizeof out, "", "secret"), S5_EINVAL);
}

static void test_auth_encode_space(void **state)
{
	(void)state;
	uint8_t out[64];
	/* "bob"/"pw" needs 3 + 3 + 2 = 8 bytes. */
	assert_int_equal(s5_encode_auth(out, 7, "bob", "pw"), S5_ESPACE);
	assert_int_equal(s5_encode_auth(out, 0, "bob", "pw"), S5_ESPACE);
	uint8_t *exact = malloc(8);
	assert_int_equal(s5_encode_auth(exact, 8, "bob", "pw"), 8);
	free(exact);
}

static void test_auth_decode(void **state)
{
	(void)state;
	const uint8_t ok[] = {0x01, 0x00}, fail[] = {0x01, 0x01}, bad[] = {0x05, 0x00};
	uint8_t st = 0x55;
	uint8_t *b = exact_copy(ok, 0);
	assert_int_equal(s5_decode_auth(b, 0, &st), 0);
	free(b);
	b = exact_copy(ok, 1);
	assert_int_equal(s5_decode_auth(b, 1, &st), 0);
	free(b);
	assert_int_equal(st, 0x55);
	assert_int_equal(s5_decode_auth(ok, 2, &st), 2);
	assert_int_equal(st, 0);
	assert_int_equal(s5_decode_auth(fail, 2, &st), 2);
	assert_int_equal(st, 1);
	assert_int_equal(s5_decode_auth(bad, 1, &st), S5_EVERSION);
	assert_int_equal(s5_decode_auth(bad, 2, &st), S5_EVERSION);
}

/* ---- request encoding ------------------------------------------------- */

static void test_request_ipv4_bytes(void **state)
{
	(void)state;
	struct s5_addr a;
	addr_v4(&a, 1, 2, 3, 4, 80);
	uint8_t *out = malloc(10);
	assert_int_equal(s5_encode_request(out, 10, S5_CMD_CONNECT, &a), 10);
	const uint8_t want[] = {0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50};
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(s5_encode_request(out, 9, S5_CMD_CONNECT, &a), S5_ESPACE);
	free(out);
}

static void test_request_domain_bytes(void **state)
{
	(void)state;
	struct s5_addr a;
	assert_int_equal(s5_addr_from_name(&a, "example.com", 443), 0);
	assert_int_equal(a.atyp, S5_ATYP_DOMAIN);
	assert_int_equal(a.u.domain.len, 11);
	uint8_t *out = malloc(18);
	assert_int_equal(s5_encode_request(out, 18, S5_CMD_CONNECT, &a), 18);
	const uint8_t want[] = {0x05, 0x01, 0x00, 0x03, 11, 'e', 'x', 'a', 'm', 'p',
				'l', 'e', '.', 'c', 'o', 'm', 0x01, 0xBB};
	assert_memory_equal(out, want, sizeof want);
	assert_int_equal(s5_encode_request(out, 17, S5_CMD_CONNECT, &a), S5_ESPACE);
	free(out);
}

static void test_request_ipv6_bytes(void **state)
{
	(void)state;
	struct s5_addr a;
	addr_v6_seq(&a, 0x1234);
	uint8_t *out = malloc(22);
	assert_int_equal(s5_encode_request(out, 22, S5_CMD_BIND, &a), 22);
	const uint8_t head[] = {0x05, 0x02, 0x00, 0x04};
	assert_memory_equal(out, head, 4);
	assert_memory_equal(out + 4, a.u.ipv6, 16);
	assert_int_equal(out[20], 0x12);
	assert_int_equal(out[21], 0x34);
	assert_int_equal(s5_encode_request(out, 21, S5_CMD_BIND, &a), S5_ESPACE);
	free(out);
}

static void test_request_domain_255(void **state)
{
	(void)state;
	char *n255 = repeat_char('a', 255), *n256 = repeat_char('a', 256);
	struct s5_addr a;
	assert_int_equal(s5_addr_from_name(&a, n256, 80), S5_EINVAL);
	assert_int_equal(s5_addr_from_name(&a, "", 80), S5_EINVAL);
	assert_int_equal(s5_addr_from_name(&a, n255, 0xABCD), 0);
	assert_int_equal(a.u.domain.len, 255);
	assert_string_equal(a.u.domain.name, n255);
	uint8_t *out = malloc(S5_REQUEST_MAX);
	assert_int_equal(s5_encode_request(out, S5_REQUEST_MAX, S5_CMD_CONNECT, &a), 262);
	assert_int_equal(out[4], 255);
	assert_memory_equal(out + 5, n255, 255);
	assert_int_equal(out[260], 0xAB);
	assert_int_equal(out[261], 0xCD);
	assert_int_equal(s5_encode_request(out, 261, S5_CMD_CONNECT, &a), S5_ESPACE);
	free(out);
	free(n255);
	free(n256);
}

static void test_request_encode_invalid(void **state)
{
	(void)state;
	struct s5_addr a;
	uint8_t out[S5_REQUEST_MAX];
	memset(&a, 0, sizeof a);
	a.atyp = 0x02;
	assert_int_equal(s5_encode_request(out, sizeof out, S5_CMD_CONNECT, &a), S5_EINVAL);
	a.atyp = S5_ATYP_DOMAIN;
	a.u.domain.len = 0;
	assert_int_equal(s5_encode_request(out, sizeof out, S5_CMD_CONNECT, &a), S5_EINVAL);
}

/* ---- reply decoding --------------------------------------------------- */

static void test_reply_ipv4(void **state)
{
	(void)state;
	const uint8_t ip[4] = {10, 0, 0, 7};
	uint8_t msg[32];
	size_t n = build_msg(msg, 0x00, S5_ATYP_IPV4, ip, 4, 1080);
	msg[n] = 0xEE; /* first byte of relayed data */
	struct s5_reply r;
	assert_int_equal(decode_reply_exact(msg, n, &r), 10);
	assert_int_equal(decode_reply_exact(msg, n + 1, &r), 10);
	assert_int_equal(r.rep, 0);
	assert_int_equal(r.bnd.atyp, S5_ATYP_IPV4);
	assert_memory_equal(r.bnd.u.ipv4, ip, 4);
	assert_int_equal(r.bnd.port, 1080);
}

static void test_reply_ipv6(void **state)
{
	(void)state;
	struct s5_addr want;
	addr_v6_seq(&want, 0xFFEE);
	uint8_t msg[32];
	size_t n = build_msg(msg, 0x05, S5_ATYP_IPV6, want.u.ipv6, 16, 0xFFEE);
	struct s5_reply r;
	assert_int_equal(decode_reply_exact(msg, n, &r), 22);
	assert_int_equal(r.rep, 0x05);
	assert_int_equal(r.bnd.atyp, S5_ATYP_IPV6);
	assert_memory_equal(r.bnd.u.ipv6, want.u.ipv6, 16);
	assert_int_equal(r.bnd.port, 0xFFEE);
}

static void test_reply_domain(void **state)
{
	(void)state;
	const uint8_t dom[] = {5, 'h', 'o', 's', 't', 's'};
	uint8_t msg[32];
	size_t n = build_msg(msg, 0x00, S5_ATYP_DOMAIN, dom, sizeof dom, 8080);
	struct s5_reply r;
	assert_int_equal(decode_reply_exact(msg, n, &r), 12);
	assert_int_equal(r.bnd.atyp, S5_ATYP_DOMAIN);
	assert_int_equal(r.bnd.u.domain.len, 5);
	assert_string_equal(r.bnd.u.domain.name, "hosts");
	assert_int_equal(r.bnd.port, 8080);
}

static void test_reply_domain_255(void **state)
{
	(void)state;
	uint8_t dom[256], msg[S5_REPLY_MAX];
	dom[0] = 255;
	memset(dom + 1, 'z', 255);
	size_t n = build_msg(msg, 0x00, S5_ATYP_DOMAIN, dom, sizeof dom, 1);
	assert_int_equal(n, S5_REPLY_MAX);
	struct s5_reply r;
	assert_int_equal(decode_reply_exact(msg, n, &r), 262);
	assert_int_equal(r.bnd.u.domain.len, 255);
	assert_int_equal(strlen(r.bnd.u.domain.name), 255);
	assert_int_equal(r.bnd.port, 1);
}

/* Every proper prefix of a valid message must decode as "need more". */
static void check_prefixes_need_more(const uint8_t *msg, size_t full)
{
	for (size_t len = 0; len < full; len++) {
		struct s5_reply r;
		uint8_t cmd;
		struct s5_addr a;
		if (decode_reply_exact(msg, len, &r) != 0 || decode_request_exact(msg, len, &cmd, &a) != 0)
			fail_msg("prefix of %zu/%zu bytes (ATYP %u) did not return 0", len, full, msg[3]);
	}
}

static void test_reply_truncations(void **state)
{
	(void)state;
	uint8_t msg[S5_REPLY_MAX];
	const uint8_t ip4[4] = {192, 0, 2, 1};
	check_prefixes_need_more(msg, build_msg(msg, 0, S5_ATYP_IPV4, ip4, 4, 443));
	struct s5_addr v6;
	addr_v6_seq(&v6, 0);
	check_prefixes_need_more(msg, build_msg(msg, 1, S5_ATYP_IPV6, v6.u.ipv6, 16, 443));
	const uint8_t d1[] = {1, 'x'};
	check_prefixes_need_more(msg, build_msg(msg, 0, S5_ATYP_DOMAIN, d1, sizeof d1, 443));
	uint8_t d255[256];
	d255[0] = 255;
	memset(d255 + 1, 'q', 255);
	check_prefixes_need_more(msg, build_msg(msg, 0, S5_ATYP_DOMAIN, d255, sizeof d255, 443));
}

static void test_reply_bad_version(void **state)
{
	(void)state;
	const uint8_t ip[4] = {1, 1, 1, 1};
	uint8_t msg[32];
	size_t n = build_msg(msg, 0, S5_ATYP_IPV4, ip, 4, 80);
	msg[0] = 0x04;
	struct s5_reply r;
	for (size_t len = 1; len <= n; len++)
		assert_int_equal(decode_reply_exact(msg, len, &r), S5_EVERSION);
}

static void test_reply_bad_rsv(void **state)
{
	(void)state;
	const uint8_t ip[4] = {1, 1, 1, 1};
	uint8_t msg[32];
	size_t n = build_msg(msg, 0, S5_ATYP_IPV4, ip, 4, 80);
	msg[2] = 0x01;
	struct s5_reply r;
	for (size_t len = 3; len <= n; len++)
		assert_int_equal(decode_reply_exact(msg, len, &r), S5_ERSV);
}

static void test_reply_unknown_atyp(void **state)
{
	(void)state;
	const uint8_t bad_atyps[] = {0x00, 0x02, 0x05, 0xFF};
	const uint8_t ip[4] = {1, 1, 1, 1};
	uint8_t msg[32];
	struct s5_reply r;
	for (size_t i = 0; i < sizeof bad_atyps; i++) {
		size_t n = build_msg(msg, 0, bad_atyps[i], ip, 4, 80);
		assert_int_equal(decode_reply_exact(msg, 4, &r), S5_EATYP);
		assert_int_equal(decode_reply_exact(msg, n, &r), S5_EATYP);
	}
}

static void test_reply_empty_domain(void **state)
{
	(void)state;
	const uint8_t dom[] = {0};
	uint8_t msg[32];
	size_t n = build_msg(msg, 0, S5_ATYP_DOMAIN, dom, 1, 80);
	struct s5_reply r;
	assert_int_equal(decode_reply_exact(msg, 5, &r), S5_ENAME);
	assert_int_equal(decode_reply_exact(msg, n, &r), S5_ENAME);
	uint8_t cmd;
	struct s5_addr a;
	assert_int_equal(decode_request_exact(msg, n, &cmd, &a), S5_ENAME);
}

/* ---- round trip ------------------------------------------------------- */

static void round_trip(uint8_t cmd, const struct s5_addr *in, int want_len)
{
	uint8_t buf[S5_REQUEST_MAX];
	int n = s5_encode_request(buf, sizeof buf, cmd, in);
	assert_int_equal(n, want_len);
	uint8_t got_cmd = 0;
	struct s5_addr out;
	memset(&out, 0xA5, sizeof out);
	assert_int_equal(decode_request_exact(buf, (size_t)n, &got_cmd, &out), n);
	assert_int_equal(got_cmd, cmd);
	assert_int_equal(out.atyp, in->atyp);
	assert_int_equal(out.port, in->port);
	if (in->atyp == S5_ATYP_IPV4)
		assert_memory_equal(out.u.ipv4, in->u.ipv4, 4);
	else if (in->atyp == S5_ATYP_IPV6)
		assert_memory_equal(out.u.ipv6, in->u.ipv6, 16);
	else {
		assert_int_equal(out.u.domain.len, in->u.domain.len);
		assert_string_equal(out.u.domain.name, in->u.domain.name);
	}
}

static void test_request_round_trip(void **state)
{
	(void)state;
	struct s5_addr a;
	addr_v4(&a, 203, 0, 113, 9, 65535);
	round_trip(S5_CMD_CONNECT, &a, 10);
	round_trip(S5_CMD_UDP_ASSOCIATE, &a, 10);
	addr_v6_seq(&a, 1);
	round_trip(S5_CMD_BIND, &a, 22);
	assert_int_equal(s5_addr_from_name(&a, "x", 0), 0);
	round_trip(S5_CMD_CONNECT, &a, 8);
	char *n255 = repeat_char('m', 255);
	assert_int_equal(s5_addr_from_name(&a, n255, 22), 0);
	round_trip(S5_CMD_CONNECT, &a, 262);
	free(n255);
}

/* ---- reply codes ------------------------------------------------------ */

static void test_rep_codes(void **state)
{
	(void)state;
	static const struct {
		uint8_t rep;
		int err;
		const char *text;
	} cases[] = {
		{0, 0, "succeeded"},
		{1, ECONNABORTED, "general SOCKS server failure"},
		{2, EACCES, "connection not allowed by ruleset"},
		{3, ENETUNREACH, "network unreachable"},
		{4, EHOSTUNREACH, "host unreachable"},
		{5, ECONNREFUSED, "connection refused"},
		{6, ETIMEDOUT, "TTL expired"},
		{7, EOPNOTSUPP, "command not supported"},
		{8, EAFNOSUPPORT, "address type not supported"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(s5_rep_errno(cases[i].rep), cases[i].err);
		assert_string_equal(s5_rep_text(cases[i].rep), cases[i].text);
	}
}

static void test_rep_unassigned(void **state)
{
	(void)state;
	const uint8_t reps[] = {9, 0x10, 0x7F, 0x80, 0xFE, 0xFF};
	for (size_t i = 0; i < sizeof reps; i++) {
		assert_int_equal(s5_rep_errno(reps[i]), EPROTO);
		assert_non_null(strstr(s5_rep_text(reps[i]), "unassigned"));
	}
}

/* RFC 1928 section 7: the UDP header, both ways, and its refusals. */
static void test_udp_header_round_trip(void **state)
{
	(void)state;
	struct s5_addr a, b;
	uint8_t buf[S5_UDP_HEADER_MAX], frag = 9;
	s5_addr_from_name(&a, "fake.test", 53);
	int n = s5_encode_udp_header(buf, sizeof buf, &a);
	assert_int_equal(n, 3 + 1 + 1 + 9 + 2);
	static const uint8_t head[] = {0, 0, 0, S5_ATYP_DOMAIN, 9};
	assert_memory_equal(buf, head, sizeof head);
	assert_int_equal(s5_decode_udp_header(buf, (size_t)n, &frag, &b), n);
	assert_int_equal(frag, 0);
	assert_string_equal(b.u.domain.name, "fake.test");
	assert_int_equal(b.port, 53);
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	s5_addr_from_sockaddr(&a, (struct sockaddr *)&s6, 7);
	assert_int_equal(s5_encode_udp_header(buf, sizeof buf, &a), 22);
	assert_int_equal(s5_encode_udp_header(buf, 21, &a), S5_ESPACE);
	for (int len = 0; len < 22; len++)
		assert_true(s5_decode_udp_header(buf, (size_t)len, &frag, &b) <= 0);
	assert_int_equal(s5_decode_udp_header(buf, 22, &frag, &b), 22);
	assert_int_equal(b.atyp, S5_ATYP_IPV6);
}

static void test_udp_header_bad(void **state)
{
	(void)state;
	struct s5_addr b;
	uint8_t frag;
	static const uint8_t rsv[] = {0, 1, 0, 1, 1, 2, 3, 4, 0, 7};
	static const uint8_t atyp[] = {0, 0, 0, 9, 1, 2, 3, 4, 0, 7};
	static const uint8_t fragged[] = {0, 0, 2, 1, 1, 2, 3, 4, 0, 7, 'x'};
	static const uint8_t noname[] = {0, 0, 0, 3, 0, 0, 7};
	assert_int_equal(s5_decode_udp_header(rsv, sizeof rsv, &frag, &b), S5_ERSV);
	assert_int_equal(s5_decode_udp_header(atyp, sizeof atyp, &frag, &b), S5_EATYP);
	assert_int_equal(s5_decode_udp_header(noname, sizeof noname, &frag, &b), S5_ENAME);
	assert_int_equal(s5_decode_udp_header(fragged, sizeof fragged, &frag, &b), 10);
	assert_int_equal(frag, 2);
	struct s5_addr bad = {.atyp = 7};
	uint8_t buf[S5_UDP_HEADER_MAX];
	assert_int_equal(s5_encode_udp_header(buf, sizeof buf, &bad), S5_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_no_auth),
		cmocka_unit_test(test_greeting_userpass),
		cmocka_unit_test(test_greeting_space),
		cmocka_unit_test(test_addr_from_sockaddr),
		cmocka_unit_test(test_greeting_for_one_method),
		cmocka_unit_test(test_decode_method),
		cmocka_unit_test(test_decode_method_bad_version),
		cmocka_unit_test(test_auth_encode_basic),
		cmocka_unit_test(test_auth_encode_max_lengths),
		cmocka_unit_test(test_auth_encode_too_long),
		cmocka_unit_test(test_auth_encode_empty_user),
		cmocka_unit_test(test_auth_encode_space),
		cmocka_unit_test(test_auth_decode),
		cmocka_unit_test(test_request_ipv4_bytes),
		cmocka_unit_test(test_request_domain_bytes),
		cmocka_unit_test(test_request_ipv6_bytes),
		cmocka_unit_test(test_request_domain_255),
		cmocka_unit_test(test_request_encode_invalid),
		cmocka_unit_test(test_reply_ipv4),
		cmocka_unit_test(test_reply_ipv6),
		cmocka_unit_test(test_reply_domain),
		cmocka_unit_test(test_reply_domain_255),
		cmocka_unit_test(test_reply_truncations),
		cmocka_unit_test(test_reply_bad_version),
		cmocka_unit_test(test_reply_bad_rsv),
		cmocka_unit_test(test_reply_unknown_atyp),
		cmocka_unit_test(test_reply_empty_domain),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_rep_codes),
		cmocka_unit_test(test_rep_unassigned),
		cmocka_unit_test(test_udp_header_round_trip),
		cmocka_unit_test(test_udp_header_bad),
	};
	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
