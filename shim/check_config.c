/* socksify-check's configuration report: the settings and where each came
 * from, the session pool, and whether sealed mode can run here.  The live
 * probe of the proxy is in shim/check.c. */
#include "check.h"
#include "sfy_gss.h"
#include "sealed.h"
#include "session.h"
#include "sfy_routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

void sfy_check_cidr_text(const struct sfy_cidr *c, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(c->family, c->addr, a, sizeof a);
	if (c->port && c->family == AF_INET6)
		snprintf(out, cap, "[%s]/%d:%u", a, c->prefix, c->port);
	else if (c->port)
		snprintf(out, cap, "%s/%d:%u", a, c->prefix, c->port);
	else
		snprintf(out, cap, "%s/%d", a, c->prefix);
}

/* Where the file came from: the same search order as sfy_config_load. */
static const char *source_reason(const struct sfy_config *cfg)
{
	const char *env = getenv("SOCKSIFY_CONF");
	if (env && *env)
		return "from SOCKSIFY_CONF, which socksify -c sets";
	if (strcmp(cfg->source, "/etc/socksify.conf") == 0)
		return "the system file: no SOCKSIFY_CONF, no ~/.config/socksify/socksify.conf";
	return "the user file: no SOCKSIFY_CONF";
}

/* Whether the proxy came from the environment, the file or the default:
 * a file that leaves the proxy alone keeps the default's address. */
static const char *proxy_reason(const struct sfy_config *cfg)
{
	const char *env = getenv("SOCKSIFY_PROXY");
	if (env && *env)
		return "from SOCKSIFY_PROXY, which socksify -x sets";
	struct sfy_config def;
	sfy_config_defaults(&def);
	if (!cfg->source[0] || strcmp(def.proxy_text, cfg->proxy_text) == 0)
		return "the built-in default";
	return "from the config file";
}

static void print_lists(const struct sfy_config *cfg)
{
	char text[80];
	for (int i = 0; i < cfg->n_direct; i++) {
		sfy_check_cidr_text(&cfg->direct[i], text, sizeof text);
		printf("  direct            = %s\n", text);
	}
	for (int i = 0; i < cfg->n_direct_domain; i++)
		printf("  direct_domain     = %s\n", cfg->direct_domain[i]);
	if (!cfg->n_direct && !cfg->n_direct_domain)
		printf("  direct            = (none)\n");
}

/* direct_dns, and what happens to DNS packets the program sends itself. */
static void print_dns(const struct sfy_config *cfg)
{
	for (int i = 0; i < cfg->n_direct_dns; i++) {
		const struct sfy_cidr *c = &cfg->direct_dns[i];
		char a[INET6_ADDRSTRLEN];
		inet_ntop(c->family, c->addr, a, sizeof a);
		printf(c->family == AF_INET6 ? "  direct_dns        = [%s]:%u\n" : "  direct_dns        = %s:%u\n", a, c->port);
	}
	if (!cfg->n_direct_dns)
		printf("  direct_dns        = (none)\n");
	if (cfg->remote_dns)
		printf("  port 53           = DNS a program sends itself (UDP or TCP to port 53 of a loopback or direct\n"
		       "                      address, e.g. dig, host, nslookup, c-ares, Chromium) is answered in the\n"
		       "                      process with fake addresses; only direct_dns resolvers get it\n"
		       "  dns answers       = A/AAAA: /etc/hosts or the fake address; PTR: the name of a fake or\n"
		       "                      /etc/hosts address, else NXDOMAIN; other types: NODATA; TTL 5s.\n"
		       "                      Also for res_query/res_send and friends, and getaddrinfo_a.\n");
	else
		printf("  port 53           = DNS goes out as the program sends it (remote_dns = no)\n");
}

/* GSSAPI (RFC 1961): the keys, the service name route 1 would use, and
 * whether the GSS-API library loads here. */
static void print_gssapi(const struct sfy_config *cfg)
{
	char why[200];
	printf("  gssapi            = %s\n", yes_no(cfg->gssapi));
	if (!cfg->gssapi)
		return;
	const struct sfy_chain *r = &cfg->routes[0];
	const struct sfy_hop *last = r->n > 0 ? &r->hop[r->n - 1].hop : NULL;
	printf("  gssapi_service    = %s%s\n", last && last->gss_service ? last->gss_service : "(none)",
	       cfg->gss_service[0] ? "" : " (default: rcmd@ + the proxy's host)");
	printf("  gssapi_protection = %s\n", cfg->gss_level == SFY_GSS_INTEGRITY ? "integrity" : "confidentiality");
	if (sfy_gss_load(why, sizeof why) == 0)
		printf("  gssapi library    = libgssapi_krb5.so.2 (loaded; credentials from KRB5CCNAME or the default cache)\n");
	else
		printf("  gssapi library    = NOT USABLE: %s; every GSSAPI connection fails (EACCES)\n", why);
}

/* A chain as "socks5h://a:1080 > socks5h://b:1085" (credentials as user:***). */
static void print_chain(const struct sfy_chain *c)
{
	for (int i = 0; i < c->n; i++) {
		const struct sfy_hop *h = &c->hop[i].hop;
		const char *text = c->hop[i].text, *rest = strstr(text, "://");
		rest = rest ? rest + 3 : text;
		printf("%s%.*s%s%s%s", i ? " > " : "", (int)(rest - text), text, h->user && h->user[0] ? h->user : "",
		       h->user && h->user[0] ? (h->pass && h->pass[0] ? ":***@" : "@") : "", rest);
	}
}

/* The proxy lines, pick, retry_after and the route rules (issue 14). */
static void print_routes(const struct sfy_config *cfg)
{
	static const char *const picks[] = {"failover", "round_robin", "random"};
	static const char *const actions[] = {"via", "direct", "block"};
	for (int i = 0; i < cfg->n_routes; i++) {
		printf("  route %d           = ", i + 1);
		print_chain(&cfg->routes[i]);
		printf("%s\n", cfg->n_proxy_lines ? "" : " (the default)");
	}
	printf("  pick              = %s%s\n", picks[cfg->pick % 3], cfg->n_routes > 1 ? "" : " (one route: no choice)");
	printf("  retry_after       = %ds%s\n", cfg->retry_after, cfg->retry_after ? "" : " (failed routes are not skipped)");
	for (int r = 0; r < cfg->n_rules; r++) {
		const struct sfy_route_rule *rule = &cfg->rules[r];
		printf("  route rule %-2d     =", r + 1);
		for (int k = 0; k < rule->n; k++)
			printf(" %s", cfg->patterns[rule->first + k].text);
		printf(" %s", actions[rule->action]);
		if (rule->action == SFY_RULE_VIA) {
			printf(" ");
			print_chain(&cfg->via[rule->via]);
		}
		printf(" (line %d)\n", rule->line);
	}
	if (!cfg->n_rules)
		printf("  route rules       = (none: everything not direct takes the proxy lines)\n");
}

const struct sfy_chain *sfy_check_print_route_for(const struct sfy_config *cfg, const char *host, const char *name,
						 const struct sockaddr *sa, uint16_t port)
{
	struct sfy_routes_dest d = {.name = name, .sa = sa, .port = port};
	struct sfy_routes_pick p;
	/* No shared state here: what the rules say, not who is down now. */
	sfy_routes_choose(cfg, NULL, &d, 0, 0, &p);
	printf("route for %s:%u: ", host, port);
	if (p.verdict == SFY_ROUTES_DIRECT)
		printf("DIRECT");
	else if (p.verdict == SFY_ROUTES_BLOCK)
		printf("BLOCKED (EACCES)");
	else
		print_chain(p.chain[0]);
	printf(" because %s\n", p.reason);
	for (int i = 1; i < p.n; i++) {
		printf("  then route %d: ", p.route[i]);
		print_chain(p.chain[i]);
		printf("\n");
	}
	return p.verdict == SFY_ROUTES_PROXY && p.n > 0 ? p.chain[0] : NULL;
}

void sfy_check_print_config(const struct sfy_config *cfg)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	static const char *const binds[] = {"auto", "always", "never"};
	static const char *const sealed_modes[] = {"no", "yes", "auto (seal static, Go and file-capability programs)"};
	char text[80];
	if (cfg->source[0])
		printf("config: %s (%s)\n", cfg->source, source_reason(cfg));
	else
		printf("config: no file (looked for $SOCKSIFY_CONF, ~/.config/socksify/socksify.conf, "
		       "/etc/socksify.conf); built-in defaults\n");
	printf("proxy: %s://%s%s%s (%s)\n", cfg->remote_dns ? "socks5h" : "socks5", cfg->user,
	       cfg->user[0] ? ":***@" : "", cfg->proxy_text, proxy_reason(cfg));
	printf("  username          = %s\n", cfg->user[0] ? cfg->user : "(none: no authentication)");
	printf("  password          = %s\n", cfg->pass[0] ? "*** (set, hidden)" : "(none)");
	print_routes(cfg);
	printf("  remote_dns        = %s\n", yes_no(cfg->remote_dns));
	print_dns(cfg);
	print_lists(cfg);
	printf("  direct_loopback   = %s\n", yes_no(cfg->direct_loopback));
	sfy_check_cidr_text(&cfg->fake4, text, sizeof text);
	printf("  fake_ipv4         = %s\n", text);
	sfy_check_cidr_text(&cfg->fake6, text, sizeof text);
	printf("  fake_ipv6         = %s\n", text);
	printf("  fake_pool_size    = %u\n", cfg->fake_pool_size);
	printf("  bind              = %s\n", binds[cfg->bind_mode]);
	printf("  bind_dst          = %s\n", cfg->bind_dst_zero ? "zero" : "last");
	printf("  bind_timeout      = %gs%s\n", cfg->bind_timeout_ms / 1e3, cfg->bind_timeout_ms ? "" : " (no limit)");
	printf("  udp               = %s\n", cfg->udp_mode == SFY_UDP_ALLOW ? "allow" : cfg->udp_mode == SFY_UDP_BLOCK ? "block" : "proxy (UDP ASSOCIATE)");
	printf("  pipeline          = %s\n", yes_no(cfg->pipeline));
	print_gssapi(cfg);
	printf("  connect_timeout   = %gs%s\n", cfg->connect_timeout_ms / 1e3, cfg->connect_timeout_ms ? "" : NO_LIMIT_NOTE);
	printf("  handshake_timeout = %gs%s\n", cfg->handshake_timeout_ms / 1e3, cfg->handshake_timeout_ms ? "" : NO_LIMIT_NOTE);
	printf("  log_level         = %s\n", levels[cfg->log_level]);
	printf("  log_file          = %s\n", cfg->log_file[0] ? cfg->log_file : "(stderr)");
	printf("  sealed            = %s\n", sealed_modes[cfg->sealed_mode]);
}

/* The session pool the library would use here (shim/session.h). */
void sfy_check_print_session(const struct sfy_config *cfg)
{
	const char *id = getenv(SFY_SESSION_ENV);
	if (!cfg->remote_dns) {
		printf("session pool: not used (remote_dns = no)\n");
		return;
	}
	if (!id) {
		printf("session: none (%s unset: each socksified command starts its own)\n", SFY_SESSION_ENV);
		return;
	}
	char path[PATH_MAX], why[200];
	if (!sfy_session_id_ok(id) || sfy_session_path(path, sizeof path, SFY_SESSION_DIR, geteuid(), id) < 0) {
		printf("session: INVALID %s (1 to %d of A-Z a-z 0-9 _ -): names will not resolve\n", SFY_SESSION_ENV,
		       SFY_SESSION_ID_MAX);
		return;
	}
	pid_t leader = sfy_session_leader(id);
	printf("session: %s (leader pid %d%s)\n", id, (int)leader,
	       leader <= 0 ? ": none, removed only by hand" : kill(leader, 0) == 0 || errno != ESRCH ? ", running" : ", gone");
	struct sfy_pool_settings s = {&cfg->fake4, &cfg->fake6, cfg->fake_pool_size};
	struct sfy_pool *pool = NULL;
	switch (sfy_session_join(path, &s, &pool, why, sizeof why)) {
	case SFY_SESSION_OK:
		printf("  pool              = %s (valid, %u names at most)\n", path, sfy_pool_capacity(pool));
		sfy_pool_free(pool);
		break;
	case SFY_SESSION_ABSENT:
		printf("  pool              = %s (not created yet: made at the first name)\n", path);
		break;
	default:
		printf("  pool              = %s REFUSED: %s (names will not resolve)\n", path, why);
	}
}

/* Whether socksify --sealed can run on this kernel, here (sealed/probe.c):
 * the same words as socksify-sealed --probe. */
void sfy_check_print_sealed(const struct sfy_config *cfg)
{
	static const char *const modes[] = {"no", "yes", "auto"};
	char why[256];
	const char *env = getenv("SOCKSIFY_SEALED");
	if (env && *env)
		printf("sealed: SOCKSIFY_SEALED=%s (overrides sealed = %s)\n", env, modes[cfg->sealed_mode]);
	if (sfy_sealed_probe(why, sizeof why))
		printf("sealed mode: available (seccomp user notification, pidfd_getfd)\n");
	else
		printf("sealed mode: unavailable: %s\n", why);
}
