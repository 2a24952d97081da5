/* libFuzzer target: the proxy URL parser, sfy_config_parse_proxy_url
 * (shim/config.c).
 *
 * Invariants:
 *   - 0 or -1; on -1 the error is non-empty and NUL-terminated, the
 *     config keeps its previous proxy, and the password of the URL (the
 *     text between ':' and the last '@', when it is 6 bytes or more and
 *     not repeated after the '@') is not quoted in the error;
 *   - on success, a URL rebuilt from the result (scheme, %-escaped
 *     user:pass, numeric host, port) parses to the same proxy address,
 *     DNS mode and credentials: a round trip (skipped when escaping
 *     makes the rebuilt URL longer than SFY_MAX_LINE). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_config.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

static struct sfy_config a, b, fresh;

/* %-escape what the URL syntax needs escaped: '%', ':', '@', ',' (between
 * the hops of a chain) and bytes outside printable ASCII. */
static void escape(const char *in, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		if (c > 0x20 && c < 0x7f && c != '%' && c != ':' && c != '@' && c != ',') {
			*out++ = (char)c;
			continue;
		}
		*out++ = '%';
		*out++ = hex[c >> 4];
		*out++ = hex[c & 15];
	}
	*out = '\0';
}

static void rebuild(const struct sfy_config *c, char *url, size_t cap)
{
	char user[256 * 3 + 1], pass[256 * 3 + 1], host[INET6_ADDRSTRLEN];
	unsigned port;
	int n;

	if (c->proxy.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&c->proxy;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&c->proxy;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
	}
	escape(c->user, user);
	escape(c->pass, pass);
	n = snprintf(url, cap, "%s://%s%s%s%s%s%s%s:%u", c->remote_dns ? "socks5h" : "socks5",
		     user, c->pass[0] ? ":" : "", pass, c->user[0] ? "@" : "",
		     c->proxy.ss_family == AF_INET6 ? "[" : "", host,
		     c->proxy.ss_family == AF_INET6 ? "]" : "", port);
	CHECK(n > 0 && (size_t)n < cap);
}

/* The password (between the first ':' and the last '@') is in the error
 * only because it was in the URL: with the same URL but the password
 * replaced by as many 'Q's, it is not (so fixed text such as "localhost"
 * in a message is no leak). */
static void check_no_password(const char *url, const char *err)
{
	static struct sfy_config scratch;
	const char *at = strrchr(url, '@');
	const char *p = !strncmp(url, "socks5h://", 10) ? url + 10 : !strncmp(url, "socks5://", 9) ? url + 9 : NULL;
	if (!at || !p || p > at)
		return;
	const char *colon = memchr(p, ':', (size_t)(at - p));
	if (!colon || at - colon - 1 < 6)
		return;
	char pw[1100], masked[2048], err2[256];
	size_t n = (size_t)(at - colon - 1);
	if (n >= sizeof(pw))
		return;
	memcpy(pw, colon + 1, n);
	pw[n] = '\0';
	if (strstr(at + 1, pw) || !strstr(err, pw))
		return;
	snprintf(masked, sizeof(masked), "%s", url);
	memset(masked + (colon + 1 - url), 'Q', n);
	sfy_config_defaults(&scratch);
	err2[0] = '\0';
	sfy_config_parse_proxy_url(&scratch, masked, err2, sizeof(err2));
	CHECK(strstr(err2, pw) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[2048], again[2400], err[256], err2[256];

	if (size >= sizeof(url))
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	sfy_config_defaults(&fresh);
	a = fresh;
	err[0] = '\0';
	int r = sfy_config_parse_proxy_url(&a, url, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r < 0) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(memcmp(&a.proxy, &fresh.proxy, sizeof(a.proxy)) == 0);
		CHECK(a.proxy_len == fresh.proxy_len);
		check_no_password(url, err);
		return 0;
	}
	CHECK(strlen(a.user) <= 255 && strlen(a.pass) <= 255);
	CHECK(a.proxy.ss_family == AF_INET || a.proxy.ss_family == AF_INET6);
	rebuild(&a, again, sizeof(again));
	if (strlen(again) >= SFY_MAX_LINE)
		return 0; /* escaping made it longer than any URL accepted */
	b = fresh;
	CHECK(sfy_config_parse_proxy_url(&b, again, err2, sizeof(err2)) == 0);
	CHECK(b.proxy_len == a.proxy_len);
	CHECK(memcmp(&b.proxy, &a.proxy, a.proxy_len) == 0);
	CHECK(b.remote_dns == a.remote_dns);
	CHECK(strcmp(b.user, a.user) == 0 && strcmp(b.pass, a.pass) == 0);
	return 0;
}
