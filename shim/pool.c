/* Fake-address pool (see include/sfy_pool.h).  A hash of names over a fixed
 * array of slots, with an LRU list through the slots for recycling, all in
 * one block: a header, the buckets, the slots.  Links are slot numbers and
 * the header holds offsets, so the block means the same wherever a process
 * maps it.
 *
 * The lock is process-shared and robust.  A process that dies holding it
 * costs the pool at most the slot it was writing: a writer marks the slot
 * (dirty) before it touches it, and the next user rebuilds the buckets and
 * the LRU list from the slots, dropping the marked one (repair). */
#include "sfy_pool.h"
#include "sfy_routes.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#define NIL UINT32_MAX
#define POOL_MAGIC 0x6c6f6f702d796673ull /* "sfy-pool" */
/* 2: the route state (issue 14) after the LRU fields.  The fields up to
 * note are where version 1 had them, so sfy_pool_note reads both. */
#define POOL_VERSION 2

#ifdef SFY_POOL_TEST_HOOK
/* Tests: stop half-way through writing a name (a test kills us there). */
void (*sfy_pool_test_hook)(void);
static void test_hook(char *dst, const char *name)
{
	if (sfy_pool_test_hook) {
		size_t half = strlen(name) / 2;
		memcpy(dst, name, half);
		dst[half] = '\0';
		sfy_pool_test_hook();
	}
}
#define TEST_HOOK(dst, name) test_hook(dst, name)
#else
#define TEST_HOOK(dst, name) ((void)0)
#endif

struct slot {
	uint32_t hash_next;    /* next slot in the same hash bucket */
	uint32_t lru_prev, lru_next;
	uint8_t used;          /* 1: holds name; 0: free, or dropped by a repair */
	char name[256];
};

/* The shared header.  Everything above lock is written once, by
 * sfy_pool_format, and checked by sfy_pool_attach. */
struct pool_hdr {
	uint64_t magic;
	uint32_t version, hdr_size;
	uint64_t bytes;
	struct sfy_cidr range4, range6; /* host bits cleared */
	uint32_t capacity, slot_bits;
	uint64_t tag4, tag6;            /* host bits above the slot number */
	uint64_t buckets_off, slots_off;
	uint64_t note;                  /* the creator's, see sfy_pool_note */
	pthread_mutex_t lock;
	uint32_t n_used;                /* slots 0..n_used-1 have been handed out */
	uint32_t lru_head, lru_tail;    /* head = most recently used */
	uint32_t dirty;                 /* slot being written, or NIL */
	struct sfy_route_state routes;  /* shared by the session: round robin, routes down */
};

/* This process's view: the layout as checked at attach, so that nothing
 * read later from the shared block decides where we write. */
struct sfy_pool {
	struct pool_hdr *h;
	uint32_t *buckets; /* slot+1, 0 = empty: a fresh block is all empty */
	struct slot *slots;
	size_t bytes;
	uint32_t capacity, slot_bits;
	uint64_t tag4, tag6;
	struct sfy_cidr range4, range6;
};

static uint32_t bucket_head(const struct sfy_pool *p, uint32_t b)
{
	uint32_t v = p->buckets[b];
	return v && v <= p->capacity ? v - 1 : NIL;
}

static void set_bucket(struct sfy_pool *p, uint32_t b, uint32_t slot)
{
	p->buckets[b] = slot == NIL ? 0 : slot + 1;
}

/* A link read from shared memory, checked. */
static uint32_t link_ok(const struct sfy_pool *p, uint32_t i)
{
	return i < p->capacity ? i : NIL;
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
	c->port = 0;
}

static int cidr_same(const struct sfy_cidr *a, const struct sfy_cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix && a->port == b->port &&
	       memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

/* The settings a pool is made of, from what the caller asks for. */
struct layout {
	struct sfy_cidr r4, r6;
	uint32_t capacity, slot_bits;
	uint64_t buckets_off, slots_off, bytes;
};

static int layout_of(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity, struct layout *l)
{
	if (fake4->family != AF_INET || fake6->family != AF_INET6 || capacity < 1)
		return -1;
	l->r4 = *fake4;
	l->r6 = *fake6;
	clear_host_bits(&l->r4);
	clear_host_bits(&l->r6);
	unsigned cap = capacity;
	if (cap > range_slots(&l->r4))
		cap = range_slots(&l->r4);
	if (cap > range_slots(&l->r6))
		cap = range_slots(&l->r6);
	if (cap < 1)
		return -1;
	l->capacity = cap;
	l->slot_bits = 1;
	while (l->slot_bits < 32 && (1ull << l->slot_bits) <= cap)
		l->slot_bits++; /* room for 1..cap */
	l->buckets_off = (sizeof(struct pool_hdr) + 63) & ~(uint64_t)63;
	l->slots_off = (l->buckets_off + sizeof(uint32_t) * cap + 63) & ~(uint64_t)63;
	l->bytes = l->slots_off + sizeof(struct slot) * (uint64_t)cap;
	return 0;
}

size_t sfy_pool_bytes(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity)
{
	struct layout l;
	return layout_of(fake4, fake6, capacity, &l) == 0 ? (size_t)l.bytes : 0;
}

/* The tag in a range's host bits: the bits above the slot number (of the
 * low 64 for IPv6), never all ones (the broadcast-like end) and not 0 when
 * there is a choice.  0 when asked for none (tag 0) or when there are fewer
 * than 2 such bits. */
static uint64_t tag_for(const struct sfy_cidr *c, uint32_t slot_bits, uint64_t tag)
{
	int host_bits = (c->family == AF_INET ? 32 : 128) - c->prefix;
	int limit = c->family == AF_INET ? 32 : 64;
	if (host_bits > limit)
		host_bits = limit;
	int bits = host_bits - (int)slot_bits;
	if (bits > 62)
		bits = 62;
	if (bits < 2 || tag == 0)
		return 0;
	uint64_t part = 1 + tag % ((1ull << bits) - 2);
	return part << slot_bits;
}

int sfy_pool_format(void *mem, size_t size, const struct sfy_cidr *fake4, const struct sfy_cidr *fake6,
		    unsigned capacity, uint64_t tag, uint64_t note)
{
	struct layout l;
	if (layout_of(fake4, fake6, capacity, &l) < 0 || size != l.bytes) {
		errno = EINVAL;
		return -1;
	}
	struct pool_hdr *h = mem;
	h->version = POOL_VERSION;
	h->hdr_size = sizeof *h;
	h->bytes = l.bytes;
	h->range4 = l.r4;
	h->range6 = l.r6;
	h->capacity = l.capacity;
	h->slot_bits = l.slot_bits;
	h->tag4 = tag_for(&l.r4, l.slot_bits, tag);
	h->tag6 = tag_for(&l.r6, l.slot_bits, tag);
	h->buckets_off = l.buckets_off;
	h->slots_off = l.slots_off;
	h->note = note;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&h->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	h->n_used = 0;
	h->lru_head = h->lru_tail = h->dirty = NIL;
	__atomic_store_n(&h->magic, POOL_MAGIC, __ATOMIC_RELEASE); /* last: the header is complete */
	return 0;
}

/* A tag from the header lies above the slot number and inside the host
 * bits (the low 32 or 64). */
static int tag_fits(const struct sfy_cidr *c, uint32_t slot_bits, uint64_t tag)
{
	int host_bits = (c->family == AF_INET ? 32 : 128) - c->prefix;
	if (host_bits > (c->family == AF_INET ? 32 : 64))
		host_bits = c->family == AF_INET ? 32 : 64;
	if (tag == 0)
		return 1;
	if ((int)slot_bits + 2 > host_bits || (tag & ((1ull << slot_bits) - 1)))
		return 0;
	return host_bits >= 64 || tag >> host_bits == 0;
}

static const char *check_header(const struct pool_hdr *h, size_t size, const struct layout *l)
{
	if (size < sizeof *h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != POOL_MAGIC)
		return "not a socksify pool (bad magic)";
	if (h->version != POOL_VERSION || h->hdr_size != sizeof *h)
		return "made by another version of socksify";
	if (h->bytes != size || size != l->bytes || h->buckets_off != l->buckets_off || h->slots_off != l->slots_off)
		return "wrong size or layout";
	if (!cidr_same(&h->range4, &l->r4) || !cidr_same(&h->range6, &l->r6) || h->capacity != l->capacity ||
	    h->slot_bits != l->slot_bits)
		return "made with other fake ranges or another fake_pool_size";
	if (!tag_fits(&l->r4, l->slot_bits, h->tag4) || !tag_fits(&l->r6, l->slot_bits, h->tag6))
		return "bad tag";
	return NULL;
}

struct sfy_pool *sfy_pool_attach(void *mem, size_t size, const struct sfy_cidr *fake4, const struct sfy_cidr *fake6,
				 unsigned capacity, const char **why)
{
	struct layout l;
	const char *bad = layout_of(fake4, fake6, capacity, &l) < 0 ? "bad fake ranges" : NULL;
	if (!bad)
		bad = check_header(mem, size, &l);
	struct sfy_pool *p = bad ? NULL : malloc(sizeof *p);
	if (!p) {
		*why = bad ? bad : "out of memory";
		return NULL;
	}
	p->h = mem;
	p->bytes = size;
	p->buckets = (uint32_t *)(void *)((char *)mem + l.buckets_off);
	p->slots = (struct slot *)(void *)((char *)mem + l.slots_off);
	p->capacity = l.capacity;
	p->slot_bits = l.slot_bits;
	p->tag4 = p->h->tag4;
	p->tag6 = p->h->tag6;
	p->range4 = l.r4;
	p->range6 = l.r6;
	return p;
}

int sfy_pool_note(const void *mem, size_t size, uint64_t *note)
{
	const struct pool_hdr *h = mem;
	if (size < sizeof *h || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != POOL_MAGIC ||
	    h->version < 1 || h->version > POOL_VERSION)
		return -1;
	*note = h->note;
	return 0;
}

struct sfy_pool *sfy_pool_new(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity)
{
	size_t size = sfy_pool_bytes(fake4, fake6, capacity);
	if (!size)
		return NULL;
	/* Zero-filled, and pages cost nothing until touched. */
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	const char *why;
	struct sfy_pool *p = NULL;
	if (sfy_pool_format(mem, size, fake4, fake6, capacity, 0, 0) == 0)
		p = sfy_pool_attach(mem, size, fake4, fake6, capacity, &why);
	if (!p)
		munmap(mem, size);
	return p;
}

void sfy_pool_free(struct sfy_pool *pool)
{
	if (!pool)
		return;
	munmap(pool->h, pool->bytes);
	free(pool);
}

struct sfy_route_state *sfy_pool_route_state(struct sfy_pool *pool)
{
	return &pool->h->routes;
}

unsigned sfy_pool_capacity(const struct sfy_pool *pool)
{
	return pool->capacity;
}

unsigned sfy_pool_tag_bits4(const struct sfy_pool *pool)
{
	return pool->tag4 ? (unsigned)(32 - pool->range4.prefix) - pool->slot_bits : 0;
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
	struct pool_hdr *h = p->h;
	struct slot *s = &p->slots[i];
	uint32_t prev = link_ok(p, s->lru_prev), next = link_ok(p, s->lru_next);
	if (prev != NIL)
		p->slots[prev].lru_next = next;
	else
		h->lru_head = next;
	if (next != NIL)
		p->slots[next].lru_prev = prev;
	else
		h->lru_tail = prev;
}

static void lru_push_front(struct sfy_pool *p, uint32_t i)
{
	struct pool_hdr *h = p->h;
	struct slot *s = &p->slots[i];
	uint32_t head = link_ok(p, h->lru_head);
	s->lru_prev = NIL;
	s->lru_next = head;
	if (head != NIL)
		p->slots[head].lru_prev = i;
	h->lru_head = i;
	if (link_ok(p, h->lru_tail) == NIL)
		h->lru_tail = i;
}

static void lru_push_back(struct sfy_pool *p, uint32_t i)
{
	struct pool_hdr *h = p->h;
	struct slot *s = &p->slots[i];
	s->lru_next = NIL;
	s->lru_prev = h->lru_tail;
	if (h->lru_tail != NIL)
		p->slots[h->lru_tail].lru_next = i;
	h->lru_tail = i;
	if (h->lru_head == NIL)
		h->lru_head = i;
}

static void hash_insert(struct sfy_pool *p, uint32_t i)
{
	uint32_t b = hash_name(p->slots[i].name, p->capacity);
	p->slots[i].hash_next = bucket_head(p, b);
	set_bucket(p, b, i);
}

static void hash_remove(struct sfy_pool *p, uint32_t i)
{
	uint32_t b = hash_name(p->slots[i].name, p->capacity);
	uint32_t head = bucket_head(p, b);
	if (head == i) {
		set_bucket(p, b, link_ok(p, p->slots[i].hash_next));
		return;
	}
	uint32_t steps = p->capacity;
	for (uint32_t j = head; j != NIL && steps--; j = link_ok(p, p->slots[j].hash_next)) {
		if (p->slots[j].hash_next == i) {
			p->slots[j].hash_next = p->slots[i].hash_next;
			return;
		}
	}
}

static int slot_valid(const struct sfy_pool *p, uint32_t i)
{
	const struct slot *s = &p->slots[i];
	return i != p->h->dirty && s->used == 1 && s->name[0] && memchr(s->name, 0, sizeof s->name);
}

/* After a holder died: keep every complete slot, in its LRU order as far as
 * the list can still be followed (slots it lost count as most recent: they
 * were being moved to the front), and put the dropped ones at the tail, to
 * be reused first. */
static void repair(struct sfy_pool *p)
{
	struct pool_hdr *h = p->h;
	uint32_t n = h->n_used <= p->capacity ? h->n_used : p->capacity;
	h->n_used = n;
	uint32_t next = link_ok(p, h->lru_head);
	h->lru_head = h->lru_tail = NIL;
	for (uint32_t steps = n; next != NIL && next < n && steps--;) {
		uint32_t i = next;
		next = link_ok(p, p->slots[i].lru_next);
		if (!slot_valid(p, i))
			continue;
		p->slots[i].used = 2; /* on the new list */
		lru_push_back(p, i);
	}
	memset(p->buckets, 0, sizeof *p->buckets * p->capacity);
	for (uint32_t i = 0; i < n; i++) {
		if (p->slots[i].used == 2) {
			p->slots[i].used = 1;
		} else if (slot_valid(p, i)) {
			lru_push_front(p, i);
		} else {
			p->slots[i].used = 0;
			p->slots[i].name[0] = '\0';
			lru_push_back(p, i);
			continue;
		}
		hash_insert(p, i);
	}
	h->dirty = NIL;
}

/* Lock; if the previous holder died, repair first.  -1 (ENOTRECOVERABLE)
 * when the lock is lost for good. */
static int lock(struct sfy_pool *p)
{
	int rc = pthread_mutex_lock(&p->h->lock);
	if (rc == EOWNERDEAD) {
		repair(p);
		pthread_mutex_consistent(&p->h->lock);
		rc = 0;
	}
	if (rc != 0) {
		errno = ENOTRECOVERABLE;
		return -1;
	}
	return 0;
}

/* Slot for name: found, a fresh one, or the least recently used recycled. */
static uint32_t slot_for(struct sfy_pool *p, const char *name)
{
	struct pool_hdr *h = p->h;
	uint32_t b = hash_name(name, p->capacity);
	uint32_t steps = p->capacity;
	for (uint32_t i = bucket_head(p, b); i != NIL && steps--; i = link_ok(p, p->slots[i].hash_next)) {
		if (p->slots[i].used == 1 && strcasecmp(p->slots[i].name, name) == 0) {
			lru_unlink(p, i);
			lru_push_front(p, i);
			return i;
		}
	}
	uint32_t i = h->n_used < p->capacity ? h->n_used : link_ok(p, h->lru_tail);
	if (i == NIL)
		i = 0; /* cannot happen once repaired: a full pool has a tail */
	h->dirty = i; /* from here until the slot is whole again */
	if (i == h->n_used) {
		h->n_used++;
	} else {
		lru_unlink(p, i);
		if (p->slots[i].used == 1)
			hash_remove(p, i);
	}
	struct slot *s = &p->slots[i];
	s->used = 1;
	s->name[0] = '\0';
	TEST_HOOK(s->name, name);
	strcpy(s->name, name);
	hash_insert(p, i);
	lru_push_front(p, i);
	h->dirty = NIL;
	return i;
}

/* The address of slot i: base | tag | i+1, in the low 32 (IPv4) or 64
 * (IPv6) bits. */
static void slot_addr(const struct sfy_pool *p, uint32_t i, int family, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		uint32_t base;
		memcpy(&base, p->range4.addr, 4);
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = base | htonl((uint32_t)p->tag4 | (i + 1));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		uint64_t host = p->tag6 | (i + 1);
		sin6->sin6_family = AF_INET6;
		memcpy(sin6->sin6_addr.s6_addr, p->range6.addr, 16);
		for (int k = 0; k < 8; k++)
			sin6->sin6_addr.s6_addr[15 - k] |= (uint8_t)(host >> (8 * k));
	}
}

int sfy_pool_map(struct sfy_pool *pool, const char *name, int family, struct sockaddr_storage *out)
{
	size_t len = strlen(name);
	if (len < 1 || len > 255 || (family != AF_INET && family != AF_INET6)) {
		errno = EINVAL;
		return -1;
	}
	if (lock(pool) < 0)
		return -1;
	uint32_t i = slot_for(pool, name);
	slot_addr(pool, i, family, out);
	pthread_mutex_unlock(&pool->h->lock);
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
	host = ntohl(host) & (uint32_t)((1ull << pool->slot_bits) - 1); /* the slot number */
	int found = -1;
	if (lock(pool) < 0)
		return -1;
	if (host >= 1 && host - 1 < pool->h->n_used && host - 1 < pool->capacity) {
		uint32_t i = host - 1;
		struct sockaddr_storage expect;
		slot_addr(pool, i, sa->sa_family, &expect);
		/* The whole address must be the slot's (tag included), not just
		 * its low bits. */
		size_t off = sa->sa_family == AF_INET ? offsetof(struct sockaddr_in, sin_addr)
						      : offsetof(struct sockaddr_in6, sin6_addr);
		size_t alen = sa->sa_family == AF_INET ? 4 : 16;
		const struct slot *s = &pool->slots[i];
		if (memcmp((const char *)&expect + off, (const char *)sa + off, alen) == 0 && s->used == 1 &&
		    strnlen(s->name, sizeof s->name) < cap) {
			strcpy(name, s->name);
			lru_unlink(pool, i);
			lru_push_front(pool, i);
			found = 1;
		}
	}
	pthread_mutex_unlock(&pool->h->lock);
	return found;
}
