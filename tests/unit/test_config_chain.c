/* Unit tests for chains, proxy lines and route rules in the config
 * (shim/config_chain.c, shim/config_route.c; issue 14). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfy_config.h"
#include "sfy_gss.h"

static struct sfy_config cfg; /* large: off the stack */

static int parse(const char *text)
{
	sfy_config_defaults(&cfg);
	return sfy_config_parse_text(&cfg, text, "t.conf");
}

static void expect_ok(const char *text)
{
	if (parse(text) != 0)
		fail_msg("rejected: \"%s\": %s", text, cfg.error);
}

static void expect_error(const char *text, const char *part)
{
	if (parse(text) != -1)
		fail_msg("accepted: \"%s\"", text);
	if (!strstr(cfg.error, part))
		fail_msg("error for \"%s\":\n  got  \"%s\"\n  want \"%s\" in it", text, cfg.error, part);
}

static void expect_hop_v4(const struct sfy_chain_hop *h, const char *addr, uint16_t port)
{
	uint8_t want[4];
	assert_int_equal(inet_pton(AF_INET, addr, want), 1);
	assert_int_equal(h->addr.atyp, 0x01);
	assert_memory_equal(h->addr.u.ipv4, want, 4);
	assert_int_equal(h->addr.port, port);
}

static void expect_hop_name(const struct sfy_chain_hop *h, const char *name, uint16_t port)
{
	assert_int_equal(h->addr.atyp, 0x03);
	assert_string_equal(h->addr.u.domain.name, name);
	assert_int_equal(h->addr.u.domain.len, strlen(name));
	assert_int_equal(h->addr.port, port);
	assert_int_equal(h->salen, 0); /* never resolved here */
}

/* ---- chains and proxy lines ------------------------------------------- */

static void test_every_scheme(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://10.0.0.1, socks5://10.0.0.2:1081, socks4://10.0.0.3, socks4a://10.0.0.4:9, "
		  "http://10.0.0.5\n");
	const struct sfy_chain *c = &cfg.routes[0];
	assert_int_equal(cfg.n_routes, 1);
	assert_int_equal(c->n, 5);
	static const int types[] = {SFY_HOP_SOCKS5, SFY_HOP_SOCKS5, SFY_HOP_SOCKS4, SFY_HOP_SOCKS4A, SFY_HOP_HTTP};
	for (int i = 0; i < 5; i++)
		assert_int_equal(c->hop[i].hop.type, types[i]);
	expect_hop_v4(&c->hop[0], "10.0.0.1", 1080);
	expect_hop_v4(&c->hop[1], "10.0.0.2", 1081);
	expect_hop_v4(&c->hop[4], "10.0.0.5", 8080); /* http's default port */
	assert_string_equal(c->hop[0].text, "socks5h://10.0.0.1:1080");
	assert_string_equal(c->hop[4].text, "http://10.0.0.5:8080");
	/* hop 1 is cfg->proxy; only it has a socket address */
	assert_int_equal(c->hop[0].salen, sizeof(struct sockaddr_in));
	assert_memory_equal(&cfg.proxy, &c->hop[0].sa, sizeof(struct sockaddr_in));
	assert_string_equal(cfg.proxy_text, "10.0.0.1:1080");
	assert_int_equal(c->hop[1].salen, 0);
	/* the last hop's scheme says nothing of DNS here (http): the default stays */
	assert_int_equal(cfg.remote_dns, 1);
	expect_ok("proxy = socks5h://10.0.0.1, socks5://10.0.0.2\n");
	assert_int_equal(cfg.remote_dns, 0); /* socks5:// last hop: local DNS */
	expect_ok("proxy = socks4a://10.0.0.1\n");
	assert_int_equal(cfg.routes[0].hop[0].hop.type, SFY_HOP_SOCKS4A);
}

static void test_later_hops_by_name(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://127.0.0.1:1080, socks5h://inner.example:1085, socks4://files.test\n");
	const struct sfy_chain *c = &cfg.routes[0];
	assert_int_equal(c->n, 3);
	expect_hop_name(&c->hop[1], "inner.example", 1085);
	expect_hop_name(&c->hop[2], "files.test", 1080); /* socks4 named as a later hop: sent by hop 2 */
	assert_string_equal(c->hop[1].text, "socks5h://inner.example:1085");
	expect_ok("proxy = socks5://127.0.0.1, socks5://[2001:db8::1]:7\n");
	assert_int_equal(cfg.routes[0].hop[1].addr.atyp, 0x04);
	assert_string_equal(cfg.routes[0].hop[1].text, "socks5://[2001:db8::1]:7");
	/* localhost after hop 1 is the previous hop's: a name */
	expect_ok("proxy = socks5://127.0.0.1, http://localhost:3128\n");
	expect_hop_name(&cfg.routes[0].hop[1], "localhost", 3128);
}

/* A socks4 hop can only ask the next for an IPv4 address. */
static void test_socks4_hop_needs_ipv4_next(void **state)
{
	(void)state;
	expect_error("proxy = socks4://127.0.0.1, socks5://inner.example\n", "hop 1 is socks4");
	expect_error("proxy = socks4://127.0.0.1, socks5://[2001:db8::1]\n", "hop 2 is IPv6");
	expect_ok("proxy = socks4://127.0.0.1, socks5://10.1.1.1\n");
	expect_ok("proxy = socks4a://127.0.0.1, socks5://inner.example\n");
}

static void test_hop1_from_hosts_file(void **state)
{
	(void)state;
	char path[] = "/tmp/sfy-hosts-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char text[] = "# test\n192.0.2.44 gateway gw # comment\n2001:db8::44 gw6\n";
	assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	sfy_config_hosts_file = path;
	expect_ok("proxy = socks5h://gw:1090\n");
	expect_hop_v4(&cfg.routes[0].hop[0], "192.0.2.44", 1090);
	assert_string_equal(cfg.proxy_text, "192.0.2.44:1090");
	assert_string_equal(cfg.routes[0].hop[0].text, "socks5h://gw:1090");
	expect_ok("proxy = http://gw6:3128\n");
	assert_int_equal(cfg.proxy.ss_family, AF_INET6);
	assert_string_equal(cfg.proxy_text, "[2001:db8::44]:3128");
	expect_error("proxy = socks5h://not-there:1080\n", "not-there");
	expect_error("proxy = socks5h://not-there:1080\n", "/etc/hosts");
	sfy_config_hosts_file = "/nonexistent/hosts";
	expect_error("proxy = socks5h://gw:1080\n", "'gw'");
	unlink(path);
	sfy_config_hosts_file = "/etc/hosts";
}

static void test_repeated_proxy_lines(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://10.0.0.1:1\nproxy = socks5h://10.0.0.2:2, socks5h://10.0.0.3:3\n"
		  "proxy = http://10.0.0.4:4\n");
	assert_int_equal(cfg.n_routes, 3);
	assert_int_equal(cfg.routes[1].n, 2);
	expect_hop_v4(&cfg.routes[2].hop[0], "10.0.0.4", 4);
	assert_string_equal(cfg.proxy_text, "10.0.0.1:1"); /* route 1's hop 1 */
	/* No proxy line: route 1 is the default proxy. */
	expect_ok("pick = round_robin\n");
	assert_int_equal(cfg.n_routes, 1);
	assert_int_equal(cfg.routes[0].n, 1);
	expect_hop_v4(&cfg.routes[0].hop[0], "127.0.0.1", 1080);
	assert_string_equal(cfg.routes[0].hop[0].text, "socks5h://127.0.0.1:1080");
}

static void test_limits(void **state)
{
	(void)state;
	char text[4096];
	size_t n = 0;
	for (int i = 0; i < 8; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "proxy = socks5h://10.0.0.%d\n", i + 1);
	expect_ok(text);
	assert_int_equal(cfg.n_routes, 8);
	snprintf(text + n, sizeof text - n, "proxy = socks5h://10.0.0.99\n");
	expect_error(text, "t.conf:9: proxy: too many proxy lines (at most 8)");
	n = (size_t)snprintf(text, sizeof text, "proxy = socks5h://10.0.0.1");
	for (int i = 1; i < 8; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, ", socks5h://h%d.example", i);
	snprintf(text + n, sizeof text - n, "\n");
	expect_ok(text);
	assert_int_equal(cfg.routes[0].n, 8);
	snprintf(text + n, sizeof text - n, ", socks5h://one.more\n");
	expect_error(text, "t.conf:1: proxy: proxy URL: more than 8 hops");
	/* route rules: 64 */
	n = 0;
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "route = :%d direct\n", i + 1);
	expect_ok(text);
	assert_int_equal(cfg.n_rules, 64);
	snprintf(text + n, sizeof text - n, "route = :99 block\n");
	expect_error(text, "t.conf:65: route: too many route rules (at most 64)");
	n = 0;
	for (int i = 0; i < 9; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "route = :%d via socks5h://10.0.0.%d\n", i + 1, i + 1);
	expect_error(text, "t.conf:9: route: too many routes with via (at most 8)");
}

static void test_credentials(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://alice:pw1@10.0.0.1, http://bob:p%40ss@proxy.inner:3128, socks4a://carol@10.0.0.3\n"
		  "route = .corp via socks5://dave:pw4@10.9.9.9\n");
	const struct sfy_chain *c = &cfg.routes[0];
	assert_string_equal(cfg.user, "alice"); /* route 1's hop 1 */
	assert_string_equal(cfg.pass, "pw1");
	assert_ptr_equal(c->hop[0].hop.user, cfg.user);
	assert_string_equal(c->hop[1].hop.user, "bob");
	assert_string_equal(c->hop[1].hop.pass, "p@ss");
	assert_string_equal(c->hop[2].hop.user, "carol");
	assert_null(c->hop[2].hop.pass);
	assert_string_equal(cfg.via[0].hop[0].hop.user, "dave");
	assert_string_equal(cfg.via[0].hop[0].hop.pass, "pw4");
	/* the pointers point into the struct itself: sfy_config_copy keeps them there */
	static struct sfy_config copy;
	sfy_config_copy(&copy, &cfg);
	assert_string_equal(copy.routes[0].hop[1].hop.user, "bob");
	assert_ptr_equal(copy.routes[0].hop[1].hop.user, copy.cred + (cfg.routes[0].hop[1].hop.user - cfg.cred));
	/* the username/password keys are route 1's hop 1 */
	expect_ok("proxy = socks5h://10.0.0.1\nusername = u\npassword = p\n");
	assert_string_equal(cfg.routes[0].hop[0].hop.user, "u");
	assert_string_equal(cfg.routes[0].hop[0].hop.pass, "p");
	expect_error("proxy = socks5h://10.0.0.1, socks5h://u@10.0.0.2\n", "hop 2: a user name needs a password");
	expect_error("proxy = socks4://u:p@10.0.0.1, socks5h://10.0.0.2\n", "socks4 sends a user id only");
	/* pipelining reaches every hop, whichever line comes first */
	expect_ok("proxy = socks5h://10.0.0.1, socks5h://10.0.0.2\npipeline = yes\n");
	assert_int_equal(cfg.routes[0].hop[1].hop.pipeline, 1);
}

static void test_chain_errors(void **state)
{
	(void)state;
	expect_error("proxy = socks5h://10.0.0.1, ftp://10.0.0.2\n", "t.conf:1: proxy: proxy URL hop 2: must start with");
	expect_error("proxy = socks5h://10.0.0.1,\n", "proxy URL hop 2: empty");
	expect_error("proxy = , socks5h://10.0.0.1\n", "proxy URL hop 1: empty");
	expect_error("proxy = socks5h://10.0.0.1, socks5h://bad_name!:1\n", "proxy URL hop 2: host must be");
	expect_error("proxy = socks5h://10.0.0.1, socks5h://10.0.0.2:0\n", "proxy URL hop 2: bad port");
	expect_error("proxy = socks5h://proxy.invalid, socks5h://10.0.0.2\n", "proxy URL hop 1: host must be");
	/* a failed line leaves the routes before it alone */
	sfy_config_defaults(&cfg);
	char err[256];
	assert_int_equal(sfy_config_parse_proxy_url(&cfg, "socks5h://10.0.0.7:7", err, sizeof err), 0);
	assert_int_equal(sfy_config_parse_proxy_url(&cfg, "socks5h://10.0.0.8, nope://x", err, sizeof err), -1);
	assert_string_equal(cfg.proxy_text, "10.0.0.7:7");
	assert_int_equal(cfg.n_routes, 1);
	assert_int_equal(cfg.cred_used, 0);
}

/* The environment's URL list (-x) replaces every proxy line. */
static void test_proxy_url_replaces_routes(void **state)
{
	(void)state;
	char err[256];
	expect_ok("proxy = socks5h://10.0.0.1\nproxy = socks5h://10.0.0.2\nroute = .x via socks5h://10.0.0.3\n");
	assert_int_equal(sfy_config_parse_proxy_url(&cfg, "socks5h://10.0.0.9:9, socks4a://next.hop:1", err, sizeof err),
			 0);
	assert_int_equal(cfg.n_routes, 1);
	assert_int_equal(cfg.routes[0].n, 2);
	assert_string_equal(cfg.proxy_text, "10.0.0.9:9");
	assert_int_equal(cfg.n_via, 1); /* the rules stay */
}

/* ---- route rules, pick, retry_after ------------------------------------ */

static void test_route_rules(void **state)
{
	(void)state;
	expect_ok("route = .corp.example.com *.intra 10.0.0.0/8 10.1.2.3:443 [2001:db8::]/32:443 :25 host.test "
		  "host.test:8080 via socks5h://10.9.9.9, socks5h://inner.corp:1080\n"
		  "route = .onion via socks5h://127.0.0.1:9050\n"
		  "route = 192.0.2.0/24 direct\n"
		  "route = ads.example block\n");
	assert_int_equal(cfg.n_rules, 4);
	assert_int_equal(cfg.n_via, 2);
	const struct sfy_route_rule *r = &cfg.rules[0];
	assert_int_equal(r->action, SFY_RULE_VIA);
	assert_int_equal(r->n, 8);
	assert_int_equal(r->line, 1);
	assert_int_equal(cfg.via[r->via].n, 2);
	const struct sfy_pattern *p = &cfg.patterns[r->first];
	static const int kinds[] = {SFY_PAT_SUFFIX, SFY_PAT_SUFFIX, SFY_PAT_CIDR, SFY_PAT_CIDR,
				    SFY_PAT_CIDR,   SFY_PAT_PORT,   SFY_PAT_NAME, SFY_PAT_NAME};
	for (int i = 0; i < 8; i++)
		assert_int_equal(p[i].kind, kinds[i]);
	assert_int_equal(p[0].name_len, strlen("corp.example.com"));
	assert_string_equal(p[1].text + p[1].name_off, "intra");
	assert_int_equal(p[3].cidr.port, 443);
	assert_int_equal(p[4].cidr.family, AF_INET6);
	assert_int_equal(p[4].cidr.prefix, 32);
	assert_int_equal(p[5].port, 25);
	assert_int_equal(p[7].port, 8080);
	assert_int_equal(p[7].name_len, 9);
	assert_int_equal(cfg.rules[2].action, SFY_RULE_DIRECT);
	assert_int_equal(cfg.rules[3].action, SFY_RULE_BLOCK);
	assert_int_equal(cfg.rules[3].line, 4);
}

static void test_route_errors(void **state)
{
	(void)state;
	expect_error("route = .corp\n", "t.conf:1: route: expected PATTERN... via URL");
	expect_error("route = direct\n", "t.conf:1: route: expected PATTERN...");
	expect_error("route = .corp via\n", "via needs a proxy URL");
	expect_error("route = .corp direct socks5h://1.2.3.4\n", "nothing may follow direct or block");
	expect_error("route = 10.0.0.0/33 direct\n", "bad address, CIDR or port in pattern: '10.0.0.0/33'");
	expect_error("route = 256.1.1.1 direct\n", "bad address");
	expect_error("route = :0 direct\n", "bad port in pattern");
	expect_error("route = :http direct\n", "bad port in pattern");
	expect_error("route = a..b.c!d direct\n", "expected a name");
	expect_error("route = . direct\n", "bad address");
	expect_error("route = *. direct\n", "expected a name");
	expect_error("route = .corp via socks5h://corp.proxy.invalid\n", "proxy URL: host must be");
	/* a failed rule leaves no patterns behind */
	expect_error("route = .a .b via nope://x\n", "must start with");
	assert_int_equal(cfg.n_patterns, 0);
	assert_int_equal(cfg.n_rules, 0);
}

static void test_pick_and_retry_after(void **state)
{
	(void)state;
	expect_ok("\n");
	assert_int_equal(cfg.pick, SFY_PICK_FAILOVER);
	assert_int_equal(cfg.retry_after, 60);
	expect_ok("pick = round_robin\nretry_after = 5\n");
	assert_int_equal(cfg.pick, SFY_PICK_ROUND_ROBIN);
	assert_int_equal(cfg.retry_after, 5);
	expect_ok("pick = random\nretry_after = 0\n");
	assert_int_equal(cfg.pick, SFY_PICK_RANDOM);
	assert_int_equal(cfg.retry_after, 0);
	expect_error("pick = roundrobin\n", "t.conf:1: pick: expected failover, round_robin or random");
	expect_error("retry_after = -1\n", "t.conf:1: retry_after: expected whole seconds, 0 to 86400");
	expect_error("retry_after = 1.5\n", "expected whole seconds");
	expect_error("retry_after = 86401\n", "expected whole seconds");
}

/* GSSAPI (issue 15): the keys, their defaults and their errors. */
static void test_gssapi_keys(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://127.0.0.1:1080\n");
	sfy_config_link(&cfg);
	assert_int_equal(cfg.gssapi, 0);
	assert_int_equal(cfg.gss_level, SFY_GSS_CONFIDENTIALITY);
	assert_int_equal(cfg.routes[0].hop[0].hop.gssapi, 0);
	expect_ok("proxy = socks5h://127.0.0.1:1080\ngssapi = yes\n");
	sfy_config_link(&cfg);
	const struct sfy_hop *h = &cfg.routes[0].hop[0].hop;
	assert_int_equal(h->gssapi, 1);
	assert_string_equal(h->gss_service, "rcmd@127.0.0.1"); /* rcmd@ + the host as written */
	assert_int_equal(h->gss_level, SFY_GSS_CONFIDENTIALITY);
	expect_ok("proxy = socks5h://alice:pw@[2001:db8::1]:1080\ngssapi = required\ngssapi_protection = integrity\n");
	sfy_config_link(&cfg);
	h = &cfg.routes[0].hop[0].hop;
	assert_int_equal(h->gssapi, 2);
	assert_string_equal(h->gss_service, "rcmd@2001:db8::1");
	assert_int_equal(h->gss_level, SFY_GSS_INTEGRITY);
	expect_ok("proxy = socks5h://localhost:1080\ngssapi = yes\ngssapi_service = socks@proxy.example.com\n");
	sfy_config_link(&cfg);
	assert_string_equal(cfg.routes[0].hop[0].hop.gss_service, "socks@proxy.example.com");
	expect_error("gssapi = maybe\n", "expected yes, no or required");
	expect_error("gssapi_protection = secret\n", "expected integrity or confidentiality");
	expect_error("gssapi_service = rcmd\n", "expected SERVICE@HOST");
	expect_error("gssapi_service = @host\n", "expected SERVICE@HOST");
	expect_error("gssapi_service = rcmd@\n", "expected SERVICE@HOST");
	expect_error("gssapi_service = a@b@c\n", "expected SERVICE@HOST");
}

/* Only a route's last hop offers GSSAPI, and only a SOCKS5 one; its
 * default service names that hop. */
static void test_gssapi_last_hop_only(void **state)
{
	(void)state;
	expect_ok("proxy = socks5h://127.0.0.1:1080, socks5h://inner.example:1085\n"
		  "proxy = socks5h://127.0.0.1:1081, http://127.0.0.2:3128\ngssapi = yes\n");
	sfy_config_link(&cfg);
	assert_int_equal(cfg.routes[0].hop[0].hop.gssapi, 0);
	assert_int_equal(cfg.routes[0].hop[1].hop.gssapi, 1);
	assert_string_equal(cfg.routes[0].hop[1].hop.gss_service, "rcmd@inner.example");
	assert_int_equal(cfg.routes[1].hop[0].hop.gssapi, 0);
	assert_int_equal(cfg.routes[1].hop[1].hop.gssapi, 0); /* HTTP CONNECT has no GSSAPI */
}

/* The default service holds the whole host name, however long (the hop's
 * log text shortens it), and the built-in route's address without its
 * port. */
static void test_gssapi_default_service_whole(void **state)
{
	(void)state;
	char name[120], conf[300], want[130];
	memset(name, 'a', 100);
	memcpy(name + 100, ".example", sizeof ".example");
	snprintf(conf, sizeof conf, "proxy = socks5h://127.0.0.1:1080, socks5h://%s:1085\ngssapi = yes\n", name);
	expect_ok(conf);
	sfy_config_link(&cfg);
	snprintf(want, sizeof want, "rcmd@%s", name);
	assert_string_equal(cfg.routes[0].hop[1].hop.gss_service, want);
	expect_ok("gssapi = yes\n"); /* no proxy line: 127.0.0.1:1080 */
	sfy_config_link(&cfg);
	assert_string_equal(cfg.routes[0].hop[0].hop.gss_service, "rcmd@127.0.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_scheme),
		cmocka_unit_test(test_later_hops_by_name),
		cmocka_unit_test(test_socks4_hop_needs_ipv4_next),
		cmocka_unit_test(test_hop1_from_hosts_file),
		cmocka_unit_test(test_repeated_proxy_lines),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_chain_errors),
		cmocka_unit_test(test_proxy_url_replaces_routes),
		cmocka_unit_test(test_route_rules),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_pick_and_retry_after),
		cmocka_unit_test(test_gssapi_keys),
		cmocka_unit_test(test_gssapi_last_hop_only),
		cmocka_unit_test(test_gssapi_default_service_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
