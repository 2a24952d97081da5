/* A session's pool object (see shim/session.h): a file in /dev/shm that
 * every process of the session maps.  /dev/shm is writable by everyone, so
 * nothing found there is trusted: the file is opened without following a
 * link and used only when it is a regular file of ours, mode 0600, with one
 * link, the size our settings give and a header that matches them.  A new
 * object is laid out under a temporary name and renamed into place without
 * replacing anything, so nobody ever maps a half-made pool and two racing
 * creators end up with one object. */
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

int sfy_session_id_ok(const char *id)
{
	size_t n = 0;
	for (; id[n]; n++) {
		char c = id[n];
		if (n >= SFY_SESSION_ID_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return n > 0;
}

pid_t sfy_session_leader(const char *id)
{
	long pid = 0;
	const char *s = id;
	for (; *s >= '0' && *s <= '9'; s++) {
		pid = pid * 10 + (*s - '0');
		if (pid > 0x3fffffff)
			return 0;
	}
	return s > id && *s == '-' ? (pid_t)pid : 0;
}

int sfy_session_path(char *out, size_t cap, const char *dir, uid_t euid, const char *id)
{
	int n = snprintf(out, cap, "%s/socksify-%u-%s", dir, (unsigned)euid, id);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static enum sfy_session_rc say(enum sfy_session_rc rc, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum sfy_session_rc say(enum sfy_session_rc rc, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Why an open object is not ours to use, or NULL. */
static const char *stat_refusal(const struct stat *st, size_t size, char *buf, size_t cap)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_uid != geteuid()) {
		snprintf(buf, cap, "owned by uid %u, not %u", (unsigned)st->st_uid, (unsigned)geteuid());
		return buf;
	}
	if (st->st_mode & 077) {
		snprintf(buf, cap, "mode %04o, not 0600", (unsigned)(st->st_mode & 07777));
		return buf;
	}
	if (st->st_nlink != 1)
		return "more than one link to it";
	if ((size_t)st->st_size != size) {
		snprintf(buf, cap, "size %lld, not %zu", (long long)st->st_size, size);
		return buf;
	}
	return NULL;
}

enum sfy_session_rc sfy_session_join(const char *path, const struct sfy_pool_settings *s, struct sfy_pool **pool,
				     char *why, size_t whylen)
{
	size_t size = sfy_pool_bytes(s->fake4, s->fake6, s->capacity);
	if (!size)
		return say(SFY_SESSION_FAILED, why, whylen, "bad fake ranges");
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return SFY_SESSION_ABSENT;
		if (e == ELOOP)
			return say(SFY_SESSION_REFUSED, why, whylen, "a symbolic link");
		if (e == EISDIR)
			return say(SFY_SESSION_REFUSED, why, whylen, "not a regular file (a directory)");
		return say(e == EMFILE || e == ENFILE || e == ENOMEM ? SFY_SESSION_FAILED : SFY_SESSION_REFUSED, why,
			   whylen, "cannot open it: %s", strerror(e));
	}
	struct stat st;
	char buf[96];
	const char *bad = fstat(fd, &st) < 0 ? "cannot stat it" : stat_refusal(&st, size, buf, sizeof buf);
	void *mem = bad ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	sfy_sys_close(fd); /* the mapping keeps the object; no fd left for the program to trip over */
	if (bad)
		return say(SFY_SESSION_REFUSED, why, whylen, "%s", bad);
	if (mem == MAP_FAILED)
		return say(SFY_SESSION_FAILED, why, whylen, "cannot map it: %s", strerror(e));
	const char *hdr_why = NULL;
	*pool = sfy_pool_attach(mem, size, s->fake4, s->fake6, s->capacity, &hdr_why);
	if (!*pool) {
		munmap(mem, size);
		return say(SFY_SESSION_REFUSED, why, whylen, "%s", hdr_why);
	}
	return SFY_SESSION_OK;
}

/* A fresh object under a temporary name next to path (in tmp), laid out.
 * 0, or -1 with why. */
static int make_temp(const char *path, const struct sfy_pool_settings *s, uint64_t tag, char *tmp, size_t tmpcap,
		     char *why, size_t whylen)
{
	size_t size = sfy_pool_bytes(s->fake4, s->fake6, s->capacity);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* "-tmp-PID-..." keeps the leader's pid reachable for the reaper. */
	int n = snprintf(tmp, tmpcap, "%s.tmp-%d-%lx", path, (int)getpid(), (unsigned long)ts.tv_nsec);
	if (n < 0 || (size_t)n >= tmpcap)
		return snprintf(why, whylen, "path too long"), -1;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(errno)), -1;
	void *mem = MAP_FAILED;
	if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)size) == 0)
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	sfy_sys_close(fd);
	if (mem == MAP_FAILED) {
		unlink(tmp);
		return snprintf(why, whylen, "cannot size or map %s: %s", tmp, strerror(e)), -1;
	}
	sfy_pool_format(mem, size, s->fake4, s->fake6, s->capacity, tag, sfy_session_pidns());
	munmap(mem, size);
	return 0;
}

enum sfy_session_rc sfy_session_create(const char *path, const struct sfy_pool_settings *s, uint64_t tag,
				       struct sfy_pool **pool, char *why, size_t whylen)
{
	enum sfy_session_rc rc = sfy_session_join(path, s, pool, why, whylen);
	if (rc != SFY_SESSION_ABSENT)
		return rc;
	char tmp[4200];
	if (make_temp(path, s, tag, tmp, sizeof tmp, why, whylen) < 0)
		return SFY_SESSION_FAILED;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		int e = errno;
		unlink(tmp);
		if (e != EEXIST)
			return say(SFY_SESSION_FAILED, why, whylen, "cannot rename %s into place: %s", tmp,
				   strerror(e));
		/* Someone else's was first: use theirs. */
	}
	rc = sfy_session_join(path, s, pool, why, whylen);
	if (rc == SFY_SESSION_ABSENT) /* removed between the rename and the open */
		rc = say(SFY_SESSION_FAILED, why, whylen, "removed as soon as it was made");
	return rc;
}

int sfy_session_remove(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return -1;
	return unlink(path);
}

uint64_t sfy_session_pidns(void)
{
	struct stat st;
	if (stat("/proc/self/ns/pid", &st) < 0)
		return 0;
	return (uint64_t)st.st_dev << 32 ^ (uint64_t)st.st_ino;
}

/* 1: the object at path was made in this pid namespace (so its leader's
 * pid means the same here).  A temporary object counts as one. */
static int made_here(const char *path, uint64_t pidns)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	uint64_t note = 0;
	int ok = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_size >= 4096) {
		void *mem = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (mem != MAP_FAILED) {
			ok = sfy_pool_note(mem, 4096, &note) == 0 && note == pidns;
			munmap(mem, 4096);
		}
	}
	sfy_sys_close(fd);
	return ok;
}

int sfy_session_reap(const char *dir, uid_t euid)
{
	char prefix[48], path[4200];
	int plen = snprintf(prefix, sizeof prefix, "socksify-%u-", (unsigned)euid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint64_t pidns = sfy_session_pidns();
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, (size_t)plen) != 0)
			continue;
		const char *id = e->d_name + plen, *tmp = strstr(id, ".tmp-");
		pid_t leader = sfy_session_leader(tmp ? tmp + 5 : id); /* a temp file: its maker's pid */
		if (leader <= 0 || kill(leader, 0) == 0 || errno != ESRCH)
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
			continue;
		if (!made_here(path, pidns) && !tmp)
			continue;
		if (sfy_session_remove(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int sfy_session_remove_all(const char *dir, const char *id)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t idlen = strlen(id);
	char path[4200];
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		/* socksify-DIGITS-ID, exactly */
		const char *s = e->d_name;
		if (strncmp(s, "socksify-", 9) != 0)
			continue;
		s += 9;
		const char *digits = s;
		while (*s >= '0' && *s <= '9')
			s++;
		if (s == digits || *s != '-' || strlen(s + 1) != idlen || memcmp(s + 1, id, idlen) != 0)
			continue;
		struct stat st;
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
		    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
