/* config.h: one option table per program drives its flags, MGMT_* environment
 * variables, YAML config file (--config) and --help text.
 *
 * Recipe:
 *   1. declare `static const struct opt_def opts[] = {...}` with an index enum;
 *   2. config_parse(&cfg, opts, n, argc, argv) -> 0, or CONFIG_EXIT_* / -errno;
 *   3. read values with cfg.v[OPT_X].s / .n / .b / .list;
 *   4. config_free(&cfg).
 * Precedence: flag > env > file > default. Every program also gets --help/-h,
 * --version, --config FILE and --log-level LEVEL from the table's caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opt_type {
        OPT_STRING,   /* free text */
        OPT_HOSTNAME, /* validated hostname */
        OPT_URLS,     /* URL list split on , ; and whitespace */
        OPT_INT,      /* integer within [min, max] */
        OPT_SECONDS,  /* duration in seconds (integer or decimal), stored in usec */
        OPT_BOOL,     /* flag without argument; env/file take true/false/1/0/yes/no */
        OPT_LIST,     /* repeatable string, e.g. --etcd-arg */
};

enum opt_source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

struct opt_def {
        const char *name;  /* long flag name without dashes; also the YAML key */
        const char *alias; /* a second accepted flag name, or NULL */
        enum opt_type type;
        const char *metavar;
        const char *def; /* default as text, or NULL */
        const char *help;
        long long min, max; /* for OPT_INT */
};

struct opt_val {
        bool set; /* given somewhere other than the default */
        enum opt_source src;
        char *s;     /* OPT_STRING, OPT_HOSTNAME: the value; others: text form */
        long long n; /* OPT_INT; OPT_SECONDS in microseconds */
        bool b;      /* OPT_BOOL */
        char **list; /* OPT_URLS, OPT_LIST */
};

struct config {
        const char *prog;
        const struct opt_def *defs;
        size_t n;
        struct opt_val *v;
        char **args;       /* positional arguments, in order */
        char *config_file; /* --config / MGMT_CONFIG, if any */
        char *log_level;
};

/* Limits of a --config file: larger or deeper ones are refused with an
 * error naming the file (and line:column for the depth). */
#define CONFIG_MAX_SIZE (1 << 20)
#define CONFIG_MAX_DEPTH 64
#define CONFIG_MAX_ITEMS 4096 /* items of one list option */

#define CONFIG_EXIT_OK 1    /* --help / --version printed: exit 0 */
#define CONFIG_EXIT_USAGE 2 /* a usage error was printed: exit 2 */

/* Parse everything. usage is the text above the option list in --help;
 * footer (may be NULL) goes below it. Returns 0 to run, CONFIG_EXIT_OK or
 * CONFIG_EXIT_USAGE after printing, or -errno. */
int config_parse(struct config *cfg, const char *prog, const char *version, const char *usage,
                 const char *footer, const struct opt_def *defs, size_t n, int argc, char **argv);
/* Re-read the config file (for SIGHUP): values given by flag or env stay;
 * returns 0 or -EINVAL after logging what is wrong. */
int config_reload_file(struct config *cfg);
void config_free(struct config *cfg);
#include <stdio.h>
void config_print_help(FILE *f, const char *usage, const char *footer, const struct opt_def *defs, size_t n);
/* Name of the environment twin of a flag: "client-urls" -> "MGMT_CLIENT_URLS". */
void config_env_name(const char *flag, char *buf, size_t len);
/* Set one option from text; err gets a message naming the option on failure. */
int config_set(struct config *cfg, size_t i, const char *text, enum opt_source src, char *err,
               size_t errlen);
