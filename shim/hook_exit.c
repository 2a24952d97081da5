/* _exit() and _Exit(): the session's leader ends its session on its way out
 * (shim/session.c).  exit() runs the library's destructor for that; these
 * are for programs that leave without it, such as dash, Debian's /bin/sh,
 * which ends every shell with _exit().  They touch no thread-local storage
 * (errno included) before the leader check: Chromium's sandbox calls
 * _exit() in a clone() child whose TLS block is zeroed; the real _exit was
 * looked up at load (shim/init.c). */
#include "shim.h"

SFY_EXPORT void _exit(int status)
{
	sfy_session_end();
	REAL(_exit)(status);
	__builtin_unreachable();
}

SFY_EXPORT void _Exit(int status)
{
	sfy_session_end();
	REAL(_exit)(status);
	__builtin_unreachable();
}
