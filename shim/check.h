/* Between socksify-check's parts (shim/check.c, shim/check_config.c). */
#ifndef SFY_CHECK_H
#define SFY_CHECK_H

#include "sfy_config.h"

#include <stddef.h>
#include <stdint.h>

/* A timeout of 0 is no limit in the library; the probe still ends. */
#define NO_LIMIT_NOTE " (no limit; --check waits 30s)"

/* "a.b.c.d/n", "a.b.c.d/n:port", "[v6]/n:port". */
void sfy_check_cidr_text(const struct sfy_cidr *c, char *out, size_t cap);
/* The configuration the library would load, key by key. */
void sfy_check_print_config(const struct sfy_config *cfg);
/* "route for HOST:PORT: CHAIN because REASON" (shim/routes.c's choice;
 * name and/or sa, as the library would see them). */
struct sockaddr;
struct sfy_chain;
struct s5_addr;
/* The route HOST takes and why; the chain it takes first (NULL: direct
 * or blocked). */
const struct sfy_chain *sfy_check_print_route_for(const struct sfy_config *cfg, const char *host, const char *name,
			       const struct sockaddr *sa, uint16_t port);
/* The session pool the library would use here. */
void sfy_check_print_session(const struct sfy_config *cfg);
/* sealed =, and whether sealed mode can run here. */
void sfy_check_print_sealed(const struct sfy_config *cfg);

/* Every hop of route to dst, step by step (shim/check_route.c): 0 or -1. */
int sfy_check_probe_route(const struct sfy_config *cfg, const struct sfy_chain *route, const struct s5_addr *dst);

#endif
