/* Shared by the getaddrinfo and gethostbyname hooks. */
#ifndef SFY_RESOLVE_H
#define SFY_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "sfy_hosts.h"

/* /etc/hosts (and localhost) addresses of name; returns how many. */
int sfy_local_addrs(const char *name, int family, struct sfy_host_addr *out, int max);
/* Fake address of name for family; 0 or -1. */
int sfy_fake_addr(const char *name, int family, struct sfy_host_addr *out);
/* Name of an address from the fake pool or /etc/hosts, never DNS; 1 or 0. */
int sfy_reverse_name(const struct sockaddr *sa, char *name, size_t cap);

#endif
