/* The SOCKS5 client engine (include/sfy_engine.h): the greeting, the table
 * of authentication methods, the request and its reply or replies, as
 * bytes in and bytes out.  No socket, no clock, no global: every fact comes
 * from the hop and the destination it is started with. */
#include "sfy_engine.h"

#include <errno.h>

#include "engine_int.h"
#include <string.h>

/* ------------------------------------------------------------ methods */

/* gssapi = required: no other method may be chosen. */
static int none_usable(const struct sfy_hop *hop)
{
	return hop->gssapi != 2;
}

static int none_begin(struct sfy_engine *e)
{
	(void)e;
	return 0;
}

static int userpass_usable(const struct sfy_hop *hop)
{
	return hop->user && hop->user[0] && hop->gssapi != 2;
}

/* RFC 1929: VER ULEN UNAME PLEN PASSWD. */
static int userpass_begin(struct sfy_engine *e)
{
	uint8_t buf[S5_AUTH_REQUEST_MAX];
	int n = s5_encode_auth(buf, sizeof buf, e->hop->user, e->hop->pass ? e->hop->pass : "");
	if (n < 0 || sfy_engine_queue(e, buf, (size_t)n) < 0) {
		sfy_engine_fail(e, EINVAL, "authentication (user name or password longer than 255 bytes or empty)");
		return -1;
	}
	return 0;
}

static int userpass_size(const uint8_t *buf, size_t len)
{
	uint8_t status;
	return s5_decode_auth(buf, len, &status) < 0 ? -1 : 2;
}

static int userpass_input(struct sfy_engine *e, const uint8_t *msg, size_t len)
{
	uint8_t status;
	if (s5_decode_auth(msg, len, &status) != 2) {
		sfy_engine_fail(e, EPROTO, "authentication");
		return -1;
	}
	if (status != 0) {
		sfy_engine_fail(e, EACCES, "authentication (user name or password rejected)");
		return -1;
	}
	return 0;
}

/* In order of preference: the greeting offers them in this order. */
static const struct sfy_auth_method methods[] = {
	{S5_METHOD_GSSAPI, "GSSAPI", sfy_gss_usable, sfy_gss_begin, 2, sfy_gss_msg_size, sfy_gss_input},
	{S5_METHOD_USERPASS, "username/password", userpass_usable, userpass_begin, 2, userpass_size, userpass_input},
	{S5_METHOD_NONE, "no authentication", none_usable, none_begin, 0, NULL, NULL},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

const struct sfy_auth_method *sfy_auth_methods(size_t *n)
{
	*n = N_METHODS;
	return methods;
}

static const struct sfy_auth_method *method_by_id(uint8_t id)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (methods[i].id == id)
			return &methods[i];
	return NULL;
}

/* The one method a pipelined greeting offers: the bytes sent behind it
 * must mean what that method expects. */
static const struct sfy_auth_method *preferred(const struct sfy_hop *hop)
{
	for (size_t i = 0; i < N_METHODS; i++)
		if (methods[i].usable(hop))
			return &methods[i];
	return NULL;
}

/* ------------------------------------------------------------ engine */

int sfy_engine_queue(struct sfy_engine *e, const uint8_t *buf, size_t len)
{
	size_t cap;
	uint8_t *out = sfy_eng_out_buf(e, &cap);
	if (e->out_off == e->out_len)
		e->out_off = e->out_len = 0;
	if (len > cap - e->out_len)
		return -1;
	memcpy(out + e->out_len, buf, len);
	e->out_len += len;
	return 0;
}

void sfy_engine_fail(struct sfy_engine *e, int err, const char *step)
{
	if (e->state == SFY_ENG_FAILED)
		return;
	e->state = SFY_ENG_FAILED;
	e->err = err ? err : EPROTO;
	if (step)
		e->step = step;
}

/* Expect a message of at least first bytes (the whole, or a head that
 * tells the size). */
void sfy_engine_expect(struct sfy_engine *e, enum sfy_eng_state state, size_t first, const char *step)
{
	e->state = state;
	e->in_len = 0;
	e->need = first;
	e->step = step;
}

static int queue_request(struct sfy_engine *e)
{
	uint8_t buf[S5_REQUEST_MAX];
	int n = s5_encode_request(buf, sizeof buf, e->cmd, &e->dst);
	if (n >= 0 && sfy_gss_protected(e)) /* RFC 1961 section 5: the request is wrapped */
		return sfy_gss_queue_wrapped(e, buf, (size_t)n);
	if (n < 0 || sfy_engine_queue(e, buf, (size_t)n) < 0) {
		sfy_engine_fail(e, EINVAL, "request");
		return -1;
	}
	return 0;
}

/* The smallest reply: a name under 3 bytes would make one shorter than an
 * IPv4 reply, and no real proxy sends one (s5_reply_size calls it
 * malformed), so 10 bytes can always be asked for first. */
#define REPLY_FIRST 10

/* A protected reply is a frame: 2 bytes tell its size (or an abort). */
static size_t reply_first(const struct sfy_engine *e)
{
	return sfy_gss_protected(e) ? 2 : REPLY_FIRST;
}

/* The method is done: send the request (unless it went already). */
static void method_done(struct sfy_engine *e)
{
	if (!e->request_sent_early && queue_request(e) < 0)
		return;
	sfy_engine_expect(e, SFY_ENG_REPLY, reply_first(e), "reply");
}

void sfy_engine_start(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t cmd, const struct s5_addr *dst)
{
	memset(e, 0, sizeof *e);
	e->hop = hop;
	e->type = hop->type;
	e->cmd = cmd;
	e->dst = *dst;
	e->rep = -1;
	switch (hop->type) {
	case SFY_HOP_SOCKS5:
		break;
	case SFY_HOP_SOCKS4:
	case SFY_HOP_SOCKS4A:
		sfy_s4_start(e, cmd, dst);
		return;
	case SFY_HOP_HTTP:
		sfy_http_start(e, cmd, dst);
		return;
	default:
		sfy_engine_fail(e, EINVAL, "greeting (unknown proxy type)");
		return;
	}
	sfy_engine_expect(e, SFY_ENG_METHOD, 2, "greeting");
	uint8_t buf[S5_GREETING_MAX];
	int n;
	if (!hop->pipeline || hop->gssapi) { /* GSSAPI's request waits for the context */
		/* Every usable method, in order of preference. */
		buf[0] = S5_VERSION;
		n = 2;
		for (size_t i = 0; i < N_METHODS && n < (int)sizeof buf; i++)
			if (methods[i].usable(hop))
				buf[n++] = methods[i].id;
		buf[1] = (uint8_t)(n - 2);
		sfy_engine_queue(e, buf, (size_t)n);
		return;
	}
	/* Pipelined: the greeting offers only the method we will use, its
	 * first message and the request follow in the same write. */
	e->method = preferred(hop);
	n = s5_encode_greeting_for(buf, sizeof buf, e->method->id);
	sfy_engine_queue(e, buf, (size_t)n);
	if (e->method->begin(e) < 0 || queue_request(e) < 0)
		return;
	e->request_sent_early = 1;
	e->step = "greeting";
}

enum sfy_want sfy_engine_want(struct sfy_engine *e, const uint8_t **out, size_t *out_len, size_t *read_max)
{
	if (e->state == SFY_ENG_FAILED)
		return SFY_WANT_FAILED;
	if (e->out_off < e->out_len) {
		*out = sfy_eng_out_buf(e, NULL) + e->out_off;
		*out_len = e->out_len - e->out_off;
		return SFY_WANT_WRITE;
	}
	if (e->state == SFY_ENG_DONE)
		return SFY_WANT_DONE;
	*read_max = e->need - e->in_len;
	if (*read_max > SFY_ENG_IN_MAX) /* a GSSAPI frame: drivers read in pieces */
		*read_max = SFY_ENG_IN_MAX;
	return SFY_WANT_READ;
}

void sfy_engine_sent(struct sfy_engine *e, size_t n)
{
	e->out_off += n < e->out_len - e->out_off ? n : e->out_len - e->out_off;
}

/* What the method's exchange is called in log lines: GSSAPI names its
 * phase ("gssapi context", "gssapi protection"). */
static const char *auth_step(const struct sfy_engine *e)
{
	return e->method->id == S5_METHOD_GSSAPI ? sfy_gss_phase_name(e) : "authentication";
}

/* The proxy's method choice. */
static void got_method(struct sfy_engine *e)
{
	uint8_t id;
	if (s5_decode_method(e->in, e->in_len, &id) != 2) {
		sfy_engine_fail(e, EPROTO, "greeting");
		return;
	}
	if (id == S5_METHOD_UNACCEPTABLE) {
		sfy_engine_fail(e, EACCES, userpass_usable(e->hop) || e->hop->gssapi ? "greeting (proxy accepts none of our methods)"
						     : "greeting (proxy requires authentication; set a username and password)");
		return;
	}
	const struct sfy_auth_method *m = method_by_id(id);
	if (!m || !m->usable(e->hop) || (e->method && e->method != m)) {
		sfy_engine_fail(e, EPROTO, "greeting (proxy chose a method we did not offer)");
		return;
	}
	if (!e->method) {
		e->method = m;
		if (m->begin(e) < 0)
			return;
	}
	if (!m->msg_size) {
		method_done(e);
		return;
	}
	sfy_engine_expect(e, SFY_ENG_AUTH, m->msg_first, auth_step(e));
}

static void got_auth(struct sfy_engine *e)
{
	int r = e->method->input(e, sfy_eng_in_buf(e, NULL), e->in_len);
	if (r == 0)
		method_done(e);
	else if (r > 0)
		sfy_engine_expect(e, SFY_ENG_AUTH, e->method->msg_first, auth_step(e));
}

static void got_reply(struct sfy_engine *e)
{
	const uint8_t *msg = e->in;
	size_t len = e->in_len;
	uint8_t plain[S5_REPLY_MAX];
	if (sfy_gss_protected(e)) {
		long n = sfy_gss_unwrap_frame(e, sfy_eng_in_buf(e, NULL), e->in_len, plain, sizeof plain);
		if (n < 0)
			return;
		msg = plain, len = (size_t)n;
	}
	if (s5_decode_reply(msg, len, &e->reply) != (int)len) {
		sfy_engine_fail(e, EPROTO, "reply");
		return;
	}
	e->rep = e->reply.rep;
	e->replies++;
	if (e->reply.rep != S5_REP_SUCCEEDED) {
		sfy_engine_fail(e, s5_rep_errno(e->reply.rep), "reply");
		return;
	}
	e->state = SFY_ENG_DONE;
}

/* Size of the message being read, from its first len bytes. */
static int message_size(const struct sfy_engine *e)
{
	switch (e->state) {
	case SFY_ENG_METHOD: return e->in_len >= 1 && e->in[0] != S5_VERSION ? -1 : 2;
	case SFY_ENG_AUTH: return e->method->msg_size(sfy_eng_in_buf(e, NULL), e->in_len);
	case SFY_ENG_REPLY:
		if (sfy_gss_protected(e))
			return sfy_gss_msg_size(sfy_eng_in_buf(e, NULL), e->in_len);
		return s5_reply_size(e->in, e->in_len);
	default: return -1;
	}
}

size_t sfy_engine_feed(struct sfy_engine *e, const uint8_t *in, size_t n)
{
	if (e->type == SFY_HOP_SOCKS4 || e->type == SFY_HOP_SOCKS4A)
		return sfy_s4_feed(e, in, n);
	if (e->type == SFY_HOP_HTTP)
		return sfy_http_feed(e, in, n);
	size_t used = 0;
	while (used < n && (e->state == SFY_ENG_METHOD || e->state == SFY_ENG_AUTH || e->state == SFY_ENG_REPLY)) {
		size_t take = e->need - e->in_len, cap;
		uint8_t *buf = sfy_eng_in_buf(e, &cap);
		if (take > n - used)
			take = n - used;
		memcpy(buf + e->in_len, in + used, take);
		e->in_len += take;
		used += take;
		int size = message_size(e);
		if (size < 0 || (size_t)size > cap) {
			sfy_engine_fail(e, EPROTO, NULL);
			break;
		}
		if ((size_t)size > e->need || (size == 0 && e->in_len == e->need))
			e->need = size ? (size_t)size : e->need + 1;
		if (e->in_len < e->need)
			continue;
		enum sfy_eng_state was = e->state;
		if (was == SFY_ENG_METHOD)
			got_method(e);
		else if (was == SFY_ENG_AUTH)
			got_auth(e);
		else
			got_reply(e);
		if (e->state == SFY_ENG_DONE || e->out_off < e->out_len)
			break; /* never read past a reply, nor ahead of our own next message */
	}
	return used;
}

void sfy_engine_eof(struct sfy_engine *e)
{
	sfy_engine_fail(e, e->in_len ? EPROTO : ECONNRESET, NULL);
}

void sfy_engine_start_reply(struct sfy_engine *e, uint8_t cmd)
{
	memset(e, 0, sizeof *e);
	e->cmd = cmd;
	e->rep = -1;
	e->replies = 1;
	sfy_engine_expect(e, SFY_ENG_REPLY, REPLY_FIRST, "reply 2");
}

void sfy_engine_start_reply_hop(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t cmd)
{
	sfy_engine_start_reply(e, cmd);
	e->hop = hop;
	e->type = hop->type;
	if (e->type == SFY_HOP_SOCKS4 || e->type == SFY_HOP_SOCKS4A)
		sfy_s4_expect_reply(e, "reply 2");
	else if (e->type != SFY_HOP_SOCKS5)
		sfy_engine_fail(e, EOPNOTSUPP, "reply 2 (this proxy type has no BIND)");
}

void sfy_engine_next_reply(struct sfy_engine *e)
{
	if (e->state != SFY_ENG_DONE)
		return;
	if (e->type == SFY_HOP_SOCKS4 || e->type == SFY_HOP_SOCKS4A)
		sfy_s4_expect_reply(e, "reply 2");
	else if (e->type == SFY_HOP_SOCKS5)
		sfy_engine_expect(e, SFY_ENG_REPLY, reply_first(e), "reply 2");
	/* HTTP CONNECT has one response: nothing more to wait for. */
}

const char *sfy_engine_rep_text(const struct sfy_engine *e)
{
	if (e->rep < 0)
		return "no reply";
	if (e->type == SFY_HOP_SOCKS4 || e->type == SFY_HOP_SOCKS4A)
		return sfy_s4_rep_text(e->rep);
	if (e->type == SFY_HOP_HTTP)
		return sfy_http_status_text(e->rep);
	return s5_rep_text((uint8_t)e->rep);
}

const char *sfy_hop_type_name(enum sfy_hop_type t)
{
	switch (t) {
	case SFY_HOP_SOCKS5: return "socks5";
	case SFY_HOP_SOCKS4: return "socks4";
	case SFY_HOP_SOCKS4A: return "socks4a";
	case SFY_HOP_HTTP: return "http";
	}
	return "unknown";
}
