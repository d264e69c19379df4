/* cmd_restore.c: `restore --from FILE`: a new one-member data dir of this
 * host from a snapshot, built by etcd's own tool, with a new cluster token;
 * old data moved aside under PREFIX/old/<time>/ (DESIGN.md "Snapshots and
 * recovery"). */
#include <bsd/stdlib.h>
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

static const int restore_opts[] = {SOPT_FROM,
                                   OPT_PREFIX,
                                   OPT_HOSTNAME_,
                                   OPT_SERVER_URLS,
                                   OPT_ADV_SERVER_URLS,
                                   OPT_CLIENT_URLS,
                                   OPT_ADV_CLIENT_URLS,
                                   OPT_ETCD_BINARY,
                                   OPT_AUTH_ROOT_PASSWORD_FILE,
                                   -1};

static const struct sub_spec restore_spec = {
    "restore",
    "Usage: mgmt-supervisor restore --from FILE [--prefix DIR] [--hostname H] [URL OPTIONS]\n"
    "\n"
    "With this host's supervisor stopped, build its etcd data from the snapshot FILE\n"
    "(from 'snapshot save', a scheduled snapshot, or 'etcdctl snapshot save').\n"
    "FILE is checked first (etcd's sha256 trailer, then etcd's own tool opens it);\n"
    "a bad FILE changes nothing. The data dir is built by etcd's tool for the\n"
    "installed version (etcdutl snapshot restore on 3.5+, etcdctl on 3.4) as a\n"
    "one-member cluster of this host (--hostname, --advertise-server-urls) with a\n"
    "new random cluster token. Existing data (PREFIX/etcd) is moved aside to\n"
    "PREFIX/old/<time>/, never deleted. PREFIX/cluster.json gets the new token and\n"
    "generation + 1, and PREFIX/restored.json tells the next start of the daemon\n"
    "that it serves a restored cluster. Then start the supervisor here; start the\n"
    "other hosts after it (see the runbook in the README).\n"
    "Give the same options (or --config) as the daemon, so that the URLs match.\n"
    "Refused (exit 3) while a supervisor holds PREFIX/lock.\n",
    restore_opts,
};

/* Run argv to its end, its stderr kept for the error message. */
static int run_tool(char **argv, char *err, size_t errlen) {
        int efd = memfd_create("tool-stderr", MFD_CLOEXEC), status;
        pid_t pid;

        if (efd < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(efd);
                return -errno;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR);
                if (devnull >= 0) {
                        dup2(devnull, 0);
                        dup2(devnull, 1);
                }
                dup2(efd, 2);
                setenv("ETCDCTL_API", "3", 1);
                execv(argv[0], argv);
                dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        break;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                close(efd);
                return 0;
        }
        char text[4096] = "";
        ssize_t n = pread(efd, text, sizeof text - 1, 0);
        close(efd);
        text[n > 0 ? n : 0] = 0;
        const char *why = strstr(text, "Error:");
        snprintf(err, errlen, "%s", why ? why : text);
        err[strcspn(err, "\n")] = 0;
        return -EIO;
}

static int read_generation(const char *prefix, int64_t *ret) {
        char p[4096];
        _cleanup_free_ char *text = NULL;
        json_int_t g = 0;
        snprintf(p, sizeof p, "%s/cluster.json", prefix);
        *ret = 0;
        if (read_file_max(p, 65536, &text, NULL) < 0)
                return 0;
        json_t *j = json_loads(text, 0, NULL);
        if (j && json_unpack(j, "{s:I}", "generation", &g) == 0)
                *ret = g;
        json_decref(j);
        return 0;
}

/* Move PREFIX/<name> (if present) into PREFIX/old/<stamp>/. */
static int move_aside(const char *prefix, const char *name, const char *stamp) {
        char from[4096], dir[4096], to[4200];
        struct stat st;
        int r;

        snprintf(from, sizeof from, "%s/%s", prefix, name);
        if (lstat(from, &st) < 0)
                return 0;
        snprintf(dir, sizeof dir, "%s/old/%s", prefix, stamp);
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "cannot create '%s': %m", dir);
        snprintf(to, sizeof to, "%s/%s", dir, name);
        if (rename(from, to) < 0)
                return log_error_errno(-errno, "cannot move '%s' to '%s': %m", from, to);
        log_notice("moved '%s' aside to '%s'", from, to);
        return 0;
}

/* One run of etcd on the restored data (a one-member cluster of ours) to make
 * its keys fit: our nomination, no other host's (the cluster regrows by
 * nomination), /_mgmt/cluster with the new id and the snapshot's generation
 * + 1. Returns the generation written, or < 0 with err set. */
static int64_t restored_keys(struct sup_config *sc, const char *data, int64_t local_gen, char *cluster_id,
                             size_t idlen, char *err, size_t errlen) {
        _cleanup_etcd_ struct etcd_client *c = NULL;
        _cleanup_strv_ char **argv = NULL;
        char *saved = sc->data_dir;
        _cleanup_free_ char *peers = strv_join(sc->adv_server_urls, ","), *ctext = NULL;
        _cleanup_free_ char *nk = key_nominated(sc->hostname), *ck = key_cluster(),
                            *np = key_nominated_prefix();
        _cleanup_free_ char *now = rfc3339_now(), *logpath = NULL;
        struct etcd_tls tls = {sc->cert, sc->key, sc->ca};
        const char *url = sc->adv_client_urls[0];
        struct etcd_status st;
        struct etcd_error eerr = {0};
        struct etcd_kvs kvs = {0};
        struct etcd_members ms = {0};
        json_t *reply = NULL;
        int64_t gen = local_gen;
        pid_t pid;

        if (sup_check_ports(sc, err, errlen) < 0)
                return -EADDRINUSE;
        sc->data_dir = (char *)data;
        argv = etcd_argv(sc, NULL, true);
        sc->data_dir = saved;
        if (!argv || !peers || !nk || !ck || !np ||
            asprintf(&logpath, "%s/restore-etcd.log", sc->prefix) < 0)
                return -ENOMEM;
        if (etcd_client_new(NULL, sc->adv_client_urls, &tls, &c) < 0)
                return -ENOMEM;
        if (auth_client_login(c, sc) < 0)
                return -EACCES;
        etcd_client_set_timeout(c, 2 * USEC_PER_SEC);
        pid = spawn_etcd(argv, logpath);
        if (pid < 0) {
                snprintf(err, errlen, "cannot start etcd: %s", strerror(errno));
                return -errno;
        }
        if (!wait_etcd(c, url, pid, true, 60 * USEC_PER_SEC, &st)) {
                stop_etcd(pid, sc->stop_timeout);
                snprintf(err, errlen, "etcd did not start on the restored data (see '%s')", logpath);
                return -EIO;
        }
        etcd_status_clear(&st);
        etcd_client_set_timeout(c, 10 * USEC_PER_SEC);
        /* the generation the snapshot's cluster had */
        if (etcd_call_sync(c, ETCD_RANGE, etcd_req_range(ck, false, 0, false), &reply, &eerr) < 0 ||
            etcd_parse_range(reply, &kvs, &eerr) < 0)
                goto fail;
        json_decref(TAKE_PTR(reply));
        if (kvs.n == 1) {
                json_t *j = json_loads(kvs.kvs[0].value, 0, NULL);
                json_int_t g = 0;
                if (j && json_unpack(j, "{s:I}", "generation", &g) == 0 && g > gen)
                        gen = g;
                json_decref(j);
        }
        etcd_kvs_clear(&kvs);
        gen++;
        /* other hosts' nominations belong to the old cluster's members */
        if (etcd_call_sync(c, ETCD_RANGE, etcd_req_range(np, true, 0, true), &reply, &eerr) < 0 ||
            etcd_parse_range(reply, &kvs, &eerr) < 0)
                goto fail;
        json_decref(TAKE_PTR(reply));
        for (size_t i = 0; i < kvs.n; i++)
                if (!streq(kvs.kvs[i].key, nk) &&
                    etcd_call_sync(c, ETCD_DELETE, etcd_req_delete(kvs.kvs[i].key, false), NULL, &eerr) <
                        0) {
                        etcd_kvs_clear(&kvs);
                        goto fail;
                }
        etcd_kvs_clear(&kvs);
        if (etcd_call_sync(c, ETCD_PUT, etcd_req_put(nk, peers, 0), NULL, &eerr) < 0)
                goto fail;
        if (etcd_call_sync(c, ETCD_MEMBER_LIST, json_object(), &reply, &eerr) < 0 ||
            etcd_parse_members(reply, &ms, &eerr) < 0)
                goto fail;
        json_decref(TAKE_PTR(reply));
        snprintf(cluster_id, idlen, "%llx", (unsigned long long)ms.cluster_id);
        etcd_members_clear(&ms);
        json_t *cj = json_pack("{s:s, s:I, s:s}", "id", cluster_id, "generation", (json_int_t)gen, "created",
                               now ? now : "");
        ctext = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
        json_decref(cj);
        if (!ctext || etcd_call_sync(c, ETCD_PUT, etcd_req_put(ck, ctext, 0), NULL, &eerr) < 0)
                goto fail;
        stop_etcd(pid, sc->stop_timeout);
        return gen;
fail:
        json_decref(reply);
        stop_etcd(pid, sc->stop_timeout);
        snprintf(err, errlen, "cannot update the keys of the restored cluster: %s", eerr.msg);
        return -EIO;
}

static int restore_run(struct config *cfg, struct sup_config *sc) {
        const char *from = cfg->v[SOPT_FROM].s;
        _cleanup_free_ char *tool = NULL, *tmpdir = NULL, *peers = NULL, *cluster = NULL, *data = NULL;
        _cleanup_strv_ char **parts = NULL;
        _cleanup_close_ int lock = -1;
        struct snap_info info = {0};
        char err[1024], stamp[32], token[64], p[4096];
        unsigned char rnd[12];
        bool utl = false;
        int64_t gen;
        int r;

        if (!from) {
                fprintf(stderr, "mgmt-supervisor restore: --from FILE is required (see 'mgmt-supervisor "
                                "help restore')\n");
                return SUB_USAGE;
        }
        if (prefix_lock_probe(sc->prefix) < 0)
                return SUB_UNSAFE;
        /* the snapshot first: a bad one changes nothing */
        r = snap_file_check(from, &info, err, sizeof err);
        if (r < 0) {
                log_errorx("cannot restore: %s; nothing was changed", err);
                return SUB_ERROR;
        }
        r = snap_tool_find(sc->etcd_binary, &tool, &utl);
        if (r < 0) {
                log_errorx("cannot restore: neither etcdutl nor etcdctl is installed; nothing was changed");
                return SUB_ERROR;
        }
        r = snap_tool_status(tool, from, &info, err, sizeof err);
        if (r < 0) {
                log_errorx("cannot restore '%s': %s; nothing was changed", from, err);
                return SUB_ERROR;
        }
        r = offline_lock(sc->prefix, &lock);
        if (r == -EBUSY)
                return SUB_UNSAFE;
        if (r < 0)
                return SUB_ERROR;

        /* build beside the data dir, so that the final step is a rename */
        if (asprintf(&tmpdir, "%s/.restore.XXXXXX", sc->prefix) < 0 || !mkdtemp(tmpdir)) {
                log_error("cannot create a temporary directory in '%s'", sc->prefix);
                return SUB_ERROR;
        }
        if (asprintf(&data, "%s/etcd", tmpdir) < 0)
                return SUB_ERROR;
        for (size_t i = 0; sc->adv_server_urls[i]; i++) {
                char *e;
                if (asprintf(&e, "%s=%s", sc->hostname, sc->adv_server_urls[i]) >= 0)
                        strv_consume(&parts, e);
        }
        cluster = strv_join(parts, ",");
        peers = strv_join(sc->adv_server_urls, ",");
        arc4random_buf(rnd, sizeof rnd);
        size_t o = (size_t)snprintf(token, sizeof token, "mgmt-");
        for (size_t i = 0; i < sizeof rnd; i++)
                o += (size_t)snprintf(token + o, sizeof token - o, "%02x", rnd[i]);
        char *argv[] = {tool,
                        (char *)"snapshot",
                        (char *)"restore",
                        (char *)from,
                        (char *)"--data-dir",
                        data,
                        (char *)"--name",
                        sc->hostname,
                        (char *)"--initial-cluster",
                        cluster,
                        (char *)"--initial-advertise-peer-urls",
                        peers,
                        (char *)"--initial-cluster-token",
                        token,
                        NULL};
        uint64_t t0 = now_usec();
        r = run_tool(argv, err, sizeof err);
        if (r < 0) {
                log_errorx("'%s snapshot restore' failed: %s; nothing was changed", tool, err);
                (void)rm_rf(tmpdir); /* our own temporary directory */
                return SUB_ERROR;
        }
        uint64_t t1 = now_usec();
        (void)chmod(data, 0700);
        char cluster_id[32] = "";
        read_generation(sc->prefix, &gen);
        gen = restored_keys(sc, data, gen, cluster_id, sizeof cluster_id, err, sizeof err);
        if (gen < 0) {
                log_errorx("%s; nothing was changed", err);
                (void)rm_rf(tmpdir);
                return SUB_ERROR;
        }

        /* the old cluster's data, endpoint cache and lease go aside, never deleted */
        time_stamp(stamp, sizeof stamp);
        if (move_aside(sc->prefix, "etcd", stamp) < 0 || move_aside(sc->prefix, "endpoints", stamp) < 0 ||
            move_aside(sc->prefix, "lease", stamp) < 0) {
                (void)rm_rf(tmpdir);
                return SUB_ERROR;
        }
        /* PREFIX/lock stays: it is the lock file, not data */
        if (rename(data, sc->data_dir) < 0) {
                log_error("cannot move the restored data to '%s'", sc->data_dir);
                return SUB_ERROR;
        }
        (void)rm_rf(tmpdir);

        _cleanup_free_ char *now = rfc3339_now();
        json_t *cj =
            json_pack("{s:s, s:s, s:I}", "id", cluster_id, "token", token, "generation", (json_int_t)gen);
        json_t *mj = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "from", from, "time", now ? now : "",
                               "revision", (json_int_t)info.revision, "generation", (json_int_t)gen, "token",
                               token, "sha256", info.sha256);
        _cleanup_free_ char *ctext = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
        _cleanup_free_ char *mtext = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
        json_decref(cj);
        json_decref(mj);
        if (!ctext || !mtext)
                return SUB_ERROR;
        move_aside(sc->prefix, "cluster.json", stamp);
        snprintf(p, sizeof p, "%s/cluster.json", sc->prefix);
        if ((r = write_file_atomic(p, ctext, strlen(ctext), 0600)) < 0) {
                log_error_errno(r, "cannot write '%s': %m", p);
                return SUB_ERROR;
        }
        snprintf(p, sizeof p, "%s/restored.json", sc->prefix);
        if ((r = write_file_atomic(p, mtext, strlen(mtext), 0600)) < 0) {
                log_error_errno(r, "cannot write '%s': %m", p);
                return SUB_ERROR;
        }
        printf(
            "restored '%s' (revision %lld, %lld keys) into '%s' with %s in %.1f s: a one-member cluster of "
            "'%s', token %s, generation %lld; start the supervisor now\n",
            from, (long long)info.revision, (long long)info.total_keys, sc->data_dir,
            utl ? "etcdutl" : "etcdctl", (double)(t1 - t0) / 1e6, sc->hostname, token, (long long)gen);
        return SUB_OK;
}

int cmd_restore(int argc, char **argv) {
        return sub_run_offline(&restore_spec, argc, argv, restore_run);
}
