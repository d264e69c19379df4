/* main.c: mgmt-deploy entry point: global options, the subcommand table
 * (git style), and help texts that are identical at every level. */
#include <stdio.h>

#include "deployer.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"
#include "subcmd.h"

#define PROG "mgmt-deploy"

static const struct opt_def opts[_OPT_MAX] = {
    [OPT_SEEDS] = {"seeds", NULL, OPT_URLS, "URLS", "http://127.0.0.1:2379",
                   "etcd client URLs of the cluster, split on , ; or space"},
    [OPT_FORCE] = {"force", NULL, OPT_BOOL, NULL, NULL,
                   "deploy even when the graph is identical to the latest deploy"},
    [OPT_WAIT] =
        {"wait", NULL, OPT_BOOL, NULL, NULL,
         "after deploying, wait until every host converged on exactly this id (see mgmt-deploy(1))"},
    [OPT_TIMEOUT] = {"timeout", NULL, OPT_SECONDS, "S", "60",
                     "give up after S seconds (each etcd request, and --wait)"},
    [OPT_JSON] = {"json", NULL, OPT_BOOL, NULL, NULL, "machine-readable JSON output on stdout"},
    [OPT_CERT_FILE] = {"cert-file", NULL, OPT_STRING, "FILE", NULL, "TLS client certificate for etcd"},
    [OPT_KEY_FILE] = {"key-file", NULL, OPT_STRING, "FILE", NULL, "TLS client key for etcd"},
    [OPT_TRUSTED_CA_FILE] = {"trusted-ca-file", NULL, OPT_STRING, "FILE", NULL,
                             "CA certificate to verify etcd's TLS certificate"},
    [OPT_SIGN_KEY] = {"sign-key", NULL, OPT_STRING, "FILE", NULL,
                      "sign the deploy with this Ed25519 private key (see 'keygen')"},
    [OPT_HOSTS] = {"hosts", NULL, OPT_STRING, "H1,H2,...", NULL,
                   "with --wait: also wait for these hosts, reporting or not"},
    [OPT_MIN_HOSTS] = {"min-hosts", NULL, OPT_INT, "N", "0",
                       "with --wait: N converged hosts suffice, silent hosts are not waited for", 0,
                       1000000},
    [OPT_KEEP] = {"keep", NULL, OPT_INT, "N", "0",
                  "with prune: how many of the newest deploys to keep (>= 1)", 0, 1000000000},
    [OPT_ETCD_USER] = {"etcd-user", NULL, OPT_STRING, "NAME", NULL,
                       "authenticate to etcd as this user (with --etcd-password-file; e.g. deployer)"},
    [OPT_ETCD_PASSWORD_FILE] = {"etcd-password-file", NULL, OPT_STRING, "FILE", NULL,
                                "the etcd user's password, from FILE (mode 0600, one line)"},
};

struct command {
        const char *name;
        int (*run)(struct deployer *d);
        const char *args;
        unsigned min_args, max_args;
        const char *summary;
        const char *description;
};

static const struct command commands[] = {
    {"yaml", cmd_yaml, "FILE", 1, 1, "validate the graph in FILE and deploy it as the next id",
     "Read the graph in FILE ('-' for standard input), validate it completely\n"
     "(errors name FILE:LINE:COL; nothing is sent to etcd on any error), and\n"
     "write it as deploy N+1 in one etcd transaction that checks deploy N is\n"
     "still the latest. A lost race is retried with a fresh read (at most 10\n"
     "tries). A graph identical to the latest deploy is a successful no-op\n"
     "unless --force. Prints the deploy id on stdout (JSON with --json).\n"
     "With --sign-key FILE the record (id, previous hash, hash, graph) is\n"
     "signed with that Ed25519 key; agents run with --trusted-keys refuse\n"
     "anything not signed by a key they trust.\n"},
    {"validate", cmd_validate, "FILE", 1, 1, "validate the graph in FILE without a cluster",
     "Read the graph in FILE ('-' for standard input) and validate it completely,\n"
     "with no cluster: every error is printed, one 'FILE:LINE:COL: message' per\n"
     "line (at most 50, then how many more). Exit 0 if valid, 1 if not.\n"},
    {"empty", cmd_empty, "", 0, 0, "deploy an empty graph (agents remove nothing, apply nothing)",
     "Deploy the empty graph \"graph: empty\" as the next id, exactly like\n"
     "'yaml' would. Prints the deploy id on stdout (JSON with --json).\n"},
    {"list", cmd_list, "", 0, 0, "list every deploy: id, time, hash and origin",
     "List every deploy, oldest first: id, time, hash (first 12 hex digits;\n"
     "all of it with --json), and origin (host, CI commit and job URL).\n"},
    {"show", cmd_show, "[ID]", 0, 1, "print one deploy record and its graph (default: the latest)",
     "Print the record of deploy ID (default: the latest) followed by its\n"
     "graph text. With --json, print the stored JSON record.\n"},
    {"status", cmd_status, "", 0, 0, "print each agent's status: deploy id, state and time",
     "Print the status every agent reports under /_mgmt/status/: host,\n"
     "deploy id, state (applying, converged, failed), since when, and errors.\n"},
    {"keygen", cmd_keygen, "DIR", 1, 1, "write a new Ed25519 key pair for signing deploys into DIR",
     "Generate an Ed25519 key pair with libcrypto and write DIR/deploy.key\n"
     "(the private key, mode 0600) and DIR/deploy.pub (the public key); DIR is\n"
     "created (0700) if needed. Refuses to overwrite either file. Prints the\n"
     "key's fingerprint (sha256 of the raw public key) on stdout.\n"
     "Sign deploys with '--sign-key DIR/deploy.key'; give deploy.pub to every\n"
     "agent with '--trusted-keys'. Keep the private key off the nodes.\n"},
    {"prune", cmd_prune, "--keep N", 0, 0, "remove all but the newest N deploys (never the latest)",
     "Remove every deploy but the newest N (--keep N, N >= 1): payload and hash\n"
     "of each go together, in transactions that also require the latest deploy\n"
     "to still exist, so the latest is never removed and agents (which follow\n"
     "the highest id) and --wait are not affected. Prints what was removed and\n"
     "kept (JSON with --json).\n"},
    {"help", NULL, "[COMMAND]", 0, 1, "print the help of mgmt-deploy or of COMMAND",
     "Print the help of COMMAND, the same text as 'mgmt-deploy COMMAND --help'.\n"},
};

static const char exit_codes[] = "\nExit status:\n"
                                 "  0  done (or nothing to do)\n"
                                 "  1  error (invalid graph, etcd unreachable, refused request...)\n"
                                 "  2  usage error\n"
                                 "  3  lost the race for the next deploy id after every retry\n"
                                 "  4  timed out waiting (--wait)\n"
                                 "  5  a host failed to apply the deploy (--wait)\n";

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static void print_top_help(void) {
        char usage[4096];
        size_t o;

        o = (size_t)snprintf(usage, sizeof usage,
                             "Usage: " PROG " [OPTIONS] COMMAND [ARGS]\n"
                             "\n"
                             "Validate mgmt graphs and write them as numbered deploys to the etcd\n"
                             "cluster; show deploys and the status agents report.\n"
                             "\n"
                             "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands) && o < sizeof usage; i++) {
                char left[64];
                snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
                o +=
                    (size_t)snprintf(usage + o, sizeof usage - o, "  %-20s %s\n", left, commands[i].summary);
        }
        config_print_help(stdout, usage, exit_codes, opts, ELEMENTSOF(opts));
}

static void print_command_help(const struct command *cmd) {
        char usage[2048];

        snprintf(usage, sizeof usage, "Usage: " PROG " [OPTIONS] %s%s%s\n\n%s", cmd->name,
                 *cmd->args ? " " : "", cmd->args, cmd->description);
        config_print_help(stdout, usage, exit_codes, opts, ELEMENTSOF(opts));
}

static int usage_error(const char *msg, const char *arg) {
        fprintf(stderr, PROG ": %s '%s' (see '" PROG " --help')\n", msg, arg);
        return EXIT_USAGE;
}

static bool opt_takes_value(const char *name, size_t len) {
        return config_opt_takes_value(opts, ELEMENTSOF(opts), name, len);
}

/* Find the command and a help request before the full option parse, so that
 * 'help CMD', 'CMD --help' and 'CMD -h' all print the command's text. */
static int handle_help(int argc, char **argv, bool *ret_handled) {
        const char *cmd = NULL, *topic = NULL;
        bool help = false;

        *ret_handled = false;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--")) {
                        if (i + 1 < argc && !cmd)
                                cmd = argv[i + 1];
                        else if (i + 1 < argc && !topic)
                                topic = argv[i + 1];
                        break;
                }
                if (streq(a, "-h") || streq(a, "--help")) {
                        help = true;
                        continue;
                }
                if (startswith(a, "--")) {
                        const char *eq = strchr(a + 2, '=');
                        if (!eq && opt_takes_value(a + 2, strlen(a + 2)))
                                i++;
                        continue;
                }
                if (a[0] == '-' && a[1])
                        continue;
                if (!cmd)
                        cmd = a;
                else if (!topic)
                        topic = a;
        }
        if (cmd && streq(cmd, "help")) {
                *ret_handled = true;
                if (!topic && help) /* 'help --help': the text of 'help' itself */
                        topic = "help";
                if (!topic) {
                        print_top_help();
                        return EXIT_DONE;
                }
                const struct command *c = find_command(topic);
                if (!c)
                        return usage_error("unknown command", topic);
                print_command_help(c);
                return EXIT_DONE;
        }
        if (!help)
                return 0;
        *ret_handled = true;
        if (!cmd) {
                print_top_help();
                return EXIT_DONE;
        }
        const struct command *c = find_command(cmd);
        if (!c)
                return usage_error("unknown command", cmd);
        print_command_help(c);
        return EXIT_DONE;
}

/* --hosts: host names split on , ; or whitespace, each valid. */
static int parse_hosts(const char *text, char ***ret) {
        _cleanup_free_ char *copy = text ? strdup(text) : NULL;
        _cleanup_strv_ char **v = NULL;
        char *save = NULL;

        *ret = NULL;
        if (!text)
                return 0;
        if (!copy)
                return -ENOMEM;
        for (char *h = strtok_r(copy, ",; \t\n", &save); h; h = strtok_r(NULL, ",; \t\n", &save)) {
                if (!hostname_is_valid(h)) {
                        fprintf(
                            stderr,
                            PROG
                            ": --hosts: invalid host name '%s': expected [A-Za-z0-9][A-Za-z0-9.-]{0,62}\n",
                            h);
                        return -EINVAL;
                }
                if (!strv_contains(v, h) && strv_push(&v, h) < 0)
                        return -ENOMEM;
        }
        if (!v) {
                fprintf(stderr, PROG ": --hosts: empty host list\n");
                return -EINVAL;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int main(int argc, char **argv) {
        struct deployer d = {0};
        const struct command *cmd;
        bool handled;
        int r;

        log_init(PROG);
        r = handle_help(argc, argv, &handled);
        if (handled)
                return r;

        char usage[64];
        snprintf(usage, sizeof usage, "Usage: " PROG " [OPTIONS] COMMAND [ARGS]\n");
        r = config_parse(&d.cfg, PROG, MGMT_VERSION, usage, exit_codes, opts, ELEMENTSOF(opts), argc, argv);
        if (r == CONFIG_EXIT_OK) {
                config_free(&d.cfg);
                return EXIT_DONE;
        }
        if (r == CONFIG_EXIT_USAGE) {
                config_free(&d.cfg);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error_errno(r, "cannot parse options: %m");
                config_free(&d.cfg);
                return EXIT_ERROR;
        }
        if (!d.cfg.args[0]) {
                fprintf(stderr, PROG ": missing command: yaml, empty, list, show or status (see '" PROG
                                     " --help')\n");
                config_free(&d.cfg);
                return EXIT_USAGE;
        }
        cmd = find_command(d.cfg.args[0]);
        if (!cmd || !cmd->run) {
                r = usage_error("unknown command", d.cfg.args[0]);
                config_free(&d.cfg);
                return r;
        }
        d.args = d.cfg.args + 1;
        size_t n = strv_length(d.args);
        if (n < cmd->min_args || n > cmd->max_args) {
                fprintf(stderr,
                        PROG ": wrong number of arguments for '%s'; usage: " PROG
                             " [OPTIONS] %s%s%s (see '" PROG " help %s')\n",
                        cmd->name, cmd->name, *cmd->args ? " " : "", cmd->args, cmd->name);
                config_free(&d.cfg);
                return EXIT_USAGE;
        }
        d.force = d.cfg.v[OPT_FORCE].b;
        d.wait = d.cfg.v[OPT_WAIT].b;
        d.json = d.cfg.v[OPT_JSON].b;
        d.timeout_usec = (uint64_t)d.cfg.v[OPT_TIMEOUT].n;
        if (d.wait && cmd->run != cmd_yaml && cmd->run != cmd_empty) {
                fprintf(stderr, PROG ": --wait only applies to 'yaml' and 'empty'\n");
                config_free(&d.cfg);
                return EXIT_USAGE;
        }
        d.min_hosts = (size_t)d.cfg.v[OPT_MIN_HOSTS].n;
        if ((d.cfg.v[OPT_HOSTS].s || d.min_hosts > 0) && !d.wait) {
                fprintf(stderr, PROG ": --hosts and --min-hosts only apply with --wait\n");
                config_free(&d.cfg);
                return EXIT_USAGE;
        }
        r = parse_hosts(d.cfg.v[OPT_HOSTS].s, &d.hosts);
        if (r < 0) {
                config_free(&d.cfg);
                return r == -ENOMEM ? EXIT_ERROR : EXIT_USAGE;
        }
        r = cmd->run(&d);
        strv_free(d.hosts);
        config_free(&d.cfg);
        return r;
}
