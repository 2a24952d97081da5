/* The SOCKS4 and SOCKS4a client, as the same kind of engine as SOCKS5
 * (include/sfy_engine.h): one request out, one 8-byte reply in (two for
 * BIND), no I/O.
 *
 * Request: VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL; SOCKS4a sends a name as
 * DSTIP 0.0.0.1 (any 0.0.0.x, x != 0) and the name, NUL-terminated, after
 * the USERID.  Reply: VN=0 CD DSTPORT DSTIP, CD 90 granted, 91 rejected or
 * failed, 92 and 93 rejected by the identd check.
 *
 * What SOCKS4 cannot carry fails at start, before a byte is sent, and is
 * never worked around: a name through plain SOCKS4 is EOPNOTSUPP (the hop
 * cannot do what the destination needs; resolving it here would leak the
 * name to the local resolver, which the issue forbids), an IPv6 address is
 * EAFNOSUPPORT, UDP ASSOCIATE is EOPNOTSUPP. */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

#define S4_VERSION 4
#define S4_REPLY_LEN 8
#define S4_GRANTED 90
#define S4_REJECTED 91
#define S4_NO_IDENTD 92
#define S4_BAD_USERID 93
#define S4_NAME_MAX 255

/* An IPv4 address for dst, unmapping ::ffff:a.b.c.d; 0 or -1. */
static int s4_ipv4(const struct s5_addr *dst, uint8_t ip[4])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (dst->atyp == S5_ATYP_IPV4) {
		memcpy(ip, dst->u.ipv4, 4);
		return 0;
	}
	if (dst->atyp == S5_ATYP_IPV6 && memcmp(dst->u.ipv6, mapped, sizeof mapped) == 0) {
		memcpy(ip, dst->u.ipv6 + 12, 4);
		return 0;
	}
	return -1;
}

/* Why dst cannot go through this hop: 0 when it can (ip filled, or the
 * name to send in *name), else the errno with *why. */
static int s4_target(const struct sfy_engine *e, const struct s5_addr *dst, uint8_t ip[4], const char **name,
		     const char **why)
{
	*name = NULL;
	if (s4_ipv4(dst, ip) == 0) {
		/* 0.0.0.x (x != 0) means "a name follows" to a 4a server. */
		if (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0) {
			*why = "request (0.0.0.x cannot be sent over SOCKS4)";
			return EINVAL;
		}
		return 0;
	}
	if (dst->atyp == S5_ATYP_IPV6) {
		*why = "request (a socks4 proxy cannot reach an IPv6 address)";
		return EAFNOSUPPORT;
	}
	if (dst->atyp != S5_ATYP_DOMAIN) {
		*why = "request (unknown address type)";
		return EINVAL;
	}
	if (e->type != SFY_HOP_SOCKS4A) {
		*why = "request (a socks4 proxy cannot be sent a name; use socks4a or socks5h)";
		return EOPNOTSUPP;
	}
	size_t len = strnlen(dst->u.domain.name, sizeof dst->u.domain.name);
	if (len == 0 || len != dst->u.domain.len || len > S4_NAME_MAX) {
		*why = "request (name cannot be sent over SOCKS4a)";
		return EINVAL;
	}
	ip[0] = ip[1] = ip[2] = 0;
	ip[3] = 1;
	*name = dst->u.domain.name;
	return 0;
}

void sfy_s4_expect_reply(struct sfy_engine *e, const char *step)
{
	sfy_engine_expect(e, SFY_ENG_REPLY, S4_REPLY_LEN, step);
}

void sfy_s4_start(struct sfy_engine *e, uint8_t cmd, const struct s5_addr *dst)
{
	sfy_s4_expect_reply(e, "request");
	if (cmd != S5_CMD_CONNECT && cmd != S5_CMD_BIND) {
		sfy_engine_fail(e, EOPNOTSUPP, "request (socks4 has no UDP ASSOCIATE)");
		return;
	}
	uint8_t ip[4];
	const char *name, *why = NULL;
	int err = s4_target(e, dst, ip, &name, &why);
	if (err) {
		sfy_engine_fail(e, err, why);
		return;
	}
	const char *user = e->hop->user ? e->hop->user : "";
	size_t ulen = strlen(user);
	if (ulen > 255) {
		sfy_engine_fail(e, EINVAL, "request (user name longer than 255 bytes)");
		return;
	}
	uint8_t buf[8 + 256 + S4_NAME_MAX + 1];
	size_t n = 0;
	buf[n++] = S4_VERSION;
	buf[n++] = cmd; /* CD 1 CONNECT, 2 BIND: the same numbers as SOCKS5 */
	buf[n++] = (uint8_t)(dst->port >> 8);
	buf[n++] = (uint8_t)dst->port;
	memcpy(buf + n, ip, 4);
	n += 4;
	memcpy(buf + n, user, ulen + 1);
	n += ulen + 1;
	if (name) {
		memcpy(buf + n, name, dst->u.domain.len);
		n += dst->u.domain.len;
		buf[n++] = 0;
	}
	if (sfy_engine_queue(e, buf, n) < 0) {
		sfy_engine_fail(e, EINVAL, "request");
		return;
	}
	e->step = "reply";
}

const char *sfy_s4_rep_text(int cd)
{
	switch (cd) {
	case S4_GRANTED: return "request granted";
	case S4_REJECTED: return "request rejected or failed";
	case S4_NO_IDENTD: return "rejected: the proxy cannot reach our identd";
	case S4_BAD_USERID: return "rejected: identd reports another user id";
	}
	return "unassigned reply code";
}

/* errno for a CD of a reply; 0 for granted. */
static int s4_errno(int cd)
{
	switch (cd) {
	case S4_GRANTED: return 0;
	case S4_REJECTED: return ECONNREFUSED; /* the destination's answer, or the proxy's rule */
	case S4_NO_IDENTD:
	case S4_BAD_USERID: return EACCES;
	}
	return EPROTO;
}

static void s4_got_reply(struct sfy_engine *e)
{
	const uint8_t *r = e->in;
	e->rep = r[1];
	e->replies++;
	memset(&e->reply, 0, sizeof e->reply);
	e->reply.bnd.atyp = S5_ATYP_IPV4;
	e->reply.bnd.port = (uint16_t)(r[2] << 8 | r[3]);
	memcpy(e->reply.bnd.u.ipv4, r + 4, 4);
	int err = s4_errno(r[1]);
	if (err) {
		/* reply.rep stays a SOCKS5-like "failure" for drivers that look
		 * only at it; e->rep has the CD. */
		e->reply.rep = 1;
		sfy_engine_fail(e, err, e->replies > 1 ? "reply 2" : "reply");
		return;
	}
	e->state = SFY_ENG_DONE;
}

size_t sfy_s4_feed(struct sfy_engine *e, const uint8_t *in, size_t n)
{
	if (e->state != SFY_ENG_REPLY)
		return 0;
	size_t take = e->need - e->in_len;
	if (take > n)
		take = n;
	memcpy(e->in + e->in_len, in, take);
	e->in_len += take;
	/* The reply's VN is 0: anything else is not a SOCKS4 server (a SOCKS5
	 * one answers 5), found at the first byte. */
	if (e->in_len >= 1 && e->in[0] != 0) {
		sfy_engine_fail(e, EPROTO, NULL);
		return take;
	}
	if (e->in_len == e->need)
		s4_got_reply(e);
	return take;
}
