/* Fake-address pool for remote DNS: a name gets one slot, and slot i stands
 * for address base+1+i in both the IPv4 and the IPv6 fake ranges.  When the
 * pool is full the least recently used name gives up its slot.  Thread-safe,
 * and shared (not copied) with fork()ed children: parent and children see
 * each other's mappings. */
#ifndef SFY_POOL_H
#define SFY_POOL_H

#include <stddef.h>
#include <sys/socket.h>

#include "sfy_config.h"

struct sfy_pool;

/* capacity is capped by the size of the smaller range (less network and
 * broadcast-like ends).  Returns NULL only on bad ranges; slots are
 * allocated at first use. */
struct sfy_pool *sfy_pool_new(const struct sfy_cidr *fake4, const struct sfy_cidr *fake6, unsigned capacity);
void sfy_pool_free(struct sfy_pool *pool);
unsigned sfy_pool_capacity(const struct sfy_pool *pool);

/* Map name (1..255 bytes) to a fake address of family AF_INET or AF_INET6
 * (port 0) in out.  Returns 0, or -1 with errno (EINVAL, ENOMEM). */
int sfy_pool_map(struct sfy_pool *pool, const char *name, int family, struct sockaddr_storage *out);

/* 1: sa lies in one of the fake ranges; 0: it does not. */
int sfy_pool_is_fake(const struct sfy_pool *pool, const struct sockaddr *sa);

/* Name for a fake address: returns 1 and copies the name, 0 when sa is not
 * in a fake range, -1 when it is but no name holds that slot (stale). */
int sfy_pool_name(struct sfy_pool *pool, const struct sockaddr *sa, char *name, size_t cap);


#endif
