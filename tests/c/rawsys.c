/* rawsys HOST PORT [PATH]   an HTTP GET made with raw system calls
 * rawsys --passthrough      other numbers pass through syscall() intact
 *
 * The first form resolves HOST with getaddrinfo (a fake address under
 * remote DNS), then makes socket, connect, getpeername, sendto and
 * recvfrom as syscall(SYS_...), the way programs that bypass libc's socket
 * functions do, and prints the response.  "peer=ADDR:PORT" (from
 * SYS_getpeername) goes to stderr.  Failures print
 * "error: STEP: ENAME (strerror)" and exit 1.
 *
 * The second checks that syscall() passes numbers socksify does not handle
 * through with all their arguments: SYS_getpid, SYS_pread64 (4 arguments)
 * and SYS_mmap of a file at an offset (6), and prints "passthrough ok". */
#include "testutil.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what)
{
	tu_report_errno(what, errno);
	return 1;
}

static int passthrough(void)
{
	if (syscall(SYS_getpid) != getpid())
		return printf("error: SYS_getpid differs from getpid()\n"), 1;
	char path[] = "/tmp/rawsys.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return fail("mkstemp");
	unlink(path);
	char page[4096];
	memset(page, 'A', sizeof page);
	if (write(fd, page, sizeof page) != (ssize_t)sizeof page)
		return fail("write");
	memset(page, 'Z', sizeof page);
	if (write(fd, page, sizeof page) != (ssize_t)sizeof page)
		return fail("write");
	char c = 0;
	if (syscall(SYS_pread64, fd, &c, 1, 4096L) != 1 || c != 'Z')
		return printf("error: SYS_pread64 at 4096 read '%c'\n", c), 1;
	long map = syscall(SYS_mmap, 0L, 4096L, (long)PROT_READ, (long)MAP_PRIVATE, (long)fd, 4096L);
	if (map == -1)
		return fail("SYS_mmap");
	if (*(const char *)map != 'Z')
		return printf("error: SYS_mmap at offset 4096 maps '%c'\n", *(const char *)map), 1;
	munmap((void *)map, 4096);
	close(fd);
	printf("passthrough ok\n");
	return 0;
}

static int get(const char *host, const char *port, const char *path)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return printf("error: getaddrinfo: %s\n", tu_eainame(rc)), 1;
	int fd = (int)syscall(SYS_socket, res->ai_family, SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket");
	if (syscall(SYS_connect, fd, res->ai_addr, res->ai_addrlen) < 0)
		return fail("connect");
	freeaddrinfo(res);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	char text[INET6_ADDRSTRLEN] = "?";
	if (syscall(SYS_getpeername, fd, &peer, &plen) < 0)
		return fail("getpeername");
	const void *a = peer.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&peer)->sin_addr
						  : (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr;
	inet_ntop(peer.ss_family, a, text, sizeof text);
	fprintf(stderr, "peer=%s:%u\n", text, ntohs(((struct sockaddr_in *)&peer)->sin_port));
	char req[512];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
	if (syscall(SYS_sendto, fd, req, (size_t)n, 0, NULL, 0) != n)
		return fail("sendto");
	char buf[4096];
	long got;
	while ((got = syscall(SYS_recvfrom, fd, buf, sizeof buf, 0, NULL, NULL)) > 0)
		fwrite(buf, 1, (size_t)got, stdout);
	if (got < 0)
		return fail("recvfrom");
	syscall(SYS_close, fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--passthrough") == 0)
		return passthrough();
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: rawsys HOST PORT [PATH] | rawsys --passthrough\n");
		return 2;
	}
	return get(argv[1], argv[2], argc == 4 ? argv[3] : "/");
}
