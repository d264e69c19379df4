/* main.c: mgmt-agent entry point: flags, the three modes, signals, sd_notify,
 * and the glue between the engine and the cluster parts. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "daemon.h"
#include "clusterstatus.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

enum {
        OPT_HOSTNAME_,
        OPT_SEEDS,
        OPT_PREFIX,
        OPT_FILE,
        OPT_ONCE,
        OPT_CHECK,
        OPT_NOOP,
        OPT_CONVERGED_TIMEOUT,
        OPT_CERT_FILE,
        OPT_KEY_FILE,
        OPT_TRUSTED_CA_FILE,
        OPT_TRUSTED_KEYS,
        OPT_METRICS_LISTEN,
        OPT_ETCD_USER,
        OPT_ETCD_PASSWORD_FILE,
        _OPT_MAX,
};

static const struct opt_def opts[] = {
    [OPT_HOSTNAME_] = {"hostname", NULL, OPT_HOSTNAME, "NAME", NULL,
                       "name of this host in the cluster (default: the system hostname)", 0, 0},
    [OPT_SEEDS] = {"seeds", NULL, OPT_URLS, "URLS", NULL,
                   "etcd client URLs to connect to; without it, --file --once is required", 0, 0},
    [OPT_PREFIX] = {"prefix", NULL, OPT_STRING, "DIR", NULL,
                    "state directory; the agent keeps its last status in DIR/status.json", 0, 0},
    [OPT_FILE] = {"file", NULL, OPT_STRING, "GRAPH", NULL,
                  "run this local graph (YAML) instead of following deploys", 0, 0},
    [OPT_ONCE] = {"once", NULL, OPT_BOOL, NULL, NULL,
                  "with --file and no --seeds: apply the graph once and exit (0 converged, 1 failed)", 0, 0},
    [OPT_CHECK] = {"check", NULL, OPT_BOOL, NULL, NULL,
                   "with --file: validate the graph (every error, FILE:LINE:COL) and exit 0 valid, 1 not; "
                   "needs no cluster",
                   0, 0},
    [OPT_NOOP] = {"noop", NULL, OPT_BOOL, NULL, NULL,
                  "check only: report per resource what would change, never change anything", 0, 0},
    [OPT_CONVERGED_TIMEOUT] = {"converged-timeout", NULL, OPT_STRING, "S", NULL,
                               "exit 0 after being converged for S seconds (-1 or unset: never)", 0, 0},
    [OPT_CERT_FILE] = {"cert-file", NULL, OPT_STRING, "FILE", NULL, "TLS client certificate for etcd", 0, 0},
    [OPT_KEY_FILE] = {"key-file", NULL, OPT_STRING, "FILE", NULL, "TLS client key for etcd", 0, 0},
    [OPT_TRUSTED_CA_FILE] = {"trusted-ca-file", NULL, OPT_STRING, "FILE", NULL,
                             "CA bundle to verify etcd's certificate", 0, 0},
    [OPT_TRUSTED_KEYS] = {"trusted-keys", NULL, OPT_STRING, "FILE|DIR", NULL,
                          "apply only deploys signed by this Ed25519 public key or any DIR/*.pub; "
                          "unset: deploys run unchecked",
                          0, 0},
    [OPT_METRICS_LISTEN] = {"metrics-listen", NULL, OPT_STRING, "ADDR:PORT", NULL,
                            "serve /metrics (Prometheus), /health and /status (JSON) on ADDR:PORT "
                            "([ADDR]:PORT for IPv6, *:PORT for all); default off",
                            0, 0},
    [OPT_ETCD_USER] = {"etcd-user", NULL, OPT_STRING, "NAME", NULL,
                       "authenticate to etcd as this user (default with --etcd-password-file: host-NAME, "
                       "NAME this host's name)",
                       0, 0},
    [OPT_ETCD_PASSWORD_FILE] = {"etcd-password-file", NULL, OPT_STRING, "FILE", NULL,
                                "the etcd user's password, from FILE (mode 0600, one line; the file the "
                                "supervisor's --auth-host-password-file names)",
                                0, 0},
};

static const char usage[] = "usage: mgmt-agent --seeds URLS [--file GRAPH] [OPTIONS]\n"
                            "       mgmt-agent --file GRAPH --once [--noop] [OPTIONS]\n"
                            "       mgmt-agent --file GRAPH --check\n"
                            "\n"
                            "Apply resource graphs to this host. With --seeds only, follow the deploys\n"
                            "written by mgmt-deploy; with --seeds --file, run the local graph through the\n"
                            "cluster (exporting and collecting) until a newer deploy arrives; with\n"
                            "--file --once, apply the graph locally with no cluster and exit; with\n"
                            "--file --check, only validate the graph. --noop checks without changing.\n";

static const char footer[] = "\n"
                             "Every flag has an environment twin (--seeds: MGMT_SEEDS) and a key in the\n"
                             "--config YAML file; precedence: flag > environment > file > default.\n"
                             "Exit status: 0 done (or converged), 1 failure, 2 usage error.\n";

/* --converged-timeout: seconds (decimal allowed), or -1 for never (as in mgmt). */
static int parse_converged_timeout(const char *s, uint64_t *ret) {
        char *end = NULL;
        double d;

        *ret = 0;
        if (!s || streq(s, "-1"))
                return 0;
        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || end == s || *end || !(d >= 0) || d > 1e9)
                return -EINVAL;
        *ret = (uint64_t)(d * 1e6);
        return 0;
}

/* Load and validate a graph file, logging every error on its own line. */
static int load_graph(const char *file, struct graph **ret) {
        _cleanup_free_ char *err = malloc(GRAPH_ERR_LEN);
        int r;

        if (!err)
                return log_error_errno(-ENOMEM, "out of memory");
        err[0] = 0;
        r = graph_load_file(file, ret, NULL, err, GRAPH_ERR_LEN);
        if (r == -ENOMEM)
                return log_error_errno(r, "cannot load graph '%s': %m", file);
        if (r < 0)
                log_lines(LOG_ERR, "invalid graph: ", err);
        return r;
}

/* --check: validate the graph and ${hostname} substitution, no cluster. */
static int agent_check(struct config *cfg) {
        const char *file = cfg->v[OPT_FILE].s;
        const char *host = cfg->v[OPT_HOSTNAME_].s ? cfg->v[OPT_HOSTNAME_].s : "localhost";
        struct graph *g = NULL;
        char err[1024] = "";
        int r;

        r = load_graph(file, &g);
        if (r < 0)
                return 1;
        r = graph_subst_hostname(g, host, err, sizeof err);
        if (r < 0) {
                log_errorx("invalid graph: %s:%s (after ${hostname} substitution)", file, err);
                graph_free(g);
                return 1;
        }
        printf("%s: graph '%s' is valid: %zu resources, %zu edges, %zu collects\n", file, g->name, g->n_res,
               g->n_edges, g->n_collect);
        graph_free(g);
        return 0;
}

/* The agent's settings from the configuration: its name, modes and trust. */
static int agent_configure(struct agent *a, struct config *cfg) {
        char err[1024] = "";
        int r;

        r = node_hostname(cfg->v[OPT_HOSTNAME_].s, &a->hostname, err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        log_set_field("MGMT_HOST", a->hostname);
        a->once = cfg->v[OPT_ONCE].b;
        a->noop = cfg->v[OPT_NOOP].b;
        a->prefix = cfg->v[OPT_PREFIX].s;
        (void)parse_converged_timeout(cfg->v[OPT_CONVERGED_TIMEOUT].s, &a->converged_timeout);
        if (a->once && cfg->v[OPT_TRUSTED_KEYS].s)
                log_notice("--trusted-keys does not apply to --once: the local graph is trusted as given");
        if (!a->once && agent_trust_load(a, cfg->v[OPT_TRUSTED_KEYS].s) < 0) {
                free(a->hostname);
                a->hostname = NULL;
                return -EINVAL;
        }
        if (cfg->v[OPT_PREFIX].s) {
                r = mkdir_p(cfg->v[OPT_PREFIX].s, 0755);
                if (r < 0)
                        log_warn_errno(r, "cannot create state directory '%s': %m", cfg->v[OPT_PREFIX].s);
        }
        return 0;
}

static void on_stop(void *userdata) {
        agent_exit(userdata, 0);
}

/* SIGHUP: check and repair every managed resource now (a hangup must not
 * kill the agent, whose default action for it would be to exit). */
static void on_hup(void *userdata) {
        log_notice("received SIGHUP: checking every resource again");
        agent_graph_changed(userdata);
}

/* The event loop with its signals, the resource engine and the metrics
 * listener: everything the agent runs on, whether or not there is a cluster. */
static int agent_loop_new(struct agent *a, struct config *cfg) {
        int r;

        daemon_block_signals();
        r = sd_event_default(&a->event);
        if (r < 0)
                return log_error_errno(r, "cannot create event loop: %m");
        r = daemon_add_signals(a->event, on_stop, on_hup, a);
        if (r < 0)
                return log_error_errno(r, "cannot watch signals: %m");
        (void)sd_event_set_watchdog(a->event, true);

        r = engine_new(a->event, !a->once, agent_on_engine_state, a, &a->engine);
        if (r < 0)
                return log_error_errno(r, "cannot create resource engine: %m");

        engine_set_noop(a->engine, cfg->v[OPT_NOOP].b);
        if (cfg->v[OPT_NOOP].b)
                log_notice("noop: checking only, nothing will be changed");
        return agent_listener_start(a, cfg->v[OPT_METRICS_LISTEN].s);
}

/* --file: the local graph with ${hostname} substituted. */
static int agent_load_file(struct agent *a, const char *file, struct graph **ret) {
        struct graph *g = NULL;
        char err[1024] = "";
        int r;

        r = load_graph(file, &g);
        if (r < 0)
                return r;
        r = graph_subst_hostname(g, a->hostname, err, sizeof err);
        if (r < 0) {
                graph_free(g);
                if (r == -EINVAL)
                        log_errorx("invalid graph: %s:%s (after ${hostname} substitution)", file, err);
                else
                        log_error_errno(r, "cannot substitute ${hostname}: %m");
                return r;
        }
        log_info("loaded graph '%s' from '%s' (%zu resources)", g->name ? g->name : "", file, g->n_res);
        *ret = g;
        return 0;
}

/* The etcd user of the agent: --etcd-user, or host-<hostname> when only the
 * password file is given (the user the host's supervisor creates). */
static int agent_login(struct agent *a, const char *user, const char *password_file, const char *cert_file) {
        _cleanup_free_ char *def = NULL;
        char err[512];
        int r;

        if (password_file && !user) {
                if (asprintf(&def, "host-%s", a->hostname) < 0)
                        return log_error_errno(-ENOMEM, "out of memory");
                user = def;
        }
        r = etcd_client_login_file(a->etcd, user, password_file, err, sizeof err);
        if (r >= 0 && user)
                r = etcd_auth_check_cert(cert_file, "--cert-file", err, sizeof err);
        if (r < 0) {
                log_errorx("%s", err);
                return r;
        }
        if (user)
                log_info("talking to etcd as user '%s'", user);
        return 0;
}

/* --seeds: the etcd client, then status, endpoints, exchange and deploys.
 * Takes g (the --file graph, may be NULL). */
static int agent_join(struct agent *a, struct config *cfg, struct graph *g) {
        struct etcd_tls tls = {
            .cert_file = cfg->v[OPT_CERT_FILE].s,
            .key_file = cfg->v[OPT_KEY_FILE].s,
            .ca_file = cfg->v[OPT_TRUSTED_CA_FILE].s,
        };
        int r;

        a->seeds = strv_copy(cfg->v[OPT_SEEDS].list);
        r = a->seeds ? etcd_client_new(a->event, a->seeds, &tls, &a->etcd) : -ENOMEM;
        if (r < 0) {
                if (g)
                        graph_free(g);
                return log_error_errno(r, "cannot create etcd client: %m");
        }
        r = agent_login(a, cfg->v[OPT_ETCD_USER].s, cfg->v[OPT_ETCD_PASSWORD_FILE].s, tls.cert_file);
        if (r < 0) {
                if (g)
                        graph_free(g);
                return r;
        }
        log_info("host '%s' joining cluster via %s", a->hostname, cfg->v[OPT_SEEDS].s);
        if (g) {
                a->file_until = 0; /* set to the highest deploy id once read */
                agent_set_base(a, g, 0);
        }
        if ((r = agent_status_start(a)) < 0 || (r = agent_endpoints_start(a)) < 0 ||
            (r = agent_exchange_start(a)) < 0 || (r = agent_deploys_start(a)) < 0)
                return log_error_errno(r, "cannot start: %m");
        return 0;
}

/* Everything agent_run set up, in reverse. */
static void agent_teardown(struct agent *a) {
        agent_listener_stop();
        engine_free(a->engine);
        a->engine = NULL;
        if (a->etcd) {
                etcd_watch_free(a->deploy_watch);
                etcd_watch_free(a->exported_watch);
                etcd_watch_free(a->endpoints_watch);
                cluster_status_abandon(a->etcd);
                etcd_client_free(a->etcd);
        }
        agent_collected_free_all(a);
        agent_trust_free(a);
        if (a->base)
                graph_free(a->base);
        sd_event_source_unref(a->converged_timer);
        sd_event_source_unref(a->keepalive_timer);
        sd_event_unref(a->event);
        strv_free(a->seeds);
        free(a->status_sent);
        strv_free(a->endpoints_bad);
        free(a->endpoints_set);
        free(a->deploy_error);
        free(a->hostname);
}

static int agent_run(struct config *cfg) {
        struct agent a = {.exit_code = 1, .file_until = -1};
        const char *file = cfg->v[OPT_FILE].s;
        struct graph *g = NULL;
        int r;

        r = agent_configure(&a, cfg);
        if (r < 0)
                return r;
        r = agent_loop_new(&a, cfg);
        if (r < 0)
                goto out;
        if (file && (r = agent_load_file(&a, file, &g)) < 0)
                goto out;
        if (a.once)
                agent_set_base(&a, g, 0);
        else if ((r = agent_join(&a, cfg, g)) < 0)
                goto out;

        r = sd_event_loop(a.event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");
        else
                r = a.exit_code;
out:
        agent_teardown(&a);
        return r;
}

int main(int argc, char **argv) {
        struct config cfg = {0};
        int r;

        log_init("mgmt-agent");
        r = config_parse(&cfg, "mgmt-agent", MGMT_VERSION, usage, footer, opts, ELEMENTSOF(opts), argc,
                         argv);
        if (r != 0) {
                config_free(&cfg);
                if (r < 0) {
                        log_error_errno(r, "cannot parse configuration: %m");
                        return 1;
                }
                return r == CONFIG_EXIT_OK ? 0 : 2;
        }
        if (cfg.log_level && log_set_level_str(cfg.log_level) < 0) {
                fprintf(stderr, "mgmt-agent: invalid --log-level '%s'\n", cfg.log_level);
                config_free(&cfg);
                return 2;
        }
        const char *problem = NULL;
        if (cfg.args && cfg.args[0])
                problem = "unexpected argument";
        else if (cfg.v[OPT_CHECK].b && !cfg.v[OPT_FILE].s)
                problem = "--check needs --file GRAPH";
        else if (cfg.v[OPT_CHECK].b) {
                r = agent_check(&cfg);
                config_free(&cfg);
                return r;
        } else if (cfg.v[OPT_ONCE].b && !cfg.v[OPT_FILE].s)
                problem = "--once needs --file GRAPH";
        else if (cfg.v[OPT_ONCE].b && cfg.v[OPT_SEEDS].list)
                problem = "--once applies a graph locally: it does not take --seeds";
        else if (!cfg.v[OPT_ONCE].b && !cfg.v[OPT_SEEDS].list)
                problem =
                    cfg.v[OPT_FILE].s ? "--file without --seeds needs --once" : "--seeds URLS is required";
        uint64_t ct;
        if (!problem && parse_converged_timeout(cfg.v[OPT_CONVERGED_TIMEOUT].s, &ct) < 0)
                problem = "invalid --converged-timeout: expected seconds (e.g. 30 or 0.5) or -1";
        if (problem) {
                fprintf(stderr, "mgmt-agent: %s%s%s\nTry 'mgmt-agent --help'.\n", problem,
                        cfg.args && cfg.args[0] ? " " : "", cfg.args && cfg.args[0] ? cfg.args[0] : "");
                config_free(&cfg);
                return 2;
        }

        r = agent_run(&cfg);
        config_free(&cfg);
        return r < 0 ? 1 : r;
}
