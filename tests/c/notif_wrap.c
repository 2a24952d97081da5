/* notif_wrap CMD [ARG...]: run CMD under a seccomp filter with a user
 * notification listener, as a sealed tree or a container's supervisor
 * would leave it: the filter notifies only for a system call number no
 * program makes, and the listener fd stays open (not close-on-exec), so a
 * second listener below it fails with EBUSY.  For the tests of
 * "sealed mode: unavailable" and of the launcher's nested-tree check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NEVER_NR 4000 /* no such system call */

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: notif_wrap CMD [ARG...]\n");
		return 2;
	}
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NEVER_NR, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("notif_wrap: PR_SET_NO_NEW_PRIVS");
		return 125;
	}
	int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0 || fcntl(lfd, F_SETFD, 0) < 0) {
		fprintf(stderr, "notif_wrap: seccomp listener: %s\n", strerror(errno));
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "notif_wrap: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
