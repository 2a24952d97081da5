/* A child made as Chromium's sandbox makes its chroot helper:
 * clone(CLONE_VM | CLONE_VFORK | CLONE_SETTLS) with a zeroed TLS block and a
 * small stack, which calls _exit() at once.  Nothing in that child may touch
 * thread-local storage (errno) or call dlsym().  Prints the child's fate;
 * exit status 0 only if it exited normally with status 0. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(void *arg)
{
	(void)arg;
	_exit(0);
}

int main(void)
{
	static _Alignas(64) char stack[16384];
	static _Alignas(64) char tls[16384]; /* all zero: no thread control block */
	pid_t pid = clone(child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | CLONE_FS | CLONE_SETTLS | SIGCHLD,
			  NULL, NULL, tls, NULL);
	if (pid < 0) {
		perror("clone");
		return 2;
	}
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return 2;
	}
	if (WIFSIGNALED(st)) {
		printf("child killed by signal %d\n", WTERMSIG(st));
		return 1;
	}
	printf("child exited %d\n", WEXITSTATUS(st));
	return WEXITSTATUS(st) == 0 ? 0 : 1;
}
