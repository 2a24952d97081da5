/* A GSSAPI-protected connection handed to the relay (shim/gss_conn.c):
 * what the drivers call once an RFC 1961 exchange is done.  Private to
 * the library. */
#ifndef SFY_GSS_CONN_H
#define SFY_GSS_CONN_H

#include "sfy_fdtable.h"
#include "sfy_gss.h"

/* fd is connected to the proxy, the exchange done, no data byte read:
 * from now on the program reads and writes plain bytes on fd while the
 * relay thread wraps and unwraps them with g (which it owns, whatever the
 * outcome).  info: fd's entry as for a CONNECTED fd (what getpeername()
 * shows); regs: the program's epoll registrations of fd, kept.  0, or -1
 * with errno (the caller fails the connection). */
int sfy_gss_relay(int fd, struct sfy_gss *g, const struct sfy_fdinfo *info, const struct sfy_epoll_reg *regs,
		  int n_regs);

#endif
