/* resolve NAME [SERVICE] [--family 4|6|any] [--flags numerichost,passive,canonname]
 *
 * Prints what the resolver entry points socksify hooks return:
 *   one line per getaddrinfo result: "FAMILY SOCKTYPE PROTOCOL ADDR PORT CANON"
 *   "name=HOST" from getnameinfo of the first address (reverse of a fake
 *   address must give the name back),
 *   "hba=HOST" from gethostbyaddr of the first address, and
 *   "hbn=NAME ADDR..." from gethostbyname(NAME).
 * A getaddrinfo failure prints "error: EAI_xxx" and exits 1; the others
 * print "name_error=EAI_xxx", "hba_error=N" or "hbn_error=N" (h_errno). */
#include "testutil.h"

static void usage(void)
{
	fprintf(stderr, "usage: resolve NAME [SERVICE] [--family 4|6|any] "
		"[--flags numerichost,passive,canonname]\n");
	exit(2);
}

/* Comma-separated flag names -> AI_* bits. */
static int parse_flags(const char *list)
{
	char buf[256], *save = NULL, *tok;
	int flags = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "numerichost") == 0)
			flags |= AI_NUMERICHOST;
		else if (strcmp(tok, "passive") == 0)
			flags |= AI_PASSIVE;
		else if (strcmp(tok, "canonname") == 0)
			flags |= AI_CANONNAME;
		else if (strcmp(tok, "addrconfig") == 0)
			flags |= AI_ADDRCONFIG;
		else if (strcmp(tok, "v4mapped") == 0)
			flags |= AI_V4MAPPED;
		else
			usage();
	}
	return flags;
}

static const char *family_name(int f)
{
	return f == AF_INET ? "inet" : f == AF_INET6 ? "inet6" : "other";
}

static const char *socktype_name(int t)
{
	switch (t) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_RAW: return "raw";
	default: return "other";
	}
}

static void print_result(const struct addrinfo *ai)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ai->ai_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ai->ai_addr;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (ai->ai_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ai->ai_addr;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	printf("%s %s %d %s %u %s\n", family_name(ai->ai_family),
	       socktype_name(ai->ai_socktype), ai->ai_protocol, host, port,
	       ai->ai_canonname ? ai->ai_canonname : "-");
}

static void print_nameinfo(const struct addrinfo *ai)
{
	char host[NI_MAXHOST];
	int rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host),
			     NULL, 0, 0);

	if (rc == 0)
		printf("name=%s\n", host);
	else
		printf("name_error=%s\n", tu_eainame(rc));
}

static void print_gethostbyaddr(const struct addrinfo *ai)
{
	const void *addr;
	socklen_t len;
	struct hostent *he;

	if (ai->ai_family == AF_INET) {
		addr = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
		len = sizeof(struct in_addr);
	} else {
		addr = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
		len = sizeof(struct in6_addr);
	}
	he = gethostbyaddr(addr, len, ai->ai_family);
	if (he)
		printf("hba=%s\n", he->h_name);
	else
		printf("hba_error=%d\n", h_errno);
}

static void print_gethostbyname(const char *name)
{
	struct hostent *he = gethostbyname(name);
	char addr[INET6_ADDRSTRLEN];

	if (!he) {
		printf("hbn_error=%d\n", h_errno);
		return;
	}
	printf("hbn=%s", he->h_name);
	for (char **p = he->h_addr_list; *p; p++) {
		inet_ntop(he->h_addrtype, *p, addr, sizeof(addr));
		printf(" %s", addr);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	const char *pos[2] = { NULL, NULL };
	int npos = 0, rc;

	hints.ai_family = AF_UNSPEC;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--family") == 0 && i + 1 < argc)
			hints.ai_family = tu_parse_family(argv[++i]);
		else if (strcmp(argv[i], "--flags") == 0 && i + 1 < argc)
			hints.ai_flags = parse_flags(argv[++i]);
		else if (strncmp(argv[i], "--", 2) != 0 && npos < 2)
			pos[npos++] = argv[i];
		else
			usage();
	}
	if (npos < 1 || hints.ai_family < 0)
		usage();
	rc = getaddrinfo(pos[0], pos[1], &hints, &res);
	if (rc != 0) {
		printf("error: %s (%s)\n", tu_eainame(rc), gai_strerror(rc));
		return 1;
	}
	for (ai = res; ai; ai = ai->ai_next)
		print_result(ai);
	print_nameinfo(res);
	print_gethostbyaddr(res);
	freeaddrinfo(res);
	print_gethostbyname(pos[0]);
	return 0;
}
