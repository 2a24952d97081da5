/* DNS over UDP answered inside the process (see dns_pkt.h). */
#include "dns_pkt.h"

#include "internal_fd.h"
#include "sfy_dns.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "sfy_resolve.h"
#include "shim.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_SOCKS 128   /* UDP sockets with answers under way */
#define N_RECENT 8    /* queries remembered per socket, by DNS id */
#define QUERY_MAX 65535
#define REPLY_MAX 4096

int sfy_dnsp_used;
static uint8_t marks[SFY_FD_MAX]; /* SFY_DNSP_* per fd number */
static int marks_top = -1;        /* highest number ever marked */

/* A nameserver address as the program gave it (AF_INET or AF_INET6). */
struct ns_addr {
	struct sockaddr_in6 sa; /* large enough for either */
	socklen_t len;
};

struct dsock {
	int used;
	int fd, kind;
	pid_t pid;
	dev_t dev;
	ino_t ino;
	struct ns_addr peer; /* UDP_CONN: the virtual peer */
	struct {
		int used;
		uint16_t id;
		struct ns_addr ns;
	} recent[N_RECENT];
	unsigned next;
};

static pthread_mutex_t socks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dsock socks[N_SOCKS];

/* The injectors: handle and bound address per family (0: IPv4, 1: IPv6). */
static pthread_mutex_t inj_lock = PTHREAD_MUTEX_INITIALIZER;
static int inj_handle[2] = {-1, -1};
static struct sockaddr_in6 inj_addr[2]; /* read without the lock once set */
static int inj_ready[2];

int sfy_dnsp_kind(int fd)
{
	if (!sfy_dnsp_any() || fd < 0 || fd >= SFY_FD_MAX)
		return SFY_DNSP_NONE;
	return __atomic_load_n(&marks[fd], __ATOMIC_ACQUIRE);
}

void sfy_dnsp_mark(int fd, int kind)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return;
	if (kind) {
		__atomic_store_n(&sfy_dnsp_used, 1, __ATOMIC_RELAXED);
		int top = __atomic_load_n(&marks_top, __ATOMIC_RELAXED);
		while (fd > top && !__atomic_compare_exchange_n(&marks_top, &top, fd, 1, __ATOMIC_RELAXED,
								__ATOMIC_RELAXED))
			;
	}
	__atomic_store_n(&marks[fd], (uint8_t)kind, __ATOMIC_RELEASE);
}

static int identity(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* fd's entry, live (same socket) or NULL; caller holds socks_lock. */
static struct dsock *find(int fd)
{
	for (int i = 0; i < N_SOCKS; i++) {
		struct dsock *s = &socks[i];
		if (!s->used || s->fd != fd)
			continue;
		dev_t dev;
		ino_t ino;
		if (identity(fd, &dev, &ino) == 0 && dev == s->dev && ino == s->ino)
			return s;
		s->used = 0; /* closed behind our back: stale */
		return NULL;
	}
	return NULL;
}

/* A free entry for fd (stale ones are reused); caller holds socks_lock. */
static struct dsock *make(int fd, int kind)
{
	struct dsock *s = find(fd);
	for (int i = 0; !s && i < N_SOCKS; i++)
		if (!socks[i].used)
			s = &socks[i];
	for (int i = 0; !s && i < N_SOCKS; i++) {
		dev_t dev;
		ino_t ino;
		if (identity(socks[i].fd, &dev, &ino) < 0 || dev != socks[i].dev || ino != socks[i].ino)
			s = &socks[i];
	}
	if (!s)
		return NULL;
	memset(s, 0, sizeof *s);
	if (identity(fd, &s->dev, &s->ino) < 0)
		return NULL;
	s->used = 1;
	s->fd = fd;
	s->kind = kind;
	s->pid = getpid();
	return s;
}

static void ns_set(struct ns_addr *out, const struct sockaddr *sa, socklen_t len)
{
	memset(out, 0, sizeof *out);
	out->len = len < sizeof out->sa ? len : sizeof out->sa;
	memcpy(&out->sa, sa, out->len);
}

/* Bind fd to the wildcard of its family, port 0, unless it is bound: the
 * answer needs an address to go to, which a real send would have made. */
static int ensure_bound(int fd, struct sockaddr_storage *local, socklen_t *llen)
{
	*llen = sizeof *local;
	if (REAL(getsockname)(fd, (struct sockaddr *)local, llen) < 0)
		return -1;
	in_port_t port = local->ss_family == AF_INET ? ((struct sockaddr_in *)local)->sin_port
						     : ((struct sockaddr_in6 *)local)->sin6_port;
	if (port)
		return 0;
	struct sockaddr_storage any = {.ss_family = local->ss_family};
	socklen_t alen = local->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (REAL(bind)(fd, (struct sockaddr *)&any, alen) < 0)
		return -1;
	*llen = sizeof *local;
	return REAL(getsockname)(fd, (struct sockaddr *)local, llen);
}

int sfy_dnsp_udp_connect(int fd, const struct sockaddr *ns, socklen_t len)
{
	int saved = errno;
	struct sockaddr_storage local;
	socklen_t llen;
	if (ensure_bound(fd, &local, &llen) < 0)
		return -1;
	struct sfy_fdinfo info = {.kind = SFY_FD_DNS_UDP, .app_family = local.ss_family};
	sfy_copy_sockaddr(ns, len, (struct sockaddr *)&info.peer, &(socklen_t){sizeof info.peer});
	info.peer_len = len < sizeof info.peer ? len : sizeof info.peer;
	pthread_mutex_lock(&socks_lock);
	struct dsock *s = make(fd, SFY_DNSP_UDP_CONN);
	if (s) {
		ns_set(&s->peer, ns, len);
		sfy_dnsp_mark(fd, SFY_DNSP_UDP_CONN);
	}
	pthread_mutex_unlock(&socks_lock);
	if (!s || sfy_fd_set(fd, &info) < 0) {
		sfy_dnsp_forget(fd);
		errno = ENOBUFS;
		return -1;
	}
	sfy_log(SFY_LOG_DEBUG, "connect on fd %d: DNS (port 53 of a direct destination), answered in the process", fd);
	errno = saved;
	return 0;
}

/* The injector of family slot f (0 IPv4, 1 IPv6), made at first use. */
static int injector(int f)
{
	pthread_mutex_lock(&inj_lock);
	if (inj_handle[f] < 0) {
		int fam = f ? AF_INET6 : AF_INET;
		struct sockaddr_in6 a = {0};
		socklen_t alen = f ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
		if (f) {
			a.sin6_family = AF_INET6;
			a.sin6_addr = in6addr_loopback;
		} else {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
			a4->sin_family = AF_INET;
			a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		}
		int s = REAL(socket)(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (s >= 0 && REAL(bind)(s, (struct sockaddr *)&a, alen) == 0 &&
		    REAL(getsockname)(s, (struct sockaddr *)&a, &alen) == 0) {
			inj_addr[f] = a;
			inj_handle[f] = sfy_ifd_adopt(s);
			__atomic_store_n(&inj_ready[f], inj_handle[f] >= 0, __ATOMIC_RELEASE);
		} else if (s >= 0) {
			REAL(close)(s);
		}
	}
	int h = inj_handle[f];
	pthread_mutex_unlock(&inj_lock);
	return h;
}

static int is_injector(const struct sockaddr *from)
{
	for (int f = 0; f < 2; f++)
		if (__atomic_load_n(&inj_ready[f], __ATOMIC_ACQUIRE) && sfy_same_endpoint(from, (struct sockaddr *)&inj_addr[f]))
			return 1;
	return 0;
}

static ssize_t inject_from(int f, const uint8_t *reply, size_t n, const struct sockaddr *to, socklen_t tolen)
{
	int h = injector(f);
	if (h < 0)
		return -1;
	int fd = sfy_ifd_lock_fd(h);
	ssize_t rc = fd < 0 ? -1 : REAL(sendto)(fd, reply, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen);
	sfy_ifd_unlock();
	return rc;
}

/* Send reply, for real, to the address of the program's socket fd (its
 * wildcard as loopback). */
static int inject(int fd, const uint8_t *reply, size_t n)
{
	struct sockaddr_storage local;
	socklen_t llen;
	if (ensure_bound(fd, &local, &llen) < 0)
		return -1;
	struct sockaddr_in v4;
	if (sfy_unmap_v4((struct sockaddr *)&local, &v4)) {
		if (v4.sin_addr.s_addr == 0)
			v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return inject_from(0, reply, n, (struct sockaddr *)&v4, sizeof v4) < 0 ? -1 : 0;
	}
	if (local.ss_family == AF_INET) {
		struct sockaddr_in *l4 = (struct sockaddr_in *)&local;
		if (l4->sin_addr.s_addr == 0)
			l4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return inject_from(0, reply, n, (struct sockaddr *)l4, sizeof *l4) < 0 ? -1 : 0;
	}
	struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
	int any = IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr);
	if (any)
		l6->sin6_addr = in6addr_loopback;
	if (inject_from(1, reply, n, (struct sockaddr *)l6, sizeof *l6) >= 0)
		return 0;
	if (!any)
		return -1;
	/* No ::1 (IPv6 off on loopback): a dual-stack socket still hears
	 * 127.0.0.1. */
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = l6->sin6_port};
	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return inject_from(0, reply, n, (struct sockaddr *)&lo, sizeof lo) < 0 ? -1 : 0;
}

/* Note that the answer to id on fd shows ns as its source. */
static int remember(int fd, uint16_t id, const struct sockaddr *ns, socklen_t len)
{
	pthread_mutex_lock(&socks_lock);
	struct dsock *s = find(fd);
	if (!s && (s = make(fd, SFY_DNSP_UDP_OPEN)) != NULL)
		sfy_dnsp_mark(fd, SFY_DNSP_UDP_OPEN);
	if (s) {
		unsigned i = s->next++ % N_RECENT;
		s->recent[i].used = 1;
		s->recent[i].id = id;
		ns_set(&s->recent[i].ns, ns, len);
	}
	pthread_mutex_unlock(&socks_lock);
	return s ? 0 : -1;
}

/* The whole datagram of msg in one heap buffer; its length in *len, or
 * NULL with errno (EMSGSIZE past 64 KiB, as for any UDP datagram). */
static uint8_t *gather(const struct msghdr *msg, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		total += msg->msg_iov[i].iov_len;
		if (total > QUERY_MAX) {
			errno = EMSGSIZE;
			return NULL;
		}
	}
	uint8_t *buf = malloc(total ? total : 1);
	if (!buf) {
		errno = ENOBUFS;
		return NULL;
	}
	size_t at = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		memcpy(buf + at, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
		at += msg->msg_iov[i].iov_len;
	}
	*len = total;
	return buf;
}

/* The virtual peer of fd into out; 0 or -1 (not virtually connected). */
static int peer_of(int fd, struct ns_addr *out)
{
	pthread_mutex_lock(&socks_lock);
	struct dsock *s = find(fd);
	if (s && s->kind == SFY_DNSP_UDP_CONN)
		*out = s->peer;
	pthread_mutex_unlock(&socks_lock);
	return s && s->kind == SFY_DNSP_UDP_CONN ? 0 : -1;
}

/* Answer query (len bytes) sent on fd to ns: the query's length (as a
 * real send returns), -1 with errno, or -2 when the query is for the real
 * resolver. */
static ssize_t answer(int fd, const uint8_t *query, size_t len, const struct ns_addr *ns)
{
	uint8_t *reply = malloc(REPLY_MAX);
	if (!reply) {
		errno = ENOBUFS;
		return -1;
	}
	ssize_t n = sfy_dns_respond(query, len, reply, REPLY_MAX);
	int err = 0;
	if (n > 0) {
		uint16_t id = (uint16_t)(reply[0] << 8 | reply[1]);
		if (remember(fd, id, (const struct sockaddr *)&ns->sa, ns->len) < 0)
			err = ENOBUFS;
		else if (inject(fd, reply, (size_t)n) < 0)
			err = errno;
	} else if (n == 0) {
		sfy_log(SFY_LOG_DEBUG, "fd %d: %zu bytes to port 53 that are no DNS query: dropped", fd, len);
	}
	free(reply);
	if (err) {
		errno = err;
		return -1;
	}
	return n < 0 ? -2 : (ssize_t)len;
}

ssize_t sfy_dnsp_udp_send(int fd, const struct msghdr *msg, int flags, const struct sockaddr *to, socklen_t tolen)
{
	struct ns_addr ns;
	if (to)
		ns_set(&ns, to, tolen);
	else if (peer_of(fd, &ns) < 0)
		return REAL(sendmsg)(fd, msg, flags); /* no longer ours: the kernel says what it is */
	size_t len;
	int saved = errno;
	uint8_t *query = gather(msg, &len);
	if (!query)
		return -1;
	ssize_t rc = answer(fd, query, len, &ns);
	free(query);
	if (rc != -2) {
		if (rc >= 0)
			errno = saved;
		return rc;
	}
	/* For the real resolver (a direct_domain name): sent as the program
	 * sent it, to the nameserver, whose answer passes the recv hooks. */
	sfy_log(SFY_LOG_DEBUG, "fd %d: DNS query for a direct name goes to the nameserver", fd);
	struct msghdr copy = *msg;
	copy.msg_name = &ns.sa;
	copy.msg_namelen = ns.len;
	errno = saved;
	return REAL(sendmsg)(fd, &copy, flags);
}

enum { PASS, REWRITE, DROP };

/* What to do with a datagram from `from` whose first bytes are id (have_id
 * when the program's buffer held them); *ns: the source to show. */
static int classify(int fd, const struct sockaddr *from, int have_id, uint16_t id, struct ns_addr *ns)
{
	int verdict = PASS;
	int inj = is_injector(from);
	pthread_mutex_lock(&socks_lock);
	struct dsock *s = find(fd);
	if (!s) {
		verdict = PASS; /* not ours any more */
	} else if (inj) {
		verdict = DROP;
		for (unsigned k = 0; k < N_RECENT; k++) {
			unsigned i = (s->next + N_RECENT - 1 - k) % N_RECENT; /* newest first */
			if (s->recent[i].used && (!have_id || s->recent[i].id == id)) {
				*ns = s->recent[i].ns;
				verdict = REWRITE;
				break;
			}
		}
		if (verdict == DROP && s->kind == SFY_DNSP_UDP_CONN) {
			*ns = s->peer;
			verdict = REWRITE;
		}
	} else if (s->kind == SFY_DNSP_UDP_CONN && !sfy_same_endpoint(from, (const struct sockaddr *)&s->peer.sa)) {
		verdict = DROP;
	}
	pthread_mutex_unlock(&socks_lock);
	return verdict;
}

/* The first two bytes received (the DNS id), across the iovecs. */
static int first_id(const struct msghdr *m, size_t n, uint16_t *id)
{
	uint8_t b[2];
	size_t got = 0;
	for (size_t i = 0; i < m->msg_iovlen && got < 2 && got < n; i++)
		for (size_t j = 0; j < m->msg_iov[i].iov_len && got < 2 && got < n; j++)
			b[got++] = ((const uint8_t *)m->msg_iov[i].iov_base)[j];
	if (got < 2)
		return 0;
	*id = (uint16_t)(b[0] << 8 | b[1]);
	return 1;
}

ssize_t sfy_dnsp_recvmsg(int fd, struct msghdr *msg, int flags)
{
	for (;;) {
		struct sockaddr_storage from;
		struct msghdr m = *msg;
		m.msg_name = &from;
		m.msg_namelen = sizeof from;
		ssize_t n = REAL(recvmsg)(fd, &m, flags);
		if (n < 0)
			return n;
		uint16_t id = 0;
		int have_id = first_id(&m, (size_t)n, &id);
		struct ns_addr ns;
		int verdict = m.msg_namelen ? classify(fd, (struct sockaddr *)&from, have_id, id, &ns) : PASS;
		if (verdict == DROP) {
			if (flags & MSG_PEEK) /* consume the stranger, then look again */
				REAL(recv)(fd, NULL, 0, MSG_DONTWAIT);
			continue;
		}
		const void *src = verdict == REWRITE ? (const void *)&ns.sa : (const void *)&from;
		socklen_t slen = verdict == REWRITE ? ns.len : m.msg_namelen;
		if (msg->msg_name) {
			socklen_t cap = msg->msg_namelen;
			memcpy(msg->msg_name, src, slen < cap ? slen : cap);
		}
		msg->msg_namelen = msg->msg_name ? slen : 0;
		msg->msg_controllen = m.msg_controllen;
		msg->msg_flags = m.msg_flags;
		return n;
	}
}

ssize_t sfy_dnsp_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	return sfy_recvfrom_by_recvmsg(sfy_dnsp_recvmsg, fd, buf, n, flags, from, len);
}

void sfy_dnsp_forget(int fd)
{
	if (sfy_dnsp_kind(fd) == SFY_DNSP_NONE)
		return;
	int kind = sfy_dnsp_kind(fd);
	if (kind == SFY_DNSP_TCP) {
		sfy_dnsp_tcp_closed(fd);
		return;
	}
	sfy_dnsp_mark(fd, SFY_DNSP_NONE);
	pthread_mutex_lock(&socks_lock);
	for (int i = 0; i < N_SOCKS; i++)
		if (socks[i].used && socks[i].fd == fd)
			socks[i].used = 0;
	pthread_mutex_unlock(&socks_lock);
}

void sfy_dnsp_closed(int fd)
{
	int kind = sfy_dnsp_kind(fd);
	if (kind == SFY_DNSP_NONE)
		return;
	if (kind == SFY_DNSP_TCP) {
		sfy_dnsp_tcp_closed(fd);
		return;
	}
	/* getpid(), not a pid noted at fork: a vfork() child shares our
	 * memory and must leave our state alone. */
	pid_t me = getpid();
	pthread_mutex_lock(&socks_lock);
	int mine = 1;
	for (int i = 0; i < N_SOCKS; i++) {
		if (!socks[i].used || socks[i].fd != fd)
			continue;
		if (socks[i].pid == me)
			socks[i].used = 0;
		else
			mine = 0;
	}
	if (mine)
		sfy_dnsp_mark(fd, SFY_DNSP_NONE);
	pthread_mutex_unlock(&socks_lock);
}

void sfy_dnsp_closed_range(unsigned first, unsigned last)
{
	int top = __atomic_load_n(&marks_top, __ATOMIC_RELAXED);
	for (unsigned fd = first; top >= 0 && fd <= last && fd <= (unsigned)top; fd++)
		if (__atomic_load_n(&marks[fd], __ATOMIC_RELAXED))
			sfy_dnsp_closed((int)fd);
}
