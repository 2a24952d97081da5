/* Can sealed mode run here (see sealed.h)?  Asked the way the supervisor
 * will use it, so that a yes means it: the kernel offers user notification,
 * a child can install a filter with a listener (containers often forbid
 * seccomp() or nest us inside a listener already: EBUSY), and this process
 * may take that child's fds with pidfd_getfd (Yama or an LSM may refuse).
 * Costs a fork and a few system calls: for --check and --probe, not for
 * every run. */
#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#define SECCOMP_RET_USER_NOTIF 0x7fc00000U
#endif

#define PROBE_WAIT_MS 2000

static long sys_seccomp(unsigned op, unsigned flags, void *arg)
{
	return syscall(SYS_seccomp, op, flags, arg);
}

/* The child: install an allow-all filter with a listener, report
 * {errno, listener fd}, wait for the parent to be done with it. */
static void child(int report, int release)
{
	alarm(PROBE_WAIT_MS / 1000 + 1); /* never outlive a parent that hangs */
	struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_fprog prog = {.len = 1, .filter = allow};
	int msg[2] = {0, -1};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		msg[0] = errno;
	else if ((msg[1] = (int)sys_seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog)) < 0)
		msg[0] = errno;
	if (write(report, msg, sizeof msg) != sizeof msg)
		_exit(1);
	char c;
	while (read(release, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int why_listener(int err, char *why, size_t cap)
{
	if (err == EBUSY)
		snprintf(why, cap, "this process already runs under a seccomp listener (nested sealed mode or a container's supervisor)");
	else if (err == EINVAL)
		snprintf(why, cap, "seccomp() refused a filter with a listener (SECCOMP_FILTER_FLAG_NEW_LISTENER needs Linux 5.0)");
	else
		snprintf(why, cap, "seccomp() refused a filter with a listener: %s", strerror(err));
	return 0;
}

/* Fork the child and take its listener fd back with pidfd_getfd. */
static int probe_child(char *why, size_t cap)
{
	int rep[2], rel[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return snprintf(why, cap, "pipe: %s", strerror(errno)), 0;
	if (pipe2(rel, O_CLOEXEC) < 0) {
		close(rep[0]), close(rep[1]);
		return snprintf(why, cap, "pipe: %s", strerror(errno)), 0;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(rep[0]), close(rel[1]);
		child(rep[1], rel[0]);
	}
	close(rep[1]), close(rel[0]);
	int ok = 0, msg[2] = {0, -1};
	struct pollfd p = {.fd = rep[0], .events = POLLIN};
	if (pid < 0)
		snprintf(why, cap, "fork: %s", strerror(errno));
	else if (poll(&p, 1, PROBE_WAIT_MS) != 1 || read(rep[0], msg, sizeof msg) != sizeof msg)
		snprintf(why, cap, "the probe's child did not answer");
	else if (msg[0])
		why_listener(msg[0], why, cap);
	else {
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, msg[1], 0);
		if (pidfd < 0)
			snprintf(why, cap, "pidfd_open: %s (needs Linux 5.3)", strerror(errno));
		else if (fd < 0 && errno == ENOSYS)
			snprintf(why, cap, "pidfd_getfd is missing (needs Linux 5.6)");
		else if (fd < 0)
			snprintf(why, cap, "pidfd_getfd on a child refused: %s (Yama ptrace_scope or an LSM)",
				 strerror(errno));
		else
			ok = 1;
		if (fd >= 0)
			close(fd);
		if (pidfd >= 0)
			close(pidfd);
	}
	close(rep[0]), close(rel[1]); /* releases the child */
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	return ok;
}

int sfy_sealed_probe(char *why, size_t cap)
{
	unsigned action = SECCOMP_RET_USER_NOTIF;
	struct seccomp_notif_sizes sizes;
	if (cap)
		why[0] = '\0';
	if (sys_seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0) {
		int err = errno;
		if (err == ENOSYS)
			snprintf(why, cap, "the seccomp() system call is unavailable (kernel without CONFIG_SECCOMP_FILTER, or blocked by a container)");
		else if (err == EOPNOTSUPP || err == EINVAL)
			snprintf(why, cap, "seccomp user notification is unavailable (needs Linux 5.0)");
		else
			snprintf(why, cap, "seccomp(SECCOMP_GET_ACTION_AVAIL): %s", strerror(err));
		return 0;
	}
	if (sys_seccomp(SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
		snprintf(why, cap, "seccomp(SECCOMP_GET_NOTIF_SIZES): %s (needs Linux 5.0)", strerror(errno));
		return 0;
	}
	return probe_child(why, cap);
}
