/* Inside the relay (shim/relay.c: sessions, thread, start, fork;
 * shim/relay_pump.c: one session's bytes).  Private to those files. */
#ifndef SFY_RELAY_INT_H
#define SFY_RELAY_INT_H

#include "relay.h"

#include <sys/types.h>

#define RELAY_FRAME_MAX S5_GSS_FRAME_MAX

/* Session states (bits of flags). */
enum {
	R_NET_EOF = 1,      /* the proxy's stream ended at a frame boundary */
	R_APP_EOF = 2,      /* the program's stream ended (shutdown, close) */
	R_NET_WR_SHUT = 4,  /* we shut down our write side to the proxy */
	R_APP_WR_SHUT = 8,  /* we shut down our write side to the program */
	R_APP_GONE = 16,    /* the program closed its end (or shut its read side) */
	R_FAILED = 32,      /* a data-phase error: deliver the good bytes, then reset */
	R_NET_HUP = 64,     /* poll reported HUP/ERR on the TCP socket */
	R_APP_HUP = 128,    /* poll reported HUP/ERR on our end of the pair */
};

struct relay_sess {
	struct relay_sess *next;
	struct sfy_prot p;
	int hn, ha;          /* internal fd handles: TCP socket to the proxy, our end of the pair */
	int app_fd;          /* the program's number at the start (for the reset) */
	dev_t app_dev;       /* identity of the program's end */
	ino_t app_ino;
	unsigned flags;
	int fresh;           /* not stepped yet */
	int busy;            /* the last step stopped with work left */
	int out_pending;     /* atomic: a frame of the program's bytes is not written yet */
	char what[128];
	/* proxy -> program */
	uint8_t *rbuf;       /* frame bytes read, RELAY_FRAME_MAX */
	size_t rlen;
	uint8_t *pbuf;       /* unwrapped bytes the program has not taken yet, SFY_RELAY_TOKEN_MAX */
	size_t poff, plen;
	/* program -> proxy */
	uint8_t *plain;      /* a chunk read from the program, p.max_in */
	uint8_t *wbuf;       /* the frame being written, RELAY_FRAME_MAX */
	size_t woff, wlen;
};

/* What to poll for (POLLIN/POLLOUT) on the TCP socket and on our end; -1
 * in *net_fd_ok / *app_fd_ok style is left to the caller: an fd with no
 * events whose HUP was already seen is not polled at all (no spinning). */
void relay_interest(const struct relay_sess *s, short *net_ev, short *app_ev, int *poll_net, int *poll_app);
/* Move what can move without waiting, given what poll reported.  Returns
 * 1 when the session is over, 0 to wait, 2 when work is left that needs
 * no wait (the loop polls with a zero timeout). */
int relay_step(struct relay_sess *s, short net_rev, short app_rev);
/* Under the sessions' lock: fn(the TCP socket's fd, arg) for the session
 * whose program end is (dev, ino), the fd locked in place.  1 and *rc (errno
 * as fn left it), or 0 when no such session lives. */
int relay_with_net(dev_t dev, ino_t ino, int (*fn)(int fd, void *arg), void *arg, int *rc);
/* A failed session: make the program's reads end in ECONNRESET after the
 * last good byte, where that can be done (before our end is closed). */
void relay_reset_app(struct relay_sess *s);

#endif
