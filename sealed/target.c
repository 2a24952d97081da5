/* The notifying program, seen from the supervisor: its memory, its fds,
 * and the answer to its system call. */
#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* 6.9: a pidfd for any thread, not only a leader */
#endif

int sfy_target_read(const struct sfy_target *t, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv((pid_t)t->n->pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EFAULT;
	return -1;
}

int sfy_target_valid(const struct sfy_target *t)
{
	uint64_t id = t->n->id;
	return ioctl(t->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* The thread group of a thread, from /proc (kernels before 6.9 open
 * pidfds of leaders only). */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strstr(buf, "\nTgid:");
	return p ? (pid_t)strtol(p + 6, NULL, 10) : -1;
}

int sfy_target_getfd(const struct sfy_target *t, int fd)
{
	pid_t tid = (pid_t)t->n->pid;
	long pidfd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (pidfd < 0 && errno == EINVAL) {
		pid_t tgid = tgid_of(tid);
		pidfd = tgid > 0 ? syscall(SYS_pidfd_open, tgid, 0) : -1;
	}
	if (pidfd < 0)
		return -1;
	/* The pid was the notifying thread's when the notification was still
	 * pending after the pidfd was opened: not a recycled pid. */
	long copy = -1;
	if (sfy_target_valid(t))
		copy = syscall(SYS_pidfd_getfd, (int)pidfd, fd, 0);
	else
		errno = ESRCH;
	int saved = errno;
	close((int)pidfd);
	errno = saved;
	return (int)copy; /* pidfd_getfd's fds are close-on-exec */
}

void sfy_target_comm(pid_t pid, char out[16])
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, 15) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		strcpy(out, "?");
		return;
	}
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

static int send_resp(const struct sfy_target *t, int64_t val, int err, uint32_t flags)
{
	struct seccomp_notif_resp r = {.id = t->n->id, .val = val, .error = err ? -err : 0, .flags = flags};
	for (;;) {
		if (ioctl(t->listener, SECCOMP_IOCTL_NOTIF_SEND, &r) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

int sfy_reply_continue(const struct sfy_target *t)
{
	return send_resp(t, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

int sfy_reply_val(const struct sfy_target *t, int64_t val)
{
	return send_resp(t, val, 0, 0);
}

int sfy_reply_err(const struct sfy_target *t, int err)
{
	return send_resp(t, 0, err, 0);
}
