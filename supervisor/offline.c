/* offline.c: what `restore` and `recover` share: they work on this host's
 * prefix while its supervisor is stopped, holding the daemon's lock
 * (PREFIX/lock), and run etcd themselves for a moment. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "etcdsnap.h"
#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

/* Take PREFIX/lock as the daemon does (flock LOCK_EX for our whole run).
 * -EBUSY when a supervisor holds it: say whose. */
int offline_lock(const char *prefix, int *ret_fd) {
        char err[512];
        int r = mkdir_p(prefix, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create '%s': %m", prefix);
        r = prefix_lock(prefix, ret_fd, err, sizeof err);
        if (r < 0)
                log_errorx("%s%s", err, r == -EBUSY ? ": stop it first" : "");
        return r;
}

/* Refuse early, touching nothing, when the lock is held (the prefix may not exist). */
int prefix_lock_probe(const char *prefix) {
        char p[4096];
        int fd;
        snprintf(p, sizeof p, "%s/lock", prefix);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                char pid[32] = "";
                ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
                pid[n > 0 ? n : 0] = 0;
                pid[strcspn(pid, "\n")] = 0;
                close(fd);
                log_errorx("the supervisor of '%s' is running (pid %s holds '%s'): stop it first", prefix,
                           pid[0] ? pid : "unknown", p);
                return -EBUSY;
        }
        close(fd);
        return 0;
}

void time_stamp(char *buf, size_t len) {
        struct tm tm;
        time_t t = time(NULL);
        strftime(buf, len, "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
}

struct answer {
        bool done, ok;
        struct etcd_status st;
};

static void status_cb(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct answer *a = ud;
        struct etcd_error perr;
        a->done = true;
        a->ok = !err && etcd_parse_status(reply, &a->st, &perr) >= 0;
}

/* Ask one endpoint for its status (at most 2 s). */
bool ask_status(struct etcd_client *c, const char *url, struct etcd_status *ret) {
        struct answer a = {0};
        if (etcd_call_at(c, url, ETCD_STATUS, json_object(), status_cb, &a) < 0)
                return false;
        if (etcd_run_until(c, &a.done, 3 * USEC_PER_SEC) < 0 || !a.ok)
                return false;
        *ret = a.st;
        return true;
}

pid_t spawn_etcd(char **argv, const char *logpath) {
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        return pid;
}

void stop_etcd(pid_t pid, uint64_t timeout) {
        int status;
        uint64_t deadline = now_usec() + (timeout ? timeout : 15 * USEC_PER_SEC);
        kill(pid, SIGTERM);
        while (waitpid(pid, &status, WNOHANG) == 0) {
                if (now_usec() > deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        return;
                }
                usleep(50000); /* a CLI waiting for its own child */
        }
}

/* Wait until our etcd answers status (any answer), or leader != 0 when
 * want_leader. false after timeout or when it exits. */
bool wait_etcd(struct etcd_client *c, const char *url, pid_t pid, bool want_leader, uint64_t timeout,
               struct etcd_status *ret) {
        uint64_t deadline = now_usec() + timeout;
        int status;
        while (now_usec() < deadline) {
                struct etcd_status st;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return false;
                if (ask_status(c, url, &st)) {
                        if (!want_leader || st.leader != 0) {
                                *ret = st;
                                return true;
                        }
                        etcd_status_clear(&st);
                }
                usleep(200000);
        }
        return false;
}

int sub_run_offline(const struct sub_spec *spec, int argc, char **argv,
                    int (*run)(struct config *, struct sup_config *)) {
        struct config cfg = {0};
        struct sup_config sc = {0};
        char err[1024];
        int r = sub_parse(spec, argc, argv, &cfg);

        if (r >= 0)
                goto out;
        if (strv_length(cfg.args) > 0) {
                fprintf(stderr,
                        "mgmt-supervisor %s: unexpected argument '%s' (see 'mgmt-supervisor help %s')\n",
                        spec->name, cfg.args[0], spec->name);
                r = SUB_USAGE;
                goto out;
        }
        r = sup_config_from(&sc, &cfg, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "mgmt-supervisor %s: %s\n", spec->name, r == -EINVAL ? err : strerror(-r));
                r = r == -EINVAL ? SUB_USAGE : SUB_ERROR;
                goto out;
        }
        r = run(&cfg, &sc);
out:
        sup_config_free(&sc);
        config_free(&cfg);
        return r;
}
