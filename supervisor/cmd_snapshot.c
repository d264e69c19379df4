/* cmd_snapshot.c: `mgmt-supervisor snapshot save FILE` (a snapshot of the
 * cluster through the gateway, from any machine that reaches it) and
 * `snapshot list` (the snapshots in this host's snapshot directory). */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "etcdsnap.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"
#include "util.h"

static const int snapshot_opts[] = {OPT_SEEDS,
                                    OPT_CERT,
                                    OPT_KEY,
                                    OPT_CA,
                                    SOPT_TIMEOUT,
                                    OPT_ETCD_BINARY,
                                    OPT_PREFIX,
                                    OPT_SNAPSHOT_DIR,
                                    SOPT_JSON,
                                    OPT_AUTH_ROOT_PASSWORD_FILE,
                                    -1};

static const struct sub_spec snapshot_spec = {
    "snapshot",
    "Usage: mgmt-supervisor snapshot save FILE [--seeds URLS] [TLS OPTIONS]\n"
    "       mgmt-supervisor snapshot list [--prefix DIR] [--snapshot-dir DIR] [--json]\n"
    "\n"
    "save: stream a snapshot of the cluster from the first of --seeds that answers\n"
    "(default: --client-urls, http://127.0.0.1:2379) through etcd's gateway\n"
    "(/v3/maintenance/snapshot) into a temp file beside FILE, never holding it in\n"
    "memory; fsync it, check the sha256 etcd appends and let etcd's own tool\n"
    "(etcdutl snapshot status on 3.5+, etcdctl on 3.4) open it, then rename it to\n"
    "FILE. An existing FILE is never replaced. Prints FILE, its size, revision and\n"
    "sha256 (JSON with --json).\n"
    "\n"
    "list: the snapshots in the snapshot directory (default PREFIX/snapshots), oldest\n"
    "first: time, revision, size, whether it passed verification when taken, file.\n",
    snapshot_opts,
};

struct save_state {
        bool done;
        struct etcd_error err;
        bool failed;
};

static void save_done(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *ud) {
        struct save_state *s = ud;
        s->done = true;
        if (err) {
                s->failed = true;
                s->err = *err;
        }
}

int snapshot_fetch(struct etcd_client *c, const char *endpoint, const char *path, const char *etcd_binary,
                   struct snap_info *ret, char *err, size_t errlen) {
        struct snap_sink *sink = NULL;
        struct save_state st = {0};
        _cleanup_free_ char *tool = NULL;
        struct snap_info info = {0};
        int r;

        r = snap_tool_find(etcd_binary, &tool, NULL);
        if (r < 0) {
                snprintf(err, errlen, "cannot verify snapshots: neither etcdutl nor etcdctl is installed");
                return r;
        }
        r = snap_sink_open(path, &sink);
        if (r < 0) {
                snprintf(err, errlen, "cannot create a temp file beside '%s': %s", path, strerror(-r));
                return r;
        }
        r = etcd_stream_raw(c, endpoint, ETCD_SNAPSHOT, NULL, snap_sink_feed_cb, sink, save_done, &st);
        if (r >= 0)
                r = etcd_run_until(c, &st.done, UINT64_MAX);
        if (r < 0) {
                snprintf(err, errlen, "cannot start the snapshot stream: %s", strerror(-r));
                goto out;
        }
        if (st.failed || snap_sink_error(sink)) {
                snprintf(err, errlen, "%s", snap_sink_error(sink) ? snap_sink_error(sink) : st.err.msg);
                r = -EIO;
                goto out;
        }
        r = snap_sink_finish(sink, &info, err, errlen);
        if (r < 0)
                goto out;
        r = snap_tool_status(tool, snap_sink_temp_path(sink), &info, err, errlen);
        if (r < 0)
                goto out;
        r = snap_sink_commit(sink);
        if (r < 0) {
                snprintf(err, errlen, "cannot rename the snapshot to '%s': %s", path, strerror(-r));
                goto out;
        }
        *ret = info;
out:
        snap_sink_free(sink);
        return r;
}

static int snapshot_save(struct config *cfg, const char *path) {
        struct etcd_tls tls = {cfg->v[OPT_CERT].s, cfg->v[OPT_KEY].s, cfg->v[OPT_CA].s};
        char *const *eps = cfg->v[OPT_SEEDS].list ? cfg->v[OPT_SEEDS].list : cfg->v[OPT_CLIENT_URLS].list;
        _cleanup_etcd_ struct etcd_client *c = NULL;
        struct snap_info info = {0};
        char err[1024];
        struct stat st;
        int r;

        if (!!tls.cert_file != !!tls.key_file) {
                log_errorx("--cert-file and --key-file must be given together");
                return SUB_USAGE;
        }
        if (lstat(path, &st) == 0) {
                log_errorx("'%s' already exists: not replacing it (remove it or give another name)", path);
                return SUB_ERROR;
        }
        r = etcd_client_new(NULL, eps, &tls, &c);
        if (r < 0) {
                log_error_errno(r, "cannot set up the etcd client: %m");
                return SUB_ERROR;
        }
        if (cfg->v[OPT_AUTH_ROOT_PASSWORD_FILE].s) {
                struct sup_config asc = {.auth_root_pw_file = cfg->v[OPT_AUTH_ROOT_PASSWORD_FILE].s};
                if (auth_client_login(c, &asc) < 0)
                        return SUB_ERROR;
        }
        etcd_client_set_timeout(c, (uint64_t)cfg->v[SOPT_TIMEOUT].n ? (uint64_t)cfg->v[SOPT_TIMEOUT].n
                                                                    : 60 * USEC_PER_SEC);
        r = snapshot_fetch(c, NULL, path, cfg->v[OPT_ETCD_BINARY].s, &info, err, sizeof err);
        if (r < 0) {
                log_errorx("snapshot '%s' failed: %s", path, err);
                return SUB_ERROR;
        }
        if (cfg->v[SOPT_JSON].b) {
                json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:s}", "file", path, "size",
                                      (json_int_t)info.size, "revision", (json_int_t)info.revision, "keys",
                                      (json_int_t)info.total_keys, "sha256", info.sha256);
                json_dumpf(j, stdout, JSON_COMPACT);
                putchar('\n');
                json_decref(j);
        } else
                printf("%s: %llu bytes, revision %lld, %lld keys, sha256 %s\n", path,
                       (unsigned long long)info.size, (long long)info.revision, (long long)info.total_keys,
                       info.sha256);
        return SUB_OK;
}

static int snapshot_list(struct config *cfg) {
        _cleanup_free_ char *dir = sub_snapshot_dir(cfg);
        _cleanup_strv_ char **names = NULL;
        bool json = cfg->v[SOPT_JSON].b;
        json_t *arr = json_array();
        int r;

        if (!dir || !arr)
                return SUB_ERROR;
        r = snapshot_dir_list(dir, &names);
        if (r == -ENOENT)
                names = NULL; /* no snapshot taken yet */
        else if (r < 0) {
                log_error_errno(r, "cannot list snapshot directory '%s': %m", dir);
                json_decref(arr);
                return SUB_ERROR;
        }
        if (!json)
                printf("%-20s %10s %12s %-8s %s\n", "TIME", "REVISION", "SIZE", "VERIFIED", "FILE");
        for (size_t i = 0; names && names[i]; i++) {
                _cleanup_free_ char *path = NULL, *side = NULL, *text = NULL;
                struct stat st;
                json_t *rec = NULL;
                if (asprintf(&path, "%s/%s", dir, names[i]) < 0 || asprintf(&side, "%s.json", path) < 0)
                        break;
                if (stat(path, &st) < 0)
                        continue;
                if (read_file_max(side, 65536, &text, NULL) >= 0)
                        rec = json_loads(text, 0, NULL);
                /* the record is written only for a snapshot that passed verification */
                json_t *t = json_object_get(rec, "time"), *rev = json_object_get(rec, "revision");
                json_t *sz = json_object_get(rec, "size");
                bool verified =
                    rec && json_is_integer(sz) && (uint64_t)json_integer_value(sz) == (uint64_t)st.st_size;
                char tbuf[32];
                struct tm tm;
                time_t mt = st.st_mtime;
                strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&mt, &tm));
                const char *ts = json_is_string(t) ? json_string_value(t) : tbuf;
                if (json) {
                        json_t *o = json_pack("{s:s, s:I, s:b, s:s}", "time", ts, "size",
                                              (json_int_t)st.st_size, "verified", verified, "file", path);
                        if (json_is_integer(rev))
                                json_object_set(o, "revision", rev);
                        json_t *sha = json_object_get(rec, "sha256");
                        if (json_is_string(sha))
                                json_object_set(o, "sha256", sha);
                        json_array_append_new(arr, o);
                } else {
                        char revs[32] = "-";
                        if (json_is_integer(rev))
                                snprintf(revs, sizeof revs, "%lld", (long long)json_integer_value(rev));
                        printf("%-20s %10s %12lld %-8s %s\n", ts, revs, (long long)st.st_size,
                               verified ? "yes" : "unknown", path);
                }
                json_decref(rec);
        }
        if (json) {
                json_dumpf(arr, stdout, JSON_COMPACT);
                putchar('\n');
        }
        json_decref(arr);
        return SUB_OK;
}

int cmd_snapshot(int argc, char **argv) {
        struct config cfg = {0};
        int r = sub_parse(&snapshot_spec, argc, argv, &cfg);
        size_t n;

        if (r >= 0)
                goto out;
        n = strv_length(cfg.args);
        if (n >= 1 && streq(cfg.args[0], "save") && n == 2) {
                r = snapshot_save(&cfg, cfg.args[1]);
        } else if (n == 1 && streq(cfg.args[0], "list"))
                r = snapshot_list(&cfg);
        else {
                fprintf(stderr,
                        "mgmt-supervisor snapshot: expected 'save FILE' or 'list' (see 'mgmt-supervisor "
                        "help snapshot')\n");
                r = SUB_USAGE;
        }
out:
        config_free(&cfg);
        return r;
}
