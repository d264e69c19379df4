/* subcmd.c: finding and running a git-style subcommand; `help CMD` is run as
 * `CMD --help`, so the two can never print different texts. */
#include <stdio.h>

#include "macro.h"
#include "subcmd.h"

bool config_opt_takes_value(const struct opt_def *defs, size_t n, const char *name, size_t len) {
        if ((len == 6 && strneq(name, "config", 6)) || (len == 9 && strneq(name, "log-level", 9)))
                return true;
        for (size_t i = 0; i < n; i++)
                if ((strlen(defs[i].name) == len && strneq(defs[i].name, name, len)) ||
                    (defs[i].alias && strlen(defs[i].alias) == len && strneq(defs[i].alias, name, len)))
                        return defs[i].type != OPT_BOOL;
        return false;
}

int subcmd_position(const struct opt_def *defs, size_t n, int argc, char **argv, int from) {
        for (int i = from; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--"))
                        return i + 1 < argc ? i + 1 : argc;
                if (startswith(a, "--")) {
                        if (!strchr(a + 2, '=') && config_opt_takes_value(defs, n, a + 2, strlen(a + 2)))
                                i++;
                        continue;
                }
                if (a[0] == '-' && a[1])
                        continue;
                return i;
        }
        return argc;
}

const struct subcmd *subcmd_find(const struct subcmd *cmds, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(cmds[i].name, name))
                        return &cmds[i];
        return NULL;
}

void subcmd_list(const struct subcmd *cmds, size_t n, char *buf, size_t len) {
        size_t o = (size_t)snprintf(buf, len, "Commands:\n");
        for (size_t i = 0; i < n && o < len; i++) {
                char left[64];
                snprintf(left, sizeof left, "%s %s", cmds[i].name, cmds[i].args);
                o += (size_t)snprintf(buf + o, len - o, "  %-30s %s\n", left, cmds[i].summary);
        }
}

static int run_help_of(const struct subcmd *c, const char *prog) {
        char *hargv[] = {(char *)c->name, (char *)"--help", NULL};
        return c->run(2, hargv);
}

int subcmd_dispatch(const char *prog, const struct subcmd *cmds, size_t n, const char *default_cmd,
                    const struct opt_def *defs, size_t n_defs, int argc, char **argv) {
        const struct subcmd *dflt = subcmd_find(cmds, n, default_cmd), *c;
        int pos = subcmd_position(defs, n_defs, argc, argv, 1);

        if (pos >= argc)
                return dflt->run(argc, argv);
        if (streq(argv[pos], "help")) {
                int t = subcmd_position(defs, n_defs, argc, argv, pos + 1);
                if (t >= argc)
                        return run_help_of(dflt, prog);
                c = subcmd_find(cmds, n, argv[t]);
                if (!c) {
                        fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", prog, argv[t], prog);
                        return 2;
                }
                return run_help_of(c->run ? c : dflt, prog);
        }
        c = subcmd_find(cmds, n, argv[pos]);
        if (!c) {
                fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", prog, argv[pos], prog);
                return 2;
        }
        /* the command sees its own name first, then every other argument */
        char **v = calloc((size_t)argc + 1, sizeof *v);
        int k = 0;
        if (!v)
                return 1;
        v[k++] = c == dflt ? argv[0] : (char *)c->name;
        for (int i = 1; i < argc; i++)
                if (i != pos)
                        v[k++] = argv[i];
        int r = c->run(k, v);
        free(v);
        return r;
}
