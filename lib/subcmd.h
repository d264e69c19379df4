/* subcmd.h: git-style subcommand tables shared by the programs' main.c.
 *
 * Recipe:
 *   1. declare `static const struct subcmd cmds[] = { { "save", cmd_save,
 *      "FILE", "summary" }, ... }`; a command's run gets argv[0] = its name
 *      and every other argument (options before the name included), parses
 *      its own options and prints its own --help;
 *   2. subcmd_dispatch(prog, cmds, n, "run", global_opts, n_opts, argc, argv):
 *      finds the command word (skipping options and their values), runs
 *      `help CMD` as `CMD --help` so both print the same text, and runs the
 *      default command when there is no command word. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct subcmd {
        const char *name;
        int (*run)(int argc, char **argv); /* NULL for "help" */
        const char *args;                  /* synopsis after the name, for the list of commands */
        const char *summary;               /* one line for the list of commands */
};

/* Does "--name" (len bytes of name) take a value, per defs and the common
 * options --config and --log-level? Unknown names are taken as flags. */
bool config_opt_takes_value(const struct opt_def *defs, size_t n, const char *name, size_t len);
/* Index in argv of the first positional argument at or after `from`, or argc. */
int subcmd_position(const struct opt_def *defs, size_t n, int argc, char **argv, int from);
const struct subcmd *subcmd_find(const struct subcmd *cmds, size_t n, const char *name);
/* "Commands:\n  name args   summary\n..." for a --help text. */
void subcmd_list(const struct subcmd *cmds, size_t n, char *buf, size_t len);
/* Run the command argv names (see the recipe). Returns its exit code; 2 on an
 * unknown command. */
int subcmd_dispatch(const char *prog, const struct subcmd *cmds, size_t n, const char *default_cmd,
                    const struct opt_def *defs, size_t n_defs, int argc, char **argv);
