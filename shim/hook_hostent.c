/* gethostbyname() family and gethostbyaddr(), answered like getaddrinfo():
 * numeric, /etc/hosts, direct domains locally; other names get fake addresses. */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sfy_log.h"
#include "sfy_resolve.h"

/* Lay out a hostent in buf: pointer arrays first (aligned), then the
 * addresses, then the name.  Returns 0 or ERANGE. */
static int fill_hostent(const char *name, int af, const struct sfy_host_addr *addrs, int n, struct hostent *he,
			char *buf, size_t buflen)
{
	size_t alen = af == AF_INET ? 4 : 16;
	size_t pad = (sizeof(char *) - (uintptr_t)buf % sizeof(char *)) % sizeof(char *);
	size_t need = pad + sizeof(char *) * (size_t)(n + 2) + alen * (size_t)n + strlen(name) + 1;
	if (buflen < need)
		return ERANGE;
	char **ptrs = (char **)(void *)(buf + pad);
	char *data = (char *)(ptrs + n + 2);
	for (int i = 0; i < n; i++) {
		memcpy(data + alen * (size_t)i, &addrs[i].u, alen);
		ptrs[i] = data + alen * (size_t)i;
	}
	ptrs[n] = NULL;     /* end of h_addr_list */
	ptrs[n + 1] = NULL; /* h_aliases: empty */
	char *name_copy = data + alen * (size_t)n;
	strcpy(name_copy, name);
	he->h_name = name_copy;
	he->h_aliases = ptrs + n + 1;
	he->h_addrtype = af;
	he->h_length = (int)alen;
	he->h_addr_list = ptrs;
	return 0;
}

/* Our answer for name, or 1 when the real function should answer. */
static int lookup(const char *name, int af, struct sfy_host_addr *addrs, int *n, int *herr)
{
	if (!sfy_cfg.remote_dns || !name || (af != AF_INET && af != AF_INET6) || sfy_name_is_direct(&sfy_cfg, name))
		return 1;
	addrs[0].family = af;
	if (inet_pton(af, name, &addrs[0].u) == 1 || (af == AF_INET && inet_aton(name, &addrs[0].u.v4))) {
		*n = 1;
		return 0;
	}
	*n = sfy_local_addrs(name, af, addrs, SFY_HOSTS_MAX_ADDRS);
	if (*n == 0 && sfy_fake_addr(name, af, &addrs[0]) == 0)
		*n = 1;
	*herr = *n ? 0 : HOST_NOT_FOUND;
	return 0;
}

static int byname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
		     struct hostent **result, int *h_errnop);

SFY_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
				struct hostent **result, int *h_errnop)
{
	return byname2_r(name, af, ret, buf, buflen, result, h_errnop);
}

static int byname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen,
				struct hostent **result, int *h_errnop)
{
	sfy_init();
	struct sfy_host_addr addrs[SFY_HOSTS_MAX_ADDRS];
	int n = 0, herr = 0;
	if (lookup(name, af, addrs, &n, &herr))
		return REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
	*result = NULL;
	*h_errnop = herr;
	if (!n)
		return ENOENT;
	int rc = fill_hostent(name, af, addrs, n, ret, buf, buflen);
	if (rc) {
		*h_errnop = NETDB_INTERNAL;
		return rc;
	}
	*result = ret;
	return 0;
}

SFY_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
			       struct hostent **result, int *h_errnop)
{
	return byname2_r(name, AF_INET, ret, buf, buflen, result, h_errnop);
}

/* The non-reentrant calls share one result per thread, as libc's do per process. */
static __thread struct hostent tls_hostent __attribute__((tls_model("initial-exec")));
static __thread char tls_buf[1024] __attribute__((tls_model("initial-exec")));

static struct hostent *byname2(const char *name, int af)
{
	sfy_init();
	struct sfy_host_addr addrs[SFY_HOSTS_MAX_ADDRS];
	int n = 0, herr = 0;
	if (lookup(name, af, addrs, &n, &herr))
		return REAL(gethostbyname2)(name, af);
	if (!n || fill_hostent(name, af, addrs, n, &tls_hostent, tls_buf, sizeof tls_buf)) {
		h_errno = n ? NETDB_INTERNAL : herr;
		return NULL;
	}
	return &tls_hostent;
}

SFY_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	return byname2(name, af);
}

SFY_EXPORT struct hostent *gethostbyname(const char *name)
{
	return byname2(name, AF_INET);
}

/* Our answer for an address: 0 with the name, 1 when the real function
 * should answer, -1 when there is no name (reverse DNS would leak it). */
static int reverse(const void *addr, socklen_t len, int type, struct sfy_host_addr *a, char *name, size_t cap)
{
	if (!sfy_cfg.remote_dns || !addr || !((type == AF_INET && len == 4) || (type == AF_INET6 && len == 16)))
		return 1;
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)type};
	a->family = type;
	memcpy(&a->u, addr, len);
	if (type == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, addr, len);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, addr, len);
	return sfy_reverse_name((struct sockaddr *)&ss, name, cap) ? 0 : -1;
}

SFY_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret, char *buf,
			       size_t buflen, struct hostent **result, int *h_errnop)
{
	sfy_init();
	struct sfy_host_addr a;
	char name[S5_NAME_MAX + 1];
	int found = reverse(addr, len, type, &a, name, sizeof name);
	if (found > 0)
		return REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
	*result = NULL;
	if (found < 0) {
		*h_errnop = HOST_NOT_FOUND;
		return ENOENT;
	}
	int rc = fill_hostent(name, type, &a, 1, ret, buf, buflen);
	if (rc) {
		*h_errnop = NETDB_INTERNAL;
		return rc;
	}
	*result = ret;
	return 0;
}

SFY_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	sfy_init();
	struct sfy_host_addr a;
	char name[S5_NAME_MAX + 1];
	int found = reverse(addr, len, type, &a, name, sizeof name);
	if (found > 0)
		return REAL(gethostbyaddr)(addr, len, type);
	if (found < 0) {
		h_errno = HOST_NOT_FOUND;
		return NULL;
	}
	if (fill_hostent(name, type, &a, 1, &tls_hostent, tls_buf, sizeof tls_buf)) {
		h_errno = NETDB_INTERNAL;
		return NULL;
	}
	return &tls_hostent;
}
