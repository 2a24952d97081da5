/* libFuzzer target: the CIDR parser and matcher, sfy_cidr_parse and
 * sfy_cidr_match (shim/config.c, shim/rules.c).
 *
 * Input: FLAGS ADDR[16] PORT[2] TEXT.  FLAGS bit 0 is allow_port, bits
 * 1-2 pick the probe address's form (IPv4 from ADDR[0..3], IPv6, or
 * IPv4 written v4-mapped in IPv6).
 *
 * Invariants:
 *   - parse returns 0 or -1; on 0 the family is AF_INET or AF_INET6, the
 *     prefix within 0..32 / 0..128, and the port 0 unless allow_port;
 *   - a parsed block printed back ("a.b.c.d/N[:P]", "v6/N" or
 *     "[v6]/N:P") parses to the identical struct: a round trip;
 *   - sfy_cidr_match agrees with a bit-by-bit reference (v4-mapped
 *     addresses match as IPv4; port 0 in the block matches any port);
 *   - the block always matches its own address and port. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_config.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

static int bit(const uint8_t *a, int i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* The rule's view of a v4-mapped address (::ffff:a.b.c.d, whether it was
 * built from an IPv4 address or is a raw IPv6 one): IPv4 rules see
 * a.b.c.d, IPv6 rules see the IPv6 form. */
static int reference_match(const struct sfy_cidr *c, int family, const uint8_t *addr, uint16_t port, int mapped)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t v6[16];
	if (family == AF_INET && mapped) {
		memcpy(v6, prefix, 12);
		memcpy(v6 + 12, addr, 4);
		if (c->family == AF_INET6)
			addr = v6, family = AF_INET6;
	} else if (family == AF_INET6 && c->family == AF_INET && memcmp(addr, prefix, 12) == 0) {
		addr += 12, family = AF_INET;
	}
	if (family != c->family)
		return 0;
	if (c->port && c->port != port)
		return 0;
	for (int i = 0; i < c->prefix; i++)
		if (bit(addr, i) != bit(c->addr, i))
			return 0;
	return 1;
}

/* A sockaddr for (family, addr, port); mapped: IPv4 as ::ffff:a.b.c.d. */
static socklen_t make_sa(struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port, int mapped)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET && !mapped) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, addr, 4);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	if (family == AF_INET) {
		s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(s6->sin6_addr.s6_addr + 12, addr, 4);
	} else {
		memcpy(s6->sin6_addr.s6_addr, addr, 16);
	}
	return sizeof(*s6);
}

static void roundtrip(const struct sfy_cidr *c, int allow_port)
{
	char ip[INET6_ADDRSTRLEN], text[128];
	struct sfy_cidr again;

	CHECK(inet_ntop(c->family, c->addr, ip, sizeof(ip)) != NULL);
	if (c->family == AF_INET6 && c->port)
		snprintf(text, sizeof(text), "[%s]/%d:%u", ip, c->prefix, c->port);
	else if (c->port)
		snprintf(text, sizeof(text), "%s/%d:%u", ip, c->prefix, c->port);
	else
		snprintf(text, sizeof(text), "%s/%d", ip, c->prefix);
	CHECK(sfy_cidr_parse(text, &again, allow_port) == 0);
	CHECK(memcmp(&again, c, sizeof(again)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfy_cidr c;
	struct sockaddr_storage ss;
	char text[300];

	if (size < 19 || size - 19 >= sizeof(text))
		return 0;
	int allow_port = data[0] & 1, form = (data[0] >> 1) & 3;
	const uint8_t *addr = data + 1;
	uint16_t port = (uint16_t)(data[17] << 8 | data[18]);
	memcpy(text, data + 19, size - 19);
	text[size - 19] = '\0';

	int r = sfy_cidr_parse(text, &c, allow_port);
	CHECK(r == 0 || r == -1);
	if (r < 0)
		return 0;
	CHECK(c.family == AF_INET || c.family == AF_INET6);
	CHECK(c.prefix >= 0 && c.prefix <= (c.family == AF_INET ? 32 : 128));
	CHECK(allow_port || c.port == 0);
	roundtrip(&c, allow_port);

	int family = form == 1 ? AF_INET6 : AF_INET, mapped = form == 2;
	make_sa(&ss, family, addr, port, mapped);
	CHECK(sfy_cidr_match(&c, (struct sockaddr *)&ss) == reference_match(&c, family, addr, port, mapped));
	/* The block's own address (at its port, or any port) is inside it. */
	make_sa(&ss, c.family, c.addr, c.port ? c.port : port, 0);
	CHECK(sfy_cidr_match(&c, (struct sockaddr *)&ss) == 1);
	return 0;
}
