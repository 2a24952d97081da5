/* socksify-sealed --launch: decide whether CMD runs with the preload, runs
 * sealed, or is refused, and exec it (see sealed.h).  This process is not
 * preloaded with our library (the wrapper keeps it out): it reads the same
 * configuration the library will, through the same code. */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sfy_config.h"
#include "sfy_log.h"

/* The file execvp() would run for name: PATH searched as execvp does (a
 * name with a slash is taken as it is).  "" when there is none. */
static void resolve(const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	if (strchr(name, '/')) {
		snprintf(out, cap, "%s", name);
		return;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's execvp default */
	for (const char *p = path;; p++) {
		size_t len = strcspn(p, ":");
		char cand[PATH_MAX];
		struct stat st;
		int n = len ? snprintf(cand, sizeof cand, "%.*s/%s", (int)len, p, name)
			    : snprintf(cand, sizeof cand, "%s", name); /* empty entry: the current directory */
		if (n > 0 && (size_t)n < sizeof cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0) {
			snprintf(out, cap, "%s", cand);
			return;
		}
		p += len;
		if (!*p)
			return;
	}
}

/* Already inside a sealed tree: our own supervisor watches this process,
 * and a second listener would fail (EBUSY). */
static int inside_sealed_tree(void)
{
	if (!getenv(SFY_SEALED_ACTIVE_ENV))
		return 0;
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return sfy_status_has_filter(buf);
}

/* LD_PRELOAD as the program must have it, and our variable gone. */
static void set_preload(const char *preload)
{
	if (preload && *preload)
		setenv("LD_PRELOAD", preload, 1);
	else
		unsetenv("LD_PRELOAD");
	unsetenv(SFY_SEALED_PRELOAD_ENV);
}

static void __attribute__((noreturn)) run(char *argv[], const char *preload)
{
	set_preload(preload);
	execvp(argv[0], argv);
	int err = errno;
	fprintf(stderr, "socksify: %s: %s\n", argv[0], strerror(err));
	exit(err == ENOENT ? 127 : 126); /* as a shell reports it */
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

/* The mode: SOCKSIFY_SEALED over `sealed =`.  source: for the log line. */
static int sealed_mode(const struct sfy_config *cfg, char *source, size_t cap)
{
	const char *v = getenv(SFY_SEALED_ENV);
	static const char *const names[] = {"no", "yes", "auto"};
	if (v && *v) {
		int mode = sfy_sealed_mode_parse(v);
		if (mode < 0) {
			fprintf(stderr, "socksify: %s=%.40s: expected yes, no or auto\n", SFY_SEALED_ENV, v);
			exit(2);
		}
		snprintf(source, cap, "%s=%s", SFY_SEALED_ENV, names[mode]);
		return mode;
	}
	snprintf(source, cap, "sealed = %s", names[cfg->sealed_mode]);
	return cfg->sealed_mode;
}

static void warn_unseen(const char *path, enum sfy_prog_kind kind)
{
	if (!sfy_log_enabled(SFY_LOG_WARN))
		return; /* -q: errors only */
	fprintf(stderr,
		"socksify: %s %s: the preload cannot see its connections and they would NOT go through the "
		"proxy; run it with socksify --sealed\n",
		path, kind == SFY_PROG_GO ? "is a Go program" : "is statically linked");
}

void sfy_launch(char *argv[])
{
	static char *preload; /* a copy: the environment changes below */
	const char *p = getenv(SFY_SEALED_PRELOAD_ENV);
	if (p && *p && !(preload = strdup(p))) {
		fprintf(stderr, "socksify: out of memory\n");
		exit(126); /* never run without the preload */
	}
	if (inside_sealed_tree())
		run(argv, preload); /* the supervisor above sees it already */
	static struct sfy_config cfg;
	sfy_config_load(&cfg, getauxval(AT_SECURE) != 0, env_lookup);
	sfy_log_setup(&cfg);
	char source[64], path[PATH_MAX];
	int mode = sealed_mode(&cfg, source, sizeof source);
	resolve(argv[0], path, sizeof path);
	enum sfy_prog_kind kind = path[0] ? sfy_prog_inspect(path) : SFY_PROG_DYNAMIC;
	const char *shown = path[0] ? path : argv[0];
	switch (sfy_launch_decide(mode, kind)) {
	case SFY_LAUNCH_SEAL:
		sfy_log(SFY_LOG_INFO, "sealing %s (%s, %s)", shown, sfy_prog_kind_text(kind), source);
		unsetenv(SFY_SEALED_PRELOAD_ENV);
		setenv(SFY_SEALED_ACTIVE_ENV, "1", 1);
		exit(sfy_supervise(argv, preload));
	case SFY_LAUNCH_REFUSE:
		fprintf(stderr,
			"socksify: %s has file capabilities: the kernel and the dynamic loader ignore LD_PRELOAD for "
			"it, so it would NOT go through the proxy; refusing to run it (socksify --sealed runs it "
			"sealed)\n",
			shown);
		exit(1);
	case SFY_LAUNCH_WARN_EXEC:
		warn_unseen(shown, kind);
		sfy_log(SFY_LOG_INFO, "not sealing %s (%s, %s)", shown, sfy_prog_kind_text(kind), source);
		break;
	case SFY_LAUNCH_EXEC:
		sfy_log(SFY_LOG_DEBUG, "not sealing %s (%s, %s)", shown, sfy_prog_kind_text(kind), source);
		break;
	}
	run(argv, preload);
}
