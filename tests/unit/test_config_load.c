/* Unit tests for sfy_config_load (shim/config.c): search order, environment
 * overrides through a fake getenv, secure mode, file size and value limits.
 * Every test works in its own temporary directory. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfy_config.h"

/* ---- fake environment ------------------------------------------------- */

#define MAX_VARS 8

/* A config's value: what comes before the paths (see sfy_config.h). */
#define SFY_CONFIG_SET_PART offsetof(struct sfy_config, source)

static struct {
	const char *name[MAX_VARS];
	const char *value[MAX_VARS];
	int n;
	int calls;
} fake_env;

static const char *fake_getenv(const char *name)
{
	fake_env.calls++;
	for (int i = 0; i < fake_env.n; i++)
		if (strcmp(fake_env.name[i], name) == 0)
			return fake_env.value[i];
	return NULL;
}

static void env_set(const char *name, const char *value)
{
	assert_true(fake_env.n < MAX_VARS);
	fake_env.name[fake_env.n] = name;
	fake_env.value[fake_env.n] = value;
	fake_env.n++;
}

/* ---- temporary directory ---------------------------------------------- */

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	memset(&fake_env, 0, sizeof fake_env);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sfy-unit-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes text (len bytes) to tmpdir/rel; returns the full path (static). */
static const char *write_file(const char *rel, const char *text, size_t len)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static const char *write_conf(const char *rel, const char *text)
{
	return write_file(rel, text, strlen(text));
}

static int etc_conf_exists(void)
{
	return access("/etc/socksify.conf", F_OK) == 0;
}

static void expect_v4_proxy(const struct sfy_config *cfg, const char *addr, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg->proxy;
	struct in_addr want;
	assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_addr.s_addr, want.s_addr);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void expect_prefix(const char *got, const char *prefix)
{
	if (strncmp(got, prefix, strlen(prefix)) != 0)
		fail_msg("got \"%s\", want prefix \"%s\"", got, prefix);
}

/* ---- tests ------------------------------------------------------------ */

static void test_conf_from_env_path(void **state)
{
	(void)state;
	const char *path = write_conf("a.conf", "proxy = socks5://10.0.0.2:1090\nlog_level = info\n");
	char saved[PATH_MAX];
	snprintf(saved, sizeof saved, "%s", path);
	env_set("SOCKSIFY_CONF", saved);
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.source, saved);
	expect_v4_proxy(&cfg, "10.0.0.2", 1090);
	assert_int_equal(cfg.remote_dns, 0);
	assert_int_equal(cfg.log_level, SFY_LOG_INFO);
}

static void test_env_overrides_file(void **state)
{
	(void)state;
	char saved[PATH_MAX];
	snprintf(saved, sizeof saved, "%s",
		 write_conf("a.conf", "proxy = socks5://10.0.0.2:1090\nlog_level = info\nlog_file = /tmp/a.log\n"));
	env_set("SOCKSIFY_CONF", saved);
	env_set("SOCKSIFY_PROXY", "socks5h://10.9.9.9:2000");
	env_set("SOCKSIFY_LOG_LEVEL", "debug");
	env_set("SOCKSIFY_LOG_FILE", "/tmp/b.log");
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	expect_v4_proxy(&cfg, "10.9.9.9", 2000);
	assert_string_equal(cfg.proxy_text, "10.9.9.9:2000");
	assert_int_equal(cfg.remote_dns, 1);
	assert_int_equal(cfg.log_level, SFY_LOG_DEBUG);
	assert_string_equal(cfg.log_file, "/tmp/b.log");
}

static void test_empty_env_values_ignored(void **state)
{
	(void)state;
	char saved[PATH_MAX];
	snprintf(saved, sizeof saved, "%s", write_conf("a.conf", "proxy = socks5://10.0.0.2:1090\n"));
	env_set("SOCKSIFY_CONF", saved);
	env_set("SOCKSIFY_PROXY", "");
	env_set("SOCKSIFY_LOG_LEVEL", "");
	env_set("SOCKSIFY_LOG_FILE", "");
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	expect_v4_proxy(&cfg, "10.0.0.2", 1090);
	assert_int_equal(cfg.log_level, SFY_LOG_WARN);
	assert_string_equal(cfg.log_file, "");
}

static void test_home_config(void **state)
{
	(void)state;
	char dir[PATH_MAX], want[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/.config", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof dir, "%s/.config/socksify", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(want, sizeof want, "%s", write_conf(".config/socksify/socksify.conf", "udp = allow\n"));
	env_set("HOME", tmpdir);
	env_set("SOCKSIFY_CONF", ""); /* empty: not set */
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.source, want);
	assert_int_equal(cfg.udp_mode, SFY_UDP_ALLOW);
}

static void test_no_config_anywhere(void **state)
{
	(void)state;
	if (etc_conf_exists())
		skip();
	env_set("HOME", tmpdir); /* no .config/socksify/socksify.conf there */
	struct sfy_config cfg, def;
	sfy_config_load(&cfg, 0, fake_getenv);
	sfy_config_defaults(&def);
	sfy_config_link(&def); /* route 1 of the default proxy, as the loader makes it */
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.source, "");
	assert_memory_equal(&cfg, &def, SFY_CONFIG_SET_PART);
	assert_string_equal(cfg.log_file, def.log_file);
	assert_string_equal(cfg.source, def.source);
}

/* secure: not one environment variable is even looked at. */
static void test_secure_ignores_env(void **state)
{
	(void)state;
	char dir[PATH_MAX], bad[PATH_MAX];
	snprintf(bad, sizeof bad, "%s", write_conf("bad.conf", "this is not valid\n"));
	snprintf(dir, sizeof dir, "%s/.config", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof dir, "%s/.config/socksify", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_conf(".config/socksify/socksify.conf", "proxy = socks5://10.6.6.6:1\n");
	env_set("SOCKSIFY_CONF", bad);
	env_set("HOME", tmpdir);
	env_set("SOCKSIFY_PROXY", "socks5://10.7.7.7:7");
	env_set("SOCKSIFY_LOG_LEVEL", "debug");
	env_set("SOCKSIFY_LOG_FILE", "/tmp/evil.log");
	struct sfy_config cfg;
	sfy_config_load(&cfg, 1, fake_getenv);
	assert_int_equal(fake_env.calls, 0);
	assert_string_not_equal(cfg.source, bad);
	if (etc_conf_exists())
		return;
	struct sfy_config def;
	sfy_config_defaults(&def);
	sfy_config_link(&def);
	assert_memory_equal(&cfg, &def, SFY_CONFIG_SET_PART);
	assert_string_equal(cfg.log_file, def.log_file);
	assert_string_equal(cfg.source, def.source);
}

static void test_missing_conf_file(void **state)
{
	(void)state;
	char path[PATH_MAX], want[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/does-not-exist.conf", tmpdir);
	env_set("SOCKSIFY_CONF", path);
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	snprintf(want, sizeof want, "%s: cannot read: %s", path, strerror(ENOENT));
	assert_string_equal(cfg.error, want);
}

static void test_conf_file_with_error(void **state)
{
	(void)state;
	char path[PATH_MAX], want[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s", write_conf("e.conf", "udp = allow\nbogus = 1\nlog_level = info\n"));
	env_set("SOCKSIFY_CONF", path);
	env_set("SOCKSIFY_LOG_LEVEL", "loud"); /* a later env error keeps the first */
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_string_equal(cfg.source, path);
	snprintf(want, sizeof want, "%s:2: bogus: unknown key", path);
	assert_string_equal(cfg.error, want);
}

static void test_bad_env_values(void **state)
{
	(void)state;
	struct sfy_config cfg;
	env_set("SOCKSIFY_LOG_LEVEL", "loud");
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	expect_prefix(cfg.error, "SOCKSIFY_LOG_LEVEL: ");
	fake_env.n = 0;
	env_set("SOCKSIFY_PROXY", "socks5h://proxy.example:1080");
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	expect_prefix(cfg.error, "SOCKSIFY_PROXY: proxy URL");
	fake_env.n = 0;
	env_set("SOCKSIFY_LOG_FILE", "relative.log");
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_string_equal(cfg.error, "SOCKSIFY_LOG_FILE: expected an absolute path");
}

static void test_env_too_long(void **state)
{
	(void)state;
	struct sfy_config cfg;
	char *v = malloc(PATH_MAX + 16);
	assert_non_null(v);
	memset(v, '1', PATH_MAX + 15);
	v[PATH_MAX + 15] = '\0';
	memcpy(v, "socks5h://", 10);
	env_set("SOCKSIFY_PROXY", v);
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_string_equal(cfg.error, "SOCKSIFY_PROXY: proxy URL too long");
	v[0] = '/';
	fake_env.n = 0;
	env_set("SOCKSIFY_LOG_FILE", v);
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_string_equal(cfg.error, "SOCKSIFY_LOG_FILE: expected an absolute path");
	fake_env.n = 0;
	env_set("SOCKSIFY_CONF", v);
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_string_equal(cfg.error, "SOCKSIFY_CONF: path too long");
	free(v);
}

/* A file of exactly n bytes of comment lines. */
static const char *write_sized_conf(const char *rel, size_t n)
{
	char *text = malloc(n + 1);
	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		text[i] = i % 100 == 99 ? '\n' : (i % 100 == 0 ? '#' : 'c');
	text[n] = '\0';
	const char *path = write_file(rel, text, n);
	free(text);
	return path;
}

static void test_conf_size_limit(void **state)
{
	(void)state;
	char ok[PATH_MAX], big[PATH_MAX], want[PATH_MAX + 64];
	snprintf(ok, sizeof ok, "%s", write_sized_conf("ok.conf", SFY_MAX_CONFIG));
	snprintf(big, sizeof big, "%s", write_sized_conf("big.conf", SFY_MAX_CONFIG + 1));
	struct sfy_config cfg;
	env_set("SOCKSIFY_CONF", ok);
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	fake_env.value[0] = big;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	snprintf(want, sizeof want, "%s: cannot read: file larger than 64 KiB", big);
	assert_string_equal(cfg.error, want);
}

static void test_conf_is_directory(void **state)
{
	(void)state;
	env_set("SOCKSIFY_CONF", tmpdir);
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	expect_prefix(cfg.error, tmpdir);
	assert_non_null(strstr(cfg.error, ": cannot read: "));
}

/* A proxy chosen by the environment must never get the file's password. */
static void test_env_proxy_drops_file_credentials(void **state)
{
	(void)state;
	char saved[PATH_MAX];
	snprintf(saved, sizeof saved, "%s",
		 write_conf("a.conf", "proxy = socks5h://10.0.0.2:1090\nusername = alice\npassword = filesecret\n"));
	env_set("SOCKSIFY_CONF", saved);
	env_set("SOCKSIFY_PROXY", "socks5h://10.9.9.9:2000");
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.pass, "");
}

static void test_env_proxy_credentials(void **state)
{
	(void)state;
	env_set("SOCKSIFY_PROXY", "socks5h://bob:p%40ss@10.9.9.9:2000");
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 1);
	assert_string_equal(cfg.user, "bob");
	assert_string_equal(cfg.pass, "p@ss");
}

static void test_username_without_password(void **state)
{
	(void)state;
	char saved[PATH_MAX];
	snprintf(saved, sizeof saved, "%s", write_conf("a.conf", "username = alice\n"));
	env_set("SOCKSIFY_CONF", saved);
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, fake_getenv);
	assert_int_equal(cfg.valid, 0);
	assert_non_null(strstr(cfg.error, "a username is set but no password"));
	assert_non_null(strstr(cfg.error, saved));
}

/* Numbers are plain digits: no blanks, signs, hex or exponents. */
static void test_strict_numbers(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"connect_timeout = 0x10", "handshake_timeout = 1e1", "bind_timeout = -1",
		"fake_pool_size = +100", "direct = 10.0.0.0/ 8", "direct = 10.0.0.0/+8",
		"direct = 10.0.0.1:+80", "proxy = socks5h://127.0.0.1:+1080",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sfy_config cfg;
		sfy_config_defaults(&cfg);
		if (sfy_config_parse_text(&cfg, bad[i], "t.conf") != -1)
			fail_msg("accepted: %s", bad[i]);
	}
	struct sfy_config ok;
	sfy_config_defaults(&ok);
	assert_int_equal(sfy_config_parse_text(&ok, "connect_timeout = 2.5\nfake_pool_size = 100\n", "t.conf"), 0);
	assert_int_equal(ok.connect_timeout_ms, 2500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conf_from_env_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_env_values_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_config_anywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secure_ignores_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_conf_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_file_with_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_env_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_is_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_proxy_drops_file_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_proxy_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_username_without_password, setup, teardown),
		cmocka_unit_test(test_strict_numbers),
	};
	return cmocka_run_group_tests_name("config_load", tests, NULL, NULL);
}
