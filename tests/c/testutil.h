/* Helpers shared by the integration-test programs in tests/c.
 *
 * Every test program is compiled on its own (one binary per .c file), so
 * this header only holds static inline functions: unused ones then do not
 * trip -Wunused-function under -Werror. */
#ifndef SOCKSIFY_TESTUTIL_H
#define SOCKSIFY_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Symbolic errno name ("ECONNREFUSED"): tests assert on names, not on
 * locale-dependent strerror() text. */
static inline const char *tu_errname(int err)
{
	const char *name = strerrorname_np(err);
	return name ? name : "EUNKNOWN";
}

/* "error: WHAT: ENAME (strerror)" on stdout, the format the bats suite
 * matches. */
static inline void tu_report_errno(const char *what, int err)
{
	printf("error: %s: %s (%s)\n", what, tu_errname(err), strerror(err));
	fflush(stdout);
}

static inline const char *tu_eainame(int code)
{
	switch (code) {
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_OVERFLOW: return "EAI_OVERFLOW";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
	default: return "EAI_UNKNOWN";
	}
}

/* "4" / "6" / "any" -> AF_INET / AF_INET6 / AF_UNSPEC; -1 if invalid. */
static inline int tu_parse_family(const char *s)
{
	if (strcmp(s, "4") == 0)
		return AF_INET;
	if (strcmp(s, "6") == 0)
		return AF_INET6;
	if (strcmp(s, "any") == 0)
		return AF_UNSPEC;
	return -1;
}

/* Numeric "ADDR:PORT", IPv6 as "[ADDR]:PORT". */
static inline void tu_format_sockaddr(const struct sockaddr *sa, char *out,
				      size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "family%d", sa->sa_family);
	}
}

/* Rewrite an IPv4 sockaddr into its v4-mapped IPv6 form (::ffff:a.b.c.d),
 * for programs that use one AF_INET6 socket for both families. */
static inline void tu_map_v4(const struct sockaddr_in *in,
			     struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	out->sin6_port = in->sin_port;
	out->sin6_addr.s6_addr[10] = 0xff;
	out->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&out->sin6_addr.s6_addr[12], &in->sin_addr, 4);
}

/* Send all of buf on a blocking socket; 0 or an errno value. */
static inline int tu_send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static inline long tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Entries of /proc/self/fd (its own fd, "." and ".." included: compare
 * counts, not absolute numbers), or -1. */
static inline int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#endif
