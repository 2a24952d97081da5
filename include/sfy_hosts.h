/* /etc/hosts, read by the shim itself so that local names never reach the
 * system resolver (which may fall through to DNS for a family it lacks). */
#ifndef SFY_HOSTS_H
#define SFY_HOSTS_H

#include <netinet/in.h>
#include <stddef.h>

#define SFY_HOSTS_MAX_ADDRS 16
#define SFY_HOSTS_PATH "/etc/hosts" /* the one file kept between look-ups */

struct sfy_host_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

/* Addresses of name in path for family (AF_UNSPEC: both), in file order.
 * Returns how many (0 when absent or the file is unreadable). */
int sfy_hosts_lookup(const char *path, const char *name, int family, struct sfy_host_addr *out, int max);
/* First name for an address; returns 1 and fills name, or 0. */
int sfy_hosts_reverse(const char *path, const struct sfy_host_addr *addr, char *name, size_t cap);
/* Held across fork() so that a child never inherits the kept copy mid-update. */
void sfy_hosts_lock(void);
void sfy_hosts_unlock(void);

#endif
