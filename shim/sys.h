/* The private libc layer.  Inside the preloaded library (built with
 * -DSFY_LIBRARY) every call to a function the library also exports goes to
 * the real libc function behind it, looked up with dlsym(RTLD_NEXT) at its
 * first use, never back into our own hooks: `readelf -r` shows no
 * relocation against our own exports (tests/bats/layering.bats).  Code
 * shared with programs that do not preload the library (socksify --check,
 * the unit tests and fuzzers) calls libc directly through the same names. */
#ifndef SFY_SYS_H
#define SFY_SYS_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef SFY_LIBRARY
struct __res_state;
struct sfy_real {
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*fcntl64)(int, int, ...);
	int (*close_range)(unsigned, unsigned, int);
	int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	void (*freeaddrinfo)(struct addrinfo *);
	int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int);
	struct hostent *(*gethostbyname)(const char *);
	struct hostent *(*gethostbyname2)(const char *, int);
	int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);
	struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
	int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **, int *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned, int);
	int (*socket)(int, int, int);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*ioctl)(int, unsigned long, ...);
	/* The asynchronous handshake's waits and reads/writes (shim/hook_wait.c,
	 * shim/hook_io.c). */
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*__poll_chk)(struct pollfd *, nfds_t, int, size_t);
	int (*__ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*__read_chk)(int, void *, size_t, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*__recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*__recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned, int, struct timespec *);
	ssize_t (*send)(int, const void *, size_t, int);
	long (*syscall)(long, ...);
	void (*_exit)(int) __attribute__((noreturn));
	/* The res_* family and getaddrinfo_a (shim/hook_res.c). */
	int (*res_query)(const char *, int, int, unsigned char *, int);
	int (*res_search)(const char *, int, int, unsigned char *, int);
	int (*res_querydomain)(const char *, const char *, int, int, unsigned char *, int);
	int (*res_send)(const unsigned char *, int, unsigned char *, int);
	int (*res_nquery)(struct __res_state *, const char *, int, int, unsigned char *, int);
	int (*res_nsearch)(struct __res_state *, const char *, int, int, unsigned char *, int);
	int (*res_nquerydomain)(struct __res_state *, const char *, const char *, int, int, unsigned char *, int);
	int (*res_nsend)(struct __res_state *, const unsigned char *, int, unsigned char *, int);
	int (*getaddrinfo_a)(int, struct gaicb **, int, struct sigevent *);
};

extern struct sfy_real sfy_real;

/* The real function behind hook f, looked up at its first use: a program
 * pays dlsym() only for the calls it makes.  NULL when libc lacks it. */
#define REAL(f) ((__typeof__(sfy_real.f))sfy_real_get((void **)&sfy_real.f, #f))
#define SFY_REAL_MISSING ((void *)1)
void *sfy_real_resolve(void **slot, const char *name);
static inline void *sfy_real_get(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (__builtin_expect(f == NULL, 0))
		return sfy_real_resolve(slot, name);
	return f == SFY_REAL_MISSING ? NULL : f;
}
#define SYS(f) REAL(f)
#else
#define SYS(f) f
#endif

/* The calls shared code makes (shim/wire.c, shim/config.c, shim/hosts.c,
 * shim/log.c): the library's own hooks are never among their targets. */
#define sfy_sys_close(fd) SYS(close)(fd)
#define sfy_sys_read(fd, buf, n) SYS(read)(fd, buf, n)
#define sfy_sys_write(fd, buf, n) SYS(write)(fd, buf, n)
#define sfy_sys_poll(fds, n, ms) SYS(poll)(fds, n, ms)
#define sfy_sys_recv(fd, buf, n, fl) SYS(recv)(fd, buf, n, fl)
#define sfy_sys_send(fd, buf, n, fl) SYS(send)(fd, buf, n, fl)
#define sfy_sys_getsockopt(fd, l, o, v, n) SYS(getsockopt)(fd, l, o, v, n)
#define sfy_sys_setsockopt(fd, l, o, v, n) SYS(setsockopt)(fd, l, o, v, n)
#define sfy_sys_fcntl(fd, cmd, arg) SYS(fcntl)(fd, cmd, arg)
#define sfy_sys_socket(d, t, p) SYS(socket)(d, t, p)
#define sfy_sys_connect(fd, a, l) SYS(connect)(fd, a, l)

#endif
