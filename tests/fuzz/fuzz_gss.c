/* libFuzzer target: the GSSAPI method's framing (RFC 1961) in the engine
 * (shim/engine_gss.c), from the method choice to the wrapped reply, with
 * the deterministic stand-in mechanism of tests/fuzz/gss_stub.c.
 *
 * Input: a flags byte (bit 0: integrity, else confidentiality; bit 1:
 * BIND, whose second wrapped reply is read too; bit 2: EOF after the
 * bytes; bit 3: gssapi = required), a byte of read sizes, then what the
 * proxy sends.  Checked (fuzz_engine_drive.h): the outcome is the same
 * whatever the read sizes; read_max stays within the drivers' buffer;
 * every byte of a read is taken unless the engine failed; nothing is
 * taken after DONE or FAILED; and: DONE only after a context, a level of
 * at least ours and a reply that unwrapped; a failure leaves no pointer
 * into freed memory once the engine is released (ASan). */
#include "fuzz_engine_drive.h"

#include <errno.h>

#include "sfy_gss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	const uint8_t *sizes = data + 1;
	const uint8_t *in = data + 2;
	size_t len = size - 2;
	struct sfy_hop hop = {.user = "", .gssapi = flags & 8 ? 2 : 1, .gss_service = "rcmd@fuzz",
			      .gss_level = flags & 1 ? SFY_GSS_INTEGRITY : SFY_GSS_CONFIDENTIALITY};
	uint8_t cmd = flags & 2 ? S5_CMD_BIND : S5_CMD_CONNECT;
	int eof = (flags & 4) != 0;
	struct s5_addr dst = {.atyp = S5_ATYP_IPV4, .port = 80, .u.ipv4 = {192, 0, 2, 7}};

	struct outcome o[READ_WAYS];
	for (int way = 0; way < READ_WAYS; way++) {
		struct sfy_engine e;
		sfy_engine_start(&e, &hop, cmd, &dst);
		o[way] = drive(&e, in, len, way, sizes, 1, eof, cmd == S5_CMD_BIND);
		CHECK(same_outcome(&o[way], &o[0]));
		int level;
		if (o[way].want == SFY_WANT_DONE && in[1] == S5_METHOD_GSSAPI) {
			/* A context, a level agreed: the reply was a frame that
			 * unwrapped. */
			CHECK(sfy_engine_gss_level(&e, &level) && level >= hop.gss_level);
		}
		if (o[way].want == SFY_WANT_DONE)
			CHECK(in[1] == S5_METHOD_GSSAPI || (in[1] == S5_METHOD_NONE && hop.gssapi == 1));
		if (o[way].want == SFY_WANT_FAILED && len >= 2 && in[0] == 5 && in[1] == S5_METHOD_NONE && hop.gssapi == 2)
			CHECK(o[way].err == EPROTO); /* required: a downgrade is refused */
		sfy_engine_release(&e);
		CHECK(e.step != NULL && e.step[0] != '\0');
	}
	return 0;
}
