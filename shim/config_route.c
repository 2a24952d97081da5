/* The route keys of the config file (issue 14): `pick`, `retry_after` and
 * `route = PATTERN... via URL[, URL...] | direct | block`.  Pure string
 * work; shim/routes.c applies what is parsed here. */
#include "sfy_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sfy_config_not_mine[] = "";

static int all_digits(const char *s, size_t n)
{
	return n > 0 && strspn(s, "0123456789") >= n;
}

static int pattern_port(const char *s, uint16_t *port)
{
	size_t n = strlen(s);
	if (!all_digits(s, n) || n > 5)
		return -1;
	long v = strtol(s, NULL, 10);
	if (v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* A name pattern: ".example.com", "*.example.com" or "host.example.com",
 * each with an optional ":PORT". */
static const char *parse_name_pattern(struct sfy_pattern *p, const char *tok)
{
	size_t off = 0;
	p->kind = SFY_PAT_NAME;
	if (strncmp(tok, "*.", 2) == 0)
		off = 2, p->kind = SFY_PAT_SUFFIX;
	else if (tok[0] == '.')
		off = 1, p->kind = SFY_PAT_SUFFIX;
	const char *name = tok + off, *colon = strchr(name, ':');
	size_t len = colon ? (size_t)(colon - name) : strlen(name);
	if (colon && pattern_port(colon + 1, &p->port) < 0)
		return "bad port in pattern";
	if (len && name[len - 1] == '.')
		len--; /* fully qualified form: the same name */
	if (!len || len > 253 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") < len ||
	    name[0] == '.')
		return "expected a name, .domain, *.domain, ADDRESS[/PREFIX][:PORT] or :PORT";
	p->name_off = (uint8_t)off;
	p->name_len = (uint16_t)len;
	return NULL;
}

/* One PATTERN into p. */
static const char *parse_pattern(struct sfy_pattern *p, const char *tok)
{
	memset(p, 0, sizeof *p);
	if (strlen(tok) >= sizeof p->text)
		return "pattern too long";
	strcpy(p->text, tok);
	if (tok[0] == ':') {
		p->kind = SFY_PAT_PORT;
		return pattern_port(tok + 1, &p->port) < 0 ? "bad port in pattern" : NULL;
	}
	if (sfy_cidr_parse(tok, &p->cidr, 1) == 0) {
		p->kind = SFY_PAT_CIDR;
		return NULL;
	}
	/* What looks like an address but is none is a typo, not a name. */
	const char *colon = strchr(tok, ':');
	if (tok[0] == '[' || strchr(tok, '/') || strspn(tok, "0123456789.:") == strlen(tok) ||
	    (colon && strchr(colon + 1, ':')))
		return "bad address, CIDR or port in pattern";
	return parse_name_pattern(p, tok);
}

static const char bad_route[] = "expected PATTERN... via URL[, URL...], PATTERN... direct or PATTERN... block";

/* The next blank-separated token of *s (modified in place), or NULL. */
static char *next_token(char **s)
{
	char *p = *s;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return *s = p, NULL;
	char *end = p + strcspn(p, " \t");
	if (*end)
		*end++ = '\0';
	*s = end;
	return p;
}

const char *sfy_config_parse_route(struct sfy_config *cfg, const char *val, int line, char *err, size_t errlen)
{
	char buf[SFY_MAX_LINE + 1];
	if (cfg->n_rules >= SFY_MAX_RULES)
		return "too many route rules (at most 64)";
	if (strlen(val) > SFY_MAX_LINE)
		return "too long";
	strcpy(buf, val);
	struct sfy_route_rule r = {.first = cfg->n_patterns, .via = -1, .line = line};
	char *s = buf, *tok;
	int action = -1;
	while ((tok = next_token(&s))) {
		if (strcmp(tok, "via") == 0 || strcmp(tok, "direct") == 0 || strcmp(tok, "block") == 0) {
			action = tok[0] == 'v' ? SFY_RULE_VIA : tok[0] == 'd' ? SFY_RULE_DIRECT : SFY_RULE_BLOCK;
			break;
		}
		if (cfg->n_patterns >= SFY_MAX_PATTERNS) {
			cfg->n_patterns = r.first;
			return "too many patterns in route rules (at most 128 in all)";
		}
		const char *why = parse_pattern(&cfg->patterns[cfg->n_patterns], tok);
		if (why) {
			cfg->n_patterns = r.first;
			snprintf(err, errlen, "%s: '%.80s'", why, tok);
			return err;
		}
		cfg->n_patterns++;
		r.n++;
	}
	while (isspace((unsigned char)*s))
		s++;
	const char *why = NULL;
	if (action < 0 || r.n == 0)
		why = bad_route;
	else if (action != SFY_RULE_VIA && *s)
		why = "nothing may follow direct or block";
	else if (action == SFY_RULE_VIA && !*s)
		why = "via needs a proxy URL (URL[, URL...])";
	else if (action == SFY_RULE_VIA && (r.via = sfy_config_add_via(cfg, s, err, errlen)) < 0)
		why = err;
	if (why) {
		cfg->n_patterns = r.first;
		return why;
	}
	r.action = action;
	cfg->rules[cfg->n_rules++] = r;
	return NULL;
}

const char *sfy_config_route_key(struct sfy_config *cfg, const char *key, const char *val, int line, char *err,
				 size_t errlen)
{
	if (strcmp(key, "route") == 0)
		return sfy_config_parse_route(cfg, val, line, err, errlen);
	if (strcmp(key, "pick") == 0) {
		static const char *const picks[] = {"failover", "round_robin", "random"};
		for (int i = 0; i < 3; i++)
			if (strcmp(val, picks[i]) == 0)
				return cfg->pick = i, NULL;
		return "expected failover, round_robin or random";
	}
	if (strcmp(key, "retry_after") == 0) {
		size_t n = strlen(val);
		if (!all_digits(val, n) || n > 6 || strtol(val, NULL, 10) > 86400)
			return "expected whole seconds, 0 to 86400";
		cfg->retry_after = (int)strtol(val, NULL, 10);
		return NULL;
	}
	return sfy_config_not_mine;
}
