/* /etc/hosts reader (see include/sfy_hosts.h). */
#include "sfy_hosts.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOSTS_MAX_BYTES (1 << 20)

/* The file's text, NUL-terminated, in a new buffer; NULL if unreadable. */
static char *read_text(const char *path, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t limit = fstat(fd, st) == 0 && st->st_size < HOSTS_MAX_BYTES ? (size_t)st->st_size : HOSTS_MAX_BYTES;
	char *buf = malloc(limit + 1);
	size_t used = 0;
	ssize_t n;
	while (buf && used < limit && (n = read(fd, buf + used, limit - used)) > 0)
		used += (size_t)n;
	close(fd);
	if (buf) {
		buf[used] = '\0';
		*len = used;
	}
	return buf;
}

/* The system file is kept between look-ups and used again while stat()
 * shows the same file unchanged (device, inode, size, modification and
 * change times): one stat() per look-up instead of open, fstat, read and
 * close.  Other paths (the unit tests' files) are read afresh each time. */
#define CACHE_MAX (64 * 1024)
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *cache_text;
static size_t cache_len;
static struct stat cache_st;

void sfy_hosts_lock(void)
{
	pthread_mutex_lock(&cache_lock);
}

void sfy_hosts_unlock(void)
{
	pthread_mutex_unlock(&cache_lock);
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static char *copy_of(const char *text, size_t len)
{
	char *c = malloc(len + 1);
	if (c)
		memcpy(c, text, len + 1);
	return c;
}

static char *hosts_text(const char *path)
{
	int keep = strcmp(path, SFY_HOSTS_PATH) == 0;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	if (keep && stat(path, &st) == 0) {
		pthread_mutex_lock(&cache_lock);
		if (cache_text && same_file(&st, &cache_st))
			text = copy_of(cache_text, cache_len);
		pthread_mutex_unlock(&cache_lock);
		if (text)
			return text;
	}
	if (!(text = read_text(path, &len, &st)) || !keep || len > CACHE_MAX)
		return text;
	char *kept = copy_of(text, len);
	pthread_mutex_lock(&cache_lock);
	free(cache_text);
	cache_text = kept;
	cache_len = len;
	cache_st = st;
	pthread_mutex_unlock(&cache_lock);
	return text;
}

/* Calls visit(addr, names, ctx) for each line; stops when it returns 1. */
typedef int (*hosts_visit_fn)(const struct sfy_host_addr *addr, char *names, void *ctx);

static void for_each_line(const char *path, hosts_visit_fn visit, void *ctx)
{
	char *buf = hosts_text(path);
	if (!buf)
		return;
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "#")] = '\0';
		char *rest = NULL;
		char *addr_text = strtok_r(line, " \t\r", &rest);
		if (!addr_text)
			continue;
		struct sfy_host_addr a;
		memset(&a, 0, sizeof a);
		if (inet_pton(AF_INET, addr_text, &a.u.v4) == 1)
			a.family = AF_INET;
		else if (inet_pton(AF_INET6, addr_text, &a.u.v6) == 1)
			a.family = AF_INET6;
		else
			continue;
		if (visit(&a, rest, ctx))
			break;
	}
	free(buf);
}

struct lookup_ctx {
	const char *name;
	int family;
	struct sfy_host_addr *out;
	int max, count;
};

static int has_name(char *names, const char *name)
{
	char *save = NULL;
	for (char *n = strtok_r(names, " \t\r", &save); n; n = strtok_r(NULL, " \t\r", &save))
		if (strcasecmp(n, name) == 0)
			return 1;
	return 0;
}

static int lookup_visit(const struct sfy_host_addr *addr, char *names, void *p)
{
	struct lookup_ctx *ctx = p;
	if (ctx->family != AF_UNSPEC && ctx->family != addr->family)
		return 0;
	if (has_name(names, ctx->name))
		ctx->out[ctx->count++] = *addr;
	return ctx->count >= ctx->max;
}

int sfy_hosts_lookup(const char *path, const char *name, int family, struct sfy_host_addr *out, int max)
{
	struct lookup_ctx ctx = {name, family, out, max, 0};
	if (max > 0)
		for_each_line(path, lookup_visit, &ctx);
	return ctx.count;
}

struct reverse_ctx {
	const struct sfy_host_addr *addr;
	char *name;
	size_t cap;
	int found;
};

static int reverse_visit(const struct sfy_host_addr *addr, char *names, void *p)
{
	struct reverse_ctx *ctx = p;
	size_t len = addr->family == AF_INET ? 4 : 16;
	if (addr->family != ctx->addr->family || memcmp(&addr->u, &ctx->addr->u, len) != 0)
		return 0;
	char *save = NULL;
	char *first = strtok_r(names, " \t\r", &save);
	if (!first || strlen(first) >= ctx->cap)
		return 0;
	strcpy(ctx->name, first);
	ctx->found = 1;
	return 1;
}

int sfy_hosts_reverse(const char *path, const struct sfy_host_addr *addr, char *name, size_t cap)
{
	struct reverse_ctx ctx = {addr, name, cap, 0};
	for_each_line(path, reverse_visit, &ctx);
	return ctx.found;
}
