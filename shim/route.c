/* Where a destination goes (direct, proxy, refused), and SOCKS addresses
 * turned into the socket addresses a program is shown. */
#include "shim.h"
#include "session.h"
#include "sfy_chain.h"
#include "sfy_log.h"
#include "sfy_routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

int s5_addr_unspecified(const struct s5_addr *a)
{
	static const uint8_t zero[16];
	if (a->atyp == S5_ATYP_IPV4)
		return memcmp(a->u.ipv4, zero, 4) == 0;
	if (a->atyp == S5_ATYP_IPV6)
		return memcmp(a->u.ipv6, zero, 16) == 0;
	return 1; /* a name is no address to report */
}

/* A SOCKS address as a sockaddr of family: the proxy's own address stands
 * in for an unspecified one (0.0.0.0, ::) or a name. */
socklen_t sfy_socks_to_sockaddr(const struct s5_addr *a, int family, struct sockaddr_storage *out, int strict)
{
	uint8_t raw[16] = {0};
	int raw_family = a->atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET;
	static const uint8_t zero[16];
	if (a->atyp == S5_ATYP_IPV4)
		memcpy(raw, a->u.ipv4, 4);
	else if (a->atyp == S5_ATYP_IPV6)
		memcpy(raw, a->u.ipv6, 16);
	if (a->atyp == S5_ATYP_DOMAIN || memcmp(raw, zero, raw_family == AF_INET ? 4 : 16) == 0) {
		raw_family = sfy_cfg.proxy.ss_family;
		if (raw_family == AF_INET)
			memcpy(raw, &((struct sockaddr_in *)&sfy_cfg.proxy)->sin_addr, 4);
		else
			memcpy(raw, &((struct sockaddr_in6 *)&sfy_cfg.proxy)->sin6_addr, 16);
	}
	memset(out, 0, sizeof *out);
	if (raw_family == AF_INET6 && family == AF_INET) {
		/* An IPv6 address cannot be shown on an IPv4 socket: a CONNECT
		 * falls back to the kernel's answer; a BIND can only hope the
		 * proxy also listens on its own (IPv4) address. */
		if (strict || sfy_cfg.proxy.ss_family != AF_INET)
			return 0;
		raw_family = AF_INET;
		memcpy(raw, &((struct sockaddr_in *)&sfy_cfg.proxy)->sin_addr, 4);
	}
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(a->port)};
	memcpy(&v4.sin_addr, raw, 4);
	if (raw_family == AF_INET && family == AF_INET) {
		memcpy(out, &v4, sizeof v4);
		return sizeof v4;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
	if (raw_family == AF_INET) { /* IPv4 on an IPv6 socket: v4-mapped */
		sfy_map_v4(&v4, sin6);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, raw, 16);
	}
	return sizeof *sin6;
}

/* What the route rules say of a destination: DIRECT, REFUSE (block, with
 * *err EACCES), or PROXY (a via rule or the proxy lines: the driver picks
 * the chain). */
static enum sfy_route by_rule(const char *name, const struct sockaddr *sa, uint16_t port, int *err, int quiet)
{
	struct sfy_routes_dest d = {.name = name, .sa = sa, .port = port};
	struct sfy_routes_pick pick;
	sfy_routes_choose(&sfy_cfg, NULL, &d, 0, 0, &pick);
	if (pick.verdict == SFY_ROUTES_BLOCK && quiet) {
		*err = EACCES;
		return SFY_ROUTE_REFUSE;
	}
	if (pick.verdict == SFY_ROUTES_BLOCK) {
		char what[300];
		struct s5_addr a;
		if (name)
			s5_addr_from_name(&a, name, port);
		else
			s5_addr_from_sockaddr(&a, sa, port);
		s5_addr_text(&a, what, sizeof what);
		sfy_log(SFY_LOG_WARN, "connect %s refused: %s", what, pick.reason);
		*err = EACCES;
		return SFY_ROUTE_REFUSE;
	}
	return pick.verdict == SFY_ROUTES_DIRECT ? SFY_ROUTE_DIRECT : SFY_ROUTE_PROXY;
}

int sfy_name_goes_direct(const char *name)
{
	if (sfy_name_is_direct(&sfy_cfg, name))
		return 1;
	if (sfy_cfg.n_rules == 0)
		return 0;
	int err;
	return by_rule(name, NULL, 0, &err, 1) == SFY_ROUTE_DIRECT; /* at resolution: no log line */
}

enum sfy_route sfy_route_for(const struct sockaddr *sa, int is_stream, struct s5_addr *dst, int *err)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	char name[S5_NAME_MAX + 1];
	int fake = sfy_fake_name(sa, name, sizeof name);
	uint16_t port = ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
						       : ((const struct sockaddr_in6 *)sa)->sin6_port);
	/* Datagrams to a name go through UDP ASSOCIATE (udp = proxy) with
	 * the name in their header; otherwise they cannot go anywhere. */
	if (fake < 0 || (fake > 0 && !is_stream && sfy_cfg.udp_mode != SFY_UDP_PROXY)) {
		*err = fake < 0 ? EHOSTUNREACH : EPERM;
		return SFY_ROUTE_REFUSE;
	}
	if (sfy_cfg.n_rules > 0) {
		/* route = ... direct | block, by name (the fake pool's) or address. */
		enum sfy_route r = by_rule(fake > 0 ? name : NULL, fake > 0 ? NULL : sa, port, err, 0);
		if (r == SFY_ROUTE_REFUSE || (r == SFY_ROUTE_DIRECT && fake <= 0))
			return r;
	}
	if (fake > 0) {
		s5_addr_from_name(dst, name, port);
		return SFY_ROUTE_PROXY;
	}
	if (sfy_dns_intercepted(&sfy_cfg, sa))
		return SFY_ROUTE_DNS;
	if (sfy_addr_is_proxy(&sfy_cfg, sa) || sfy_addr_is_direct(&sfy_cfg, sa))
		return SFY_ROUTE_DIRECT;
	if (!is_stream && sfy_cfg.udp_mode != SFY_UDP_PROXY) {
		*err = EPERM;
		return sfy_cfg.udp_mode == SFY_UDP_ALLOW ? SFY_ROUTE_DIRECT : SFY_ROUTE_REFUSE;
	}
	s5_addr_from_sockaddr(dst, sa, port);
	return SFY_ROUTE_PROXY;
}

void sfy_route_outcome(const struct sfy_chain *route, const struct sfy_chain_engine *c, int err)
{
	/* With one route there is nothing to skip to: a failed proxy is asked
	 * again next time, as always. */
	if (!route || (sfy_cfg.n_routes <= 1 && sfy_cfg.n_via == 0))
		return;
	struct sfy_route_state *st = sfy_session_route_state();
	if (!st)
		return;
	if (!err)
		sfy_routes_mark_up(st, route);
	else if (sfy_chain_may_fail_over(c) == SFY_CHAIN_ROUTE_DOWN)
		sfy_routes_mark_down(st, route, err, sfy_now_ms(), sfy_cfg.retry_after);
}
