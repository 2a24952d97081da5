/* Internal to the preloaded library: the real libc functions, the loaded
 * configuration and pool, and the entry points hook files share. */
#ifndef SHIM_H
#define SHIM_H

#include <limits.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sfy_config.h"
#include "sfy_engine.h"
#include "sys.h"
#include "sfy_pool.h"
#include "sfy_wire.h"
#include "socks5_codec.h"

#define SFY_EXPORT __attribute__((visibility("default")))

struct sfy_fdinfo;

extern struct sfy_config sfy_cfg;

/* The session layer (shim/session.c).  The fake-address pool when remote
 * DNS is on: the session's, joined or created at its first use.  NULL when
 * remote DNS is off or the pool cannot be had: names then fail. */
struct sfy_pool *sfy_names_pool(void);
/* The name behind a fake address: 1 and name; 0 when sa is no fake address
 * (or remote DNS is off); -1 for a fake address no name holds.  Joins the
 * session's pool, never creates one. */
int sfy_fake_name(const struct sockaddr *sa, char *name, size_t cap);
/* Constructor: the session id from the inherited SOCKSIFY_SESSION, or a new
 * one exported to children; secure: a private pool. */
void sfy_session_setup(const char *inherited, int secure);
/* The id in use (NULL: private pool). */
const char *sfy_session_id(void);
/* pthread_atfork prepare: a private pool is made before the fork. */
void sfy_session_before_fork(void);
/* In both the parent and the child, after fork(). */
void sfy_session_after_fork(void);
/* The process is ending: the leader removes the session's object. */
void sfy_session_end(void);


/* Idempotent, thread-safe; every hook calls it first. */
void sfy_init(void);

/* One proxy, passed explicitly to whatever talks to it. */
struct sfy_chain;
struct sfy_chain_engine;
struct sfy_proxy {
	const struct sockaddr_storage *addr; /* the route's first hop */
	socklen_t len;
	const char *text; /* for log lines */
	struct sfy_hop hop;
	const struct sfy_chain *chain; /* the route (in sfy_cfg) */
};
/* The first route of the configuration; a given route. */
void sfy_proxy_configured(struct sfy_proxy *p);
void sfy_proxy_of_chain(struct sfy_proxy *p, const struct sfy_chain *c);
/* "hop1 > hop2 > ..." for log lines. */
void sfy_route_text(const struct sfy_proxy *p, char *out, size_t cap);
/* A route worked (err 0) or failed: with several routes, the session
 * skips one that is down for retry_after seconds. */
void sfy_route_outcome(const struct sfy_chain *route, const struct sfy_chain_engine *c, int err);
/* One log line for the outcome of an exchange (c NULL: invalid config). */
void sfy_log_outcome(const struct sfy_proxy *p, const struct s5_addr *dst, const struct sfy_chain_engine *c, int err,
		     long long t0);
/* A proxied CONNECT succeeded: record fd as connected (info: what the
 * program connected to, updated with the reply's BND). */
void sfy_connect_established(int fd, struct sfy_fdinfo *info, const struct s5_reply *reply, const struct s5_addr *dst);

/* Where a destination goes.  DNS: port 53 of a destination that would go
 * direct, under remote DNS (sfy_dns_intercepted): answered in the process. */
enum sfy_route { SFY_ROUTE_DIRECT, SFY_ROUTE_PROXY, SFY_ROUTE_REFUSE, SFY_ROUTE_DNS };

/* Decide for a stream (is_stream) or datagram socket; for PROXY fills dst
 * (name for fake addresses), for REFUSE sets *err. */
enum sfy_route sfy_route_for(const struct sockaddr *sa, int is_stream, struct s5_addr *dst, int *err);
/* A name that is resolved and reached directly: a direct_domain, or a
 * `route = ... direct` rule's name. */
int sfy_name_goes_direct(const char *name);
/* Connect fd through the proxy to dst.  Returns 0, or -1 with errno set. */
int sfy_proxy_connect(int fd, const struct sockaddr *app_addr, socklen_t app_len, const struct s5_addr *dst);
/* UDP ASSOCIATE for dst over ctl, a fresh blocking TCP socket of the
 * proxy's family: connect, negotiate, read the reply (logged either way). */
int sfy_proxy_udp_associate(int ctl, const struct s5_addr *dst, struct s5_reply *reply);
/* BIND on fd (bound, not yet connected) for dst; reads reply 1. */
int sfy_proxy_bind(int fd, const struct s5_addr *dst, struct s5_reply *reply1, int app_family);
/* Reply 2 of a BIND: wait up to bind_timeout, or EAGAIN until complete. */
int sfy_bind_reply2(int fd, int wait, struct s5_reply *reply);
/* The destination of this process's latest proxied CONNECT; 0 if none. */
int sfy_last_connect_dst(struct s5_addr *out);
/* 1: TCP-like stream socket; 0: other INET socket; -1: not a socket. */
int sfy_socket_kind(int fd);
/* Copy a socket address out as getpeername() does: truncated to *len,
 * *len set to its full size; nothing when addr or len is NULL. */
void sfy_copy_sockaddr(const void *src, socklen_t src_len, struct sockaddr *addr, socklen_t *len);
/* addr is a complete AF_INET or AF_INET6 address. */
int sfy_inet_addr_ok(const struct sockaddr *addr, socklen_t len);
/* Put socket fresh at fd's number, keeping fd's FD_CLOEXEC and file status
 * flags (O_NONBLOCK); fresh is closed either way.  0, or -1 with errno. */
int sfy_swap_socket(int fd, int fresh);
/* Start the BIND of a candidate fd (reply 1); fills info. */
int sfy_bind_start(int fd, struct sfy_fdinfo *info);
/* A SOCKS address as a sockaddr of family (v4-mapped on IPv6 sockets);
 * the proxy's own address stands in for 0.0.0.0, :: or a name.  An IPv6
 * address for an IPv4 socket: 0 when strict, else the proxy's IPv4 address
 * (0 if it has none). */
socklen_t sfy_socks_to_sockaddr(const struct s5_addr *a, int family, struct sockaddr_storage *out, int strict);
/* The hooks' own code, behind the exported entry points and reached also
 * through syscall() (shim/hook_syscall.c): never call the exports from
 * inside the library (tests/bats/layering.bats). */
int sfy_sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags);
int sfy_recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, int flags, struct timespec *timeout);
int sfy_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t sfy_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len);
ssize_t sfy_sendmsg(int fd, const struct msghdr *msg, int flags);
int sfy_socket(int domain, int type, int protocol);
int sfy_bind(int fd, const struct sockaddr *addr, socklen_t len);
int sfy_listen(int fd, int backlog);
int sfy_accept(int fd, struct sockaddr *addr, socklen_t *len);
int sfy_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int sfy_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int sfy_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
ssize_t sfy_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len);
ssize_t sfy_recvmsg(int fd, struct msghdr *msg, int flags);
/* What close() and syscall(SYS_close) do before closing (shim/hook_fd.c):
 * -1 with EBADF for an fd of the library's own. */
int sfy_close_prepare(int fd);
int sfy_close_range(unsigned first, unsigned last, int flags);
/* 0.0.0.0, :: or a name. */
int s5_addr_unspecified(const struct s5_addr *a);

/* recvfrom() as one recvmsg() of recv_fn: for the modules that rewrite
 * what a socket receives (shim/dns_pkt.c, shim/udp_assoc.c). */
static inline ssize_t sfy_recvfrom_by_recvmsg(ssize_t (*recv_fn)(int, struct msghdr *, int), int fd, void *buf,
					      size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (from && len) {
		m.msg_name = from;
		m.msg_namelen = *len;
	}
	ssize_t rc = recv_fn(fd, &m, flags);
	if (rc >= 0 && from && len)
		*len = m.msg_namelen;
	return rc;
}

#endif
