/* socksify-sealed: the sealed-mode launcher and supervisor (issue 17).
 *
 * The wrapper execs `socksify-sealed --launch -- CMD ARG...` for every
 * command, with LD_PRELOAD as the caller had it (never our library) and the
 * value the program must get in SOCKSIFY_SEALED_PRELOAD.  The launcher
 * (sealed/launch.c) inspects CMD and reads the config:
 *   - not sealed: warns about static and Go programs, refuses programs with
 *     file capabilities, and execs CMD with that LD_PRELOAD;
 *   - sealed (--sealed, sealed = yes, or sealed = auto and a program the
 *     preload cannot see): sfy_supervise() below.
 * The supervisor (sealed/supervise*.c) runs CMD under a seccomp filter with
 * user notification and proxies what the preload did not. */
#ifndef SFY_SEALED_H
#define SFY_SEALED_H

#include <stddef.h>

/* Environment between the wrapper, the launcher and the program. */
#define SFY_SEALED_PRELOAD_ENV "SOCKSIFY_SEALED_PRELOAD" /* LD_PRELOAD for CMD */
#define SFY_SEALED_ACTIVE_ENV "SOCKSIFY_SEALED_ACTIVE"   /* set inside a sealed tree */

/* What the preload can see of a program file (sealed/inspect.c). */
enum sfy_prog_kind {
	SFY_PROG_DYNAMIC, /* an ELF with PT_INTERP, or a script, or unknown */
	SFY_PROG_STATIC,  /* an ELF without PT_INTERP */
	SFY_PROG_GO,      /* a Go binary (build ID note or .go.buildinfo) */
	SFY_PROG_CAPS,    /* has file capabilities: runs with AT_SECURE */
};
enum sfy_prog_kind sfy_prog_inspect(const char *path);

/* Whether this kernel and this process can run sealed mode
 * (sealed/probe.c): 1, or 0 with why (one line, no newline). */
int sfy_sealed_probe(char *why, size_t cap);

/* Run argv sealed: fork it under the filter, supervise the whole tree,
 * and return the exit status for the launcher to exit with (128+N when
 * the program died of signal N, as a shell reports it).  When sealed mode
 * cannot be set up it prints why on stderr and returns 126 without
 * running the program: never unsealed.  preload: LD_PRELOAD for argv (may
 * be NULL). */
int sfy_supervise(char *const argv[], const char *preload);

#endif
