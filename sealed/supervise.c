/* socksify --sealed: run a program under a seccomp filter whose socket
 * calls a supervisor answers (seccomp_unotify(2)).
 *
 * Three processes:
 *   front       the process the user started (the launcher); it waits for
 *               the program's exit status and exits with it, and passes
 *               on the signals a user sends it;
 *   supervisor  its child: answers the notifications of every process of
 *               the program's tree, and reaps them (a child subreaper),
 *               so that it stays an ancestor of all of them: Yama's
 *               ptrace_scope 1 lets only ancestors read their memory and
 *               take their fds.  It ends when no process of the tree is
 *               left (the listener reports POLLHUP);
 *   program     the supervisor's child: sets no_new_privs, installs the
 *               filter, hands the listener over, and execs the command.
 * Programs that outlive the command (daemons) stay supervised after the
 * front has exited.  If the supervisor dies, the program's checked calls
 * fail (ENOSYS, the kernel's answer without a listener): never direct. */
#include "sealed.h"
#include "shim.h"
#include "session.h"
#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sfy_log.h"

struct sfy_config sfy_cfg;

static const char *env_get(const char *name)
{
	return getenv(name);
}

/* Messages from the supervisor to the front. */
struct msg {
	char type; /* 'P' program started (val: pid), 'E' it ended (val: wait status), 'F' setup failed */
	int val;
};

static const int user_signals[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP, SIGPIPE};
#define N_USER_SIGNALS (int)(sizeof user_signals / sizeof user_signals[0])

/* Why sealed mode cannot run, from the errno of the step that failed. */
static const char *reason(const char *step, int err)
{
	if (strcmp(step, "filter") == 0)
		return err == EBUSY ? "another seccomp listener is already above this process (a sealed tree, or a container's supervisor)"
		       : err == EINVAL || err == ENOSYS ? "the kernel lacks seccomp user notification (Linux 5.5 or later)"
		       : err == EACCES || err == EPERM ? "seccomp is not allowed here"
						     : "the kernel refused the seccomp filter";
	return err == ENOSYS ? "the kernel lacks pidfd_open/pidfd_getfd (Linux 5.6 or later)"
	       : err == EPERM || err == EACCES ? "pidfd_getfd is not allowed here (Yama or a security module)"
					       : "pidfd_getfd failed";
}

static void tell(int fd, char type, int val)
{
	struct msg m = {type, val};
	while (write(fd, &m, sizeof m) < 0 && errno == EINTR)
		;
}

/* The listener, taken from the program's process: it cannot send it, for
 * its sendmsg() would wait for the very supervisor it is sent to.  It
 * writes the number (write() is not filtered); -1 with *err, the errno with
 * which the kernel refused the filter, when it writes that instead. */
static int take_listener(int sock, pid_t prog, int *err, const char **step)
{
	int val[2] = {0, 0};
	ssize_t n;
	while ((n = read(sock, val, sizeof val)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof val) {
		*err = EIO;
		return -1;
	}
	if (val[0] != 'L') {
		*err = val[1] > 0 ? val[1] : EIO;
		return -1;
	}
	*step = "pidfd";
	long pidfd = syscall(SYS_pidfd_open, prog, 0);
	long fd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, (int)pidfd, val[1], 0);
	*err = errno;
	if (pidfd >= 0)
		close((int)pidfd);
	return (int)fd;
}

/* In the program's process, before exec: the caller's signal state, the
 * environment, no_new_privs, the filter; the listener goes to the
 * supervisor.  Never returns. */
static void program(char *const argv[], const char *preload, int sock, const struct sigaction *saved,
		    const sigset_t *mask)
{
	for (int i = 0; i < N_USER_SIGNALS; i++)
		sigaction(user_signals[i], &saved[i], NULL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	if (preload && *preload)
		setenv("LD_PRELOAD", preload, 1);
	else
		unsetenv("LD_PRELOAD");
	unsetenv(SFY_SEALED_PRELOAD_ENV);
	char active[16];
	snprintf(active, sizeof active, "%d", (int)getppid());
	setenv(SFY_SEALED_ACTIVE_ENV, active, 1);
	int fd = -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || (fd = sfy_filter_install()) < 0) {
		int fail[2] = {'F', errno ? errno : EINVAL};
		while (write(sock, fail, sizeof fail) < 0 && errno == EINTR)
			;
		_exit(126);
	}
	int ok[2] = {'L', fd};
	char ack;
	if (write(sock, ok, sizeof ok) != (ssize_t)sizeof ok || read(sock, &ack, 1) != 1)
		_exit(126);
	close(fd);
	close(sock);
	execvp(argv[0], argv);
	int err = errno;
	fprintf(stderr, "socksify: %s: %s\n", argv[0], strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

/* Everything of the tree that has ended; the program's own end goes to the
 * front. */
static void reap(pid_t prog, int front)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0)
		if (pid == prog)
			tell(front, 'E', status);
}

static void loop(int listener, int sigfd, pid_t prog, int front)
{
	struct seccomp_notif_sizes sizes;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		sizes.seccomp_notif = sizeof(struct seccomp_notif);
	size_t nsize = sizes.seccomp_notif > sizeof(struct seccomp_notif) ? sizes.seccomp_notif : sizeof(struct seccomp_notif);
	struct seccomp_notif *n = calloc(1, nsize);
	struct pollfd p[6] = {{.fd = listener, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
	int dns[4], nd = sfy_dnsd_fds(dns);
	for (int i = 0; i < nd; i++)
		p[2 + i] = (struct pollfd){.fd = dns[i], .events = POLLIN};
	while (n) {
		if (poll(p, (nfds_t)(2 + nd), -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) > 0)
				;
			reap(prog, front);
		}
		for (int i = 0; i < nd; i++)
			if (p[2 + i].revents)
				sfy_dnsd_serve(p[2 + i].fd);
		if (p[0].revents & POLLIN) {
			memset(n, 0, nsize);
			if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n) == 0)
				sfy_notify_handle(listener, n);
			continue; /* ENOENT: the caller is gone already */
		}
		if (p[0].revents & (POLLHUP | POLLERR))
			break; /* no process of the tree is left */
	}
	free(n);
	/* Workers reply to calls whose callers are gone; let them end. */
	for (int i = 0; i < 2000 && sfy_proxy_busy(); i++)
		usleep(10000);
	/* No process uses the filter any more: every one of them has ended,
	 * and waiting for them cannot block for long. */
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, __WALL)) > 0 || (pid < 0 && errno == EINTR))
		if (pid == prog)
			tell(front, 'E', status);
}

/* The supervisor's process.  Never returns. */
static void supervisor(char *const argv[], const char *preload, int front)
{
	struct sigaction saved[N_USER_SIGNALS], ign = {.sa_handler = SIG_IGN};
	for (int i = 0; i < N_USER_SIGNALS; i++)
		sigaction(user_signals[i], &ign, &saved[i]);
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sfy_session_setup(getenv(SFY_SESSION_ENV), 0);
	int sv[2];
	if (sigfd < 0 || sfy_dnsd_start() < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fprintf(stderr, "socksify: --sealed: cannot set up the supervisor: %s; %s was not run\n", strerror(errno),
			argv[0]);
		tell(front, 'F', 126);
		_exit(126);
	}
	pid_t prog = fork();
	if (prog == 0) {
		close(sv[0]);
		close(front);
		program(argv, preload, sv[1], saved, &old);
	}
	close(sv[1]);
	int err = errno;
	const char *step = "filter";
	int listener = prog > 0 ? take_listener(sv[0], prog, &err, &step) : -1;
	if (listener < 0) {
		fprintf(stderr, "socksify: --sealed is not available here: %s (%s); %s was not run (it is never run unsealed)\n",
			reason(step, err), strerror(err), argv[0]);
		if (prog > 0)
			waitpid(prog, NULL, 0);
		tell(front, 'F', 126);
		_exit(126);
	}
	tell(front, 'P', prog);
	while (write(sv[0], "g", 1) < 0 && errno == EINTR)
		;
	close(sv[0]);
	sfy_log(SFY_LOG_DEBUG, "sealed: supervising %s[%d]", argv[0], (int)prog);
	loop(listener, sigfd, prog, front);
	sfy_session_end();
	_exit(0);
}

/* The checks that cost no process (sfy_sealed_probe forks one, for
 * --check): the kernel offers user notification, and this process can
 * take fds with pidfd_getfd (its own, here).  A listener already above is
 * found when the program installs the filter. */
static int quick_probe(char *why, size_t cap)
{
	uint32_t action = SECCOMP_RET_USER_NOTIF;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0) {
		int err = errno;
		snprintf(why, cap, "%s (%s)", reason("filter", err == EOPNOTSUPP ? EINVAL : err), strerror(err));
		return 0;
	}
	long pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	long fd = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, (int)pidfd, 2, 0);
	int err = errno;
	if (pidfd >= 0)
		close((int)pidfd);
	if (fd >= 0) {
		close((int)fd);
		return 1;
	}
	if (pidfd >= 0 && err == EBADF)
		return 1; /* no fd 2 to take: the call itself works */
	snprintf(why, cap, "%s (%s)", reason("pidfd", err), strerror(err));
	return 0;
}

static volatile sig_atomic_t prog_pid;

/* The front passes on what a process sends it (kill, timeout(1)); what
 * the terminal sends reaches the program's process group by itself. */
static void pass_on(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (prog_pid > 0 && (si->si_code == SI_USER || si->si_code == SI_QUEUE))
		kill(prog_pid, sig);
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		/* Die the same way, so the shell sees what the program did. */
		signal(sig, SIG_DFL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		if (sig != SIGKILL && sig != SIGSTOP)
			raise(sig);
		return 128 + sig;
	}
	return 1;
}

static int front(int from, pid_t sup)
{
	struct msg m;
	ssize_t n;
	pid_t prog = 0;
	for (;;) {
		n = read(from, &m, sizeof m);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof m)
			break;
		if (m.type == 'P')
			prog_pid = prog = m.val;
		else if (m.type == 'E')
			return exit_code(m.val);
		else
			return m.val;
	}
	/* The supervisor is gone without a word: its children are ours now
	 * (we are a subreaper), the program among them. */
	int status;
	/* Once the supervisor is reaped, its children have been handed over. */
	while (waitpid(sup, NULL, 0) < 0 && errno == EINTR)
		;
	if (prog > 0 && waitpid(prog, &status, 0) == prog)
		return exit_code(status);
	fprintf(stderr, "socksify: --sealed: the supervisor ended unexpectedly\n");
	return 126;
}

int sfy_supervise(char *const argv[], const char *preload)
{
	char why[256];
	if (!quick_probe(why, sizeof why)) {
		fprintf(stderr, "socksify: --sealed is not available here: %s; %s was not run (it is never run unsealed)\n",
			why, argv[0]);
		return 126;
	}
	sfy_config_load(&sfy_cfg, 0, env_get);
	sfy_log_setup(&sfy_cfg);
	if (!sfy_cfg.valid) {
		sfy_log_to_stderr("%s; every proxied connection will fail (EACCES) until it is fixed", sfy_cfg.error);
		sfy_config_fail_closed(&sfy_cfg);
	}
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		perror("socksify: --sealed: pipe");
		return 126;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	fflush(NULL);
	pid_t sup = fork();
	if (sup < 0) {
		perror("socksify: --sealed: fork");
		return 126;
	}
	if (sup == 0) {
		close(pipefd[0]);
		supervisor(argv, preload, pipefd[1]);
	}
	close(pipefd[1]);
	struct sigaction pass = {.sa_sigaction = pass_on, .sa_flags = SA_SIGINFO | SA_RESTART};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	static const int passed[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT};
	for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
		sigaction(passed[i], &pass, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	return front(pipefd[0], sup);
}
