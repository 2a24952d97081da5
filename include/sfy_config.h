/* Configuration: defaults, the key = value file format, the proxy URL, the
 * environment overrides, and the direct (bypass) rules that use them. */
#ifndef SFY_CONFIG_H
#define SFY_CONFIG_H

#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sfy_chain.h"

#define SFY_MAX_DIRECT 64
#define SFY_MAX_DOMAINS 64
#define SFY_MAX_DIRECT_DNS 16 /* direct_dns entries */
#define SFY_DNS_PORT 53
#define SFY_MAX_LINE 1024     /* longest config line / env value accepted */
#define SFY_MAX_CONFIG 65536  /* largest config file read */
#define SFY_ERR_MAX 512
#define SFY_MAX_ROUTES 8      /* proxy lines (alternative routes) */
#define SFY_MAX_VIA 8         /* route rules with "via" (each has its own chain) */
#define SFY_MAX_RULES 64      /* route rules */
#define SFY_MAX_PATTERNS 128  /* patterns of all route rules together */
#define SFY_CRED_POOL 4096    /* credentials of every hop but route 1's first */
#define SFY_RETRY_AFTER_DEFAULT 60

enum sfy_log_level { SFY_LOG_ERROR, SFY_LOG_WARN, SFY_LOG_INFO, SFY_LOG_DEBUG };
enum sfy_bind_mode { SFY_BIND_AUTO, SFY_BIND_ALWAYS, SFY_BIND_NEVER };

/* An address block, optionally limited to one port (port 0 = any). */
struct sfy_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
	uint16_t port;
};

/* Ordered small to large: defaults clear what comes before the paths, empty
 * the paths, and leave the rule arrays alone (their counts say how much of
 * them is used), so loading touches two pages of this struct, not seven:
 * each first touch is a page fault, microseconds of every program's
 * start-up. */
/* What UDP to a non-direct destination does (`udp =`). */
enum sfy_udp_mode { SFY_UDP_PROXY, SFY_UDP_BLOCK, SFY_UDP_ALLOW };
/* `sealed =`: whether socksify-sealed runs programs under its supervisor
 * (sealed/launch.c); the library itself ignores it. */
enum sfy_sealed_mode { SFY_SEALED_NO, SFY_SEALED_YES, SFY_SEALED_AUTO };
/* `pick =`: how the proxy lines are chosen among. */
enum sfy_pick { SFY_PICK_FAILOVER, SFY_PICK_ROUND_ROBIN, SFY_PICK_RANDOM };
/* What a `route =` rule does with what it matches. */
enum sfy_rule_action { SFY_RULE_VIA, SFY_RULE_DIRECT, SFY_RULE_BLOCK };
enum sfy_pattern_kind {
	SFY_PAT_SUFFIX, /* ".example.com" or "*.example.com": the domain and every name below it */
	SFY_PAT_NAME,   /* "host.example.com": that name only */
	SFY_PAT_CIDR,   /* "10.0.0.0/8", "10.1.2.3:443", "[2001:db8::]/32:443": addresses */
	SFY_PAT_PORT,   /* ":443": any destination on that port */
};

/* One pattern of a route rule.  text is the pattern as written (for
 * --check and log lines); a name pattern's name is text[name_off], name_len
 * bytes long (a ":PORT" may follow it). */
struct sfy_pattern {
	uint8_t kind;      /* enum sfy_pattern_kind */
	uint8_t name_off;
	uint16_t name_len;
	uint16_t port;     /* 0: any (for CIDR patterns the port is in cidr) */
	struct sfy_cidr cidr;
	char text[264];
};

struct sfy_route_rule {
	int action;        /* enum sfy_rule_action */
	int first, n;      /* its patterns: patterns[first .. first+n) */
	int via;           /* SFY_RULE_VIA: index into via[] */
	int line;          /* line of the file, for --check */
};

/* Where a hop's credentials live: route 1's first hop uses cfg->user and
 * cfg->pass (the username/password keys set them too); every other hop's
 * are in cfg->cred, at these offsets (-1: none).  sfy_config_link turns
 * them into the hops' pointers. */
#define SFY_CRED_NONE (-1)
#define SFY_CRED_CFG (-2)
struct sfy_cred_ref {
	int16_t user, pass;
};

struct sfy_config {
	int valid;                 /* 0: every proxied connection fails closed */
	struct sockaddr_storage proxy;
	socklen_t proxy_len;
	int remote_dns;
	int n_direct;
	int n_direct_domain;
	int n_direct_dns;
	int direct_loopback;
	struct sfy_cidr fake4;
	struct sfy_cidr fake6;
	unsigned fake_pool_size;
	int udp_mode;              /* enum sfy_udp_mode: 0 (proxy) is the default */
	int bind_mode;             /* enum sfy_bind_mode */
	int bind_dst_zero;         /* BIND DST 0.0.0.0:0 instead of the last CONNECT's */
	int bind_timeout_ms;
	int connect_timeout_ms;
	int handshake_timeout_ms;  /* this and the two above: 0 = no limit of ours */
	int pipeline;              /* greeting, auth and request in one write */
	int gssapi;                /* offer GSSAPI (RFC 1961) at each route's last SOCKS5 hop;
				    * 2 (required): offer nothing else there */
	int gss_level;             /* SFY_GSS_INTEGRITY or SFY_GSS_CONFIDENTIALITY (the default) */
	int log_level;
	int sealed_mode;           /* enum sfy_sealed_mode: 0 (no) is the default */
	int n_routes;              /* routes[] used; 0 until sfy_config_link makes route 1 of proxy */
	int n_proxy_lines;         /* proxy lines seen (0: routes[] holds the default, if anything) */
	int n_via, n_rules, n_patterns;
	int pick;                  /* enum sfy_pick */
	int retry_after;           /* seconds a failed route is skipped (0: never skipped) */
	int cred_used;             /* bytes of cred[] used */

	char proxy_text[80];       /* "127.0.0.1:1080" for logs */
	char user[256];
	char pass[256];
	char gss_service[256];     /* gssapi_service, or "": rcmd@ + the hop's host */
	char error[SFY_ERR_MAX];   /* why not valid ("file:line: ...") */
	char warning[SFY_ERR_MAX]; /* something to tell the user, or "" */
	char source[PATH_MAX];     /* file the config came from, or "" */
	char log_file[PATH_MAX];

	struct sfy_cidr direct[SFY_MAX_DIRECT];          /* n_direct used */
	char direct_domain[SFY_MAX_DOMAINS][256];        /* n_direct_domain used */
	struct sfy_cidr direct_dns[SFY_MAX_DIRECT_DNS];  /* n_direct_dns used: resolvers DNS really goes to */

	/* Routes (issue 14): the proxy lines, route 1 first.  Route 1's hop 1
	 * is also cfg->proxy, proxy_text, user and pass.  The hops' user and
	 * pass pointers point into this struct: copy a config with
	 * sfy_config_copy, not by assignment. */
	struct sfy_chain routes[SFY_MAX_ROUTES];
	struct sfy_cred_ref route_cred[SFY_MAX_ROUTES][SFY_CHAIN_MAX];
	struct sfy_chain via[SFY_MAX_VIA];               /* chains of "via" rules */
	struct sfy_cred_ref via_cred[SFY_MAX_VIA][SFY_CHAIN_MAX];
	struct sfy_route_rule rules[SFY_MAX_RULES];      /* n_rules used, in file order */
	struct sfy_pattern patterns[SFY_MAX_PATTERNS];   /* n_patterns used */
	char cred[SFY_CRED_POOL];                        /* NUL-terminated credentials */
};

/* Look-up of an environment variable; NULL when unset.  Lets unit tests
 * drive the loader without touching the process environment. */
typedef const char *(*sfy_getenv_fn)(const char *name);

/* Defaults.  Only the part before the rule arrays is a config's value: the
 * arrays past their (zero) counts and the paths past their NUL are left as
 * they are. */
void sfy_config_defaults(struct sfy_config *cfg);
/* Parse a whole file's text; on error fills cfg->error with "name:line: why"
 * and returns -1 (cfg->valid is left to the caller). */
int sfy_config_parse_text(struct sfy_config *cfg, const char *text, const char *name);
/* "socks5h://[user:pass@]host:port[, URL...]": a chain, made the one and
 * only route (as SOCKSIFY_PROXY and -x do).  0, or -1 with err filled and
 * the routes left as they were. */
int sfy_config_parse_proxy_url(struct sfy_config *cfg, const char *url, char *err, size_t errlen);
/* A proxy line: one more route (the first replaces the default route).
 * Route 1's hop 1 sets cfg->proxy, proxy_text, user and pass, and its last
 * hop's scheme the DNS mode (socks5: local, socks5h: remote, others leave
 * it).  0, or -1 with err filled and nothing changed. */
int sfy_config_add_route(struct sfy_config *cfg, const char *list, char *err, size_t errlen);
/* The chain of a "via" rule: its index in cfg->via, or -1 with err. */
int sfy_config_add_via(struct sfy_config *cfg, const char *list, char *err, size_t errlen);
/* Route keys (pick, retry_after, route); NULL, an error, or
 * sfy_config_not_mine when key is another's. */
extern const char sfy_config_not_mine[];
const char *sfy_config_route_key(struct sfy_config *cfg, const char *key, const char *val, int line, char *err,
				 size_t errlen);
/* After parsing: route 1 made of cfg->proxy when no proxy line gave one,
 * and every hop's credential pointers and pipelining set.  The parsers and
 * the loader call it; so must whoever changes user, pass or pipeline. */
void sfy_config_link(struct sfy_config *cfg);
/* *dst = *src with dst's pointers into dst. */
void sfy_config_copy(struct sfy_config *dst, const struct sfy_config *src);
/* /etc/hosts for a first hop given by name (tests point it elsewhere). */
extern const char *sfy_config_hosts_file;
/* Full load: search order, file, then environment (ignored when secure). */
void sfy_config_load(struct sfy_config *cfg, int secure, sfy_getenv_fn env);
/* An invalid config: nothing of it may let traffic or names go direct. */
void sfy_config_fail_closed(struct sfy_config *cfg);
/* Parse "a.b.c.d/n", "v6/n", optionally with ":port" ("[v6]/n:port"). */
int sfy_cidr_parse(const char *text, struct sfy_cidr *out, int allow_port);
int sfy_log_level_parse(const char *text);
/* A port number 1..65535, digits only; 0 or -1. */
int sfy_config_parse_port(const char *s, uint16_t *port);

/* Rules. */
int sfy_cidr_match(const struct sfy_cidr *c, const struct sockaddr *sa);
int sfy_domain_match(const char *suffix, const char *name);
int sfy_addr_is_direct(const struct sfy_config *cfg, const struct sockaddr *sa);
int sfy_name_is_direct(const struct sfy_config *cfg, const char *name);
int sfy_addr_is_proxy(const struct sfy_config *cfg, const struct sockaddr *sa);
/* Same AF_INET/AF_INET6 address and port (v4-mapped equals its IPv4 form). */
int sfy_same_endpoint(const struct sockaddr *a, const struct sockaddr *b);
/* Under remote DNS, traffic to port 53 of a destination that would go
 * direct (loopback, a direct rule), unless it is a direct_dns resolver or
 * the proxy: answered inside the process (shim/dns_pkt.c).  1 or 0. */
int sfy_dns_intercepted(const struct sfy_config *cfg, const struct sockaddr *sa);
/* If sa is a v4-mapped IPv6 address, write the IPv4 form to out and return 1. */
int sfy_unmap_v4(const struct sockaddr *sa, struct sockaddr_in *out);
/* The other way: ::ffff:a.b.c.d, same port, for an IPv6 socket. */
void sfy_map_v4(const struct sockaddr_in *in, struct sockaddr_in6 *out);

#endif
