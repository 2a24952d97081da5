/* Shared by the getaddrinfo and gethostbyname hooks. */
#ifndef SFY_RESOLVE_H
#define SFY_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "sfy_hosts.h"

/* /etc/hosts (and localhost) addresses of name; returns how many. */
int sfy_local_addrs(const char *name, int family, struct sfy_host_addr *out, int max);
/* Fake address of name for family; 0 or -1. */
int sfy_fake_addr(const char *name, int family, struct sfy_host_addr *out);
/* getaddrinfo() as the hook answers it (getaddrinfo_a() uses it too):
 * under remote DNS a name never reaches the system resolver unless it is
 * a direct_domain name. */
struct addrinfo;
int sfy_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
/* Name of an address from the fake pool or /etc/hosts, never DNS; 1 or 0. */
int sfy_reverse_name(const struct sockaddr *sa, char *name, size_t cap);

/* socksify's answer to a DNS query under remote DNS (shim/dns_answer.c):
 * fake A/AAAA (or the /etc/hosts addresses), the name for PTR, NODATA for
 * other types, FORMERR/NOTIMP for what is no plain query.  Returns the
 * reply's length in out; 0 when the message is to be dropped (not DNS at
 * all); -1 when the question is for the real resolver (a direct_domain
 * name, or remote DNS is off): send it on as the program did. */
ssize_t sfy_dns_respond(const uint8_t *query, size_t len, uint8_t *out, size_t cap);

#endif
