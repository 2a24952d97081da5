/* syscall(): programs that make the socket calls as raw system calls (libuv
 * closes its sockets with syscall(SYS_close) and batches datagrams with
 * SYS_sendmmsg and SYS_recvmmsg; some programs connect with
 * syscall(SYS_connect)) get the same code as through the libc entry points:
 * the library's internal functions, never its exported hooks (no
 * relocation against our own exports: tests/bats/layering.bats).  Every
 * other number passes through unchanged with all six argument registers:
 * refusing numbers we do not know breaks programs.  (On targets with
 * socketcall(2) instead of separate numbers, that one passes through.) */
#include "shim.h"

#include <stdarg.h>
#include <sys/syscall.h>

#define S(x) ((struct sockaddr *)(x))
#define CS(x) ((const struct sockaddr *)(x))
#define LEN(x) ((socklen_t *)(x))

/* A socket call of the library's: 1 and *rc; 0 for anything else. */
static int socket_call(long number, const long a[6], long *rc)
{
	switch (number) {
#ifdef SYS_connect
	case SYS_connect:
		return *rc = sfy_connect((int)a[0], CS(a[1]), (socklen_t)a[2]), 1;
#endif
#ifdef SYS_sendto
	case SYS_sendto:
		return *rc = sfy_sendto((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3], CS(a[4]), (socklen_t)a[5]), 1;
#endif
#ifdef SYS_sendmsg
	case SYS_sendmsg:
		return *rc = sfy_sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]), 1;
#endif
#ifdef SYS_sendmmsg
	case SYS_sendmmsg:
		return *rc = sfy_sendmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3]), 1;
#endif
#ifdef SYS_recvfrom
	case SYS_recvfrom:
		return *rc = sfy_recvfrom((int)a[0], (void *)a[1], (size_t)a[2], (int)a[3], S(a[4]), LEN(a[5])), 1;
#endif
#ifdef SYS_recvmsg
	case SYS_recvmsg:
		return *rc = sfy_recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]), 1;
#endif
#ifdef SYS_recvmmsg
	case SYS_recvmmsg:
		return *rc = sfy_recvmmsg((int)a[0], (struct mmsghdr *)a[1], (unsigned)a[2], (int)a[3],
					  (struct timespec *)a[4]),
		       1;
#endif
#ifdef SYS_socket
	case SYS_socket:
		return *rc = sfy_socket((int)a[0], (int)a[1], (int)a[2]), 1;
#endif
#ifdef SYS_bind
	case SYS_bind:
		return *rc = sfy_bind((int)a[0], CS(a[1]), (socklen_t)a[2]), 1;
#endif
#ifdef SYS_listen
	case SYS_listen:
		return *rc = sfy_listen((int)a[0], (int)a[1]), 1;
#endif
#ifdef SYS_accept
	case SYS_accept:
		return *rc = sfy_accept((int)a[0], S(a[1]), LEN(a[2])), 1;
#endif
#ifdef SYS_accept4
	case SYS_accept4:
		return *rc = sfy_accept4((int)a[0], S(a[1]), LEN(a[2]), (int)a[3]), 1;
#endif
#ifdef SYS_getpeername
	case SYS_getpeername:
		return *rc = sfy_getpeername((int)a[0], S(a[1]), LEN(a[2])), 1;
#endif
#ifdef SYS_getsockname
	case SYS_getsockname:
		return *rc = sfy_getsockname((int)a[0], S(a[1]), LEN(a[2])), 1;
#endif
	default:
		return 0;
	}
}

SFY_EXPORT long syscall(long number, ...)
{
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	long rc;
	if (number == SYS_close) {
		if (sfy_close_prepare((int)a[0]) < 0)
			return -1;
	} else if (number == SYS_close_range) {
		return sfy_close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	} else if (socket_call(number, a, &rc)) {
		return rc;
	}
	return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
