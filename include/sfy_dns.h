/* DNS messages (RFC 1035), as socksify answers them under remote DNS: a
 * program's question comes back with fake addresses (A, AAAA), the name of
 * a fake or /etc/hosts address (PTR), or NODATA (every other type), and no
 * query leaves the process.  This codec is pure: no I/O, no pool, no
 * configuration.  Contract as in socks5_codec.h: negative is an error. */
#ifndef SFY_DNS_H
#define SFY_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SFY_DNS_HEADER 12
#define SFY_DNS_NAME_MAX 255 /* dotted text, without the trailing dot */
#define SFY_DNS_MAX_RRS 16   /* answers in one reply */

enum {
	SFY_DNS_T_A = 1,
	SFY_DNS_T_PTR = 12,
	SFY_DNS_T_AAAA = 28,
	SFY_DNS_T_SVCB = 64,
	SFY_DNS_T_HTTPS = 65,
	SFY_DNS_C_IN = 1,
	SFY_DNS_R_NOERROR = 0,
	SFY_DNS_R_FORMERR = 1,
	SFY_DNS_R_SERVFAIL = 2,
	SFY_DNS_R_NXDOMAIN = 3,
	SFY_DNS_R_NOTIMP = 4,
	SFY_DNS_R_REFUSED = 5,
};

/* The one question of a query. */
struct sfy_dns_question {
	uint16_t id;
	uint16_t flags;                    /* the query's flags word, host order */
	char name[SFY_DNS_NAME_MAX + 1];   /* dotted, as sent (case kept), no trailing dot; "" = root */
	uint16_t qtype, qclass;
	size_t end;                        /* offset just past the question in the message */
};

/* One answer record. */
struct sfy_dns_rr {
	uint16_t type;                     /* SFY_DNS_T_A, _AAAA or _PTR */
	uint8_t addr[16];                  /* A: 4 bytes, AAAA: 16 */
	char name[SFY_DNS_NAME_MAX + 1];   /* PTR: the name pointed to */
};

/* Parse a query (QR clear, opcode QUERY, exactly one question; answer,
 * authority and additional records such as EDNS0 OPT are allowed and
 * ignored).  0, or -1 when msg is no such query: -1 with q->id and
 * q->flags filled (len >= 12) means "answer FORMERR/NOTIMP", else drop. */
int sfy_dns_parse_query(const uint8_t *msg, size_t len, struct sfy_dns_question *q);

/* For a message sfy_dns_parse_query() refused: the rcode to answer it with
 * (NOTIMP for another opcode, FORMERR for a bad question), or -1 when it
 * is to be dropped (shorter than a header, or a response: QR set).  Such
 * a reply is built with q->end == 0: a header only, no question. */
int sfy_dns_error_rcode(const uint8_t *msg, size_t len);

/* A reply to q, whose message is msg: rcode, and n answer records owned by
 * q->name.  The question is written anew from q (same bytes as a question
 * without compression; a pointer in the query's question cannot leak
 * into the reply), or left out when q->end is 0.  Answers name it by a
 * pointer to offset 12.  Length of the reply in
 * out, or -1 when cap is too small. */
ssize_t sfy_dns_build_reply(const uint8_t *msg, const struct sfy_dns_question *q, int rcode,
			    const struct sfy_dns_rr *rrs, int n, uint32_t ttl, uint8_t *out, size_t cap);

/* A query for name (dotted, trailing dot allowed) of class and type with
 * RD set, as res_mkquery() builds it.  Length, or -1 (bad name, cap). */
ssize_t sfy_dns_build_query(uint16_t id, const char *name, int qclass, int qtype, uint8_t *out, size_t cap);

/* The address a PTR name stands for: "4.3.2.1.in-addr.arpa" or the 32
 * nibbles of ip6.arpa (case-insensitive).  1 and *out (port 0), or 0. */
int sfy_dns_ptr_addr(const char *name, struct sockaddr_storage *out);

#endif
