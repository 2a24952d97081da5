/* DNS codec: pure functions over byte buffers (see include/sfy_dns.h).
 * Every read is checked against the message length, every write against
 * the capacity; names are at most 255 octets on the wire (RFC 1035 3.1). */
#include "sfy_dns.h"

#include <netinet/in.h>
#include <string.h>

#define WIRE_NAME_MAX 255 /* octets on the wire, length bytes and root included */
#define LABEL_MAX 63
#define PTR_HOPS_MAX 16
#define F_QR 0x8000
#define F_RD 0x0100
#define F_RA 0x0080

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Bytes a label may hold in our dotted text: printable ASCII without '.'
 * (the separator) and '\' (the escape of the presentation format, which we
 * neither write nor read), so that text and wire form map one to one. */
static int label_byte_ok(uint8_t c)
{
	return c > 0x20 && c < 0x7f && c != '.' && c != '\\';
}

/* The name at *off in msg as dotted text.  Compression pointers are
 * followed only backwards, strictly before every byte of the name read so
 * far (so no loop can form), and at most PTR_HOPS_MAX times.  *off moves past the name
 * as it stands in the message.  0, or -1 for anything malformed. */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out)
{
	size_t pos = *off, text = 0, wire = 1, end = 0, low = *off;
	int hops = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t l = msg[pos];
		if ((l & 0xC0) == 0xC0) {
			if (pos + 1 >= len || ++hops > PTR_HOPS_MAX)
				return -1;
			size_t to = (size_t)(l & 0x3F) << 8 | msg[pos + 1];
			if (to >= low || to < SFY_DNS_HEADER)
				return -1; /* not before all read so far, or the header */
			if (!end)
				end = pos + 2;
			pos = low = to;
			continue;
		}
		if (l & 0xC0)
			return -1; /* 0x40/0x80: extended label types, obsolete */
		if (l == 0)
			break;
		wire += 1u + l;
		if (wire > WIRE_NAME_MAX || pos + 1 + l > len)
			return -1;
		if (text)
			out[text++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[pos + 1 + i];
			if (!label_byte_ok(c))
				return -1;
			out[text++] = (char)c;
		}
		pos += 1u + l;
	}
	out[text] = '\0';
	*off = end ? end : pos + 1;
	return 0;
}

/* Dotted name (one trailing dot allowed; "" and "." are the root) in wire
 * form at out.  Length, or -1 (bad name, no room). */
static ssize_t write_name(const char *name, uint8_t *out, size_t cap)
{
	size_t n = strlen(name), o = 0;
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n > SFY_DNS_NAME_MAX)
		return -1;
	size_t i = 0;
	while (i < n) {
		size_t l = 0;
		while (i + l < n && name[i + l] != '.')
			l++;
		if (l == 0 || l > LABEL_MAX || o + 1 + l + 1 > cap || o + 1 + l + 1 > WIRE_NAME_MAX)
			return -1;
		out[o++] = (uint8_t)l;
		for (size_t k = 0; k < l; k++) {
			if (!label_byte_ok((uint8_t)name[i + k]))
				return -1;
			out[o++] = (uint8_t)name[i + k];
		}
		i += l;
		if (i < n)
			i++; /* the dot; a dot at the very end was dropped above */
	}
	if (o + 1 > cap)
		return -1;
	out[o++] = 0;
	return (ssize_t)o;
}

int sfy_dns_parse_query(const uint8_t *msg, size_t len, struct sfy_dns_question *q)
{
	memset(q, 0, sizeof *q);
	if (!msg || len < SFY_DNS_HEADER)
		return -1;
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	if ((q->flags & F_QR) || ((q->flags >> 11) & 0xF) != 0 || get16(msg + 4) != 1)
		return -1;
	size_t off = SFY_DNS_HEADER;
	if (read_name(msg, len, &off, q->name) < 0 || off + 4 > len) {
		q->name[0] = '\0';
		return -1;
	}
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	q->end = off + 4;
	return 0;
}

int sfy_dns_error_rcode(const uint8_t *msg, size_t len)
{
	if (!msg || len < SFY_DNS_HEADER || (msg[2] & 0x80))
		return -1; /* too short to answer, or itself an answer: never reply */
	return ((msg[2] >> 3) & 0xF) != 0 ? SFY_DNS_R_NOTIMP : SFY_DNS_R_FORMERR;
}

/* One answer record owned by the question name (a pointer to offset 12). */
static ssize_t write_rr(const struct sfy_dns_rr *rr, uint32_t ttl, uint8_t *out, size_t cap)
{
	size_t rdlen = rr->type == SFY_DNS_T_A ? 4 : 16;
	if (cap < 12)
		return -1;
	put16(out, 0xC000 | SFY_DNS_HEADER);
	put16(out + 2, rr->type);
	put16(out + 4, SFY_DNS_C_IN);
	put16(out + 6, ttl >> 16);
	put16(out + 8, ttl & 0xFFFF);
	if (rr->type == SFY_DNS_T_PTR) {
		ssize_t n = write_name(rr->name, out + 12, cap - 12);
		if (n < 0)
			return -1;
		rdlen = (size_t)n;
	} else if (rr->type == SFY_DNS_T_A || rr->type == SFY_DNS_T_AAAA) {
		if (cap < 12 + rdlen)
			return -1;
		memcpy(out + 12, rr->addr, rdlen);
	} else {
		return -1;
	}
	put16(out + 10, (unsigned)rdlen);
	return (ssize_t)(12 + rdlen);
}

ssize_t sfy_dns_build_reply(const uint8_t *msg, const struct sfy_dns_question *q, int rcode,
			    const struct sfy_dns_rr *rrs, int n, uint32_t ttl, uint8_t *out, size_t cap)
{
	(void)msg; /* the question is written anew from q: see the header */
	int with_question = q->end > 0;
	if (n < 0 || n > SFY_DNS_MAX_RRS || (n > 0 && !with_question) || cap < SFY_DNS_HEADER)
		return -1;
	unsigned flags = F_QR | (q->flags & 0x7800) /* opcode */ | (q->flags & F_RD) | F_RA | (rcode & 0xF);
	put16(out, q->id);
	put16(out + 2, flags);
	put16(out + 4, with_question ? 1 : 0);
	put16(out + 6, (unsigned)n);
	put16(out + 8, 0);
	put16(out + 10, 0);
	size_t o = SFY_DNS_HEADER;
	if (with_question) {
		ssize_t w = write_name(q->name, out + o, cap - o);
		if (w < 0 || o + (size_t)w + 4 > cap)
			return -1;
		o += (size_t)w;
		put16(out + o, q->qtype);
		put16(out + o + 2, q->qclass);
		o += 4;
	}
	for (int i = 0; i < n; i++) {
		ssize_t w = write_rr(&rrs[i], ttl, out + o, cap - o);
		if (w < 0)
			return -1;
		o += (size_t)w;
	}
	return (ssize_t)o;
}

ssize_t sfy_dns_build_query(uint16_t id, const char *name, int qclass, int qtype, uint8_t *out, size_t cap)
{
	if (!name || cap < SFY_DNS_HEADER || qclass < 0 || qclass > 0xFFFF || qtype < 0 || qtype > 0xFFFF)
		return -1;
	memset(out, 0, SFY_DNS_HEADER);
	put16(out, id);
	put16(out + 2, F_RD);
	put16(out + 4, 1);
	ssize_t w = write_name(name, out + SFY_DNS_HEADER, cap - SFY_DNS_HEADER);
	size_t o = SFY_DNS_HEADER + (size_t)w;
	if (w < 0 || o + 4 > cap)
		return -1;
	put16(out + o, (unsigned)qtype);
	put16(out + o + 2, (unsigned)qclass);
	return (ssize_t)(o + 4);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* name ends in suffix (ASCII case-insensitive), optionally plus one dot;
 * returns the length of the part before it, or -1. */
static long strip_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n < s)
		return -1;
	for (size_t i = 0; i < s; i++) {
		char c = name[n - s + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != suffix[i])
			return -1;
	}
	return (long)(n - s);
}

/* "d.c.b.a." (each 1-3 digits, at most 255, no leading zero) of exactly
 * len bytes into a.b.c.d. */
static int ptr_v4(const char *p, size_t len, uint8_t *addr)
{
	size_t i = 0;
	for (int k = 3; k >= 0; k--) {
		unsigned v = 0, digits = 0;
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(p[i++] - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && p[i - digits] == '0'))
			return 0;
		if (i >= len || p[i++] != '.')
			return 0;
		addr[k] = (uint8_t)v;
	}
	return i == len;
}

int sfy_dns_ptr_addr(const char *name, struct sockaddr_storage *out)
{
	long n;
	memset(out, 0, sizeof *out);
	if (!name)
		return 0;
	if ((n = strip_suffix(name, "in-addr.arpa")) >= 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		if (!ptr_v4(name, (size_t)n, (uint8_t *)&sin->sin_addr))
			return 0;
		sin->sin_family = AF_INET;
		return 1;
	}
	if ((n = strip_suffix(name, "ip6.arpa")) == 64) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		uint8_t *a = sin6->sin6_addr.s6_addr;
		for (int i = 0; i < 32; i++) {
			int v = hexval(name[2 * i]);
			if (v < 0 || name[2 * i + 1] != '.')
				return 0;
			/* nibble i (least significant first) of the address */
			a[15 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
		}
		sin6->sin6_family = AF_INET6;
		return 1;
	}
	memset(out, 0, sizeof *out);
	return 0;
}
