/* res_exec.c: the "exec" resource kind: ifcmd then cmd as child processes
 * watched by sd-event child, io and timer sources, so the loop never blocks.
 * The same child handling runs a watchcmd, whose every output line is an
 * event for its owner.
 * Output (stdout and stderr) goes to the log line by line. */
#include <bsd/unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "linebuf.h"
#include "log.h"
#include "macro.h"

struct exec_job {
        sd_event *event;
        char *name, *cmd, *shell, *ifcmd, *ifshell;
        bool noop;     /* run ifcmd only; report whether cmd would run */
        bool is_watch; /* a watchcmd: every output line calls line_cb */
        exec_line_cb line_cb;
        uint64_t timeout_usec;
        bool running_cmd; /* false: running ifcmd */
        pid_t pid;
        int out_fd;
        bool timed_out;
        sd_event_source *child_src, *io_src, *timer_src;
        struct linebuf lines; /* lines of 1024 bytes at most, longer ones cut */
        exec_done_cb cb;
        void *userdata;
};

/* One line of the child's output: to the log, and to a watchcmd's owner. */
static void job_on_line(const char *line, size_t len, void *userdata) {
        struct exec_job *j = userdata;

        log_info("exec '%s'%s: %.*s", j->name,
                 j->is_watch      ? " (watchcmd)"
                 : j->running_cmd ? ""
                                  : " (ifcmd)",
                 (int)len, line);
        if (j->line_cb)
                j->line_cb(j, j->userdata);
}

static void job_close_child(struct exec_job *j) {
        j->child_src = sd_event_source_unref(j->child_src);
        j->io_src = sd_event_source_unref(j->io_src);
        j->timer_src = sd_event_source_unref(j->timer_src);
        if (j->out_fd >= 0) {
                linebuf_read(&j->lines, j->out_fd);
                linebuf_flush(&j->lines);
                close(j->out_fd);
                j->out_fd = -1;
        }
        j->pid = 0;
}

static void job_free(struct exec_job *j) {
        job_close_child(j);
        free(j->name);
        free(j->cmd);
        free(j->shell);
        free(j->ifcmd);
        free(j->ifshell);
        free(j);
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct exec_job *j = userdata;

        if (linebuf_read(&j->lines, j->out_fd) == 0)
                j->io_src = sd_event_source_unref(j->io_src); /* EOF; the child source finishes the job */
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct exec_job *j = userdata;

        log_warnx("exec '%s': timed out after %.1f s, killing it", j->name, (double)j->timeout_usec / 1e6);
        j->timed_out = true;
        if (j->pid > 0)
                kill(-j->pid, SIGKILL);
        return 0;
}

static int job_spawn(struct exec_job *j, const char *cmd);

static void job_finish(struct exec_job *j, int status, bool ran) {
        exec_done_cb cb = j->cb;
        void *ud = j->userdata;

        cb(j, status, ran, ud);
        job_free(j);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct exec_job *j = userdata;
        int status;

        if (si->si_code == CLD_EXITED)
                status = si->si_status;
        else
                status = -EINTR;
        if (j->timed_out)
                status = -ETIME;
        job_close_child(j);

        if (j->is_watch) {
                log_warnx("exec '%s': watchcmd %s", j->name,
                          status >= 0        ? "exited"
                          : status == -ETIME ? "timed out"
                                             : "was killed by a signal");
                job_finish(j, status, false);
                return 0;
        }
        if (!j->running_cmd) {
                if (status != 0) {
                        log_info("exec '%s': ifcmd %s, not running cmd", j->name,
                                 status > 0 ? "exited non-zero" : "did not finish");
                        job_finish(j, 0, false);
                        return 0;
                }
                if (j->noop) {
                        log_notice("noop: exec '%s': ifcmd passed: would run cmd '%s'", j->name, j->cmd);
                        job_finish(j, 0, true);
                        return 0;
                }
                j->running_cmd = true;
                int r = job_spawn(j, j->cmd);
                if (r < 0)
                        job_finish(j, r, false);
                return 0;
        }
        /* a failure is the engine's to log (rs_failed), with the retry it decides */
        if (status == 0)
                log_info("exec '%s': cmd exited 0", j->name);
        else if (status > 0)
                log_debug("exec '%s': cmd exited %d", j->name, status);
        else
                log_debug("exec '%s': cmd %s", j->name,
                          status == -ETIME ? "timed out" : "killed by a signal");
        job_finish(j, status, true);
        return 0;
}

static int job_spawn(struct exec_job *j, const char *cmd) {
        int fds[2];
        int r;
        const char *sh = j->running_cmd ? j->shell : j->ifshell;

        if (!sh)
                sh = "/bin/sh";

        if (pipe2(fds, O_CLOEXEC) < 0)
                return log_debug_errno(-errno, "exec '%s': pipe failed: %m", j->name);
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                close(fds[0]);
                close(fds[1]);
                return log_debug_errno(r, "exec '%s': fork failed: %m", j->name);
        }
        if (pid == 0) {
                sigset_t ss;
                sigemptyset(&ss);
                sigprocmask(SIG_SETMASK, &ss, NULL);
                setpgid(0, 0);
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull >= 0)
                        dup2(devnull, 0);
                dup2(fds[1], 1);
                dup2(fds[1], 2);
                closefrom(3); /* libcurl's sockets and anything else not O_CLOEXEC */
                /* the agent's etcd credentials (env twins of its flags) are not the
                 * resource's: a command that logs or ships its environment must not
                 * say where the password is */
                unsetenv("MGMT_ETCD_PASSWORD_FILE");
                unsetenv("MGMT_ETCD_USER");
                execl(sh, sh, "-c", cmd, (char *)NULL);
                dprintf(2, "cannot execute '%s': %s\n", sh, strerror(errno));
                _exit(127);
        }
        close(fds[1]);
        setpgid(pid, pid); /* both sides, so the timeout can kill the group */
        j->pid = pid;
        j->out_fd = fds[0];
        j->timed_out = false;
        (void)fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
        log_debug("exec '%s': started %s pid %d", j->name, j->running_cmd ? "cmd" : "ifcmd", (int)pid);

        r = sd_event_add_io(j->event, &j->io_src, j->out_fd, EPOLLIN, on_output, j);
        if (r >= 0)
                r = sd_event_add_child(j->event, &j->child_src, pid, WEXITED, on_child, j);
        if (r >= 0 && j->timeout_usec > 0)
                r = sd_event_add_time_relative(j->event, &j->timer_src, CLOCK_MONOTONIC, j->timeout_usec, 0,
                                               on_timeout, j);
        if (r < 0) {
                kill(-pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                job_close_child(j);
                return log_debug_errno(r, "exec '%s': cannot watch child: %m", j->name);
        }
        return 0;
}

static int strdup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int exec_job_start(sd_event *event, const char *name, const struct res_exec *x, bool force, bool noop,
                   exec_done_cb cb, void *userdata, struct exec_job **ret) {
        struct exec_job *j = calloc(1, sizeof *j);
        int r;

        if (!j)
                return -ENOMEM;
        j->event = event;
        j->out_fd = -1;
        linebuf_init(&j->lines, 1024, job_on_line, j);
        j->cb = cb;
        j->userdata = userdata;
        j->timeout_usec = x->timeout_usec;
        if (strdup_or_null(name, &j->name) < 0 || strdup_or_null(x->cmd, &j->cmd) < 0 ||
            strdup_or_null(x->shell, &j->shell) < 0 || strdup_or_null(x->ifcmd, &j->ifcmd) < 0 ||
            strdup_or_null(x->ifshell, &j->ifshell) < 0 || !j->cmd) {
                job_free(j);
                return -ENOMEM;
        }
        j->noop = noop;
        j->running_cmd = force || !j->ifcmd;
        if (noop && j->running_cmd) { /* nothing to check: the caller reports it */
                job_free(j);
                return -EINVAL;
        }
        r = job_spawn(j, j->running_cmd ? j->cmd : j->ifcmd);
        if (r < 0) {
                job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

int exec_watch_start(sd_event *event, const char *name, const char *cmd, const char *shell,
                     exec_line_cb line_cb, exec_done_cb cb, void *userdata, struct exec_job **ret) {
        struct exec_job *j = calloc(1, sizeof *j);
        int r;

        if (!j)
                return -ENOMEM;
        j->event = event;
        j->out_fd = -1;
        linebuf_init(&j->lines, 1024, job_on_line, j);
        j->cb = cb;
        j->line_cb = line_cb;
        j->userdata = userdata;
        j->is_watch = true;
        j->running_cmd = true;
        if (strdup_or_null(name, &j->name) < 0 || strdup_or_null(cmd, &j->cmd) < 0 ||
            strdup_or_null(shell, &j->shell) < 0 || !j->cmd) {
                job_free(j);
                return -ENOMEM;
        }
        r = job_spawn(j, j->cmd);
        if (r < 0) {
                job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

void exec_job_cancel(struct exec_job *j) {
        if (!j)
                return;
        j->line_cb = NULL; /* no callbacks into an owner that is letting go */
        if (j->pid > 0) {
                kill(-j->pid, SIGKILL);
                (void)waitpid(j->pid, NULL, 0);
        }
        job_free(j);
}
