/* Registry of the library's own fds (see internal_fd.h).  A handle table
 * (handle -> number) under one mutex, and one byte per fd number, read
 * without the lock by the close hooks' check. */
#include "internal_fd.h"

#include "shim.h"
#include "sfy_fdtable.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>

int sfy_ifd_count;
static pthread_mutex_t ifd_lock = PTHREAD_MUTEX_INITIALIZER;
static int slot_fd[SFY_IFD_MAX]; /* handle -> fd + 1; 0: free */
static uint8_t mark[SFY_FD_MAX]; /* 1: this number is ours */

/* fork(): the relay thread (shim/relay.c) does its I/O with the registry
 * locked, often; a child forked while it did would inherit the lock held
 * by a thread it does not have, and its first close_range() would hang.
 * Registered at load, before any module that takes its own lock around
 * ours (the relay, UDP ASSOCIATE) registers its handlers, so this prepare
 * handler runs after theirs and the order of the locks is kept. */
static void ifd_fork_prepare(void)
{
	pthread_mutex_lock(&ifd_lock);
}

static void ifd_fork_after(void)
{
	pthread_mutex_unlock(&ifd_lock);
}

__attribute__((constructor)) static void ifd_fork_setup(void)
{
	pthread_atfork(ifd_fork_prepare, ifd_fork_after, ifd_fork_after);
}

/* Where our fds go: the top of the program's range, below the soft limit,
 * so that they stay out of the way of numbers the program picks. */
static int high_base(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SFY_FD_MAX)
		rl.rlim_cur = 1024;
	long cur = (long)rl.rlim_cur;
	return (int)(cur > 512 ? cur - 256 : cur / 2);
}

/* Moves fd up; returns the new number (fd closed) or fd itself, CLOEXEC. */
static int move_up(int fd)
{
	int nfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, high_base());
	if (nfd < 0) {
		REAL(fcntl)(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
	REAL(close)(fd);
	return nfd;
}

int sfy_ifd_adopt(int fd)
{
	int saved = errno;
	fd = move_up(fd);
	if (fd < 0 || fd >= SFY_FD_MAX) {
		REAL(close)(fd);
		errno = EMFILE;
		return -1;
	}
	pthread_mutex_lock(&ifd_lock);
	int h = 0;
	while (h < SFY_IFD_MAX && slot_fd[h])
		h++;
	if (h < SFY_IFD_MAX) {
		slot_fd[h] = fd + 1;
		__atomic_store_n(&mark[fd], 1, __ATOMIC_RELEASE);
		__atomic_add_fetch(&sfy_ifd_count, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&ifd_lock);
	if (h == SFY_IFD_MAX) {
		REAL(close)(fd);
		errno = EMFILE;
		return -1;
	}
	errno = saved;
	return h;
}

int sfy_ifd_lock_fd(int h)
{
	pthread_mutex_lock(&ifd_lock);
	return h >= 0 && h < SFY_IFD_MAX ? slot_fd[h] - 1 : -1;
}

void sfy_ifd_unlock(void)
{
	pthread_mutex_unlock(&ifd_lock);
}

int sfy_ifd_peek_fd(int h)
{
	return h >= 0 && h < SFY_IFD_MAX ? __atomic_load_n(&slot_fd[h], __ATOMIC_RELAXED) - 1 : -1;
}

void sfy_ifd_release(int h)
{
	if (h < 0 || h >= SFY_IFD_MAX)
		return;
	int saved = errno;
	pthread_mutex_lock(&ifd_lock);
	int fd = slot_fd[h] - 1;
	if (fd >= 0) {
		slot_fd[h] = 0;
		__atomic_store_n(&mark[fd], 0, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&sfy_ifd_count, 1, __ATOMIC_RELAXED);
		REAL(close)(fd);
	}
	pthread_mutex_unlock(&ifd_lock);
	errno = saved;
}

int sfy_ifd_is(int fd)
{
	return fd >= 0 && fd < SFY_FD_MAX && sfy_ifd_any() && __atomic_load_n(&mark[fd], __ATOMIC_ACQUIRE);
}

int sfy_ifd_make_room(int fd)
{
	if (!sfy_ifd_is(fd))
		return 0;
	int rc = 0, saved = errno;
	pthread_mutex_lock(&ifd_lock);
	for (int h = 0; h < SFY_IFD_MAX; h++) {
		if (slot_fd[h] != fd + 1)
			continue;
		/* Above fd: the lowest free number >= fd + 1, at least base. */
		int base = high_base();
		int nfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, base > fd ? base : fd + 1);
		if (nfd < 0 || nfd >= SFY_FD_MAX) {
			if (nfd >= 0)
				REAL(close)(nfd);
			saved = EMFILE;
			rc = -1;
			break;
		}
		/* The program's dup2() closes the old number for us. */
		slot_fd[h] = nfd + 1;
		__atomic_store_n(&mark[nfd], 1, __ATOMIC_RELEASE);
		__atomic_store_n(&mark[fd], 0, __ATOMIC_RELEASE);
		break;
	}
	pthread_mutex_unlock(&ifd_lock);
	errno = saved;
	return rc;
}

/* The real close_range() of [first, last] minus our numbers: one call per
 * gap, in order.  Our fds sit at the top, so this is one or two calls. */
int sfy_ifd_close_range(unsigned first, unsigned last, int flags)
{
	int (*real)(unsigned, unsigned, int) = REAL(close_range);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!sfy_ifd_any() || first > last)
		return real(first, last, flags);
	pthread_mutex_lock(&ifd_lock);
	unsigned ours[SFY_IFD_MAX];
	int n = 0;
	for (int h = 0; h < SFY_IFD_MAX; h++) {
		unsigned fd = (unsigned)(slot_fd[h] - 1);
		if (slot_fd[h] && fd >= first && fd <= last) {
			int i = n++;
			while (i > 0 && ours[i - 1] > fd) { /* insertion sort: a handful */
				ours[i] = ours[i - 1];
				i--;
			}
			ours[i] = fd;
		}
	}
	unsigned start = first;
	int rc = 0, done = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		if (ours[i] > start)
			rc = real(start, ours[i] - 1, flags);
		if (ours[i] == last)
			done = 1;
		start = ours[i] + 1;
	}
	if (rc == 0 && !done)
		rc = real(start, last, flags);
	pthread_mutex_unlock(&ifd_lock);
	return rc;
}
