/* Per-fd state table (see include/sfy_fdtable.h): a two-level array so that
 * memory grows only with the fd numbers actually used. */
#include "sfy_fdtable.h"

#include "shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define CHUNK 256
#define NCHUNKS (SFY_FD_MAX / CHUNK)

struct entry {
	int used;
	struct sfy_fdinfo info;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/* used is written under the lock but cleared without it (sfy_fd_clear, from
 * socket() and connect(), which must not wait on a lock), so every access
 * to it is atomic. */
static int live_entry(const struct entry *e)
{
	return __atomic_load_n(&e->used, __ATOMIC_ACQUIRE);
}
static struct entry *chunks[NCHUNKS];

void sfy_fd_lock(void)
{
	pthread_mutex_lock(&table_lock);
}

void sfy_fd_unlock(void)
{
	pthread_mutex_unlock(&table_lock);
}

/* Entry for fd, allocating its chunk when create; caller holds the lock. */
static struct entry *entry_for(int fd, int create)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return NULL;
	struct entry **chunk = &chunks[fd / CHUNK];
	if (!*chunk && create) {
		/* A fresh private mapping is zero-filled without a memset, and
		 * its pages cost nothing until used.  Published with release:
		 * see sfy_fd_clear. */
		void *m = mmap(NULL, CHUNK * sizeof **chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED)
			__atomic_store_n(chunk, m, __ATOMIC_RELEASE);
	}
	return *chunk ? &(*chunk)[fd % CHUNK] : NULL;
}

static int identity(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* A CONNECT entry is live while the socket's peer is the proxy: no other
 * socket gets that peer without our connect() (which rewrites the entry),
 * and asking for the peer at look-up spares connect() an fstat(). */
static int entry_live(int fd, const struct sfy_fdinfo *info)
{
	if (info->kind == SFY_FD_CONNECTED) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof peer;
		return REAL(getpeername)(fd, (struct sockaddr *)&peer, &len) == 0 &&
		       sfy_addr_is_proxy(&sfy_cfg, (struct sockaddr *)&peer);
	}
	dev_t dev;
	ino_t ino;
	return identity(fd, &dev, &ino) == 0 && dev == info->dev && ino == info->ino;
}

int sfy_fd_set(int fd, struct sfy_fdinfo *info)
{
	int saved = errno;
	if (info->kind != SFY_FD_CONNECTED && identity(fd, &info->dev, &info->ino) < 0)
		return -1;
	pthread_mutex_lock(&table_lock);
	struct entry *e = entry_for(fd, 1);
	if (e) {
		e->info = *info;
		__atomic_store_n(&e->used, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&table_lock);
	errno = e ? saved : ENOMEM;
	return e ? 0 : -1;
}

int sfy_fd_get(int fd, struct sfy_fdinfo *out)
{
	int found = 0;
	pthread_mutex_lock(&table_lock);
	struct entry *e = entry_for(fd, 0);
	if (e && live_entry(e)) {
		*out = e->info;
		found = 1;
	}
	pthread_mutex_unlock(&table_lock);
	if (!found)
		return 0;
	int saved = errno;
	int live = entry_live(fd, out);
	errno = saved;
	return live;
}

/* Lock-free, so that it is safe wherever it is called from. */
void sfy_fd_clear(int fd)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return;
	struct entry *chunk = __atomic_load_n(&chunks[fd / CHUNK], __ATOMIC_ACQUIRE);
	if (chunk)
		__atomic_store_n(&chunk[fd % CHUNK].used, 0, __ATOMIC_RELEASE);
}

void sfy_fd_copy(int from, int to)
{
	if (from == to)
		return;
	sfy_sock_facts_copy(from, to);
	pthread_mutex_lock(&table_lock);
	struct entry *src = entry_for(from, 0);
	if (src && live_entry(src)) {
		struct entry *dst = entry_for(to, 1);
		if (dst) {
			dst->info = src->info;
			__atomic_store_n(&dst->used, 1, __ATOMIC_RELEASE);
		}
	} else {
		struct entry *dst = entry_for(to, 0);
		if (dst)
			__atomic_store_n(&dst->used, 0, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&table_lock);
}

int sfy_epoll_reg_note(struct sfy_epoll_reg *regs, int *n, int epfd, int op, const struct epoll_event *ev)
{
	int i = 0;
	while (i < *n && regs[i].epfd != epfd)
		i++;
	if (op == EPOLL_CTL_DEL) {
		if (i < *n)
			regs[i] = regs[--*n];
		return 0;
	}
	if (!ev || i == SFY_FD_MAX_EPOLL)
		return -1;
	regs[i].epfd = epfd;
	regs[i].ev = *ev;
	if (i == *n)
		(*n)++;
	return 0;
}

static void note_epoll_locked(struct sfy_fdinfo *info, int epfd, int op, const struct epoll_event *ev)
{
	sfy_epoll_reg_note(info->epoll, &info->n_epoll, epfd, op, ev);
}

void sfy_fd_note_epoll(int fd, int epfd, int op, const struct epoll_event *ev)
{
	if (fd < 0 || fd >= SFY_FD_MAX || !__atomic_load_n(&chunks[fd / CHUNK], __ATOMIC_ACQUIRE))
		return; /* the common case, without the lock */
	pthread_mutex_lock(&table_lock);
	struct entry *e = entry_for(fd, 0);
	if (e && live_entry(e) && (e->info.kind == SFY_FD_BIND_CANDIDATE || e->info.kind == SFY_FD_BIND_WAITING))
		note_epoll_locked(&e->info, epfd, op, ev);
	pthread_mutex_unlock(&table_lock);
}

int sfy_fd_list(int kind, int *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&table_lock);
	for (int c = 0; c < NCHUNKS && n < max; c++) {
		if (!chunks[c])
			continue;
		for (int i = 0; i < CHUNK && n < max; i++)
			if (live_entry(&chunks[c][i]) && chunks[c][i].info.kind == kind)
				out[n++] = c * CHUNK + i;
	}
	pthread_mutex_unlock(&table_lock);
	return n;
}

/* One byte per fd number, in zero-filled memory that costs nothing until a
 * page of it is written; facts_top bounds what close_range() must clear. */
static uint8_t facts[SFY_FD_MAX];
static int facts_top = -1;

unsigned sfy_sock_facts(int fd)
{
	return fd >= 0 && fd < SFY_FD_MAX ? __atomic_load_n(&facts[fd], __ATOMIC_RELAXED) : 0;
}

void sfy_sock_facts_set(int fd, unsigned value)
{
	if (fd < 0 || fd >= SFY_FD_MAX)
		return;
	if (value) {
		int top = __atomic_load_n(&facts_top, __ATOMIC_RELAXED);
		while (fd > top && !__atomic_compare_exchange_n(&facts_top, &top, fd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	} else if (fd > __atomic_load_n(&facts_top, __ATOMIC_RELAXED)) {
		return; /* never written: already 0, and no page to touch */
	}
	__atomic_store_n(&facts[fd], (uint8_t)value, __ATOMIC_RELAXED);
}

void sfy_sock_facts_change(int fd, unsigned set, unsigned clear)
{
	unsigned now = sfy_sock_facts(fd);
	if (now & SFY_SOCK_TCP) /* only known sockets have facts to change */
		sfy_sock_facts_set(fd, (now | set) & ~clear);
}

void sfy_sock_facts_nonblock(int fd, int on)
{
	sfy_sock_facts_change(fd, on ? SFY_SOCK_NONBLOCK : 0, on ? 0 : SFY_SOCK_NONBLOCK);
}

void sfy_sock_facts_copy(int from, int to)
{
	/* Both numbers now share one socket and one O_NONBLOCK, and a change
	 * made through one is seen for that number only: ask the kernel. */
	sfy_sock_facts_set(from, 0);
	sfy_sock_facts_set(to, 0);
}

void sfy_sock_facts_clear_range(unsigned first, unsigned last)
{
	int top = __atomic_load_n(&facts_top, __ATOMIC_RELAXED);
	for (unsigned fd = first; top >= 0 && fd <= last && fd <= (unsigned)top; fd++)
		__atomic_store_n(&facts[fd], 0, __ATOMIC_RELAXED);
}
