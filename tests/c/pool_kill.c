/* pool_kill: join this session's fake pool (SOCKSIFY_SESSION, the config
 * the library would read) and die by SIGKILL while holding the pool's lock,
 * half-way through writing a new name: what a program killed at the worst
 * moment leaves behind.  Links shim/pool.c built with SFY_POOL_TEST_HOOK
 * (see its rule in the Makefile).
 *
 *   pool_kill NAME     exit status 2 if the pool cannot be joined */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "session.h"

static void die_now(void)
{
	raise(SIGKILL);
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	const char *id = getenv(SFY_SESSION_ENV);
	if (argc != 2 || !id) {
		fprintf(stderr, "usage: SOCKSIFY_SESSION=ID pool_kill NAME\n");
		return 2;
	}
	struct sfy_config cfg;
	sfy_config_load(&cfg, 0, env_get);
	struct sfy_pool_settings s = {&cfg.fake4, &cfg.fake6, cfg.fake_pool_size};
	char path[PATH_MAX], why[200] = "";
	struct sfy_pool *pool = NULL;
	if (sfy_session_path(path, sizeof path, SFY_SESSION_DIR, geteuid(), id) < 0 ||
	    sfy_session_join(path, &s, &pool, why, sizeof why) != SFY_SESSION_OK) {
		fprintf(stderr, "pool_kill: cannot join %s: %s\n", path, why);
		return 2;
	}
	printf("joined %s\n", path);
	fflush(stdout);
	sfy_pool_test_hook = die_now;
	struct sockaddr_storage ss;
	sfy_pool_map(pool, argv[1], AF_INET, &ss);
	return 3; /* not reached */
}
