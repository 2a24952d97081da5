/* The launcher's decisions, as pure functions (see launch.h). */
#include "launch.h"

#include <sfy_config.h>
#include <string.h>
#include <strings.h>

int sfy_sealed_mode_parse(const char *v)
{
	static const char *const yes[] = {"yes", "1", "true", "on"};
	static const char *const no[] = {"no", "0", "false", "off"};
	if (!v)
		return -1;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return SFY_SEALED_YES;
		if (strcasecmp(v, no[i]) == 0)
			return SFY_SEALED_NO;
	}
	return strcasecmp(v, "auto") == 0 ? SFY_SEALED_AUTO : -1;
}

enum sfy_launch_action sfy_launch_decide(int mode, enum sfy_prog_kind kind)
{
	if (mode == SFY_SEALED_YES)
		return SFY_LAUNCH_SEAL;
	if (kind == SFY_PROG_DYNAMIC)
		return SFY_LAUNCH_EXEC;
	if (mode == SFY_SEALED_AUTO)
		return SFY_LAUNCH_SEAL;
	/* sealed = no: a program with file capabilities would lose the
	 * preload silently (AT_SECURE), as a setuid one does: refused.  Static
	 * and Go programs run, with a warning (they may well not use the
	 * network at all). */
	return kind == SFY_PROG_CAPS ? SFY_LAUNCH_REFUSE : SFY_LAUNCH_WARN_EXEC;
}

int sfy_status_has_filter(const char *status)
{
	for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "Seccomp:", 8) == 0) {
			p += 8;
			p += strspn(p, " \t");
			return *p == '2';
		}
	}
	return 0;
}

const char *sfy_prog_kind_text(enum sfy_prog_kind kind)
{
	switch (kind) {
	case SFY_PROG_STATIC:
		return "statically linked";
	case SFY_PROG_GO:
		return "Go program";
	case SFY_PROG_CAPS:
		return "file capabilities";
	default:
		return "dynamically linked";
	}
}

const char *sfy_prog_kind_word(enum sfy_prog_kind kind)
{
	static const char *const words[] = {"dynamic", "static", "go", "caps"};
	return (unsigned)kind < 4 ? words[kind] : "dynamic";
}
