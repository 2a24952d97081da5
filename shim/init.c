/* One-time initialisation.  At load, the constructor only notes the
 * environment and registers the fork handlers; the configuration is read at
 * the first hook that needs it (or before a fork), so that a program that
 * never touches the network pays next to nothing.  Real libc functions are
 * looked up at their first use (REAL() in shim.h), the fake pool at its
 * first use (sfy_names_pool, shim/session.c).  The constructor also settles
 * the session id (sfy_session_setup), which children must inherit. */
#include "shim.h"
#include "async.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "sfy_fdtable.h"
#include "sfy_hosts.h"
#include "sfy_log.h"

struct sfy_real sfy_real;
struct sfy_config sfy_cfg;

void *sfy_real_resolve(void **slot, const char *name)
{
	int saved = errno;
	void *f = dlsym(RTLD_NEXT, name); /* close_range, fcntl64: absent from old libcs */
	__atomic_store_n(slot, f ? f : SFY_REAL_MISSING, __ATOMIC_RELEASE);
	errno = saved;
	return f;
}

/* The environment as it was at load: the program may change or overwrite
 * its own (setenv, clearenv, a process title written over it) before the
 * configuration is read.  Each value is kept up to one byte past the
 * longest the configuration accepts, so an over-long one is still refused
 * as over-long. */
static const struct {
	const char *name;
	size_t keep;
} env_vars[] = {
	{"SOCKSIFY_CONF", PATH_MAX + 1}, {"HOME", PATH_MAX + 1}, {"SOCKSIFY_PROXY", SFY_MAX_LINE + 1},
	{"SOCKSIFY_LOG_LEVEL", 16}, {"SOCKSIFY_LOG_FILE", PATH_MAX + 1}, {"SOCKSIFY_SESSION", 66},
};
#define N_ENV_VARS (sizeof env_vars / sizeof env_vars[0])
static char env_store[3 * (PATH_MAX + 2) + (SFY_MAX_LINE + 2) + 17 + 67];
static const char *env_value[N_ENV_VARS];
static int env_taken;
static int env_secure;

/* Caller holds init_lock. */
static void env_take(void)
{
	if (env_taken)
		return;
	env_taken = 1;
	env_secure = getauxval(AT_SECURE) != 0;
	size_t used = 0;
	for (size_t i = 0; i < N_ENV_VARS && !env_secure; i++) {
		const char *v = getenv(env_vars[i].name);
		if (!v)
			continue;
		size_t len = strnlen(v, env_vars[i].keep);
		if (used + len + 1 > sizeof env_store)
			break; /* cannot happen: the store holds every value at its longest */
		memcpy(env_store + used, v, len);
		env_store[used + len] = '\0';
		env_value[i] = env_store + used;
		used += len + 1;
	}
}

static const char *env_lookup(const char *name)
{
	for (size_t i = 0; i < N_ENV_VARS; i++)
		if (strcmp(env_vars[i].name, name) == 0)
			return env_value[i];
	return NULL;
}

/* A relative path would be read from wherever the program has moved to by
 * its first connection: read the configuration now instead. */
static int config_needs_reading_now(void)
{
	const char *conf = env_lookup("SOCKSIFY_CONF"), *home = env_lookup("HOME");
	if (conf && *conf)
		return conf[0] != '/';
	return home && *home && home[0] != '/';
}

/* Once-only initialisation without pthread_once (whose completion costs a
 * futex syscall in every process) and without thread-local storage (a TLS
 * block makes the library dearer to load and every thread dearer to start).
 * init_thread is the thread running the initialisation while init_running:
 * hooks it reaches itself (config reading closes a file) must not wait for
 * it; other threads wait on the lock. */
static int init_done;
static int init_running;
static pthread_t init_thread;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_body(void)
{
	int saved = errno;
	env_take();
	sfy_config_load(&sfy_cfg, env_secure, env_lookup);
	sfy_log_setup(&sfy_cfg);
	if (!sfy_cfg.valid) {
		sfy_log_to_stderr("%s; every connection will fail (EACCES) until it is fixed", sfy_cfg.error);
		sfy_config_fail_closed(&sfy_cfg);
	}
	if (sfy_cfg.warning[0])
		sfy_log(SFY_LOG_WARN, "%s", sfy_cfg.warning);
	sfy_log(SFY_LOG_DEBUG, "loaded; config %s, proxy %s, %s dns%s", sfy_cfg.source[0] ? sfy_cfg.source : "(defaults)",
		sfy_cfg.proxy_text, sfy_cfg.remote_dns ? "remote" : "local",
		env_secure ? ", secure mode: environment ignored" : "");
	errno = saved;
}

void sfy_init(void)
{
	if (__builtin_expect(__atomic_load_n(&init_done, __ATOMIC_ACQUIRE), 1))
		return;
	if (__atomic_load_n(&init_running, __ATOMIC_ACQUIRE) && pthread_equal(init_thread, pthread_self()))
		return;
	pthread_mutex_lock(&init_lock);
	if (!init_done) {
		init_thread = pthread_self();
		__atomic_store_n(&init_running, 1, __ATOMIC_RELEASE);
		init_body();
		__atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&init_running, 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&init_lock);
}

/* Hold the fd table's lock across fork() so the child never inherits a
 * copy mid-update.  The parent initialises first, so that its children
 * inherit the configuration instead of each reading it.  The fake pool is
 * shared memory with its own lock, nothing to hold for it: a session's
 * children join it by name, and a private pool is made now so that both
 * sides share it (sfy_session_before_fork). */
static void before_fork(void)
{
	sfy_init();
	sfy_session_before_fork();
	sfy_fd_lock();
	sfy_hosts_lock();
	sfy_async_fork_prepare();
}

static void after_fork_parent(void)
{
	sfy_async_fork_parent();
	sfy_hosts_unlock();
	sfy_fd_unlock();
	sfy_session_after_fork();
}

static void after_fork_child(void)
{
	sfy_async_fork_child();
	sfy_hosts_unlock();
	sfy_fd_unlock();
	sfy_session_after_fork();
}

__attribute__((constructor)) static void sfy_constructor(void)
{
	pthread_mutex_lock(&init_lock);
	env_take();
	int now = config_needs_reading_now();
	pthread_mutex_unlock(&init_lock);
	sfy_session_setup(env_lookup("SOCKSIFY_SESSION"), env_secure);
	/* _exit() is looked up now, not at its first use: it is called where
	 * dlsym() cannot run, such as the clone(CLONE_VM|CLONE_SETTLS) child
	 * with a zeroed TLS block that Chromium's sandbox makes. */
	(void)REAL(_exit);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	if (now)
		sfy_init();
}
