/* The HTTP CONNECT client (RFC 9110 section 9.3.6), as the same kind of
 * engine as SOCKS5 (include/sfy_engine.h): one request out, one response
 * head in, no I/O.
 *
 * The request: CONNECT authority HTTP/1.1, Host: authority and, with a user
 * name, Proxy-Authorization: Basic base64(user:pass) (RFC 7617).
 *
 * The response head is read byte-exactly: the tunnel's first bytes follow
 * the blank line that ends it and belong to the program, so no read may
 * reach past that line.  Without a length to go by, every read asks for
 * the fewest bytes that could still end the head: 4 in a line ("\r\n\r\n"),
 * 3 after a CR, 2 after a line's CRLF, 1 after CRLF CR; a head is at least
 * "HTTP/1.x NNN\r\n\r\n", 16 bytes, which the first read asks for.  Lines
 * must end in CRLF: a bare LF (which RFC 9112 lets a recipient accept)
 * would allow a head to end one byte sooner than these sizes assume, so it
 * is refused as malformed rather than risk eating the tunnel's bytes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine_int.h"

#define STATUS_PREFIX "HTTP/1."
#define STATUS_FIXED 12 /* "HTTP/1.1 200" */
#define CRED_MAX 255    /* as for SOCKS5 (RFC 1929) */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of in[0..n) into out (4 * ceil(n / 3) + 1 bytes), NUL-terminated. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
	}
	out[o] = 0;
	return o;
}

/* A name goes into the request line and a header as it is: only the
 * characters of a host name (RFC 3986 unreserved), so that nothing a
 * program passes can split the request or smuggle a header. */
static int name_ok(const struct s5_addr *a)
{
	if (a->u.domain.len == 0 || strnlen(a->u.domain.name, sizeof a->u.domain.name) != a->u.domain.len)
		return 0;
	for (size_t i = 0; i < a->u.domain.len; i++) {
		unsigned char c = (unsigned char)a->u.domain.name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_' || c == '~'))
			return 0;
	}
	return 1;
}

/* "Proxy-Authorization: Basic ...\r\n" into out, or "" without a user;
 * -1 when the credentials cannot be sent. */
static int auth_header(const struct sfy_hop *hop, char *out, size_t cap)
{
	out[0] = 0;
	if (!hop->user || !hop->user[0])
		return 0;
	const char *pass = hop->pass ? hop->pass : "";
	size_t ul = strlen(hop->user), pl = strlen(pass);
	/* Basic auth joins them with ':', so a user name cannot hold one. */
	if (ul > CRED_MAX || pl > CRED_MAX || strchr(hop->user, ':'))
		return -1;
	uint8_t joined[2 * CRED_MAX + 1];
	memcpy(joined, hop->user, ul);
	joined[ul] = ':';
	memcpy(joined + ul + 1, pass, pl);
	char b64[4 * ((2 * CRED_MAX + 1 + 2) / 3) + 1];
	b64_encode(joined, ul + 1 + pl, b64);
	memset(joined, 0, sizeof joined);
	int n = snprintf(out, cap, "Proxy-Authorization: Basic %s\r\n", b64);
	memset(b64, 0, sizeof b64);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Bytes the head needs at least, from where it is. */
static size_t head_rest(const struct sfy_engine *e)
{
	if (e->http.line == 0 && e->in_len < STATUS_FIXED)
		return STATUS_FIXED - e->in_len + 4;
	return 4 - e->http.eol;
}

static void http_expect_head(struct sfy_engine *e)
{
	sfy_engine_expect(e, SFY_ENG_REPLY, 0, "reply");
	e->http.eol = 0;
	e->http.line = 0;
	e->need = head_rest(e);
}

void sfy_http_start(struct sfy_engine *e, uint8_t cmd, const struct s5_addr *dst)
{
	http_expect_head(e);
	e->step = "request";
	if (cmd != S5_CMD_CONNECT) {
		sfy_engine_fail(e, EOPNOTSUPP, "request (an HTTP proxy can only CONNECT)");
		return;
	}
	if (dst->atyp == S5_ATYP_DOMAIN && !name_ok(dst)) {
		sfy_engine_fail(e, EINVAL, "request (name cannot be sent in an HTTP request)");
		return;
	}
	char authority[S5_NAME_MAX + 16], auth[64 + 4 * ((2 * CRED_MAX + 3) / 3)];
	s5_addr_text(dst, authority, sizeof authority);
	if (auth_header(e->hop, auth, sizeof auth) < 0) {
		sfy_engine_fail(e, EINVAL, "request (user name or password longer than 255 bytes, or ':' in the user name)");
		return;
	}
	char req[SFY_HTTP_REQUEST_MAX];
	int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", authority, authority, auth);
	memset(auth, 0, sizeof auth);
	if (n < 0 || (size_t)n >= sizeof req || sfy_engine_queue(e, (const uint8_t *)req, (size_t)n) < 0) {
		sfy_engine_fail(e, EINVAL, "request");
		return;
	}
	memset(req, 0, sizeof req);
	e->step = "reply";
}

const char *sfy_http_status_text(int status)
{
	switch (status) {
	case 400: return "bad request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not found";
	case 405: return "method not allowed";
	case 407: return "proxy authentication required";
	case 500: return "internal server error";
	case 502: return "bad gateway";
	case 503: return "service unavailable";
	case 504: return "gateway timeout";
	}
	if (status >= 200 && status < 300)
		return "connection established";
	if (status >= 300 && status < 400)
		return "redirection";
	if (status >= 400 && status < 500)
		return "client error";
	if (status >= 500 && status < 600)
		return "server error";
	return "unexpected status";
}

/* errno for a final status.  Proxies differ in what they answer for the
 * same failure: tinyproxy says 500 for a refused or unresolvable
 * destination, squid 503 for a refused connection; 502 is most often a
 * destination that could not be reached or resolved. */
static int status_errno(int status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 401:
	case 403:
	case 407: return EACCES;
	case 502: return EHOSTUNREACH;
	case 504: return ETIMEDOUT;
	}
	return ECONNREFUSED;
}

/* Byte pos of the status line matches "HTTP/1.D DDD" then SP or CR. */
static int status_byte_ok(size_t pos, uint8_t c)
{
	if (pos < sizeof STATUS_PREFIX - 1)
		return c == (uint8_t)STATUS_PREFIX[pos];
	if (pos == 7 || (pos >= 9 && pos <= 11))
		return c >= '0' && c <= '9';
	if (pos == 8)
		return c == ' ';
	if (pos == 12)
		return c == ' ' || c == '\r';
	return 1;
}

/* The head ended: its status decides. */
static void got_head(struct sfy_engine *e)
{
	int status = (e->in[9] - '0') * 100 + (e->in[10] - '0') * 10 + (e->in[11] - '0');
	if (status >= 100 && status < 200 && status != 101) {
		/* An interim response: the final one follows. */
		http_expect_head(e);
		return;
	}
	e->rep = status;
	e->replies++;
	memset(&e->reply, 0, sizeof e->reply);
	e->reply.bnd.atyp = S5_ATYP_IPV4; /* 0.0.0.0:0: HTTP does not say */
	if (status < 200 || status > 599) {
		sfy_engine_fail(e, EPROTO, "reply (unexpected HTTP status)");
		return;
	}
	int err = status_errno(status);
	if (err) {
		e->reply.rep = 1;
		sfy_engine_fail(e, err, "reply");
		return;
	}
	e->state = SFY_ENG_DONE;
}

/* One byte of the head; 1 when it ended, -1 when malformed. */
static int head_byte(struct sfy_engine *e, uint8_t c)
{
	size_t pos = e->in_len++;
	if (pos < sizeof e->in)
		e->in[pos] = c;
	if (e->http.line == 0 && !status_byte_ok(pos, c))
		return -1;
	switch (e->http.eol) {
	case 1:
	case 3:
		if (c != '\n')
			return -1;
		if (e->http.eol == 3)
			return 1;
		e->http.eol = 2;
		e->http.line++;
		return 0;
	case 2:
		if (c == '\r') {
			e->http.eol = 3;
			return 0;
		}
		break;
	}
	if (c == '\r') {
		e->http.eol = 1;
		return 0;
	}
	/* Field and reason text: visible bytes, SP, HTAB, obs-text. */
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		return -1;
	e->http.eol = 0;
	return 0;
}

size_t sfy_http_feed(struct sfy_engine *e, const uint8_t *in, size_t n)
{
	if (e->state != SFY_ENG_REPLY)
		return 0;
	if (n > e->need - e->in_len)
		n = e->need - e->in_len; /* never more than read_max said */
	size_t used = 0;
	while (used < n) {
		if (++e->http.total > SFY_HTTP_HEAD_MAX) {
			sfy_engine_fail(e, EPROTO, "reply (HTTP response head over 8 KiB)");
			break;
		}
		int r = head_byte(e, in[used++]);
		if (r < 0) {
			sfy_engine_fail(e, EPROTO, "reply (not an HTTP response)");
			break;
		}
		if (r > 0) {
			got_head(e);
			break; /* done, failed, or an interim head: read_max anew */
		}
		e->need = e->in_len + head_rest(e);
	}
	return used;
}
