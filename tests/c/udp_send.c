/* udp_send HOST PORT
 *
 * Sends one datagram two ways and reports each on its own line:
 *   "sendto: ok"        or "error: sendto: ENAME (strerror)"
 *   "connect+send: ok"  or "error: connect: ENAME ..." / "error: send: ..."
 * The payloads say which way they went ("socksify-udp-test sendto\n",
 * "socksify-udp-test connect+send\n"), so a receiver can tell which
 * arrived.  Exit status 1 if either failed.  socksify blocks UDP to
 * non-direct destinations (EPERM) unless "udp = allow". */
#include "testutil.h"

#include <unistd.h>

static const char payload_sendto[] = "socksify-udp-test sendto\n";
static const char payload_send[] = "socksify-udp-test connect+send\n";

static int try_sendto(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	int ok;

	if (fd < 0) {
		tu_report_errno("socket", errno);
		return 0;
	}
	ok = sendto(fd, payload_sendto, sizeof(payload_sendto) - 1, 0,
		    ai->ai_addr, ai->ai_addrlen) >= 0;
	if (ok)
		printf("sendto: ok\n");
	else
		tu_report_errno("sendto", errno);
	close(fd);
	return ok;
}

static int try_connect_send(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	int ok = 0;

	if (fd < 0) {
		tu_report_errno("socket", errno);
		return 0;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		tu_report_errno("connect", errno);
	else if (send(fd, payload_send, sizeof(payload_send) - 1, 0) < 0)
		tu_report_errno("send", errno);
	else
		ok = 1;
	if (ok)
		printf("connect+send: ok\n");
	close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	int rc, ok;

	if (argc != 3) {
		fprintf(stderr, "usage: udp_send HOST PORT\n");
		return 2;
	}
	rc = getaddrinfo(argv[1], argv[2], &hints, &res);
	if (rc != 0) {
		printf("error: getaddrinfo: %s (%s)\n", tu_eainame(rc),
		       gai_strerror(rc));
		return 1;
	}
	ok = try_sendto(res);
	ok &= try_connect_send(res);
	fflush(stdout);
	freeaddrinfo(res);
	return ok ? 0 : 1;
}
