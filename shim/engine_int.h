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

#endif
