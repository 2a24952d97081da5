/* SOCKS5 wire codec (RFC 1928, RFC 1929): bytes in, bytes out, no sockets.
 * Every encoder writes into a caller buffer and returns the length written,
 * or a negative S5_E* code.  Every decoder returns the number of bytes the
 * message occupies, 0 when more bytes are needed, or a negative S5_E* code. */
#ifndef SOCKS5_CODEC_H
#define SOCKS5_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define S5_VERSION 0x05
#define S5_AUTH_VERSION 0x01

#define S5_METHOD_NONE 0x00
#define S5_METHOD_GSSAPI 0x01
#define S5_METHOD_USERPASS 0x02
#define S5_METHOD_UNACCEPTABLE 0xFF

#define S5_CMD_CONNECT 0x01
#define S5_CMD_BIND 0x02
#define S5_CMD_UDP_ASSOCIATE 0x03

#define S5_ATYP_IPV4 0x01
#define S5_ATYP_DOMAIN 0x03
#define S5_ATYP_IPV6 0x04

#define S5_REP_SUCCEEDED 0x00

/* Largest message of each kind; buffers of these sizes never overflow. */
#define S5_GREETING_MAX 5         /* VER NMETHODS + three methods */
#define S5_AUTH_REQUEST_MAX 513   /* VER ULEN 255 PLEN 255 */
#define S5_REQUEST_MAX 262        /* VER CMD RSV ATYP LEN 255 PORT */
#define S5_REPLY_MAX 262
#define S5_NAME_MAX 255

enum s5_error {
	S5_EINVAL = -1,   /* caller passed something unencodable */
	S5_EVERSION = -2, /* wrong VER byte */
	S5_EATYP = -3,    /* unknown address type */
	S5_ERSV = -4,     /* reserved byte not zero */
	S5_ENAME = -5,    /* zero-length domain name */
	S5_ESPACE = -6,   /* output buffer too small */
};

/* A SOCKS address: either a binary IPv4/IPv6 address or a domain name. */
struct s5_addr {
	uint8_t atyp;
	uint16_t port; /* host byte order */
	union {
		uint8_t ipv4[4];
		uint8_t ipv6[16];
		struct {
			uint8_t len;
			char name[S5_NAME_MAX + 1]; /* NUL-terminated copy */
		} domain;
	} u;
};

struct s5_reply {
	uint8_t rep;
	struct s5_addr bnd;
};

/* Greeting offering "no auth", plus username/password when with_userpass. */
int s5_encode_greeting(uint8_t *out, size_t cap, int with_userpass);
/* A greeting offering method alone (for a pipelined exchange, where the
 * bytes after it must mean what that method expects). */
int s5_encode_greeting_for(uint8_t *out, size_t cap, uint8_t method);
/* Method selection reply: sets *method. Always 2 bytes when complete. */
int s5_decode_method(const uint8_t *in, size_t len, uint8_t *method);

int s5_encode_auth(uint8_t *out, size_t cap, const char *user, const char *pass);
/* Auth reply: sets *status (0 = success). */
int s5_decode_auth(const uint8_t *in, size_t len, uint8_t *status);

int s5_encode_request(uint8_t *out, size_t cap, uint8_t cmd, const struct s5_addr *dst);
int s5_decode_reply(const uint8_t *in, size_t len, struct s5_reply *reply);
/* Bytes a reply occupies, from its first len bytes: 0 while unknown, -1
 * when malformed (bad VER, RSV or ATYP; a name under 3 bytes, which would
 * make a reply shorter than the usual 10 bytes that a client reads first,
 * and which no real proxy sends). */
int s5_reply_size(const uint8_t *in, size_t len);

/* Request decoder, used by tools and tests that play the server side. */
int s5_decode_request(const uint8_t *in, size_t len, uint8_t *cmd, struct s5_addr *dst);

/* The header of a UDP datagram to or from a relay (RFC 1928 section 7):
 * RSV RSV FRAG ATYP ADDR PORT.  Encode returns its length (at most
 * S5_UDP_HEADER_MAX); decode the bytes the header occupies, 0 when the
 * datagram is shorter than its header, or an S5_E* code. */
#define S5_UDP_HEADER_MAX 262
int s5_encode_udp_header(uint8_t *out, size_t cap, const struct s5_addr *dst);
int s5_decode_udp_header(const uint8_t *in, size_t len, uint8_t *frag, struct s5_addr *src);

/* Fill an s5_addr from a domain name (1..255 bytes); returns 0 or S5_EINVAL. */
int s5_addr_from_name(struct s5_addr *a, const char *name, uint16_t port);
/* Fill an s5_addr (ATYP 1 or 4) from an AF_INET or AF_INET6 address; a
 * v4-mapped one stays IPv6 (unmap it first to send ATYP 1). */
void s5_addr_from_sockaddr(struct s5_addr *a, const struct sockaddr *sa, uint16_t port);

/* "name:port", "a.b.c.d:port" or "[v6]:port", for messages. */
void s5_addr_text(const struct s5_addr *a, char *out, size_t cap);

/* Human-readable text for a REP code ("connection refused", "unassigned"). */
const char *s5_rep_text(uint8_t rep);
/* errno for a failed REP code (see README, "Errors"). */
int s5_rep_errno(uint8_t rep);

/* RFC 1961 framing: VER (1) MTYP LEN (2 bytes, network order) TOKEN, or
 * VER X'FF' alone, the server's abort (shim/codec_gss.c). */
#define S5_GSS_VERSION 0x01
#define S5_GSS_HEADER 4
#define S5_GSS_TOKEN_MAX 65535
#define S5_GSS_FRAME_MAX (S5_GSS_HEADER + S5_GSS_TOKEN_MAX)
enum { S5_GSS_CONTEXT = 0x01, S5_GSS_PROTECTION = 0x02, S5_GSS_DATA = 0x03, S5_GSS_ABORT = 0xFF };
/* Size of the frame that starts with buf's len bytes: 0 while unknown, 2
 * for an abort, S5_GSS_HEADER + LEN, or S5_EVERSION (VER not 1) or
 * S5_EINVAL (an unknown MTYP, or LEN 0: an empty token means nothing in
 * RFC 1961). */
int s5_gss_frame_size(const uint8_t *buf, size_t len);
/* Header for a token of len bytes into out[S5_GSS_HEADER]: S5_GSS_HEADER
 * or S5_EINVAL (len 0 or over S5_GSS_TOKEN_MAX). */
int s5_gss_header(uint8_t *out, uint8_t mtyp, size_t len);

#endif
