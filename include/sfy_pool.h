/* Fake-address pool for remote DNS: a name gets one slot, and slot i stands
 * for address base+1+i in both the IPv4 and the IPv6 fake ranges, with the
 * pool's tag in the host bits above the slot number.  When the pool is full
 * the least recently used name gives up its slot.  Thread-safe.
 *
 * The pool is one block of memory that holds offsets, never pointers, so
 * that processes which map it at different addresses (a session's shared
 * object, shim/session.c) or share it across fork() (an anonymous shared
 * mapping, sfy_pool_new) all use it at once. */
#ifndef SFY_POOL_H
#define SFY_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sfy_config.h"

struct sfy_pool;

/* Bytes of the block a pool with these settings needs; 0 on bad ranges.
 * capacity is capped by the size of the smaller range (less network and
 * broadcast-like ends). */
size_t sfy_pool_bytes(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity);
/* Lay a fresh pool out in mem (size bytes from sfy_pool_bytes, zero-filled,
 * shareable between processes).  tag: random bits that set this pool's
 * addresses apart from another pool's, where the ranges leave room for
 * them.  note: a word for the creator's own use (sfy_pool_note).  0, or
 * -1 (EINVAL). */
int sfy_pool_format(void *mem, size_t size, const struct sfy_cidr *fake4, const struct sfy_cidr *fake6,
		    unsigned capacity, uint64_t tag, uint64_t note);
/* The note of a formatted block (its first page is enough): 0, or -1 when
 * mem holds no pool of this version. */
int sfy_pool_note(const void *mem, size_t size, uint64_t *note);
/* Use a pool that sfy_pool_format laid out in mem (here or in another
 * process): its header must match these settings and size.  NULL with *why
 * set (a static string) otherwise.  The pool takes the mapping over:
 * sfy_pool_free unmaps it. */
struct sfy_pool *sfy_pool_attach(void *mem, size_t size, const struct sfy_cidr *fake4, const struct sfy_cidr *fake6,
				 unsigned capacity, const char **why);

/* A pool in fresh anonymous shared memory, tag 0 (shared with fork()ed
 * children only).  NULL on bad ranges or no memory. */
struct sfy_pool *sfy_pool_new(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity);
void sfy_pool_free(struct sfy_pool *pool);
unsigned sfy_pool_capacity(const struct sfy_pool *pool);
/* The session's shared route state (include/sfy_routes.h), in the pool's
 * header: zero in a fresh pool, as long-lived as the pool. */
struct sfy_route_state;
struct sfy_route_state *sfy_pool_route_state(struct sfy_pool *pool);
/* How many tag bits the IPv4 range leaves (0: none, pools of other
 * sessions cannot be told apart by their IPv4 addresses). */
unsigned sfy_pool_tag_bits4(const struct sfy_pool *pool);

/* Map name (1..255 bytes) to a fake address of family AF_INET or AF_INET6
 * (port 0) in out.  Returns 0, or -1 with errno (EINVAL, ENOTRECOVERABLE). */
int sfy_pool_map(struct sfy_pool *pool, const char *name, int family, struct sockaddr_storage *out);

/* 1: sa lies in one of the fake ranges; 0: it does not. */
int sfy_pool_is_fake(const struct sfy_pool *pool, const struct sockaddr *sa);

/* Name for a fake address: returns 1 and copies the name, 0 when sa is not
 * in a fake range, -1 when it is but no name of this pool holds it (stale,
 * or another pool's address). */
int sfy_pool_name(struct sfy_pool *pool, const struct sockaddr *sa, char *name, size_t cap);

#ifdef SFY_POOL_TEST_HOOK
/* Tests only: called with the lock held, in the middle of writing a slot,
 * so a test can kill the process there. */
extern void (*sfy_pool_test_hook)(void);
#endif

#endif
