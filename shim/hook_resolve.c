/* getaddrinfo() family: names are resolved by the proxy, so a name gets a
 * fake address that connect() later turns back into the name.  Numeric
 * hosts, /etc/hosts names, localhost and direct domains stay local. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sfy_hosts.h"
#include "sfy_log.h"
#include "sfy_resolve.h"

/* Numeric text for an address, as getaddrinfo() reads it back (IPv6 in full,
 * uncompressed): inet_ntop() formats through sprintf, which was a third of
 * the cost of a look-up.  out holds INET6_ADDRSTRLEN bytes. */
static void numeric_text(const struct sfy_host_addr *a, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	if (a->family == AF_INET) {
		const uint8_t *b = (const uint8_t *)&a->u.v4;
		for (int i = 0; i < 4; i++) {
			if (b[i] >= 100)
				*p++ = (char)('0' + b[i] / 100);
			if (b[i] >= 10)
				*p++ = (char)('0' + b[i] / 10 % 10);
			*p++ = (char)('0' + b[i] % 10);
			*p++ = i < 3 ? '.' : '\0';
		}
		return;
	}
	const uint8_t *b = a->u.v6.s6_addr;
	for (int i = 0; i < 16; i += 2) {
		unsigned group = (unsigned)b[i] << 8 | b[i + 1];
		for (int shift = 12; shift >= 0; shift -= 4)
			if ((group >> shift) || shift == 0)
				*p++ = hex[group >> shift & 15];
		*p++ = i < 14 ? ':' : '\0';
	}
}

/* Results for a list of known addresses, built by the real getaddrinfo from
 * their numeric form so that services, socket types and flags behave
 * exactly as libc's, and freeaddrinfo() frees them as its own. */
static int gai_from_addrs(const char *node, const char *service, const struct addrinfo *hints,
			  const struct sfy_host_addr *addrs, int n, struct addrinfo **res)
{
	struct addrinfo h = *hints, *head = NULL, **tail = &head;
	h.ai_flags = (h.ai_flags | AI_NUMERICHOST) & ~(AI_ADDRCONFIG | AI_CANONNAME);
	int rc = EAI_NONAME;
	for (int i = 0; i < n; i++) {
		char text[INET6_ADDRSTRLEN];
		struct addrinfo *part = NULL;
		numeric_text(&addrs[i], text);
		h.ai_family = addrs[i].family;
		rc = REAL(getaddrinfo)(text, service, &h, &part);
		if (rc != 0)
			break;
		*tail = part;
		while (*tail)
			tail = &(*tail)->ai_next;
	}
	if (rc != 0 || !head) {
		if (head)
			REAL(freeaddrinfo)(head);
		return rc ? rc : EAI_NONAME;
	}
	if ((hints->ai_flags & AI_CANONNAME) && !(head->ai_canonname = strdup(node))) {
		REAL(freeaddrinfo)(head);
		return EAI_MEMORY;
	}
	*res = head;
	return 0;
}

SFY_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	sfy_init();
	return sfy_getaddrinfo(node, service, hints, res);
}

int sfy_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	if (!node || !sfy_cfg.remote_dns || !res)
		return REAL(getaddrinfo)(node, service, hints, res);
	struct addrinfo h = {0};
	if (hints)
		h = *hints;
	struct addrinfo numeric = h;
	numeric.ai_flags |= AI_NUMERICHOST;
	int rc = REAL(getaddrinfo)(node, service, &numeric, res);
	if (rc != EAI_NONAME || (h.ai_flags & AI_NUMERICHOST))
		return rc; /* a numeric host, or an error that is not about the name */
	if (sfy_name_goes_direct(node)) {
		sfy_log(SFY_LOG_DEBUG, "resolve %s locally (direct_domain)", node);
		return REAL(getaddrinfo)(node, service, hints, res);
	}
	if (h.ai_family != AF_UNSPEC && h.ai_family != AF_INET && h.ai_family != AF_INET6)
		return EAI_FAMILY;
	struct sfy_host_addr addrs[SFY_HOSTS_MAX_ADDRS];
	int n = sfy_local_addrs(node, h.ai_family, addrs, SFY_HOSTS_MAX_ADDRS);
	if (n == 0) {
		/* AF_UNSPEC gets IPv4 first, then IPv6: a program that asks for
		 * both and keeps one family (curl -6) still finds its address. */
		if (h.ai_family != AF_INET6 && sfy_fake_addr(node, AF_INET, &addrs[n++]) < 0)
			return strlen(node) > S5_NAME_MAX ? EAI_NONAME : EAI_MEMORY;
		if (h.ai_family != AF_INET && sfy_fake_addr(node, AF_INET6, &addrs[n++]) < 0)
			return strlen(node) > S5_NAME_MAX ? EAI_NONAME : EAI_MEMORY;
		sfy_log(SFY_LOG_DEBUG, "resolve %s: fake address for remote dns", node);
	}
	return gai_from_addrs(node, service, &h, addrs, n, res);
}

SFY_EXPORT void freeaddrinfo(struct addrinfo *ai)
{
	REAL(freeaddrinfo)(ai); /* our results are libc's own allocations */
}

SFY_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv,
			   socklen_t servlen, int flags)
{
	sfy_init();
	int inet = sa && ((sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) ||
			  (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)));
	if (!sfy_cfg.remote_dns || !host || !hostlen || !inet || (flags & NI_NUMERICHOST))
		return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
	char name[S5_NAME_MAX + 1];
	if (!sfy_reverse_name(sa, name, sizeof name)) {
		if (flags & NI_NAMEREQD)
			return EAI_NONAME;
		/* Reverse DNS would leak the address to the local resolver. */
		return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICHOST);
	}
	if (strlen(name) >= hostlen)
		return EAI_OVERFLOW;
	if (serv && servlen) {
		int rc = REAL(getnameinfo)(sa, salen, NULL, 0, serv, servlen, flags);
		if (rc != 0)
			return rc;
	}
	strcpy(host, name);
	return 0;
}
