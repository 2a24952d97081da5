/* Per-fd state of sockets the shim handled.  Entries remember the socket's
 * inode, so a stale entry (fd closed behind our back, e.g. by a libc
 * internal close) is never mistaken for a new socket with the same number. */
#ifndef SFY_FDTABLE_H
#define SFY_FDTABLE_H

#include <sys/socket.h>
#include <sys/types.h>

#define SFY_FD_MAX (1 << 20)

struct sfy_fdinfo {
	dev_t dev;
	ino_t ino;
	struct sockaddr_storage peer; /* what the program connected to */
	socklen_t peer_len;
	int app_family; /* family the program created; differs when swapped */
};

/* Record info for fd (fills dev/ino itself).  Returns 0 or -1 (ENOMEM, EBADF). */
int sfy_fd_set(int fd, struct sfy_fdinfo *info);
/* 1 and a copy when fd has a live entry, else 0. */
int sfy_fd_get(int fd, struct sfy_fdinfo *out);
void sfy_fd_clear(int fd);
void sfy_fd_copy(int from, int to);
void sfy_fd_clear_range(unsigned first, unsigned last);
void sfy_fd_lock(void);
void sfy_fd_unlock(void);

#endif
