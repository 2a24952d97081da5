/* lookup: time this process's first getaddrinfo() of a name (under
 * socksify: the session pool is created or joined there), then the median
 * of N more look-ups of distinct names (the steady cost).  Prints
 * "first_us=F steady_us=S".
 *
 *   lookup NAME [N]   (N defaults to 200) */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double one(const char *name)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	double t0 = now_us();
	int rc = getaddrinfo(name, "80", &hints, &ai);
	double t = now_us() - t0;
	if (rc != 0) {
		fprintf(stderr, "lookup: %s: %s\n", name, gai_strerror(rc));
		exit(1);
	}
	freeaddrinfo(ai);
	return t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int n = argc > 2 ? atoi(argv[2]) : 200;
	if (n < 1 || n > 100000)
		return 2;
	double first = one(argv[1]);
	double *t = malloc(sizeof *t * (size_t)n);
	char name[300];
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof name, "n%d.%s", i, argv[1]);
		t[i] = one(name);
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("first_us=%.1f steady_us=%.2f\n", first, t[n / 2]);
	free(t);
	return 0;
}
