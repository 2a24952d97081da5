/* RFC 1961 message framing (include/socks5_codec.h), shared by the engine
 * (context tokens, the protection octet, the wrapped request and replies)
 * and the relay (the data). */
#include "socks5_codec.h"

int s5_gss_frame_size(const uint8_t *buf, size_t len)
{
	if (len < 1)
		return 0;
	if (buf[0] != S5_GSS_VERSION)
		return S5_EVERSION;
	if (len < 2)
		return 0;
	if (buf[1] == S5_GSS_ABORT)
		return 2;
	if (buf[1] != S5_GSS_CONTEXT && buf[1] != S5_GSS_PROTECTION && buf[1] != S5_GSS_DATA)
		return S5_EINVAL;
	if (len < S5_GSS_HEADER)
		return 0;
	size_t n = (size_t)buf[2] << 8 | buf[3];
	return n ? (int)(S5_GSS_HEADER + n) : S5_EINVAL;
}

int s5_gss_header(uint8_t *out, uint8_t mtyp, size_t len)
{
	if (len == 0 || len > S5_GSS_TOKEN_MAX)
		return S5_EINVAL;
	out[0] = S5_GSS_VERSION;
	out[1] = mtyp;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	return S5_GSS_HEADER;
}
