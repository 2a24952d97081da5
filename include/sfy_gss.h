/* GSS-API for RFC 1961 (shim/gss.c): libgssapi_krb5.so.2 loaded with
 * dlopen() the first time a hop with gssapi = yes needs it, never before,
 * so the library has no link-time dependency on Kerberos.  One struct
 * sfy_gss is one security context, used by one thread at a time: the
 * driver that negotiates it, then the relay thread (shim/relay.c).
 *
 * Error texts are the GSS major and minor status messages; no key,
 * ticket or token byte ever goes into one. */
#ifndef SFY_GSS_H
#define SFY_GSS_H

#include <stddef.h>
#include <stdint.h>

/* RFC 1961 section 4.3: the protection levels. */
#define SFY_GSS_INTEGRITY 1
#define SFY_GSS_CONFIDENTIALITY 2

/* Tokens are at most S5_GSS_TOKEN_MAX bytes, the largest a frame carries
 * (include/socks5_codec.h). */
#define SFY_GSS_ERR_MAX 320

struct sfy_gss;

/* Load the library: 0, or -1 with a reason in why. */
int sfy_gss_load(char *why, size_t cap);

/* A context for service ("rcmd@proxy.example.com", a host-based service
 * name) at level.  NULL with a reason in err. */
struct sfy_gss *sfy_gss_new(const char *service, int level, char *err, size_t cap);

/* One step of context establishment: in is the server's token (NULL, 0
 * the first time).  A token to send goes to out (cap bytes), its length in
 * *out_len (0: nothing to send).  Returns 0 when the context is complete,
 * 1 when a server token is expected, -1 on failure: errno EACCES (no or
 * expired credentials: *kinit is set; the server refused; the service is
 * unknown) or EPROTO, with a reason in sfy_gss_error(). */
int sfy_gss_step(struct sfy_gss *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len,
		 int *kinit);

/* gss_wrap()/gss_unwrap() of one message.  conf: -1 at the context's
 * level, 0 integrity only (the protection sub-negotiation's octet, RFC 1961
 * section 4.4).  unwrap refuses a token that is not encrypted when the
 * level is confidentiality (a downgrade).  Length, or -1 with a reason in
 * err (and sfy_gss_error()). */
long sfy_gss_wrap(struct sfy_gss *g, int conf, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err,
		  size_t errcap);
long sfy_gss_unwrap(struct sfy_gss *g, int conf, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err,
		    size_t errcap);

/* The largest plain chunk whose wrapped token fits in a frame. */
size_t sfy_gss_max_input(struct sfy_gss *g);
int sfy_gss_level(const struct sfy_gss *g);
/* The chosen level changes after the sub-negotiation (the server may ask
 * for more protection than we did). */
void sfy_gss_set_level(struct sfy_gss *g, int level);
const char *sfy_gss_error(const struct sfy_gss *g);
void sfy_gss_free(struct sfy_gss *g);

/* What the library's last destructor does at exit, before Kerberos's own
 * destructors run: wait (at most a second) for the GSS calls in progress,
 * then refuse every later one.  new, step, wrap and unwrap then fail with
 * ESHUTDOWN, and free releases only our memory. */
void sfy_gss_shutdown(void);

/* Non-zero while this thread is inside the GSS library (context
 * establishment): the hooks let libkrb5's own traffic to the KDC, as
 * krb5.conf gives it, go straight to libc. */
extern __thread int sfy_gss_native;

/* A BIND's context between its first reply and the second, which accept()
 * reads later: kept by fd number.  park: 0, or -1 (ENOBUFS).  parked: the
 * context, still owned by the table.  unpark: the context, now the
 * caller's (NULL when none). */
int sfy_gss_park(int fd, struct sfy_gss *g);
struct sfy_gss *sfy_gss_parked(int fd);
struct sfy_gss *sfy_gss_unpark(int fd);

#endif
