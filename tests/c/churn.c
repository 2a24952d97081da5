/* churn COUNT: exercises every resolver hook COUNT times with distinct
 * names, freeing every result, so that LeakSanitizer (with the ASan build
 * of the library preloaded) can prove the hooks leak nothing.  Prints
 * "ok N lookups" or the first failure. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int one_round(int i)
{
	char name[64], host[NI_MAXHOST], serv[NI_MAXSERV], buf[2048];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME}, *res = NULL;
	struct hostent he, *hp = NULL;
	int herr = 0;
	snprintf(name, sizeof name, "churn-%d.test", i);
	if (getaddrinfo(name, "http", &hints, &res) != 0 || !res)
		return printf("getaddrinfo %s failed\n", name), -1;
	if (getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, serv, sizeof serv, 0) != 0 ||
	    strcmp(host, name) != 0)
		return printf("getnameinfo gave '%s' for %s\n", host, name), -1;
	freeaddrinfo(res);
	if (gethostbyname_r(name, &he, buf, sizeof buf, &hp, &herr) != 0 || !hp)
		return printf("gethostbyname_r %s failed\n", name), -1;
	struct hostent he2, *hp2 = NULL;
	char buf2[2048];
	if (gethostbyaddr_r(hp->h_addr_list[0], 4, AF_INET, &he2, buf2, sizeof buf2, &hp2, &herr) != 0 || !hp2 ||
	    strcmp(hp2->h_name, name) != 0)
		return printf("gethostbyaddr_r did not give %s back\n", name), -1;
	if (!gethostbyname2(name, AF_INET6) || !gethostbyname(name))
		return printf("gethostbyname(2) %s failed\n", name), -1;
	return 0;
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 1000;
	for (int i = 0; i < count; i++)
		if (one_round(i) < 0)
			return 1;
	printf("ok %d lookups\n", count);
	return 0;
}
