/* cmdopts.c: what every operator subcommand shares: the daemon's option
 * table plus the few command-only options, parsed the same way for every
 * command, and help printed from one place so that `help CMD`, `CMD --help`
 * and `CMD -h` are the same text. */
#include <stdio.h>

#include "log.h"
#include "supervisor.h"

const char sub_exit_codes[] = "\nExit status:\n"
                              "  0  done\n"
                              "  1  error (etcd unreachable, bad snapshot, cannot write...)\n"
                              "  2  usage error (or a confirmation needed and no terminal to ask on)\n"
                              "  3  refused because it is unsafe (e.g. the daemon runs, a quorum answers)\n";

/* Options only operator commands take; indexes SOPT_* after supervisor_opts. */
static const struct opt_def sub_extra_opts[_SOPT_MAX - _OPT_MAX] = {
    [SOPT_FROM - _OPT_MAX] = {"from", NULL, OPT_STRING, "FILE", NULL, "the snapshot file to restore"},
    [SOPT_YES - _OPT_MAX] = {"yes", NULL, OPT_BOOL, NULL, NULL, "do not ask for confirmation"},
    [SOPT_JSON - _OPT_MAX] = {"json", NULL, OPT_BOOL, NULL, NULL, "machine-readable JSON on stdout"},
    [SOPT_TIMEOUT - _OPT_MAX] = {"timeout", NULL, OPT_SECONDS, "S", "60",
                                 "give up when etcd sends nothing for S seconds"},
};

static struct opt_def all_opts[_SOPT_MAX];

const struct opt_def *sub_all_opts(void) {
        if (!all_opts[0].name) {
                memcpy(all_opts, supervisor_opts, sizeof supervisor_opts);
                memcpy(all_opts + _OPT_MAX, sub_extra_opts, sizeof sub_extra_opts);
        }
        return all_opts;
}

static void sub_print_help(const struct sub_spec *spec) {
        struct opt_def shown[_SOPT_MAX];
        size_t n = 0;

        for (size_t i = 0; spec->opts[i] >= 0; i++) {
                shown[n] = sub_all_opts()[spec->opts[i]];
                /* the daemon's words for --seeds speak of joining */
                if (spec->opts[i] == OPT_SEEDS)
                        shown[n].help =
                            "client URLs of the cluster, split on , ; or space (default: --client-urls)";
                n++;
        }
        config_print_help(stdout, spec->usage, sub_exit_codes, shown, n);
}

/* Parse a command's options with the daemon's whole table (so the daemon's
 * --config file and MGMT_* environment apply), refusing command-only
 * options the command does not take. Returns -1 to go on, else an exit code. */
int sub_parse(const struct sub_spec *spec, int argc, char **argv, struct config *cfg) {
        *cfg = (struct config){0};
        char prog[64];
        int r;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--"))
                        break;
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        sub_print_help(spec);
                        return SUB_OK;
                }
        }
        snprintf(prog, sizeof prog, "mgmt-supervisor %s", spec->name);
        r = config_parse(cfg, prog, MGMT_VERSION, spec->usage, sub_exit_codes, sub_all_opts(), _SOPT_MAX,
                         argc, argv);
        if (r == CONFIG_EXIT_OK)
                return SUB_OK;
        if (r == CONFIG_EXIT_USAGE)
                return SUB_USAGE;
        if (r < 0) {
                log_error_errno(r, "cannot parse options: %m");
                return SUB_ERROR;
        }
        for (int k = _OPT_MAX; k < _SOPT_MAX; k++) {
                bool taken = false;
                for (size_t i = 0; spec->opts[i] >= 0; i++)
                        taken = taken || spec->opts[i] == k;
                if (cfg->v[k].set && !taken) {
                        fprintf(stderr, "%s: '--%s' does not apply to '%s' (see '%s --help')\n", prog,
                                sub_all_opts()[k].name, spec->name, prog);
                        return SUB_USAGE;
                }
        }
        return -1;
}

char *sub_prefix(const struct config *cfg) {
        if (!cfg->v[OPT_PREFIX].set && getenv("STATE_DIRECTORY"))
                return strdup(getenv("STATE_DIRECTORY"));
        return strdup(cfg->v[OPT_PREFIX].s);
}

char *sub_snapshot_dir(const struct config *cfg) {
        _cleanup_free_ char *prefix = NULL;
        char *d;
        if (cfg->v[OPT_SNAPSHOT_DIR].s)
                return strdup(cfg->v[OPT_SNAPSHOT_DIR].s);
        prefix = sub_prefix(cfg);
        if (!prefix || asprintf(&d, "%s/snapshots", prefix) < 0)
                return NULL;
        return d;
}
