/* The sealed filter: which system calls the supervisor sees.
 *
 * connect, sendmsg and sendmmsg always notify; sendto only with a
 * destination address (a send on a connected socket has none, and is the
 * bulk of the traffic).  io_uring_setup fails with ENOSYS, so programs fall
 * back to ordinary calls, which the filter sees; packet sockets fail with
 * EPERM.  Calls of another ABI (i386, x32) fail with EPERM: their socket
 * calls have other numbers this filter does not know, so they cannot be
 * let through.  Everything else is allowed at once, in the kernel. */
#include "sup.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SFY_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SFY_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "sealed mode: unknown architecture (add its AUDIT_ARCH)"
#endif

enum { L_ALLOW, L_NOTIFY, L_ENOSYS, L_EPERM, L_NONE = -1 };

struct prog {
	struct sock_filter ins[40];
	int n;
	int jt[40], jf[40]; /* labels of jumps, resolved at the end */
};

static void stmt(struct prog *p, uint16_t code, uint32_t k)
{
	p->jt[p->n] = p->jf[p->n] = L_NONE;
	p->ins[p->n++] = (struct sock_filter)BPF_STMT(code, k);
}

/* A conditional jump: to label jt when true, jf when false (L_NONE: the
 * next instruction). */
static void jump(struct prog *p, uint16_t code, uint32_t k, int jt, int jf)
{
	p->jt[p->n] = jt;
	p->jf[p->n] = jf;
	p->ins[p->n++] = (struct sock_filter)BPF_JUMP(code, k, 0, 0);
}

static void build(struct prog *p)
{
	p->n = 0;
	stmt(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SFY_AUDIT_ARCH, L_NONE, L_EPERM);
	stmt(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
	jump(p, BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, L_EPERM, L_NONE);
#endif
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, L_NOTIFY, L_NONE);
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmsg, L_NOTIFY, L_NONE);
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmmsg, L_NOTIFY, L_NONE);
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, L_ENOSYS, L_NONE);
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0x100, L_NONE); /* 0x100: the socket test below */
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, SYS_sendto, L_NONE, L_ALLOW);
	/* sendto: notify when the address (args[4], both halves) is set. */
	stmt(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4]));
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, 0, L_NONE, L_NOTIFY);
	stmt(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4]) + 4);
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, 0, L_ALLOW, L_NOTIFY);
	/* 0x100 -- socket(AF_PACKET, ...): frames that no rule can check. */
	stmt(p, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	jump(p, BPF_JMP | BPF_JEQ | BPF_K, AF_PACKET, L_EPERM, L_ALLOW);
	int at[4];
	at[L_ALLOW] = p->n;
	stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	at[L_NOTIFY] = p->n;
	stmt(p, BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	at[L_ENOSYS] = p->n;
	stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	at[L_EPERM] = p->n;
	stmt(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	int socket_test = 0;
	for (int i = 0; i < p->n; i++)
		if (p->ins[i].k == offsetof(struct seccomp_data, args[0]) && p->ins[i].code == (BPF_LD | BPF_W | BPF_ABS))
			socket_test = i;
	for (int i = 0; i < p->n; i++) {
		int t = p->jt[i], f = p->jf[i];
		if (t != L_NONE)
			p->ins[i].jt = (uint8_t)((t == 0x100 ? socket_test : at[t]) - i - 1);
		if (f != L_NONE)
			p->ins[i].jf = (uint8_t)(at[f] - i - 1);
	}
}

int sfy_filter_install(void)
{
	struct prog p;
	build(&p);
	struct sock_fprog fp = {.len = (unsigned short)p.n, .filter = p.ins};
	/* Once the supervisor has a notification, only a fatal signal may end
	 * the wait (5.19): a signal handler in the program (Go preempts its
	 * threads with SIGURG all the time) would otherwise restart the call
	 * in the middle of its SOCKS exchange. */
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fp);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
	return (int)fd;
}
