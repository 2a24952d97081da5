/* Unit tests for session pools (shim/session_obj.c, the session side of
 * shim/pool.c): ids, creating and joining the object, refusing objects that
 * are not ours, tags that keep pools apart, repair after a process died
 * holding the lock, and reaping dead sessions.  Objects are made in a
 * private temporary directory, never in /dev/shm. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "session.h"

static char dir[64];
static struct sfy_cidr c4, c6;
static struct sfy_pool_settings settings = {&c4, &c6, 64};

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/sfy-session-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(sfy_cidr_parse("240.0.0.0/4", &c4, 0), 0);
	assert_int_equal(sfy_cidr_parse("100::/64", &c6, 0), 0);
	settings.capacity = 64;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

static void path_of(char *out, size_t cap, const char *id)
{
	assert_int_equal(sfy_session_path(out, cap, dir, geteuid(), id), 0);
}

static void map_ok(struct sfy_pool *p, const char *name, int family, struct sockaddr_storage *out)
{
	if (sfy_pool_map(p, name, family, out) != 0)
		fail_msg("sfy_pool_map(%s): %s", name, strerror(errno));
}

static int name_of(struct sfy_pool *p, const struct sockaddr_storage *a, char *name, size_t cap)
{
	name[0] = '\0';
	return sfy_pool_name(p, (const struct sockaddr *)a, name, cap);
}

static void expect_name(struct sfy_pool *p, const struct sockaddr_storage *a, const char *want)
{
	char got[256];
	int rc = name_of(p, a, got, sizeof got);
	if (rc != 1 || strcmp(got, want) != 0)
		fail_msg("reverse look-up: rc %d name \"%s\", want \"%s\"", rc, got, want);
}

/* ---- ids --------------------------------------------------------------- */

static void test_ids(void **state)
{
	(void)state;
	assert_true(sfy_session_id_ok("1234-00ff00ff00ff00ff"));
	assert_true(sfy_session_id_ok("work_2"));
	static const char *const bad[] = {"", "a/b", "..", "a b", "x\n", "über",
					  "0123456789012345678901234567890123456789012345678901234567890123x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (sfy_session_id_ok(bad[i]))
			fail_msg("id \"%s\" accepted", bad[i]);
	assert_int_equal(sfy_session_leader("1234-abc"), 1234);
	assert_int_equal(sfy_session_leader("work"), 0);
	assert_int_equal(sfy_session_leader("12x-abc"), 0);
	assert_int_equal(sfy_session_leader("99999999999-a"), 0);
	char path[64];
	assert_int_equal(sfy_session_path(path, sizeof path, "/dev/shm", 1000, "7-ab"), 0);
	assert_string_equal(path, "/dev/shm/socksify-1000-7-ab");
	assert_int_equal(sfy_session_path(path, 10, "/dev/shm", 1000, "7-ab"), -1);
}

/* ---- create, join, refuse ----------------------------------------------- */

static void test_create_then_join(void **state)
{
	(void)state;
	char path[256], why[200];
	path_of(path, sizeof path, "1-join");
	struct sfy_pool *a = NULL, *b = NULL;
	assert_int_equal(sfy_session_join(path, &settings, &a, why, sizeof why), SFY_SESSION_ABSENT);
	assert_int_equal(sfy_session_create(path, &settings, 0x1234567, &a, why, sizeof why), SFY_SESSION_OK);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal((long)st.st_nlink, 1);
	/* A second creator joins the first one's object. */
	assert_int_equal(sfy_session_create(path, &settings, 0x7654321, &b, why, sizeof why), SFY_SESSION_OK);
	struct sockaddr_storage x, y;
	map_ok(a, "shared.example", AF_INET, &x);
	map_ok(b, "shared.example", AF_INET, &y);
	assert_memory_equal(&x, &y, sizeof x);
	map_ok(b, "other.example", AF_INET6, &y);
	expect_name(a, &y, "other.example");
	/* The tag sits in the address: not the untagged 240.0.0.1. */
	assert_int_not_equal(((struct sockaddr_in *)&x)->sin_addr.s_addr, inet_addr("240.0.0.1"));
	sfy_pool_free(a);
	sfy_pool_free(b);
	assert_int_equal(sfy_session_remove(path), 0);
	assert_int_equal(access(path, F_OK), -1);
}

/* An object made right, then spoiled by how; join must refuse it and say
 * why (the reason contains want). */
static void expect_refused(const char *id, void (*spoil)(const char *path), const char *want)
{
	char path[256], why[200] = "";
	path_of(path, sizeof path, id);
	struct sfy_pool *p = NULL;
	assert_int_equal(sfy_session_create(path, &settings, 99, &p, why, sizeof why), SFY_SESSION_OK);
	sfy_pool_free(p);
	p = NULL;
	spoil(path);
	enum sfy_session_rc rc = sfy_session_join(path, &settings, &p, why, sizeof why);
	if (rc != SFY_SESSION_REFUSED || p || !strstr(why, want))
		fail_msg("%s: rc %d, why \"%s\", want refused with \"%s\"", id, rc, why, want);
	/* create never replaces it either */
	rc = sfy_session_create(path, &settings, 99, &p, why, sizeof why);
	if (rc != SFY_SESSION_REFUSED || p)
		fail_msg("%s: create over it gave rc %d", id, rc);
	unlink(path);
}

static void spoil_owner(const char *path)
{
	assert_int_equal(chown(path, 65534, 65534), 0);
}
static void spoil_mode(const char *path)
{
	assert_int_equal(chmod(path, 0644), 0);
}
static void spoil_link(const char *path)
{
	char other[300];
	snprintf(other, sizeof other, "%s.real", path);
	assert_int_equal(rename(path, other), 0);
	assert_int_equal(symlink(other, path), 0);
}
static void spoil_nlink(const char *path)
{
	char other[300];
	snprintf(other, sizeof other, "%s.second", path);
	assert_int_equal(link(path, other), 0);
}
static void spoil_size(const char *path)
{
	assert_int_equal(truncate(path, 4096), 0);
}
static void spoil_garbage(const char *path)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	char junk[512];
	memset(junk, 0x5a, sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	close(fd);
}
static void spoil_settings(const char *path)
{
	(void)path;
	assert_int_equal(sfy_cidr_parse("10.0.0.0/8", &c4, 0), 0); /* the joiner has other ranges */
}
static void spoil_dir(const char *path)
{
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void test_refuses_what_is_not_ours(void **state)
{
	(void)state;
	if (geteuid() == 0)
		expect_refused("2-owner", spoil_owner, "owned by uid 65534");
	else
		print_message("not root: the other-owner case is left out\n");
	expect_refused("2-mode", spoil_mode, "mode 0644");
	expect_refused("2-link", spoil_link, "symbolic link");
	expect_refused("2-nlink", spoil_nlink, "more than one link");
	expect_refused("2-size", spoil_size, "size 4096");
	expect_refused("2-garbage", spoil_garbage, "bad magic");
	expect_refused("2-dir", spoil_dir, "");
	char path[256];
	path_of(path, sizeof path, "2-dir");
	rmdir(path);
	expect_refused("2-settings", spoil_settings, "other fake ranges");
	assert_int_equal(sfy_cidr_parse("240.0.0.0/4", &c4, 0), 0);
}

/* ---- tags --------------------------------------------------------------- */

static void test_tags_keep_pools_apart(void **state)
{
	(void)state;
	char pa[256], pb[256], why[200];
	path_of(pa, sizeof pa, "3-a");
	path_of(pb, sizeof pb, "3-b");
	struct sfy_pool *a = NULL, *b = NULL;
	assert_int_equal(sfy_session_create(pa, &settings, 1111, &a, why, sizeof why), SFY_SESSION_OK);
	assert_int_equal(sfy_session_create(pb, &settings, 2222, &b, why, sizeof why), SFY_SESSION_OK);
	assert_true(sfy_pool_tag_bits4(a) > 0);
	struct sockaddr_storage a4, a6, b4, b6;
	map_ok(a, "alpha.example", AF_INET, &a4);
	map_ok(a, "alpha.example", AF_INET6, &a6);
	map_ok(b, "beta.example", AF_INET, &b4); /* the same slot, 0, in b */
	map_ok(b, "beta.example", AF_INET6, &b6);
	assert_memory_not_equal(&a4, &b4, sizeof a4);
	char name[256];
	/* a's addresses are a fake range's but no slot of b's: stale. */
	assert_int_equal(name_of(b, &a4, name, sizeof name), -1);
	assert_int_equal(name_of(b, &a6, name, sizeof name), -1);
	assert_int_equal(name_of(a, &b4, name, sizeof name), -1);
	expect_name(a, &a4, "alpha.example");
	expect_name(b, &b6, "beta.example");
	/* A pool made again under the same name (its session was restarted)
	 * does not take the old addresses for its own. */
	sfy_pool_free(a);
	assert_int_equal(sfy_session_remove(pa), 0);
	assert_int_equal(sfy_session_create(pa, &settings, 3333, &a, why, sizeof why), SFY_SESSION_OK);
	map_ok(a, "gamma.example", AF_INET, &b4);
	assert_int_equal(name_of(a, &a4, name, sizeof name), -1);
	sfy_pool_free(a);
	sfy_pool_free(b);
	unlink(pa);
	unlink(pb);
}

/* A /24 leaves no room above 254 slots: no IPv4 tag (documented), while
 * the IPv6 range still has one. */
static void test_small_range_has_no_tag(void **state)
{
	(void)state;
	struct sfy_cidr s4, s6;
	assert_int_equal(sfy_cidr_parse("10.1.1.0/24", &s4, 0), 0);
	assert_int_equal(sfy_cidr_parse("fd00::/64", &s6, 0), 0);
	size_t size = sfy_pool_bytes(&s4, &s6, 254);
	void *mem = calloc(1, size); /* the handle is freed by hand: sfy_pool_free would munmap */
	assert_int_equal(sfy_pool_format(mem, size, &s4, &s6, 254, 4242, 0), 0);
	const char *why;
	struct sfy_pool *p = sfy_pool_attach(mem, size, &s4, &s6, 254, &why);
	assert_non_null(p);
	assert_int_equal(sfy_pool_tag_bits4(p), 0);
	struct sockaddr_storage x;
	map_ok(p, "small.example", AF_INET, &x);
	assert_int_equal(((struct sockaddr_in *)&x)->sin_addr.s_addr, inet_addr("10.1.1.1"));
	map_ok(p, "small.example", AF_INET6, &x);
	char text[64];
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&x)->sin6_addr, text, sizeof text);
	assert_string_not_equal(text, "fd00::1");
	free(p);
	free(mem);
}

/* ---- a process killed holding the lock ---------------------------------- */

static void die_now(void)
{
	raise(SIGKILL);
}

/* Child: map name, killed half-way through writing its slot. */
static void kill_mid_update(struct sfy_pool *p, const char *name)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_storage ss;
		sfy_pool_test_hook = die_now;
		sfy_pool_map(p, name, AF_INET, &ss);
		_exit(3); /* not reached */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_repair_after_dead_holder(void **state)
{
	(void)state;
	char path[256], why[200];
	path_of(path, sizeof path, "4-repair");
	settings.capacity = 8;
	struct sfy_pool *p = NULL;
	assert_int_equal(sfy_session_create(path, &settings, 5, &p, why, sizeof why), SFY_SESSION_OK);
	struct sockaddr_storage addr[8], x;
	char name[32];
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "n%d.example", i);
		map_ok(p, name, AF_INET, &addr[i]);
	}
	/* Killed taking a fresh slot (6), its name half written: only that
	 * slot is lost (not kept under the half name). */
	kill_mid_update(p, "victim.example");
	struct sockaddr_storage six = addr[5];
	((struct sockaddr_in *)&six)->sin_addr.s_addr = htonl(ntohl(((struct sockaddr_in *)&addr[5])->sin_addr.s_addr) + 1);
	assert_int_equal(name_of(p, &six, name, sizeof name), -1);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "n%d.example", i);
		expect_name(p, &addr[i], name);
	}
	char got[256];
	map_ok(p, "n6.example", AF_INET, &addr[6]);
	map_ok(p, "n7.example", AF_INET, &addr[7]);
	expect_name(p, &addr[7], "n7.example");
	/* Full: killed while recycling the least recent slot (n0's). */
	kill_mid_update(p, "victim2.example");
	assert_int_equal(name_of(p, &addr[0], got, sizeof got), -1); /* n0 gave its slot up */
	for (int i = 1; i < 8; i++) {
		snprintf(name, sizeof name, "n%d.example", i);
		expect_name(p, &addr[i], name);
	}
	/* The dropped slot is reused first, and the pool keeps working. */
	map_ok(p, "after.example", AF_INET, &x);
	assert_memory_equal(&x, &addr[0], sizeof x);
	expect_name(p, &x, "after.example");
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "churn%d.example", i);
		map_ok(p, name, AF_INET, &x);
		expect_name(p, &x, name);
	}
	sfy_pool_free(p);
	unlink(path);
	settings.capacity = 64;
}

/* ---- reaping ------------------------------------------------------------ */

static void test_reap_dead_sessions_only(void **state)
{
	(void)state;
	pid_t dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, NULL, 0), dead);
	char id_dead[64], id_live[64], pdead[256], plive[256], pnamed[256], why[200];
	snprintf(id_dead, sizeof id_dead, "%d-dead", (int)dead);
	snprintf(id_live, sizeof id_live, "%d-live", (int)getpid());
	path_of(pdead, sizeof pdead, id_dead);
	path_of(plive, sizeof plive, id_live);
	path_of(pnamed, sizeof pnamed, "named");
	const char *paths[] = {pdead, plive, pnamed};
	for (int i = 0; i < 3; i++) {
		struct sfy_pool *p = NULL;
		assert_int_equal(sfy_session_create(paths[i], &settings, 7, &p, why, sizeof why), SFY_SESSION_OK);
		sfy_pool_free(p);
	}
	assert_int_equal(sfy_session_reap(dir, geteuid()), 1);
	assert_int_equal(access(pdead, F_OK), -1);
	assert_int_equal(access(plive, F_OK), 0);
	assert_int_equal(access(pnamed, F_OK), 0); /* no leader: kept */
	unlink(plive);
	unlink(pnamed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test_setup_teardown(test_create_then_join, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_what_is_not_ours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tags_keep_pools_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_range_has_no_tag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_after_dead_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reap_dead_sessions_only, setup, teardown),
	};
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
