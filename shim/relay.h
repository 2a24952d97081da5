/* The data phase of a protected SOCKS session (GSSAPI, RFC 1961 section
 * 5): every byte between client and proxy travels in mtyp 3 frames
 * (X'01', X'03', a 2-byte big-endian length, a token), while the program
 * keeps reading and writing plain bytes on its own fd.
 *
 * When the handshake is done, the program's fd number gets one end of an
 * AF_UNIX stream socketpair; one relay thread per process moves bytes
 * between the other end and the real TCP socket to the proxy, wrapping and
 * unwrapping.  Both are library-internal fds (internal_fd.h).  Readiness
 * of the program's fd is then the kernel's own, exact by construction, and
 * sendfile/splice/copy_file_range work on it natively.  The module knows
 * nothing of GSS-API: the protection comes as a table of functions.
 * Private to the library. */
#ifndef SFY_RELAY_H
#define SFY_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "socks5_codec.h" /* the RFC 1961 framing: S5_GSS_* */

struct sfy_fdinfo;
struct sfy_epoll_reg;

/* The largest token a frame carries. */
#define SFY_RELAY_TOKEN_MAX S5_GSS_TOKEN_MAX

struct sfy_prot_ops {
	/* Wrap n plain bytes (n <= max_in) into a token written to out (cap
	 * bytes).  Returns the token length, or -1 with a reason in err
	 * (NUL-terminated, errcap bytes). */
	long (*wrap)(void *ctx, const uint8_t *in, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap);
	/* Unwrap a token; returns the plain length or -1 (integrity failure,
	 * bad token...) with a reason. */
	long (*unwrap)(void *ctx, const uint8_t *tok, size_t n, uint8_t *out, size_t cap, char *err, size_t errcap);
	/* Frees ctx; may be NULL.  Called by the relay thread (or by
	 * sfy_relay_start when that fails), never in a fork child. */
	void (*free)(void *ctx);
};

struct sfy_prot {
	const struct sfy_prot_ops *ops;
	void *ctx;
	size_t max_in; /* largest plain chunk whose token fits in 65535 bytes (1..65535) */
};

/* fd is the program's socket, connected to the proxy, handshake done (no
 * byte of the data phase read yet).  Moves the TCP socket to an internal
 * fd, puts one end of a socketpair at fd keeping fd's O_NONBLOCK,
 * FD_CLOEXEC and the given epoll registrations (regs/n_regs, see struct
 * sfy_epoll_reg; regs may be NULL when n_regs is 0), records a fdtable
 * entry of kind SFY_FD_RELAYED (peer/local/app_family from *info, filled
 * like a CONNECTED entry; when info->local_len is 0 the TCP socket's own
 * address stands in), and hands the session to the relay thread, which
 * owns p from then on.  what names the connection in log lines ("fd 5 to
 * 192.0.2.1:80").  0, or -1 with errno and fd unchanged (p freed then). */
int sfy_relay_start(int fd, const struct sfy_prot *p, const struct sfy_fdinfo *info, const struct sfy_epoll_reg *regs,
		    int n_regs, const char *what);

/* A relay session was ever started in this process: while 0 the hooks
 * below need not be asked. */
extern int sfy_relay_used;
static inline int sfy_relay_any(void)
{
	return __atomic_load_n(&sfy_relay_used, __ATOMIC_RELAXED) != 0;
}

/* getsockopt()/setsockopt() on a relayed fd, so that it still looks like
 * the TCP socket: 1 and *rc (errno set when -1) when handled here, 0 when
 * the option belongs to the program's own end (the hook calls libc). */
int sfy_relay_getsockopt(int fd, int level, int name, void *value, socklen_t *len, int *rc);
int sfy_relay_setsockopt(int fd, int level, int name, const void *value, socklen_t len, int *rc);

/* real, a socket's local address (rlen bytes), as getsockname() shows it
 * to a program whose socket has family app_family: itself, or the wildcard
 * address of app_family with real's port when the socket was replaced to
 * reach the proxy.  Returns the length written to out. */
socklen_t sfy_sockname_for_app(const struct sockaddr_storage *real, socklen_t rlen, int app_family,
			       struct sockaddr_storage *out);

#endif
