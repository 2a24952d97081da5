/* The resolver's own interface: res_query() and its family, and
 * getaddrinfo_a().  Under remote DNS none of them sends a query: res_*
 * get socksify's answer (shim/dns_answer.c: fake A/AAAA, PTR from the fake
 * pool or /etc/hosts, NODATA for other types) in the program's buffer,
 * with glibc's return values and h_errno; getaddrinfo_a() resolves its
 * requests as getaddrinfo() does, at once.  A direct_domain name, and
 * everything with remote_dns = no, goes to the real functions.
 *
 * Names are taken as given: the resolver's search list (res_search) and
 * HOSTALIASES are not applied under remote DNS, a single-label name
 * ("intranet") included: it gets a fake address like any other name, and
 * the proxy resolves it (with its own search list), as getaddrinfo() does.
 * The glibc 2.0-2.33 names (__res_query...) are the same functions. */
#include "shim.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sfy_dns.h"
#include "sfy_log.h"
#include "sfy_resolve.h"

#define GLIBC_MAXDNAME 1025 /* glibc's bound on a joined res_querydomain name */
#define REPLY_MAX 1024      /* our longest reply: 12 + 259 + 16 AAAA (448) */

static void set_herrno(res_state statp, int e)
{
	if (statp)
		statp->res_h_errno = e;
	h_errno = e;
}

/* Query ids only tell our own answers apart; nothing leaves the process. */
static uint16_t next_id(void)
{
	static unsigned counter;
	return (uint16_t)(__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 40503u + (unsigned)getpid());
}

/* Our reply to query in answer, as res_send() hands it over: at most
 * anslen bytes, with TC set when it did not fit.  glibc's own truncation
 * (answers over TCP) returns the full length, larger than the buffer;
 * we return what was written, so that no caller reads past its buffer.
 * Length; 0 when there is no answer; -1 for the real resolver. */
static int reply_into(const uint8_t *query, int qlen, unsigned char *answer, int anslen, uint8_t *reply)
{
	if (!query || qlen < 0)
		return 0;
	ssize_t n = sfy_dns_respond(query, (size_t)qlen, reply, REPLY_MAX);
	if (n <= 0)
		return (int)n;
	size_t len = (size_t)n < (size_t)anslen ? (size_t)n : (size_t)anslen;
	memcpy(answer, reply, len);
	if (len < (size_t)n)
		answer[2] |= 0x02; /* TC */
	return (int)len;
}

/* res_query() of name under remote DNS: 1 with *ret, or 0 when the real
 * function is to answer (remote DNS off, a direct_domain name). */
static int fake_query(res_state statp, const char *name, int class, int type, unsigned char *answer, int anslen,
		      int *ret)
{
	uint8_t query[SFY_DNS_HEADER + 260 + 4], reply[REPLY_MAX];
	if (!sfy_cfg.remote_dns || !name || sfy_name_is_direct(&sfy_cfg, name))
		return 0;
	int saved = errno; /* kept unless an error below sets it */
	*ret = -1;
	ssize_t qlen = sfy_dns_build_query(next_id(), name, class, type, query, sizeof query);
	if (qlen < 0) {
		set_herrno(statp, NO_RECOVERY); /* as res_mkquery() failing */
		return 1;
	}
	if (!answer || anslen < HFIXEDSZ) {
		errno = EINVAL; /* res_send()'s check */
		set_herrno(statp, TRY_AGAIN);
		return 1;
	}
	int n = reply_into(query, (int)qlen, answer, anslen, reply);
	if (n < 0)
		return 0;
	if (n == 0) {
		set_herrno(statp, TRY_AGAIN);
		return 1;
	}
	/* glibc's checks, on the whole reply: an error or no answers is -1,
	 * the reply still in the buffer. */
	int rcode = reply[3] & 0xF, ancount = reply[6] << 8 | reply[7];
	errno = saved;
	if (rcode == NOERROR && ancount > 0) {
		*ret = n;
		return 1;
	}
	set_herrno(statp, rcode == NXDOMAIN ? HOST_NOT_FOUND
			  : rcode == SERVFAIL ? TRY_AGAIN
			  : rcode == NOERROR  ? NO_DATA
					      : NO_RECOVERY);
	return 1;
}

SFY_EXPORT int res_query(const char *name, int class, int type, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_query(&_res, name, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_query)(name, class, type, answer, anslen);
}

SFY_EXPORT int res_nquery(res_state statp, const char *name, int class, int type, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_query(statp, name, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_nquery)(statp, name, class, type, answer, anslen);
}

/* res_search(): the name as given (see the top of this file); glibc
 * starts by setting h_errno to HOST_NOT_FOUND and errno to 0. */
static int fake_search(res_state statp, const char *name, int class, int type, unsigned char *answer, int anslen,
		       int *ret)
{
	if (!sfy_cfg.remote_dns || !name || sfy_name_is_direct(&sfy_cfg, name))
		return 0;
	errno = 0;
	set_herrno(statp, HOST_NOT_FOUND);
	return fake_query(statp, name, class, type, answer, anslen, ret);
}

SFY_EXPORT int res_search(const char *name, int class, int type, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_search(&_res, name, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_search)(name, class, type, answer, anslen);
}

SFY_EXPORT int res_nsearch(res_state statp, const char *name, int class, int type, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_search(statp, name, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_nsearch)(statp, name, class, type, answer, anslen);
}

/* res_querydomain(): "name.domain", or name alone when domain is NULL,
 * with glibc's bounds (an empty name, or a joined one of 1025 bytes or
 * more, is NO_RECOVERY). */
static int fake_querydomain(res_state statp, const char *name, const char *domain, int class, int type,
			    unsigned char *answer, int anslen, int *ret)
{
	char joined[GLIBC_MAXDNAME];
	if (!sfy_cfg.remote_dns || !name)
		return 0;
	size_t n = strlen(name), d = domain ? strlen(domain) : 0;
	if (domain ? n + d + 1 >= GLIBC_MAXDNAME : n - 1 >= GLIBC_MAXDNAME - 1) {
		set_herrno(statp, NO_RECOVERY);
		*ret = -1;
		return 1;
	}
	if (domain) {
		memcpy(joined, name, n);
		joined[n] = '.';
		memcpy(joined + n + 1, domain, d + 1);
		name = joined;
	}
	return fake_query(statp, name, class, type, answer, anslen, ret);
}

SFY_EXPORT int res_querydomain(const char *name, const char *domain, int class, int type, unsigned char *answer,
			       int anslen)
{
	int ret;
	sfy_init();
	if (fake_querydomain(&_res, name, domain, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_querydomain)(name, domain, class, type, answer, anslen);
}

SFY_EXPORT int res_nquerydomain(res_state statp, const char *name, const char *domain, int class, int type,
				unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_querydomain(statp, name, domain, class, type, answer, anslen, &ret))
		return ret;
	return REAL(res_nquerydomain)(statp, name, domain, class, type, answer, anslen);
}

/* res_send() of a ready-made message: our answer whatever its rcode (as
 * a server's reply is); a message that is no query at all (shorter than
 * a header, or a response) gets -1 with EINVAL instead of leaving. */
static int fake_send(const unsigned char *msg, int msglen, unsigned char *answer, int anslen, int *ret)
{
	uint8_t reply[REPLY_MAX];
	if (!sfy_cfg.remote_dns)
		return 0;
	*ret = -1;
	if (!answer || anslen < HFIXEDSZ) {
		errno = EINVAL;
		return 1;
	}
	int saved = errno;
	int n = reply_into(msg, msglen, answer, anslen, reply);
	if (n < 0)
		return 0; /* a direct_domain name */
	errno = n == 0 ? EINVAL : saved;
	if (n > 0)
		*ret = n;
	return 1;
}

SFY_EXPORT int res_send(const unsigned char *msg, int msglen, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_send(msg, msglen, answer, anslen, &ret))
		return ret;
	return REAL(res_send)(msg, msglen, answer, anslen);
}

SFY_EXPORT int res_nsend(res_state statp, const unsigned char *msg, int msglen, unsigned char *answer, int anslen)
{
	int ret;
	sfy_init();
	if (fake_send(msg, msglen, answer, anslen, &ret))
		return ret;
	return REAL(res_nsend)(statp, msg, msglen, answer, anslen);
}

/* The names glibc exported before 2.34 (libresolv), still in libc for
 * programs linked then.  resolv.h declares the targets nothrow and leaf. */
#define SFY_ALIAS(f) __attribute__((nothrow, leaf, alias(#f)))
SFY_EXPORT int __res_query(const char *, int, int, unsigned char *, int) SFY_ALIAS(res_query);
SFY_EXPORT int __res_nquery(res_state, const char *, int, int, unsigned char *, int)
	SFY_ALIAS(res_nquery);
SFY_EXPORT int __res_search(const char *, int, int, unsigned char *, int) SFY_ALIAS(res_search);
SFY_EXPORT int __res_nsearch(res_state, const char *, int, int, unsigned char *, int)
	SFY_ALIAS(res_nsearch);
SFY_EXPORT int __res_querydomain(const char *, const char *, int, int, unsigned char *, int)
	SFY_ALIAS(res_querydomain);
SFY_EXPORT int __res_nquerydomain(res_state, const char *, const char *, int, int, unsigned char *, int)
	SFY_ALIAS(res_nquerydomain);
SFY_EXPORT int __res_send(const unsigned char *, int, unsigned char *, int) SFY_ALIAS(res_send);
SFY_EXPORT int __res_nsend(res_state, const unsigned char *, int, unsigned char *, int)
	SFY_ALIAS(res_nsend);

/* getaddrinfo_a() notification, as glibc gives it: SIGEV_THREAD runs the
 * function in a new thread (detached unless the caller gave attributes)
 * with every signal blocked; SIGEV_SIGNAL queues the signal to the process
 * with si_code SI_ASYNCNL. */
struct gai_notify {
	void (*fn)(union sigval);
	union sigval value;
};

static void *gai_notify_thread(void *arg)
{
	struct gai_notify n = *(struct gai_notify *)arg;
	sigset_t all;
	free(arg);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	n.fn(n.value);
	return NULL;
}

static void gai_notify(const struct sigevent *sig)
{
	if (sig->sigev_notify == SIGEV_THREAD) {
		pthread_attr_t attr, *pattr = sig->sigev_notify_attributes;
		struct gai_notify *n = malloc(sizeof *n);
		pthread_t tid;
		if (!n)
			return;
		n->fn = sig->sigev_notify_function;
		n->value = sig->sigev_value;
		if (!pattr) {
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		}
		if (pthread_create(&tid, pattr ? pattr : &attr, gai_notify_thread, n) != 0)
			free(n);
		if (!pattr)
			pthread_attr_destroy(&attr);
	} else if (sig->sigev_notify == SIGEV_SIGNAL) {
		siginfo_t info;
		memset(&info, 0, sizeof info);
		info.si_signo = sig->sigev_signo;
		info.si_code = SI_ASYNCNL;
		info.si_pid = getpid();
		info.si_uid = getuid();
		info.si_value = sig->sigev_value;
		REAL(syscall)(SYS_rt_sigqueueinfo, (long)info.si_pid, (long)sig->sigev_signo, (long)&info);
	}
}

/* Requests whose name may really be resolved (direct_domain) go to the
 * real getaddrinfo_a, in glibc's queue; every other one is answered here,
 * at once, by the getaddrinfo hook's own code (glibc 2.34+ resolves inside
 * libc, past our getaddrinfo).  A request answered here looks to
 * gai_error(), gai_suspend() and gai_cancel() exactly like one glibc has
 * finished: its __return is set and it is in no queue (gai_error returns
 * it, gai_suspend does not wait for it, gai_cancel says EAI_ALLDONE), so
 * those need no hook.  The notification comes once all are done: from
 * glibc when it has any, else from here before we return. */
SFY_EXPORT int getaddrinfo_a(int mode, struct gaicb *list[], int ent, struct sigevent *sig)
{
	int saved = errno, direct = 0;
	sfy_init();
	if (!sfy_cfg.remote_dns || (mode != GAI_WAIT && mode != GAI_NOWAIT) || ent < 0 || (ent > 0 && !list))
		return REAL(getaddrinfo_a)(mode, list, ent, sig);
	for (int i = 0; i < ent; i++)
		if (list[i] && list[i]->ar_name && sfy_name_goes_direct(list[i]->ar_name))
			direct++;
	struct gaicb **real = direct ? calloc((size_t)direct, sizeof *real) : NULL;
	if (direct && !real)
		return EAI_AGAIN;
	int k = 0;
	for (int i = 0; i < ent; i++) {
		struct gaicb *r = list[i];
		if (!r)
			continue;
		if (r->ar_name && sfy_name_goes_direct(r->ar_name)) {
			real[k++] = r;
			continue;
		}
		r->ar_result = NULL;
		r->__return = sfy_getaddrinfo(r->ar_name, r->ar_service, r->ar_request, &r->ar_result);
	}
	sfy_log(SFY_LOG_DEBUG, "getaddrinfo_a: %d request(s) answered here, %d to the system resolver", ent - direct,
		direct);
	errno = saved;
	if (direct) {
		int rc = REAL(getaddrinfo_a)(mode, real, direct, sig);
		free(real);
		return rc;
	}
	if (mode == GAI_NOWAIT && sig)
		gai_notify(sig);
	errno = saved;
	return 0;
}
