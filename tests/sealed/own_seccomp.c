/* tests/sealed/own_seccomp.c — a program that installs its own seccomp
 * filter before it connects, as Chromium's sandbox does: filters stack, so
 * sealed mode's filter and this one must both keep working.
 *
 *   own_seccomp [-raw] HOST PORT PATH
 *
 * The filter: PR_SET_NO_NEW_PRIVS, then seccomp(SECCOMP_SET_MODE_FILTER,
 * TSYNC) with a BPF program that makes personality() fail with EPERM and
 * allows everything else.  It checks the filter is active (PR_GET_SECCOMP
 * says 2, a harmless personality query fails with EPERM) and says so on
 * stderr, then does the GET with libc's connect(), or with -raw a
 * syscall(SYS_connect, ...) that no libc connect() hook sees. */
#include "client.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#else
#error "own_seccomp: add this architecture's AUDIT_ARCH"
#endif

static const char usage[] = "usage: own_seccomp [-raw] HOST PORT PATH\n";

static void install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_personality, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		fail_errno(errno);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog))
		fail_errno(errno);
	/* 0xffffffff only queries the persona: harmless if the filter is off. */
	errno = 0;
	int p = personality(0xffffffff);
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2 || p != -1 || errno != EPERM) {
		fprintf(stderr, "own_seccomp: the filter is not active (personality gave %d, %s)\n",
			p, strerror(errno));
		exit(EXIT_FAIL);
	}
	fprintf(stderr, "own_seccomp: own filter active (personality -> EPERM)\n");
}

int main(int argc, char **argv)
{
	int raw = 0, i = 1;
	client_start();
	if (i < argc && !strcmp(argv[i], "-raw"))
		raw = 1, i++;
	if (argc - i != 3) {
		fprintf(stderr, "%s", usage);
		return EXIT_USAGE;
	}
	const char *host = argv[i], *port = argv[i + 1], *path = argv[i + 2];
	install_filter();
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		fail_gai(rc);
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail_errno(errno);
	if (raw)
		rc = (int)syscall(SYS_connect, fd, ai->ai_addr, ai->ai_addrlen);
	else
		rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc || http_exchange(fd, host, path, stdout))
		fail_errno(errno);
	close(fd);
	freeaddrinfo(ai);
	return 0;
}
