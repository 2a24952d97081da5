/* Internals of the sealed-mode supervisor (sealed/supervise.c, filter.c,
 * target.c, notify.c, proxy.c, dnsd.c).  The supervisor is a process of
 * its own, not the preloaded library: it links the library's pure modules
 * (config, rules, route, session pool, DNS answers, engine, wire) and acts
 * on sockets it takes from the program with pidfd_getfd(). */
#ifndef SFY_SUP_H
#define SFY_SUP_H

#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "socks5_codec.h"

/* filter.c: install the sealed filter on the calling process (which has
 * set no_new_privs).  The listener fd, or -1 with errno. */
int sfy_filter_install(void);

/* target.c: the program's side of one notification. */
struct sfy_target {
	const struct seccomp_notif *n;
	int listener;
};
/* Copy len bytes at addr of the notifying thread into buf: 0 or -1. */
int sfy_target_read(const struct sfy_target *t, uint64_t addr, void *buf, size_t len);
/* The notification is still pending (its thread still waits in the
 * call, so what was read is that thread's): 1 or 0. */
int sfy_target_valid(const struct sfy_target *t);
/* A copy of the program's fd (O_CLOEXEC), or -1 with errno. */
int sfy_target_getfd(const struct sfy_target *t, int fd);
/* The program's command name ("?" when gone) into out[16]. */
void sfy_target_comm(pid_t pid, char out[16]);
/* Answer the notification: the call goes on in the kernel (CONTINUE),
 * returns val, or fails with err (positive errno).  0, or -1 when the
 * notification is gone (the thread was interrupted or died). */
int sfy_reply_continue(const struct sfy_target *t);
int sfy_reply_val(const struct sfy_target *t, int64_t val);
int sfy_reply_err(const struct sfy_target *t, int err);

/* dnsd.c: the DNS answerer programs' port-53 traffic is turned to, on
 * loopback (UDP and TCP, IPv4 and IPv6), answering from the session pool. */
int sfy_dnsd_start(void);
/* Its pollable fds into fds (at most 4); returns how many. */
int sfy_dnsd_fds(int *fds);
/* One of those fds is readable: serve it (never blocks for long). */
void sfy_dnsd_serve(int fd);
/* Point the program's socket copy (connected or not) at the answerer:
 * connect it there.  0, or -1 with errno. */
int sfy_dnsd_redirect(int sock, int type);
/* Send one query from the program's socket copy to the answerer (for an
 * unconnected socket's sendto/sendmsg); the answer arrives on the
 * program's socket.  0, or -1 with errno. */
int sfy_dnsd_forward(int sock, const void *query, size_t len);

/* proxy.c: a TCP connect of the program's made through the proxy on a
 * worker thread, which answers the notification itself.  sock is our copy
 * of the program's socket (taken over: closed by the worker). */
void sfy_proxy_start(const struct sfy_target *t, int sock, const struct s5_addr *dst, const char *comm);
/* Workers still running. */
int sfy_proxy_busy(void);

/* notify.c: handle one notification. */
void sfy_notify_handle(int listener, const struct seccomp_notif *n);

#endif
