/* child.c: the etcd child process as an explicit state machine (DOWN,
 * STARTING, UP, STOPPING, BACKOFF). Its stdout and stderr go into our log
 * line by line with an "etcd:" prefix; it dies with us (PR_SET_PDEATHSIG);
 * stopping is SIGTERM, a deadline, then SIGKILL; crashes are counted and
 * restarts spaced by a growing backoff. */
#include <bsd/string.h>
#include <bsd/unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <jansson.h>

#include "linebuf.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

const char *child_state_to_string(enum child_state s) {
        static const char *const names[] = {
            [CHILD_DOWN] = "down",         [CHILD_STARTING] = "starting", [CHILD_UP] = "up",
            [CHILD_STOPPING] = "stopping", [CHILD_BACKOFF] = "backoff",
        };
        return names[s];
}

static void on_etcd_line(const char *line, size_t len, void *ud);

void child_init(struct child *ch, sd_event *e, uint64_t stop_timeout, child_exit_cb on_exit, void *ud) {
        *ch = (struct child){.event = e,
                             .state = CHILD_DOWN,
                             .out_fd = -1,
                             .stop_timeout = stop_timeout,
                             .on_exit = on_exit,
                             .userdata = ud};
        linebuf_init(&ch->lines, LINEBUF_MAX, on_etcd_line, ch);
}

static void set_state(struct child *ch, enum child_state s) {
        if (ch->state != s)
                log_debug("etcd child: %s -> %s", child_state_to_string(ch->state),
                          child_state_to_string(s));
        ch->state = s;
}

/* The command line for the log, values of flags that may hold secrets hidden. */
static char *redacted_cmdline(char *const *argv) {
        _cleanup_strv_ char **v = NULL;
        for (size_t i = 0; argv[i]; i++) {
                const char *eq = strchr(argv[i], '=');
                if (eq &&
                    (strstr(argv[i], "password") || strstr(argv[i], "token") || strstr(argv[i], "secret"))) {
                        char *r;
                        if (asprintf(&r, "%.*s=***", (int)(eq - argv[i]), argv[i]) >= 0)
                                strv_consume(&v, r);
                } else
                        strv_push(&v, argv[i]);
        }
        return strv_join(v, " ");
}

/* The failure without its timestamp, so two runs' lines compare equal. */
static const char *error_text(const char *l) {
        const char *p = strstr(l, " | ");
        if (p && p - l < 48)
                return p - 1; /* capnslog: "2024-.. 12:00:00.1 C | pkg: msg" */
        p = strstr(l, "\"msg\":");
        return p ? p : l; /* zap: {"level":..,"ts":..,"caller":..,"msg":..} */
}

int etcd_line_level(const char *line) {
        /* Go runtime failures: a panic, a fault (e.g. SIGBUS on a truncated db) */
        if (startswith(line, "panic:") || startswith(line, "fatal error:"))
                return LOG_ERR;
        if (line[0] == '{') { /* etcd 3.4+ with --logger=zap: one JSON object per line */
                json_error_t jerr;
                json_t *j = json_loads(line, 0, &jerr);
                const char *lv = json_string_value(json_object_get(j, "level"));
                int r = LOG_DEBUG;
                if (lv && streq(lv, "warn"))
                        r = LOG_WARNING;
                else if (lv && (streq(lv, "error") || streq(lv, "dpanic") || streq(lv, "panic") ||
                                streq(lv, "fatal")))
                        r = LOG_ERR;
                json_decref(j);
                return r;
        }
        /* capnslog: "2024-01-02 03:04:05.123456 W | etcdserver: ..." */
        const char *bar = strstr(line, " | ");
        if (bar && bar - line >= 2 && bar - line < 48 && bar[-2] == ' ') {
                switch (bar[-1]) {
                case 'W':
                        return LOG_WARNING;
                case 'E':
                case 'C':
                        return LOG_ERR;
                }
        }
        return LOG_DEBUG;
}

/* Lines after which etcd's status is worth asking at once, rather than on
 * the next tick: it serves clients (its member published, a leader known),
 * or it applied a promotion (ours, perhaps). The same words in 3.4's
 * capnslog and 3.5's zap output. Only a hint: the status call decides. */
bool etcd_line_hints(const char *line) {
        return strstr(line, "ready to serve client requests") || strstr(line, "promote member");
}

/* One line of etcd's output: into our log (its chatter, such as peer
 * connections, only at debug; its warnings and errors as such), remembering
 * the last error and whether etcd said this member was removed. */
static void on_etcd_line(const char *line, size_t len, void *ud) {
        struct child *ch = ud;
        int level = etcd_line_level(line);
        log_msg(level, 0, "etcd: %s", line);
        if (level <= LOG_ERR)
                strlcpy(ch->last_error, error_text(line), sizeof ch->last_error);
        if (strstr(line, "permanently removed from the cluster") || strstr(line, "has already been removed"))
                ch->removed_seen = true;
        if (ch->on_hint && etcd_line_hints(line))
                ch->on_hint(ch, ch->userdata);
}

static int out_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct child *ch = userdata;
        if (linebuf_read(&ch->lines, fd) > 0)
                return 0;
        linebuf_flush(&ch->lines);
        ch->out_src = sd_event_source_disable_unref(ch->out_src);
        close(ch->out_fd);
        ch->out_fd = -1;
        return 0;
}

static int exited_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct child *ch = userdata;
        int status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        enum child_state was = ch->state;

        ch->child_src = sd_event_source_disable_unref(ch->child_src);
        ch->timer = sd_event_source_disable_unref(ch->timer);
        ch->pid = 0;
        if (si->si_code == CLD_EXITED)
                log_full_errno(was == CHILD_STOPPING ? LOG_INFO : LOG_WARNING, 0,
                               "etcd exited with status %d%s", si->si_status,
                               was == CHILD_STOPPING ? "" : " (unexpected)");
        else
                log_full_errno(was == CHILD_STOPPING ? LOG_INFO : LOG_WARNING, 0,
                               "etcd killed by signal %s%s", strsignal(si->si_status),
                               was == CHILD_STOPPING ? "" : " (unexpected)");
        set_state(ch, CHILD_DOWN);
        if (was == CHILD_STOPPING) {
                if (ch->on_stopped)
                        ch->on_stopped(ch, ch->userdata);
                return 0;
        }
        /* a run of more than 30 s ends a crash series */
        if (now_usec() - ch->started_at > 30 * USEC_PER_SEC)
                ch->crashes = 0;
        ch->crashes++;
        ch->total_crashes++;
        /* the same failure over and over: say it once, clearly */
        if (ch->last_error[0] && streq(ch->last_error, ch->prev_error) && ch->crashes >= 3 &&
            !ch->loop_reported) {
                ch->loop_reported = true;
                log_errorx(
                    "etcd keeps failing the same way (%u times in a row): %s -- if its data is damaged, "
                    "stop the supervisor and see 'restore' in mgmt-supervisor(8); retrying with backoff",
                    ch->crashes, ch->last_error);
        }
        memcpy(ch->prev_error, ch->last_error, sizeof ch->prev_error);
        ch->last_error[0] = 0;
        if (ch->on_exit)
                ch->on_exit(ch, status, ch->userdata);
        return 0;
}

int child_start(struct child *ch, char *const *argv) {
        int pipefd[2];
        pid_t pid;
        int r;

        if (ch->state != CHILD_DOWN && ch->state != CHILD_BACKOFF)
                return -EBUSY;
        ch->timer = sd_event_source_disable_unref(ch->timer);
        if (argv != ch->argv) {
                strv_free(ch->argv);
                ch->argv = strv_copy(argv);
                if (!ch->argv)
                        return -ENOMEM;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_free_ char *cmd = redacted_cmdline(ch->argv);
        log_info("starting etcd (pid follows; full command line at debug level)");
        log_debug("etcd command line: %s", cmd ? cmd : ch->argv[0]);
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t all;
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() == 1)
                        _exit(1);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(pipefd[1], STDERR_FILENO);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, STDIN_FILENO);
                closefrom(3);
                /* etcd must not speak for us to systemd */
                unsetenv("NOTIFY_SOCKET");
                unsetenv("WATCHDOG_USEC");
                unsetenv("WATCHDOG_PID");
                /* a flag we pass wins over its ETCD_* twin; etcd refuses both */
                for (char *const *a = ch->argv + 1; *a; a++) {
                        char env[256];
                        size_t o = 0;
                        if (!startswith(*a, "--"))
                                continue;
                        o = (size_t)snprintf(env, sizeof env, "ETCD_");
                        for (const char *p = *a + 2; *p && *p != '=' && o + 1 < sizeof env; p++)
                                env[o++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                        env[o] = 0;
                        unsetenv(env);
                }
                execvp(ch->argv[0], ch->argv);
                fprintf(stderr, "cannot execute '%s': %m\n", ch->argv[0]);
                _exit(127);
        }
        close(pipefd[1]);
        ch->pid = pid;
        ch->out_fd = pipefd[0];
        fcntl(ch->out_fd, F_SETFL, O_NONBLOCK);
        ch->out_src = sd_event_source_disable_unref(ch->out_src);
        r = sd_event_add_io(ch->event, &ch->out_src, ch->out_fd, EPOLLIN, out_cb, ch);
        if (r < 0)
                return r;
        r = sd_event_add_child(ch->event, &ch->child_src, pid, WEXITED, exited_cb, ch);
        if (r < 0) {
                kill(pid, SIGKILL);
                return r;
        }
        ch->started_at = now_usec();
        ch->removed_seen = false;
        set_state(ch, CHILD_STARTING);
        return 0;
}

static int kill_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        struct child *ch = userdata;
        if (ch->pid > 0) {
                log_warnx("etcd (pid %d) did not stop within %llus; sending SIGKILL", (int)ch->pid,
                          (unsigned long long)(ch->stop_timeout / USEC_PER_SEC));
                kill(ch->pid, SIGKILL);
        }
        return 0;
}

void child_stop(struct child *ch) {
        uint64_t now;

        if (ch->state == CHILD_BACKOFF || ch->state == CHILD_DOWN) {
                ch->timer = sd_event_source_disable_unref(ch->timer);
                set_state(ch, CHILD_DOWN);
                if (ch->on_stopped)
                        ch->on_stopped(ch, ch->userdata);
                return;
        }
        if (ch->state == CHILD_STOPPING)
                return;
        set_state(ch, CHILD_STOPPING);
        log_info("stopping etcd (pid %d): SIGTERM, SIGKILL after %llus", (int)ch->pid,
                 (unsigned long long)(ch->stop_timeout / USEC_PER_SEC));
        kill(ch->pid, SIGTERM);
        sd_event_now(ch->event, CLOCK_MONOTONIC, &now);
        ch->timer = sd_event_source_disable_unref(ch->timer);
        sd_event_add_time(ch->event, &ch->timer, CLOCK_MONOTONIC, now + ch->stop_timeout, 0, kill_cb, ch);
}

void child_kill_now(struct child *ch) {
        if (ch->pid > 0)
                kill(ch->pid, SIGKILL);
}

static int restart_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        struct child *ch = userdata;
        ch->timer = sd_event_source_disable_unref(ch->timer);
        int r = child_start(ch, ch->argv);
        if (r < 0) {
                log_error_errno(r, "cannot restart etcd: %m");
                child_schedule_restart(ch);
        }
        return 0;
}

void child_schedule_restart(struct child *ch) {
        uint64_t delay = USEC_PER_SEC << (ch->crashes < 5 ? (ch->crashes ? ch->crashes - 1 : 0) : 5), now;

        if (delay > 30 * USEC_PER_SEC)
                delay = 30 * USEC_PER_SEC;
        log_warnx("etcd crashed %u time(s) in a row (%u in all); restarting it in %llu ms", ch->crashes,
                  ch->total_crashes, (unsigned long long)(delay / USEC_PER_MSEC));
        set_state(ch, CHILD_BACKOFF);
        sd_event_now(ch->event, CLOCK_MONOTONIC, &now);
        ch->timer = sd_event_source_disable_unref(ch->timer);
        sd_event_add_time(ch->event, &ch->timer, CLOCK_MONOTONIC, now + delay, 0, restart_cb, ch);
}

void child_mark_healthy(struct child *ch) {
        if (ch->state == CHILD_STARTING)
                set_state(ch, CHILD_UP);
        ch->loop_reported = false;
}
