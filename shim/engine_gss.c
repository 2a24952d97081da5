/* The GSSAPI method (RFC 1961) in the engine's table (shim/engine.c):
 * context tokens (MTYP 1) until the context is complete, the protection
 * level sub-negotiation (MTYP 2, one octet wrapped without
 * confidentiality), then the request and replies wrapped at the agreed
 * level (MTYP 3).  The GSS calls are computation, not I/O: the engine
 * stays a state machine that drivers feed.  Frames are up to 65539 bytes,
 * so the method's buffers live on the heap (struct sfy_gss_eng), which the
 * engine owns until sfy_engine_release() or sfy_engine_take_gss(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "sfy_gss.h"

enum { PH_CONTEXT, PH_LEVEL, PH_PROTECTED };

/* Context tokens exchanged at most, both ways. */
#define SFY_GSS_MAX_TOKENS 32

struct sfy_gss_eng {
	struct sfy_gss *g;
	int phase;
	int asked;   /* the level we asked for */
	int tokens;  /* context tokens exchanged, for --check */
	char step[SFY_GSS_ERR_MAX];
	uint8_t in[S5_GSS_FRAME_MAX];
	uint8_t out[S5_GSS_FRAME_MAX];
};

uint8_t *sfy_eng_out_buf(struct sfy_engine *e, size_t *cap)
{
	if (cap)
		*cap = e->gss ? sizeof e->gss->out : sizeof e->out;
	return e->gss ? e->gss->out : e->out;
}

uint8_t *sfy_eng_in_buf(const struct sfy_engine *e, size_t *cap)
{
	if (cap)
		*cap = e->gss ? sizeof e->gss->in : sizeof e->in;
	return e->gss ? e->gss->in : (uint8_t *)e->in; /* the engine's own: the caller has it writable */
}

int sfy_gss_usable(const struct sfy_hop *hop)
{
	return hop->gssapi && hop->type == SFY_HOP_SOCKS5;
}

const char *sfy_gss_phase_name(const struct sfy_engine *e)
{
	return e->gss && e->gss->phase != PH_CONTEXT ? "gssapi protection" : "gssapi context";
}

int sfy_gss_protected(const struct sfy_engine *e)
{
	return e->gss && e->gss->phase == PH_PROTECTED;
}

/* Fail with the GSS library's words as the step (kept in the heap state,
 * which outlives every log line about this engine). */
static int gss_fail(struct sfy_engine *e, int err, const char *what)
{
	snprintf(e->gss->step, sizeof e->gss->step, "%s", what);
	sfy_engine_fail(e, err, e->gss->step);
	return -1;
}

static int queue_frame(struct sfy_engine *e, uint8_t mtyp, const uint8_t *tok, size_t n)
{
	uint8_t head[S5_GSS_HEADER];
	if (s5_gss_header(head, mtyp, n) < 0 || sfy_engine_queue(e, head, sizeof head) < 0 ||
	    sfy_engine_queue(e, tok, n) < 0)
		return gss_fail(e, EMSGSIZE, "gssapi (token too long for a frame)");
	return 0;
}

/* Wrap into the output buffer's free space directly: no 64 KiB copy on
 * the stack. */
static int queue_wrapped(struct sfy_engine *e, uint8_t mtyp, int conf, const uint8_t *plain, size_t n)
{
	struct sfy_gss_eng *s = e->gss;
	if (e->out_off == e->out_len)
		e->out_off = e->out_len = 0;
	size_t room = sizeof s->out - e->out_len;
	if (room <= S5_GSS_HEADER)
		return gss_fail(e, EMSGSIZE, "gssapi (no room for a frame)");
	long t = sfy_gss_wrap(s->g, conf, plain, n, s->out + e->out_len + S5_GSS_HEADER, room - S5_GSS_HEADER, NULL, 0);
	if (t < 0)
		return gss_fail(e, EPROTO, sfy_gss_error(s->g));
	s5_gss_header(s->out + e->out_len, mtyp, (size_t)t);
	e->out_len += S5_GSS_HEADER + (size_t)t;
	return 0;
}

int sfy_gss_queue_wrapped(struct sfy_engine *e, const uint8_t *plain, size_t n)
{
	return queue_wrapped(e, S5_GSS_DATA, -1, plain, n);
}

/* The context is complete: ask for our protection level. */
static int ask_level(struct sfy_engine *e)
{
	uint8_t level = (uint8_t)e->gss->asked;
	e->gss->phase = PH_LEVEL;
	e->step = "gssapi protection";
	return queue_wrapped(e, S5_GSS_PROTECTION, 0, &level, 1);
}

/* One call of gss_init_sec_context with the server's token (NULL first):
 * our token, if any, is queued.  1 more to come, 0 complete, -1 failed. */
static int context_step(struct sfy_engine *e, const uint8_t *tok, size_t n)
{
	struct sfy_gss_eng *s = e->gss;
	uint8_t out[S5_GSS_TOKEN_MAX];
	size_t out_len;
	int kinit;
	int r = sfy_gss_step(s->g, tok, n, out, sizeof out, &out_len, &kinit);
	if (r < 0)
		return gss_fail(e, errno, sfy_gss_error(s->g));
	if (out_len) {
		s->tokens++;
		if (queue_frame(e, S5_GSS_CONTEXT, out, out_len) < 0)
			return -1;
	}
	if (r == 0)
		return ask_level(e) < 0 ? -1 : 1; /* the server's level is still to come */
	if (!out_len) /* the mechanism wants more but gave nothing to send */
		return gss_fail(e, EPROTO, "gssapi context (no token to send)");
	return 1;
}

int sfy_gss_begin(struct sfy_engine *e)
{
	char err[SFY_GSS_ERR_MAX];
	if (e->out_off != e->out_len) { /* the greeting went out before the choice came */
		sfy_engine_fail(e, EPROTO, "gssapi");
		return -1;
	}
	e->out_off = e->out_len = 0;
	e->gss = calloc(1, sizeof *e->gss);
	if (!e->gss) {
		sfy_engine_fail(e, ENOMEM, "gssapi");
		return -1;
	}
	e->gss->asked = e->hop->gss_level ? e->hop->gss_level : SFY_GSS_CONFIDENTIALITY;
	e->gss->g = sfy_gss_new(e->hop->gss_service ? e->hop->gss_service : "", e->gss->asked, err, sizeof err);
	if (!e->gss->g)
		return gss_fail(e, EACCES, err);
	e->step = "gssapi context";
	return context_step(e, NULL, 0) < 0 ? -1 : 0;
}

int sfy_gss_msg_size(const uint8_t *buf, size_t len)
{
	int n = s5_gss_frame_size(buf, len);
	return n < 0 ? -1 : n;
}

/* The sub-negotiation's answer: one octet, a level at least ours. */
static int got_level(struct sfy_engine *e, const uint8_t *tok, size_t n)
{
	struct sfy_gss_eng *s = e->gss;
	uint8_t level[S5_GSS_TOKEN_MAX];
	long got = sfy_gss_unwrap(s->g, 0, tok, n, level, sizeof level, NULL, 0);
	if (got < 0)
		return gss_fail(e, EPROTO, sfy_gss_error(s->g));
	if (got != 1)
		return gss_fail(e, EPROTO, "gssapi protection (not one octet)");
	if (level[0] < s->asked || level[0] > SFY_GSS_CONFIDENTIALITY) {
		snprintf(s->step, sizeof s->step, "gssapi protection (the proxy chose level %u, we require %s)", level[0],
			 s->asked == SFY_GSS_CONFIDENTIALITY ? "confidentiality" : "integrity");
		sfy_engine_fail(e, EACCES, s->step);
		return -1;
	}
	sfy_gss_set_level(s->g, level[0]);
	s->phase = PH_PROTECTED;
	return 0;
}

int sfy_gss_input(struct sfy_engine *e, const uint8_t *msg, size_t len)
{
	struct sfy_gss_eng *s = e->gss;
	if (len == 2 && msg[1] == S5_GSS_ABORT)
		return gss_fail(e, EACCES, s->phase == PH_CONTEXT
						   ? "gssapi context (the proxy aborted: it refused our ticket or the service name)"
						   : "gssapi protection (the proxy aborted)");
	uint8_t want = s->phase == PH_CONTEXT ? S5_GSS_CONTEXT : S5_GSS_PROTECTION;
	if (msg[1] != want)
		return gss_fail(e, EPROTO, s->phase == PH_CONTEXT ? "gssapi context (unexpected message type)"
								  : "gssapi protection (unexpected message type)");
	if (s->phase == PH_CONTEXT) {
		/* Kerberos needs one round trip; a server that never lets the
		 * context complete is not followed for ever. */
		if (++s->tokens > SFY_GSS_MAX_TOKENS)
			return gss_fail(e, EPROTO, "gssapi context (too many tokens)");
		return context_step(e, msg + S5_GSS_HEADER, len - S5_GSS_HEADER);
	}
	return got_level(e, msg + S5_GSS_HEADER, len - S5_GSS_HEADER);
}

long sfy_gss_unwrap_frame(struct sfy_engine *e, const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	struct sfy_gss_eng *s = e->gss;
	if (len == 2 && msg[1] == S5_GSS_ABORT)
		return gss_fail(e, ECONNRESET, "reply (the proxy aborted)");
	if (msg[1] != S5_GSS_DATA)
		return gss_fail(e, EPROTO, "reply (not an encapsulated message)");
	long n = sfy_gss_unwrap(s->g, -1, msg + S5_GSS_HEADER, len - S5_GSS_HEADER, out, cap, NULL, 0);
	if (n < 0) {
		char what[SFY_GSS_ERR_MAX];
		snprintf(what, sizeof what, "reply (%s)", sfy_gss_error(s->g));
		return gss_fail(e, EPROTO, what);
	}
	return n;
}

void sfy_engine_release(struct sfy_engine *e)
{
	if (!e->gss)
		return;
	if (e->step == e->gss->step) /* it would dangle */
		e->step = "gssapi";
	sfy_gss_free(e->gss->g);
	free(e->gss);
	e->gss = NULL;
}

struct sfy_gss *sfy_engine_take_gss(struct sfy_engine *e)
{
	if (!e->gss)
		return NULL;
	struct sfy_gss *g = e->gss->g;
	e->gss->g = NULL;
	sfy_engine_release(e);
	return g;
}

int sfy_engine_use_gss(struct sfy_engine *e, struct sfy_gss *g)
{
	struct sfy_gss_eng *s = calloc(1, sizeof *s);
	if (!s) {
		errno = ENOMEM;
		return -1;
	}
	s->g = g;
	s->phase = PH_PROTECTED;
	s->asked = sfy_gss_level(g);
	e->gss = s;
	if (e->state == SFY_ENG_REPLY && e->in_len == 0)
		e->need = 2; /* a frame's head (sfy_engine_start_reply asked for 10) */
	return 0;
}

int sfy_engine_gss_level(const struct sfy_engine *e, int *level)
{
	if (!e->gss || e->gss->phase != PH_PROTECTED)
		return 0;
	*level = sfy_gss_level(e->gss->g);
	return 1;
}
