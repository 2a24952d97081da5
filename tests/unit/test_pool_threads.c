/* Concurrency tests for the fake-address pool (shim/pool.c): 8 threads x 2000
 * mappings of overlapping names, each followed by a reverse look-up, plus
 * random reverse look-ups.  Worker threads never call cmocka (its asserts
 * longjmp); they record the first failure and the main thread checks it.
 *
 * What is always true, and so what is asserted:
 *  - a name maps to an address inside the fake ranges, and a reverse look-up
 *    of any address inside them never says "not fake" (0);
 *  - a reverse look-up that names something names one of the names in play,
 *    spelled as some thread spelled it (never a torn or foreign string);
 *  - when the pool can hold every name in play, nothing is ever recycled, so
 *    a name's slot never changes and the reverse answer is exactly the name;
 *  - with recycling: after my map of N, N's slot can only be given to
 *    another name once at least `capacity` pool operations (each moves at
 *    most one slot to the front of the LRU list) have run after mine.  Every
 *    thread bumps a global counter before each pool call, and has at most one
 *    call in flight, so at most (THREADS - 1) + (c1 - c0 - 2) operations ran
 *    between my map and my reverse look-up, where c0 is the counter before my
 *    map's bump and c1 is read after the reverse look-up returns.  Below
 *    `capacity`, the answer must be exactly N; above, N or another name in
 *    play (or -1). */
#include <arpa/inet.h>
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

#include <cmocka.h>

#include "sfy_pool.h"

#define THREADS 8
#define OPS 2000
#define MAX_UNIVERSE 256

struct run {
	struct sfy_pool *pool;
	unsigned universe;
	unsigned capacity;
	int no_recycling;                /* capacity >= universe */
	unsigned long ops;               /* pool calls started, all threads */
	uint32_t first_slot[MAX_UNIVERSE]; /* slot + 1, 0 = not seen yet */
	unsigned long strict, loose, recycled_seen;
	int failed;
	char why[256];
};

struct worker {
	struct run *run;
	unsigned seed;
};

/* ---- names in play ---------------------------------------------------- */

/* Name k, with a length that varies so a torn copy could not look whole;
 * upper selects the spelling. */
static void make_name(char *out, size_t cap, unsigned k, int upper)
{
	char pad[48];
	size_t n = k % 40;
	memset(pad, 'x', n);
	pad[n] = '\0';
	snprintf(out, cap, "n%u-%s.example.test", k, pad);
	if (upper)
		for (char *s = out; *s; s++)
			if (*s >= 'a' && *s <= 'z')
				*s = (char)(*s - 32);
}

static int in_play(const struct run *r, const char *name)
{
	unsigned k;
	char want[128];
	if (sscanf(name, "%*1[nN]%u-", &k) != 1 || k >= r->universe)
		return 0;
	make_name(want, sizeof want, k, 0);
	return strcasecmp(want, name) == 0;
}

/* ---- failure recording (threads) -------------------------------------- */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail_run(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_run(struct run *r, const char *fmt, ...)
{
	pthread_mutex_lock(&fail_lock);
	if (!r->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof r->why, fmt, ap);
		va_end(ap);
		r->failed = 1;
	}
	pthread_mutex_unlock(&fail_lock);
}

/* ---- address helpers -------------------------------------------------- */

/* Slot number of a fake address (its low 32 bits minus one), or -1. */
static long slot_of(const struct sockaddr_storage *ss, unsigned mask)
{
	uint32_t low;
	if (ss->ss_family == AF_INET)
		memcpy(&low, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else
		memcpy(&low, ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr + 12, 4);
	low = ntohl(low) & mask;
	return low == 0 ? -1 : (long)low - 1;
}

static void slot_addr(struct sockaddr_storage *ss, int family, unsigned slot)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(0x0A4D0000u | (slot + 1)); /* 10.77.0.0/24 */
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "fd77::", &sin6->sin6_addr); /* fd77::/120 */
		sin6->sin6_addr.s6_addr[15] = (uint8_t)(slot + 1);
	}
}

static unsigned long bump(struct run *r)
{
	return __atomic_fetch_add(&r->ops, 1, __ATOMIC_SEQ_CST);
}

/* ---- one worker step -------------------------------------------------- */

static void check_slot_stable(struct run *r, unsigned k, long slot)
{
	uint32_t expect = 0, mine = (uint32_t)slot + 1;
	if (!__atomic_compare_exchange_n(&r->first_slot[k], &expect, mine, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
	    expect != mine)
		fail_run(r, "name %u moved from slot %u to slot %ld without recycling", k, expect - 1, slot);
}

static void map_then_reverse(struct run *r, unsigned k, int family, int upper)
{
	char name[128], got[256];
	struct sockaddr_storage ss;
	make_name(name, sizeof name, k, upper);
	unsigned long c0 = bump(r);
	if (sfy_pool_map(r->pool, name, family, &ss) != 0) {
		fail_run(r, "map \"%s\" failed", name);
		return;
	}
	long slot = slot_of(&ss, 0xff);
	if (!sfy_pool_is_fake(r->pool, (struct sockaddr *)&ss) || slot < 0 || slot >= (long)r->capacity) {
		fail_run(r, "map \"%s\" gave an address outside the pool", name);
		return;
	}
	bump(r);
	int rc = sfy_pool_name(r->pool, (struct sockaddr *)&ss, got, sizeof got);
	unsigned long c1 = __atomic_load_n(&r->ops, __ATOMIC_SEQ_CST);
	int exact = rc == 1 && strcasecmp(got, name) == 0;
	if (r->no_recycling) {
		check_slot_stable(r, k, slot);
		if (!exact)
			fail_run(r, "no recycling, yet slot %ld of \"%s\" answers %d \"%s\"", slot, name, rc, got);
		return;
	}
	unsigned long others = (THREADS - 1) + (c1 - c0 - 2);
	if (others < r->capacity) {
		__atomic_fetch_add(&r->strict, 1, __ATOMIC_RELAXED);
		if (!exact)
			fail_run(r, "at most %lu operations in between, yet slot %ld of \"%s\" answers %d \"%s\"",
				 others, slot, name, rc, got);
		return;
	}
	__atomic_fetch_add(&r->loose, 1, __ATOMIC_RELAXED);
	if (!exact)
		__atomic_fetch_add(&r->recycled_seen, 1, __ATOMIC_RELAXED);
	if (rc == 0 || (rc == 1 && !in_play(r, got)))
		fail_run(r, "slot %ld of \"%s\" answers %d \"%s\"", slot, name, rc, got);
}

static void random_reverse(struct run *r, unsigned slot, int family)
{
	struct sockaddr_storage ss;
	char got[256];
	slot_addr(&ss, family, slot);
	bump(r);
	int rc = sfy_pool_name(r->pool, (struct sockaddr *)&ss, got, sizeof got);
	if (rc == 0 || (rc == 1 && !in_play(r, got)))
		fail_run(r, "reverse of slot %u answers %d \"%s\"", slot, rc, rc == 1 ? got : "");
	if (rc == 1 && slot >= r->capacity)
		fail_run(r, "slot %u beyond capacity %u has a name", slot, r->capacity);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	for (int i = 0; i < OPS && !__atomic_load_n(&r->failed, __ATOMIC_RELAXED); i++) {
		unsigned k = (unsigned)rand_r(&w->seed) % r->universe;
		int family = rand_r(&w->seed) & 1 ? AF_INET : AF_INET6;
		map_then_reverse(r, k, family, rand_r(&w->seed) & 1);
		if (i % 3 == 0)
			random_reverse(r, (unsigned)rand_r(&w->seed) % 254, family);
	}
	return NULL;
}

/* ---- driver ----------------------------------------------------------- */

static struct run *run_new(unsigned universe, unsigned capacity)
{
	struct sfy_cidr c4, c6;
	assert_int_equal(sfy_cidr_parse("10.77.0.0/24", &c4, 0), 0);
	assert_int_equal(sfy_cidr_parse("fd77::/120", &c6, 0), 0);
	struct run *r = calloc(1, sizeof *r);
	assert_non_null(r);
	r->pool = sfy_pool_new(&c4, &c6, capacity);
	assert_non_null(r->pool);
	r->universe = universe;
	r->capacity = sfy_pool_capacity(r->pool);
	assert_int_equal(r->capacity, capacity);
	r->no_recycling = capacity >= universe;
	return r;
}

static void run_threads(struct run *r)
{
	pthread_t tid[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i].run = r;
		w[i].seed = 0x5eed0000u + (unsigned)i * 7919u;
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	if (r->failed)
		fail_msg("%s", r->why);
}

/* Quiescent: `capacity` fresh names get distinct slots and map back. */
static void check_quiescent(struct run *r)
{
	struct sockaddr_storage ss;
	char name[64], got[256];
	uint8_t seen[256] = {0};
	for (unsigned i = 0; i < r->capacity; i++) {
		snprintf(name, sizeof name, "final-%u.example", i);
		assert_int_equal(sfy_pool_map(r->pool, name, AF_INET, &ss), 0);
		long slot = slot_of(&ss, 0xff);
		assert_true(slot >= 0 && slot < (long)r->capacity);
		assert_int_equal(seen[slot], 0);
		seen[slot] = 1;
	}
	for (unsigned i = 0; i < r->capacity; i++) {
		snprintf(name, sizeof name, "final-%u.example", i);
		assert_int_equal(sfy_pool_map(r->pool, name, AF_INET6, &ss), 0);
		assert_int_equal(sfy_pool_name(r->pool, (struct sockaddr *)&ss, got, sizeof got), 1);
		assert_string_equal(got, name);
	}
}

static void run_free(struct run *r)
{
	sfy_pool_free(r->pool);
	free(r);
}

static void test_threads_no_recycling(void **state)
{
	(void)state;
	struct run *r = run_new(200, 254);
	run_threads(r);
	for (unsigned k = 0; k < r->universe; k++) { /* every name kept its slot */
		char name[128];
		struct sockaddr_storage ss;
		make_name(name, sizeof name, k, 0);
		assert_int_equal(sfy_pool_map(r->pool, name, AF_INET, &ss), 0);
		if (r->first_slot[k])
			assert_int_equal(slot_of(&ss, 0xff) + 1, r->first_slot[k]);
	}
	check_quiescent(r);
	run_free(r);
}

static void test_threads_recycling(void **state)
{
	(void)state;
	struct run *r = run_new(64, 16);
	run_threads(r);
	print_message("recycling run: %lu exact checks, %lu loose checks (%lu answered by another name)\n",
		      r->strict, r->loose, r->recycled_seen);
	assert_int_equal(r->strict + r->loose, (unsigned long)THREADS * OPS);
	check_quiescent(r);
	run_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_no_recycling),
		cmocka_unit_test(test_threads_recycling),
	};
	return cmocka_run_group_tests_name("pool_threads", tests, NULL, NULL);
}
