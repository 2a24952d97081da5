/* What the hop engines share inside the engine (shim/engine.c,
 * shim/engine_s4.c, shim/engine_http.c); not for drivers. */
#ifndef SFY_ENGINE_INT_H
#define SFY_ENGINE_INT_H

#include "sfy_engine.h"

/* Wait for a message of at least first bytes in state. */
void sfy_engine_expect(struct sfy_engine *e, enum sfy_eng_state state, size_t first, const char *step);

/* SOCKS4 and 4a (shim/engine_s4.c). */
void sfy_s4_start(struct sfy_engine *e, uint8_t cmd, const struct s5_addr *dst);
size_t sfy_s4_feed(struct sfy_engine *e, const uint8_t *in, size_t n);
void sfy_s4_expect_reply(struct sfy_engine *e, const char *step);
const char *sfy_s4_rep_text(int cd);

/* HTTP CONNECT (shim/engine_http.c). */
void sfy_http_start(struct sfy_engine *e, uint8_t cmd, const struct s5_addr *dst);
size_t sfy_http_feed(struct sfy_engine *e, const uint8_t *in, size_t n);
const char *sfy_http_status_text(int status);

/* GSSAPI, RFC 1961 (shim/engine_gss.c): the method's table entry and what
 * the request and replies need once the session is protected. */
int sfy_gss_usable(const struct sfy_hop *hop);
int sfy_gss_begin(struct sfy_engine *e);
int sfy_gss_msg_size(const uint8_t *buf, size_t len);
int sfy_gss_input(struct sfy_engine *e, const uint8_t *msg, size_t len);
/* "gssapi context" or "gssapi protection": the phase, for log lines. */
const char *sfy_gss_phase_name(const struct sfy_engine *e);
/* The session is protected (context and level agreed). */
int sfy_gss_protected(const struct sfy_engine *e);
/* Wrap plain into a data frame queued for the proxy: 0 or -1 (failed). */
int sfy_gss_queue_wrapped(struct sfy_engine *e, const uint8_t *plain, size_t n);
/* Unwrap a data frame (msg, len) into out: its length, or -1 (failed). */
long sfy_gss_unwrap_frame(struct sfy_engine *e, const uint8_t *msg, size_t len, uint8_t *out, size_t cap);
/* Where the engine's messages go and come from; their size in *cap
 * (cap may be NULL). */
uint8_t *sfy_eng_out_buf(struct sfy_engine *e, size_t *cap);
uint8_t *sfy_eng_in_buf(const struct sfy_engine *e, size_t *cap);

#endif
