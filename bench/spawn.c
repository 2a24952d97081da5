/* bench/spawn.c — interleaved start-up timing.
 *
 *   spawn ROUNDS CMDFILE
 *
 * CMDFILE has one variant per line: "NAME<TAB>ENV1 ENV2 ...<TAB>PROG ARG..."
 * (fields split on spaces; "-" for no environment).  Each round runs every
 * variant once, in order, with exactly that environment (nothing inherited),
 * via fork+execve, and times fork-to-reap with CLOCK_MONOTONIC.  Output:
 * one line per variant and round: "NAME ROUND MICROSECONDS". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXV 32
#define MAXA 32

struct variant {
	char name[64];
	char *env[MAXA], *argv[MAXA];
};

static void split(char *s, char **out)
{
	int i = 0;
	for (char *t = strtok(s, " "); t && i < MAXA - 1; t = strtok(NULL, " "))
		if (strcmp(t, "-"))
			out[i++] = t;
	out[i] = NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int rounds = atoi(argv[1]), nv = 0;
	static struct variant v[MAXV];
	FILE *f = fopen(argv[2], "r");
	char line[4096];
	if (!f)
		return 1;
	while (nv < MAXV && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		char *a = strchr(line, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
		if (!b)
			continue;
		*a++ = 0, *b++ = 0;
		memcpy(v[nv].name, line, strnlen(line, sizeof v[nv].name - 1));
		split(strdup(a), v[nv].env);
		split(strdup(b), v[nv].argv);
		nv++;
	}
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < nv; i++) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			pid_t p = fork();
			if (p == 0) {
				execve(v[i].argv[0], v[i].argv, v[i].env);
				_exit(127);
			}
			int st;
			waitpid(p, &st, 0);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				fprintf(stderr, "spawn: %s failed (%d)\n", v[i].name, st);
				return 1;
			}
			printf("%s %d %.1f\n", v[i].name, r,
			       (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
		}
	return 0;
}
