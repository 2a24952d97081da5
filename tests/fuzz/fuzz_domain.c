/* libFuzzer target: the direct_domain matcher, sfy_domain_match
 * (shim/rules.c).
 *
 * Input: SUFFIX NUL NAME (without a NUL, the whole input is the name and
 * the suffix is its last label).  Each string is its own heap block of
 * exactly strlen + 1 bytes, so ASan catches any read outside it.
 *
 * Invariants:
 *   - the answer is 0 or 1 and agrees with a reference: after dropping
 *     one trailing dot from the name, a non-empty suffix matches when it
 *     equals the name or the name ends in "." + suffix, ignoring ASCII
 *     case;
 *   - case: the upper-cased name gives the same answer;
 *   - a match still holds for "x." + name (one label deeper). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_config.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

static char *dup_exact(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	CHECK(d != NULL);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int reference(const char *suffix, const char *name)
{
	size_t s = strlen(suffix), n = strlen(name);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (s == 0 || n < s)
		return 0;
	if (n == s)
		return ieq(name, suffix, s);
	return name[n - s - 1] == '.' && ieq(name + n - s, suffix, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	char *suffix, *name;

	if (size > 600)
		return 0;
	if (nul) {
		suffix = dup_exact(in, (size_t)(nul - in));
		name = dup_exact(nul + 1, size - (size_t)(nul - in) - 1);
	} else {
		name = dup_exact(in, size);
		const char *dot = strrchr(name, '.');
		suffix = dup_exact(dot ? dot + 1 : name, strlen(dot ? dot + 1 : name));
	}
	/* a NUL inside the name part ends it; re-copy to the exact length */
	char *exact = dup_exact(name, strlen(name));
	free(name);
	name = exact;

	int m = sfy_domain_match(suffix, name);
	CHECK(m == 0 || m == 1);
	CHECK(m == reference(suffix, name));

	size_t n = strlen(name);
	char *upper = dup_exact(name, n);
	for (size_t i = 0; i < n; i++)
		upper[i] = (char)toupper((unsigned char)upper[i]);
	CHECK(sfy_domain_match(suffix, upper) == m);
	free(upper);

	if (m) {
		char *deeper = malloc(n + 3);
		CHECK(deeper != NULL);
		memcpy(deeper, "x.", 2);
		memcpy(deeper + 2, name, n + 1);
		CHECK(sfy_domain_match(suffix, deeper) == 1);
		free(deeper);
	}
	free(suffix);
	free(name);
	return 0;
}
