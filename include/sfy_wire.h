/* SOCKS messages on a socket with deadlines (shim/wire.c), shared by the
 * library and the socksify --check tool. */
#ifndef SFY_WIRE_H
#define SFY_WIRE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "socks5_codec.h"

/* How the SOCKS exchange uses the caller's fd (shim/wire.c): every read
 * waits in poll() until deadline (SFY_NO_DEADLINE: no limit of ours), or,
 * when blocking, the fd is a blocking one with no limit of ours to keep and
 * plain blocking calls do. */
#define SFY_NO_DEADLINE LLONG_MAX
struct sfy_io {
	int fd;
	long long deadline;
	int blocking;
};
long long sfy_now_us(void);
long long sfy_now_ms(void);
/* now + ms, or SFY_NO_DEADLINE for 0 (a timeout of 0 means no limit). */
long long sfy_deadline_after(int ms);
/* 1 when fd is in non-blocking mode, 0 when not, -1 on error. */
int sfy_fd_nonblocking(int fd);
/* The events that arrived on fd (never 0), or -1 with errno (ETIMEDOUT). */
int sfy_wait_fd(int fd, short events, long long deadline);
/* A connect() in progress (or interrupted) finished by deadline: 0, or -1
 * with errno (the connection's error, or ETIMEDOUT). */
int sfy_connect_finish(int fd, long long deadline);
int sfy_send_all(struct sfy_io *io, const uint8_t *buf, size_t len);
/* Up to max bytes (never more: what follows a message is the program's),
 * waiting first when wait_first; 0 at EOF, -1 with errno. */
ssize_t sfy_recv_some(struct sfy_io *io, uint8_t *buf, size_t max, int wait_first);

/* The blocking driver of a route (shim/chain.c's engines): every hop to
 * its end on io's fd, each wait bounded by io's deadline, reads never
 * larger than the engine may take.  hop_done (may be NULL) is told when
 * hop `hop` (0-based) has reached the next one.  0, or -1 with errno (the
 * engine's, c->e.err). */
struct sfy_chain_engine;
typedef void (*sfy_hop_done_fn)(const struct sfy_chain_engine *c, int hop, void *arg);
int sfy_chain_drive(struct sfy_chain_engine *c, struct sfy_io *io, sfy_hop_done_fn hop_done, void *arg);

#endif
