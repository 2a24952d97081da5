/* Fake-address pool (see include/sfy_pool.h).  A hash of names over a fixed
 * array of slots, with an LRU list through the slots for recycling.
 *
 * The pool lives in shared anonymous memory, so that processes forked from
 * the one that created it share one pool: a program that resolves in a
 * forked helper (lftp) and connects in the parent finds the name.  The lock
 * is process-shared and robust: a process that dies holding it leaves a
 * pool that the next user resets rather than trusts. */
#include "sfy_pool.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#define NIL UINT32_MAX

struct slot {
	uint32_t hash_next;    /* next slot in the same hash bucket */
	uint32_t lru_prev, lru_next;
	uint8_t used;
	char name[256];
};

struct sfy_pool {
	pthread_mutex_t lock;
	struct sfy_cidr range4, range6; /* host bits cleared */
	unsigned capacity;
	unsigned n_used;
	uint32_t lru_head, lru_tail; /* head = most recently used */
	uint32_t *buckets;           /* capacity buckets, allocated at first use */
	struct slot *slots;
};

/* Buckets hold slot+1, so that 0 (what a fresh mapping holds) is empty:
 * creating the pool touches none of its pages. */
static uint32_t bucket_head(const struct sfy_pool *p, uint32_t b)
{
	return p->buckets[b] ? p->buckets[b] - 1 : NIL;
}

static void set_bucket(struct sfy_pool *p, uint32_t b, uint32_t slot)
{
	p->buckets[b] = slot == NIL ? 0 : slot + 1;
}

/* Empty pool (wipe: the buckets may hold old links). */
static void reset(struct sfy_pool *p, int wipe)
{
	p->n_used = 0;
	p->lru_head = p->lru_tail = NIL;
	if (wipe)
		memset(p->buckets, 0, sizeof *p->buckets * p->capacity);
}

/* Lock; if the previous holder died mid-update, start the pool afresh. */
static void lock(struct sfy_pool *p)
{
	if (pthread_mutex_lock(&p->lock) == EOWNERDEAD) {
		reset(p, 1);
		pthread_mutex_consistent(&p->lock);
	}
}

static unsigned range_slots(const struct sfy_cidr *c)
{
	int host_bits = (c->family == AF_INET ? 32 : 128) - c->prefix;
	if (host_bits >= 31)
		return 1u << 30;
	if (host_bits < 2)
		return 0; /* nothing between the base and the all-ones end */
	return (1u << host_bits) - 2; /* skip base and the all-ones end */
}

static void clear_host_bits(struct sfy_cidr *c)
{
	int len = c->family == AF_INET ? 4 : 16;
	for (int i = 0; i < len; i++) {
		int keep = c->prefix - i * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
		c->addr[i] &= mask;
	}
}

static void *shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p; /* zero-filled, and pages cost nothing until touched */
}

static size_t tables_size(unsigned capacity)
{
	return sizeof(uint32_t) * capacity + sizeof(struct slot) * capacity;
}

struct sfy_pool *sfy_pool_new(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity)
{
	if (fake4->family != AF_INET || fake6->family != AF_INET6 || capacity < 1)
		return NULL;
	struct sfy_cidr r4 = *fake4, r6 = *fake6;
	r4.port = r6.port = 0;
	clear_host_bits(&r4);
	clear_host_bits(&r6);
	unsigned cap = capacity;
	if (cap > range_slots(&r4))
		cap = range_slots(&r4);
	if (cap > range_slots(&r6))
		cap = range_slots(&r6);
	if (cap < 1)
		return NULL;
	struct sfy_pool *p = shared_alloc(sizeof *p);
	if (!p)
		return NULL;
	p->buckets = shared_alloc(tables_size(cap));
	if (!p->buckets) {
		munmap(p, sizeof *p);
		return NULL;
	}
	p->slots = (struct slot *)(void *)(p->buckets + cap);
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&p->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	p->range4 = r4;
	p->range6 = r6;
	p->capacity = cap;
	reset(p, 0);
	return p;
}

void sfy_pool_free(struct sfy_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_destroy(&pool->lock);
	munmap(pool->buckets, tables_size(pool->capacity));
	munmap(pool, sizeof *pool);
}

unsigned sfy_pool_capacity(const struct sfy_pool *pool)
{
	return pool->capacity;
}

static uint32_t hash_name(const char *name, unsigned nbuckets)
{
	uint32_t h = 2166136261u; /* FNV-1a over the lower-cased name */
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		unsigned char c = *s >= 'A' && *s <= 'Z' ? (unsigned char)(*s + 32) : *s;
		h = (h ^ c) * 16777619u;
	}
	return h % nbuckets;
}

static void lru_unlink(struct sfy_pool *p, uint32_t i)
{
	struct slot *s = &p->slots[i];
	if (s->lru_prev != NIL)
		p->slots[s->lru_prev].lru_next = s->lru_next;
	else
		p->lru_head = s->lru_next;
	if (s->lru_next != NIL)
		p->slots[s->lru_next].lru_prev = s->lru_prev;
	else
		p->lru_tail = s->lru_prev;
}

static void lru_push_front(struct sfy_pool *p, uint32_t i)
{
	struct slot *s = &p->slots[i];
	s->lru_prev = NIL;
	s->lru_next = p->lru_head;
	if (p->lru_head != NIL)
		p->slots[p->lru_head].lru_prev = i;
	p->lru_head = i;
	if (p->lru_tail == NIL)
		p->lru_tail = i;
}

static void hash_remove(struct sfy_pool *p, uint32_t i)
{
	uint32_t b = hash_name(p->slots[i].name, p->capacity);
	uint32_t head = bucket_head(p, b);
	if (head == i) {
		set_bucket(p, b, p->slots[i].hash_next);
		return;
	}
	for (uint32_t j = head; j != NIL; j = p->slots[j].hash_next) {
		if (p->slots[j].hash_next == i) {
			p->slots[j].hash_next = p->slots[i].hash_next;
			return;
		}
	}
}

/* Slot for name: found, a fresh one, or the least recently used recycled. */
static uint32_t slot_for(struct sfy_pool *p, const char *name)
{
	uint32_t b = hash_name(name, p->capacity);
	for (uint32_t i = bucket_head(p, b); i != NIL; i = p->slots[i].hash_next) {
		if (strcasecmp(p->slots[i].name, name) == 0) {
			lru_unlink(p, i);
			lru_push_front(p, i);
			return i;
		}
	}
	uint32_t i;
	if (p->n_used < p->capacity) {
		i = p->n_used++;
	} else {
		i = p->lru_tail;
		lru_unlink(p, i);
		hash_remove(p, i);
	}
	struct slot *s = &p->slots[i];
	s->used = 1;
	strcpy(s->name, name);
	s->hash_next = bucket_head(p, b);
	set_bucket(p, b, i);
	lru_push_front(p, i);
	return i;
}

static void slot_addr(const struct sfy_pool *p, uint32_t i, int family, struct sockaddr_storage *out)
{
	uint32_t host = htonl(i + 1);
	memset(out, 0, sizeof *out);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		uint32_t base;
		memcpy(&base, p->range4.addr, 4);
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = base | host;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		uint32_t low;
		sin6->sin6_family = AF_INET6;
		memcpy(sin6->sin6_addr.s6_addr, p->range6.addr, 16);
		memcpy(&low, sin6->sin6_addr.s6_addr + 12, 4);
		low |= host;
		memcpy(sin6->sin6_addr.s6_addr + 12, &low, 4);
	}
}

int sfy_pool_map(struct sfy_pool *pool, const char *name, int family, struct sockaddr_storage *out)
{
	size_t len = strlen(name);
	if (len < 1 || len > 255 || (family != AF_INET && family != AF_INET6)) {
		errno = EINVAL;
		return -1;
	}
	lock(pool);
	uint32_t i = slot_for(pool, name);
	slot_addr(pool, i, family, out);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

int sfy_pool_is_fake(const struct sfy_pool *pool, const struct sockaddr *sa)
{
	return sfy_cidr_match(&pool->range4, sa) || sfy_cidr_match(&pool->range6, sa);
}

int sfy_pool_name(struct sfy_pool *pool, const struct sockaddr *sa, char *name, size_t cap)
{
	if (!sfy_pool_is_fake(pool, sa))
		return 0;
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	const uint8_t *raw = sa->sa_family == AF_INET
		? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
		: ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
	uint32_t host;
	memcpy(&host, raw, 4);
	const struct sfy_cidr *range = sa->sa_family == AF_INET ? &pool->range4 : &pool->range6;
	int host_bits = (sa->sa_family == AF_INET ? 32 : 128) - range->prefix;
	host = ntohl(host);
	if (host_bits < 32)
		host &= (1u << host_bits) - 1; /* the slot number is in the host bits */
	int found = -1;
	lock(pool);
	if (host >= 1 && host - 1 < pool->n_used) {
		uint32_t i = host - 1;
		struct sockaddr_storage expect;
		slot_addr(pool, i, sa->sa_family, &expect);
		/* The whole address must be the slot's, not just its low bits. */
		size_t off = sa->sa_family == AF_INET ? offsetof(struct sockaddr_in, sin_addr)
						      : offsetof(struct sockaddr_in6, sin6_addr);
		size_t alen = sa->sa_family == AF_INET ? 4 : 16;
		if (memcmp((const char *)&expect + off, (const char *)sa + off, alen) == 0 &&
		    strlen(pool->slots[i].name) < cap) {
			strcpy(name, pool->slots[i].name);
			lru_unlink(pool, i);
			lru_push_front(pool, i);
			found = 1;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return found;
}
