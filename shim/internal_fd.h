/* The library's own file descriptors inside the program (the DNS answering
 * of shim/dns_pkt.c and shim/dns_tcp.c): kept at high numbers, O_CLOEXEC,
 * and protected from the program, whose close(), close_range(), dup2() and
 * dup3() never take one away from us.  A fork child keeps them (exec closes
 * them).  Callers refer to one by a handle, since its number can change
 * when the program dup2()s over it.  Private to the library. */
#ifndef SFY_INTERNAL_FD_H
#define SFY_INTERNAL_FD_H

#define SFY_IFD_MAX 256

/* Internal fds exist: while 0, the close/dup hooks go straight to libc. */
extern int sfy_ifd_count;
static inline int sfy_ifd_any(void)
{
	return __atomic_load_n(&sfy_ifd_count, __ATOMIC_RELAXED) != 0;
}

/* Take fd over: move it to a high number (close-on-exec) and register it.
 * Returns a handle (>= 0), or -1 with errno (fd is closed then). */
int sfy_ifd_adopt(int fd);
/* The current number behind handle h, with the registry locked so that it
 * cannot move: non-blocking I/O only, then sfy_ifd_unlock().  -1 (still
 * locked) when h is not registered. */
int sfy_ifd_lock_fd(int h);
void sfy_ifd_unlock(void);
/* The number behind h without the lock, for a bounded poll(): it may have
 * moved by the time it is used (the poll then ends early or times out). */
int sfy_ifd_peek_fd(int h);
/* Unregister and close. */
void sfy_ifd_release(int h);

/* 1 when fd is one of ours (the program's close of it is refused). */
int sfy_ifd_is(int fd);
/* The program is about to make fd a copy of another (dup2, dup3): if fd
 * is ours, move ours elsewhere first.  -1 with errno when that failed. */
int sfy_ifd_make_room(int fd);
/* close_range(first, last, flags) around our fds.  Returns what the real
 * call(s) returned. */
int sfy_ifd_close_range(unsigned first, unsigned last, int flags);

#endif
