/* libFuzzer target: the /etc/hosts reader, sfy_hosts_lookup and
 * sfy_hosts_reverse (shim/hosts.c), which scan lines in place.
 *
 * Input: TEXT NUL NAME (without a NUL, NAME is the second word of the
 * first line).  TEXT is written to a file of its own and read back.
 *
 * Invariants, against a reference written the plain way (strtok_r on a
 * copy, as the reader did before it scanned in place):
 *   - the same addresses, in the same order, for NAME in every family and
 *     for a small max;
 *   - for each address found, the same first name from the reverse
 *     look-up, NUL-terminated and shorter than the buffer. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sfy_hosts.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)
#define MAXA 8

static int ref_parse(char *line, struct sfy_host_addr *a, char **names)
{
	line[strcspn(line, "#")] = '\0';
	char *addr = strtok_r(line, " \t\r", names);
	if (!addr)
		return 0;
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, addr, &a->u.v4) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &a->u.v6) == 1)
		a->family = AF_INET6;
	return a->family != 0;
}

static int ref_lookup(const char *text, const char *name, int family, struct sfy_host_addr *out, int max)
{
	char *buf = strdup(text), *save = NULL;
	int count = 0;
	CHECK(buf != NULL);
	for (char *line = strtok_r(buf, "\n", &save); line && count < max; line = strtok_r(NULL, "\n", &save)) {
		struct sfy_host_addr a;
		char *rest = NULL, *nsave = NULL;
		if (!ref_parse(line, &a, &rest) || (family != AF_UNSPEC && family != a.family))
			continue;
		for (char *n = strtok_r(rest, " \t\r", &nsave); n; n = strtok_r(NULL, " \t\r", &nsave))
			if (strcasecmp(n, name) == 0) {
				out[count++] = a;
				break;
			}
	}
	free(buf);
	return count;
}

static int ref_reverse(const char *text, const struct sfy_host_addr *want, char *name, size_t cap)
{
	char *buf = strdup(text), *save = NULL;
	int found = 0;
	CHECK(buf != NULL);
	for (char *line = strtok_r(buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		struct sfy_host_addr a;
		char *rest = NULL, *nsave = NULL;
		if (!ref_parse(line, &a, &rest) || a.family != want->family ||
		    memcmp(&a.u, &want->u, a.family == AF_INET ? 4 : 16) != 0)
			continue;
		char *first = strtok_r(rest, " \t\r", &nsave);
		if (first && strlen(first) < cap) {
			strcpy(name, first);
			found = 1;
		}
	}
	free(buf);
	return found;
}

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/sfy-fuzz-hosts.%d", (int)getpid());
	char *text = malloc(size + 1), name[300] = "";
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	size_t tlen = strlen(text);
	if (tlen < size) {
		snprintf(name, sizeof name, "%s", text + tlen + 1);
	} else {
		char w1[300] = "";
		sscanf(text, "%299s %299s", w1, name);
	}
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fwrite(text, 1, tlen, f);
	fclose(f);
	static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
	for (int k = 0; k < 3; k++) {
		for (int max = 1; max <= MAXA; max += MAXA - 1) {
			struct sfy_host_addr got[MAXA], want[MAXA];
			int n = sfy_hosts_lookup(path, name, families[k], got, max);
			int m = ref_lookup(text, name, families[k], want, max);
			CHECK(n == m && n <= max);
			for (int i = 0; i < n; i++) {
				CHECK(got[i].family == want[i].family);
				CHECK(memcmp(&got[i].u, &want[i].u, got[i].family == AF_INET ? 4 : 16) == 0);
				char r1[16], r2[16];
				memset(r1, 'x', sizeof r1);
				int a = sfy_hosts_reverse(path, &got[i], r1, sizeof r1);
				int b = ref_reverse(text, &got[i], r2, sizeof r2);
				CHECK(a == b);
				CHECK(!a || (memchr(r1, '\0', sizeof r1) && strcmp(r1, r2) == 0));
			}
		}
	}
	free(text);
	return 0;
}
