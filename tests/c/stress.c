/* stress MODE HOST PORT: hard situations for the shim, each printing
 * "ok ..." and exiting 0, or printing "error: ..." and exiting 1.
 *   fork-inflight  threads keep connecting while the main thread forks
 *                  children that resolve new names and connect
 *   closeall       closes every fd above 2 first (as daemons do), then connects
 *   highfd         the connection lives on fd 2000 (beyond select()'s 1024)
 *   signals        a 1 ms SIGALRM without SA_RESTART rains on every connect
 *   names          16 threads resolve 2000 distinct names at once; every
 *                  fake address must map back to its own name, and no fd
 *                  may be left open
 * HOST is a name the proxy resolves; PORT an HTTP server answering GET. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *host, *port;

/* Resolve name, connect, GET /, expect "hello"; returns 0 or -1. */
static int fetch(const char *name, int move_to_fd)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(name, port, &hints, &res);
	if (rc != 0) {
		printf("error: getaddrinfo %s: %s\n", name, gai_strerror(rc));
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && move_to_fd > 0) {
		if (dup2(fd, move_to_fd) < 0)
			return printf("error: dup2: %s\n", strerror(errno)), -1;
		close(fd);
		fd = move_to_fd;
	}
	int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
	freeaddrinfo(res);
	if (!ok) {
		printf("error: connect %s: %s\n", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	const char req[] = "GET /stress HTTP/1.0\r\n\r\n";
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
		return close(fd), printf("error: write: %s\n", strerror(errno)), -1;
	while (got < sizeof buf - 1 && ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	buf[got] = '\0';
	close(fd);
	if (!strstr(buf, "hello"))
		return printf("error: bad response from %s: %.80s\n", name, buf), -1;
	return 0;
}

static int count_fds(void)
{
	int n = 0;
	char path[64];
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static volatile int stop_threads;
static int thread_failures;

static void *connect_loop(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED))
		if (fetch(host, 0) < 0)
			__atomic_add_fetch(&thread_failures, 1, __ATOMIC_RELAXED);
	return NULL;
}

static int fork_inflight(void)
{
	int fds_before = count_fds();
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, connect_loop, NULL);
	int children_ok = 0;
	for (int i = 0; i < 16; i++) {
		pid_t pid = fork();
		if (pid == 0) /* resolves and connects while the parent's threads do too */
			_exit(fetch(host, 0) == 0 && fetch(host, 0) == 0 ? 0 : 1);
		int status;
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			children_ok++;
		usleep(20000);
	}
	__atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	if (children_ok != 16 || thread_failures || count_fds() != fds_before)
		return printf("error: children ok %d/16, thread failures %d, fds %d -> %d\n", children_ok,
			      thread_failures, fds_before, count_fds()), 1;
	printf("ok fork-inflight children=16\n");
	return 0;
}

static int closeall(void)
{
	syscall(SYS_close_range, 3U, ~0U, 0U);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	for (int i = 0; i < 20; i++)
		if (fetch(host, 0) < 0)
			return 1;
	printf("ok closeall 20\n");
	return 0;
}

static int highfd(void)
{
	struct rlimit rl = {4096, 4096};
	setrlimit(RLIMIT_NOFILE, &rl);
	for (int i = 0; i < 20; i++)
		if (fetch(host, 2000 + i) < 0)
			return 1;
	printf("ok highfd 20\n");
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int signals(void)
{
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 1000}, {0, 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (int i = 0; i < 100; i++)
		if (fetch(host, 0) < 0)
			return 1;
	printf("ok signals 100\n");
	return 0;
}

static int name_failures;

static void *resolve_names(void *arg)
{
	int base = (int)(long)arg;
	for (int i = 0; i < 125; i++) {
		char name[64], back[NI_MAXHOST];
		snprintf(name, sizeof name, "n%d-%d.%s", base, i, host);
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
		int ok = getaddrinfo(name, port, &hints, &res) == 0;
		if (ok) {
			ok = getnameinfo(res->ai_addr, res->ai_addrlen, back, sizeof back, NULL, 0, NI_NAMEREQD) == 0 &&
			     strcmp(back, name) == 0;
			freeaddrinfo(res);
		}
		if (!ok)
			__atomic_add_fetch(&name_failures, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int names(void)
{
	int before = count_fds();
	pthread_t t[16];
	for (long i = 0; i < 16; i++)
		pthread_create(&t[i], NULL, resolve_names, (void *)i);
	for (int i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	int after = count_fds();
	if (name_failures || after != before)
		return printf("error: %d names did not map back; fds %d -> %d\n", name_failures, before, after), 1;
	printf("ok names 2000 fds=%d\n", after);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: stress fork-inflight|closeall|highfd|signals|names HOST PORT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	host = argv[2];
	port = argv[3];
	if (strcmp(argv[1], "fork-inflight") == 0)
		return fork_inflight();
	if (strcmp(argv[1], "closeall") == 0)
		return closeall();
	if (strcmp(argv[1], "highfd") == 0)
		return highfd();
	if (strcmp(argv[1], "signals") == 0)
		return signals();
	if (strcmp(argv[1], "names") == 0)
		return names();
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
