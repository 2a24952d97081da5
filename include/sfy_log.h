/* Logging: one write(2) per line, "socksify[pid]: message", to the log file
 * or stderr.  Never through stdio, so it cannot disturb the host's buffers. */
#ifndef SFY_LOG_H
#define SFY_LOG_H

#include "sfy_config.h"

/* Configure from the loaded config (opens log_file if set). */
void sfy_log_setup(const struct sfy_config *cfg);
int sfy_log_enabled(int level);
void sfy_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Always on stderr (and in the log file when there is one): config errors. */
void sfy_log_to_stderr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The host program is closing or replacing fd: stop using it for logs. */
void sfy_log_fd_closing(int fd, int replaced);
void sfy_log_fds_closing(unsigned first, unsigned last);

#endif
