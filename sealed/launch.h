/* Between socksify-sealed's entry (sealed/main.c), its launcher
 * (sealed/launch.c) and the launcher's pure decisions (sealed/decide.c),
 * which the unit tests drive directly. */
#ifndef SFY_LAUNCH_H
#define SFY_LAUNCH_H

#include "sealed.h"

#define SFY_SEALED_ENV "SOCKSIFY_SEALED" /* yes|no|auto: overrides `sealed =` */

/* What the launcher does with a program. */
enum sfy_launch_action {
	SFY_LAUNCH_EXEC,      /* run it with the preload */
	SFY_LAUNCH_WARN_EXEC, /* the same, after one warning line */
	SFY_LAUNCH_REFUSE,    /* the preload would be dropped: refuse */
	SFY_LAUNCH_SEAL,      /* run it under the supervisor */
};

/* SOCKSIFY_SEALED's value: enum sfy_sealed_mode, or -1 when it is none of
 * yes, no, auto, 1, 0, true, false, on, off. */
int sfy_sealed_mode_parse(const char *v);
/* mode: enum sfy_sealed_mode. */
enum sfy_launch_action sfy_launch_decide(int mode, enum sfy_prog_kind kind);
/* /proc/self/status's text says a seccomp filter is on (Seccomp: 2). */
int sfy_status_has_filter(const char *status);
/* For log lines: "Go program", "statically linked", ... */
const char *sfy_prog_kind_text(enum sfy_prog_kind kind);
/* For --inspect: dynamic, static, go, caps. */
const char *sfy_prog_kind_word(enum sfy_prog_kind kind);

/* `socksify-sealed --launch -- CMD ARG...`: never returns. */
void sfy_launch(char *argv[]) __attribute__((noreturn));

#endif
