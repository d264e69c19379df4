/* cmd_status.c: `mgmt-supervisor status`: the whole cluster in one table
 * (or the --json document), once or redrawn on every etcd event under /_mgmt/. */
#include <stdio.h>
#include <unistd.h>

#include "clusterstatus.h"
#include "keys.h"
#include "log.h"
#include "strv.h"
#include "supervisor.h"

enum {
        STOPT_SEEDS,
        STOPT_JSON,
        STOPT_WATCH,
        STOPT_CERT,
        STOPT_KEY,
        STOPT_CA,
        STOPT_ETCD_USER,
        STOPT_ETCD_PASSWORD_FILE,
        _STOPT_MAX,
};

static const struct opt_def status_opts[_STOPT_MAX] = {
    [STOPT_SEEDS] = {"seeds", NULL, OPT_URLS, "URLS", "http://127.0.0.1:2379",
                     "etcd client URLs of the cluster (any member or seed), split on , ; or space"},
    [STOPT_JSON] = {"json", NULL, OPT_BOOL, NULL, NULL,
                    "print the status document as JSON (schema in mgmt-supervisor(8))"},
    [STOPT_WATCH] = {"watch", NULL, OPT_BOOL, NULL, NULL,
                     "print again on every change under /_mgmt/ (etcd watch events), until interrupted"},
    [STOPT_CERT] = {"cert-file", NULL, OPT_STRING, "FILE", NULL, "TLS client certificate for etcd"},
    [STOPT_KEY] = {"key-file", NULL, OPT_STRING, "FILE", NULL, "TLS client key for etcd"},
    [STOPT_CA] = {"trusted-ca-file", NULL, OPT_STRING, "FILE", NULL,
                  "CA certificate to verify etcd's TLS certificate"},
    [STOPT_ETCD_USER] = {"etcd-user", NULL, OPT_STRING, "NAME", NULL,
                         "authenticate to etcd as this user (any user that may read /_mgmt/, e.g. root "
                         "or deployer)"},
    [STOPT_ETCD_PASSWORD_FILE] = {"etcd-password-file", NULL, OPT_STRING, "FILE", NULL,
                                  "the etcd user's password, from FILE (mode 0600, one line)"},
};

static const char status_usage[] =
    "Usage: mgmt-supervisor status [--seeds URLS] [--json] [--watch] [TLS flags]\n"
    "\n"
    "Print the whole cluster: cluster id and generation, ideal size, voters, failure\n"
    "tolerance (voters - quorum), the coordinator and its plan (/_mgmt/plan: what it\n"
    "does next or why it waits); then one row per host, sorted by name: role (member,\n"
    "learner, volunteer, client, gone), member id, leader, healthy (the member's own\n"
    "/health and maintenance status), raft index lag, db size, etcd version, the\n"
    "agent's deploy id and state, and the age of the newest snapshot. Works from any\n"
    "machine that can reach the cluster's client URLs.\n";

static const char status_footer[] = "\nExit status: 0 ok, 1 error (no seed answered), 2 usage.\n";

struct status_run {
        struct etcd_client *c;
        struct cluster_status_gather *g;
        struct etcd_watch *w;
        bool json, watch, tty, done, again;
        int rc;
        int64_t revision;
};

static void print_doc(struct status_run *s, json_t *doc) {
        if (s->json) {
                json_dumpf(doc, stdout, s->watch ? JSON_COMPACT : JSON_INDENT(2));
                fputc('\n', stdout);
        } else {
                if (s->watch && s->tty)
                        fputs("\033[H\033[2J", stdout);
                else if (s->watch)
                        fputc('\n', stdout);
                cluster_status_render(doc, time(NULL), stdout);
        }
        fflush(stdout);
}

static void start_gather(struct status_run *s);
static void start_watch(struct status_run *s);

static void gathered(json_t *doc, const char *error, void *userdata) {
        struct status_run *s = userdata;

        s->g = NULL;
        if (!doc) {
                log_errorx("%s", error);
                s->rc = 1;
        } else {
                json_int_t rev = json_integer_value(json_object_get(doc, CS_REVISION));
                if (rev > s->revision)
                        s->revision = rev;
                print_doc(s, doc);
                s->rc = 0;
        }
        if (!s->watch || (!doc && !s->w)) {
                /* once, or the first table failed: a dead seed fails fast */
                s->done = true;
                return;
        }
        if (!s->w)
                start_watch(s);
        if (s->again) {
                s->again = false;
                start_gather(s);
        }
}

static void start_gather(struct status_run *s) {
        if (s->g) {
                s->again = true;
                return;
        }
        int r = cluster_status_gather(s->c, gathered, s, &s->g);
        if (r < 0) {
                log_error_errno(r, "cannot ask the cluster for its status: %m");
                s->rc = 1;
                s->done = true;
        }
}

static void watch_cb(struct etcd_watch *w, const struct etcd_error *err, const struct etcd_watch_msg *msg,
                     void *userdata) {
        struct status_run *s = userdata;

        if (err && msg && msg->compact_revision > 0) {
                /* fell behind a compaction: read everything again and watch from now */
                etcd_watch_free(s->w);
                s->w = NULL;
                s->revision = 0;
                start_watch(s);
                start_gather(s);
                return;
        }
        if (err) {
                log_warnx("watch of '%s' interrupted, reconnecting: %s", MGMT_NS "/", err->msg);
                return;
        }
        start_gather(s);
}

static void start_watch(struct status_run *s) {
        if (etcd_watch_new(s->c, MGMT_NS "/", true, s->revision ? s->revision + 1 : 0, watch_cb, s, &s->w) <
            0) {
                log_errorx("cannot watch '%s'", MGMT_NS "/");
                s->rc = 1;
                s->done = true;
        }
}

int cmd_status(int argc, char **argv) {
        struct config cfg;
        struct status_run s = {.rc = 1};
        int r;

        r = config_parse(&cfg, "mgmt-supervisor status", MGMT_VERSION, status_usage, status_footer,
                         status_opts, _STOPT_MAX, argc, argv);
        if (r != 0) {
                config_free(&cfg);
                return r == CONFIG_EXIT_OK ? 0 : r == CONFIG_EXIT_USAGE ? 2 : 1;
        }
        if (strv_length(cfg.args) > 0) {
                fprintf(stderr,
                        "mgmt-supervisor status: unexpected argument '%s' (see 'mgmt-supervisor status "
                        "--help')\n",
                        cfg.args[0]);
                config_free(&cfg);
                return 2;
        }
        struct etcd_tls tls = {
            .cert_file = cfg.v[STOPT_CERT].s,
            .key_file = cfg.v[STOPT_KEY].s,
            .ca_file = cfg.v[STOPT_CA].s,
        };
        if (!!tls.cert_file != !!tls.key_file) {
                fprintf(stderr,
                        "mgmt-supervisor status: --cert-file and --key-file must be given together\n");
                config_free(&cfg);
                return 2;
        }
        s.json = cfg.v[STOPT_JSON].b;
        s.watch = cfg.v[STOPT_WATCH].b;
        s.tty = isatty(STDOUT_FILENO);
        r = etcd_client_new(NULL, cfg.v[STOPT_SEEDS].list, &tls, &s.c);
        if (r < 0) {
                log_error_errno(r, "cannot set up the etcd client: %m");
                config_free(&cfg);
                return 1;
        }
        char aerr[512];
        r = etcd_client_login_file(s.c, cfg.v[STOPT_ETCD_USER].s, cfg.v[STOPT_ETCD_PASSWORD_FILE].s, aerr,
                                   sizeof aerr);
        if (r < 0) {
                log_errorx("%s", aerr);
                etcd_client_free(s.c);
                config_free(&cfg);
                return 1;
        }
        /* a member that does not answer must not hold the whole table up */
        etcd_client_set_timeout(s.c, 3 * USEC_PER_SEC);
        start_gather(&s);
        r = etcd_run_until(s.c, &s.done, UINT64_MAX);
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");
        if (s.g)
                cluster_status_cancel(s.g);
        if (s.w)
                etcd_watch_free(s.w);
        cluster_status_abandon(s.c);
        etcd_client_free(s.c);
        config_free(&cfg);
        return r < 0 ? 1 : s.rc;
}
