/* A stand-in for shim/gss.c in the fuzz targets: a deterministic
 * "mechanism" with no Kerberos, so that fuzz_gss.c can drive the GSSAPI
 * method's framing, token loop and wrapped replies from any bytes.
 *
 * Context: the first step sends "T1"; a server token starting 'A'
 * completes the context, 'M' asks for one more round ("T2"), anything
 * else is refused (EACCES).  wrap: X'AA', the conf flag, then the plain
 * bytes; unwrap checks both and refuses a conf flag below the level. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_gss.h"
#include "socks5_codec.h"

__thread int sfy_gss_native;

struct sfy_gss {
	int level;
	int steps;
	char err[64];
};

int sfy_gss_load(char *why, size_t cap)
{
	(void)why, (void)cap;
	return 0;
}

struct sfy_gss *sfy_gss_new(const char *service, int level, char *err, size_t cap)
{
	(void)service;
	struct sfy_gss *g = calloc(1, sizeof *g);
	if (!g)
		snprintf(err, cap, "out of memory");
	else
		g->level = level;
	return g;
}

int sfy_gss_step(struct sfy_gss *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len,
		 int *kinit)
{
	*kinit = 0;
	*out_len = 0;
	if (cap < 2)
		return -1;
	if (!in || g->steps == 0) {
		g->steps++;
		memcpy(out, "T1", 2), *out_len = 2;
		return 1;
	}
	if (in_len >= 1 && in[0] == 'A')
		return 0;
	if (in_len >= 1 && in[0] == 'M') {
		g->steps++;
		memcpy(out, "T2", 2), *out_len = 2;
		return 1;
	}
	snprintf(g->err, sizeof g->err, "stub: token refused");
	errno = EACCES;
	return -1;
}

long sfy_gss_wrap(struct sfy_gss *g, int conf, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err,
		  size_t errcap)
{
	int c = conf < 0 ? g->level == SFY_GSS_CONFIDENTIALITY : conf;
	if (n + 2 > cap || n + 2 > S5_GSS_TOKEN_MAX) {
		if (err && errcap)
			snprintf(err, errcap, "stub: too long");
		errno = EPROTO;
		return -1;
	}
	out[0] = 0xAA;
	out[1] = (uint8_t)c;
	memcpy(out + 2, in, n);
	return (long)n + 2;
}

long sfy_gss_unwrap(struct sfy_gss *g, int conf, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err,
		    size_t errcap)
{
	int c = conf < 0 ? g->level == SFY_GSS_CONFIDENTIALITY : conf;
	if (n < 2 || tok[0] != 0xAA || tok[1] < c || tok[1] > 1 || n - 2 > cap) {
		snprintf(g->err, sizeof g->err, "stub: bad token");
		if (err && errcap)
			snprintf(err, errcap, "%s", g->err);
		errno = EPROTO;
		return -1;
	}
	memcpy(out, tok + 2, n - 2);
	return (long)n - 2;
}

size_t sfy_gss_max_input(struct sfy_gss *g)
{
	(void)g;
	return S5_GSS_TOKEN_MAX - 2;
}

int sfy_gss_level(const struct sfy_gss *g)
{
	return g->level;
}

void sfy_gss_set_level(struct sfy_gss *g, int level)
{
	g->level = level;
}

const char *sfy_gss_error(const struct sfy_gss *g)
{
	return g->err;
}

void sfy_gss_free(struct sfy_gss *g)
{
	free(g);
}
