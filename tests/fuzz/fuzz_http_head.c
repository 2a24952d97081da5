/* libFuzzer target: the HTTP CONNECT engine's response head
 * (shim/engine_http.c).
 *
 * Input: a flags byte (bit 0: EOF after the bytes), a few bytes of read
 * sizes (up to the first '|' or 8), then what the proxy sends.  Checked
 * (see fuzz_engine_drive.h): the same outcome whatever the read sizes;
 * read_max within the drivers' buffer and never past the head's end (a
 * read of read_max is always taken whole unless the head failed); and:
 *   - DONE means the bytes taken end in CRLF CRLF, start with "HTTP/1.",
 *     number at most SFY_HTTP_HEAD_MAX, and the status is 2xx;
 *   - a status other than 1xx/2xx fails with rep set to it;
 *   - a head that was cut short (EOF) fails EPROTO, or ECONNRESET before
 *     its first byte; one that waits stays READ. */
#include "fuzz_engine_drive.h"

#include <errno.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int eof = data[0] & 1;
	size_t nsizes = 0;
	while (1 + nsizes < size && nsizes < 8 && data[1 + nsizes] != '|')
		nsizes++;
	const uint8_t *sizes = data + 1;
	size_t skip = 1 + nsizes + (1 + nsizes < size ? 1 : 0);
	const uint8_t *in = data + skip;
	size_t len = size - skip;
	struct sfy_hop hop = {.user = "u", .pass = "p", .type = SFY_HOP_HTTP};
	struct s5_addr dst;
	s5_addr_from_name(&dst, "files.test", 443);

	struct outcome o[READ_WAYS];
	for (int way = 0; way < READ_WAYS; way++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &hop, S5_CMD_CONNECT, &dst);
		o[way] = drive(&e, in, len, way, sizes, nsizes, eof, 0);
		CHECK(same_outcome(&o[way], &o[0]));
	}
	CHECK(o[0].taken <= len && o[0].taken <= SFY_HTTP_HEAD_MAX);
	if (o[0].want == SFY_WANT_DONE) {
		CHECK(o[0].taken >= 16);
		CHECK(memcmp(in, "HTTP/1.", 7) == 0);
		CHECK(memcmp(in + o[0].taken - 4, "\r\n\r\n", 4) == 0);
		CHECK(o[0].rep >= 200 && o[0].rep <= 299);
	} else if (o[0].want == SFY_WANT_FAILED) {
		CHECK(o[0].err == EPROTO || o[0].err == ECONNRESET || o[0].rep >= 101);
		if (o[0].err == ECONNRESET)
			CHECK(eof);
	} else {
		CHECK(o[0].want == SFY_WANT_READ && !eof && o[0].taken == len);
	}
	return 0;
}
