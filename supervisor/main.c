/* main.c: mgmt-supervisor entry point: the subcommand table (git style, as
 * mgmt-deploy's), the daemon start-up (`run`, the default): options,
 * logging, the sd-event loop and its signals; everything else of the daemon
 * happens in node.c on that loop. */
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "strv.h"
#include "subcmd.h"
#include "supervisor.h"
#include "util.h"

#define PROG "mgmt-supervisor"

/* To add a command: one line here, its prototype in supervisor.h. */
static const struct subcmd commands[] = {
    {"run", cmd_run, "[OPTIONS]", "run the daemon (the default when no command is given)"},
    {"snapshot", cmd_snapshot, "save FILE | list", "save a snapshot of the cluster, or list local ones"},
    {"restore", cmd_restore, "--from FILE", "build this host's etcd data from a snapshot (daemon stopped)"},
    {"recover", cmd_recover, "[--yes]", "make this survivor of a lost quorum a one-member cluster"},
    {"status", cmd_status, "[--json] [--watch]",
     "the whole cluster at a glance, with the coordinator's plan"},
    {"help", NULL, "[COMMAND]", "print the help of mgmt-supervisor or of COMMAND"},
};

static const char usage_head[] =
    "Usage: mgmt-supervisor [run] [OPTIONS]\n"
    "       mgmt-supervisor COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Runs on every node. Without --seeds and without data it bootstraps a one-member etcd\n"
    "cluster; with --seeds it joins as a client and volunteers. The supervisor whose etcd\n"
    "is the raft leader acts as coordinator and grows or shrinks the cluster to\n"
    "/_mgmt/idealClusterSize, replacing dead members. etcd runs as a child process.\n"
    "\n";

static const char footer[] =
    "\nSignals: SIGTERM/SIGINT stop etcd keeping data and membership; SIGHUP re-reads --config.\n"
    "Exit status: 0 stopped cleanly, 1 error (e.g. duplicate hostname), 2 usage.\n"
    "'mgmt-supervisor help COMMAND' prints the help of an operator command.\n";

static void on_stop(void *ud) {
        node_shutdown(ud, 0);
}

static void on_hup(void *ud) {
        node_reload(ud);
}

/* The daemon: `mgmt-supervisor [run] [OPTIONS]`. */
int cmd_run(int argc, char **argv) {
        struct config cfg;
        struct sup_config sc = {0};
        sd_event *e = NULL;
        struct node *n = NULL;
        char err[1024], usage[4096];
        int r;

        subcmd_list(commands, ELEMENTSOF(commands), err, sizeof err);
        snprintf(usage, sizeof usage, "%s%s", usage_head, err);
        r = config_parse(&cfg, PROG, MGMT_VERSION, usage, footer, supervisor_opts, _OPT_MAX, argc, argv);
        if (r != 0) {
                config_free(&cfg);
                return r == CONFIG_EXIT_OK ? 0 : r == CONFIG_EXIT_USAGE ? 2 : 1;
        }
        if (strv_length(cfg.args) > 0) {
                fprintf(stderr, PROG ": unexpected argument '%s' (see '" PROG " --help')\n", cfg.args[0]);
                config_free(&cfg);
                return 2;
        }
        r = sup_config_from(&sc, &cfg, err, sizeof err);
        if (r < 0) {
                if (r == -EINVAL)
                        fprintf(stderr, PROG ": %s\n", err);
                else
                        fprintf(stderr, PROG ": %s\n", strerror(-r));
                sup_config_free(&sc);
                config_free(&cfg);
                return r == -EINVAL ? 2 : 1;
        }
        log_set_field("MGMT_HOST", sc.hostname);
        /* a certificate that does not cover what we advertise fails here, not in a peer's handshake */
        if ((sc.cert &&
             (r = tls_check_cert(sc.cert, "--cert-file", sc.adv_client_urls, err, sizeof err)) < 0) ||
            (sc.peer_cert && (r = tls_check_cert(sc.peer_cert, "--peer-cert-file", sc.adv_server_urls, err,
                                                 sizeof err)) < 0)) {
                fprintf(stderr, PROG ": %s\n", err);
                sup_config_free(&sc);
                config_free(&cfg);
                return 1;
        }

        daemon_block_signals();
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&e);
        if (r < 0)
                goto out;
        (void)sd_event_set_watchdog(e, true);
        r = node_new(e, &cfg, &sc, &n);
        if (r < 0)
                goto out;
        if ((r = daemon_add_signals(e, on_stop, on_hup, n)) < 0)
                goto out;
        if ((r = sup_listener_start(e, n, cfg.v[OPT_METRICS_LISTEN].s)) < 0)
                goto out;
        log_notice("mgmt-supervisor %s starting as '%s' (prefix %s)", MGMT_VERSION, sc.hostname, sc.prefix);
        r = node_start(n);
        if (r < 0)
                goto out;
        r = sd_event_loop(e);
out:
        sup_listener_stop();
        node_free(n);
        if (sc.tmp_prefix && sc.prefix) {
                /* --tmp-prefix is for tests and demos: nothing in it outlives us */
                int rr = rm_rf(sc.prefix);
                if (rr < 0)
                        log_warn_errno(rr, "cannot remove temporary prefix '%s': %m", sc.prefix);
                else
                        log_info("removed temporary prefix '%s'", sc.prefix);
        }
        sd_event_unref(e);
        sup_config_free(&sc);
        config_free(&cfg);
        if (r < 0) {
                log_error_errno(r, "exiting: %m");
                return 1;
        }
        return r;
}

int main(int argc, char **argv) {
        log_init(PROG);
        return subcmd_dispatch(PROG, commands, ELEMENTSOF(commands), "run", sub_all_opts(), _SOPT_MAX, argc,
                               argv);
}
