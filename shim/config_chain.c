/* Proxy URLs and chains (issue 14): "scheme://[user[:pass]@]host[:port]",
 * several separated by commas, hop 1 first, parsed into a struct
 * sfy_chain.  Hop 1 is the only address we connect to ourselves, so it must
 * be numeric, localhost, or a name in /etc/hosts (read by our own reader,
 * never DNS); later hops are asked for by the hop before them, so a name
 * there stays a name and is never resolved here.  Pure string work plus
 * the hosts file: no sockets, no logging. */
#include "sfy_config.h"
#include "sfy_hosts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sfy_config_hosts_file = SFY_HOSTS_PATH;

struct scheme {
	const char *prefix;
	enum sfy_hop_type type;
	int remote_dns; /* what the scheme says of DNS on a route's last hop: -1 nothing */
	uint16_t port;  /* default port */
};

static const struct scheme schemes[] = {
	{"socks5h://", SFY_HOP_SOCKS5, 1, 1080},
	{"socks5://", SFY_HOP_SOCKS5, 0, 1080},
	{"socks4a://", SFY_HOP_SOCKS4A, -1, 1080},
	{"socks4://", SFY_HOP_SOCKS4, -1, 1080},
	{"http://", SFY_HOP_HTTP, -1, 8080},
};

/* One hop's URL, taken apart. */
struct url {
	const struct scheme *s;
	char user[256], pass[256];
	int has_user, has_pass;
	char host[256];
	uint16_t port;
	int bracketed;
};

static int percent_decode(const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], 0};
			c = (unsigned char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (o + 1 >= cap || c == '\0')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* "user[:pass]@" at the front of p (up to the last '@'), decoded. */
static int parse_userinfo(const char *p, const char *at, struct url *u, char *err, size_t errlen)
{
	const char *colon = memchr(p, ':', (size_t)(at - p));
	size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
	if (percent_decode(p, ulen, u->user, sizeof u->user) < 0 || !u->user[0] ||
	    (colon && percent_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof u->pass) < 0))
		return snprintf(err, errlen, "user name or password empty or longer than 255 bytes"), -1;
	u->has_user = 1;
	u->has_pass = colon != NULL;
	return 0;
}

/* host[:port][/] or [v6][:port][/] into u->host and u->port. */
static int parse_hostport(const char *p, struct url *u, char *err, size_t errlen)
{
	const char *hend, *portstr = NULL;
	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend)
			return snprintf(err, errlen, "missing ']'"), -1;
		p++;
		u->bracketed = 1;
		if (hend[1] == ':')
			portstr = hend + 2;
		else if (hend[1] != '\0' && strcmp(hend + 1, "/") != 0)
			return snprintf(err, errlen, "junk after ']'"), -1;
	} else {
		hend = strchr(p, ':');
		if (hend)
			portstr = hend + 1;
		else
			hend = p + strcspn(p, "/");
		if (!portstr && *hend && strcmp(hend, "/") != 0)
			return snprintf(err, errlen, "junk after host"), -1;
	}
	if ((size_t)(hend - p) >= sizeof u->host || hend == p)
		return snprintf(err, errlen, "bad host"), -1;
	memcpy(u->host, p, (size_t)(hend - p));
	u->host[hend - p] = '\0';
	u->port = u->s->port;
	if (portstr) {
		char pbuf[8];
		size_t plen = strcspn(portstr, "/");
		if (plen >= sizeof pbuf || (portstr[plen] && strcmp(portstr + plen, "/") != 0))
			return snprintf(err, errlen, "bad port"), -1;
		memcpy(pbuf, portstr, plen);
		pbuf[plen] = '\0';
		if (sfy_config_parse_port(pbuf, &u->port) < 0)
			return snprintf(err, errlen, "bad port '%s'", pbuf), -1;
	}
	return 0;
}

static int parse_url(const char *url, struct url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof *u);
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
		if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
			u->s = &schemes[i];
	if (!u->s)
		return snprintf(err, errlen,
				"must start with socks5://, socks5h://, socks4://, socks4a:// or http://"),
		       -1;
	const char *p = url + strlen(u->s->prefix);
	const char *at = strrchr(p, '@');
	if (at) {
		if (parse_userinfo(p, at, u, err, errlen) < 0)
			return -1;
		p = at + 1;
	}
	return parse_hostport(p, u, err, errlen);
}

/* A name another hop may be asked for: letters, digits, '-', '_', '.'. */
static int name_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n <= 253 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static void addr_v4(struct sfy_chain_hop *h, const void *a, uint16_t port)
{
	h->addr.atyp = S5_ATYP_IPV4;
	h->addr.port = port;
	memcpy(h->addr.u.ipv4, a, 4);
}

static void addr_v6(struct sfy_chain_hop *h, const void *a, uint16_t port)
{
	h->addr.atyp = S5_ATYP_IPV6;
	h->addr.port = port;
	memcpy(h->addr.u.ipv6, a, 16);
}

/* Hop 1: the socket address we connect to.  0, or -1 when the host is not
 * numeric, localhost or in the hosts file. */
static int first_hop_address(struct sfy_chain_hop *h, const struct url *u)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&h->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->sa;
	struct in_addr a4;
	struct in6_addr a6;
	struct sfy_host_addr ha;
	const char *host = strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
	int family = 0;
	if (inet_pton(AF_INET, host, &a4) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, host, &a6) == 1)
		family = AF_INET6;
	else if (!u->bracketed && name_ok(host) && strspn(host, "0123456789.") != strlen(host) &&
		 sfy_hosts_lookup(sfy_config_hosts_file, host, AF_UNSPEC, &ha, 1) == 1) {
		family = ha.family;
		a4 = ha.u.v4;
		a6 = ha.u.v6;
	}
	if (u->bracketed && family != AF_INET6)
		return -1;
	memset(&h->sa, 0, sizeof h->sa);
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(u->port);
		sin->sin_addr = a4;
		h->salen = sizeof *sin;
		addr_v4(h, &a4, u->port);
	} else if (family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(u->port);
		sin6->sin6_addr = a6;
		h->salen = sizeof *sin6;
		addr_v6(h, &a6, u->port);
	}
	return family ? 0 : -1;
}

/* A later hop: numeric, or a name sent as it is to the hop before. */
static int later_hop_address(struct sfy_chain_hop *h, const struct url *u)
{
	uint8_t a[16];
	h->salen = 0;
	if (inet_pton(AF_INET, u->host, a) == 1 && !u->bracketed)
		addr_v4(h, a, u->port);
	else if (inet_pton(AF_INET6, u->host, a) == 1)
		addr_v6(h, a, u->port);
	else if (!u->bracketed && name_ok(u->host)) {
		size_t n = strlen(u->host);
		h->addr.atyp = S5_ATYP_DOMAIN;
		h->addr.port = u->port;
		h->addr.u.domain.len = (uint8_t)n;
		memcpy(h->addr.u.domain.name, u->host, n + 1);
	} else
		return -1;
	return 0;
}

/* Copy s into the config's credential pool: its offset, or -1 when full. */
static int16_t cred_store(struct sfy_config *cfg, const char *s)
{
	size_t n = strlen(s) + 1;
	if ((size_t)cfg->cred_used + n > sizeof cfg->cred)
		return -2; /* full */
	memcpy(cfg->cred + cfg->cred_used, s, n);
	int16_t off = (int16_t)cfg->cred_used;
	cfg->cred_used += (int)n;
	return off;
}

/* What each hop type accepts as credentials. */
static const char *cred_problem(const struct url *u, int deferred)
{
	if (!u->has_user)
		return NULL;
	if (u->s->type == SFY_HOP_SOCKS4 || u->s->type == SFY_HOP_SOCKS4A)
		return u->has_pass ? "socks4 sends a user id only: no password" : NULL;
	if (u->s->type == SFY_HOP_SOCKS5 && !deferred && !u->pass[0])
		return "a user name needs a password (RFC 1929 needs both)";
	return NULL;
}

/* What a chain's parse tells its caller beyond the chain. */
struct chain_extra {
	int has_user;               /* hop 1 gave credentials (route 1: for cfg->user, pass) */
	char user[256], pass[256];
	int remote_dns;             /* the last hop's scheme: 1 socks5h, 0 socks5, -1 other */
};

/* Hop i of a chain from its URL (NUL-terminated, trimmed). */
/* "rcmd@" + the proxy's host as written (len bytes of host), as Dante
 * names a proxy's service by default: the GSSAPI service when
 * gssapi_service is not set. */
static void gss_default_service(struct sfy_chain_hop *h, const char *host, size_t len)
{
	snprintf(h->gss_default, sizeof h->gss_default, "rcmd@%.*s", (int)len, host);
}

static int parse_hop(struct sfy_config *cfg, struct sfy_chain *chain, struct sfy_cred_ref *ref, int i,
		     int first_is_cfg, const char *text, struct chain_extra *x, char *err, size_t errlen)
{
	struct url u;
	struct sfy_chain_hop *h = &chain->hop[i];
	char why[160];
	const char *bad;
	memset(h, 0, sizeof *h);
	if (parse_url(text, &u, why, sizeof why) < 0)
		return snprintf(err, errlen, "%s", why), -1;
	if ((i == 0 ? first_hop_address(h, &u) : later_hop_address(h, &u)) < 0)
		return snprintf(err, errlen,
				i == 0 ? "host must be a numeric IPv4/[IPv6] address, localhost or a name in /etc/hosts, not '%.100s'"
				       : "host must be a numeric address or a host name, not '%.100s'",
				u.host),
		       -1;
	if ((bad = cred_problem(&u, i == 0 && first_is_cfg)))
		return snprintf(err, errlen, "%s", bad), -1;
	h->hop.type = u.s->type;
	ref->user = ref->pass = SFY_CRED_NONE;
	x->remote_dns = u.s->remote_dns;
	if (i == 0 && first_is_cfg) {
		ref->user = ref->pass = SFY_CRED_CFG;
		if ((x->has_user = u.has_user)) {
			memcpy(x->user, u.user, sizeof x->user);
			memcpy(x->pass, u.pass, sizeof x->pass);
		}
	} else if (u.has_user) {
		ref->user = cred_store(cfg, u.user);
		ref->pass = u.has_pass ? cred_store(cfg, u.pass) : SFY_CRED_NONE;
		if (ref->user == -2 || ref->pass == -2)
			return snprintf(err, errlen, "too many credentials (at most %d bytes in all)", SFY_CRED_POOL), -1;
	}
	const char *scheme = u.s->prefix;
	snprintf(h->text, sizeof h->text, u.bracketed || strchr(u.host, ':') ? "%s[%.60s]:%u" : "%s%.70s:%u", scheme,
		 u.host, u.port);
	gss_default_service(h, u.host, strlen(u.host)); /* whole: the text above may cut a long name */
	return 0;
}

/* Hop i+1 must be something hop i can ask for. */
static int hop_reachable(const struct sfy_chain *c, int i, char *err, size_t errlen)
{
	if (c->hop[i].hop.type != SFY_HOP_SOCKS4 || c->hop[i + 1].addr.atyp == S5_ATYP_IPV4)
		return 0;
	return snprintf(err, errlen, "hop %d is socks4, which can only ask for an IPv4 address, and hop %d is %s: "
			"use socks4a:// or give hop %d's IPv4 address", i + 1, i + 2,
			c->hop[i + 1].addr.atyp == S5_ATYP_IPV6 ? "IPv6" : "a name", i + 2),
	       -1;
}

/* A URL list into chain and cred; hop 1's credentials, when first_is_cfg,
 * into x for cfg->user and pass.  0, or -1 with err (and nothing stored). */
static int parse_chain(struct sfy_config *cfg, const char *list, struct sfy_chain *chain,
		       struct sfy_cred_ref cred[SFY_CHAIN_MAX], int first_is_cfg, struct chain_extra *x, char *err,
		       size_t errlen)
{
	char buf[SFY_MAX_LINE + 1], why[SFY_ERR_MAX / 2];
	if (strlen(list) > SFY_MAX_LINE)
		return snprintf(err, errlen, "proxy URL too long"), -1;
	strcpy(buf, list);
	int n = 0, saved_used = cfg->cred_used;
	for (char *p = buf, *next; p; p = next) {
		next = strchr(p, ',');
		if (next)
			*next++ = '\0';
		while (isspace((unsigned char)*p))
			p++;
		char *end = p + strlen(p);
		while (end > p && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*p && (n || next)) {
			snprintf(err, errlen, "proxy URL hop %d: empty (a ',' too many?)", n + 1);
			goto fail;
		}
		if (n == SFY_CHAIN_MAX) {
			snprintf(err, errlen, "proxy URL: more than %d hops", SFY_CHAIN_MAX);
			goto fail;
		}
		if (parse_hop(cfg, chain, &cred[n], n, first_is_cfg, p, x, why, sizeof why) < 0) {
			if (n == 0 && !next)
				snprintf(err, errlen, "proxy URL: %s", why);
			else
				snprintf(err, errlen, "proxy URL hop %d: %s", n + 1, why);
			goto fail;
		}
		n++;
	}
	chain->n = n;
	for (int i = 0; i + 1 < n; i++)
		if (hop_reachable(chain, i, why, sizeof why) < 0) {
			snprintf(err, errlen, "proxy URL: %s", why);
			goto fail;
		}
	return 0;
fail:
	cfg->cred_used = saved_used; /* what this list stored goes again */
	return -1;
}

/* cfg->proxy, proxy_len and proxy_text from route 1's first hop. */
static void set_first_proxy(struct sfy_config *cfg)
{
	const struct sfy_chain_hop *h = &cfg->routes[0].hop[0];
	char a[INET6_ADDRSTRLEN];
	memcpy(&cfg->proxy, &h->sa, sizeof cfg->proxy);
	cfg->proxy_len = h->salen;
	if (h->sa.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&h->sa)->sin6_addr, a, sizeof a);
		snprintf(cfg->proxy_text, sizeof cfg->proxy_text, "[%s]:%u", a, h->addr.port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&h->sa)->sin_addr, a, sizeof a);
		snprintf(cfg->proxy_text, sizeof cfg->proxy_text, "%s:%u", a, h->addr.port);
	}
}

int sfy_config_add_route(struct sfy_config *cfg, const char *list, char *err, size_t errlen)
{
	struct sfy_chain chain;
	struct sfy_cred_ref cred[SFY_CHAIN_MAX];
	struct chain_extra x = {.remote_dns = -1};
	memset(&chain, 0, sizeof chain); /* the hops past n too: a config is the same bytes each time */
	memset(cred, 0, sizeof cred);
	int first = cfg->n_proxy_lines == 0; /* replaces the default (or the file's, for the environment) */
	if (!first && cfg->n_routes >= SFY_MAX_ROUTES)
		return snprintf(err, errlen, "too many proxy lines (at most %d)", SFY_MAX_ROUTES), -1;
	if (parse_chain(cfg, list, &chain, cred, first, &x, err, errlen) < 0)
		return -1;
	int k = first ? 0 : cfg->n_routes;
	cfg->routes[k] = chain;
	memcpy(cfg->route_cred[k], cred, sizeof cred);
	cfg->n_routes = k + 1;
	cfg->n_proxy_lines++;
	if (first) {
		set_first_proxy(cfg);
		if (x.remote_dns >= 0)
			cfg->remote_dns = x.remote_dns;
		if (x.has_user) {
			memcpy(cfg->user, x.user, sizeof x.user);
			memcpy(cfg->pass, x.pass, sizeof x.pass);
		}
	}
	sfy_config_link(cfg);
	return 0;
}

int sfy_config_add_via(struct sfy_config *cfg, const char *list, char *err, size_t errlen)
{
	struct sfy_chain chain;
	struct sfy_cred_ref cred[SFY_CHAIN_MAX];
	struct chain_extra x;
	memset(&chain, 0, sizeof chain);
	memset(cred, 0, sizeof cred);
	if (cfg->n_via >= SFY_MAX_VIA)
		return snprintf(err, errlen, "too many routes with via (at most %d)", SFY_MAX_VIA), -1;
	if (parse_chain(cfg, list, &chain, cred, 0, &x, err, errlen) < 0)
		return -1;
	int k = cfg->n_via++;
	cfg->via[k] = chain;
	memcpy(cfg->via_cred[k], cred, sizeof cred);
	sfy_config_link(cfg);
	return k;
}

int sfy_config_parse_proxy_url(struct sfy_config *cfg, const char *url, char *err, size_t errlen)
{
	int lines = cfg->n_proxy_lines, routes = cfg->n_routes;
	cfg->n_proxy_lines = 0; /* the one route from now on */
	if (sfy_config_add_route(cfg, url, err, errlen) < 0) {
		cfg->n_proxy_lines = lines;
		cfg->n_routes = routes;
		return -1;
	}
	cfg->n_routes = 1;
	return 0;
}

static const char *cred_at(struct sfy_config *cfg, int16_t off, char *own)
{
	if (off == SFY_CRED_CFG)
		return own;
	return off >= 0 && off < cfg->cred_used ? cfg->cred + off : NULL;
}

/* GSSAPI is offered by a route's last hop only, when it is SOCKS5: the
 * hops before it carry its frames as plain bytes, and nothing after it
 * would have to be wrapped inside another hop's handshake. */
static void link_gss(struct sfy_config *cfg, struct sfy_chain *c)
{
	for (int i = 0; i < c->n; i++) {
		struct sfy_chain_hop *h = &c->hop[i];
		h->hop.gssapi = i == c->n - 1 && h->hop.type == SFY_HOP_SOCKS5 ? cfg->gssapi : 0; /* 2: required */
		h->hop.gss_level = cfg->gss_level;
		h->hop.gss_service = cfg->gss_service[0] ? cfg->gss_service : h->gss_default;
	}
}

static void link_chain(struct sfy_config *cfg, struct sfy_chain *c, const struct sfy_cred_ref *ref)
{
	for (int i = 0; i < c->n; i++) {
		c->hop[i].hop.user = cred_at(cfg, ref[i].user, cfg->user);
		c->hop[i].hop.pass = cred_at(cfg, ref[i].pass, cfg->pass);
		c->hop[i].hop.pipeline = cfg->pipeline;
	}
	link_gss(cfg, c);
}

/* Route 1 of the default (or an edited) cfg->proxy: one SOCKS5 hop. */
static void default_route(struct sfy_config *cfg)
{
	struct sfy_chain_hop *h = &cfg->routes[0].hop[0];
	memset(h, 0, sizeof *h);
	memcpy(&h->sa, &cfg->proxy, sizeof h->sa);
	h->salen = cfg->proxy_len;
	if (cfg->proxy.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&cfg->proxy;
		addr_v6(h, &s6->sin6_addr, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&cfg->proxy;
		addr_v4(h, &s4->sin_addr, ntohs(s4->sin_port));
	}
	snprintf(h->text, sizeof h->text, "%s://%s", cfg->remote_dns ? "socks5h" : "socks5", cfg->proxy_text);
	const char *t = cfg->proxy_text; /* "host:port" or "[v6]:port" */
	const char *colon = strrchr(t, ':');
	if (t[0] == '[')
		gss_default_service(h, t + 1, strcspn(t + 1, "]"));
	else
		gss_default_service(h, t, colon ? (size_t)(colon - t) : strlen(t));
	cfg->routes[0].n = 1;
	cfg->route_cred[0][0].user = cfg->route_cred[0][0].pass = SFY_CRED_CFG;
	cfg->n_routes = 1;
}

void sfy_config_link(struct sfy_config *cfg)
{
	if (cfg->n_proxy_lines == 0)
		default_route(cfg);
	for (int r = 0; r < cfg->n_routes; r++)
		link_chain(cfg, &cfg->routes[r], cfg->route_cred[r]);
	for (int v = 0; v < cfg->n_via; v++)
		link_chain(cfg, &cfg->via[v], cfg->via_cred[v]);
}

void sfy_config_copy(struct sfy_config *dst, const struct sfy_config *src)
{
	memcpy(dst, src, sizeof *dst);
	sfy_config_link(dst);
}
