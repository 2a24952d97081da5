/* The GSS-API context as the relay's message protection (shim/relay.h):
 * the relay knows frames and sockets, this file knows gss_wrap and
 * gss_unwrap. */
#include "gss_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "sfy_log.h"

static long wrap(void *ctx, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap)
{
	return sfy_gss_wrap(ctx, -1, in, n, out, cap, err, errcap);
}

static long unwrap(void *ctx, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap)
{
	return sfy_gss_unwrap(ctx, -1, tok, n, out, cap, err, errcap);
}

static void release(void *ctx)
{
	sfy_gss_free(ctx);
}

static const struct sfy_prot_ops gss_ops = {wrap, unwrap, release};

int sfy_gss_relay(int fd, struct sfy_gss *g, const struct sfy_fdinfo *info, const struct sfy_epoll_reg *regs,
		  int n_regs)
{
	struct sfy_prot p = {.ops = &gss_ops, .ctx = g, .max_in = sfy_gss_max_input(g)};
	char what[64];
	snprintf(what, sizeof what, "fd %d", fd);
	int level = sfy_gss_level(g);
	if (sfy_relay_start(fd, &p, info, regs, n_regs, what) < 0) {
		int err = errno;
		sfy_log(SFY_LOG_WARN, "fd %d: gssapi: cannot start the relay: %s", fd, strerror(err));
		errno = err;
		return -1;
	}
	sfy_log(SFY_LOG_INFO, "fd %d: gssapi %s, data wrapped in messages of at most %zu bytes", fd,
		level == SFY_GSS_CONFIDENTIALITY ? "confidentiality" : "integrity", p.max_in);
	return 0;
}
