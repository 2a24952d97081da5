/* What the hop-engine tests share (tests/unit/test_engine_s4.c,
 * test_engine_http.c, test_chain.c): a driver played by hand.  Included by
 * each test file; static inline so that a file using part of it still
 * builds under -Werror. */
#ifndef ENGINE_WIRE_H
#define ENGINE_WIRE_H

#include <string.h>

#include "sfy_engine.h"

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static inline enum sfy_want want(struct sfy_engine *e)
{
	const uint8_t *out;
	size_t n, max;
	return sfy_engine_want(e, &out, &n, &max);
}

static inline size_t read_max(struct sfy_engine *e)
{
	const uint8_t *out;
	size_t n, max = 0;
	assert_int_equal(sfy_engine_want(e, &out, &n, &max), SFY_WANT_READ);
	return max;
}

/* The engine must want to write exactly these bytes; they are "sent". */
static inline void expect_write(struct sfy_engine *e, const void *bytes, size_t len)
{
	const uint8_t *out;
	size_t n, max;
	assert_int_equal(sfy_engine_want(e, &out, &n, &max), SFY_WANT_WRITE);
	assert_int_equal(n, len);
	assert_memory_equal(out, bytes, len);
	sfy_engine_sent(e, n);
}

static inline void skip_writes(struct sfy_engine *e)
{
	const uint8_t *out;
	size_t n, max;
	while (sfy_engine_want(e, &out, &n, &max) == SFY_WANT_WRITE)
		sfy_engine_sent(e, n);
}

/* Feed as a driver would: never more than read_max (checked to stay within
 * the drivers' buffer), one byte at a time when drip.  Returns how many
 * bytes the engine took. */
static inline size_t feed(struct sfy_engine *e, const void *bytes, size_t len, int drip)
{
	const uint8_t *in = bytes;
	size_t used = 0;
	while (used < len) {
		const uint8_t *out;
		size_t n, max;
		if (sfy_engine_want(e, &out, &n, &max) != SFY_WANT_READ)
			break;
		assert_true(max > 0 && max <= SFY_ENG_IN_MAX);
		size_t give = len - used < max ? len - used : max;
		if (drip)
			give = 1;
		size_t took = sfy_engine_feed(e, in + used, give);
		int want_is_failed = sfy_engine_want(e, &out, &n, &max) == SFY_WANT_FAILED;
		/* Drivers drop what the engine leaves of a read within read_max. */
		assert_true(took == give || want_is_failed);
		used += took;
		if (took < give)
			break;
	}
	return used;
}

#endif
