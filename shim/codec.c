/* SOCKS5 codec: pure functions over byte buffers (see include/socks5_codec.h). */
#include "socks5_codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int s5_encode_greeting(uint8_t *out, size_t cap, int with_userpass)
{
	size_t n = with_userpass ? 4 : 3;
	if (cap < n)
		return S5_ESPACE;
	out[0] = S5_VERSION;
	out[1] = with_userpass ? 2 : 1;
	out[2] = S5_METHOD_NONE;
	if (with_userpass)
		out[3] = S5_METHOD_USERPASS;
	return (int)n;
}

int s5_encode_greeting_for(uint8_t *out, size_t cap, uint8_t method)
{
	if (cap < 3)
		return S5_ESPACE;
	out[0] = S5_VERSION;
	out[1] = 1;
	out[2] = method;
	return 3;
}

int s5_decode_method(const uint8_t *in, size_t len, uint8_t *method)
{
	if (len >= 1 && in[0] != S5_VERSION)
		return S5_EVERSION;
	if (len < 2)
		return 0;
	*method = in[1];
	return 2;
}

int s5_encode_auth(uint8_t *out, size_t cap, const char *user, const char *pass)
{
	size_t ulen = strlen(user), plen = strlen(pass);
	/* RFC 1929: each is 1 to 255 bytes. */
	if (ulen < 1 || ulen > 255 || plen < 1 || plen > 255)
		return S5_EINVAL;
	size_t n = 3 + ulen + plen;
	if (cap < n)
		return S5_ESPACE;
	out[0] = S5_AUTH_VERSION;
	out[1] = (uint8_t)ulen;
	memcpy(out + 2, user, ulen);
	out[2 + ulen] = (uint8_t)plen;
	memcpy(out + 3 + ulen, pass, plen);
	return (int)n;
}

int s5_decode_auth(const uint8_t *in, size_t len, uint8_t *status)
{
	if (len >= 1 && in[0] != S5_AUTH_VERSION)
		return S5_EVERSION;
	if (len < 2)
		return 0;
	*status = in[1];
	return 2;
}

/* Length of the address part (without port) for atyp, given the first
 * address byte; 0 when unknown yet, negative on a bad ATYP. */
static int addr_len(uint8_t atyp, const uint8_t *first, size_t avail)
{
	switch (atyp) {
	case S5_ATYP_IPV4:
		return 4;
	case S5_ATYP_IPV6:
		return 16;
	case S5_ATYP_DOMAIN:
		if (avail < 1)
			return 0;
		if (first[0] == 0)
			return S5_ENAME;
		return 1 + first[0];
	default:
		return S5_EATYP;
	}
}

static size_t put_addr(uint8_t *out, const struct s5_addr *a)
{
	size_t n = 0;
	out[n++] = a->atyp;
	if (a->atyp == S5_ATYP_IPV4) {
		memcpy(out + n, a->u.ipv4, 4);
		n += 4;
	} else if (a->atyp == S5_ATYP_IPV6) {
		memcpy(out + n, a->u.ipv6, 16);
		n += 16;
	} else {
		out[n++] = a->u.domain.len;
		memcpy(out + n, a->u.domain.name, a->u.domain.len);
		n += a->u.domain.len;
	}
	out[n++] = (uint8_t)(a->port >> 8);
	out[n++] = (uint8_t)(a->port & 0xff);
	return n;
}

/* Parse ATYP ADDR PORT starting at in; returns bytes used, 0 if short. */
static int get_addr(const uint8_t *in, size_t len, struct s5_addr *a)
{
	if (len < 1)
		return 0;
	int alen = addr_len(in[0], in + 1, len - 1);
	if (alen <= 0)
		return alen;
	size_t need = 1 + (size_t)alen + 2;
	if (len < need)
		return 0;
	a->atyp = in[0];
	if (a->atyp == S5_ATYP_IPV4) {
		memcpy(a->u.ipv4, in + 1, 4);
	} else if (a->atyp == S5_ATYP_IPV6) {
		memcpy(a->u.ipv6, in + 1, 16);
	} else {
		a->u.domain.len = in[1];
		memcpy(a->u.domain.name, in + 2, in[1]);
		a->u.domain.name[in[1]] = '\0';
	}
	a->port = (uint16_t)(in[need - 2] << 8 | in[need - 1]);
	return (int)need;
}

int s5_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst)
{
	size_t alen;
	switch (dst->atyp) {
	case S5_ATYP_IPV4: alen = 4; break;
	case S5_ATYP_IPV6: alen = 16; break;
	case S5_ATYP_DOMAIN:
		if (dst->u.domain.len == 0)
			return S5_EINVAL;
		alen = 1 + (size_t)dst->u.domain.len;
		break;
	default:
		return S5_EINVAL;
	}
	if (cap < 4 + alen + 2)
		return S5_ESPACE;
	out[0] = S5_VERSION;
	out[1] = cmd;
	out[2] = 0;
	return (int)(3 + put_addr(out + 3, dst));
}

/* Shared by replies and requests: VER CODE RSV then an address. */
static int decode_message(const uint8_t *in, size_t len, uint8_t *code, struct s5_addr *a)
{
	if (len >= 1 && in[0] != S5_VERSION)
		return S5_EVERSION;
	if (len >= 3 && in[2] != 0)
		return S5_ERSV;
	if (len < 4)
		return 0;
	int n = get_addr(in + 3, len - 3, a);
	if (n <= 0)
		return n;
	*code = in[1];
	return 3 + n;
}

int s5_decode_reply(const uint8_t *in, size_t len, struct s5_reply *reply)
{
	return decode_message(in, len, &reply->rep, &reply->bnd);
}

int s5_reply_size(const uint8_t *in, size_t len)
{
	if ((len >= 1 && in[0] != S5_VERSION) || (len >= 3 && in[2] != 0))
		return -1;
	if (len < 4)
		return 0;
	switch (in[3]) {
	case S5_ATYP_IPV4: return 10;
	case S5_ATYP_IPV6: return 22;
	case S5_ATYP_DOMAIN: return len < 5 ? 0 : in[4] < 3 ? -1 : 7 + in[4];
	default: return -1;
	}
}

int s5_decode_request(const uint8_t *in, size_t len, uint8_t *cmd, struct s5_addr *dst)
{
	return decode_message(in, len, cmd, dst);
}

/* RFC 1928 section 7: RSV(2) FRAG ATYP DST.ADDR DST.PORT, then the data. */
int s5_encode_udp_header(uint8_t *out, size_t cap, const struct s5_addr *dst)
{
	if (dst->atyp != S5_ATYP_IPV4 && dst->atyp != S5_ATYP_IPV6 &&
	    (dst->atyp != S5_ATYP_DOMAIN || dst->u.domain.len == 0))
		return S5_EINVAL;
	size_t alen = dst->atyp == S5_ATYP_IPV4 ? 4 : dst->atyp == S5_ATYP_IPV6 ? 16 : 1 + (size_t)dst->u.domain.len;
	if (cap < 3 + 1 + alen + 2)
		return S5_ESPACE;
	out[0] = out[1] = 0;
	out[2] = 0; /* FRAG: we never fragment */
	return (int)(3 + put_addr(out + 3, dst));
}

int s5_decode_udp_header(const uint8_t *in, size_t len, uint8_t *frag, struct s5_addr *src)
{
	if (len >= 2 && (in[0] != 0 || in[1] != 0))
		return S5_ERSV;
	if (len < 4)
		return 0;
	int n = get_addr(in + 3, len - 3, src);
	if (n <= 0)
		return n;
	*frag = in[2];
	return 3 + n;
}

int s5_addr_from_name(struct s5_addr *a, const char *name, uint16_t port)
{
	size_t n = strlen(name);
	if (n < 1 || n > S5_NAME_MAX)
		return S5_EINVAL;
	a->atyp = S5_ATYP_DOMAIN;
	a->port = port;
	a->u.domain.len = (uint8_t)n;
	memcpy(a->u.domain.name, name, n + 1);
	return 0;
}

void s5_addr_from_sockaddr(struct s5_addr *a, const struct sockaddr *sa, uint16_t port)
{
	memset(a, 0, sizeof *a);
	a->port = port;
	if (sa->sa_family == AF_INET) {
		a->atyp = S5_ATYP_IPV4;
		memcpy(a->u.ipv4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else {
		a->atyp = S5_ATYP_IPV6;
		memcpy(a->u.ipv6, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
	}
}

void s5_addr_text(const struct s5_addr *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	if (a->atyp == S5_ATYP_DOMAIN)
		snprintf(out, cap, "%s:%u", a->u.domain.name, a->port);
	else if (a->atyp == S5_ATYP_IPV4)
		snprintf(out, cap, "%s:%u", inet_ntop(AF_INET, a->u.ipv4, ip, sizeof ip), a->port);
	else
		snprintf(out, cap, "[%s]:%u", inet_ntop(AF_INET6, a->u.ipv6, ip, sizeof ip), a->port);
}

static const char *const rep_texts[] = {
	"succeeded",
	"general SOCKS server failure",
	"connection not allowed by ruleset",
	"network unreachable",
	"host unreachable",
	"connection refused",
	"TTL expired",
	"command not supported",
	"address type not supported",
};

const char *s5_rep_text(uint8_t rep)
{
	if (rep < sizeof rep_texts / sizeof rep_texts[0])
		return rep_texts[rep];
	return "unassigned reply code";
}

int s5_rep_errno(uint8_t rep)
{
	static const int table[] = {
		0, ECONNABORTED, EACCES, ENETUNREACH, EHOSTUNREACH,
		ECONNREFUSED, ETIMEDOUT, EOPNOTSUPP, EAFNOSUPPORT,
	};
	if (rep < sizeof table / sizeof table[0])
		return table[rep];
	return EPROTO;
}
