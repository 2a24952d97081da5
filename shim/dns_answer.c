/* socksify's own answer to a DNS query under remote DNS (declared in
 * shim/sfy_resolve.h): the res_* hooks and the port-53 answering both use
 * it, so a program sees the same answers whichever way it asks.
 *
 *   A, AAAA   the /etc/hosts (or localhost) addresses of the name when it
 *             has any (NODATA when it has none of that family), else its
 *             fake address;
 *   PTR       for NAME.in-addr.arpa / ip6.arpa: the name of a fake or an
 *             /etc/hosts address, else NXDOMAIN (asking DNS would tell the
 *             resolver which address the program talks to);
 *   others    NODATA (HTTPS, SVCB, MX, TXT, SRV, ANY, PTR outside .arpa...):
 *             the record "does not exist", and programs fall back as they
 *             do then;
 *   class     anything but IN: REFUSED;
 *   errors    another opcode: NOTIMP; a question we cannot read: FORMERR;
 *             not even a header, or a response: dropped.
 *
 * Names: a name is at most 255 octets on the wire (253 characters dotted),
 * so every name that parses fits a SOCKS request (255); longer ones are
 * FORMERR at parse time.  The root ("") has no address: NODATA. */
#include "shim.h"

#include <string.h>
#include <strings.h>

#include "sfy_dns.h"
#include "sfy_hosts.h"
#include "sfy_log.h"
#include "sfy_resolve.h"

/* TTL of every answer.  A fake address means something only while the
 * name holds its slot in the pool (LRU), and asking again costs
 * microseconds and refreshes the slot, so programs that cache answers
 * (browsers, nscd-like caches) should ask again soon rather than keep an
 * address that may have been given to another name.  Not 0: some caches
 * treat 0 as "do not use at all" and then retry in a loop. */
#define SFY_DNS_TTL 5

static int addr_rrs(const char *name, int qtype, struct sfy_dns_rr *rrs, int *rcode)
{
	int family = qtype == SFY_DNS_T_A ? AF_INET : AF_INET6;
	struct sfy_host_addr local[SFY_HOSTS_MAX_ADDRS];
	int n = 0, nl;
	*rcode = SFY_DNS_R_NOERROR;
	if (name[0] == '\0')
		return 0; /* the root has no address */
	/* A local name with no address of this family has none (NODATA), it
	 * gets no fake one; localhost always has its loopback address (asked
	 * for by family, sfy_local_addrs adds it).  One read of the hosts
	 * table for every other name. */
	nl = sfy_local_addrs(name, AF_UNSPEC, local, SFY_HOSTS_MAX_ADDRS);
	if (nl > 0 && strcasecmp(name, "localhost") == 0)
		nl = sfy_local_addrs(name, family, local, SFY_HOSTS_MAX_ADDRS);
	if (nl == 0) {
		if (sfy_fake_addr(name, family, &local[0]) < 0) {
			*rcode = SFY_DNS_R_SERVFAIL; /* no pool: fail closed */
			return 0;
		}
		nl = 1;
	}
	for (int i = 0; i < nl && n < SFY_DNS_MAX_RRS; i++) {
		if (local[i].family != family)
			continue;
		memset(&rrs[n], 0, sizeof rrs[n]);
		rrs[n].type = (uint16_t)qtype;
		if (family == AF_INET)
			memcpy(rrs[n].addr, &local[i].u.v4, 4);
		else
			memcpy(rrs[n].addr, &local[i].u.v6, 16);
		n++;
	}
	return n;
}

static int ptr_rrs(const char *name, struct sfy_dns_rr *rrs, int *rcode)
{
	struct sockaddr_storage ss;
	*rcode = SFY_DNS_R_NOERROR;
	if (!sfy_dns_ptr_addr(name, &ss)) {
		size_t n = strlen(name);
		/* Under .arpa but no whole address (a zone, a typo): no name. */
		if ((n >= 4 && strcasecmp(name + n - 4, "arpa") == 0))
			*rcode = SFY_DNS_R_NXDOMAIN;
		return 0;
	}
	memset(&rrs[0], 0, sizeof rrs[0]);
	if (!sfy_reverse_name((const struct sockaddr *)&ss, rrs[0].name, sizeof rrs[0].name)) {
		*rcode = SFY_DNS_R_NXDOMAIN;
		return 0;
	}
	rrs[0].type = SFY_DNS_T_PTR;
	return 1;
}

ssize_t sfy_dns_respond(const uint8_t *query, size_t len, uint8_t *out, size_t cap)
{
	struct sfy_dns_question q;
	struct sfy_dns_rr rrs[SFY_DNS_MAX_RRS];
	int n = 0, rcode = SFY_DNS_R_NOERROR;
	if (!sfy_cfg.remote_dns)
		return -1;
	if (sfy_dns_parse_query(query, len, &q) < 0) {
		rcode = sfy_dns_error_rcode(query, len);
		if (rcode < 0)
			return 0;
		q.end = 0;
		ssize_t r = sfy_dns_build_reply(query, &q, rcode, NULL, 0, 0, out, cap);
		return r < 0 ? 0 : r;
	}
	if (sfy_name_goes_direct(q.name))
		return -1;
	if (q.qclass != SFY_DNS_C_IN)
		rcode = SFY_DNS_R_REFUSED;
	else if (q.qtype == SFY_DNS_T_A || q.qtype == SFY_DNS_T_AAAA)
		n = addr_rrs(q.name, q.qtype, rrs, &rcode);
	else if (q.qtype == SFY_DNS_T_PTR)
		n = ptr_rrs(q.name, rrs, &rcode);
	sfy_log(SFY_LOG_DEBUG, "dns %s type %u: rcode %d, %d answer(s), no query sent", q.name, q.qtype, rcode, n);
	ssize_t r = sfy_dns_build_reply(query, &q, rcode, rrs, n, SFY_DNS_TTL, out, cap);
	if (r < 0) {
		/* No room for the answers: the header and question with TC set,
		 * as a server says "ask again with a larger buffer". */
		r = sfy_dns_build_reply(query, &q, rcode, NULL, 0, SFY_DNS_TTL, out, cap);
		if (r < 0)
			return 0;
		out[2] |= 0x02;
	}
	return r;
}
