/* log.h: leveled logging to journald (when stderr is the journal) or stderr.
 *
 * Library code logs at debug only; programs log decisions where they are made.
 * log_*_errno() take a negative errno, log it with %m and return it. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

void log_init(const char *ident);
int log_set_level_str(const char *s); /* "debug", "info", "notice", "warning", "error" */
void log_set_level(int level);
int log_get_level(void);
/* Extra journald fields (e.g. "MGMT_HOST=h1") attached to every record. */
void log_set_field(const char *name, const char *value);

void log_msg(int level, int err, const char *fmt, ...) _printf_(3, 4);
void log_msgv(int level, int err, const char *fmt, va_list ap);
/* One record per line of text (e.g. validation errors, one a line), each
 * after prefix ("" for none). */
void log_lines(int level, const char *prefix, const char *text);

#define log_debug(...) log_msg(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_WARNING, 0, __VA_ARGS__)
#define log_errorx(...) log_msg(LOG_ERR, 0, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, errno, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, errno, __VA_ARGS__)

#define log_full_errno(level, r, ...)                                                                       \
        ({                                                                                                  \
                int _r_ = (r);                                                                              \
                log_msg((level), _r_ < 0 ? -_r_ : _r_, __VA_ARGS__);                                        \
                _r_ < 0 ? _r_ : -_r_;                                                                       \
        })
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warn_errno(r, ...) log_full_errno(LOG_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_full_errno(LOG_DEBUG, (r), __VA_ARGS__)
