/* Direct (bypass) rules: which destinations go around the proxy. */
#include "sfy_config.h"

#include <netinet/in.h>
#include <string.h>
#include <strings.h>

int sfy_unmap_v4(const struct sockaddr *sa, struct sockaddr_in *out)
{
	if (sa->sa_family != AF_INET6)
		return 0;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return 0;
	memset(out, 0, sizeof *out);
	out->sin_family = AF_INET;
	out->sin_port = s6->sin6_port;
	memcpy(&out->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	return 1;
}

void sfy_map_v4(const struct sockaddr_in *in, struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof *out);
	out->sin6_family = AF_INET6;
	out->sin6_port = in->sin_port;
	out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
	memcpy(out->sin6_addr.s6_addr + 12, &in->sin_addr, 4);
}

/* Pointer to the raw address bytes and port of an AF_INET/AF_INET6 sockaddr. */
static const uint8_t *raw_addr(const struct sockaddr *sa, uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		*port = ntohs(s->sin_port);
		return (const uint8_t *)&s->sin_addr;
	}
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	*port = ntohs(s6->sin6_port);
	return s6->sin6_addr.s6_addr;
}

int sfy_cidr_match(const struct sfy_cidr *c, const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	/* A v4-mapped address is its IPv4 address for IPv4 rules, and stays
	 * ::ffff:a.b.c.d for IPv6 rules (so ::/0 covers it). */
	if (c->family == AF_INET && sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	if (sa->sa_family != c->family)
		return 0;
	uint16_t port;
	const uint8_t *a = raw_addr(sa, &port);
	if (c->port && c->port != port)
		return 0;
	int full = c->prefix / 8, bits = c->prefix % 8;
	if (memcmp(a, c->addr, (size_t)full) != 0)
		return 0;
	if (bits) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits));
		if ((a[full] & mask) != (c->addr[full] & mask))
			return 0;
	}
	return 1;
}

/* "example.com" matches example.com and any name below it, case-insensitively;
 * a trailing dot on name (fully qualified form) is ignored. */
int sfy_domain_match(const char *suffix, const char *name)
{
	size_t slen = strlen(suffix), nlen = strlen(name);
	if (nlen && name[nlen - 1] == '.')
		nlen--;
	if (slen == 0 || nlen < slen)
		return 0;
	if (strncasecmp(name + nlen - slen, suffix, slen) != 0)
		return 0;
	return nlen == slen || name[nlen - slen - 1] == '.';
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int sfy_addr_is_direct(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	if (cfg->direct_loopback && is_loopback(sa))
		return 1;
	for (int i = 0; i < cfg->n_direct; i++)
		if (sfy_cidr_match(&cfg->direct[i], sa))
			return 1;
	return 0;
}

int sfy_name_is_direct(const struct sfy_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_direct_domain; i++)
		if (sfy_domain_match(cfg->direct_domain[i], name))
			return 1;
	return 0;
}

static int same_addr(const struct sockaddr *sa, const struct sockaddr *p)
{
	if (sa->sa_family != p->sa_family)
		return 0;
	uint16_t port_a, port_p;
	const uint8_t *a = raw_addr(sa, &port_a), *b = raw_addr(p, &port_p);
	return port_a == port_p && memcmp(a, b, sa->sa_family == AF_INET ? 4 : 16) == 0;
}

int sfy_same_endpoint(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_in m1, m2;
	if (sfy_unmap_v4(a, &m1))
		a = (const struct sockaddr *)&m1;
	if (sfy_unmap_v4(b, &m2))
		b = (const struct sockaddr *)&m2;
	return (a->sa_family == AF_INET || a->sa_family == AF_INET6) && same_addr(a, b);
}

/* cfg->proxy, and the first hop of every route and every via rule: the
 * addresses we connect to ourselves, always direct. */
int sfy_addr_is_proxy(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	if (same_addr(sa, (const struct sockaddr *)&cfg->proxy))
		return 1;
	for (int i = 0; i < cfg->n_routes; i++)
		if (cfg->routes[i].n && same_addr(sa, (const struct sockaddr *)&cfg->routes[i].hop[0].sa))
			return 1;
	for (int i = 0; i < cfg->n_via; i++)
		if (cfg->via[i].n && same_addr(sa, (const struct sockaddr *)&cfg->via[i].hop[0].sa))
			return 1;
	return 0;
}

int sfy_dns_intercepted(const struct sfy_config *cfg, const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	if (!cfg->remote_dns)
		return 0;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	uint16_t port;
	raw_addr(sa, &port);
	if (port != SFY_DNS_PORT || sfy_addr_is_proxy(cfg, sa) || !sfy_addr_is_direct(cfg, sa))
		return 0;
	for (int i = 0; i < cfg->n_direct_dns; i++)
		if (sfy_cidr_match(&cfg->direct_dns[i], sa))
			return 0;
	return 1;
}
