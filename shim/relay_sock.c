/* A relayed fd (relay.h) is one end of an AF_UNIX pair, and must still
 * look like the TCP socket the program made: the socket options that
 * describe or tune the connection are the TCP socket's (kept by the
 * relay), the ones that shape the program's own reads and writes
 * (timeouts, buffers, low water marks) stay on its end.  getpeername()
 * and getsockname() need nothing here: the fd table's entry answers them
 * (shim/hook_fd.c). */
#include "relay_int.h"

#include "sfy_fdtable.h"
#include "shim.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/* The connection's options, applied to and read from the TCP socket.
 * SO_ERROR is not among them: reading it clears the TCP socket's error
 * before the relay sees it; the program's end carries the outcome (a
 * reset there after a failure). */
static int forwarded(int level, int name)
{
	if (level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6)
		return 1;
	if (level != SOL_SOCKET)
		return 0;
	switch (name) {
	case SO_KEEPALIVE:
	case SO_LINGER:
	case SO_PRIORITY:
	case SO_MARK:
	case SO_OOBINLINE:
	case SO_BINDTODEVICE:
	case SO_REUSEADDR:
	case SO_REUSEPORT:
	case SO_DONTROUTE:
	case SO_INCOMING_CPU:
		return 1;
	default:
		return 0;
	}
}

/* What the program made: these never change, answered from the entry. */
static int described(int level, int name, const struct sfy_fdinfo *info, int *v)
{
	if (level != SOL_SOCKET)
		return 0;
	switch (name) {
	case SO_DOMAIN:
		*v = info->app_family;
		return 1;
	case SO_TYPE:
		*v = SOCK_STREAM;
		return 1;
	case SO_PROTOCOL:
		*v = IPPROTO_TCP;
		return 1;
	case SO_ACCEPTCONN:
		*v = 0;
		return 1;
	default:
		return 0;
	}
}

static int relayed(int fd, struct sfy_fdinfo *info)
{
	return sfy_relay_any() && sfy_fd_get(fd, info) && info->kind == SFY_FD_RELAYED;
}

struct opt_call {
	int level, name;
	void *value;
	const void *cvalue;
	socklen_t *len, clen;
};

static int get_on(int fd, void *arg)
{
	struct opt_call *c = arg;
	return REAL(getsockopt)(fd, c->level, c->name, c->value, c->len);
}

static int set_on(int fd, void *arg)
{
	struct opt_call *c = arg;
	return REAL(setsockopt)(fd, c->level, c->name, c->cvalue, c->clen);
}

int sfy_relay_getsockopt(int fd, int level, int name, void *value, socklen_t *len, int *rc)
{
	struct sfy_fdinfo info;
	int v;
	if (!relayed(fd, &info))
		return 0;
	if (described(level, name, &info, &v)) {
		if (!value || !len || *len < (socklen_t)sizeof v) {
			errno = value && len ? EINVAL : EFAULT;
			*rc = -1;
			return 1;
		}
		memcpy(value, &v, sizeof v);
		*len = sizeof v;
		*rc = 0;
		return 1;
	}
	if (!forwarded(level, name))
		return 0;
	struct opt_call c = {.level = level, .name = name, .value = value, .len = len};
	/* Once the relay has ended there is no TCP socket left to ask. */
	return relay_with_net(info.dev, info.ino, get_on, &c, rc);
}

int sfy_relay_setsockopt(int fd, int level, int name, const void *value, socklen_t len, int *rc)
{
	struct sfy_fdinfo info;
	if (!relayed(fd, &info) || !forwarded(level, name))
		return 0;
	struct opt_call c = {.level = level, .name = name, .cvalue = value, .clen = len};
	if (relay_with_net(info.dev, info.ino, set_on, &c, rc))
		return 1;
	*rc = 0; /* the connection is over: nothing left to tune */
	return 1;
}

socklen_t sfy_sockname_for_app(const struct sockaddr_storage *real, socklen_t rlen, int app_family,
			       struct sockaddr_storage *out)
{
	if (real->ss_family == app_family || (real->ss_family != AF_INET && real->ss_family != AF_INET6)) {
		memcpy(out, real, rlen < sizeof *out ? rlen : sizeof *out);
		return rlen;
	}
	/* The socket was replaced to reach the proxy: answer in the program's
	 * family, with the wildcard address and the real local port. */
	in_port_t port = real->ss_family == AF_INET ? ((const struct sockaddr_in *)real)->sin_port
						    : ((const struct sockaddr_in6 *)real)->sin6_port;
	memset(out, 0, sizeof *out);
	if (app_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;
		s->sin_family = AF_INET;
		s->sin_port = port;
		return sizeof *s;
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
	s->sin6_family = AF_INET6;
	s->sin6_port = port;
	return sizeof *s;
}
