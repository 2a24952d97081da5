/* libFuzzer target: the config file parser, sfy_config_parse_text
 * (shim/config.c), on arbitrary text.
 *
 * Invariants:
 *   - it returns 0 or -1; on -1 the error is "fuzz.conf:LINE: ..." and
 *     NUL-terminated inside its buffer;
 *   - it is deterministic: the same text gives a byte-identical config;
 *   - on success every field is within the documented limits
 *     (credentials 1..255 bytes or unset, at most 64 direct rules and
 *     domains, prefixes within the family, timeouts 1 ms..3600 s, pool
 *     size 16..1048576, fake ranges of at least 256 addresses, a proxy
 *     address of the family its length says);
 *   - a password never appears in the error message (checked when
 *     the value occurs only once in the text). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_config.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)
#define NAME "fuzz.conf"

static struct sfy_config a, b; /* large: keep them off the stack */

/* The hops' credential and GSSAPI service pointers point into their own
 * config (a's into a, b's into b): compare configs with those cleared. */
static void unlink_creds(struct sfy_config *c)
{
	for (int r = 0; r < SFY_MAX_ROUTES; r++)
		for (int i = 0; i < SFY_CHAIN_MAX; i++) {
			c->routes[r].hop[i].hop.user = c->routes[r].hop[i].hop.pass = NULL;
			c->routes[r].hop[i].hop.gss_service = NULL;
		}
	for (int v = 0; v < SFY_MAX_VIA; v++)
		for (int i = 0; i < SFY_CHAIN_MAX; i++) {
			c->via[v].hop[i].hop.user = c->via[v].hop[i].hop.pass = NULL;
			c->via[v].hop[i].hop.gss_service = NULL;
		}
}

static void check_limits(const struct sfy_config *c)
{
	size_t ul = strnlen(c->user, sizeof(c->user)), pl = strnlen(c->pass, sizeof(c->pass));

	CHECK(ul <= 255 && pl <= 255);
	CHECK(c->n_direct >= 0 && c->n_direct <= SFY_MAX_DIRECT);
	CHECK(c->n_direct_domain >= 0 && c->n_direct_domain <= SFY_MAX_DOMAINS);
	for (int i = 0; i < c->n_direct; i++) {
		const struct sfy_cidr *d = &c->direct[i];
		CHECK(d->family == AF_INET || d->family == AF_INET6);
		CHECK(d->prefix >= 0 && d->prefix <= (d->family == AF_INET ? 32 : 128));
	}
	for (int i = 0; i < c->n_direct_domain; i++) {
		size_t n = strnlen(c->direct_domain[i], sizeof(c->direct_domain[i]));
		CHECK(n >= 1 && n <= 253);
	}
	CHECK(c->fake4.family == AF_INET && c->fake4.prefix <= 24);
	CHECK(c->fake6.family == AF_INET6 && c->fake6.prefix <= 120);
	CHECK(c->fake_pool_size >= 16 && c->fake_pool_size <= 1048576);
	CHECK(c->connect_timeout_ms >= 0 && c->connect_timeout_ms <= 3600000);
	CHECK(c->handshake_timeout_ms >= 0 && c->handshake_timeout_ms <= 3600000);
	CHECK(c->bind_timeout_ms >= 0 && c->bind_timeout_ms <= 3600000);
	CHECK(c->log_level >= SFY_LOG_ERROR && c->log_level <= SFY_LOG_DEBUG);
	CHECK(c->bind_mode >= SFY_BIND_AUTO && c->bind_mode <= SFY_BIND_NEVER);
	CHECK(c->remote_dns == 0 || c->remote_dns == 1);
	CHECK(c->direct_loopback == 0 || c->direct_loopback == 1);
	if (c->proxy.ss_family == AF_INET)
		CHECK(c->proxy_len == sizeof(struct sockaddr_in));
	else
		CHECK(c->proxy.ss_family == AF_INET6 && c->proxy_len == sizeof(struct sockaddr_in6));
	CHECK(memchr(c->proxy_text, '\0', sizeof(c->proxy_text)) != NULL);
	CHECK(memchr(c->log_file, '\0', sizeof(c->log_file)) != NULL);
	CHECK(c->log_file[0] == '\0' || c->log_file[0] == '/');
}

/* The error quotes pw (n bytes at offset off in text) only if it is part of
 * the message's own wording: with the value masked, the error still holds
 * pw.  Returns 1 when the error came from the value (a leak). */
static int from_template(const char *text, size_t off, size_t n, const char *pw)
{
	static struct sfy_config masked;
	char *copy = strdup(text);
	CHECK(copy != NULL);
	memset(copy + off, 'x', n);
	sfy_config_defaults(&masked);
	sfy_config_parse_text(&masked, copy, NAME);
	free(copy);
	return strstr(masked.error, pw) == NULL;
}

/* No "password = VALUE" line's value (6 bytes or more) is in the error. */
static void check_no_password(const char *text, const char *err)
{
	for (const char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
		const char *k = line;
		while (*k == ' ' || *k == '\t')
			k++;
		if (strncmp(k, "password", 8) != 0)
			continue;
		const char *eq = k + 8;
		while (*eq == ' ' || *eq == '\t')
			eq++;
		if (*eq != '=')
			continue;
		const char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, "\n");
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
			n--;
		if (n < 6 || n >= 300)
			continue;
		char pw[300];
		memcpy(pw, v, n);
		pw[n] = '\0';
		/* only when the text holds it once: elsewhere (as a key, say)
		 * it may be quoted legitimately */
		const char *first = strstr(text, pw);
		if (first && !strstr(first + 1, pw) && !strstr(NAME, pw) && strstr(err, pw))
			CHECK(!from_template(text, first - text, n, pw));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 70000)
		return 0;
	char *text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	sfy_config_defaults(&a);
	sfy_config_defaults(&b);
	int ra = sfy_config_parse_text(&a, text, NAME);
	int rb = sfy_config_parse_text(&b, text, NAME);
	CHECK(ra == rb);
	if (ra == 0)
		CHECK(a.n_routes >= 1 && a.n_routes <= SFY_MAX_ROUTES && a.routes[0].hop[0].hop.user == a.user);
	unlink_creds(&a);
	unlink_creds(&b);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	CHECK(ra == 0 || ra == -1);
	CHECK(memchr(a.error, '\0', sizeof(a.error)) != NULL);
	if (ra < 0) {
		CHECK(strncmp(a.error, NAME ":", sizeof(NAME)) == 0);
		check_no_password(text, a.error);
	} else {
		CHECK(a.error[0] == '\0');
		check_limits(&a);
	}
	free(text);
	return 0;
}
