/* The SOCKS5 client as a state machine that does no I/O (shim/engine.c).
 *
 * A driver asks the engine what it wants (sfy_engine_want), moves bytes
 * between the socket and the engine (sfy_engine_sent, sfy_engine_feed) and
 * waits in its own way: the blocking driver in poll() with a deadline
 * (shim/socks.c), the event driver from the program's own waits
 * (shim/async.c).  The engine never reads past the message it expects, so
 * data that follows a reply stays in the socket for the program.  The
 * same contract holds for every hop type (SOCKS5, SOCKS4/4a, HTTP
 * CONNECT); a chain is several engines run in turn on one fd
 * (include/sfy_chain.h). */
#ifndef SFY_ENGINE_H
#define SFY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "socks5_codec.h"

enum sfy_want {
	SFY_WANT_WRITE,  /* out/out_len: bytes to send */
	SFY_WANT_READ,   /* read_max: most bytes the engine may take now */
	SFY_WANT_DONE,   /* the (latest) reply succeeded: see sfy_engine_reply */
	SFY_WANT_FAILED, /* see sfy_engine_errno, ->step, ->rep */
};

/* The protocol a hop speaks.  SOCKS5 is 0 so that a zero-initialised hop
 * stays what every hop was before chains (issue 14). */
enum sfy_hop_type {
	SFY_HOP_SOCKS5 = 0, /* RFC 1928/1929 (shim/engine.c) */
	SFY_HOP_SOCKS4,     /* IPv4 destinations only (shim/engine_s4.c) */
	SFY_HOP_SOCKS4A,    /* SOCKS4 that can send a name */
	SFY_HOP_HTTP,       /* HTTP CONNECT, Basic auth (shim/engine_http.c) */
};

/* One proxy as the engine sees it: how to authenticate and how to talk.
 * Passed explicitly to every engine; nothing is read from a global. */
struct sfy_hop {
	const char *user; /* NULL or "": no username/password offered
			   * (SOCKS4: the USERID, empty when NULL) */
	const char *pass;
	int pipeline;     /* greeting, auth and request in one write (SOCKS5) */
	enum sfy_hop_type type;
	/* RFC 1961: offer GSSAPI first (SOCKS5 only; 2: GSSAPI only), for this host-based
	 * service name ("rcmd@proxy.example.com") at this protection level
	 * (SFY_GSS_INTEGRITY or SFY_GSS_CONFIDENTIALITY, include/sfy_gss.h). */
	int gssapi;
	const char *gss_service;
	int gss_level;
};

enum sfy_eng_state {
	SFY_ENG_METHOD,      /* waiting for the method choice */
	SFY_ENG_AUTH,        /* the chosen method's own exchange */
	SFY_ENG_REPLY,       /* waiting for a reply to the request */
	SFY_ENG_DONE,
	SFY_ENG_FAILED,
};

struct sfy_engine;
struct sfy_gss;
struct sfy_gss_eng; /* the GSSAPI method's buffers and context (shim/engine_gss.c) */

/* An authentication method: one entry of the engine's table.  GSSAPI
 * (RFC 1961) is one more entry, with a token loop in input(). */
struct sfy_auth_method {
	uint8_t id;
	const char *name;
	/* The hop can use this method (credentials present). */
	int (*usable)(const struct sfy_hop *hop);
	/* Queue the method's first message, if it has one (sfy_engine_queue).
	 * 0, or -1 with the failure recorded (sfy_engine_fail). */
	int (*begin)(struct sfy_engine *e);
	/* How many bytes of a message of the method's to read first: all of
	 * it when its size is fixed, else enough for msg_size to tell. */
	size_t msg_first;
	/* Bytes of the next message from the proxy given len bytes so far:
	 * 0 while unknown, -1 when malformed.  NULL: the method has no
	 * messages of its own (no auth). */
	int (*msg_size)(const uint8_t *buf, size_t len);
	/* A whole message arrived: 0 the method is done, 1 it expects more,
	 * -1 failed (recorded with sfy_engine_fail). */
	int (*input)(struct sfy_engine *e, const uint8_t *msg, size_t len);
};

/* The longest HTTP CONNECT request: "CONNECT " name:port " HTTP/1.1" CRLF
 * "Host: " name:port CRLF "Proxy-Authorization: Basic " base64 of
 * user:pass (255 + 1 + 255 bytes: 684) CRLF CRLF, a name:port being at
 * most 255 + 6 bytes: 1264. */
#define SFY_HTTP_REQUEST_MAX 1280
#define SFY_S5_OUT_MAX (S5_GREETING_MAX + S5_AUTH_REQUEST_MAX + S5_REQUEST_MAX)
#define SFY_ENG_OUT_MAX (SFY_S5_OUT_MAX > SFY_HTTP_REQUEST_MAX ? SFY_S5_OUT_MAX : SFY_HTTP_REQUEST_MAX)
/* read_max never exceeds this, for every hop type: drivers read into a
 * buffer of this size. */
#define SFY_ENG_IN_MAX S5_REPLY_MAX
/* An HTTP response head longer than this is refused (EPROTO). */
#define SFY_HTTP_HEAD_MAX 8192

struct sfy_engine {
	enum sfy_eng_state state;
	const struct sfy_hop *hop;
	const struct sfy_auth_method *method;
	uint8_t cmd;
	struct s5_addr dst;
	uint8_t out[SFY_ENG_OUT_MAX];
	size_t out_len, out_off;
	uint8_t in[SFY_ENG_IN_MAX];
	size_t in_len;  /* bytes of the current incoming message so far */
	size_t need;    /* its size as far as known */
	int request_sent_early; /* pipelined: the request went with the greeting */
	int err;        /* errno once FAILED */
	const char *step; /* where it is (or failed), for log lines; a driver
			   * may name its own step (the TCP connect) meanwhile */
	int rep;        /* reply code, -1 until a reply arrived: SOCKS5 REP,
			 * SOCKS4 CD (90-93), HTTP status (200, 407...) */
	int replies;    /* replies received (BIND has two) */
	struct s5_reply reply; /* SOCKS4: BND from DSTIP/DSTPORT; HTTP: bnd
				* zero (atyp 0), rep 0 on success */
	enum sfy_hop_type type;
	/* GSSAPI (RFC 1961) only: heap state the engine owns, so that copying
	 * an engine copies the pointer, never a buffer pointing into itself.
	 * Freed by sfy_engine_release(); see sfy_engine_take_gss(). */
	struct sfy_gss_eng *gss;
	/* HTTP only: where the response head is (shim/engine_http.c). */
	struct {
		uint8_t eol;    /* 0 in a line, 1 after CR, 2 after CRLF, 3 after CRLF CR */
		uint16_t line;  /* lines of this head completed */
		size_t total;   /* head bytes read, interim (1xx) heads included */
	} http;
};

/* The table of methods, in order of preference; n set to its size. */
const struct sfy_auth_method *sfy_auth_methods(size_t *n);

/* Start an exchange for cmd/dst over hop (which must outlive the engine).
 * The greeting (and, pipelined, the auth message and the request) is
 * queued; the engine is FAILED (EINVAL) when something cannot be encoded. */
void sfy_engine_start(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t cmd, const struct s5_addr *dst);
enum sfy_want sfy_engine_want(struct sfy_engine *e, const uint8_t **out, size_t *out_len, size_t *read_max);
/* n bytes of the wanted output went to the socket. */
void sfy_engine_sent(struct sfy_engine *e, size_t n);
/* Give the engine bytes read from the socket: returns how many it took (it
 * never takes more than read_max said). */
size_t sfy_engine_feed(struct sfy_engine *e, const uint8_t *in, size_t n);
/* The proxy closed the connection (EOF): ECONNRESET before the first byte
 * of a message, EPROTO in the middle of one. */
void sfy_engine_eof(struct sfy_engine *e);
/* A socket error or a timeout of the driver's. */
void sfy_engine_fail(struct sfy_engine *e, int err, const char *step);
/* After DONE for BIND's first reply: expect the second. */
void sfy_engine_next_reply(struct sfy_engine *e);
/* An engine that only waits for a later reply of an exchange driven
 * before (BIND's second reply, read when the program accepts). */
void sfy_engine_start_reply(struct sfy_engine *e, uint8_t cmd);
/* The same for a hop of any type: a SOCKS4 hop's second reply is 8 bytes. */
void sfy_engine_start_reply_hop(struct sfy_engine *e, const struct sfy_hop *hop, uint8_t cmd);
/* Free what a GSSAPI exchange holds (nothing for other methods); the
 * engine may then be started again.  Every driver calls it when it is done
 * with an engine, whatever the outcome. */
void sfy_engine_release(struct sfy_engine *e);
/* The protected session's context, now the caller's (NULL when the hop did
 * not use GSSAPI): after DONE, for the relay (CONNECT, BIND's stream) or to
 * keep for BIND's second reply.  The engine no longer holds it. */
struct sfy_gss *sfy_engine_take_gss(struct sfy_engine *e);
/* An engine made by sfy_engine_start_reply* for a session protected by g:
 * the reply is read as a wrapped frame.  The engine owns g until taken
 * back (sfy_engine_take_gss) or released.  -1 (ENOMEM) frees nothing. */
int sfy_engine_use_gss(struct sfy_engine *e, struct sfy_gss *g);
/* 1 when a GSSAPI context was established (for --check): its level in
 * *level. */
int sfy_engine_gss_level(const struct sfy_engine *e, int *level);

/* Text for e->rep as the hop's protocol means it ("connection refused",
 * "request rejected or failed", "proxy authentication required"). */
const char *sfy_engine_rep_text(const struct sfy_engine *e);
/* Name of a hop type for log lines: "socks5", "socks4", "socks4a", "http". */
const char *sfy_hop_type_name(enum sfy_hop_type t);
/* Queue bytes for the proxy (methods use this); -1 when they do not fit. */
int sfy_engine_queue(struct sfy_engine *e, const uint8_t *buf, size_t len);
/* 1 when no byte of the message the engine waits for has arrived. */
static inline int sfy_engine_at_message_start(const struct sfy_engine *e)
{
	return e->in_len == 0;
}

#endif
