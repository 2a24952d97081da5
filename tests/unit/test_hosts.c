/* Unit tests for the /etc/hosts reader (shim/hosts.c, include/sfy_hosts.h),
 * run against temporary files. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfy_hosts.h"

static const char hosts_text[] =
	"# The following lines are desirable for IPv4 capable hosts\n"
	"127.0.0.1\tlocalhost\n"
	"::1     localhost ip6-localhost ip6-loopback\n"
	"\n"
	"   \t  \n"
	"10.0.0.5   web.example.test  web   # trailing comment mentions other.test\n"
	"fd00::5    web.example.test web\n"
	"10.0.0.6   Other.Example.TEST alias1\talias2\n"
	"#10.0.0.99 web.example.test\n"
	"   # 10.0.0.98 web.example.test\n"
	"10.0.0.7 web.example.test\n"
	"10.0.0.8 crlf.test\r\n"
	"not-an-address bogus.test\n"
	"10.0.0.300 bogus.test\n"
	"fe80::1%eth0 bogus.test\n"
	"10.0.0.12\n"
	"10.0.0.9\tmulti.test\n"
	"10.0.0.10 multi.test\n"
	"fd00::10 multi.test\n"
	"10.0.0.11 multi.test\n"
	"10.0.0.13 last.test"; /* no final newline */

static char path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof path, "/tmp/sfy-hosts-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, hosts_text, sizeof hosts_text - 1);
	close(fd);
	return n == (ssize_t)(sizeof hosts_text - 1) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return unlink(path);
}

/* ---- helpers ---------------------------------------------------------- */

static struct sfy_host_addr host_addr(const char *text)
{
	struct sfy_host_addr a;
	memset(&a, 0, sizeof a);
	if (inet_pton(AF_INET, text, &a.u.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, text, &a.u.v6) == 1)
		a.family = AF_INET6;
	else
		fail_msg("bad test address %s", text);
	return a;
}

/* Looks name up with room for exactly max entries (heap, for ASan) and
 * compares with want[] (n_want texts, in order). */
static void expect_lookup(const char *name, int family, int max, const char *const *want, int n_want)
{
	struct sfy_host_addr *out = calloc((size_t)(max > 0 ? max : 1), sizeof *out);
	assert_non_null(out);
	int n = sfy_hosts_lookup(path, name, family, out, max);
	if (n != n_want)
		fail_msg("lookup \"%s\" family %d max %d: %d results, want %d", name, family, max, n, n_want);
	for (int i = 0; i < n; i++) {
		struct sfy_host_addr w = host_addr(want[i]);
		assert_int_equal(out[i].family, w.family);
		if (memcmp(&out[i].u, &w.u, w.family == AF_INET ? 4 : 16) != 0)
			fail_msg("lookup \"%s\": result %d is not %s", name, i, want[i]);
	}
	free(out);
}

#define LOOKUP(name, family, max, ...)                                                      \
	do {                                                                                \
		static const char *const want_[] = {__VA_ARGS__};                           \
		expect_lookup(name, family, max, want_, (int)(sizeof want_ / sizeof want_[0])); \
	} while (0)
#define LOOKUP_NONE(name, family) expect_lookup(name, family, SFY_HOSTS_MAX_ADDRS, NULL, 0)

static void expect_reverse(const char *addr, const char *want)
{
	struct sfy_host_addr a = host_addr(addr);
	char name[256] = "";
	int rc = sfy_hosts_reverse(path, &a, name, sizeof name);
	if (!want) {
		if (rc != 0)
			fail_msg("reverse %s: got \"%s\", want none", addr, name);
		return;
	}
	if (rc != 1 || strcmp(name, want) != 0)
		fail_msg("reverse %s: rc %d \"%s\", want \"%s\"", addr, rc, name, want);
}

/* ---- tests ------------------------------------------------------------ */

static void test_lookup_by_family(void **state)
{
	(void)state;
	LOOKUP("web.example.test", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.5", "10.0.0.7");
	LOOKUP("web.example.test", AF_INET6, SFY_HOSTS_MAX_ADDRS, "fd00::5");
	LOOKUP("localhost", AF_INET, SFY_HOSTS_MAX_ADDRS, "127.0.0.1");
	LOOKUP("localhost", AF_INET6, SFY_HOSTS_MAX_ADDRS, "::1");
	LOOKUP_NONE("Other.Example.TEST", AF_INET6);
}

static void test_lookup_unspec_file_order(void **state)
{
	(void)state;
	LOOKUP("web.example.test", AF_UNSPEC, SFY_HOSTS_MAX_ADDRS, "10.0.0.5", "fd00::5", "10.0.0.7");
	LOOKUP("localhost", AF_UNSPEC, SFY_HOSTS_MAX_ADDRS, "127.0.0.1", "::1");
	LOOKUP("multi.test", AF_UNSPEC, SFY_HOSTS_MAX_ADDRS, "10.0.0.9", "10.0.0.10", "fd00::10", "10.0.0.11");
}

static void test_lookup_aliases(void **state)
{
	(void)state;
	LOOKUP("web", AF_UNSPEC, SFY_HOSTS_MAX_ADDRS, "10.0.0.5", "fd00::5");
	LOOKUP("alias1", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.6");
	LOOKUP("alias2", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.6");
	LOOKUP("ip6-loopback", AF_INET6, SFY_HOSTS_MAX_ADDRS, "::1");
	LOOKUP("ip6-localhost", AF_UNSPEC, SFY_HOSTS_MAX_ADDRS, "::1");
}

static void test_lookup_comments(void **state)
{
	(void)state;
	LOOKUP_NONE("trailing", AF_UNSPEC);
	LOOKUP_NONE("comment", AF_UNSPEC);
	LOOKUP_NONE("other.test", AF_UNSPEC);
	LOOKUP_NONE("desirable", AF_UNSPEC);
	LOOKUP_NONE("#10.0.0.99", AF_UNSPEC);
	/* Commented-out 10.0.0.99 / 10.0.0.98 never show up. */
	LOOKUP("web.example.test", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.5", "10.0.0.7");
}

static void test_lookup_case_insensitive(void **state)
{
	(void)state;
	LOOKUP("other.example.test", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.6");
	LOOKUP("OTHER.EXAMPLE.TEST", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.6");
	LOOKUP("WEB", AF_INET6, SFY_HOSTS_MAX_ADDRS, "fd00::5");
	LOOKUP("LocalHost", AF_INET, SFY_HOSTS_MAX_ADDRS, "127.0.0.1");
}

static void test_lookup_odd_lines(void **state)
{
	(void)state;
	LOOKUP("crlf.test", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.8");
	LOOKUP("last.test", AF_INET, SFY_HOSTS_MAX_ADDRS, "10.0.0.13");
	LOOKUP_NONE("bogus.test", AF_UNSPEC);
	LOOKUP_NONE("web.example", AF_UNSPEC); /* whole names only */
	LOOKUP_NONE("example.test", AF_UNSPEC);
	LOOKUP_NONE("nowhere.test", AF_UNSPEC);
	LOOKUP_NONE("", AF_UNSPEC);
}

static void test_lookup_max(void **state)
{
	(void)state;
	LOOKUP("multi.test", AF_UNSPEC, 2, "10.0.0.9", "10.0.0.10");
	LOOKUP("multi.test", AF_INET, 2, "10.0.0.9", "10.0.0.10");
	LOOKUP("multi.test", AF_INET, 1, "10.0.0.9");
	expect_lookup("multi.test", AF_UNSPEC, 0, NULL, 0);
	expect_lookup("multi.test", AF_UNSPEC, -1, NULL, 0);
	/* max 1 writes one entry only. */
	struct sfy_host_addr out[2];
	memset(out, 0x7e, sizeof out);
	assert_int_equal(sfy_hosts_lookup(path, "multi.test", AF_UNSPEC, out, 1), 1);
	assert_int_equal(out[1].family, 0x7e7e7e7e);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct sfy_host_addr out[4];
	char name[64];
	struct sfy_host_addr a = host_addr("127.0.0.1");
	assert_int_equal(sfy_hosts_lookup("/nonexistent/sfy/hosts", "localhost", AF_UNSPEC, out, 4), 0);
	assert_int_equal(sfy_hosts_reverse("/nonexistent/sfy/hosts", &a, name, sizeof name), 0);
	assert_int_equal(sfy_hosts_lookup("/tmp", "localhost", AF_UNSPEC, out, 4), 0); /* a directory */
}

static void test_empty_file(void **state)
{
	(void)state;
	char empty[64];
	snprintf(empty, sizeof empty, "/tmp/sfy-hosts-empty-XXXXXX");
	int fd = mkstemp(empty);
	assert_true(fd >= 0);
	close(fd);
	struct sfy_host_addr out[4];
	assert_int_equal(sfy_hosts_lookup(empty, "localhost", AF_UNSPEC, out, 4), 0);
	unlink(empty);
}

static void test_reverse(void **state)
{
	(void)state;
	expect_reverse("10.0.0.6", "Other.Example.TEST"); /* first name, as written */
	expect_reverse("fd00::5", "web.example.test");
	expect_reverse("::1", "localhost");
	expect_reverse("127.0.0.1", "localhost");
	expect_reverse("10.0.0.7", "web.example.test");
	expect_reverse("10.0.0.8", "crlf.test");
	expect_reverse("10.0.0.13", "last.test");
	expect_reverse("10.0.0.99", NULL); /* commented out */
	expect_reverse("10.0.0.12", NULL); /* address without names */
	expect_reverse("10.9.9.9", NULL);
	expect_reverse("::ffff:10.0.0.5", NULL); /* other family */
}

static void test_reverse_small_buffer(void **state)
{
	(void)state;
	struct sfy_host_addr a = host_addr("10.0.0.6");
	char *small = malloc(18); /* "Other.Example.TEST" needs 19 */
	assert_non_null(small);
	assert_int_equal(sfy_hosts_reverse(path, &a, small, 18), 0);
	free(small);
	char *exact = malloc(19);
	assert_non_null(exact);
	assert_int_equal(sfy_hosts_reverse(path, &a, exact, 19), 1);
	assert_string_equal(exact, "Other.Example.TEST");
	free(exact);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_by_family),
		cmocka_unit_test(test_lookup_unspec_file_order),
		cmocka_unit_test(test_lookup_aliases),
		cmocka_unit_test(test_lookup_comments),
		cmocka_unit_test(test_lookup_case_insensitive),
		cmocka_unit_test(test_lookup_odd_lines),
		cmocka_unit_test(test_lookup_max),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_reverse_small_buffer),
	};
	return cmocka_run_group_tests_name("hosts", tests, setup, teardown);
}
