/* Unit tests for the DNS codec (shim/dns.c, include/sfy_dns.h): round trips
 * of queries and replies, PTR names, and malformed messages. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "sfy_dns.h"

static size_t hexmsg(const char *hex, uint8_t *out)
{
	size_t n = 0;
	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;
		sscanf(hex, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void test_query_round_trip(void **state)
{
	(void)state;
	uint8_t msg[512];
	struct sfy_dns_question q;
	ssize_t n = sfy_dns_build_query(0x1234, "Files.Test.", SFY_DNS_C_IN, SFY_DNS_T_AAAA, msg, sizeof msg);
	assert_int_equal(n, 12 + 12 + 4);
	assert_int_equal(g16(msg + 2), 0x0100); /* RD */
	assert_int_equal(sfy_dns_parse_query(msg, (size_t)n, &q), 0);
	assert_int_equal(q.id, 0x1234);
	assert_string_equal(q.name, "Files.Test");
	assert_int_equal(q.qtype, SFY_DNS_T_AAAA);
	assert_int_equal(q.qclass, SFY_DNS_C_IN);
	assert_int_equal(q.end, (size_t)n);
	/* the root */
	n = sfy_dns_build_query(1, ".", SFY_DNS_C_IN, 2, msg, sizeof msg);
	assert_int_equal(n, 12 + 1 + 4);
	assert_int_equal(sfy_dns_parse_query(msg, (size_t)n, &q), 0);
	assert_string_equal(q.name, "");
	assert_int_equal(sfy_dns_build_query(1, "", SFY_DNS_C_IN, 2, msg, sizeof msg), 17);
}

static void test_build_query_bad(void **state)
{
	(void)state;
	uint8_t msg[600];
	char name[300];
	assert_int_equal(sfy_dns_build_query(1, "a..b", 1, 1, msg, sizeof msg), -1);
	assert_int_equal(sfy_dns_build_query(1, ".a", 1, 1, msg, sizeof msg), -1);
	assert_int_equal(sfy_dns_build_query(1, "a b", 1, 1, msg, sizeof msg), -1);
	assert_int_equal(sfy_dns_build_query(1, "a\\.b", 1, 1, msg, sizeof msg), -1);
	assert_int_equal(sfy_dns_build_query(1, NULL, 1, 1, msg, sizeof msg), -1);
	assert_int_equal(sfy_dns_build_query(1, "a", 1, 70000, msg, sizeof msg), -1);
	memset(name, 'x', 64);
	name[64] = '\0';
	assert_int_equal(sfy_dns_build_query(1, name, 1, 1, msg, sizeof msg), -1); /* label 64 */
	name[63] = '\0';
	assert_int_equal(sfy_dns_build_query(1, name, 1, 1, msg, sizeof msg), 12 + 65 + 4);
	/* 253 characters dotted is the longest name (255 octets on the wire) */
	memset(name, 'a', 253);
	for (int i = 1; i < 253; i += 2)
		name[i] = '.';
	name[253] = '\0';
	assert_true(sfy_dns_build_query(1, name, 1, 1, msg, sizeof msg) > 0);
	name[253] = '.';
	name[254] = '\0';
	assert_true(sfy_dns_build_query(1, name, 1, 1, msg, sizeof msg) > 0);
	name[253] = 'b';
	name[254] = 'b';
	name[255] = '\0';
	assert_int_equal(sfy_dns_build_query(1, name, 1, 1, msg, sizeof msg), -1);
	/* capacity */
	assert_int_equal(sfy_dns_build_query(1, "a.b", 1, 1, msg, 11), -1);
	assert_int_equal(sfy_dns_build_query(1, "a.b", 1, 1, msg, 12 + 5 + 3), -1);
	assert_int_equal(sfy_dns_build_query(1, "a.b", 1, 1, msg, 12 + 5 + 4), 21);
}

static void test_reply_round_trip(void **state)
{
	(void)state;
	uint8_t msg[512], out[1024];
	struct sfy_dns_question q;
	ssize_t n = sfy_dns_build_query(0xBEEF, "web.test", SFY_DNS_C_IN, SFY_DNS_T_A, msg, sizeof msg);
	assert_int_equal(sfy_dns_parse_query(msg, (size_t)n, &q), 0);
	struct sfy_dns_rr rr[2] = {{.type = SFY_DNS_T_A, .addr = {240, 0, 0, 2}},
				   {.type = SFY_DNS_T_A, .addr = {10, 0, 0, 1}}};
	ssize_t r = sfy_dns_build_reply(msg, &q, SFY_DNS_R_NOERROR, rr, 2, 5, out, sizeof out);
	assert_int_equal(r, n + 2 * 16);
	assert_int_equal(g16(out), 0xBEEF);
	assert_int_equal(g16(out + 2), 0x8180); /* QR RD RA, NOERROR */
	assert_int_equal(g16(out + 4), 1);
	assert_int_equal(g16(out + 6), 2);
	assert_memory_equal(out + 12, msg + 12, (size_t)n - 12); /* question */
	const uint8_t *a = out + n;
	assert_int_equal(g16(a), 0xC00C);
	assert_int_equal(g16(a + 2), SFY_DNS_T_A);
	assert_int_equal(g16(a + 4), 1);
	assert_int_equal(g16(a + 6) << 16 | g16(a + 8), 5);
	assert_int_equal(g16(a + 10), 4);
	assert_memory_equal(a + 12, rr[0].addr, 4);
	/* AAAA and PTR */
	struct sfy_dns_rr r6 = {.type = SFY_DNS_T_AAAA, .addr = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};
	r = sfy_dns_build_reply(msg, &q, 0, &r6, 1, 5, out, sizeof out);
	assert_int_equal(r, n + 28);
	assert_int_equal(g16(out + n + 10), 16);
	struct sfy_dns_rr rp = {.type = SFY_DNS_T_PTR};
	strcpy(rp.name, "files.test");
	r = sfy_dns_build_reply(msg, &q, 0, &rp, 1, 5, out, sizeof out);
	assert_int_equal(r, n + 12 + 12);
	assert_memory_equal(out + n + 12, "\5files\4test\0", 12);
	/* no room: -1, never a partial reply */
	assert_int_equal(sfy_dns_build_reply(msg, &q, 0, rr, 2, 5, out, (size_t)n + 20), -1);
	assert_int_equal(sfy_dns_build_reply(msg, &q, 0, rr, 17, 5, out, sizeof out), -1);
	/* header only (error replies): opcode and RD kept, no question */
	q.end = 0;
	q.flags = 0x2000; /* opcode 4 (NOTIFY), RD clear */
	r = sfy_dns_build_reply(msg, &q, SFY_DNS_R_NOTIMP, NULL, 0, 0, out, sizeof out);
	assert_int_equal(r, 12);
	assert_int_equal(g16(out + 2), 0x8000 | 0x2000 | 0x80 | 4);
	assert_int_equal(g16(out + 4), 0);
}

static void test_parse_compressed_question(void **state)
{
	(void)state;
	uint8_t m[64];
	struct sfy_dns_question q;
	/* a question at 12 can only point into itself: "x" then a pointer
	 * back to its own start is a loop; self, forward, header: refused */
	size_t n;
	n = hexmsg("000101000001000000000000" "c00c" "00010001", m); /* self */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "c00e" "00010001", m); /* forward */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "c002" "00010001", m); /* into the header */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "0178c00c" "00010001", m); /* "x" then loop back to x */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "01780179c00c", m); /* pointer loop without end */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "4078" "00010001", m); /* 0x40 label type */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	n = hexmsg("000101000001000000000000" "c0", m); /* half a pointer */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	uint8_t m[600];
	struct sfy_dns_question q;
	size_t n = hexmsg("000101000001000000000000" "0178" "00" "00010001", m);
	assert_int_equal(sfy_dns_parse_query(m, n, &q), 0);
	assert_string_equal(q.name, "x");
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(sfy_dns_parse_query(m, cut, &q), -1); /* truncated */
	assert_int_equal(sfy_dns_parse_query(NULL, 0, &q), -1);
	/* QDCOUNT 0 and 2 */
	m[5] = 0;
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	assert_int_equal(q.id, 1);
	assert_int_equal(sfy_dns_error_rcode(m, n), SFY_DNS_R_FORMERR);
	m[5] = 2;
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	m[5] = 1;
	/* a response (QR) and another opcode */
	m[2] = 0x81;
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	assert_int_equal(sfy_dns_error_rcode(m, n), -1);
	m[2] = 0x11; /* opcode 2 (STATUS) */
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	assert_int_equal(sfy_dns_error_rcode(m, n), SFY_DNS_R_NOTIMP);
	assert_int_equal(sfy_dns_error_rcode(m, 11), -1);
	m[2] = 0x01;
	/* bytes a label may not hold */
	m[13] = '.';
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	m[13] = ' ';
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	m[13] = 0;
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	m[13] = 0xC3;
	assert_int_equal(sfy_dns_parse_query(m, n, &q), -1);
	/* label 64 */
	memset(m + 12, 'a', 70);
	m[12] = 64;
	m[12 + 65] = 0;
	assert_int_equal(sfy_dns_parse_query(m, 12 + 66 + 4, &q), -1);
	/* name of 256 octets on the wire: four 63-byte labels (256) */
	size_t o = 12;
	for (int i = 0; i < 4; i++) {
		m[o++] = 63;
		memset(m + o, 'b', 63);
		o += 63;
	}
	m[o++] = 0;
	memset(m + o, 0, 4);
	assert_int_equal(sfy_dns_parse_query(m, o + 4, &q), -1);
	/* 255 octets: three 63-byte labels and one of 61 */
	m[12 + 3 * 64] = 61;
	m[12 + 3 * 64 + 62] = 0;
	o = 12 + 3 * 64 + 63;
	m[o] = 0, m[o + 1] = 1, m[o + 2] = 0, m[o + 3] = 1;
	assert_int_equal(sfy_dns_parse_query(m, o + 4, &q), 0);
	assert_int_equal(strlen(q.name), 253);
}

static void test_parse_ignores_edns(void **state)
{
	(void)state;
	uint8_t m[128];
	struct sfy_dns_question q;
	/* dig's query: RD AD, one question, one OPT additional record */
	size_t n = hexmsg("abcd01200001000000000001" "0566696c657304746573740000410001"
			  "0000291000000000000000", m);
	assert_int_equal(sfy_dns_parse_query(m, n, &q), 0);
	assert_string_equal(q.name, "files.test");
	assert_int_equal(q.qtype, 65);
	assert_int_equal(q.end, 12 + 16);
}

static void ptr_ok(const char *name, int family, const char *text)
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];
	assert_int_equal(sfy_dns_ptr_addr(name, &ss), 1);
	assert_int_equal(ss.ss_family, family);
	const void *a = family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
					  : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
	inet_ntop(family, a, buf, sizeof buf);
	assert_string_equal(buf, text);
}

static void test_ptr_names(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	ptr_ok("2.0.0.240.in-addr.arpa", AF_INET, "240.0.0.2");
	ptr_ok("1.0.0.127.IN-ADDR.ARPA.", AF_INET, "127.0.0.1");
	ptr_ok("0.0.0.0.in-addr.arpa", AF_INET, "0.0.0.0");
	ptr_ok("255.255.255.255.in-addr.arpa", AF_INET, "255.255.255.255");
	ptr_ok("2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.ip6.arpa", AF_INET6, "100::2");
	ptr_ok("F.E.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.", AF_INET6, "fe80::ef");
	const char *bad[] = {
		"2.0.240.in-addr.arpa", "1.2.0.0.240.in-addr.arpa", "256.0.0.1.in-addr.arpa",
		"01.0.0.1.in-addr.arpa", "1.0.0.1in-addr.arpa", ".1.0.0.1.in-addr.arpa", "a.0.0.1.in-addr.arpa",
		"1..0.1.in-addr.arpa", "1000.0.0.1.in-addr.arpa", "in-addr.arpa", "files.test", "",
		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.ip6.arpa",
		"22.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.ip6.arpa",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.ip6.arpa",
		"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0ip6.arpa",
		NULL,
	};
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(sfy_dns_ptr_addr(bad[i], &ss), 0);
	}
	assert_int_equal(sfy_dns_ptr_addr(NULL, &ss), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_round_trip),
		cmocka_unit_test(test_build_query_bad),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_parse_compressed_question),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_ignores_edns),
		cmocka_unit_test(test_ptr_names),
	};
	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
