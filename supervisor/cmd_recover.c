/* cmd_recover.c: `recover`: a survivor of a lost quorum becomes a
 * one-member cluster (etcd --force-new-cluster) after a snapshot, refusing
 * while a quorum answers (DESIGN.md "Snapshots and recovery"). */
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

static const int recover_opts[] = {SOPT_YES,
                                   OPT_PREFIX,
                                   OPT_HOSTNAME_,
                                   OPT_CLIENT_URLS,
                                   OPT_SERVER_URLS,
                                   OPT_ADV_CLIENT_URLS,
                                   OPT_ADV_SERVER_URLS,
                                   OPT_ETCD_BINARY,
                                   OPT_SNAPSHOT_DIR,
                                   OPT_STOP_TIMEOUT,
                                   OPT_ETCD_ARG,
                                   OPT_AUTH_ROOT_PASSWORD_FILE,
                                   -1};

static const struct sub_spec recover_spec = {
    "recover",
    "Usage: mgmt-supervisor recover [--prefix DIR] [--yes] [OPTIONS OF THE DAEMON]\n"
    "\n"
    "On a survivor of a lost quorum (most members gone for good), with this host's\n"
    "supervisor stopped: make this member a one-member cluster keeping its data.\n"
    "  1. refuse (exit 3) while a quorum answers: any member in the endpoint cache\n"
    "     (PREFIX/endpoints) that answers with a leader, or as many answering as a\n"
    "     quorum; nothing is changed;\n"
    "  2. ask for confirmation on a terminal unless --yes (no terminal and no\n"
    "     --yes: exit 2, nothing done);\n"
    "  3. snapshot: our etcd's db (etcd serves nothing without quorum) with\n"
    "     etcd's sha256 appended, to the snapshot directory (default\n"
    "     PREFIX/snapshots) as mgmt-<host>-<time>-before-recover.db, verified by\n"
    "     etcd's tool; restorable with 'restore --from';\n"
    "  4. run etcd once with --force-new-cluster until it leads itself, then stop it\n"
    "     (its output goes to PREFIX/recover-etcd.log).\n"
    "Then start the supervisor: the cluster regrows by normal nomination; members\n"
    "that come back rejoin as new members. Give the same options (or --config) as\n"
    "the daemon, so that etcd runs with the same URLs and --etcd-arg.\n"
    "Refused (exit 3) while a supervisor holds PREFIX/lock.\n",
    recover_opts,
};

static int confirm(const char *prefix) {
        char line[64];
        fprintf(stderr,
                "This makes the etcd data in '%s' a one-member cluster: the other members' data is\n"
                "abandoned, they rejoin as new members. Type 'yes' to go on: ",
                prefix);
        if (!fgets(line, sizeof line, stdin))
                return -1;
        line[strcspn(line, "\n")] = 0;
        return streq(line, "yes") ? 0 : -1;
}

/* The db of our stopped etcd copied into the snapshot dir as a verified
 * snapshot (etcd does not serve a member without quorum, so the gateway
 * cannot stream it). */
static int snapshot_db(struct sup_config *sc, const char *path, struct snap_info *ret, char *err,
                       size_t errlen) {
        _cleanup_free_ char *tool = NULL, *db = NULL;
        _cleanup_close_ int fd = -1;
        struct snap_sink *sink = NULL;
        struct snap_info info = {0};
        int r;

        if (snap_tool_find(sc->etcd_binary, &tool, NULL) < 0) {
                snprintf(err, errlen, "neither etcdutl nor etcdctl is installed: cannot verify a snapshot");
                return -ENOENT;
        }
        r = mkdir_p(sc->snapshot_dir, 0700);
        if (r < 0) {
                snprintf(err, errlen, "cannot create snapshot directory '%s': %s", sc->snapshot_dir,
                         strerror(-r));
                return r;
        }
        if (asprintf(&db, "%s/member/snap/db", sc->data_dir) < 0)
                return -ENOMEM;
        fd = open(db, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot open '%s': %s", db, strerror(errno));
                return r;
        }
        r = snap_sink_open(path, &sink);
        if (r < 0) {
                snprintf(err, errlen, "cannot create a file in '%s': %s", sc->snapshot_dir, strerror(-r));
                return r;
        }
        r = snap_sink_write_db(sink, fd);
        if (r < 0)
                snprintf(err, errlen, "%s", snap_sink_error(sink) ? snap_sink_error(sink) : strerror(-r));
        if (r >= 0)
                r = snap_sink_finish(sink, &info, err, errlen);
        if (r >= 0)
                r = snap_tool_status(tool, snap_sink_temp_path(sink), &info, err, errlen);
        if (r >= 0 && (r = snap_sink_commit(sink)) < 0)
                snprintf(err, errlen, "cannot rename it to '%s': %s", path, strerror(-r));
        snap_sink_free(sink);
        if (r >= 0)
                *ret = info;
        return r;
}

/* Members in the endpoint cache that answer: any with a leader means a
 * quorum exists; so do as many answering as a quorum of the cache. Our own
 * etcd is stopped (it serves nothing without quorum anyway). */
static bool quorum_answers(struct etcd_client *c, const char *prefix, char *const *self_urls, char *why,
                           size_t len) {
        char p[4096], err[256];
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_ char **urls = NULL;
        uint64_t seen[64];
        size_t n_seen = 0, members = 0;

        snprintf(p, sizeof p, "%s/endpoints", prefix);
        if (read_file_max(p, 1 << 16, &text, NULL) < 0 || urls_parse(text, &urls, err, sizeof err) < 0)
                return false;
        for (size_t i = 0; urls && urls[i]; i++) {
                struct etcd_status st;
                if (strv_contains(self_urls, urls[i]))
                        continue;
                members++;
                if (!ask_status(c, urls[i], &st))
                        continue;
                bool leader = st.leader != 0, dup = false;
                for (size_t k = 0; k < n_seen; k++)
                        dup = dup || seen[k] == st.member_id;
                if (!dup && n_seen < ELEMENTSOF(seen))
                        seen[n_seen++] = st.member_id;
                etcd_status_clear(&st);
                if (leader) {
                        snprintf(why, len, "%s answers and has a leader", urls[i]);
                        return true;
                }
        }
        members++; /* ourselves */
        if (n_seen + 1 >= members / 2 + 1 && n_seen > 0) {
                snprintf(why, len, "%zu other members of about %zu answer (electing a leader?)", n_seen,
                         members);
                return true;
        }
        return false;
}

static int recover_run(struct config *cfg, struct sup_config *sc) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_strv_ char **argv = NULL;
        const char *url = sc->adv_client_urls[0];
        struct etcd_tls tls = {sc->cert, sc->key, sc->ca};
        struct etcd_status st;
        _cleanup_close_ int lock = -1;
        char why[600], p[4096], stamp[32], err[5000] = "", logpath[4200], ports[512];
        struct snap_info info = {0};
        bool yes = cfg->v[SOPT_YES].b;
        pid_t pid;
        int r;

        snprintf(p, sizeof p, "%s/member", sc->data_dir);
        if (access(p, F_OK) < 0) {
                log_errorx("no etcd data in '%s': nothing to recover (use 'restore --from FILE' instead)",
                           sc->data_dir);
                return SUB_ERROR;
        }
        if (!yes && !isatty(STDIN_FILENO)) {
                fprintf(stderr, "mgmt-supervisor recover: not on a terminal: give --yes to confirm\n");
                return SUB_USAGE;
        }
        if (prefix_lock_probe(sc->prefix) < 0)
                return SUB_UNSAFE;
        r = etcd_client_new(NULL, sc->adv_client_urls, &tls, &c);
        if (r < 0)
                return SUB_ERROR;
        if (auth_client_login(c, sc) < 0)
                return SUB_ERROR;
        etcd_client_set_timeout(c, 2 * USEC_PER_SEC);
        if (quorum_answers(c, sc->prefix, sc->adv_client_urls, why, sizeof why)) {
                log_errorx(
                    "refusing to recover: the cluster has a quorum (%s); nothing was changed: start the "
                    "supervisor instead, it rejoins",
                    why);
                return SUB_UNSAFE;
        }
        r = offline_lock(sc->prefix, &lock);
        if (r == -EBUSY)
                return SUB_UNSAFE;
        if (r < 0)
                return SUB_ERROR;
        if (sup_check_ports(sc, ports, sizeof ports) < 0) {
                log_errorx("cannot run etcd: %s; nothing was changed", ports);
                return SUB_ERROR;
        }
        if (!yes && confirm(sc->prefix) < 0) {
                fprintf(stderr, "not confirmed: nothing was changed\n");
                return SUB_USAGE;
        }

        /* a snapshot first */
        time_stamp(stamp, sizeof stamp);
        snprintf(p, sizeof p, "%s/mgmt-%s-%s-before-recover.db", sc->snapshot_dir, sc->hostname, stamp);
        if (snapshot_db(sc, p, &info, err, sizeof err) < 0) {
                log_errorx("cannot snapshot before recovering: %s; nothing was changed", err);
                return SUB_ERROR;
        }
        log_notice("snapshot before recovery: '%s' (revision %lld, %llu bytes)", p, (long long)info.revision,
                   (unsigned long long)info.size);

        /* then etcd once with --force-new-cluster, until it leads itself */
        snprintf(logpath, sizeof logpath, "%s/recover-etcd.log", sc->prefix);
        argv = etcd_argv(sc, NULL, true);
        strv_push(&argv, "--force-new-cluster");
        pid = spawn_etcd(argv, logpath);
        if (pid < 0)
                return log_error_errno(-errno, "cannot start etcd: %m"), SUB_ERROR;
        if (!wait_etcd(c, url, pid, true, 60 * USEC_PER_SEC, &st)) {
                stop_etcd(pid, sc->stop_timeout);
                log_errorx(
                    "etcd --force-new-cluster did not become healthy (see '%s'); the snapshot '%s' holds "
                    "the data",
                    logpath, p);
                return SUB_ERROR;
        }
        etcd_status_clear(&st);
        stop_etcd(pid, sc->stop_timeout);
        printf("recovered: '%s' is now a one-member cluster of '%s' (snapshot before: '%s'); start the "
               "supervisor: "
               "the cluster regrows by nomination\n",
               sc->data_dir, sc->hostname, p);
        return SUB_OK;
}

int cmd_recover(int argc, char **argv) {
        return sub_run_offline(&recover_spec, argc, argv, recover_run);
}
