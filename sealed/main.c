/* socksify-sealed: the sealed-mode launcher (see sealed.h).
 *   socksify-sealed --launch [--] CMD ARG...   what the wrapper runs
 *   socksify-sealed --probe                    can sealed mode run here?
 *   socksify-sealed --inspect PATH             dynamic, static, go or caps */
#include "launch.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
	fputs("usage: socksify-sealed --launch [--] CMD [ARG...]\n"
	      "       socksify-sealed --probe\n"
	      "       socksify-sealed --inspect PATH\n",
	      stderr);
	return 2;
}

int main(int argc, char *argv[])
{
	if (argc >= 3 && strcmp(argv[1], "--launch") == 0) {
		int first = strcmp(argv[2], "--") == 0 ? 3 : 2;
		if (first >= argc)
			return usage();
		sfy_launch(argv + first);
	}
	if (argc == 2 && strcmp(argv[1], "--probe") == 0) {
		char why[256];
		if (sfy_sealed_probe(why, sizeof why)) {
			puts("sealed mode: available (seccomp user notification, pidfd_getfd)");
			return 0;
		}
		printf("sealed mode: unavailable: %s\n", why);
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "--inspect") == 0) {
		puts(sfy_prog_kind_word(sfy_prog_inspect(argv[2])));
		return 0;
	}
	return usage();
}
