/* UDP ASSOCIATE on the program's own socket (see udp_assoc.h).  One table
 * of sockets under one mutex, never held across a wait: a thread that sets
 * up an association marks the entry busy and works unlocked; others wait
 * on a condition variable, bounded by the same timeouts. */
#include "udp_assoc.h"

#include "internal_fd.h"
#include "sfy_fdtable.h"
#include "sfy_log.h"
#include "shim.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_ASSOC 256
#define DGRAM_MAX (65535 + S5_UDP_HEADER_MAX) /* bounce buffer: any datagram whole */

int sfy_udpa_used;
static uint8_t marks[SFY_FD_MAX]; /* 1: fd may have an entry */
static int marks_top = -1;

struct assoc {
	int used, fd, family, busy;
	pid_t pid; /* the process whose close ends it (fork children: their own) */
	dev_t dev;
	ino_t ino;
	int ctl;   /* internal fd handle of the control connection, -1: none */
	int fail;  /* a refusal that a new attempt would only repeat (errno) */
	struct sockaddr_storage relay;
	socklen_t relay_len;
	int have_peer;
	struct sockaddr_storage peer; /* virtual peer, as the program gave it */
	socklen_t peer_len;
	struct s5_addr peer_dst;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t settled = PTHREAD_COND_INITIALIZER;
static struct assoc tab[N_ASSOC];
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void mark(int fd, int on)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return;
	if (on) {
		__atomic_store_n(&sfy_udpa_used, 1, __ATOMIC_RELAXED);
		int top = __atomic_load_n(&marks_top, __ATOMIC_RELAXED);
		while (fd > top &&
		       !__atomic_compare_exchange_n(&marks_top, &top, fd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	__atomic_store_n(&marks[fd], (uint8_t)on, __ATOMIC_RELEASE);
}

/* fork(): the child's entries are its own (it holds copies of the control
 * fds); one another thread was setting up is not busy there (that thread
 * does not exist in the child, which associates itself at need).  A
 * vfork() child runs no handler and leaves ours alone. */
static void fork_prepare(void) { pthread_mutex_lock(&lock); }
static void fork_parent(void) { pthread_mutex_unlock(&lock); }
static void fork_child(void)
{
	pid_t me = getpid();
	for (int i = 0; i < N_ASSOC; i++)
		if (tab[i].used) {
			tab[i].pid = me;
			tab[i].busy = 0;
		}
	pthread_mutex_unlock(&lock);
}
static void fork_setup(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static int identity(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static void drop_entry(struct assoc *a)
{
	if (a->ctl >= 0)
		sfy_ifd_release(a->ctl);
	a->ctl = -1;
	a->used = 0;
}

/* fd's live entry or NULL (a stale one, for a socket closed behind our
 * back, is dropped); with make, a new one.  Caller holds the lock. */
static struct assoc *find(int fd, int make)
{
	dev_t dev = 0;
	ino_t ino = 0;
	int known = identity(fd, &dev, &ino) == 0;
	struct assoc *free_slot = NULL;
	for (int i = 0; i < N_ASSOC; i++) {
		struct assoc *a = &tab[i];
		if (!a->used) {
			free_slot = free_slot ? free_slot : a;
			continue;
		}
		if (a->fd != fd)
			continue;
		if (known && a->dev == dev && a->ino == ino)
			return a;
		if (!a->busy && a->pid == getpid()) {
			drop_entry(a);
			free_slot = free_slot ? free_slot : a;
		}
	}
	for (int i = 0; make && known && !free_slot && i < N_ASSOC; i++) {
		dev_t d;
		ino_t n;
		struct assoc *a = &tab[i]; /* full: reclaim one whose socket is gone */
		if (!a->busy && a->pid == getpid() && (identity(a->fd, &d, &n) < 0 || d != a->dev || n != a->ino)) {
			drop_entry(a);
			free_slot = a;
		}
	}
	if (!make || !known || !free_slot)
		return NULL;
	int family = 0;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &sl) == 0)
		family = ss.ss_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	pthread_once(&fork_once, fork_setup);
	*free_slot = (struct assoc){.used = 1, .fd = fd, .family = family, .pid = getpid(), .dev = dev, .ino = ino, .ctl = -1};
	mark(fd, 1);
	return free_slot;
}

int sfy_udpa_kind(int fd)
{
	if (!sfy_udpa_any() || fd < 0 || fd >= SFY_FD_MAX || !__atomic_load_n(&marks[fd], __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&lock);
	struct assoc *a = find(fd, 0);
	int kind = !a ? 0 : a->have_peer ? 2 : 1;
	pthread_mutex_unlock(&lock);
	return kind;
}

int sfy_udpa_connect(int fd, const struct sockaddr *peer, socklen_t len, const struct s5_addr *dst)
{
	int saved = errno;
	/* A real connection to an earlier peer would filter out the relay. */
	struct sockaddr_storage was;
	socklen_t wlen = sizeof was;
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	if (REAL(getpeername)(fd, (struct sockaddr *)&was, &wlen) == 0)
		REAL(connect)(fd, &unspec, sizeof unspec);
	pthread_mutex_lock(&lock);
	struct assoc *a = find(fd, 1);
	if (a) {
		a->have_peer = 1;
		a->peer_len = len < sizeof a->peer ? len : sizeof a->peer;
		memcpy(&a->peer, peer, a->peer_len);
		a->peer_dst = *dst;
	}
	pthread_mutex_unlock(&lock);
	struct sfy_fdinfo info = {.kind = SFY_FD_UDP_PROXY, .app_family = peer->sa_family};
	info.peer_len = len < sizeof info.peer ? len : sizeof info.peer;
	memcpy(&info.peer, peer, info.peer_len);
	if (!a || sfy_fd_set(fd, &info) < 0) {
		errno = ENOBUFS;
		return -1;
	}
	errno = saved;
	return 0;
}

void sfy_udpa_disconnect(int fd)
{
	if (!sfy_udpa_kind(fd))
		return;
	pthread_mutex_lock(&lock);
	struct assoc *a = find(fd, 0);
	if (a)
		a->have_peer = 0;
	pthread_mutex_unlock(&lock);
}

/* DST of the request: the socket's own address once it is bound (the
 * program bound it), else 0.0.0.0:0 and we bind it to the wildcard. */
static int request_dst(int fd, struct s5_addr *dst)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof local;
	if (REAL(getsockname)(fd, (struct sockaddr *)&local, &llen) < 0)
		return -1;
	in_port_t port = local.ss_family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port
						    : ((struct sockaddr_in6 *)&local)->sin6_port;
	struct sockaddr_in v4;
	int pv4 = sfy_cfg.proxy.ss_family == AF_INET;
	if (port) {
		if (sfy_unmap_v4((struct sockaddr *)&local, &v4))
			s5_addr_from_sockaddr(dst, (struct sockaddr *)&v4, ntohs(port));
		else
			s5_addr_from_sockaddr(dst, (struct sockaddr *)&local, ntohs(port));
		if (s5_addr_unspecified(dst)) /* wildcard: in the family the proxy sees */
			memset(&dst->u, 0, sizeof dst->u), dst->atyp = pv4 ? S5_ATYP_IPV4 : S5_ATYP_IPV6;
		return 0;
	}
	struct sockaddr_storage any = {.ss_family = local.ss_family};
	socklen_t alen = local.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (REAL(bind)(fd, (struct sockaddr *)&any, alen) < 0)
		return -1;
	memset(dst, 0, sizeof *dst);
	dst->atyp = pv4 ? S5_ATYP_IPV4 : S5_ATYP_IPV6;
	return 0;
}

/* An IPv4 socket whose relay has only an IPv6 address: put a dual-stack
 * IPv6 socket at fd's number (as a TCP connect does for the proxy), bound
 * to the same port.  The program keeps seeing IPv4 addresses: sources are
 * given in the family it created (struct assoc's family).  0, or -1. */
static int swap_to_v6(int fd)
{
	struct sockaddr_in old;
	socklen_t olen = sizeof old;
	if (REAL(getsockname)(fd, (struct sockaddr *)&old, &olen) < 0 || old.sin_family != AF_INET)
		return -1;
	int fresh = REAL(socket)(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fresh < 0)
		return -1;
	int off = 0;
	REAL(setsockopt)(fresh, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	if (sfy_swap_socket(fd, fresh) < 0)
		return -1;
	struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = old.sin_port};
	if (REAL(bind)(fd, (struct sockaddr *)&any, sizeof any) < 0 && old.sin_port) {
		any.sin6_port = 0; /* the port went meanwhile: any port will do for the relay */
		if (REAL(bind)(fd, (struct sockaddr *)&any, sizeof any) < 0)
			return -1;
	}
	return 0;
}

/* Set up fd's association: *handle (control connection) and the relay as
 * an address of family.  0, or -1 with errno; *lasting when a new attempt
 * would get the same answer (the proxy refused the command). */
static int associate(int fd, int family, int *handle, struct sockaddr_storage *relay, socklen_t *rlen, int *lasting,
		     int *swapped)
{
	struct s5_addr dst;
	struct s5_reply reply;
	*lasting = 0;
	if (request_dst(fd, &dst) < 0)
		return -1;
	int ctl = REAL(socket)(sfy_cfg.proxy.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl < 0)
		return -1;
	sfy_sock_facts_set(ctl, 0); /* a number's stale facts must not describe ours */
	if (sfy_proxy_udp_associate(ctl, &dst, &reply) < 0) {
		int err = errno;
		REAL(close)(ctl);
		*lasting = err == EOPNOTSUPP || err == EPROTO || err == EACCES;
		errno = err;
		return -1;
	}
	*rlen = sfy_socks_to_sockaddr(&reply.bnd, family, relay, 1);
	if (*rlen == 0 && family == AF_INET && swap_to_v6(fd) == 0) {
		*swapped = 1;
		*rlen = sfy_socks_to_sockaddr(&reply.bnd, AF_INET6, relay, 1);
		sfy_log(SFY_LOG_DEBUG, "udp associate on fd %d: IPv4 socket replaced by an IPv6 one to reach the relay",
			fd);
	}
	int v6only = 0;
	socklen_t vl = sizeof v6only;
	if (family == AF_INET6 && relay->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)relay)->sin6_addr) &&
	    REAL(getsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl) == 0 && v6only)
		*rlen = 0;
	if (*rlen == 0) {
		char what[300];
		s5_addr_text(&reply.bnd, what, sizeof what);
		sfy_log(SFY_LOG_WARN, "udp associate on fd %d: relay %s cannot be reached from a socket of family %d",
			fd, what, family);
		REAL(close)(ctl);
		*lasting = 1;
		errno = EAFNOSUPPORT;
		return -1;
	}
	if ((*handle = sfy_ifd_adopt(ctl)) < 0)
		return -1;
	return 0;
}

/* The control connection of a is gone (the proxy closed it or restarted):
 * readable means EOF or bytes the protocol never sends.  Lock held; no wait. */
static int ctl_dead(const struct assoc *a)
{
	struct pollfd p = {.fd = sfy_ifd_peek_fd(a->ctl), .events = POLLIN | POLLRDHUP};
	return p.fd < 0 || (REAL(poll)(&p, 1, 0) == 1 && p.revents);
}

static void wait_settled(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (sfy_cfg.connect_timeout_ms + sfy_cfg.handshake_timeout_ms) / 1000 + 1;
	pthread_cond_timedwait(&settled, &lock, &ts);
}

/* The relay of fd's association, made at need.  0, or -1 with errno. */
static int get_relay(int fd, struct sockaddr_storage *relay, socklen_t *rlen, struct s5_addr *peer_dst)
{
	pthread_mutex_lock(&lock);
	struct assoc *a;
	for (;;) {
		a = find(fd, 1);
		if (!a || !a->busy)
			break;
		wait_settled();
	}
	int rc = -1, err = ENOBUFS;
	if (!a)
		goto out;
	if (peer_dst && !a->have_peer) {
		err = EDESTADDRREQ;
		goto out;
	}
	if (peer_dst)
		*peer_dst = a->peer_dst;
	if (a->ctl >= 0 && ctl_dead(a)) {
		sfy_ifd_release(a->ctl);
		a->ctl = -1;
		sfy_log(SFY_LOG_WARN, "udp on fd %d: the proxy closed the association's control connection; "
				      "this send fails (ECONNRESET), the next one associates again", fd);
		err = ECONNRESET;
		goto out;
	}
	if (a->ctl < 0 && a->fail) {
		err = a->fail;
		goto out;
	}
	if (a->ctl < 0) {
		int family = a->family, h = -1, lasting = 0, swapped = 0;
		a->busy = 1;
		pthread_mutex_unlock(&lock);
		int r = associate(fd, family, &h, relay, rlen, &lasting, &swapped);
		err = errno;
		pthread_mutex_lock(&lock);
		a->busy = 0;
		pthread_cond_broadcast(&settled);
		dev_t dev;
		ino_t ino;
		if (identity(fd, &dev, &ino) < 0 || ((dev != a->dev || ino != a->ino) && !swapped)) {
			if (r == 0) /* closed meanwhile: the association goes with it */
				sfy_ifd_release(h);
			a->used = 0;
			err = EBADF;
			goto out;
		}
		if (r < 0) {
			a->fail = lasting ? err : 0;
			goto out;
		}
		a->ctl = h;
		a->dev = dev; /* a new socket if swapped to reach an IPv6 relay */
		a->ino = ino;
		a->relay = *relay;
		a->relay_len = *rlen;
	}
	*relay = a->relay;
	*rlen = a->relay_len;
	rc = 0;
out:
	pthread_mutex_unlock(&lock);
	if (rc < 0)
		errno = err;
	return rc;
}

ssize_t sfy_udpa_send(int fd, const struct msghdr *msg, int flags, const struct s5_addr *dst)
{
	int saved = errno;
	struct sockaddr_storage relay;
	socklen_t rlen;
	struct s5_addr peer = {0};
	if (get_relay(fd, &relay, &rlen, dst ? NULL : &peer) < 0)
		return -1;
	uint8_t head[S5_UDP_HEADER_MAX];
	int hn = s5_encode_udp_header(head, sizeof head, dst ? dst : &peer);
	if (hn < 0 || msg->msg_iovlen >= 1024) {
		errno = hn < 0 ? EINVAL : EMSGSIZE;
		return -1;
	}
	struct iovec *iov = malloc((msg->msg_iovlen + 1) * sizeof *iov);
	if (!iov) {
		errno = ENOBUFS;
		return -1;
	}
	iov[0] = (struct iovec){.iov_base = head, .iov_len = (size_t)hn};
	if (msg->msg_iovlen)
		memcpy(iov + 1, msg->msg_iov, msg->msg_iovlen * sizeof *iov);
	struct msghdr m = *msg;
	m.msg_name = &relay;
	m.msg_namelen = rlen;
	m.msg_iov = iov;
	m.msg_iovlen = msg->msg_iovlen + 1;
	ssize_t rc = REAL(sendmsg)(fd, &m, flags);
	free(iov);
	if (rc < 0)
		return -1;
	errno = saved;
	return rc >= hn ? rc - hn : 0;
}

enum { PASS, STRIP, DROP };

/* What to do with n bytes from `from`; for STRIP, *skip header bytes and
 * the source to show in *src and *slen. */
static int classify(int fd, const struct sockaddr *from, const uint8_t *buf, size_t n, size_t *skip,
		    struct sockaddr_storage *src, socklen_t *slen)
{
	pthread_mutex_lock(&lock);
	struct assoc *a = find(fd, 0);
	struct assoc copy = {0};
	if (a)
		copy = *a;
	pthread_mutex_unlock(&lock);
	if (!a)
		return PASS;
	if (!copy.relay_len || !sfy_same_endpoint(from, (struct sockaddr *)&copy.relay)) {
		/* The kernel would filter for a connected socket; an open one
		 * still hears destinations the program reaches directly. */
		if (copy.have_peer)
			return DROP;
		struct sockaddr_in v4;
		const struct sockaddr *f = sfy_unmap_v4(from, &v4) ? (struct sockaddr *)&v4 : from;
		return sfy_addr_is_direct(&sfy_cfg, f) || sfy_addr_is_proxy(&sfy_cfg, f) ? PASS : DROP;
	}
	struct s5_addr s;
	uint8_t frag = 0;
	int hn = s5_decode_udp_header(buf, n, &frag, &s);
	if (hn <= 0 || frag != 0) {
		sfy_log(SFY_LOG_DEBUG, "udp on fd %d: relay datagram dropped (%s)", fd, hn <= 0 ? "bad header" : "fragment");
		return DROP;
	}
	*skip = (size_t)hn;
	if (copy.have_peer) {
		struct s5_addr want = copy.peer_dst;
		if (want.atyp != S5_ATYP_DOMAIN && (s.atyp != want.atyp || s.port != want.port ||
						    memcmp(&s.u, &want.u, s.atyp == S5_ATYP_IPV4 ? 4 : 16)))
			return DROP; /* not from the peer: the kernel would have filtered it */
		memcpy(src, &copy.peer, copy.peer_len);
		*slen = copy.peer_len;
		return STRIP;
	}
	*slen = s.atyp == S5_ATYP_DOMAIN ? 0 : sfy_socks_to_sockaddr(&s, copy.family, src, 1);
	return *slen ? STRIP : DROP;
}

/* Copy n bytes of data into msg's iovecs; returns how many fit. */
static size_t scatter(const struct msghdr *msg, const uint8_t *data, size_t n)
{
	size_t at = 0;
	for (size_t i = 0; i < msg->msg_iovlen && at < n; i++) {
		size_t k = msg->msg_iov[i].iov_len < n - at ? msg->msg_iov[i].iov_len : n - at;
		memcpy(msg->msg_iov[i].iov_base, data + at, k);
		at += k;
	}
	return at;
}

ssize_t sfy_udpa_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (flags & MSG_ERRQUEUE) /* the kernel's error reports: no relay header */
		return REAL(recvmsg)(fd, msg, flags);
	uint8_t *buf = malloc(DGRAM_MAX);
	if (!buf) {
		errno = ENOBUFS;
		return -1;
	}
	for (;;) {
		struct sockaddr_storage from, src;
		socklen_t slen = 0;
		struct iovec iov = {.iov_base = buf, .iov_len = DGRAM_MAX};
		struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
				   .msg_control = msg->msg_control, .msg_controllen = msg->msg_controllen};
		ssize_t n = REAL(recvmsg)(fd, &m, flags & ~MSG_TRUNC);
		if (n < 0) {
			free(buf);
			return -1;
		}
		size_t skip = 0;
		int v = m.msg_namelen ? classify(fd, (struct sockaddr *)&from, buf, (size_t)n, &skip, &src, &slen) : PASS;
		if (v == DROP) {
			if (flags & MSG_PEEK) /* consume it, then look again */
				REAL(recv)(fd, NULL, 0, MSG_DONTWAIT);
			continue; /* blocking: wait again; non-blocking: EAGAIN when nothing else is there */
		}
		if (v == PASS) {
			src = from;
			slen = m.msg_namelen;
		}
		size_t len = (size_t)n - skip, got = scatter(msg, buf + skip, len);
		free(buf);
		if (msg->msg_name) {
			socklen_t cap = msg->msg_namelen;
			memcpy(msg->msg_name, &src, slen < cap ? slen : cap);
			msg->msg_namelen = slen;
		} else {
			msg->msg_namelen = 0;
		}
		msg->msg_controllen = m.msg_controllen;
		msg->msg_flags = (m.msg_flags & ~MSG_TRUNC) | (got < len ? MSG_TRUNC : 0);
		return (ssize_t)((flags & MSG_TRUNC) ? len : got);
	}
}

ssize_t sfy_udpa_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	return sfy_recvfrom_by_recvmsg(sfy_udpa_recvmsg, fd, buf, n, flags, from, len);
}

void sfy_udpa_closed(int fd)
{
	if (fd < 0 || fd >= SFY_FD_MAX || !__atomic_load_n(&marks[fd], __ATOMIC_ACQUIRE))
		return;
	/* getpid(): a vfork() child shares our memory and must leave it be. */
	pid_t me = getpid();
	int mine = 1;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < N_ASSOC; i++) {
		struct assoc *a = &tab[i];
		if (!a->used || a->fd != fd)
			continue;
		if (a->pid == me && !a->busy)
			drop_entry(a);
		else
			mine = 0;
	}
	if (mine)
		mark(fd, 0);
	pthread_mutex_unlock(&lock);
}

void sfy_udpa_closed_range(unsigned first, unsigned last)
{
	int top = __atomic_load_n(&marks_top, __ATOMIC_RELAXED);
	for (unsigned fd = first; top >= 0 && fd <= last && fd <= (unsigned)top; fd++)
		if (__atomic_load_n(&marks[fd], __ATOMIC_RELAXED))
			sfy_udpa_closed((int)fd);
}
