/* libFuzzer target: the SOCKS4/4a engine's replies (shim/engine_s4.c).
 *
 * Input: a flags byte (bit 0: SOCKS4a, bit 1: BIND, whose second reply is
 * read too; bit 2: EOF after the bytes), a byte of read sizes, then what
 * the proxy sends.  Checked (see fuzz_engine_drive.h): the outcome is the
 * same whatever the read sizes; read_max stays within the drivers'
 * buffer; and against the protocol: at most 8 bytes per reply are taken,
 * VN 0 CD 90 is DONE, CD 91 ECONNREFUSED, 92/93 EACCES, anything else
 * (or a VN but 0) EPROTO; a reply cut short is EPROTO at EOF. */
#include "fuzz_engine_drive.h"

#include <errno.h>

static int cd_errno(uint8_t cd)
{
	return cd == 90 ? 0 : cd == 91 ? ECONNREFUSED : cd == 92 || cd == 93 ? EACCES : EPROTO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	const uint8_t *sizes = data + 1;
	const uint8_t *in = data + 2;
	size_t len = size - 2;
	struct sfy_hop hop = {.user = "fuzz", .type = flags & 1 ? SFY_HOP_SOCKS4A : SFY_HOP_SOCKS4};
	uint8_t cmd = flags & 2 ? S5_CMD_BIND : S5_CMD_CONNECT;
	int eof = (flags & 4) != 0;
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};

	struct outcome o[READ_WAYS];
	for (int way = 0; way < READ_WAYS; way++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &hop, cmd, &dst);
		o[way] = drive(&e, in, len, way, sizes, 1, eof, cmd == S5_CMD_BIND);
		CHECK(same_outcome(&o[way], &o[0]));
	}
	/* The protocol, reply by reply. */
	size_t replies = cmd == S5_CMD_BIND ? 2 : 1;
	CHECK(o[0].taken <= 8 * replies);
	for (size_t r = 0; r < replies; r++) {
		const uint8_t *m = in + 8 * r;
		size_t have = len > 8 * r ? len - 8 * r : 0;
		if (have >= 1 && m[0] != 0) {
			CHECK(o[0].want == SFY_WANT_FAILED && o[0].err == EPROTO);
			return 0;
		}
		if (have < 8) {
			if (eof)
				CHECK(o[0].want == SFY_WANT_FAILED && o[0].err == (have ? EPROTO : ECONNRESET));
			else
				CHECK(o[0].want == SFY_WANT_READ);
			return 0;
		}
		CHECK(o[0].taken >= 8 * (r + 1));
		int err = cd_errno(m[1]);
		if (err) {
			CHECK(o[0].want == SFY_WANT_FAILED && o[0].err == err && o[0].rep == m[1]);
			return 0;
		}
	}
	CHECK(o[0].want == SFY_WANT_DONE && o[0].rep == 90 && o[0].taken == 8 * replies);
	return 0;
}
