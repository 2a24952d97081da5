/* libFuzzer target: the SOCKS5 decoders (shim/codec.c).
 *
 * The first input byte picks the decoder (method, auth, reply, request,
 * the UDP relay header);
 * the rest is the message, in a heap block of exactly its length so that
 * ASan catches any read past len.  Invariants checked on every input:
 *   - a decoder returns a negative S5_E* code, 0 ("need more") or a
 *     length n with 0 < n <= len; method and auth replies are always 2;
 *   - a decoder answers the same for every longer buffer with the same
 *     prefix: once complete (n), or once wrong (error), extra bytes change
 *     nothing, and every strict prefix of a complete message is 0 or the
 *     same error class (never a different length);
 *   - a decoded reply or request encodes back to exactly the n bytes it
 *     was decoded from (s5_encode_request with the REP/CMD byte);
 *   - a decoded UDP header with FRAG 0 encodes back to its n bytes;
 *   - s5_rep_text / s5_rep_errno answer for every code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks5_codec.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

enum { D_METHOD, D_AUTH, D_REPLY, D_REQUEST, D_UDP, D_COUNT };

/* One decode on an exact-size heap copy of in[0..len). */
static int decode(int which, const uint8_t *in, size_t len, uint8_t *code, struct s5_addr *a)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct s5_reply r;
	int n;

	CHECK(copy != NULL);
	memcpy(copy, in, len);
	switch (which) {
	case D_METHOD:
		n = s5_decode_method(copy, len, code);
		break;
	case D_AUTH:
		n = s5_decode_auth(copy, len, code);
		break;
	case D_REPLY:
		memset(&r, 0, sizeof(r));
		n = s5_decode_reply(copy, len, &r);
		*code = r.rep;
		*a = r.bnd;
		break;
	case D_UDP:
		n = s5_decode_udp_header(copy, len, code, a);
		break;
	default:
		n = s5_decode_request(copy, len, code, a);
		break;
	}
	free(copy);
	return n;
}

static void check_roundtrip(const uint8_t *in, int n, uint8_t code, const struct s5_addr *a)
{
	uint8_t out[S5_REQUEST_MAX];
	int m = s5_encode_request(out, sizeof(out), code, a);

	CHECK(m == n);
	CHECK(memcmp(out, in, (size_t)n) == 0);
	if (a->atyp == S5_ATYP_DOMAIN) {
		CHECK(a->u.domain.len >= 1);
		CHECK(a->u.domain.name[a->u.domain.len] == '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t code = 0, code2 = 0;
	struct s5_addr a, a2;

	if (size < 1)
		return 0;
	int which = data[0] % D_COUNT;
	const uint8_t *in = data + 1;
	size_t len = size - 1;

	memset(&a, 0, sizeof(a));
	int n = decode(which, in, len, &code, &a);
	CHECK(n >= S5_ESPACE && n <= (int)len);
	if (which == D_METHOD || which == D_AUTH)
		CHECK(n == 0 || n == 2 || n == S5_EVERSION);
	if (which == D_UDP && n > 0 && code == 0) {
		uint8_t out[S5_UDP_HEADER_MAX];
		CHECK(n <= S5_UDP_HEADER_MAX);
		CHECK(s5_encode_udp_header(out, sizeof out, &a) == n && memcmp(out, in, (size_t)n) == 0);
	}
	if ((which == D_REPLY || which == D_REQUEST) && n > 0) {
		CHECK(n <= S5_REPLY_MAX);
		check_roundtrip(in, n, code, &a);
	}
	/* Shorter buffers: "need more" before a complete message ends, the
	 * same length after; for a failure, "need more" or the same error. */
	for (size_t k = 0; k < len && k < 300; k++) {
		int p = decode(which, in, k, &code2, &a2);
		if (n > 0)
			CHECK(k < (size_t)n ? p == 0 : p == n);
		else
			CHECK(p == 0 || p == n);
	}
	/* More bytes after a complete or failed message change nothing. */
	if (n != 0 && len < 1024) {
		uint8_t *longer = malloc(len + 7);
		CHECK(longer != NULL);
		memcpy(longer, in, len);
		memset(longer + len, 0xA5, 7);
		CHECK(decode(which, longer, len + 7, &code2, &a2) == n);
		free(longer);
	}
	CHECK(s5_rep_text(data[0]) != NULL);
	CHECK(s5_rep_errno(data[0]) != 0 || data[0] == S5_REP_SUCCEEDED);
	return 0;
}
