/* /etc/hosts reader (see include/sfy_hosts.h).  Lines are scanned in place,
 * never modified, so that the kept copy of the system file can be read by
 * every thread under one short lock and a look-up allocates nothing. */
#include "sfy_hosts.h"
#include "sys.h"

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
	while (buf && used < limit && (n = sfy_sys_read(fd, buf + used, limit - used)) > 0)
		used += (size_t)n;
	sfy_sys_close(fd);
	if (buf) {
		buf[used] = '\0';
		*len = used;
	}
	return buf;
}

/* Calls visit(addr, names, names_len, ctx) for each line with an address;
 * stops when it returns 1.  names is the rest of the line, comment cut. */
typedef int (*hosts_visit_fn)(const struct sfy_host_addr *addr, const char *names, size_t len, void *ctx);

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void scan_lines(const char *text, hosts_visit_fn visit, void *ctx)
{
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *hash = memchr(line, '#', len);
		if (hash)
			len = (size_t)(hash - line);
		size_t i = 0, start;
		while (i < len && is_blank(line[i]))
			i++;
		for (start = i; i < len && !is_blank(line[i]); i++)
			;
		char addr_text[INET6_ADDRSTRLEN];
		struct sfy_host_addr a;
		memset(&a, 0, sizeof a);
		if (i > start && i - start < sizeof addr_text) {
			memcpy(addr_text, line + start, i - start);
			addr_text[i - start] = '\0';
			if (inet_pton(AF_INET, addr_text, &a.u.v4) == 1)
				a.family = AF_INET;
			else if (inet_pton(AF_INET6, addr_text, &a.u.v6) == 1)
				a.family = AF_INET6;
		}
		if ((a.family && visit(&a, line + i, len - i, ctx)) || !nl)
			return;
		line = nl + 1;
	}
}

/* The system file is kept between look-ups and used again while stat()
 * shows the same file unchanged (device, inode, size, modification and
 * change times): one stat() per look-up instead of open, fstat, read and
 * close.  Other paths (the unit tests' files) are read afresh each time.
 * Nothing is allocated or freed under the lock (an allocator that locks
 * itself at fork() must never wait for it). */
#define CACHE_MAX (64 * 1024)
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *cache_text;
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

/* Scans the kept copy if it is still the file's text; 1 if it did. */
static int scan_kept(const char *path, hosts_visit_fn visit, void *ctx)
{
	struct stat st;
	int done = 0;
	if (stat(path, &st) < 0)
		return 0;
	pthread_mutex_lock(&cache_lock);
	if (cache_text && same_file(&st, &cache_st)) {
		scan_lines(cache_text, visit, ctx);
		done = 1;
	}
	pthread_mutex_unlock(&cache_lock);
	return done;
}

static void for_each_line(const char *path, hosts_visit_fn visit, void *ctx)
{
	int keep = strcmp(path, SFY_HOSTS_PATH) == 0;
	if (keep && scan_kept(path, visit, ctx))
		return;
	struct stat st;
	size_t len = 0;
	char *text = read_text(path, &len, &st);
	if (!text)
		return;
	scan_lines(text, visit, ctx);
	if (!keep || len > CACHE_MAX) {
		free(text);
		return;
	}
	pthread_mutex_lock(&cache_lock);
	char *old = cache_text;
	cache_text = text;
	cache_st = st;
	pthread_mutex_unlock(&cache_lock);
	free(old);
}

struct lookup_ctx {
	const char *name;
	int family;
	struct sfy_host_addr *out;
	int max, count;
};

/* Each blank-separated name in names[0..len) in turn: *at and *n. */
static int next_name(const char *names, size_t len, size_t *at, size_t *n)
{
	size_t i = *at + *n;
	while (i < len && is_blank(names[i]))
		i++;
	size_t start = i;
	while (i < len && !is_blank(names[i]))
		i++;
	*at = start;
	*n = i - start;
	return *n > 0;
}

static int lookup_visit(const struct sfy_host_addr *addr, const char *names, size_t len, void *p)
{
	struct lookup_ctx *ctx = p;
	if (ctx->family != AF_UNSPEC && ctx->family != addr->family)
		return 0;
	size_t want = strlen(ctx->name), at = 0, n = 0;
	while (next_name(names, len, &at, &n))
		if (n == want && strncasecmp(names + at, ctx->name, n) == 0) {
			ctx->out[ctx->count++] = *addr;
			break;
		}
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

static int reverse_visit(const struct sfy_host_addr *addr, const char *names, size_t len, void *p)
{
	struct reverse_ctx *ctx = p;
	size_t alen = addr->family == AF_INET ? 4 : 16, at = 0, n = 0;
	if (addr->family != ctx->addr->family || memcmp(&addr->u, &ctx->addr->u, alen) != 0)
		return 0;
	if (!next_name(names, len, &at, &n) || n >= ctx->cap)
		return 0;
	memcpy(ctx->name, names + at, n);
	ctx->name[n] = '\0';
	ctx->found = 1;
	return 1;
}

int sfy_hosts_reverse(const char *path, const struct sfy_host_addr *addr, char *name, size_t cap)
{
	struct reverse_ctx ctx = {addr, name, cap, 0};
	for_each_line(path, reverse_visit, &ctx);
	return ctx.found;
}
