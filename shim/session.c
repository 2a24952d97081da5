/* The session layer: the fake pool every process of one socksified session
 * shares, across fork() and exec().
 *
 * The constructor settles the session id: SOCKSIFY_SESSION as inherited,
 * or a new one (this process's pid, "-", 64 random bits) put into the
 * environment, so that every child and every program they exec inherits
 * it.  Under AT_SECURE the environment is not trusted: the process gets a
 * private pool, shared with its forked children only.  A malformed id is
 * refused: names then fail and fake addresses get EHOSTUNREACH (fail
 * closed), with one log line.
 *
 * The pool itself is mapped at first use (sfy_names_pool: created if the
 * session has none yet; sfy_fake_name: only joined, a fake address cannot
 * make a pool), so a program that never touches the network pays nothing
 * but the id.  The leader (the pid in the id) removes the object when it
 * exits; objects of leaders that died without doing so are removed by the
 * next pool creation of the same user (sfy_session_reap). */
#include "shim.h"
#include "session.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sfy_log.h"
#include "sfy_routes.h"

enum sess_mode { MODE_PRIVATE, MODE_SESSION, MODE_BAD };

static enum sess_mode sess_mode;
static char sess_id[SFY_SESSION_ID_MAX + 1];

static struct sfy_pool *fake_pool;
static pthread_mutex_t fake_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int fake_pool_failed;

/* splitmix64: spreads a few weak sources over 64 bits. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Bits that tell this process's moment apart, without a system call (the
 * clock is read through the vDSO).  Not AT_RANDOM: glibc's stack guard and
 * pointer guard are made from those bytes, and the id is visible to every
 * child and in /proc/PID/environ. */
static uint64_t cheap_random(uint64_t salt)
{
	struct timespec rt, mt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	uint64_t x = mix(salt ^ (uint64_t)(uintptr_t)&rt); /* the stack's place: ASLR */
	x = mix(x ^ (uint64_t)rt.tv_sec * 1000000000ull ^ (uint64_t)rt.tv_nsec);
	return mix(x ^ (uint64_t)mt.tv_nsec ^ (uint64_t)(uintptr_t)&sess_mode);
}

void sfy_session_setup(const char *inherited, int secure)
{
	if (secure) {
		sess_mode = MODE_PRIVATE;
		return;
	}
	if (inherited) {
		size_t n = strnlen(inherited, sizeof sess_id - 1);
		memcpy(sess_id, inherited, n); /* kept (cut short) for the log line */
		sess_id[n] = '\0';
		sess_mode = sfy_session_id_ok(inherited) ? MODE_SESSION : MODE_BAD;
		return;
	}
	pid_t pid = getpid();
	snprintf(sess_id, sizeof sess_id, "%d-%016llx", (int)pid, (unsigned long long)cheap_random((uint64_t)pid));
	/* Without it in the environment the children would start sessions of
	 * their own: then keep this process's pool to itself. */
	sess_mode = setenv(SFY_SESSION_ENV, sess_id, 1) == 0 ? MODE_SESSION : MODE_PRIVATE;
}

const char *sfy_session_id(void)
{
	return sess_mode == MODE_PRIVATE ? NULL : sess_id;
}

static int session_path(char *out, size_t cap)
{
	return sfy_session_path(out, cap, SFY_SESSION_DIR, geteuid(), sess_id);
}

static uint64_t pool_tag(void)
{
	uint64_t tag;
	if (getrandom(&tag, sizeof tag, GRND_NONBLOCK) != (ssize_t)sizeof tag)
		tag = cheap_random((uint64_t)getpid());
	return tag;
}

/* Pool for this process whose address space has none yet, with the pool
 * lock held.  create: make the session's object if it has none.  NULL
 * with *msg set when names must fail for good (logged by the caller). */
static struct sfy_pool *obtain(int create, char *msg, size_t msglen)
{
	struct sfy_pool_settings s = {&sfy_cfg.fake4, &sfy_cfg.fake6, sfy_cfg.fake_pool_size};
	if (sess_mode == MODE_BAD) {
		snprintf(msg, msglen, "%s=%s is not a session id (1 to %d of A-Z a-z 0-9 _ -)", SFY_SESSION_ENV,
			 sess_id, SFY_SESSION_ID_MAX);
		return NULL;
	}
	if (sess_mode == MODE_PRIVATE) {
		if (!create)
			return NULL;
		size_t size = sfy_pool_bytes(s.fake4, s.fake6, s.capacity);
		void *mem = size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
				 : MAP_FAILED;
		const char *why = "bad fake ranges";
		struct sfy_pool *p = NULL;
		if (mem != MAP_FAILED && sfy_pool_format(mem, size, s.fake4, s.fake6, s.capacity, pool_tag(), 0) == 0)
			p = sfy_pool_attach(mem, size, s.fake4, s.fake6, s.capacity, &why);
		else if (mem != MAP_FAILED)
			munmap(mem, size);
		if (!p)
			snprintf(msg, msglen, "cannot create the fake address pool (%s)", why);
		return p;
	}
	char path[PATH_MAX], why[200];
	if (session_path(path, sizeof path) < 0) {
		snprintf(msg, msglen, "session pool path too long");
		return NULL;
	}
	struct sfy_pool *p = NULL;
	enum sfy_session_rc rc;
	if (create) {
		sfy_session_reap(SFY_SESSION_DIR, geteuid());
		rc = sfy_session_create(path, &s, pool_tag(), &p, why, sizeof why);
	} else {
		rc = sfy_session_join(path, &s, &p, why, sizeof why);
	}
	if (rc == SFY_SESSION_REFUSED || rc == SFY_SESSION_FAILED)
		snprintf(msg, msglen, "session pool %s %s: %s", path, rc == SFY_SESSION_REFUSED ? "refused" : "failed",
			 why);
	else if (rc == SFY_SESSION_OK)
		sfy_log(SFY_LOG_DEBUG, "session pool %s %s", path, create ? "in use" : "joined");
	return p;
}

static struct sfy_pool *get_pool(int create)
{
	char msg[PATH_MAX + 300] = "";
	pthread_mutex_lock(&fake_pool_lock);
	struct sfy_pool *pool = fake_pool;
	if (!pool && !fake_pool_failed) {
		pool = obtain(create, msg, sizeof msg);
		if (pool)
			__atomic_store_n(&fake_pool, pool, __ATOMIC_RELEASE);
		else if (msg[0])
			fake_pool_failed = 1; /* names fail from now on: no retry, one log line */
	}
	pthread_mutex_unlock(&fake_pool_lock);
	if (msg[0])
		sfy_log(SFY_LOG_ERROR, "%s; names will not resolve and fake addresses fail (EHOSTUNREACH)", msg);
	return pool;
}

struct sfy_pool *sfy_names_pool(void)
{
	struct sfy_pool *pool = __atomic_load_n(&fake_pool, __ATOMIC_ACQUIRE);
	if (pool || !sfy_cfg.remote_dns)
		return pool;
	return get_pool(1);
}

int sfy_fake_name(const struct sockaddr *sa, char *name, size_t cap)
{
	if (!sfy_cfg.remote_dns)
		return 0;
	struct sfy_pool *pool = __atomic_load_n(&fake_pool, __ATOMIC_ACQUIRE);
	if (pool)
		return sfy_pool_name(pool, sa, name, cap);
	if (!sfy_cidr_match(&sfy_cfg.fake4, sa) && !sfy_cidr_match(&sfy_cfg.fake6, sa))
		return 0;
	/* A fake address in a process that has no pool mapped: the session's
	 * pool may hold it (made by a parent before an exec, or a sibling).
	 * Join it; never create one for this.  None: stale. */
	pool = get_pool(0);
	return pool ? sfy_pool_name(pool, sa, name, cap) : -1;
}

/* The route state (round robin, routes down) every process of the session
 * shares: in the session object's header, made if the session has none
 * yet (also under remote_dns = no, where names need no pool).  Without a
 * usable object, this process's own (its children start afresh). */
struct sfy_route_state *sfy_session_route_state(void)
{
	static struct sfy_route_state own;
	struct sfy_pool *pool = __atomic_load_n(&fake_pool, __ATOMIC_ACQUIRE);
	if (!pool)
		pool = get_pool(1);
	return pool ? sfy_pool_route_state(pool) : &own;
}

void sfy_session_before_fork(void)
{
	/* A private pool is shared with children only if it exists before
	 * the fork (lftp resolves in a child and connects in the parent); a
	 * session's children find theirs by name. */
	if (sess_mode == MODE_PRIVATE && sfy_cfg.remote_dns && !__atomic_load_n(&fake_pool, __ATOMIC_ACQUIRE))
		get_pool(1);
	/* Another thread may be making or joining the pool: the child would
	 * inherit its lock held by a thread it does not have. */
	pthread_mutex_lock(&fake_pool_lock);
}

void sfy_session_after_fork(void)
{
	pthread_mutex_unlock(&fake_pool_lock);
}

/* The leader ends the session: its object goes (processes that still map
 * it keep their mapping).  From the destructor (exit()) and the _exit()
 * hooks; a leader killed by a signal leaves it to sfy_session_reap. */
void sfy_session_end(void)
{
	if (sess_mode != MODE_SESSION)
		return;
	pid_t leader = sfy_session_leader(sess_id);
	if (leader <= 0 || leader != getpid())
		return;
	int saved = errno;
	/* Only root's sessions can hold other users' objects (a process
	 * that changed uid); anyone else has one object to remove, which
	 * costs one unlink() instead of a directory scan at every exit. */
	char path[sizeof SFY_SESSION_DIR + 32 + SFY_SESSION_ID_MAX];
	if (geteuid() == 0)
		sfy_session_remove_all(SFY_SESSION_DIR, sess_id);
	else if (sfy_session_path(path, sizeof path, SFY_SESSION_DIR, geteuid(), sess_id) == 0)
		sfy_session_remove(path);
	errno = saved;
}

__attribute__((destructor)) static void session_destructor(void)
{
	sfy_session_end();
}
