/* log.c: leveled logging; journald with structured fields when JOURNAL_STREAM
 * says stderr is the journal, else "ident: level: message" lines on stderr. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <bsd/string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "mgmt";
static int log_level = LOG_INFO;
static int log_journal = -1;
static char log_fields[4][128];

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
    [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* stderr is the journal when its device:inode matches $JOURNAL_STREAM. */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%lu:%lu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_init(const char *ident) {
        log_ident = ident;
        log_journal = stderr_is_journal();
        const char *lvl = getenv("MGMT_LOG_LEVEL");
        if (lvl)
                (void)log_set_level_str(lvl);
}

int log_set_level_str(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && streq(s, level_names[i])) {
                        log_level = (int)i;
                        return 0;
                }
        if (streq(s, "warn") || streq(s, "err")) {
                log_level = streq(s, "warn") ? LOG_WARNING : LOG_ERR;
                return 0;
        }
        return -EINVAL;
}

void log_set_level(int level) {
        log_level = level;
}

int log_get_level(void) {
        return log_level;
}

void log_set_field(const char *name, const char *value) {
        for (size_t i = 0; i < ELEMENTSOF(log_fields); i++) {
                size_t l = strlen(name);
                if (!log_fields[i][0] || (strneq(log_fields[i], name, l) && log_fields[i][l] == '=')) {
                        snprintf(log_fields[i], sizeof log_fields[i], "%s=%s", name, value);
                        return;
                }
        }
}

void log_msgv(int level, int err, const char *fmt, va_list ap) {
        char msg[4096];
        int saved = errno;

        if (level > log_level)
                return;
        errno = err;
        vsnprintf(msg, sizeof msg, fmt, ap);
        if (log_journal < 0)
                log_journal = stderr_is_journal();
        if (log_journal) {
                char pri[16];
                snprintf(pri, sizeof pri, "PRIORITY=%d", level);
                struct iovec iov[8];
                size_t n = 0;
                char m[4200];
                snprintf(m, sizeof m, "MESSAGE=%s", msg);
                iov[n++] = (struct iovec){m, strlen(m)};
                iov[n++] = (struct iovec){pri, strlen(pri)};
                char id[128];
                snprintf(id, sizeof id, "SYSLOG_IDENTIFIER=%s", log_ident);
                iov[n++] = (struct iovec){id, strlen(id)};
                for (size_t i = 0; i < ELEMENTSOF(log_fields) && log_fields[i][0]; i++)
                        iov[n++] = (struct iovec){log_fields[i], strlen(log_fields[i])};
                if (sd_journal_sendv(iov, (int)n) >= 0) {
                        errno = saved;
                        return;
                }
        }
        struct timespec ts;
        struct tm tm;
        char tbuf[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(tbuf, sizeof tbuf, "%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s: %s: %s\n", tbuf, ts.tv_nsec / 1000000, log_ident, level_names[level],
                msg);
        errno = saved;
}

void log_msg(int level, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_msgv(level, err, fmt, ap);
        va_end(ap);
}

void log_lines(int level, const char *prefix, const char *text) {
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                log_msg(level, 0, "%s%.*s", prefix, (int)n, p);
                p += n;
                if (*p)
                        p++;
        }
}
