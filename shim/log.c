/* Logging (see include/sfy_log.h). */
#include "sfy_log.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_level = SFY_LOG_WARN;
static int log_fd = 2;
static char log_path[PATH_MAX];

void sfy_log_setup(const struct sfy_config *cfg)
{
	log_level = cfg->log_level;
	if (cfg->log_file[0]) {
		snprintf(log_path, sizeof log_path, "%s", cfg->log_file);
		log_fd = -1; /* opened at the first line: costs nothing when quiet */
	}
}

int sfy_log_enabled(int level)
{
	return level <= log_level;
}

void sfy_log_fd_closing(int fd, int replaced)
{
	if (fd != log_fd)
		return;
	if (log_path[0])
		log_fd = -1; /* our file: reopen it at the next line */
	else if (!replaced)
		log_fd = -2; /* the program closed stderr: stay quiet */
	/* stderr replaced by dup2(): the logs follow it */
}

void sfy_log_fds_closing(unsigned first, unsigned last)
{
	if (log_fd >= 0 && (unsigned)log_fd >= first && (unsigned)log_fd <= last)
		sfy_log_fd_closing(log_fd, 0);
}

/* Formats one line into line (cap bytes) and returns its length. */
static size_t format_line(char *line, size_t cap, const char *fmt, va_list ap)
{
	int n = snprintf(line, cap, "socksify[%d]: ", (int)getpid());
	int m = vsnprintf(line + n, cap - (size_t)n - 1, fmt, ap);
	size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
	if (len > cap - 2)
		len = cap - 2; /* truncated: keep room for the newline */
	line[len++] = '\n';
	return len;
}

static void write_line(int fd, const char *line, size_t len)
{
	if (fd >= 0 && sfy_sys_write(fd, line, len) < 0) {
		/* Nowhere left to report it. */
	}
}

static void write_to_log(const char *line, size_t len)
{
	if (log_fd == -1)
		log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	write_line(log_fd, line, len);
}

void sfy_log(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	int saved = errno;
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	size_t len = format_line(line, sizeof line, fmt, ap);
	va_end(ap);
	write_to_log(line, len);
	errno = saved;
}

void sfy_log_to_stderr(const char *fmt, ...)
{
	int saved = errno;
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	size_t len = format_line(line, sizeof line, fmt, ap);
	va_end(ap);
	write_line(2, line, len);
	if (log_path[0])
		write_to_log(line, len);
	errno = saved;
}
