/* Unit tests for the direct/bypass rules (shim/rules.c) and the CIDR parser
 * they use (sfy_cidr_parse in shim/config.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "sfy_config.h"

/* ---- helpers ---------------------------------------------------------- */

/* A sockaddr for text ("1.2.3.4" or "::1"), in a storage the caller owns. */
static const struct sockaddr *sa_of(struct sockaddr_storage *ss, const char *text, uint16_t port)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return (const struct sockaddr *)ss;
}

static struct sfy_cidr cidr(const char *text)
{
	struct sfy_cidr c;
	if (sfy_cidr_parse(text, &c, 1) != 0)
		fail_msg("sfy_cidr_parse(\"%s\") failed", text);
	return c;
}

static int match(const char *rule, const char *addr, uint16_t port)
{
	struct sfy_cidr c = cidr(rule);
	struct sockaddr_storage ss;
	return sfy_cidr_match(&c, sa_of(&ss, addr, port));
}

static void expect_cidr(const char *text, int allow_port, int family, const char *addr, int prefix, uint16_t port)
{
	struct sfy_cidr c, zero;
	memset(&zero, 0, sizeof zero);
	if (sfy_cidr_parse(text, &c, allow_port) != 0)
		fail_msg("sfy_cidr_parse(\"%s\", %d) rejected a valid form", text, allow_port);
	assert_int_equal(c.family, family);
	uint8_t want[16] = {0};
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(c.addr, want, family == AF_INET ? 4 : 16);
	if (family == AF_INET) /* the unused tail stays zero */
		assert_memory_equal(c.addr + 4, zero.addr + 4, 12);
	assert_int_equal(c.prefix, prefix);
	assert_int_equal(c.port, port);
}

static int is_direct(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	return sfy_addr_is_direct(cfg, sa_of(&ss, addr, port));
}

static int is_proxy(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	return sfy_addr_is_proxy(cfg, sa_of(&ss, addr, port));
}

/* ---- sfy_cidr_parse --------------------------------------------------- */

/* sfy_map_v4 and sfy_unmap_v4 undo each other, port included. */
static void test_map_v4_round_trip(void **state)
{
	(void)state;
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1080)}, back;
	struct sockaddr_in6 m;
	static const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
	inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
	memset(&m, 0x5a, sizeof m);
	sfy_map_v4(&in, &m);
	assert_int_equal(m.sin6_family, AF_INET6);
	assert_int_equal(ntohs(m.sin6_port), 1080);
	assert_memory_equal(m.sin6_addr.s6_addr, want, 16);
	assert_int_equal(m.sin6_flowinfo, 0);
	assert_int_equal(m.sin6_scope_id, 0);
	assert_int_equal(sfy_unmap_v4((struct sockaddr *)&m, &back), 1);
	assert_int_equal(back.sin_port, in.sin_port);
	assert_memory_equal(&back.sin_addr, &in.sin_addr, 4);
}

static void test_cidr_parse_v4(void **state)
{
	(void)state;
	expect_cidr("10.1.2.3", 0, AF_INET, "10.1.2.3", 32, 0);
	expect_cidr("10.0.0.0/8", 0, AF_INET, "10.0.0.0", 8, 0);
	expect_cidr("0.0.0.0/0", 0, AF_INET, "0.0.0.0", 0, 0);
	expect_cidr("10.1.2.3:8080", 1, AF_INET, "10.1.2.3", 32, 8080);
	expect_cidr("192.168.0.0/16:443", 1, AF_INET, "192.168.0.0", 16, 443);
	expect_cidr("10.0.0.1:65535", 1, AF_INET, "10.0.0.1", 32, 65535);
}

static void test_cidr_parse_v6(void **state)
{
	(void)state;
	expect_cidr("::1", 0, AF_INET6, "::1", 128, 0);
	expect_cidr("fd00::/8", 0, AF_INET6, "fd00::", 8, 0);
	expect_cidr("::/0", 0, AF_INET6, "::", 0, 0);
	expect_cidr("[::1]", 0, AF_INET6, "::1", 128, 0);
	expect_cidr("[2001:db8::]/32", 0, AF_INET6, "2001:db8::", 32, 0);
	expect_cidr("[fd00::]/8:443", 1, AF_INET6, "fd00::", 8, 443);
	expect_cidr("[::1]:22", 1, AF_INET6, "::1", 128, 22);
}

/* An IPv6 address written with an embedded dotted quad (RFC 4291 2.2.3),
 * e.g. the NAT64 prefix 64:ff9b::/96, is still a bare IPv6 address. */
static void test_cidr_parse_v6_dotted_tail(void **state)
{
	(void)state;
	expect_cidr("[64:ff9b::192.0.2.1]", 0, AF_INET6, "64:ff9b::c000:201", 128, 0);
	expect_cidr("64:ff9b::192.0.2.0/120", 0, AF_INET6, "64:ff9b::c000:200", 120, 0);
}

static void test_cidr_parse_port_not_allowed(void **state)
{
	(void)state;
	struct sfy_cidr c;
	assert_int_equal(sfy_cidr_parse("10.1.2.3:8080", &c, 0), -1);
	assert_int_equal(sfy_cidr_parse("10.0.0.0/8:80", &c, 0), -1);
	assert_int_equal(sfy_cidr_parse("[::1]:22", &c, 0), -1);
	assert_int_equal(sfy_cidr_parse("[fd00::]/8:443", &c, 0), -1);
}

static void test_cidr_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "/8", ":80", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/8x",
		"10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:",
		"10.0.0.1:80x", "10.0.0.1:-80", "256.0.0.1", "10.0.0", "10.0.0.1 ", " 10.0.0.1",
		"example.com", "localhost", "::1/129", "fd00::/", "[::1", "[]", "[]/8",
		"[::1]x", "[::1]/129", "[::1]/8:", "[::1]/8:99999", "::g", "1.2.3.4.5",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sfy_cidr c;
		if (sfy_cidr_parse(bad[i], &c, 1) != -1)
			fail_msg("sfy_cidr_parse accepted \"%s\"", bad[i]);
	}
}

/* ---- sfy_cidr_match --------------------------------------------------- */

static void test_match_prefix_zero(void **state)
{
	(void)state;
	assert_true(match("0.0.0.0/0", "1.2.3.4", 1));
	assert_true(match("0.0.0.0/0", "255.255.255.255", 65535));
	assert_false(match("0.0.0.0/0", "::1", 1));
	assert_true(match("::/0", "2001:db8::1", 80));
	assert_false(match("::/0", "10.0.0.1", 80));
}

static void test_match_exact(void **state)
{
	(void)state;
	assert_true(match("10.1.2.3", "10.1.2.3", 80));
	assert_false(match("10.1.2.3", "10.1.2.4", 80));
	assert_true(match("2001:db8::1", "2001:db8::1", 80));
	assert_false(match("2001:db8::1", "2001:db8::2", 80));
}

static void test_match_odd_prefixes(void **state)
{
	(void)state;
	assert_true(match("10.0.16.0/20", "10.0.16.0", 0));
	assert_true(match("10.0.16.0/20", "10.0.31.255", 0));
	assert_false(match("10.0.16.0/20", "10.0.32.0", 0));
	assert_false(match("10.0.16.0/20", "10.0.15.255", 0));
	assert_true(match("128.0.0.0/1", "200.1.1.1", 0));
	assert_false(match("128.0.0.0/1", "127.255.255.255", 0));
	assert_true(match("10.0.0.0/31", "10.0.0.1", 0));
	assert_false(match("10.0.0.0/31", "10.0.0.2", 0));
	assert_true(match("fd00::/127", "fd00::", 0));
	assert_true(match("fd00::/127", "fd00::1", 0));
	assert_false(match("fd00::/127", "fd00::2", 0));
	assert_true(match("fd00::/7", "fc12::1", 0));
	assert_false(match("fd00::/8", "fc12::1", 0));
	/* Host bits in the rule itself are ignored beyond the prefix. */
	assert_true(match("10.1.2.3/8", "10.200.0.1", 0));
}

static void test_match_port_limited(void **state)
{
	(void)state;
	assert_true(match("10.1.2.3/32:8080", "10.1.2.3", 8080));
	assert_false(match("10.1.2.3/32:8080", "10.1.2.3", 80));
	assert_false(match("10.1.2.3/32:8080", "10.1.2.4", 8080));
	assert_true(match("[fd00::]/8:443", "fd12::5", 443));
	assert_false(match("[fd00::]/8:443", "fd12::5", 80));
	/* No port in the rule: any port. */
	assert_true(match("10.1.2.3", "10.1.2.3", 1));
	assert_true(match("10.1.2.3", "10.1.2.3", 65535));
}

static void test_match_v4_mapped(void **state)
{
	(void)state;
	assert_true(match("10.0.0.0/8", "::ffff:10.1.2.3", 80));
	assert_false(match("10.0.0.0/8", "::ffff:11.1.2.3", 80));
	assert_true(match("10.1.2.3:8080", "::ffff:10.1.2.3", 8080));
	assert_false(match("10.1.2.3:8080", "::ffff:10.1.2.3", 8081));
	/* Only v4-mapped addresses are folded, not every IPv6 ending alike. */
	assert_false(match("10.0.0.0/8", "::10.1.2.3", 80));
	assert_false(match("10.0.0.0/8", "64:ff9b::10.1.2.3", 80));
}

static void test_unmap_v4(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	struct sockaddr_in out;
	assert_int_equal(sfy_unmap_v4(sa_of(&ss, "10.0.0.1", 1), &out), 0);
	assert_int_equal(sfy_unmap_v4(sa_of(&ss, "2001:db8::1", 1), &out), 0);
	assert_int_equal(sfy_unmap_v4(sa_of(&ss, "::ffff:192.0.2.33", 4242), &out), 1);
	assert_int_equal(out.sin_family, AF_INET);
	assert_int_equal(ntohs(out.sin_port), 4242);
	assert_int_equal(ntohl(out.sin_addr.s_addr), 0xC0000221u);
}

/* ---- sfy_domain_match ------------------------------------------------- */

static void test_domain_match(void **state)
{
	(void)state;
	static const struct {
		const char *suffix, *name;
		int want;
	} cases[] = {
		{"example.com", "example.com", 1},
		{"example.com", "www.example.com", 1},
		{"example.com", "a.b.example.com", 1},
		{"example.com", "EXAMPLE.Com", 1},
		{"Example.COM", "www.example.com", 1},
		{"example.com", "example.com.", 1},
		{"example.com", "WWW.Example.com.", 1},
		{"com", "example.com", 1},
		{"ample.com", "example.com", 0},
		{"example.com", "ample.com", 0},
		{"example.com", "notexample.com", 0},
		{"example.com", "xexample.com", 0},
		{"example.com", "example.com.evil", 0},
		{"example.com", "example.co", 0},
		{"example.com", "example.org", 0},
		{"example.com", "", 0},
		{"example.com", ".", 0},
		{"", "example.com", 0},
		{"", "", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = sfy_domain_match(cases[i].suffix, cases[i].name);
		if (got != cases[i].want)
			fail_msg("sfy_domain_match(\"%s\", \"%s\") = %d, want %d", cases[i].suffix, cases[i].name,
				 got, cases[i].want);
	}
}

static void test_name_is_direct(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_false(sfy_name_is_direct(&cfg, "intranet.example"));
	assert_int_equal(sfy_config_parse_text(&cfg, "direct_domain = .intranet.example\ndirect_domain = corp\n", "t"), 0);
	assert_true(sfy_name_is_direct(&cfg, "intranet.example"));
	assert_true(sfy_name_is_direct(&cfg, "wiki.INTRANET.example."));
	assert_true(sfy_name_is_direct(&cfg, "git.corp"));
	assert_false(sfy_name_is_direct(&cfg, "myintranet.example"));
	assert_false(sfy_name_is_direct(&cfg, "corp.example"));
}

/* ---- sfy_addr_is_direct ----------------------------------------------- */

static void test_direct_loopback_default(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_true(is_direct(&cfg, "127.0.0.1", 80));
	assert_true(is_direct(&cfg, "127.255.255.254", 80));
	assert_true(is_direct(&cfg, "::1", 80));
	assert_true(is_direct(&cfg, "::ffff:127.0.0.1", 80));
	assert_false(is_direct(&cfg, "128.0.0.1", 80));
	assert_false(is_direct(&cfg, "10.0.0.1", 80));
	assert_false(is_direct(&cfg, "::2", 80));
	assert_false(is_direct(&cfg, "::ffff:10.0.0.1", 80));
}

static void test_direct_loopback_off(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "direct_loopback = no\n", "t"), 0);
	assert_false(is_direct(&cfg, "127.0.0.1", 80));
	assert_false(is_direct(&cfg, "::1", 80));
	assert_false(is_direct(&cfg, "::ffff:127.0.0.1", 80));
}

static void test_direct_rules(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	const char *text = "direct = 192.168.0.0/16\n"
			   "direct = 10.1.2.3:8080\n"
			   "direct = [fd00::]/8:443\n";
	assert_int_equal(sfy_config_parse_text(&cfg, text, "t"), 0);
	assert_int_equal(cfg.n_direct, 3);
	assert_true(is_direct(&cfg, "192.168.5.5", 1));
	assert_true(is_direct(&cfg, "::ffff:192.168.5.5", 1));
	assert_false(is_direct(&cfg, "192.169.0.1", 1));
	assert_true(is_direct(&cfg, "10.1.2.3", 8080));
	assert_false(is_direct(&cfg, "10.1.2.3", 80));
	assert_true(is_direct(&cfg, "::ffff:10.1.2.3", 8080));
	assert_true(is_direct(&cfg, "fd12::1", 443));
	assert_false(is_direct(&cfg, "fd12::1", 80));
	assert_false(is_direct(&cfg, "2001:db8::1", 443));
	assert_true(is_direct(&cfg, "127.0.0.1", 1)); /* loopback still on */
}

/* ---- sfy_addr_is_proxy ------------------------------------------------ */

static void test_is_proxy_default(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_true(is_proxy(&cfg, "127.0.0.1", 1080));
	assert_true(is_proxy(&cfg, "::ffff:127.0.0.1", 1080));
	assert_false(is_proxy(&cfg, "127.0.0.1", 1081));
	assert_false(is_proxy(&cfg, "127.0.0.2", 1080));
	assert_false(is_proxy(&cfg, "::1", 1080));
	assert_false(is_proxy(&cfg, "::ffff:127.0.0.1", 1081));
}

static void test_is_proxy_v6(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[256];
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_proxy_url(&cfg, "socks5h://[2001:db8::7]:9050", err, sizeof err), 0);
	assert_true(is_proxy(&cfg, "2001:db8::7", 9050));
	assert_false(is_proxy(&cfg, "2001:db8::7", 1080));
	assert_false(is_proxy(&cfg, "2001:db8::8", 9050));
	assert_false(is_proxy(&cfg, "127.0.0.1", 1080));
}

static void test_is_proxy_v4_other(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[256];
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_proxy_url(&cfg, "socks5://192.0.2.10:1", err, sizeof err), 0);
	assert_true(is_proxy(&cfg, "192.0.2.10", 1));
	assert_true(is_proxy(&cfg, "::ffff:192.0.2.10", 1));
	assert_false(is_proxy(&cfg, "127.0.0.1", 1080));
}

/* ---- sfy_dns_intercepted: port-53 answering ---------------------------- */

static int intercepted(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	return sfy_dns_intercepted(cfg, sa_of(&ss, addr, port));
}

static void test_dns_intercepted(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	/* Loopback is direct by default: its port 53 is answered here. */
	assert_true(intercepted(&cfg, "127.0.0.53", 53));
	assert_true(intercepted(&cfg, "127.0.0.1", 53));
	assert_true(intercepted(&cfg, "::1", 53));
	assert_true(intercepted(&cfg, "::ffff:127.0.0.53", 53));
	assert_false(intercepted(&cfg, "127.0.0.53", 5353)); /* not port 53 */
	/* A proxied destination stays ordinary UDP/TCP (refused / proxied). */
	assert_false(intercepted(&cfg, "192.0.2.1", 53));
	/* A direct rule makes its port 53 ours too. */
	cfg.direct[cfg.n_direct++] = cidr("192.0.2.0/24");
	assert_true(intercepted(&cfg, "192.0.2.1", 53));
	/* direct_dns: that resolver really gets the packets, others do not. */
	cfg.direct_dns[cfg.n_direct_dns++] = cidr("127.0.0.53:53");
	assert_false(intercepted(&cfg, "127.0.0.53", 53));
	assert_false(intercepted(&cfg, "::ffff:127.0.0.53", 53));
	assert_true(intercepted(&cfg, "127.0.0.1", 53));
	cfg.direct_dns[cfg.n_direct_dns++] = cidr("[::1]:53");
	assert_false(intercepted(&cfg, "::1", 53));
	/* With loopback not direct, loopback's port 53 is not ours. */
	cfg.direct_loopback = 0;
	assert_false(intercepted(&cfg, "127.0.0.1", 53));
	/* remote_dns = no: DNS goes out as sent. */
	cfg.direct_loopback = 1;
	cfg.remote_dns = 0;
	assert_false(intercepted(&cfg, "127.0.0.1", 53));
	assert_false(intercepted(&cfg, "192.0.2.1", 53));
}

static void test_dns_intercepted_not_the_proxy(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	struct sockaddr_in *p = (struct sockaddr_in *)&cfg.proxy;
	p->sin_port = htons(53); /* a proxy on 127.0.0.1:53 stays the proxy */
	assert_false(intercepted(&cfg, "127.0.0.1", 53));
	assert_true(intercepted(&cfg, "127.0.0.2", 53));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_v4_round_trip),
		cmocka_unit_test(test_dns_intercepted),
		cmocka_unit_test(test_dns_intercepted_not_the_proxy),
		cmocka_unit_test(test_cidr_parse_v4),
		cmocka_unit_test(test_cidr_parse_v6),
		cmocka_unit_test(test_cidr_parse_v6_dotted_tail),
		cmocka_unit_test(test_cidr_parse_port_not_allowed),
		cmocka_unit_test(test_cidr_parse_bad),
		cmocka_unit_test(test_match_prefix_zero),
		cmocka_unit_test(test_match_exact),
		cmocka_unit_test(test_match_odd_prefixes),
		cmocka_unit_test(test_match_port_limited),
		cmocka_unit_test(test_match_v4_mapped),
		cmocka_unit_test(test_unmap_v4),
		cmocka_unit_test(test_domain_match),
		cmocka_unit_test(test_name_is_direct),
		cmocka_unit_test(test_direct_loopback_default),
		cmocka_unit_test(test_direct_loopback_off),
		cmocka_unit_test(test_direct_rules),
		cmocka_unit_test(test_is_proxy_default),
		cmocka_unit_test(test_is_proxy_v6),
		cmocka_unit_test(test_is_proxy_v4_other),
	};
	return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
