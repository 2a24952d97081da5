/* libFuzzer target: the DNS codec (shim/dns.c, include/sfy_dns.h).
 *
 * Input: a DNS message as a program would send it to port 53.  It is
 * copied into a heap block of exactly its size, so ASan catches any read
 * outside it.
 *
 * Invariants:
 *   - sfy_dns_parse_query() returns 0 or -1; on 0 the name is at most 253
 *     characters, has no empty label and q.end lies within the message;
 *   - a parsed question survives a round trip: sfy_dns_build_query() of
 *     its name, type and class parses back to the same;
 *   - a reply with one record of each kind is built into a buffer of
 *     exactly its size, and never into one byte less;
 *   - a refused message gets an rcode or "drop", and a header-only reply;
 *   - sfy_dns_ptr_addr() on the name returns 0 or 1 with a family. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfy_dns.h"

#define CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

static void check_reply(const uint8_t *msg, const struct sfy_dns_question *q)
{
	struct sfy_dns_rr rrs[3];
	memset(rrs, 0, sizeof rrs);
	rrs[0].type = SFY_DNS_T_A;
	rrs[1].type = SFY_DNS_T_AAAA;
	rrs[2].type = SFY_DNS_T_PTR;
	memcpy(rrs[2].name, q->name, sizeof rrs[2].name);
	if (q->name[0] == '\0')
		strcpy(rrs[2].name, "x");
	static uint8_t out[2048];
	ssize_t n = sfy_dns_build_reply(msg, q, 0, rrs, 3, 5, out, sizeof out);
	CHECK(n > SFY_DNS_HEADER && (size_t)n <= sizeof out);
	uint8_t *exact = malloc((size_t)n);
	CHECK(exact != NULL);
	CHECK(sfy_dns_build_reply(msg, q, 0, rrs, 3, 5, exact, (size_t)n) == n);
	CHECK(memcmp(exact, out, (size_t)n) == 0);
	CHECK(sfy_dns_build_reply(msg, q, 0, rrs, 3, 5, exact, (size_t)n - 1) == -1);
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	uint8_t *msg = malloc(size ? size : 1);
	CHECK(msg != NULL);
	memcpy(msg, data, size);
	struct sfy_dns_question q;
	int rc = sfy_dns_parse_query(msg, size, &q);
	CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		size_t len = strlen(q.name);
		CHECK(len <= 253 && q.end <= size && q.end >= SFY_DNS_HEADER + 5);
		CHECK(strstr(q.name, "..") == NULL && q.name[0] != '.' && (len == 0 || q.name[len - 1] != '.'));
		uint8_t again[512];
		ssize_t n = sfy_dns_build_query(q.id, q.name, q.qclass, q.qtype, again, sizeof again);
		CHECK(n > 0);
		struct sfy_dns_question q2;
		CHECK(sfy_dns_parse_query(again, (size_t)n, &q2) == 0);
		CHECK(strcmp(q.name, q2.name) == 0 && q.qtype == q2.qtype && q.qclass == q2.qclass);
		check_reply(msg, &q);
		struct sockaddr_storage ss;
		int p = sfy_dns_ptr_addr(q.name, &ss);
		CHECK(p == 0 || (p == 1 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)));
	} else {
		int r = sfy_dns_error_rcode(msg, size);
		CHECK(r == -1 || r == SFY_DNS_R_FORMERR || r == SFY_DNS_R_NOTIMP);
		if (r > 0) {
			uint8_t out[SFY_DNS_HEADER];
			q.end = 0;
			CHECK(sfy_dns_build_reply(msg, &q, r, NULL, 0, 0, out, sizeof out) == SFY_DNS_HEADER);
		}
	}
	free(msg);
	return 0;
}
