/* Per-fd state of sockets the shim handled.  Entries remember the socket's
 * inode, so a stale entry (fd closed behind our back, e.g. by a libc
 * internal close) is never mistaken for a new socket with the same number. */
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
	int n_epoll;
	struct sfy_epoll_reg epoll[SFY_FD_MAX_EPOLL];
};

/* Record info for fd (fills dev/ino itself).  Returns 0 or -1 (ENOMEM, EBADF). */
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

#endif
