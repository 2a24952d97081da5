/* Names without DNS: /etc/hosts, localhost and the session's fake pool.
 * Shared by the resolver hooks, the DNS answers (shim/dns_answer.c) and the
 * sealed-mode supervisor, so none of them reaches the system resolver. */
#include "shim.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "sfy_hosts.h"
#include "sfy_resolve.h"

int sfy_local_addrs(const char *name, int family, struct sfy_host_addr *out, int max)
{
	int n = sfy_hosts_lookup(SFY_HOSTS_PATH, name, family, out, max);
	if (n > 0 || strcasecmp(name, "localhost") != 0)
		return n;
	/* RFC 6761: localhost is loopback even when the hosts file forgets it. */
	if (family != AF_INET6 && n < max) {
		out[n].family = AF_INET;
		out[n++].u.v4.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (family != AF_INET && n < max) {
		out[n].family = AF_INET6;
		out[n++].u.v6 = in6addr_loopback;
	}
	return n;
}

int sfy_fake_addr(const char *name, int family, struct sfy_host_addr *out)
{
	struct sockaddr_storage ss;
	struct sfy_pool *pool = sfy_names_pool();
	if (!pool || strlen(name) > S5_NAME_MAX || sfy_pool_map(pool, name, family, &ss) < 0)
		return -1;
	out->family = family;
	if (family == AF_INET)
		out->u.v4 = ((struct sockaddr_in *)&ss)->sin_addr;
	else
		out->u.v6 = ((struct sockaddr_in6 *)&ss)->sin6_addr;
	return 0;
}

/* Name for a socket address without DNS: the fake pool, then /etc/hosts.
 * Returns 1 with name, 0 when there is none. */
int sfy_reverse_name(const struct sockaddr *sa, char *name, size_t cap)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	if (sfy_fake_name(sa, name, cap) > 0)
		return 1;
	struct sfy_host_addr a = {.family = sa->sa_family};
	if (sa->sa_family == AF_INET)
		a.u.v4 = ((const struct sockaddr_in *)sa)->sin_addr;
	else
		a.u.v6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	return sfy_hosts_reverse(SFY_HOSTS_PATH, &a, name, cap);
}
