/* One-time initialisation: real libc symbols, configuration, fake pool. */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include "sfy_fdtable.h"
#include "sfy_log.h"

struct sfy_real sfy_real;
struct sfy_config sfy_cfg;
struct sfy_pool *sfy_fake_pool;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Set while this thread runs the initialisation: hooks it reaches (config
 * reading closes a file) must not wait on the pthread_once they are inside. */
static __thread int initialising;

#define RESOLVE(name) (*(void **)&sfy_real.name = dlsym(RTLD_NEXT, #name))

static void resolve_symbols(void)
{
	RESOLVE(connect);
	RESOLVE(close);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(fcntl64); /* glibc >= 2.28; programs built with 64-bit offsets call it */
	RESOLVE(close_range); /* may be NULL on an old libc */
	RESOLVE(getaddrinfo);
	RESOLVE(freeaddrinfo);
	RESOLVE(getnameinfo);
	RESOLVE(gethostbyname);
	RESOLVE(gethostbyname2);
	RESOLVE(gethostbyname_r);
	RESOLVE(gethostbyname2_r);
	RESOLVE(gethostbyaddr);
	RESOLVE(gethostbyaddr_r);
	RESOLVE(getpeername);
	RESOLVE(getsockname);
	RESOLVE(bind);
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(epoll_ctl);
	RESOLVE(sendto);
	RESOLVE(sendmsg);
	RESOLVE(sendmmsg);
}

/* Hold the fd table's lock across fork() so the child never inherits a
 * copy mid-update.  The fake pool is shared memory, not copied: the child
 * uses the same pool and lock, so there is nothing to hold for it. */
static void before_fork(void)
{
	sfy_fd_lock();
}

static void after_fork(void)
{
	sfy_fd_unlock();
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

static void init_once_body(void)
{
	int saved = errno;
	initialising = 1;
	resolve_symbols();
	int secure = getauxval(AT_SECURE) != 0;
	sfy_config_load(&sfy_cfg, secure, env_lookup);
	sfy_log_setup(&sfy_cfg);
	if (!sfy_cfg.valid) {
		sfy_log_to_stderr("%s; every connection will fail (EACCES) until it is fixed", sfy_cfg.error);
		/* Half a config is no config: keep nothing from it that lets
		 * traffic or names go direct. */
		sfy_cfg.n_direct = sfy_cfg.n_direct_domain = 0;
		sfy_cfg.direct_loopback = 0;
		sfy_cfg.udp_allow = 0;
		sfy_cfg.remote_dns = 1;
	}
	if (sfy_cfg.warning[0])
		sfy_log(SFY_LOG_WARN, "%s", sfy_cfg.warning);
	if (sfy_cfg.remote_dns) {
		sfy_fake_pool = sfy_pool_new(&sfy_cfg.fake4, &sfy_cfg.fake6, sfy_cfg.fake_pool_size);
		if (!sfy_fake_pool)
			sfy_log(SFY_LOG_ERROR, "cannot create the fake address pool; names will not resolve");
	}
	pthread_atfork(before_fork, after_fork, after_fork);
	sfy_log(SFY_LOG_DEBUG, "loaded; config %s, proxy %s, %s dns%s", sfy_cfg.source[0] ? sfy_cfg.source : "(defaults)",
		sfy_cfg.proxy_text, sfy_cfg.remote_dns ? "remote" : "local", secure ? ", secure mode: environment ignored" : "");
	initialising = 0;
	errno = saved;
}

void sfy_init(void)
{
	if (initialising)
		return;
	pthread_once(&init_once, init_once_body);
}

__attribute__((constructor)) static void sfy_constructor(void)
{
	sfy_init();
}
