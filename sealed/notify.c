/* One notification: a connect, sendto, sendmsg or sendmmsg of the program
 * that the preload did not handle (or did, and then it goes to the proxy
 * or a direct destination and continues at once).
 *
 * The address is read from the program's memory, then checked with the
 * library's own rules (sfy_route_for).  With CONTINUE the kernel reads it
 * again when the call goes on: a program that changes it in between gets
 * past the check.  That is the documented limit of user notification; it
 * is leak prevention for honest programs, not a sandbox. */
#include "shim.h"
#include "sup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sfy_log.h"

#define SFY_DNS_QUERY_MAX 4096 /* bytes of a query taken from a sendto/sendmsg */
#define SFY_MMSG_MAX 64        /* messages of a sendmmsg checked (more: refused) */
#define SFY_IOV_MAX 16

enum verdict { V_CONTINUE, V_ERR, V_DONE };

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* Datagrams to the proxy's own host, on any port: the UDP relay of an
 * association the preloaded library made. */
static int to_proxy_host(const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	const struct sockaddr *p = (const struct sockaddr *)&sfy_cfg.proxy;
	if (sa->sa_family != p->sa_family)
		return 0;
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == ((const struct sockaddr_in *)p)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &((const struct sockaddr_in6 *)p)->sin6_addr, 16) == 0;
}

/* Port 53 under remote DNS, to any resolver but a direct_dns one or the
 * proxy: a program the preload does not see asks its own resolver there
 * (loopback, the LAN's, a public one), and the session pool answers.  The
 * library answers only direct destinations' port 53 and relays the rest
 * through UDP ASSOCIATE; such a program has nobody to add the header. */
static int dns_answered(const struct sockaddr *sa)
{
	struct sockaddr_in v4;
	if (!sfy_cfg.remote_dns)
		return 0;
	if (sfy_unmap_v4(sa, &v4))
		sa = (const struct sockaddr *)&v4;
	uint16_t port = ntohs(sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
						       : ((const struct sockaddr_in6 *)sa)->sin6_port);
	if (port != 53 || sfy_addr_is_proxy(&sfy_cfg, sa))
		return 0;
	for (int i = 0; i < sfy_cfg.n_direct_dns; i++)
		if (sfy_cidr_match(&sfy_cfg.direct_dns[i], sa))
			return 0;
	return 1;
}

/* Read the destination of a call: 1 with *ss filled, 0 when the call is no
 * business of ours (no address, another family: it continues), -1 with
 * errno when the program's memory cannot be read. */
static int read_dest(const struct sfy_target *t, uint64_t addr, uint64_t len, struct sockaddr_storage *ss)
{
	if (!addr || len < sizeof(sa_family_t))
		return 0;
	size_t n = len < sizeof *ss ? (size_t)len : sizeof *ss;
	memset(ss, 0, sizeof *ss);
	if (sfy_target_read(t, addr, ss, n) < 0)
		return -1;
	if (ss->ss_family == AF_INET)
		return n >= sizeof(struct sockaddr_in);
	if (ss->ss_family == AF_INET6)
		return n >= sizeof(struct sockaddr_in6);
	return 0;
}

static int sock_type(int sock)
{
	int type = 0;
	socklen_t len = sizeof type;
	return getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

/* One line per refusal; UDP connects at info only: they send nothing, and
 * Go probes source addresses with them (RFC 6724 sorting) all the time. */
static void refused(const struct sfy_target *t, const char *what, const struct sockaddr *sa, int err)
{
	int level = strcmp(what, "UDP connect") == 0 ? SFY_LOG_INFO : SFY_LOG_WARN;
	if (!sfy_log_enabled(level))
		return;
	char comm[16], dst[80];
	sfy_target_comm((pid_t)t->n->pid, comm);
	addr_text(sa, dst, sizeof dst);
	sfy_log(level, "sealed: %s to %s by %s[%u] refused: %s", what, dst, comm, t->n->pid, strerror(err));
}

/* connect(): TCP through the proxy, DNS to the answerer, the rest by the
 * rules.  Returns V_DONE when the reply was (or will be) sent. */
static enum verdict on_connect(const struct sfy_target *t, int *err)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	int r = read_dest(t, t->n->data.args[1], t->n->data.args[2], &ss);
	if (r <= 0) {
		*err = EFAULT;
		return r == 0 ? V_CONTINUE : V_ERR;
	}
	if (sfy_addr_is_proxy(&sfy_cfg, sa) || (sfy_addr_is_direct(&sfy_cfg, sa) && !dns_answered(sa)))
		return V_CONTINUE;
	int sock = sfy_target_getfd(t, (int)t->n->data.args[0]);
	if (sock < 0) {
		*err = errno == EBADF ? EBADF : ENOTSOCK;
		return V_ERR;
	}
	int type = sock_type(sock);
	enum verdict v = V_ERR;
	struct s5_addr dst;
	if (type < 0) {
		*err = ENOTSOCK;
	} else if ((type == SOCK_STREAM || type == SOCK_DGRAM) && dns_answered(sa)) {
		if (sfy_dnsd_redirect(sock, type) == 0) {
			sfy_reply_val(t, 0);
			v = V_DONE;
		} else {
			*err = errno;
		}
	} else if (type == SOCK_DGRAM && to_proxy_host(sa)) {
		v = V_CONTINUE;
	} else {
		enum sfy_route route = sfy_route_for(sa, type == SOCK_STREAM, &dst, err);
		if (route == SFY_ROUTE_DIRECT) {
			v = V_CONTINUE;
		} else if (route == SFY_ROUTE_PROXY && type == SOCK_STREAM) {
			char comm[16];
			sfy_target_comm((pid_t)t->n->pid, comm);
			sfy_proxy_start(t, sock, &dst, comm);
			return V_DONE; /* the worker owns sock and replies */
		} else if (route == SFY_ROUTE_PROXY) {
			/* UDP (or a raw socket) of a program the preload does
			 * not see: nobody could add the SOCKS UDP header. */
			*err = EPERM;
			refused(t, type == SOCK_DGRAM ? "UDP connect" : "connect", sa, *err);
		} else {
			refused(t, "connect", sa, *err);
		}
	}
	close(sock);
	return v;
}

/* A datagram (or TCP Fast Open data) for sa; payload: where to find the
 * bytes when it is a DNS query to answer (NULL: not needed yet). */
static enum verdict on_send(const struct sfy_target *t, const struct sockaddr *sa, const struct iovec *iov, int iovcnt,
			    int flags, int *err)
{
	if (sfy_addr_is_proxy(&sfy_cfg, sa) || to_proxy_host(sa) ||
	    (sfy_addr_is_direct(&sfy_cfg, sa) && !dns_answered(sa)))
		return V_CONTINUE;
	int sock = sfy_target_getfd(t, (int)t->n->data.args[0]);
	if (sock < 0) {
		*err = errno == EBADF ? EBADF : ENOTSOCK;
		return V_ERR;
	}
	enum verdict v = V_ERR;
	struct s5_addr dst;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int type = sock_type(sock);
	*err = EPERM;
	if (type == SOCK_STREAM && (!(flags & MSG_FASTOPEN) || getpeername(sock, (struct sockaddr *)&peer, &plen) == 0)) {
		v = V_CONTINUE; /* TCP ignores the address of a connected socket */
	} else if (type == SOCK_DGRAM && dns_answered(sa)) {
		uint8_t q[SFY_DNS_QUERY_MAX];
		size_t len = 0;
		for (int i = 0; i < iovcnt && len < sizeof q; i++) {
			size_t n = iov[i].iov_len < sizeof q - len ? iov[i].iov_len : sizeof q - len;
			if (n && sfy_target_read(t, (uint64_t)(uintptr_t)iov[i].iov_base, q + len, n) < 0)
				break;
			len += n;
		}
		if (sfy_target_valid(t) && sfy_dnsd_forward(sock, q, len) == 0) {
			size_t total = 0;
			for (int i = 0; i < iovcnt; i++)
				total += iov[i].iov_len;
			sfy_reply_val(t, (int64_t)total);
			v = V_DONE;
		} else {
			*err = errno ? errno : EIO;
		}
	} else {
		enum sfy_route route = sfy_route_for(sa, type == SOCK_STREAM, &dst, err);
		if (route == SFY_ROUTE_DIRECT)
			v = V_CONTINUE;
		else if (route == SFY_ROUTE_PROXY)
			*err = type == SOCK_STREAM ? EOPNOTSUPP : EPERM; /* Fast Open, or UDP nobody relays */
		if (v == V_ERR)
			refused(t, type == SOCK_STREAM ? "TCP Fast Open" : type == SOCK_DGRAM ? "UDP send" : "send", sa, *err);
	}
	close(sock);
	return v;
}

static enum verdict on_sendto(const struct sfy_target *t, int *err)
{
	struct sockaddr_storage ss;
	int r = read_dest(t, t->n->data.args[4], t->n->data.args[5], &ss);
	if (r <= 0) {
		*err = EFAULT;
		return r == 0 ? V_CONTINUE : V_ERR;
	}
	struct iovec iov = {(void *)(uintptr_t)t->n->data.args[1], (size_t)t->n->data.args[2]};
	return on_send(t, (struct sockaddr *)&ss, &iov, 1, (int)t->n->data.args[3], err);
}

/* One msghdr of the program's (at addr): its destination and payload. */
static enum verdict on_msghdr(const struct sfy_target *t, uint64_t addr, int flags, int *err)
{
	struct msghdr mh;
	struct sockaddr_storage ss;
	struct iovec iov[SFY_IOV_MAX];
	if (sfy_target_read(t, addr, &mh, sizeof mh) < 0) {
		*err = EFAULT;
		return V_ERR;
	}
	int r = read_dest(t, (uint64_t)(uintptr_t)mh.msg_name, mh.msg_namelen, &ss);
	if (r <= 0) {
		*err = EFAULT;
		return r == 0 ? V_CONTINUE : V_ERR;
	}
	int n = mh.msg_iovlen < SFY_IOV_MAX ? (int)mh.msg_iovlen : SFY_IOV_MAX;
	if (n && sfy_target_read(t, (uint64_t)(uintptr_t)mh.msg_iov, iov, (size_t)n * sizeof iov[0]) < 0) {
		*err = EFAULT;
		return V_ERR;
	}
	return on_send(t, (struct sockaddr *)&ss, iov, n, flags, err);
}

/* sendmmsg(): every message must be one that may go on as it is. */
static enum verdict on_sendmmsg(const struct sfy_target *t, int *err)
{
	unsigned vlen = (unsigned)t->n->data.args[2];
	if (vlen > SFY_MMSG_MAX) {
		*err = EPERM;
		sfy_log(SFY_LOG_WARN, "sealed: sendmmsg of %u messages by pid %u refused (at most %d are checked)", vlen,
			t->n->pid, SFY_MMSG_MAX);
		return V_ERR;
	}
	for (unsigned i = 0; i < vlen; i++) {
		struct mmsghdr mm;
		uint64_t at = t->n->data.args[1] + (uint64_t)i * sizeof mm;
		struct sockaddr_storage ss;
		if (sfy_target_read(t, at, &mm, sizeof mm) < 0) {
			*err = EFAULT;
			return V_ERR;
		}
		int r = read_dest(t, (uint64_t)(uintptr_t)mm.msg_hdr.msg_name, mm.msg_hdr.msg_namelen, &ss);
		if (r < 0) {
			*err = EFAULT;
			return V_ERR;
		}
		const struct sockaddr *sa = (const struct sockaddr *)&ss;
		if (r == 0 || sfy_addr_is_proxy(&sfy_cfg, sa) || to_proxy_host(sa) ||
		    (sfy_addr_is_direct(&sfy_cfg, sa) && !dns_answered(sa)))
			continue;
		*err = EPERM;
		refused(t, "sendmmsg", sa, *err);
		return V_ERR;
	}
	return V_CONTINUE;
}

void sfy_notify_handle(int listener, const struct seccomp_notif *n)
{
	struct sfy_target t = {.n = n, .listener = listener};
	int err = EPERM;
	enum verdict v;
	errno = 0;
	switch (n->data.nr) {
	case SYS_connect:
		v = on_connect(&t, &err);
		break;
	case SYS_sendto:
		v = on_sendto(&t, &err);
		break;
	case SYS_sendmsg:
		v = on_msghdr(&t, n->data.args[1], (int)n->data.args[2], &err);
		break;
	case SYS_sendmmsg:
		v = on_sendmmsg(&t, &err);
		break;
	default: /* the filter sends nothing else: fail closed */
		sfy_log(SFY_LOG_WARN, "sealed: unexpected system call %d from pid %u refused", n->data.nr, n->pid);
		v = V_ERR;
		break;
	}
	if (v == V_CONTINUE)
		sfy_reply_continue(&t);
	else if (v == V_ERR)
		sfy_reply_err(&t, err);
}
