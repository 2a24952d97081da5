/* Unit tests for the route choice and the shared route state
 * (shim/routes.c; issue 14). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfy_config.h"
#include "sfy_pool.h"
#include "sfy_routes.h"

static struct sfy_config cfg;
static struct sfy_route_state state;

static void load(const char *text)
{
	sfy_config_defaults(&cfg);
	if (sfy_config_parse_text(&cfg, text, "t.conf") != 0)
		fail_msg("rejected: %s", cfg.error);
	memset(&state, 0, sizeof state);
}

static const struct sockaddr *addr(const char *text, uint16_t port)
{
	static struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
	}
	return (const struct sockaddr *)&ss;
}

static struct sfy_routes_pick pick;

static void choose(const char *name, const char *literal, uint16_t port, int64_t now)
{
	struct sfy_routes_dest d = {.name = name, .sa = literal ? addr(literal, port) : NULL, .port = port};
	sfy_routes_choose(&cfg, &state, &d, now, 0, &pick);
}

/* the first candidate's first hop's text */
static const char *first_hop(void)
{
	assert_int_equal(pick.verdict, SFY_ROUTES_PROXY);
	return pick.chain[0]->hop[0].text;
}

static const char rules[] = "proxy = socks5h://10.0.0.1:1\n"
			    "route = .corp.example *.lab 10.0.0.0/8 via socks5h://10.9.9.9:9\n"
			    "route = [2001:db8::]/32:443 10.1.2.3:443 direct\n"
			    "route = ads.example :25 block\n"
			    "route = :443 via socks5h://10.4.4.4:4, http://inner:3128\n"
			    "route = host.test:8080 via socks4a://10.8.8.8:8\n";

static void test_pattern_kinds(void **state_)
{
	(void)state_;
	load(rules);
	choose("corp.example", NULL, 80, 0); /* the domain itself */
	assert_string_equal(first_hop(), "socks5h://10.9.9.9:9");
	assert_int_equal(pick.rule, 1);
	assert_string_equal(pick.reason, "route 1 (.corp.example via)");
	choose("WWW.Corp.Example.", NULL, 80, 0); /* below it, any case, fully qualified */
	assert_int_equal(pick.rule, 1);
	choose("notcorp.example", NULL, 80, 0);
	assert_int_equal(pick.rule, 0);
	choose("a.b.lab", NULL, 80, 0);
	assert_string_equal(pick.reason, "route 1 (*.lab via)");
	choose(NULL, "10.200.1.1", 80, 0);
	assert_int_equal(pick.rule, 1);
	choose(NULL, "2001:db8::5", 443, 0);
	assert_int_equal(pick.verdict, SFY_ROUTES_DIRECT);
	assert_int_equal(pick.rule, 2);
	choose(NULL, "2001:db8::5", 80, 0); /* wrong port: on to the proxy line */
	assert_int_equal(pick.rule, 0);
	assert_string_equal(first_hop(), "socks5h://10.0.0.1:1");
	choose("ads.example", NULL, 80, 0);
	assert_int_equal(pick.verdict, SFY_ROUTES_BLOCK);
	choose("mail.example", NULL, 25, 0); /* :PORT matches names */
	assert_int_equal(pick.verdict, SFY_ROUTES_BLOCK);
	choose(NULL, "192.0.2.1", 25, 0); /* and addresses */
	assert_int_equal(pick.verdict, SFY_ROUTES_BLOCK);
	choose("host.test", NULL, 8080, 0);
	assert_int_equal(pick.rule, 5);
	assert_int_equal(pick.chain[0]->hop[0].hop.type, SFY_HOP_SOCKS4A);
	choose("host.test", NULL, 8081, 0);
	assert_int_equal(pick.rule, 0);
	choose("www.host.test", NULL, 8080, 0); /* an exact name is no suffix */
	assert_int_equal(pick.rule, 0);
}

/* First match in file order; names match names, literals addresses. */
static void test_order_and_names_vs_literals(void **state_)
{
	(void)state_;
	load(rules);
	choose(NULL, "10.1.2.3", 443, 0); /* 10.0.0.0/8 (rule 1) comes before 10.1.2.3:443 (rule 2) */
	assert_int_equal(pick.rule, 1);
	choose("x.corp.example", NULL, 443, 0); /* rule 1 before rule 4's :443 */
	assert_int_equal(pick.rule, 1);
	choose("elsewhere.example", NULL, 443, 0);
	assert_int_equal(pick.rule, 4);
	assert_int_equal(pick.chain[0]->n, 2);
	assert_int_equal(pick.route[0], 0); /* a via chain, not a proxy line */
	/* a name that looks like an address does not match the CIDR */
	choose("10.0.0.1.example", NULL, 80, 0);
	assert_int_equal(pick.rule, 0);
	/* an address does not match a name pattern */
	choose(NULL, "192.0.2.7", 80, 0);
	assert_int_equal(pick.rule, 0);
}

/* The direct keys and the proxies' own addresses come first. */
static void test_direct_first(void **state_)
{
	(void)state_;
	load("proxy = socks5h://192.0.2.1:1080\ndirect = 10.5.0.0/16\ndirect_domain = lan.example\n"
	     "route = .example 10.0.0.0/8 via socks5h://192.0.2.9:1\n");
	choose(NULL, "10.5.1.1", 80, 0);
	assert_int_equal(pick.verdict, SFY_ROUTES_DIRECT);
	assert_int_equal(pick.rule, 0);
	choose("pc.lan.example", NULL, 80, 0);
	assert_int_equal(pick.verdict, SFY_ROUTES_DIRECT);
	assert_string_equal(pick.reason, "direct_domain");
	choose(NULL, "127.0.0.1", 80, 0);
	assert_int_equal(pick.verdict, SFY_ROUTES_DIRECT);
	choose(NULL, "192.0.2.9", 1, 0); /* a via chain's hop 1 */
	assert_int_equal(pick.verdict, SFY_ROUTES_DIRECT);
	assert_string_equal(pick.reason, "a proxy's own address");
	choose("www.example", NULL, 80, 0);
	assert_int_equal(pick.rule, 1);
}

static const char three[] = "proxy = socks5h://10.0.0.1:1\nproxy = socks5h://10.0.0.2:2\nproxy = socks5h://10.0.0.3:3\n";

static void test_failover_order(void **state_)
{
	(void)state_;
	load(three);
	choose("a.example", NULL, 80, 0);
	assert_int_equal(pick.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pick.route[i], i + 1);
	assert_string_equal(pick.reason, "failover: proxy 1 of 3");
	/* route 1 down: skipped, by every caller sharing the state */
	sfy_routes_mark_down(&state, &cfg.routes[0], ECONNREFUSED, 1000, cfg.retry_after);
	choose("a.example", NULL, 80, 2000);
	assert_int_equal(pick.n, 2);
	assert_int_equal(pick.route[0], 2);
	assert_int_equal(pick.down, 1);
	assert_string_equal(pick.reason, "failover: proxy 2 of 3, 1 down");
	/* until retry_after has passed */
	choose("a.example", NULL, 80, 1000 + 60 * 1000);
	assert_int_equal(pick.route[0], 1);
	assert_int_equal(pick.n, 3);
}

static void test_all_down(void **state_)
{
	(void)state_;
	load(three);
	sfy_routes_mark_down(&state, &cfg.routes[1], ETIMEDOUT, 100, 60);
	sfy_routes_mark_down(&state, &cfg.routes[0], ECONNREFUSED, 200, 60);
	sfy_routes_mark_down(&state, &cfg.routes[2], EHOSTUNREACH, 300, 60);
	choose("a.example", NULL, 80, 400);
	assert_int_equal(pick.verdict, SFY_ROUTES_ALL_DOWN);
	assert_int_equal(pick.n, 0);
	assert_int_equal(pick.err, EHOSTUNREACH); /* the last attempt's */
	assert_int_equal(pick.down, 3);
	/* route 1 failing again makes its errno the latest */
	sfy_routes_mark_down(&state, &cfg.routes[0], ECONNREFUSED, 500, 60);
	choose("a.example", NULL, 80, 600);
	assert_int_equal(pick.err, ECONNREFUSED);
	/* a via rule whose one chain is down fails at once too */
	load("route = .x via socks5h://10.0.0.7:7\n");
	sfy_routes_mark_down(&state, &cfg.via[0], EPROTO, 0, 60);
	choose("a.x", NULL, 80, 1);
	assert_int_equal(pick.verdict, SFY_ROUTES_ALL_DOWN);
	assert_int_equal(pick.err, EPROTO);
	/* mark_up forgets; retry_after = 0 never marks */
	sfy_routes_mark_up(&state, &cfg.via[0]);
	choose("a.x", NULL, 80, 2);
	assert_int_equal(pick.verdict, SFY_ROUTES_PROXY);
	sfy_routes_mark_down(&state, &cfg.via[0], EPROTO, 0, 0);
	assert_int_equal(sfy_routes_is_down(&state, &cfg.via[0], 1, NULL, NULL), 0);
}

/* More routes down than slots: the soonest to expire gives way; never a crash. */
static void test_slots_bounded(void **state_)
{
	(void)state_;
	load(three);
	struct sfy_chain c = cfg.routes[0];
	for (int i = 0; i < SFY_ROUTE_SLOTS + 4; i++) {
		snprintf(c.hop[0].text, sizeof c.hop[0].text, "socks5h://10.1.0.%d:1", i);
		sfy_routes_mark_down(&state, &c, EIO, 1000 + i, 60);
		assert_int_equal(sfy_routes_is_down(&state, &c, 1000 + i, NULL, NULL), 1);
	}
	int down = 0;
	for (int i = 0; i < SFY_ROUTE_SLOTS + 4; i++) {
		snprintf(c.hop[0].text, sizeof c.hop[0].text, "socks5h://10.1.0.%d:1", i);
		down += sfy_routes_is_down(&state, &c, 2000, NULL, NULL);
	}
	assert_int_equal(down, SFY_ROUTE_SLOTS);
}

/* Round robin across two processes sharing one state block (the pool's). */
static void test_round_robin_shared(void **state_)
{
	(void)state_;
	load("pick = round_robin\n");
	static const char lines[] = "pick = round_robin\n"
				    "proxy = socks5h://10.0.0.1:1\nproxy = socks5h://10.0.0.2:2\nproxy = socks5h://10.0.0.3:3\n";
	load(lines);
	struct sfy_pool *pool = sfy_pool_new(&cfg.fake4, &cfg.fake6, 64);
	assert_non_null(pool);
	struct sfy_route_state *shared = sfy_pool_route_state(pool);
	assert_int_equal(shared->rr, 0);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the other "command": two picks */
		struct sfy_routes_dest d = {.name = "a.example", .port = 80};
		struct sfy_routes_pick p;
		char out[2];
		for (int i = 0; i < 2; i++) {
			sfy_routes_choose(&cfg, shared, &d, 0, 0, &p);
			out[i] = (char)('0' + p.route[0]);
		}
		_exit(write(fds[1], out, 2) == 2 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char got[3] = {0};
	assert_int_equal(read(fds[0], got, 2), 2);
	assert_string_equal(got, "12");
	/* this process goes on where the other stopped */
	struct sfy_routes_dest d = {.name = "a.example", .port = 80};
	sfy_routes_choose(&cfg, shared, &d, 0, 0, &pick);
	assert_int_equal(pick.route[0], 3);
	assert_int_equal(pick.route[1], 1); /* the others follow, for failover */
	assert_int_equal(pick.route[2], 2);
	assert_string_equal(pick.reason, "round robin: proxy 3 of 3");
	sfy_routes_choose(&cfg, shared, &d, 0, 0, &pick);
	assert_int_equal(pick.route[0], 1);
	/* a route down in one process is down in the other */
	sfy_routes_mark_down(shared, &cfg.routes[1], ECONNREFUSED, 0, 60);
	pid = fork();
	if (pid == 0)
		_exit(sfy_routes_is_down(shared, &cfg.routes[1], 10, NULL, NULL) ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	close(fds[1]);
	sfy_pool_free(pool);
}

static void test_random_in_range(void **state_)
{
	(void)state_;
	load("pick = random\nproxy = socks5h://10.0.0.1:1\nproxy = socks5h://10.0.0.2:2\nproxy = socks5h://10.0.0.3:3\n");
	int seen[4] = {0};
	struct sfy_routes_dest d = {.name = "a.example", .port = 80};
	for (uint32_t r = 0; r < 30; r++) {
		sfy_routes_choose(&cfg, &state, &d, 0, r * 2654435761u, &pick);
		assert_int_equal(pick.n, 3);
		assert_true(pick.route[0] >= 1 && pick.route[0] <= 3);
		seen[pick.route[0]]++;
	}
	assert_true(seen[1] && seen[2] && seen[3]);
	assert_int_equal(state.rr, 0); /* random takes no round-robin turn */
	/* one route: no pick to make, no turn taken */
	load("pick = round_robin\n");
	sfy_routes_choose(&cfg, &state, &d, 0, 7, &pick);
	assert_int_equal(pick.n, 1);
	assert_string_equal(pick.reason, "proxy");
	assert_int_equal(state.rr, 0);
}

/* A route's identity: the same hops give the same key in any config. */
static void test_key(void **state_)
{
	(void)state_;
	static struct sfy_config other;
	load("proxy = socks5h://10.0.0.1:1\nproxy = socks5h://u:p@10.0.0.1:1\n");
	sfy_config_defaults(&other);
	assert_int_equal(sfy_config_parse_text(&other, "proxy = socks5h://10.0.0.9\nproxy = socks5h://10.0.0.1:1\n", "o"),
			 0);
	assert_true(sfy_routes_key(&cfg.routes[0]) == sfy_routes_key(&other.routes[1]));
	assert_true(sfy_routes_key(&cfg.routes[0]) != sfy_routes_key(&cfg.routes[1])); /* another user */
	assert_true(sfy_routes_key(&cfg.routes[0]) != sfy_routes_key(&other.routes[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_kinds),
		cmocka_unit_test(test_order_and_names_vs_literals),
		cmocka_unit_test(test_direct_first),
		cmocka_unit_test(test_failover_order),
		cmocka_unit_test(test_all_down),
		cmocka_unit_test(test_slots_bounded),
		cmocka_unit_test(test_round_robin_shared),
		cmocka_unit_test(test_random_in_range),
		cmocka_unit_test(test_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
