/* Per-fd state of sockets the shim handled.  A stale entry (fd closed behind
 * our back, e.g. by a libc internal close, or by a vfork() child) is never
 * mistaken for a new socket with the same number: a CONNECT entry is live
 * while the socket's peer is the proxy, the others remember the socket's
 * inode.  socket() and direct connect()s clear the entry of their number. */
#ifndef SFY_FDTABLE_H
#define SFY_FDTABLE_H

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SFY_FD_MAX (1 << 20)

enum sfy_fd_kind {
	SFY_FD_CONNECTED = 1, /* proxied CONNECT */
	SFY_FD_BIND_CANDIDATE, /* bound; becomes a BIND at listen() */
	SFY_FD_BIND_WAITING,   /* reply 1 in, reply 2 expected: "listening" */
	SFY_FD_BIND_DONE,      /* reply 2 consumed or failed: an inert listener */
	SFY_FD_ACCEPTED,       /* the data stream of a BIND */
	SFY_FD_DNS_UDP,        /* UDP "connected" to a nameserver we answer for (peer) */
	SFY_FD_DNS_TCP,        /* TCP to a nameserver we answer for (peer) */
	SFY_FD_UDP_PROXY,      /* UDP "connected" to a destination behind UDP ASSOCIATE (peer) */
	SFY_FD_RELAYED,        /* a protected CONNECT/BIND stream: our socketpair end at the fd (shim/relay.h); peer, local as CONNECTED */
};

#define SFY_FD_MAX_EPOLL 4

/* An epoll registration of a BIND fd, replayed when accept() swaps the
 * socket behind the fd number (epoll watches the socket, not the number). */
struct sfy_epoll_reg {
	int epfd;
	struct epoll_event ev;
};

struct sfy_fdinfo {
	dev_t dev;
	ino_t ino;
	int kind;                     /* enum sfy_fd_kind */
	struct sockaddr_storage peer; /* CONNECTED: what the program connected to; ACCEPTED: reply 2 BND */
	socklen_t peer_len;
	struct sockaddr_storage local; /* what getsockname() shows: CONNECT's BND, BIND's reply 1 BND */
	socklen_t local_len;
	int app_family;               /* family the program created; differs when swapped */
	int bind_errno;               /* BIND_DONE after a failure: accept() repeats it */
	int wrapped;                  /* BIND_WAITING: GSSAPI-protected (its context parked by fd, sfy_gss_park) */
	int n_epoll;
	struct sfy_epoll_reg epoll[SFY_FD_MAX_EPOLL];
};

/* Keep regs (*n of SFY_FD_MAX_EPOLL used) in step with epoll_ctl(epfd, op,
 * fd, ev): -1 when an ADD or MOD does not fit. */
int sfy_epoll_reg_note(struct sfy_epoll_reg *regs, int *n, int epfd, int op, const struct epoll_event *ev);
/* Record info for fd (fills dev/ino itself, except for a CONNECT entry, which
 * needs none).  Returns 0 or -1 (ENOMEM, EBADF). */
int sfy_fd_set(int fd, struct sfy_fdinfo *info);
/* 1 and a copy when fd has a live entry, else 0. */
int sfy_fd_get(int fd, struct sfy_fdinfo *out);
void sfy_fd_clear(int fd);
void sfy_fd_copy(int from, int to);
/* Track epoll_ctl(epfd, op, fd, ev) for fds in a BIND state. */
void sfy_fd_note_epoll(int fd, int epfd, int op, const struct epoll_event *ev);
/* Up to max fds whose entry has kind (live or not: callers verify). */
int sfy_fd_list(int kind, int *out, int max);
void sfy_fd_lock(void);
void sfy_fd_unlock(void);

/* What the shim's own hooks saw of a socket, kept so that connect() need
 * not ask the kernel.  SFY_SOCK_TCP: socket() made an INET stream socket
 * with this number; SFY_SOCK_NONBLOCK: O_NONBLOCK, as set by socket(),
 * fcntl() or ioctl(FIONBIO); SFY_SOCK_SNDTIMEO: the program set SO_SNDTIMEO;
 * SFY_SOCK_FRESH: connect() has not been called on it yet (its epoll
 * registrations are noted for the asynchronous handshake).
 * 0 is "nothing known": callers ask the kernel.  A number whose socket was
 * closed behind the hooks' back can keep stale facts, so only "TCP" is ever
 * trusted, and only where trusting it wrongly fails closed. */
enum { SFY_SOCK_TCP = 1, SFY_SOCK_NONBLOCK = 2, SFY_SOCK_SNDTIMEO = 4, SFY_SOCK_FRESH = 8 };
unsigned sfy_sock_facts(int fd);
void sfy_sock_facts_set(int fd, unsigned facts);
void sfy_sock_facts_change(int fd, unsigned set, unsigned clear);
/* O_NONBLOCK turned on or off by fcntl(F_SETFL) or ioctl(FIONBIO). */
void sfy_sock_facts_nonblock(int fd, int on);
/* dup(): both numbers share the socket, and a change made through either is
 * seen for that number only: nothing is known of either from then on. */
void sfy_sock_facts_copy(int from, int to);
void sfy_sock_facts_clear_range(unsigned first, unsigned last);

#endif
