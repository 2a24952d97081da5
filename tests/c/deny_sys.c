/* deny_sys NAME[,NAME...] CMD [ARG...]: run CMD where the named system
 * calls (seccomp, pidfd_open, pidfd_getfd) fail with ENOSYS, as on a
 * kernel or in a container without them: the tests of sealed mode
 * refusing to run, and saying why, where it cannot work. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long number(const char *name)
{
	if (strcmp(name, "seccomp") == 0)
		return SYS_seccomp;
	if (strcmp(name, "pidfd_open") == 0)
		return SYS_pidfd_open;
	if (strcmp(name, "pidfd_getfd") == 0)
		return SYS_pidfd_getfd;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: deny_sys NAME[,NAME...] CMD [ARG...]\n");
		return 2;
	}
	struct sock_filter f[16];
	int n = 0;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (char *name = strtok(argv[1], ","); name && n < 12; name = strtok(NULL, ",")) {
		long nr = number(name);
		if (nr < 0) {
			fprintf(stderr, "deny_sys: unknown system call %s\n", name);
			return 2;
		}
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("deny_sys: seccomp");
		return 2;
	}
	execvp(argv[2], argv + 2);
	perror("deny_sys: exec");
	return 127;
}
