/* Unit tests for the config file parser and the proxy URL parser
 * (shim/config.c): defaults, every key, "file:line: key: why" errors. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sfy_config.h"

/* ---- helpers ---------------------------------------------------------- */

static char *repeat_char(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void expect_v4_proxy(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->proxy;
	struct in_addr want;
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(cfg->proxy_len, sizeof *sin);
	assert_int_equal(sin->sin_addr.s_addr, want.s_addr);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void expect_v6_proxy(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cfg->proxy;
	struct in6_addr want;
	assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(cfg->proxy_len, sizeof *sin6);
	assert_memory_equal(&sin6->sin6_addr, &want, 16);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void expect_cidr(const struct sfy_cidr *c, int family, const char *addr, int prefix, uint16_t port)
{
	uint8_t want[16] = {0};
	assert_int_equal(c->family, family);
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(c->addr, want, family == AF_INET ? 4 : 16);
	assert_int_equal(c->prefix, prefix);
	assert_int_equal(c->port, port);
}

/* Parse text as file "t.conf" from defaults; the error must equal want. */
static void expect_error(const char *text, const char *want)
{
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	int rc = sfy_config_parse_text(&cfg, text, "t.conf");
	if (rc != -1)
		fail_msg("accepted: \"%s\"", text);
	if (strcmp(cfg.error, want) != 0)
		fail_msg("error for \"%s\":\n  got  \"%s\"\n  want \"%s\"", text, cfg.error, want);
}

/* Same, but only the start of the message is fixed. */
static void expect_error_prefix(const char *text, const char *prefix)
{
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	int rc = sfy_config_parse_text(&cfg, text, "t.conf");
	if (rc != -1)
		fail_msg("accepted: \"%s\"", text);
	if (strncmp(cfg.error, prefix, strlen(prefix)) != 0)
		fail_msg("error for \"%s\":\n  got  \"%s\"\n  want prefix \"%s\"", text, cfg.error, prefix);
}

static int parse_url(struct sfy_config *cfg, const char *url, char *err, size_t errlen)
{
	sfy_config_defaults(cfg);
	err[0] = '\0';
	return sfy_config_parse_proxy_url(cfg, url, err, errlen);
}

static void expect_url_rejected(const char *url, const char *err_part)
{
	struct sfy_config cfg;
	char err[SFY_ERR_MAX];
	if (parse_url(&cfg, url, err, sizeof err) != -1)
		fail_msg("proxy URL accepted: \"%.80s\"", url);
	if (!strstr(err, err_part))
		fail_msg("proxy URL \"%.80s\": error \"%s\" lacks \"%s\"", url, err, err_part);
}

/* ---- defaults --------------------------------------------------------- */

static void test_defaults(void **state)
{
	(void)state;
	struct sfy_config cfg;
	memset(&cfg, 0x5A, sizeof cfg);
	sfy_config_defaults(&cfg);
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.error, "");
	assert_string_equal(cfg.source, "");
	expect_v4_proxy(&cfg, "127.0.0.1", 1080);
	assert_string_equal(cfg.proxy_text, "127.0.0.1:1080");
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.pass, "");
	assert_int_equal(cfg.remote_dns, 1);
	assert_int_equal(cfg.n_direct, 0);
	assert_int_equal(cfg.n_direct_domain, 0);
	assert_int_equal(cfg.direct_loopback, 1);
	expect_cidr(&cfg.fake4, AF_INET, "240.0.0.0", 4, 0);
	expect_cidr(&cfg.fake6, AF_INET6, "100::", 64, 0);
	assert_int_equal(cfg.fake_pool_size, 16384);
	assert_int_equal(cfg.udp_mode, SFY_UDP_PROXY);
	assert_int_equal(cfg.connect_timeout_ms, 10000);
	assert_int_equal(cfg.handshake_timeout_ms, 10000);
	assert_int_equal(cfg.log_level, SFY_LOG_WARN);
	assert_string_equal(cfg.log_file, "");
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_NO);
}

/* ---- every key -------------------------------------------------------- */

static const char all_keys[] =
	"proxy = socks5h://10.0.0.1:9050\n"
	"username = alice\n"
	"password = s3cr=t\n"
	"remote_dns = no\n"
	"direct = 192.168.0.0/16\n"
	"direct = 10.1.2.3/32:8080\n"
	"direct = [fd00::]/8:443\n"
	"direct_domain = .intranet.example\n"
	"direct_domain = corp.local\n"
	"direct_loopback = off\n"
	"fake_ipv4 = 10.200.0.0/16\n"
	"fake_pool_size = 4096\n"
	"udp = allow\n"
	"connect_timeout = 2.5\n"
	"handshake_timeout = 0.25\n"
	"log_level = debug\n"
	"log_file = /tmp/sfy.log\n";

static void test_every_key(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, all_keys, "t.conf"), 0);
	expect_v4_proxy(&cfg, "10.0.0.1", 9050);
	assert_string_equal(cfg.proxy_text, "10.0.0.1:9050");
	assert_string_equal(cfg.user, "alice");
	assert_string_equal(cfg.pass, "s3cr=t"); /* only the first '=' splits */
	assert_int_equal(cfg.remote_dns, 0);      /* the later line wins */
	assert_int_equal(cfg.n_direct, 3);
	expect_cidr(&cfg.direct[0], AF_INET, "192.168.0.0", 16, 0);
	expect_cidr(&cfg.direct[1], AF_INET, "10.1.2.3", 32, 8080);
	expect_cidr(&cfg.direct[2], AF_INET6, "fd00::", 8, 443);
	assert_int_equal(cfg.n_direct_domain, 2);
	assert_string_equal(cfg.direct_domain[0], "intranet.example");
	assert_string_equal(cfg.direct_domain[1], "corp.local");
	assert_int_equal(cfg.direct_loopback, 0);
	expect_cidr(&cfg.fake4, AF_INET, "10.200.0.0", 16, 0);
	expect_cidr(&cfg.fake6, AF_INET6, "100::", 64, 0); /* see test_fake_ipv6_key */
	assert_int_equal(cfg.fake_pool_size, 4096);
	assert_int_equal(cfg.udp_mode, SFY_UDP_ALLOW);
	assert_int_equal(cfg.connect_timeout_ms, 2500);
	assert_int_equal(cfg.handshake_timeout_ms, 250);
	assert_int_equal(cfg.log_level, SFY_LOG_DEBUG);
	assert_string_equal(cfg.log_file, "/tmp/sfy.log");
}

/* fake_ipv6 must set the IPv6 range, and only that. */
static void test_fake_ipv6_key(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	int rc = sfy_config_parse_text(&cfg, "fake_ipv6 = fd99::/120\n", "t.conf");
	if (rc != 0)
		fail_msg("fake_ipv6 = fd99::/120 rejected: %s", cfg.error);
	expect_cidr(&cfg.fake6, AF_INET6, "fd99::", 120, 0);
	expect_cidr(&cfg.fake4, AF_INET, "240.0.0.0", 4, 0);
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "fake_ipv6 = 10.0.0.0/8\n", "t.conf"), -1);
}

static void test_bool_spellings(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		int want;
	} cases[] = {{"yes", 1}, {"true", 1}, {"on", 1}, {"1", 1}, {"YES", 1}, {"True", 1},
		     {"no", 0}, {"false", 0}, {"off", 0}, {"0", 0}, {"No", 0}, {"OFF", 0}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sfy_config cfg;
		char text[64];
		sfy_config_defaults(&cfg);
		cfg.remote_dns = !cases[i].want;
		snprintf(text, sizeof text, "remote_dns = %s\n", cases[i].v);
		assert_int_equal(sfy_config_parse_text(&cfg, text, "t.conf"), 0);
		assert_int_equal(cfg.remote_dns, cases[i].want);
	}
}

static void test_timeouts_and_levels(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "connect_timeout = 0.001\nhandshake_timeout = 3600\n", "t"), 0);
	assert_int_equal(cfg.connect_timeout_ms, 1);
	assert_int_equal(cfg.handshake_timeout_ms, 3600000);
	/* 0: no limit of socksify's own (the kernel's and the program's apply) */
	assert_int_equal(sfy_config_parse_text(&cfg, "connect_timeout = 0\nhandshake_timeout = 0.0\nbind_timeout = 00\n", "t"), 0);
	assert_int_equal(cfg.connect_timeout_ms, 0);
	assert_int_equal(cfg.handshake_timeout_ms, 0);
	assert_int_equal(cfg.bind_timeout_ms, 0);
	assert_int_equal(sfy_config_parse_text(&cfg, "log_level = ERROR\nudp = block\n", "t"), 0);
	assert_int_equal(cfg.log_level, SFY_LOG_ERROR);
	assert_int_equal(cfg.udp_mode, SFY_UDP_BLOCK);
	assert_int_equal(sfy_log_level_parse("info"), SFY_LOG_INFO);
	assert_int_equal(sfy_log_level_parse("Warn"), SFY_LOG_WARN);
	assert_int_equal(sfy_log_level_parse("verbose"), -1);
	assert_int_equal(sfy_log_level_parse(""), -1);
}

static void test_comments_blank_whitespace(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	const char *text = "# a comment\n"
			   "\n"
			   "   \t\n"
			   "   # indented comment = with equals\n"
			   "\tlog_level\t=\tinfo   \r\n"
			   "udp=allow";
	assert_int_equal(sfy_config_parse_text(&cfg, text, "t.conf"), 0);
	assert_int_equal(cfg.log_level, SFY_LOG_INFO);
	assert_int_equal(cfg.udp_mode, SFY_UDP_ALLOW);
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "", "t.conf"), 0);
	assert_int_equal(sfy_config_parse_text(&cfg, "\n\n\n", "t.conf"), 0);
	/* Line numbers count the comment and blank lines. */
	expect_error("# one\n\n  # three\nbogus = 1\n", "t.conf:4: bogus: unknown key");
}

static void test_line_of_max_length(void **state)
{
	(void)state;
	char *text = repeat_char('x', SFY_MAX_LINE + 1);
	text[0] = '#';
	text[SFY_MAX_LINE] = '\n'; /* a 1024-byte comment line, then the newline */
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, text, "t.conf"), 0);
	free(text);
}

/* ---- errors ----------------------------------------------------------- */

static void test_error_messages(void **state)
{
	(void)state;
	expect_error("bogus = 1\n", "t.conf:1: bogus: unknown key");
	expect_error("log_level = info\n\nlog_level\n", "t.conf:3: expected 'key = value'");
	expect_error("remote_dns = maybe\n", "t.conf:1: remote_dns: expected yes or no");
	expect_error("direct_loopback = 2\n", "t.conf:1: direct_loopback: expected yes or no");
	expect_error("udp = drop\n", "t.conf:1: udp: expected proxy, block or allow");
	expect_error("log_level = loud\n", "t.conf:1: log_level: expected error, warn, info or debug");
	expect_error("log_file = relative.log\n", "t.conf:1: log_file: expected an absolute path");
	expect_error("username =\n", "t.conf:1: username: value must be 1 to 255 bytes");
	expect_error("fake_pool_size = 15\n", "t.conf:1: fake_pool_size: expected a number from 16 to 1048576");
	expect_error("direct_domain = a/b\n", "t.conf:1: direct_domain: expected a domain name such as example.com");
	expect_error("direct_domain = .\n", "t.conf:1: direct_domain: expected a domain name such as example.com");
	expect_error_prefix("direct = 10.0.0.0/33\n", "t.conf:1: direct: expected ADDRESS");
	expect_error_prefix("direct = example.com\n", "t.conf:1: direct: expected ADDRESS");
	expect_error_prefix("proxy = https://127.0.0.1:3128\n", "t.conf:1: proxy: proxy URL: must start with");
}

static void test_direct_dns(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(cfg.n_direct_dns, 0);
	assert_int_equal(sfy_config_parse_text(&cfg,
					       "direct_dns = 127.0.0.53\n"
					       "direct_dns = 192.0.2.1:5353\n"
					       "direct_dns = ::1\n"
					       "direct_dns = [2001:db8::1]:54\n",
					       "t.conf"),
			 0);
	assert_int_equal(cfg.n_direct_dns, 4);
	expect_cidr(&cfg.direct_dns[0], AF_INET, "127.0.0.53", 32, 53); /* port 53 unless given */
	expect_cidr(&cfg.direct_dns[1], AF_INET, "192.0.2.1", 32, 5353);
	expect_cidr(&cfg.direct_dns[2], AF_INET6, "::1", 128, 53);
	expect_cidr(&cfg.direct_dns[3], AF_INET6, "2001:db8::1", 128, 54);
}

static void test_direct_dns_errors(void **state)
{
	(void)state;
	static const char want[] = "t.conf:1: direct_dns: expected ADDRESS[:PORT], IPv6 with a port as [ADDRESS]:PORT";
	expect_error("direct_dns = 127.0.0.0/8\n", want); /* one resolver, not a block */
	expect_error("direct_dns = resolver.example\n", want);
	expect_error("direct_dns = 127.0.0.1:0\n", want);
	expect_error("direct_dns = 127.0.0.1:65536\n", want);
	expect_error("direct_dns = \n", want);
	char text[40 * 20] = "";
	for (int i = 0; i <= SFY_MAX_DIRECT_DNS; i++)
		strcat(text, "direct_dns = 127.0.0.1\n");
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, text, "t.conf"), -1);
	assert_string_equal(cfg.error, "t.conf:17: direct_dns: too many direct_dns entries (at most 16)");
}

static void test_error_timeouts(void **state)
{
	(void)state;
	static const char *const bad[] = {"0.0001", "0.0009", "3600.5", "-1", "abc", "1s", "", "nan", "inf", "1e9"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "connect_timeout = %s\n", bad[i]);
		expect_error(text, "t.conf:1: connect_timeout: expected seconds (0.001 to 3600, or 0 for no limit)");
		snprintf(text, sizeof text, "handshake_timeout = %s\n", bad[i]);
		expect_error(text, "t.conf:1: handshake_timeout: expected seconds (0.001 to 3600, or 0 for no limit)");
	}
}

static void test_error_fake_ranges(void **state)
{
	(void)state;
	const char *v4 = "expected an IPv4 block of /24 or larger";
	const char *v6 = "expected an IPv6 block of /120 or larger";
	struct {
		const char *line, *why;
	} cases[] = {
		{"fake_ipv4 = 10.0.0.0/25", v4}, {"fake_ipv4 = fd00::/64", v4}, {"fake_ipv4 = 10.0.0.0/8:80", v4},
		{"fake_ipv6 = fd00::/121", v6}, {"fake_ipv6 = 10.0.0.0/8", v6}, {"fake_ipv6 = nonsense", v6},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char want[160];
		size_t klen = strcspn(cases[i].line, " ");
		snprintf(want, sizeof want, "t.conf:1: %.*s: %s", (int)klen, cases[i].line, cases[i].why);
		expect_error(cases[i].line, want);
	}
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "fake_ipv4 = 10.0.0.0/24\nfake_ipv6 = fd00::/120\n", "t"), 0);
}

static void test_error_too_many_direct(void **state)
{
	(void)state;
	size_t cap = (SFY_MAX_DIRECT + 1) * 32;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t n = 0;
	for (int i = 0; i <= SFY_MAX_DIRECT; i++)
		n += (size_t)snprintf(text + n, cap - n, "direct = 10.0.%d.0/24\n", i);
	char want[128];
	snprintf(want, sizeof want, "t.conf:%d: direct: too many direct rules (at most 64)", SFY_MAX_DIRECT + 1);
	expect_error(text, want);
	/* Exactly SFY_MAX_DIRECT rules are fine. */
	text[strlen(text) - 1] = '\0';
	*strrchr(text, '\n') = '\0';
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, text, "t.conf"), 0);
	assert_int_equal(cfg.n_direct, SFY_MAX_DIRECT);
	free(text);
}

static void test_error_long_line(void **state)
{
	(void)state;
	char *text = malloc(SFY_MAX_LINE + 64);
	assert_non_null(text);
	strcpy(text, "log_level = info\n# ");
	size_t n = strlen(text);
	memset(text + n, 'x', SFY_MAX_LINE - 1); /* "# " + 1023 = 1025 bytes */
	strcpy(text + n + SFY_MAX_LINE - 1, "\nlog_level = info\n");
	expect_error(text, "t.conf:2: line longer than 1024 bytes");
	free(text);
}

static void test_error_not_hidden_by_later_line(void **state)
{
	(void)state;
	expect_error("log_level = loud\nlog_level = info\n", "t.conf:1: log_level: expected error, warn, info or debug");
	expect_error("udp = allow\nbogus\nudp = block\nlog_level = debug\n", "t.conf:2: expected 'key = value'");
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "remote_dns = perhaps\nremote_dns = no\n", "t"), -1);
	assert_non_null(strstr(cfg.error, "t:1: remote_dns:"));
}

/* ---- proxy URLs ------------------------------------------------------- */

static void test_url_schemes(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[SFY_ERR_MAX];
	assert_int_equal(parse_url(&cfg, "socks5h://127.0.0.1:1080", err, sizeof err), 0);
	assert_int_equal(cfg.remote_dns, 1);
	assert_int_equal(parse_url(&cfg, "socks5://10.2.3.4:1081", err, sizeof err), 0);
	assert_int_equal(cfg.remote_dns, 0);
	expect_v4_proxy(&cfg, "10.2.3.4", 1081);
	assert_string_equal(cfg.proxy_text, "10.2.3.4:1081");
	assert_string_equal(cfg.user, "");
	expect_url_rejected("https://127.0.0.1:1080", "socks5://");
	expect_url_rejected("socks://127.0.0.1:1080", "socks5://");
	expect_url_rejected("socks5h:/127.0.0.1:1080", "socks5://");
	expect_url_rejected("", "socks5://");
}

static void test_url_credentials(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[SFY_ERR_MAX];
	assert_int_equal(parse_url(&cfg, "socks5h://alice:s%40cr%3At@10.0.0.1:9050", err, sizeof err), 0);
	assert_string_equal(cfg.user, "alice");
	assert_string_equal(cfg.pass, "s@cr:t");
	expect_v4_proxy(&cfg, "10.0.0.1", 9050);
	assert_int_equal(parse_url(&cfg, "socks5://al%69ce@10.0.0.1", err, sizeof err), 0);
	assert_string_equal(cfg.user, "alice");
	assert_string_equal(cfg.pass, "");
	/* '%' not followed by two hex digits stays literal. */
	assert_int_equal(parse_url(&cfg, "socks5://a%zz:p%4@10.0.0.1", err, sizeof err), 0);
	assert_string_equal(cfg.user, "a%zz");
	assert_string_equal(cfg.pass, "p%4");
	expect_url_rejected("socks5h://@127.0.0.1", "user name");
	expect_url_rejected("socks5h://:pw@127.0.0.1", "user name");
	expect_url_rejected("socks5h://a%00b:pw@127.0.0.1", "user name");
}

static void test_url_credential_lengths(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[SFY_ERR_MAX], url[1024];
	char *u255 = repeat_char('u', 255), *u256 = repeat_char('u', 256);
	snprintf(url, sizeof url, "socks5h://%s:%s@127.0.0.1", u255, u255);
	assert_int_equal(parse_url(&cfg, url, err, sizeof err), 0);
	assert_string_equal(cfg.user, u255);
	assert_string_equal(cfg.pass, u255);
	snprintf(url, sizeof url, "socks5h://%s:pw@127.0.0.1", u256);
	expect_url_rejected(url, "longer than 255");
	snprintf(url, sizeof url, "socks5h://user:%s@127.0.0.1", u256);
	expect_url_rejected(url, "longer than 255");
	/* 255 escaped bytes decode to 255: fine; 256 are too many. */
	size_t n = (size_t)snprintf(url, sizeof url, "socks5h://");
	for (int i = 0; i < 255; i++)
		n += (size_t)snprintf(url + n, sizeof url - n, "%%41");
	snprintf(url + n, sizeof url - n, "@127.0.0.1");
	assert_int_equal(parse_url(&cfg, url, err, sizeof err), 0);
	assert_int_equal(strlen(cfg.user), 255);
	snprintf(url + n, sizeof url - n, "%%41@127.0.0.1");
	expect_url_rejected(url, "longer than 255");
	free(u255);
	free(u256);
}

static void test_url_hosts_and_ports(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char err[SFY_ERR_MAX];
	assert_int_equal(parse_url(&cfg, "socks5h://[::1]:1081", err, sizeof err), 0);
	expect_v6_proxy(&cfg, "::1", 1081);
	assert_string_equal(cfg.proxy_text, "[::1]:1081");
	assert_int_equal(parse_url(&cfg, "socks5h://[2001:db8::5]", err, sizeof err), 0);
	expect_v6_proxy(&cfg, "2001:db8::5", 1080);
	assert_int_equal(parse_url(&cfg, "socks5h://localhost:1082", err, sizeof err), 0);
	expect_v4_proxy(&cfg, "127.0.0.1", 1082);
	assert_int_equal(parse_url(&cfg, "socks5h://10.0.0.9", err, sizeof err), 0);
	expect_v4_proxy(&cfg, "10.0.0.9", 1080);
	assert_int_equal(parse_url(&cfg, "socks5h://10.0.0.9/", err, sizeof err), 0);
	expect_v4_proxy(&cfg, "10.0.0.9", 1080);
	assert_int_equal(parse_url(&cfg, "socks5h://10.0.0.9:65535/", err, sizeof err), 0);
	expect_v4_proxy(&cfg, "10.0.0.9", 65535);
	assert_int_equal(parse_url(&cfg, "socks5h://u:p@[::1]:1", err, sizeof err), 0);
	expect_v6_proxy(&cfg, "::1", 1);
	assert_string_equal(cfg.user, "u");
}

static void test_url_rejects(void **state)
{
	(void)state;
	expect_url_rejected("socks5h://proxy.example.com:1080", "proxy.example.com");
	expect_url_rejected("socks5h://127.0.0.1:0", "bad port");
	expect_url_rejected("socks5h://127.0.0.1:65536", "bad port");
	expect_url_rejected("socks5h://127.0.0.1:", "bad port");
	expect_url_rejected("socks5h://127.0.0.1:http", "bad port");
	expect_url_rejected("socks5h://127.0.0.1:1080/x", "bad port");
	expect_url_rejected("socks5h://:1080", "bad host");
	expect_url_rejected("socks5h://", "bad host");
	expect_url_rejected("socks5h://[::1", "']'");
	expect_url_rejected("socks5h://[::1]x", "']'");
	expect_url_rejected("socks5h://[::1]:", "bad port");
	expect_url_rejected("socks5h://::1:1080", "bad host");
	expect_url_rejected("socks5h://[example.com]:1080", "example.com");
	expect_url_rejected("socks5h://256.1.1.1:1080", "256.1.1.1");
}

/* Junk after the host must be refused as it is after a port or after ']'. */
static void test_url_rejects_path_after_host(void **state)
{
	(void)state;
	expect_url_rejected("socks5h://127.0.0.1/x", "proxy URL");
}

static void test_url_too_long(void **state)
{
	(void)state;
	char *url = repeat_char('1', SFY_MAX_LINE + 8);
	memcpy(url, "socks5h://", 10);
	expect_url_rejected(url, "too long");
	free(url);
}

/* sealed = no|yes|auto: read for socksify-sealed; the last line wins. */
static void test_sealed_key(void **state)
{
	(void)state;
	struct sfy_config cfg;
	sfy_config_defaults(&cfg);
	assert_int_equal(sfy_config_parse_text(&cfg, "sealed = auto\n", "t"), 0);
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_AUTO);
	assert_int_equal(sfy_config_parse_text(&cfg, "sealed = yes # always\n", "t"), 0);
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_YES);
	assert_int_equal(sfy_config_parse_text(&cfg, "sealed = no\n", "t"), 0);
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_NO);
	assert_int_equal(sfy_config_parse_text(&cfg, "sealed = true\nsealed=off\n", "t"), 0);
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_NO);
	sfy_config_defaults(&cfg);
	assert_int_equal(cfg.sealed_mode, SFY_SEALED_NO);
	expect_error("sealed = maybe\n", "t.conf:1: sealed: expected no, yes or auto");
	expect_error("sealed = AUTOMATIC\n", "t.conf:1: sealed: expected no, yes or auto");
	expect_error("sealed =\n", "t.conf:1: sealed: expected no, yes or auto");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_fake_ipv6_key),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_timeouts_and_levels),
		cmocka_unit_test(test_comments_blank_whitespace),
		cmocka_unit_test(test_line_of_max_length),
		cmocka_unit_test(test_error_messages),
		cmocka_unit_test(test_direct_dns),
		cmocka_unit_test(test_direct_dns_errors),
		cmocka_unit_test(test_error_timeouts),
		cmocka_unit_test(test_error_fake_ranges),
		cmocka_unit_test(test_error_too_many_direct),
		cmocka_unit_test(test_error_long_line),
		cmocka_unit_test(test_error_not_hidden_by_later_line),
		cmocka_unit_test(test_url_schemes),
		cmocka_unit_test(test_url_credentials),
		cmocka_unit_test(test_url_credential_lengths),
		cmocka_unit_test(test_url_hosts_and_ports),
		cmocka_unit_test(test_url_rejects),
		cmocka_unit_test(test_url_rejects_path_after_host),
		cmocka_unit_test(test_url_too_long),
		cmocka_unit_test(test_sealed_key),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
