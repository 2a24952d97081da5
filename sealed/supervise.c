/* The sealed-mode supervisor (placeholder until it lands). */
#include "sealed.h"

#include <stdio.h>

int sfy_supervise(char *const argv[], const char *preload)
{
	(void)preload;
	fprintf(stderr, "socksify: --sealed: %s: the supervisor is not built yet\n", argv[0]);
	return 126;
}
