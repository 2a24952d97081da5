/* The event driver's internals, shared by shim/async.c (entries, the
 * exchange, fork) and shim/async_wait.c (what the waits do with them).
 * Private to those two files. */
#ifndef SFY_ASYNC_INT_H
#define SFY_ASYNC_INT_H

#include <pthread.h>

#include "async.h"
#include "sfy_fdtable.h"

/* A_QUEUED: a happy-eyeballs second attempt, held back (see
 * sfy_async_queue); it has no proxy connection yet. */
enum { A_IDLE, A_QUEUED, A_CONNECTING, A_HANDSHAKE, A_FAILED };

struct job {
	struct sfy_chain_engine c; /* the route's engines (hops in sfy_cfg) */
	struct sfy_proxy proxy;
	struct sfy_fdinfo info;
	long long t0;
	struct sockaddr_storage proxy_sa; /* A_QUEUED: where to connect once let go */
	socklen_t proxy_salen;
	int fam;          /* family of the (fake) address the program connected to */
};

struct entry {
	pthread_mutex_t lock; /* all zero is PTHREAD_MUTEX_INITIALIZER */
	int state;
	int err;          /* A_FAILED: what SO_ERROR reports, once */
	pid_t pid;        /* process that started it: a fork child leaves it alone */
	long long deadline;
	long long wake;   /* A_QUEUED: when to look again (SFY_NO_DEADLINE: at a sibling's end) */
	struct job *job;  /* while connecting or handshaking */
	int n_regs;       /* the program's epoll registrations of this fd */
	int regs_stale;   /* the socket behind fd was swapped: registrations are gone from the kernel */
	struct sfy_epoll_reg regs[SFY_FD_MAX_EPOLL];
	int fd;
	struct entry *prev, *next; /* the ae_active list */
};

/* Our own epoll data: no user-space pointer has these top bits. */
#define MARK 0xFEEDC0DE00000000ULL
#define MARK_MASK 0xFFFFFFFF00000000ULL

/* Entries not idle, in a list under ae_list_lock (taken after an entry's
 * own lock, never before it). */
extern pthread_mutex_t ae_list_lock;
extern struct entry *ae_active;
extern int ae_failed_count; /* entries in A_FAILED: epoll events to mark */

/* Move the exchange as far as the socket lets it, without waiting; seen:
 * what a wait just reported (0: unknown).  Caller holds a->lock. */
void ae_step(struct entry *a, short seen);
/* Let a held-back attempt go (force: now, whatever its sibling does): 1
 * when it went.  Caller holds a->lock. */
int ae_queued_go(struct entry *a, int force);
/* Free a job and what its engine holds (a GSSAPI context). */
void ae_job_free(struct job *j);
/* fd's entry (its chunk made when create), or NULL. */
struct entry *ae_get(int fd, int create);
/* fd's entry when it is not idle. */
struct entry *ae_busy(int fd);
int ae_state(const struct entry *a);
/* Started by this process (a fork child leaves its parent's alone). */
int ae_mine(const struct entry *a);
/* What the exchange waits for now: POLLOUT or POLLIN. */
short ae_interest(const struct entry *a);
/* Put the kernel's epoll registrations in line with a's state. */
void ae_arm(struct entry *a);
/* Step a (no waiting) and tell its state (SFY_ASYNC_*); seen: what a wait
 * just reported for it. */
int ae_touch(struct entry *a, int consume, int *err, short seen);
/* Connecting, handshaking or held back: the program waits for it. */
static inline int ae_pending_state(int st)
{
	return st == A_QUEUED || st == A_CONNECTING || st == A_HANDSHAKE;
}
/* When a wait must look at a again: its deadline, or a held-back
 * attempt's wake time. */
static inline long long ae_due(const struct entry *a)
{
	return __atomic_load_n(ae_state(a) == A_QUEUED ? &a->wake : &a->deadline, __ATOMIC_RELAXED);
}

/* A handshake taken away from its fd (shim/async_park.c). */
struct ae_held {
	struct job *job;
	int state;
	long long deadline;
};
/* a's fd is being closed: keep its socket and handshake (held) for a
 * moment.  1 when parked (the caller leaves a idle without freeing the
 * job); caller holds a->lock. */
int ae_park(struct entry *a, const struct ae_held *held);
/* A parked handshake of process pid to dst through p moves onto fd's
 * number: 1 and *out. */
int ae_adopt(int fd, pid_t pid, const struct sfy_proxy *p, const struct s5_addr *dst, struct ae_held *out);
/* Close the parked handshakes nobody took in time. */
void ae_park_expire(void);
/* The program closes (or dup2()s over) numbers first..last: parked
 * sockets there are its business now. */
void ae_park_closing(int first, int last);
void ae_park_fork_child(void);

#endif
