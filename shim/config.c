/* Config file and proxy URL parsing, defaults and the environment overrides.
 * Pure string work plus reading one file: no sockets, no logging, so unit
 * tests drive it directly.  Runs before the host program's main(). */
#include "sfy_config.h"
#include "sfy_gss.h"
#include "sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sfy_config_defaults(struct sfy_config *cfg)
{
	/* No snprintf or inet_pton here: their first call in a process costs
	 * more than all the rest of loading an empty configuration. */
	static const struct sfy_cidr fake4 = {.family = AF_INET, .addr = {240}, .prefix = 4};
	static const struct sfy_cidr fake6 = {.family = AF_INET6, .addr = {1}, .prefix = 64};
	memset(cfg, 0, offsetof(struct sfy_config, source));
	cfg->source[0] = cfg->log_file[0] = '\0';
	cfg->valid = 1;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->proxy;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(1080);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->proxy_len = sizeof *sin;
	strcpy(cfg->proxy_text, "127.0.0.1:1080");
	cfg->remote_dns = 1;
	cfg->direct_loopback = 1;
	cfg->fake4 = fake4; /* 240.0.0.0/4 */
	cfg->fake6 = fake6; /* 100::/64 */
	cfg->fake_pool_size = 16384;
	cfg->connect_timeout_ms = 10000;
	cfg->handshake_timeout_ms = 10000;
	cfg->gss_level = SFY_GSS_CONFIDENTIALITY;
	cfg->bind_timeout_ms = 120000;
	cfg->log_level = SFY_LOG_WARN;
	cfg->retry_after = SFY_RETRY_AFTER_DEFAULT;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

/* Seconds with up to three decimals, 0.001 .. 3600, into milliseconds. */
static int parse_seconds(const char *v, int *ms_out)
{
	char *end;
	if (!*v || v[strspn(v, "0123456789.")] != '\0')
		return -1; /* plain decimals only: no sign, blanks, hex or exponent */
	errno = 0;
	double secs = strtod(v, &end);
	if (errno || end == v || *end != '\0' || !(secs == 0 || (secs >= 0.001 && secs <= 3600)))
		return -1; /* 0 is "no limit of ours" */
	*ms_out = (int)(secs * 1000.0 + 0.5);
	return 0;
}

int sfy_log_level_parse(const char *text)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(text, names[i]) == 0)
			return i;
	return -1;
}

int sfy_config_parse_port(const char *s, uint16_t *port)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return -1; /* strtol would take blanks and signs */
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int sfy_cidr_parse(const char *text, struct sfy_cidr *out, int allow_port)
{
	char addr[64];
	const char *rest;
	const char *colon = strchr(text, ':');
	size_t alen;
	memset(out, 0, sizeof *out);
	if (text[0] == '[') { /* [v6][/n][:port] */
		const char *close = strchr(text, ']');
		if (!close)
			return -1;
		alen = (size_t)(close - text - 1);
		text++;
		rest = close + 1;
	} else if (!colon || !strchr(colon + 1, ':')) { /* a.b.c.d[/n][:port]: one ':' at most */
		alen = strcspn(text, "/:");
		rest = text + alen;
	} else { /* bare v6[/n]: its colons leave no room for a port */
		alen = strcspn(text, "/");
		rest = text + alen;
	}
	if (alen == 0 || alen >= sizeof addr)
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	int max;
	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = AF_INET, max = 32;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = AF_INET6, max = 128;
	else
		return -1;
	out->prefix = max;
	if (*rest == '/') {
		char *end;
		if (!isdigit((unsigned char)rest[1]))
			return -1;
		errno = 0;
		long p = strtol(rest + 1, &end, 10);
		if (end == rest + 1 || errno || p < 0 || p > max)
			return -1;
		out->prefix = (int)p;
		rest = end;
	}
	if (*rest == ':') {
		if (!allow_port || sfy_config_parse_port(rest + 1, &out->port) < 0)
			return -1;
		rest += strlen(rest);
	}
	return *rest ? -1 : 0;
}

/* Apply one "key = value"; returns NULL or a static description of what is wrong. */
/* Returned by apply_address_key for a key it does not handle. */
static const char NOT_MINE[] = "";

/* The keys about addresses and names: direct rules and the fake ranges. */
static const char *apply_address_key(struct sfy_config *cfg, const char *key, const char *val)
{
	if (strcmp(key, "direct") == 0) {
		if (cfg->n_direct >= SFY_MAX_DIRECT)
			return "too many direct rules (at most 64)";
		if (sfy_cidr_parse(val, &cfg->direct[cfg->n_direct], 1) < 0)
			return "expected ADDRESS[/PREFIX][:PORT], IPv6 with a port as [ADDRESS]/PREFIX:PORT";
		cfg->n_direct++;
		return NULL;
	}
	if (strcmp(key, "direct_domain") == 0) {
		const char *d = val[0] == '.' ? val + 1 : val;
		size_t len = strlen(d);
		if (len && d[len - 1] == '.')
			len--; /* fully qualified form: same domain */
		if (cfg->n_direct_domain >= SFY_MAX_DOMAINS)
			return "too many direct domains (at most 64)";
		if (!len || len > 253 || strpbrk(d, " \t/:@"))
			return "expected a domain name such as example.com";
		memcpy(cfg->direct_domain[cfg->n_direct_domain], d, len);
		cfg->direct_domain[cfg->n_direct_domain++][len] = '\0';
		return NULL;
	}
	if (strcmp(key, "direct_dns") == 0) {
		/* One resolver: a whole address, port 53 unless given. */
		struct sfy_cidr *c = &cfg->direct_dns[cfg->n_direct_dns];
		if (cfg->n_direct_dns >= SFY_MAX_DIRECT_DNS)
			return "too many direct_dns entries (at most 16)";
		if (strchr(val, '/') || sfy_cidr_parse(val, c, 1) < 0)
			return "expected ADDRESS[:PORT], IPv6 with a port as [ADDRESS]:PORT";
		if (!c->port)
			c->port = SFY_DNS_PORT;
		cfg->n_direct_dns++;
		return NULL;
	}
	if (strcmp(key, "fake_ipv4") == 0 || strcmp(key, "fake_ipv6") == 0) {
		int v6 = strcmp(key, "fake_ipv6") == 0;
		struct sfy_cidr *c = v6 ? &cfg->fake6 : &cfg->fake4;
		int min_hosts_bits = 8; /* at least 256 addresses */
		if (sfy_cidr_parse(val, c, 0) < 0 || c->family != (v6 ? AF_INET6 : AF_INET) ||
		    (v6 ? 128 : 32) - c->prefix < min_hosts_bits)
			return v6 ? "expected an IPv6 block of /120 or larger" : "expected an IPv4 block of /24 or larger";
		return NULL;
	}
	if (strcmp(key, "fake_pool_size") == 0) {
		char *end;
		long n = strtol(val, &end, 10);
		if (!isdigit((unsigned char)val[0]) || *end || end == val || n < 16 || n > 1048576)
			return "expected a number from 16 to 1048576";
		cfg->fake_pool_size = (unsigned)n;
		return NULL;
	}
	return NOT_MINE;
}

static const char *apply_key(struct sfy_config *cfg, const char *key, const char *val, int line, char *err,
			     size_t errlen)
{
	static const char bad_seconds[] = "expected seconds (0.001 to 3600, or 0 for no limit)";
	int level;
	if (strcmp(key, "proxy") == 0)
		return sfy_config_add_route(cfg, val, err, errlen) < 0 ? err : NULL;
	if (strcmp(key, "username") == 0 || strcmp(key, "password") == 0) {
		char *dst = key[0] == 'u' ? cfg->user : cfg->pass;
		if (strlen(val) < 1 || strlen(val) > 255)
			return "value must be 1 to 255 bytes";
		strcpy(dst, val);
		return NULL;
	}
	if (strcmp(key, "remote_dns") == 0)
		return parse_bool(val, &cfg->remote_dns) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "direct_loopback") == 0)
		return parse_bool(val, &cfg->direct_loopback) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "pipeline") == 0)
		return parse_bool(val, &cfg->pipeline) < 0 ? "expected yes or no" : NULL;
	if (strcmp(key, "gssapi") == 0) {
		/* required: GSSAPI alone is offered, so no proxy can choose
		 * an unprotected method instead. */
		if (strcmp(val, "required") == 0)
			return cfg->gssapi = 2, NULL;
		return parse_bool(val, &cfg->gssapi) < 0 ? "expected yes, no or required" : NULL;
	}
	if (strcmp(key, "gssapi_protection") == 0) {
		if (strcmp(val, "integrity") == 0)
			cfg->gss_level = SFY_GSS_INTEGRITY;
		else if (strcmp(val, "confidentiality") == 0)
			cfg->gss_level = SFY_GSS_CONFIDENTIALITY;
		else
			return "expected integrity or confidentiality";
		return NULL;
	}
	if (strcmp(key, "gssapi_service") == 0) {
		/* SERVICE@HOST, a GSS host-based service name (RFC 2743 4.1). */
		const char *at = strchr(val, '@');
		if (!at || at == val || !at[1] || strchr(at + 1, '@') || strlen(val) >= sizeof cfg->gss_service)
			return "expected SERVICE@HOST (e.g. rcmd@proxy.example.com), at most 255 bytes";
		snprintf(cfg->gss_service, sizeof cfg->gss_service, "%s", val);
		return NULL;
	}
	const char *why = apply_address_key(cfg, key, val);
	if (why != NOT_MINE)
		return why;
	why = sfy_config_route_key(cfg, key, val, line, err, errlen);
	if (why != sfy_config_not_mine)
		return why;
	if (strcmp(key, "udp") == 0) {
		static const char *const modes[] = {"proxy", "block", "allow"};
		for (int i = 0; i < 3; i++)
			if (strcmp(val, modes[i]) == 0)
				return cfg->udp_mode = i, NULL;
		return "expected proxy, block or allow";
	}
	if (strcmp(key, "sealed") == 0) {
		int b;
		if (strcmp(val, "auto") == 0)
			return cfg->sealed_mode = SFY_SEALED_AUTO, NULL;
		if (parse_bool(val, &b) < 0)
			return "expected no, yes or auto";
		return cfg->sealed_mode = b ? SFY_SEALED_YES : SFY_SEALED_NO, NULL;
	}
	if (strcmp(key, "bind") == 0) {
		static const char *const modes[] = {"auto", "always", "never"};
		for (int i = 0; i < 3; i++)
			if (strcmp(val, modes[i]) == 0)
				return cfg->bind_mode = i, NULL;
		return "expected auto, always or never";
	}
	if (strcmp(key, "bind_dst") == 0) {
		if (strcmp(val, "last") == 0 || strcmp(val, "zero") == 0)
			return cfg->bind_dst_zero = val[0] == 'z', NULL;
		return "expected last or zero";
	}
	if (strcmp(key, "bind_timeout") == 0)
		return parse_seconds(val, &cfg->bind_timeout_ms) < 0 ? bad_seconds : NULL;
	if (strcmp(key, "connect_timeout") == 0)
		return parse_seconds(val, &cfg->connect_timeout_ms) < 0 ? bad_seconds : NULL;
	if (strcmp(key, "handshake_timeout") == 0)
		return parse_seconds(val, &cfg->handshake_timeout_ms) < 0 ? bad_seconds : NULL;
	if (strcmp(key, "log_level") == 0) {
		if ((level = sfy_log_level_parse(val)) < 0)
			return "expected error, warn, info or debug";
		cfg->log_level = level;
		return NULL;
	}
	if (strcmp(key, "log_file") == 0) {
		if (val[0] != '/' || strlen(val) >= sizeof cfg->log_file)
			return "expected an absolute path";
		strcpy(cfg->log_file, val);
		return NULL;
	}
	return "unknown key";
}

/* " # comment" after a value is a comment, except in credentials, which
 * are taken verbatim (a password may contain " #"). */
static void strip_inline_comment(const char *key, char *val)
{
	if (strcmp(key, "username") == 0 || strcmp(key, "password") == 0)
		return;
	for (char *p = val; *p; p++) {
		if (*p == '#' && (p == val || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			return;
		}
	}
}

int sfy_config_parse_text(struct sfy_config *cfg, const char *text, const char *name)
{
	char line[SFY_MAX_LINE + 2];
	int lineno = 0;
	const char *p = text;
	while (*p) {
		size_t len = strcspn(p, "\n");
		lineno++;
		if (len > SFY_MAX_LINE) {
			snprintf(cfg->error, sizeof cfg->error, "%s:%d: line longer than %d bytes", name, lineno, SFY_MAX_LINE);
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (p[len] == '\n');
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(cfg->error, sizeof cfg->error, "%s:%d: expected 'key = value'", name, lineno);
			return -1;
		}
		*eq = '\0';
		char *key = trim(s), *val = eq + 1;
		strip_inline_comment(key, val);
		val = trim(val);
		char detail[SFY_ERR_MAX / 2];
		const char *why = apply_key(cfg, key, val, lineno, detail, sizeof detail);
		if (why) {
			snprintf(cfg->error, sizeof cfg->error, "%s:%d: %.40s: %s", name, lineno, key, why);
			return -1;
		}
	}
	sfy_config_link(cfg);
	return 0;
}

/* Reads path into a NUL-terminated heap buffer.  Returns NULL with errno set. */
static char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(SFY_MAX_CONFIG + 1);
	size_t used = 0;
	ssize_t n = 1;
	while (buf && used <= SFY_MAX_CONFIG && (n = sfy_sys_read(fd, buf + used, SFY_MAX_CONFIG + 1 - used)) > 0)
		used += (size_t)n;
	int saved = errno;
	sfy_sys_close(fd);
	if (!buf || n < 0 || used > SFY_MAX_CONFIG) {
		free(buf);
		errno = n < 0 ? saved : EFBIG;
		return NULL;
	}
	buf[used] = '\0';
	return buf;
}

static void load_file(struct sfy_config *cfg, const char *path, int must_exist)
{
	struct stat st;
	/* An optional file we cannot even see (absent, or behind a directory we
	 * may not search, like root's HOME seen by a dropped-privilege child)
	 * is not there for us; one we see but cannot read is an error. */
	if (!must_exist && stat(path, &st) < 0)
		return;
	char *text = read_file(path);
	if (!text) {
		if (must_exist || errno != ENOENT) {
			snprintf(cfg->error, sizeof cfg->error, "%s: cannot read: %s", path,
				 errno == EFBIG ? "file larger than 64 KiB" : strerror(errno));
			cfg->valid = 0;
		}
		return;
	}
	snprintf(cfg->source, sizeof cfg->source, "%s", path);
	if (sfy_config_parse_text(cfg, text, path) < 0)
		cfg->valid = 0;
	free(text);
	if ((cfg->pass[0] || cfg->cred_used) && stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		snprintf(cfg->warning, sizeof cfg->warning,
			 "%.400s holds a password and is readable by every user (chmod o-r it)", path);
}

static void fail_env(struct sfy_config *cfg, const char *var, const char *why)
{
	if (cfg->valid)
		snprintf(cfg->error, sizeof cfg->error, "%s: %s", var, why);
	cfg->valid = 0;
}

static void apply_env(struct sfy_config *cfg, sfy_getenv_fn env)
{
	const char *v;
	char err[SFY_ERR_MAX / 2];
	if ((v = env("SOCKSIFY_PROXY")) && *v) {
		/* The URL names the proxy and its credentials: never send the
		 * file's password to a proxy the environment chose. */
		cfg->user[0] = cfg->pass[0] = '\0';
		if (sfy_config_parse_proxy_url(cfg, v, err, sizeof err) < 0)
			fail_env(cfg, "SOCKSIFY_PROXY", err);
	}
	if ((v = env("SOCKSIFY_LOG_LEVEL")) && *v) {
		int level = sfy_log_level_parse(v);
		if (level < 0)
			fail_env(cfg, "SOCKSIFY_LOG_LEVEL", "expected error, warn, info or debug");
		else
			cfg->log_level = level;
	}
	if ((v = env("SOCKSIFY_LOG_FILE")) && *v) {
		if (v[0] != '/' || strlen(v) >= sizeof cfg->log_file)
			fail_env(cfg, "SOCKSIFY_LOG_FILE", "expected an absolute path");
		else
			strcpy(cfg->log_file, v);
	}
}

void sfy_config_load(struct sfy_config *cfg, int secure, sfy_getenv_fn env)
{
	sfy_config_defaults(cfg);
	const char *path = secure ? NULL : env("SOCKSIFY_CONF");
	if (path && *path) {
		if (strlen(path) >= PATH_MAX)
			fail_env(cfg, "SOCKSIFY_CONF", "path too long");
		else
			load_file(cfg, path, 1);
	} else {
		const char *home = secure ? NULL : env("HOME");
		char user_conf[PATH_MAX];
		static const char suffix[] = "/.config/socksify/socksify.conf";
		size_t home_len = home ? strlen(home) : 0;
		if (home_len && home_len < sizeof user_conf - sizeof suffix) {
			memcpy(user_conf, home, home_len); /* not snprintf: see sfy_config_defaults */
			memcpy(user_conf + home_len, suffix, sizeof suffix);
			load_file(cfg, user_conf, 0);
		}
		if (!cfg->source[0] && cfg->valid)
			load_file(cfg, "/etc/socksify.conf", 0);
	}
	if (!secure)
		apply_env(cfg, env);
	sfy_config_link(cfg);
	/* SOCKS5 wants both; socks4 sends a user id alone, HTTP may have an
	 * empty password. */
	if (cfg->valid && cfg->user[0] && !cfg->pass[0] && cfg->routes[0].hop[0].hop.type == SFY_HOP_SOCKS5) {
		snprintf(cfg->error, sizeof cfg->error, "%.300s: a username is set but no password (RFC 1929 needs both)",
			 cfg->source[0] ? cfg->source : "SOCKSIFY_PROXY");
		cfg->valid = 0;
	}
}

void sfy_config_fail_closed(struct sfy_config *cfg)
{
	/* Half a config is no config: keep nothing from it that lets traffic
	 * or names go direct (the rules parsed before the bad line included). */
	cfg->n_direct = cfg->n_direct_domain = 0;
	cfg->n_rules = cfg->n_via = 0;
	cfg->direct_loopback = 0;
	cfg->udp_mode = SFY_UDP_BLOCK;
	cfg->remote_dns = 1;
}
