/* etcdsnap_tool.c: etcd's own check of a snapshot file: finding its tool
 * (etcdutl, or etcdctl before 3.5) next to the etcd binary or on PATH, and
 * running its `snapshot status` on a file, as a child the caller waits for
 * or synchronously. Writing snapshots and their sha256: etcdsnap.c. */
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "etcdsnap.h"
#include "macro.h"
#include "util.h"

static char *find_in_dir(const char *dir, const char *name) {
        char *p;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        if (access(p, X_OK) == 0)
                return p;
        free(p);
        return NULL;
}

static char *find_program(const char *etcd_binary, const char *name) {
        char *p = NULL;
        if (etcd_binary && strchr(etcd_binary, '/')) {
                _cleanup_free_ char *d = strdup(etcd_binary);
                if (d && (p = find_in_dir(dirname(d), name)))
                        return p;
        }
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
                if ((p = find_in_dir(t, name)))
                        return p;
        return NULL;
}

int snap_tool_find(const char *etcd_binary, char **ret_path, bool *ret_is_etcdutl) {
        char *p = find_program(etcd_binary, "etcdutl");
        bool utl = p != NULL;
        if (!p)
                p = find_program(etcd_binary, "etcdctl");
        if (!p)
                return -ENOENT;
        *ret_path = p;
        if (ret_is_etcdutl)
                *ret_is_etcdutl = utl;
        return 0;
}

int snap_tool_status_spawn(const char *tool, const char *file, pid_t *ret_pid, int *ret_out, int *ret_err) {
        int out = memfd_create("snapshot-status-out", MFD_CLOEXEC),
            errfd = memfd_create("snapshot-status-err", MFD_CLOEXEC);
        pid_t pid;

        if (out < 0 || errfd < 0) {
                int r = -errno;
                if (out >= 0)
                        close(out);
                if (errfd >= 0)
                        close(errfd);
                return r;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(out);
                close(errfd);
                return r;
        }
        if (pid == 0) {
                sigset_t ss;
                sigemptyset(&ss);
                sigprocmask(SIG_SETMASK, &ss, NULL);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        dup2(devnull, 0);
                dup2(out, 1);
                dup2(errfd, 2);
                setenv("ETCDCTL_API", "3", 1);
                execl(tool, tool, "snapshot", "status", "-w", "json", file, (char *)NULL);
                dprintf(2, "cannot run '%s': %s\n", tool, strerror(errno));
                _exit(127);
        }
        *ret_pid = pid;
        *ret_out = out;
        *ret_err = errfd;
        return 0;
}

static char *read_fd_text(int fd, size_t max) {
        char *buf = malloc(max + 1);
        size_t len = 0;
        if (!buf)
                return NULL;
        if (lseek(fd, 0, SEEK_SET) < 0) {
                buf[0] = 0;
                return buf;
        }
        while (len < max) {
                ssize_t n = read(fd, buf + len, max - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = 0;
        return buf;
}

int snap_tool_status_collect(int status, int out_fd, int err_fd, struct snap_info *ret, char *err,
                             size_t errlen) {
        _cleanup_free_ char *out = read_fd_text(out_fd, 65536), *errtext = read_fd_text(err_fd, 65536);
        int r = -EBADMSG;

        close(out_fd);
        close(err_fd);
        if (!out || !errtext)
                return -ENOMEM;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                /* the tool's own words: its last line that says "Error" or the first line */
                const char *why = strstr(errtext, "Error:");
                if (!why)
                        why = strstr(errtext, "error");
                if (!why)
                        why = errtext;
                char line[300];
                snprintf(line, sizeof line, "%s", why);
                line[strcspn(line, "\n")] = 0;
                if (WIFEXITED(status))
                        snprintf(err, errlen, "etcd's snapshot tool refused it (exit %d): %s",
                                 WEXITSTATUS(status), line[0] ? line : "no message");
                else
                        snprintf(err, errlen, "etcd's snapshot tool crashed on it (signal %d): %s",
                                 WTERMSIG(status), line[0] ? line : "no message");
                return -EBADMSG;
        }
        /* the JSON object is the first line starting with '{' */
        for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (*l != '{')
                        continue;
                json_error_t jerr;
                json_t *j = json_loadb(l, strcspn(l, "\n"), 0, &jerr);
                json_int_t rev = 0, keys = 0;
                if (j && json_unpack(j, "{s:I, s:I}", "revision", &rev, "totalKey", &keys) == 0) {
                        ret->revision = rev;
                        ret->total_keys = keys;
                        r = 0;
                }
                json_decref(j);
                break;
        }
        if (r < 0)
                snprintf(err, errlen, "cannot read the output of etcd's snapshot tool: '%.200s'", out);
        return r;
}

int snap_tool_status(const char *tool, const char *file, struct snap_info *ret, char *err, size_t errlen) {
        pid_t pid;
        int out, errfd, status, r;

        r = snap_tool_status_spawn(tool, file, &pid, &out, &errfd);
        if (r < 0) {
                snprintf(err, errlen, "cannot run '%s': %s", tool, strerror(-r));
                return r;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        r = -errno;
                        close(out);
                        close(errfd);
                        snprintf(err, errlen, "cannot wait for '%s': %s", tool, strerror(-r));
                        return r;
                }
        return snap_tool_status_collect(status, out, errfd, ret, err, errlen);
}
