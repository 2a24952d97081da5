/* Session pools (private to the library, socksify-check and the tests).
 *
 * A session is every process started under one `socksify` run or one
 * `socksify on` shell: they share the environment variable SOCKSIFY_SESSION
 * (the leader's pid, "-", random hex) and, through it, one fake pool, a
 * file DIR/socksify-EUID-SESSION that the first process needing it creates
 * and the others map.  shim/session_obj.c handles the file (create, check,
 * join, remove, reap); shim/session.c is the library's side (the id, the
 * process's pool, the leader's clean-up). */
#ifndef SFY_SESSION_H
#define SFY_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sfy_pool.h"

#define SFY_SESSION_ENV "SOCKSIFY_SESSION"
#define SFY_SESSION_DIR "/dev/shm"
#define SFY_SESSION_ID_MAX 64

/* 1: id is 1..64 of [A-Za-z0-9_-]. */
int sfy_session_id_ok(const char *id);
/* The leader's pid: the id's leading digits before a '-'; 0 if none. */
pid_t sfy_session_leader(const char *id);
/* DIR/socksify-EUID-ID into out; -1 if it does not fit. */
int sfy_session_path(char *out, size_t cap, const char *dir, uid_t euid, const char *id);

enum sfy_session_rc {
	SFY_SESSION_OK,      /* *pool is the session's */
	SFY_SESSION_ABSENT,  /* no such object (join only) */
	SFY_SESSION_REFUSED, /* an object is there but not one we may use: why says so */
	SFY_SESSION_FAILED,  /* could not create or map it: why says so */
};

struct sfy_pool_settings {
	const struct sfy_cidr *fake4, *fake6;
	unsigned capacity;
};

/* Join the object at path: opened without following links, and used only
 * if it is a regular file of ours, mode 0600, one link, of the right size,
 * with a header that matches s. */
enum sfy_session_rc sfy_session_join(const char *path, const struct sfy_pool_settings *s, struct sfy_pool **pool,
				     char *why, size_t whylen);
/* Join, or create it when absent: laid out under a temporary name, then
 * renamed into place unless someone was faster (then theirs is joined).
 * tag: the new pool's random tag. */
enum sfy_session_rc sfy_session_create(const char *path, const struct sfy_pool_settings *s, uint64_t tag,
				       struct sfy_pool **pool, char *why, size_t whylen);
/* Remove path if it is a regular file owned by euid.  0, or -1. */
int sfy_session_remove(const char *path);
/* The leader's end of its session: remove every object of session id in
 * dir, whoever's (a process of the session may have changed its uid, and
 * made the object under its own).  Only root may remove another user's
 * file in the sticky /dev/shm.  Returns how many it removed. */
int sfy_session_remove_all(const char *dir, const char *id);
/* Remove dir's session objects of euid (and temporary ones) whose leader
 * is gone (kill(pid, 0) says ESRCH) and that were made in this pid
 * namespace.  Returns how many it removed. */
int sfy_session_reap(const char *dir, uid_t euid);
/* The library's: the session's shared route state (never NULL). */
struct sfy_route_state *sfy_session_route_state(void);
/* Identity of this process's pid namespace (0 if unknown). */
uint64_t sfy_session_pidns(void);

#endif
