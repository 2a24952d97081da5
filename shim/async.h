/* The event driver (shim/async.c): SOCKS handshakes of non-blocking
 * sockets, moved forward whenever the program waits on the fd or touches
 * it, never by a wait of ours.  Private to the library. */
#ifndef SFY_ASYNC_H
#define SFY_ASYNC_H

#include <poll.h>
#include <sys/epoll.h>

#include "shim.h"

/* Handshakes under way plus failures not yet reported: while 0, every wait
 * and I/O hook goes straight to libc. */
extern int sfy_async_count;
static inline int sfy_async_any(void)
{
	return __atomic_load_n(&sfy_async_count, __ATOMIC_RELAXED) != 0;
}
/* Set at the first asynchronous handshake and never cleared: epoll_wait
 * filters its events from then on (a thread may have entered its wait
 * before the handshake began). */
extern int sfy_async_used;
/* Handshakes ended so far (done or failed): a wait that saw this change
 * has the program's own events to collect before it may return empty. */
extern unsigned sfy_async_settled;

/* Take over fd, whose TCP connect to p is under way (connected: done
 * already), with e started for the exchange and info what connect() will
 * record.  Returns -1 with errno EINPROGRESS, as a real non-blocking
 * connect() does, or with the error that stopped it. */
int sfy_async_begin(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info,
		    int connected, long long t0);

/* A non-blocking connect() to a name while this process has a handshake
 * to the same name under way through the other address family: a
 * happy-eyeballs client's second attempt (node, curl, browsers start one
 * when the first has not connected within 200-300 ms, and through a slow
 * proxy the handshake is part of that time).  Both addresses are fakes of
 * one name, the same way through the proxy: the second attempt is held
 * back without a proxy connection, and goes ahead only if the first fails,
 * or if the program still wants it a second after the first succeeded
 * (a happy-eyeballs client has closed it by then).  Returns -1 with
 * EINPROGRESS when held back, 0 when connect() should go on as usual. */
int sfy_async_queue(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info,
		    const struct sockaddr *proxy, socklen_t proxy_len, long long t0);

/* node's happy eyeballs closes a first attempt that has not connected in
 * 250 ms, then connects to the other address: its handshake is parked at
 * close() and taken over here by the next connect() of this process to
 * the same name and port through the same proxy.  -1 with EINPROGRESS when
 * taken over (fd now holds that proxy connection), 0 when not. */
int sfy_async_adopt(int fd, const struct sfy_proxy *p, const struct sfy_chain_engine *c, const struct sfy_fdinfo *info);

enum { SFY_ASYNC_NONE, SFY_ASYNC_PENDING, SFY_ASYNC_FAILED };
/* Step fd's handshake if it has one (no waiting), then: NONE (not ours, or
 * done: go ahead), PENDING, or FAILED with *err (reported, hence cleared,
 * when consume). */
int sfy_async_touch(int fd, int consume, int *err);
/* The read/write family on a handshaking fd: 0 go ahead; -1 with errno
 * (EAGAIN while the handshake runs, its error once it failed). */
int sfy_async_io_check(int fd);
/* connect() again on fd: 1 and *rc/errno when the async state answers it
 * (EALREADY, EISCONN, the failure), 0 when connect() should go on. */
int sfy_async_connect_again(int fd, int *rc);
/* close(), dup2() over fd, close_range(): forget fd (this process only). */
void sfy_async_closed(int fd);
void sfy_async_closed_range(unsigned first, unsigned last);
/* socket() made fd: a new socket, nothing known of its registrations. */
void sfy_async_new_socket(int fd);

/* poll() family: rewrite the program's pollfds for the handshakes among
 * them (saved: the program's events, nfds of them), and put them back with
 * the events the program is to see.  prepare returns how many fds are
 * ready without waiting (failures to report); finish the number of fds
 * with events and whether any handshake event was hidden. */
int sfy_async_poll_prepare(struct pollfd *fds, nfds_t n, short *saved);
int sfy_async_poll_finish(struct pollfd *fds, nfds_t n, const short *saved, int *hidden);
/* 1 when some fd of the array is handshaking or failed. */
int sfy_async_poll_involved(const struct pollfd *fds, nfds_t n);
/* Earliest deadline of a handshake (sfy_now_ms clock), SFY_NO_DEADLINE. */
long long sfy_async_deadline(void);
/* Fail every handshake past its deadline (ETIMEDOUT). */
void sfy_async_expire(void);
/* 1 when fd < nfds is a handshaking or failed fd. */
int sfy_async_fd_involved(int fd);

/* epoll: the program's registrations of handshaking fds are kept, and the
 * kernel's carry the engine's interest meanwhile. */
int sfy_async_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
/* The n events epoll_wait returned on epfd, with the handshake's own taken
 * out (and stepped); returns how many are left for the program. */
int sfy_async_epoll_filter(int epfd, struct epoll_event *ev, int n);

/* fork(): the child leaves the parent's handshakes alone. */
void sfy_async_fork_prepare(void);
void sfy_async_fork_parent(void);
void sfy_async_fork_child(void);

#endif
