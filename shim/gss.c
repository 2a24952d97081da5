/* GSS-API through dlopen() (include/sfy_gss.h).  The types come from
 * <gssapi/gssapi.h> (libkrb5-dev); every function is looked up in
 * libgssapi_krb5.so.2 at the first use, so a program that never meets a
 * GSSAPI hop never loads Kerberos. */
#include "sfy_gss.h"
#include "socks5_codec.h"

#include <dlfcn.h>
#include <errno.h>
#include <gssapi/gssapi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KRB5 minor codes that mean "no usable ticket" (krb5/krb5.h, whose other
 * declarations we do not want). */
#define K_CC_NOTFOUND (-1765328243L)
#define K_FCC_NOFILE (-1765328189L)
#define K_TKT_EXPIRED (-1765328352L)
#define K_CC_NOSUPP (-1765328137L)

__thread int sfy_gss_native;

static struct {
	OM_uint32 (*import_name)(OM_uint32 *, gss_buffer_t, gss_OID, gss_name_t *);
	OM_uint32 (*init_sec_context)(OM_uint32 *, gss_cred_id_t, gss_ctx_id_t *, gss_name_t, gss_OID, OM_uint32,
				      OM_uint32, gss_channel_bindings_t, gss_buffer_t, gss_OID *, gss_buffer_t,
				      OM_uint32 *, OM_uint32 *);
	OM_uint32 (*wrap)(OM_uint32 *, gss_ctx_id_t, int, gss_qop_t, gss_buffer_t, int *, gss_buffer_t);
	OM_uint32 (*unwrap)(OM_uint32 *, gss_ctx_id_t, gss_buffer_t, gss_buffer_t, int *, gss_qop_t *);
	OM_uint32 (*wrap_size_limit)(OM_uint32 *, gss_ctx_id_t, int, gss_qop_t, OM_uint32, OM_uint32 *);
	OM_uint32 (*delete_sec_context)(OM_uint32 *, gss_ctx_id_t *, gss_buffer_t);
	OM_uint32 (*release_name)(OM_uint32 *, gss_name_t *);
	OM_uint32 (*release_buffer)(OM_uint32 *, gss_buffer_t);
	OM_uint32 (*display_status)(OM_uint32 *, OM_uint32, int, gss_OID, OM_uint32 *, gss_buffer_t);
} fn;

/* Exit.  The dynamic linker runs Kerberos's destructors after ours (it
 * was loaded later), and they destroy its mutexes: a GSS call made after
 * that, by the relay thread or another of the program's threads, fails an
 * assertion in libkrb5 and aborts the program.  So every call goes through
 * a gate, and our last destructor closes it: it waits (bounded) for the
 * calls in progress, and any later one fails cleanly.  The relay's own
 * destructor (shim/relay.c, default priority) runs before this one, so the
 * program's last bytes are wrapped and sent first. */
#define EXIT_WAIT_MS 1000
static int gate_users; /* GSS calls in progress */
static int gate_closed;

static void gate_leave(void)
{
	__atomic_sub_fetch(&gate_users, 1, __ATOMIC_SEQ_CST);
}

__attribute__((destructor(200))) static void gate_close(void)
{
	int saved = errno;
	__atomic_store_n(&gate_closed, 1, __ATOMIC_SEQ_CST);
	for (int ms = 0; ms < EXIT_WAIT_MS && __atomic_load_n(&gate_users, __ATOMIC_SEQ_CST); ms++) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	errno = saved;
}

/* A BIND's context between its two replies, kept by fd number. */
#define PARK_MAX 64
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int fd;
	struct sfy_gss *g;
} parked[PARK_MAX];

/* fork(): the child has one thread, never inside a GSS call, and must not
 * inherit park_lock held by a thread it does not have (it keeps the
 * parent's BIND fds, and their contexts, as copies).  Registered at load:
 * before it, nothing is parked and the lock is never taken. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&park_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&park_lock);
}

static void fork_child(void)
{
	__atomic_store_n(&gate_users, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&park_lock);
}

void sfy_gss_shutdown(void)
{
	gate_close();
}

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[200];
static int loaded;

#define LIBNAME "libgssapi_krb5.so.2"

static void load(void)
{
	void *h = dlopen(LIBNAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_error, sizeof load_error, "cannot load %s (install libgssapi-krb5-2)", LIBNAME);
		return;
	}
	struct {
		const char *name;
		void **slot;
	} want[] = {
		{"gss_import_name", (void **)&fn.import_name},
		{"gss_init_sec_context", (void **)&fn.init_sec_context},
		{"gss_wrap", (void **)&fn.wrap},
		{"gss_unwrap", (void **)&fn.unwrap},
		{"gss_wrap_size_limit", (void **)&fn.wrap_size_limit},
		{"gss_delete_sec_context", (void **)&fn.delete_sec_context},
		{"gss_release_name", (void **)&fn.release_name},
		{"gss_release_buffer", (void **)&fn.release_buffer},
		{"gss_display_status", (void **)&fn.display_status},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		*want[i].slot = dlsym(h, want[i].name);
		if (!*want[i].slot) {
			snprintf(load_error, sizeof load_error, "%s has no %s", LIBNAME, want[i].name);
			return; /* the handle stays: other symbols may be in use elsewhere */
		}
	}
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	__atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

int sfy_gss_load(char *why, size_t cap)
{
	pthread_once(&load_once, load);
	if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
		return 0;
	if (why && cap)
		snprintf(why, cap, "%s", load_error);
	return -1;
}

struct sfy_gss {
	gss_ctx_id_t ctx;
	gss_name_t target;
	int level;
	int complete;
	size_t max_in;
	char service[256];
	char err[SFY_GSS_ERR_MAX];
};

#define CLOSED_TEXT "GSS-API is shut down: the program is exiting"

/* 0: the caller may call the GSS library, then gate_leave().  -1: the
 * program is exiting (errno ESHUTDOWN, the reason in g->err). */
static int gate_enter(struct sfy_gss *g)
{
	__atomic_add_fetch(&gate_users, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&gate_closed, __ATOMIC_SEQ_CST))
		return 0;
	gate_leave();
	if (g)
		snprintf(g->err, sizeof g->err, "%s", CLOSED_TEXT);
	errno = ESHUTDOWN;
	return -1;
}

/* "what: major text: minor text" into g->err (and err when given). */
static void status_text(struct sfy_gss *g, const char *what, OM_uint32 major, OM_uint32 minor)
{
	size_t used = (size_t)snprintf(g->err, sizeof g->err, "%s", what);
	for (int kind = 0; kind < 2; kind++) {
		OM_uint32 code = kind ? minor : major, more = 0, m;
		if (kind && !minor)
			break;
		do {
			gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
			if (GSS_ERROR(fn.display_status(&m, code, kind ? GSS_C_MECH_CODE : GSS_C_GSS_CODE, GSS_C_NO_OID, &more,
							&b)))
				break;
			if (used < sizeof g->err)
				used += (size_t)snprintf(g->err + used, sizeof g->err - used, ": %.*s", (int)b.length,
							 (const char *)b.value);
			fn.release_buffer(&m, &b);
		} while (more);
	}
}

struct sfy_gss *sfy_gss_new(const char *service, int level, char *err, size_t cap)
{
	if (sfy_gss_load(err, cap) < 0)
		return NULL;
	struct sfy_gss *g = calloc(1, sizeof *g);
	if (!g) {
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	g->ctx = GSS_C_NO_CONTEXT;
	g->level = level;
	snprintf(g->service, sizeof g->service, "%s", service);
	/* GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4 (RFC 2743). */
	static uint8_t hbs[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04};
	gss_OID_desc oid = {sizeof hbs, hbs};
	gss_buffer_desc name = {strlen(g->service), g->service};
	if (gate_enter(g) < 0) {
		snprintf(err, cap, "%s", g->err);
		free(g);
		return NULL;
	}
	OM_uint32 minor, major = fn.import_name(&minor, &name, &oid, &g->target);
	if (GSS_ERROR(major))
		status_text(g, "service name", major, minor);
	gate_leave();
	if (GSS_ERROR(major)) {
		snprintf(err, cap, "%s", g->err);
		free(g);
		errno = EACCES;
		return NULL;
	}
	return g;
}

static int no_ticket(OM_uint32 major, OM_uint32 minor)
{
	long m = (long)(int32_t)minor;
	return GSS_ROUTINE_ERROR(major) == GSS_S_NO_CRED || GSS_ROUTINE_ERROR(major) == GSS_S_CREDENTIALS_EXPIRED ||
	       m == K_CC_NOTFOUND || m == K_FCC_NOFILE || m == K_TKT_EXPIRED || m == K_CC_NOSUPP;
}

static int step(struct sfy_gss *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len,
		int *kinit)
{
	gss_buffer_desc inb = {in_len, (void *)in}, outb = GSS_C_EMPTY_BUFFER;
	OM_uint32 minor = 0, flags = 0;
	/* RFC 1961 section 3.2 asks for delegation too: we never hand the
	 * user's ticket-granting ticket to a proxy (README, GSSAPI). */
	OM_uint32 req = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG;
	*out_len = 0;
	*kinit = 0;
	sfy_gss_native++;
	OM_uint32 major = fn.init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &g->ctx, g->target, GSS_C_NO_OID, req, 0,
					      GSS_C_NO_CHANNEL_BINDINGS, in ? &inb : GSS_C_NO_BUFFER, NULL, &outb,
					      &flags, NULL);
	sfy_gss_native--;
	if (GSS_ERROR(major)) {
		char what[SFY_GSS_ERR_MAX];
		*kinit = no_ticket(major, minor);
		snprintf(what, sizeof what, "gssapi context for %.200s%s", g->service,
			 *kinit ? " (no valid Kerberos ticket: run kinit)" : "");
		status_text(g, what, major, minor);
		if (outb.length)
			fn.release_buffer(&minor, &outb);
		errno = EACCES;
		return -1;
	}
	int rc = 0;
	if (outb.length > cap || outb.length > S5_GSS_TOKEN_MAX) {
		snprintf(g->err, sizeof g->err, "gssapi context for %.200s: token of %zu bytes too long for a frame",
			 g->service, (size_t)outb.length);
		errno = EMSGSIZE;
		rc = -1;
	} else if (outb.length) {
		memcpy(out, outb.value, outb.length);
		*out_len = outb.length;
	}
	if (outb.length)
		fn.release_buffer(&minor, &outb);
	if (rc < 0)
		return -1;
	if (major & GSS_S_CONTINUE_NEEDED)
		return 1;
	if (!(flags & GSS_C_INTEG_FLAG) || (g->level == SFY_GSS_CONFIDENTIALITY && !(flags & GSS_C_CONF_FLAG))) {
		snprintf(g->err, sizeof g->err, "gssapi context for %.200s: the mechanism offers no %s", g->service,
			 (flags & GSS_C_INTEG_FLAG) ? "confidentiality" : "integrity");
		errno = EACCES;
		return -1;
	}
	g->complete = 1;
	return 0;
}

int sfy_gss_step(struct sfy_gss *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len,
		 int *kinit)
{
	*out_len = 0;
	*kinit = 0;
	if (gate_enter(g) < 0)
		return -1;
	int rc = step(g, in, in_len, out, cap, out_len, kinit), err = errno;
	gate_leave();
	errno = err;
	return rc;
}

static int wanted_conf(const struct sfy_gss *g, int conf)
{
	return conf < 0 ? g->level == SFY_GSS_CONFIDENTIALITY : conf;
}

static long fail_msg(struct sfy_gss *g, char *err, size_t errcap)
{
	if (err && errcap)
		snprintf(err, errcap, "%s", g->err);
	errno = EPROTO;
	return -1;
}

static long wrap(struct sfy_gss *g, int conf, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err,
		 size_t errcap)
{
	int want = wanted_conf(g, conf), got = 0;
	gss_buffer_desc inb = {n, (void *)in}, outb = GSS_C_EMPTY_BUFFER;
	OM_uint32 minor, major = fn.wrap(&minor, g->ctx, want, GSS_C_QOP_DEFAULT, &inb, &got, &outb);
	if (GSS_ERROR(major)) {
		status_text(g, "gss_wrap", major, minor);
		return fail_msg(g, err, errcap);
	}
	long len = (long)outb.length;
	if (want && !got)
		snprintf(g->err, sizeof g->err, "gss_wrap: confidentiality not applied"), len = -1;
	else if (outb.length > cap || outb.length > S5_GSS_TOKEN_MAX)
		snprintf(g->err, sizeof g->err, "gss_wrap: token of %zu bytes too long", (size_t)outb.length), len = -1;
	else
		memcpy(out, outb.value, outb.length);
	fn.release_buffer(&minor, &outb);
	return len < 0 ? fail_msg(g, err, errcap) : len;
}

static long unwrap(struct sfy_gss *g, int conf, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err,
		   size_t errcap)
{
	int want = wanted_conf(g, conf), got = 0;
	gss_qop_t qop;
	gss_buffer_desc inb = {n, (void *)tok}, outb = GSS_C_EMPTY_BUFFER;
	OM_uint32 minor, major = fn.unwrap(&minor, g->ctx, &inb, &outb, &got, &qop);
	if (GSS_ERROR(major)) {
		status_text(g, "gss_unwrap (token failed its check)", major, minor);
		return fail_msg(g, err, errcap);
	}
	long len = (long)outb.length;
	if (want && !got)
		snprintf(g->err, sizeof g->err, "gss_unwrap: the proxy sent an unencrypted token at confidentiality"),
			len = -1;
	else if (outb.length > cap)
		snprintf(g->err, sizeof g->err, "gss_unwrap: message of %zu bytes too long", (size_t)outb.length), len = -1;
	else
		memcpy(out, outb.value, outb.length);
	if (outb.length)
		memset(outb.value, 0, outb.length); /* plain data: not left in freed memory */
	fn.release_buffer(&minor, &outb);
	return len < 0 ? fail_msg(g, err, errcap) : len;
}

typedef long (*msg_op)(struct sfy_gss *, int, const uint8_t *, size_t, uint8_t *, size_t, char *, size_t);

/* wrap or unwrap through the gate. */
static long gated(msg_op op, struct sfy_gss *g, int conf, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
		  char *err, size_t errcap)
{
	if (gate_enter(g) < 0) {
		fail_msg(g, err, errcap);
		errno = ESHUTDOWN;
		return -1;
	}
	long rc = op(g, conf, in, n, out, cap, err, errcap);
	int e = errno;
	gate_leave();
	errno = e;
	return rc;
}

long sfy_gss_wrap(struct sfy_gss *g, int conf, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err,
		  size_t errcap)
{
	return gated(wrap, g, conf, in, n, out, cap, err, errcap);
}

long sfy_gss_unwrap(struct sfy_gss *g, int conf, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err,
		    size_t errcap)
{
	return gated(unwrap, g, conf, tok, n, out, cap, err, errcap);
}

size_t sfy_gss_max_input(struct sfy_gss *g)
{
	if (g->max_in)
		return g->max_in;
	OM_uint32 minor, max = 0, major = GSS_S_FAILURE;
	if (gate_enter(NULL) == 0) {
		major = fn.wrap_size_limit(&minor, g->ctx, g->level == SFY_GSS_CONFIDENTIALITY, GSS_C_QOP_DEFAULT,
					   S5_GSS_TOKEN_MAX, &max);
		gate_leave();
	}
	/* A mechanism that cannot say: a size that fits with room to spare
	 * for any Kerberos enctype's header, padding and checksum. */
	g->max_in = GSS_ERROR(major) || max == 0 || max > S5_GSS_TOKEN_MAX ? 65000 : max;
	return g->max_in;
}

int sfy_gss_level(const struct sfy_gss *g)
{
	return g->level;
}

void sfy_gss_set_level(struct sfy_gss *g, int level)
{
	g->level = level;
	g->max_in = 0;
}

const char *sfy_gss_error(const struct sfy_gss *g)
{
	return g->err;
}

void sfy_gss_free(struct sfy_gss *g)
{
	if (!g)
		return;
	OM_uint32 minor;
	int saved = errno;
	/* At exit, once the gate is closed, Kerberos's part is left to the
	 * process's end. */
	if (gate_enter(NULL) == 0) {
		if (g->ctx != GSS_C_NO_CONTEXT)
			fn.delete_sec_context(&minor, &g->ctx, GSS_C_NO_BUFFER);
		if (g->target)
			fn.release_name(&minor, &g->target);
		gate_leave();
	}
	free(g);
	errno = saved;
}

/* ------------------------------------------------------------ BIND */

int sfy_gss_park(int fd, struct sfy_gss *g)
{
	struct sfy_gss *old = sfy_gss_unpark(fd);
	sfy_gss_free(old);
	pthread_mutex_lock(&park_lock);
	int rc = -1;
	for (int i = 0; i < PARK_MAX && rc < 0; i++)
		if (!parked[i].g)
			parked[i].fd = fd, parked[i].g = g, rc = 0;
	pthread_mutex_unlock(&park_lock);
	if (rc < 0)
		errno = ENOBUFS;
	return rc;
}

/* The context parked for fd; take: the table forgets it. */
static struct sfy_gss *park_find(int fd, int take)
{
	struct sfy_gss *g = NULL;
	if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
		return NULL; /* nothing was ever parked (and no fork handler is set) */
	pthread_mutex_lock(&park_lock);
	for (int i = 0; i < PARK_MAX && !g; i++)
		if (parked[i].g && parked[i].fd == fd) {
			g = parked[i].g;
			if (take)
				parked[i].g = NULL;
		}
	pthread_mutex_unlock(&park_lock);
	return g;
}

struct sfy_gss *sfy_gss_parked(int fd)
{
	return park_find(fd, 0);
}

struct sfy_gss *sfy_gss_unpark(int fd)
{
	return park_find(fd, 1);
}
