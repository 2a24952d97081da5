/* Unit tests for the fake-address pool (shim/pool.c, include/sfy_pool.h):
 * stable mapping, reverse look-up, LRU recycling, capacity limits, threads
 * and fork(). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfy_pool.h"

/* ---- helpers ---------------------------------------------------------- */

static struct sfy_pool *pool_new(const char *v4, const char *v6, unsigned cap)
{
	struct sfy_cidr c4, c6;
	assert_int_equal(sfy_cidr_parse(v4, &c4, 0), 0);
	assert_int_equal(sfy_cidr_parse(v6, &c6, 0), 0);
	return sfy_pool_new(&c4, &c6, cap);
}

static void map_ok(struct sfy_pool *p, const char *name, int family, struct sockaddr_storage *out)
{
	int rc = sfy_pool_map(p, name, family, out);
	if (rc != 0)
		fail_msg("sfy_pool_map(\"%.40s\", %d) failed: %s", name, family, strerror(errno));
	assert_int_equal(out->ss_family, family);
}

/* Fills ss from text; port is set so that callers check it is ignored. */
static const struct sockaddr *sa_of(struct sockaddr_storage *ss, const char *text)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(443);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(443);
	}
	return (const struct sockaddr *)ss;
}

static const struct sockaddr *sa(const struct sockaddr_storage *ss)
{
	return (const struct sockaddr *)ss;
}

/* Address text of ss, in a static buffer. */
static const char *text_of(const struct sockaddr_storage *ss)
{
	static char buf[INET6_ADDRSTRLEN];
	const void *a = ss->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
						 : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	return inet_ntop(ss->ss_family, a, buf, sizeof buf);
}

static void expect_addr(const struct sockaddr_storage *ss, const char *want)
{
	const char *got = text_of(ss);
	if (strcmp(got, want) != 0)
		fail_msg("got address %s, want %s", got, want);
}

static void expect_name(struct sfy_pool *p, const struct sockaddr *a, const char *want)
{
	char got[256] = "";
	int rc = sfy_pool_name(p, a, got, sizeof got);
	if (rc != 1 || strcasecmp(got, want) != 0)
		fail_msg("reverse look-up: rc %d name \"%.60s\", want 1 \"%.60s\"", rc, got, want);
}

static int reverse_rc(struct sfy_pool *p, const char *addr)
{
	struct sockaddr_storage ss;
	char name[256];
	return sfy_pool_name(p, sa_of(&ss, addr), name, sizeof name);
}

/* ---- mapping ---------------------------------------------------------- */

static void test_map_stable(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 16384);
	assert_non_null(p);
	struct sockaddr_storage a, b, c;
	map_ok(p, "example.com", AF_INET, &a);
	map_ok(p, "example.com", AF_INET, &b);
	assert_memory_equal(&a, &b, sizeof a);
	map_ok(p, "EXAMPLE.Com", AF_INET, &b);
	assert_memory_equal(&a, &b, sizeof a);
	map_ok(p, "example.org", AF_INET, &c);
	assert_memory_not_equal(&a, &c, sizeof a);
	assert_int_equal(((struct sockaddr_in *)&a)->sin_port, 0);
	assert_true(sfy_pool_is_fake(p, sa(&a)));
	assert_true(sfy_pool_is_fake(p, sa(&c)));
	sfy_pool_free(p);
}

/* Slot i stands for base+1+i in both ranges (include/sfy_pool.h). */
static void test_v4_v6_share_slot(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 16384);
	struct sockaddr_storage a4, a6, b4, b6;
	map_ok(p, "first.example", AF_INET, &a4);
	map_ok(p, "first.example", AF_INET6, &a6);
	map_ok(p, "second.example", AF_INET6, &b6);
	map_ok(p, "second.example", AF_INET, &b4);
	expect_addr(&a4, "240.0.0.1");
	expect_addr(&a6, "100::1");
	expect_addr(&b4, "240.0.0.2");
	expect_addr(&b6, "100::2");
	assert_int_equal(((struct sockaddr_in6 *)&a6)->sin6_port, 0);
	assert_true(sfy_pool_is_fake(p, sa(&a6)));
	sfy_pool_free(p);
}

static void test_host_bits_cleared(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("10.1.2.99/24", "fd00::77/120", 16);
	assert_non_null(p);
	struct sockaddr_storage a4, a6;
	map_ok(p, "x.example", AF_INET, &a4);
	map_ok(p, "x.example", AF_INET6, &a6);
	expect_addr(&a4, "10.1.2.1");
	expect_addr(&a6, "fd00::1");
	sfy_pool_free(p);
}

static void test_reverse(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 16384);
	struct sockaddr_storage a4, a6, m;
	map_ok(p, "MiXeD.Example", AF_INET, &a4);
	map_ok(p, "mixed.example", AF_INET6, &a6);
	map_ok(p, "other.example", AF_INET, &m);
	expect_name(p, sa(&a4), "mixed.example");
	expect_name(p, sa(&a6), "mixed.example");
	expect_name(p, sa(&m), "other.example");
	expect_name(p, sa_of(&m, "::ffff:240.0.0.1"), "mixed.example"); /* v4-mapped */
	expect_name(p, sa_of(&m, "240.0.0.2"), "other.example");       /* any port */
	sfy_pool_free(p);
}

static void test_reverse_unused_and_outside(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 16384);
	assert_int_equal(reverse_rc(p, "240.0.0.1"), -1); /* nothing mapped yet */
	struct sockaddr_storage a;
	map_ok(p, "only.example", AF_INET, &a);
	static const char *const stale[] = {"240.0.0.2", "240.0.0.0", "255.255.255.255", "240.1.0.1",
					    "241.0.0.1", "100::2", "100::", "100::1:0:0:1", "100::ffff:ffff",
					    "::ffff:240.0.0.2"};
	for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
		if (reverse_rc(p, stale[i]) != -1)
			fail_msg("%s: in range, never handed out: want -1", stale[i]);
	static const char *const outside[] = {"10.0.0.1", "239.255.255.255", "127.0.0.1", "2001:db8::1",
					      "101::1", "100:0:0:1::1", "::1", "::ffff:10.0.0.1"};
	for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
		struct sockaddr_storage ss;
		if (reverse_rc(p, outside[i]) != 0 || sfy_pool_is_fake(p, sa_of(&ss, outside[i])))
			fail_msg("%s: outside the fake ranges: want 0", outside[i]);
	}
	sfy_pool_free(p);
}

/* ---- names ------------------------------------------------------------ */

static void test_name_lengths(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 16);
	char n255[256], n256[257], got[256];
	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(n256, 'a', 256);
	n256[256] = '\0';
	struct sockaddr_storage a, b;
	map_ok(p, n255, AF_INET, &a);
	expect_name(p, sa(&a), n255);
	n255[0] = 'A';
	map_ok(p, n255, AF_INET6, &b);
	assert_int_equal(((struct sockaddr_in6 *)&b)->sin6_addr.s6_addr[15], 1); /* same slot */
	assert_int_not_equal(sfy_pool_name(p, sa(&a), got, 255), 1); /* no room for the NUL */
	errno = 0;
	assert_int_equal(sfy_pool_map(p, n256, AF_INET, &b), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(sfy_pool_map(p, "", AF_INET, &b), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(sfy_pool_map(p, "x.example", AF_UNIX, &b), -1);
	assert_int_equal(errno, EINVAL);
	sfy_pool_free(p);
}

static void test_new_bad_args(void **state)
{
	(void)state;
	struct sfy_cidr c4, c6;
	assert_int_equal(sfy_cidr_parse("240.0.0.0/4", &c4, 0), 0);
	assert_int_equal(sfy_cidr_parse("100::/64", &c6, 0), 0);
	assert_null(sfy_pool_new(&c6, &c6, 16));
	assert_null(sfy_pool_new(&c4, &c4, 16));
	assert_null(sfy_pool_new(&c4, &c6, 0));
	sfy_pool_free(NULL);
}

/* ---- capacity and recycling ------------------------------------------- */

static void test_capacity_capped(void **state)
{
	(void)state;
	struct { const char *v4, *v6; unsigned ask, want; } cases[] = {
		{"240.0.0.0/4", "100::/64", 16384, 16384},
		{"10.1.1.0/24", "100::/64", 100000, 254},
		{"240.0.0.0/4", "fd00::/120", 100000, 254},
		{"10.0.0.0/16", "100::/64", 1u << 20, 65534},
		{"10.0.0.0/30", "100::/64", 16, 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sfy_pool *p = pool_new(cases[i].v4, cases[i].v6, cases[i].ask);
		assert_non_null(p);
		assert_int_equal(sfy_pool_capacity(p), cases[i].want);
		sfy_pool_free(p);
	}
}

static void test_small_range_never_leaves_range(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("10.1.1.0/24", "100::/64", 100000);
	struct sockaddr_storage a;
	char name[32];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "h%d.example", i);
		map_ok(p, name, AF_INET, &a);
		uint32_t host = ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr);
		if ((host >> 8) != 0x0A0101 || (host & 0xff) < 1 || (host & 0xff) > 254)
			fail_msg("name %d got %s", i, text_of(&a));
		if (i == 253)
			expect_addr(&a, "10.1.1.254");
		if (i == 254) /* full: the least recently used (h0) gives way */
			expect_addr(&a, "10.1.1.1");
		expect_name(p, sa(&a), name);
	}
	sfy_pool_free(p);
}

/* A range with no usable host address cannot make a working pool: either
 * sfy_pool_new refuses it, or every address it hands out is in range. */
static int tiny_range_works(const char *v4, const char *v6, char *why, size_t cap)
{
	struct sfy_pool *p = pool_new(v4, v6, 16);
	if (!p)
		return 1;
	int ok = 0;
	struct sockaddr_storage a;
	char name[256];
	memset(&a, 0, sizeof a);
	a.ss_family = AF_INET;
	if (sfy_pool_capacity(p) < 1)
		snprintf(why, cap, "%s + %s: pool with capacity 0", v4, v6);
	else if (sfy_pool_map(p, "t.example", AF_INET, &a) != 0 || !sfy_pool_is_fake(p, sa(&a)))
		snprintf(why, cap, "%s + %s: v4 address %s outside the range", v4, v6, text_of(&a));
	else if (sfy_pool_map(p, "t.example", AF_INET6, &a) != 0 || !sfy_pool_is_fake(p, sa(&a)))
		snprintf(why, cap, "%s + %s: v6 address %s outside the range", v4, v6, text_of(&a));
	else if (sfy_pool_name(p, sa(&a), name, sizeof name) != 1)
		snprintf(why, cap, "%s + %s: %s does not map back", v4, v6, text_of(&a));
	else
		ok = 1;
	sfy_pool_free(p);
	return ok;
}

static void test_tiny_ranges(void **state)
{
	(void)state;
	static const char *const pairs[][2] = {
		{"10.0.0.4/30", "fd00::/64"}, {"10.0.0.4/31", "fd00::/64"}, {"10.0.0.4/32", "fd00::/64"},
		{"10.0.0.0/24", "fd00::4/126"}, {"10.0.0.0/24", "fd00::4/127"}, {"10.0.0.0/24", "fd00::4/128"},
	};
	int failures = 0;
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		char why[160];
		if (!tiny_range_works(pairs[i][0], pairs[i][1], why, sizeof why)) {
			print_message("tiny range: %s\n", why);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void fill_16(struct sfy_pool *p, struct sockaddr_storage addr[16])
{
	char name[16];
	for (int i = 0; i < 16; i++) {
		snprintf(name, sizeof name, "n%d", i);
		map_ok(p, name, AF_INET, &addr[i]);
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(&addr[i], &addr[j], sizeof addr[i]);
	}
}

static void test_lru_recycling(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("10.9.0.0/24", "fd09::/64", 16);
	assert_int_equal(sfy_pool_capacity(p), 16);
	struct sockaddr_storage addr[16], a;
	fill_16(p, addr);
	map_ok(p, "n0", AF_INET6, &a);        /* n0 used again (other family) */
	expect_name(p, sa(&addr[1]), "n1");   /* n1 used again (reverse) */
	map_ok(p, "n16", AF_INET, &a);        /* full: n2 is least recent */
	assert_memory_equal(&a, &addr[2], sizeof a);
	expect_name(p, sa(&addr[2]), "n16");
	map_ok(p, "n17", AF_INET, &a);        /* then n3 */
	assert_memory_equal(&a, &addr[3], sizeof a);
	expect_name(p, sa(&addr[0]), "n0");
	expect_name(p, sa(&addr[1]), "n1");
	map_ok(p, "n0", AF_INET, &a);
	assert_memory_equal(&a, &addr[0], sizeof a);
	map_ok(p, "n2", AF_INET, &a);         /* n2 is back, in n4's slot */
	assert_memory_equal(&a, &addr[4], sizeof a);
	expect_name(p, sa(&addr[4]), "n2");
	for (int i = 5; i < 16; i++) {
		char name[16];
		snprintf(name, sizeof name, "n%d", i);
		expect_name(p, sa(&addr[i]), name);
	}
	sfy_pool_free(p);
}

/* ---- fork ------------------------------------------------------------- */

static int child_checks(struct sfy_pool *p, const struct sockaddr_storage *a4, const struct sockaddr_storage *a6)
{
	char name[256];
	struct sockaddr_storage again;
	if (sfy_pool_name(p, sa(a4), name, sizeof name) != 1 || strcmp(name, "forked.example") != 0)
		return 1;
	if (sfy_pool_name(p, sa(a6), name, sizeof name) != 1 || strcmp(name, "forked.example") != 0)
		return 2;
	if (sfy_pool_map(p, "forked.example", AF_INET, &again) != 0 || memcmp(&again, a4, sizeof again) != 0)
		return 3;
	if (sfy_pool_map(p, "child-only.example", AF_INET, &again) != 0)
		return 4;
	return 0;
}

static void test_fork_shares_pool(void **state)
{
	(void)state;
	struct sfy_pool *p = pool_new("240.0.0.0/4", "100::/64", 64);
	struct sockaddr_storage a4, a6;
	map_ok(p, "forked.example", AF_INET, &a4);
	map_ok(p, "forked.example", AF_INET6, &a6);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(p, &a4, &a6));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The pool is shared: the child's new name is the parent's too (a
	 * program that resolves in a forked helper connects in the parent). */
	struct sockaddr_in child_addr = {.sin_family = AF_INET};
	child_addr.sin_addr.s_addr = inet_addr("240.0.0.2");
	char name[256];
	assert_int_equal(sfy_pool_name(p, (struct sockaddr *)&child_addr, name, sizeof name), 1);
	assert_string_equal(name, "child-only.example");
	expect_name(p, sa(&a4), "forked.example");
	sfy_pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_stable),
		cmocka_unit_test(test_v4_v6_share_slot),
		cmocka_unit_test(test_host_bits_cleared),
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_reverse_unused_and_outside),
		cmocka_unit_test(test_name_lengths),
		cmocka_unit_test(test_new_bad_args),
		cmocka_unit_test(test_capacity_capped),
		cmocka_unit_test(test_small_range_never_leaves_range),
		cmocka_unit_test(test_tiny_ranges),
		cmocka_unit_test(test_lru_recycling),
		cmocka_unit_test(test_fork_shares_pool),
	};
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
