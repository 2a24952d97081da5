/* What the hop-engine fuzz targets share (fuzz_s4_reply.c, fuzz_http_head.c):
 * run an engine over input bytes the way a driver does, and the outcome.
 *
 * Three ways of reading: one byte at a time, read_max at a time, and sizes
 * taken from the input; the outcome must not depend on which.  Checked on
 * every read: read_max is between 1 and SFY_ENG_IN_MAX (the drivers'
 * buffer), and the engine takes every byte of a read within read_max
 * (drivers drop what it leaves) unless it failed. */
#ifndef FUZZ_ENGINE_DRIVE_H
#define FUZZ_ENGINE_DRIVE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_engine.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

struct outcome {
	enum sfy_want want;
	int err, rep, replies;
	size_t taken;
};

enum { READ_DRIP, READ_MAX, READ_SIZES, READ_WAYS };

/* Feed in[0..len) (then EOF when eof); sizes[] (nsizes) for READ_SIZES;
 * more: call sfy_engine_next_reply after a first DONE (BIND). */
static struct outcome drive(struct sfy_engine *e, const uint8_t *in, size_t len, int way, const uint8_t *sizes,
			    size_t nsizes, int eof, int more)
{
	struct outcome o = {0};
	size_t k = 0;
	for (;;) {
		const uint8_t *out;
		size_t n, max;
		enum sfy_want w = sfy_engine_want(e, &out, &n, &max);
		if (w == SFY_WANT_WRITE) {
			sfy_engine_sent(e, n);
			continue;
		}
		if (w == SFY_WANT_DONE && more && e->replies == 1) {
			sfy_engine_next_reply(e);
			more = 0;
			continue;
		}
		if (w != SFY_WANT_READ)
			break;
		CHECK(max >= 1 && max <= SFY_ENG_IN_MAX);
		if (o.taken == len) {
			if (!eof)
				break;
			sfy_engine_eof(e);
			continue;
		}
		size_t give = way == READ_DRIP ? 1 : way == READ_MAX ? max : (size_t)(nsizes ? sizes[k++ % nsizes] % 17 + 1 : 1);
		if (give > max)
			give = max;
		if (give > len - o.taken)
			give = len - o.taken;
		/* An exact-size heap copy: ASan sees any read past it. */
		uint8_t *copy = malloc(give);
		CHECK(copy != NULL);
		memcpy(copy, in + o.taken, give);
		size_t took = sfy_engine_feed(e, copy, give);
		free(copy);
		CHECK(took <= give);
		CHECK(took == give || sfy_engine_want(e, &out, &n, &max) == SFY_WANT_FAILED);
		o.taken += took;
		if (took < give)
			break;
	}
	const uint8_t *out;
	size_t n, max;
	o.want = sfy_engine_want(e, &out, &n, &max);
	o.err = o.want == SFY_WANT_FAILED ? e->err : 0;
	o.rep = e->rep;
	o.replies = e->replies;
	if (o.want == SFY_WANT_FAILED)
		CHECK(e->err != 0 && e->step != NULL);
	/* Nothing more is taken once done or failed. */
	if (o.want != SFY_WANT_READ)
		CHECK(sfy_engine_feed(e, (const uint8_t *)"x", 1) == 0);
	return o;
}

/* Where a failed engine stopped taking bytes may depend on the read size
 * (the connection is dropped then); everything else may not. */
static int same_outcome(const struct outcome *a, const struct outcome *b)
{
	return a->want == b->want && a->err == b->err && a->rep == b->rep && a->replies == b->replies &&
	       (a->taken == b->taken || a->want == SFY_WANT_FAILED);
}

#endif
