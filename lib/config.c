/* config.c: flags, MGMT_* environment and YAML config file from one option table. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <yaml.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "util.h"

void config_env_name(const char *flag, char *buf, size_t len) {
        size_t o = strlcpy(buf, "MGMT_", len);
        for (const char *p = flag; *p && o + 1 < len; p++)
                buf[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        buf[o < len ? o : len - 1] = 0;
}

static int parse_bool(const char *s, bool *ret) {
        if (streq(s, "1") || streq(s, "true") || streq(s, "yes") || streq(s, "on"))
                *ret = true;
        else if (streq(s, "0") || streq(s, "false") || streq(s, "no") || streq(s, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_seconds(const char *s, long long *ret_usec) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || (*end && !streq(end, "s")) || !isfinite(d) || d < 0 || d > 86400.0 * 365)
                return -EINVAL;
        *ret_usec = (long long)(d * 1e6);
        return 0;
}

int config_set(struct config *cfg, size_t i, const char *text, enum opt_source src, char *err,
               size_t errlen) {
        const struct opt_def *d = &cfg->defs[i];
        struct opt_val *v = &cfg->v[i];
        char ubuf[512];
        int r;

        switch (d->type) {
        case OPT_STRING:
                break;
        case OPT_HOSTNAME:
                if (!hostname_is_valid(text)) {
                        snprintf(err, errlen, "invalid --%s '%s': must match [A-Za-z0-9][A-Za-z0-9.-]{0,62}",
                                 d->name, text);
                        return -EINVAL;
                }
                break;
        case OPT_URLS: {
                char **l = NULL;
                r = urls_parse(text, &l, ubuf, sizeof ubuf);
                if (r < 0) {
                        snprintf(err, errlen, "invalid --%s: %s", d->name, ubuf);
                        return r == -ENOMEM ? r : -EINVAL;
                }
                strv_free(v->list);
                v->list = l;
                break;
        }
        case OPT_INT: {
                const char *e = NULL;
                long long n = strtonum(text, d->min, d->max, &e);
                if (e) {
                        snprintf(err, errlen, "invalid --%s '%s': %s (allowed %lld..%lld)", d->name, text, e,
                                 d->min, d->max);
                        return -EINVAL;
                }
                v->n = n;
                break;
        }
        case OPT_SECONDS:
                if (parse_seconds(text, &v->n) < 0) {
                        snprintf(err, errlen, "invalid --%s '%s': expected seconds, e.g. 30 or 0.5", d->name,
                                 text);
                        return -EINVAL;
                }
                break;
        case OPT_BOOL:
                if (parse_bool(text, &v->b) < 0) {
                        snprintf(err, errlen, "invalid --%s '%s': expected true or false", d->name, text);
                        return -EINVAL;
                }
                break;
        case OPT_LIST:
                /* a higher-precedence source replaces the whole list */
                if (v->src != src) {
                        strv_free(v->list);
                        v->list = NULL;
                }
                if (strv_push(&v->list, text) < 0)
                        return -ENOMEM;
                break;
        }
        if (d->type != OPT_LIST || !v->s || v->src != src) {
                free(v->s);
                v->s = strdup(text);
                if (!v->s)
                        return -ENOMEM;
        }
        v->src = src;
        v->set = src != SRC_DEFAULT;
        return 0;
}

static ssize_t find_opt(const struct config *cfg, const char *name, size_t len) {
        for (size_t i = 0; i < cfg->n; i++) {
                const struct opt_def *d = &cfg->defs[i];
                if ((strlen(d->name) == len && strneq(d->name, name, len)) ||
                    (d->alias && strlen(d->alias) == len && strneq(d->alias, name, len)))
                        return (ssize_t)i;
        }
        return -1;
}

/* Check the nesting depth with libyaml's event parser before building a
 * document: the loader's work grows with the square of the depth (a file
 * nested 100,000 deep took 27 s), the event parser stops at the first
 * level too deep. Logs the error naming path:line:col. */
static int check_depth(const char *path, const char *text, size_t len) {
        yaml_parser_t parser;
        yaml_event_t ev;
        unsigned depth = 0;
        int r = 0;

        yaml_parser_initialize(&parser);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        for (;;) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        log_errorx("%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
                                   parser.problem_mark.column + 1,
                                   parser.problem ? parser.problem : "YAML syntax error");
                        r = -EINVAL;
                        break;
                }
                yaml_event_type_t t = ev.type;
                if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
                        if (++depth > CONFIG_MAX_DEPTH) {
                                log_errorx("%s:%zu:%zu: config file nested deeper than %d levels", path,
                                           ev.start_mark.line + 1, ev.start_mark.column + 1,
                                           CONFIG_MAX_DEPTH);
                                r = -EINVAL;
                        }
                } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT)
                        depth--;
                yaml_event_delete(&ev);
                if (r < 0 || t == YAML_STREAM_END_EVENT)
                        break;
        }
        yaml_parser_delete(&parser);
        return r;
}

/* A YAML sequence as the value of option i: URL lists and repeatable
 * options take one. An error is either logged here (*ret_logged) or
 * described in err for the caller to log at the value's position. */
static int set_from_sequence(struct config *cfg, size_t i, const char *name, const char *path,
                             yaml_document_t *doc, yaml_node_t *v, char *err, size_t errlen,
                             bool *ret_logged) {
        int r = 0;

        size_t n_items = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n_items > CONFIG_MAX_ITEMS) {
                log_errorx("%s:%zu:%zu: '%s' has %zu items, more than the limit of %d", path,
                           v->start_mark.line + 1, v->start_mark.column + 1, name, n_items,
                           CONFIG_MAX_ITEMS);
                *ret_logged = true;
                return -EINVAL;
        }
        _cleanup_strv_ char **items = calloc(n_items + 1, sizeof(char *));
        if (!items) {
                *ret_logged = true;
                return log_error_errno(-ENOMEM, "out of memory");
        }
        size_t n_set = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = yaml_document_get_node(doc, *it);
                if (e->type != YAML_SCALAR_NODE) {
                        snprintf(err, errlen, "'%s' items must be scalars", name);
                        r = -EINVAL;
                        break;
                }
                if (!(items[n_set++] = strdup((const char *)e->data.scalar.value))) {
                        *ret_logged = true;
                        return log_error_errno(-ENOMEM, "out of memory");
                }
        }
        if (r >= 0 && cfg->defs[i].type == OPT_LIST) {
                strv_free(cfg->v[i].list);
                cfg->v[i].list = NULL;
                cfg->v[i].src = SRC_DEFAULT;
                for (size_t j = 0; items && items[j] && r >= 0; j++)
                        r = config_set(cfg, i, items[j], SRC_FILE, err, errlen);
        } else if (r >= 0 && cfg->defs[i].type == OPT_URLS) {
                _cleanup_free_ char *joined = strv_join(items, ",");
                r = config_set(cfg, i, joined ? joined : "", SRC_FILE, err, errlen);
        } else if (r >= 0) {
                snprintf(err, errlen, "'%s' takes a single value, not a list", name);
                r = -EINVAL;
        }
        return r;
}

/* Apply the YAML config file: a mapping of flag names to scalars or sequences. */
static int load_file(struct config *cfg, const char *path, enum opt_source minsrc) {
        yaml_parser_t parser;
        yaml_document_t doc;
        _cleanup_free_ char *text = NULL;
        size_t len;
        char err[600];
        int r = 0;

        r = read_file_max(path, CONFIG_MAX_SIZE, &text, &len);
        if (r == -EFBIG) {
                log_errorx("%s: config file larger than the limit of %d bytes (1 MiB)", path,
                           CONFIG_MAX_SIZE);
                return -EINVAL;
        }
        if (r < 0)
                return log_error_errno(r, "cannot read config file '%s': %m", path);
        r = check_depth(path, text, len);
        if (r < 0)
                return r;
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                log_errorx("%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
                           parser.problem_mark.column + 1,
                           parser.problem ? parser.problem : "YAML syntax error");
                yaml_parser_delete(&parser);
                return -EINVAL;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) /* empty file: nothing to set */
                goto out;
        if (root->type != YAML_MAPPING_NODE) {
                log_errorx("%s:%zu:%zu: expected a mapping of option names to values", path,
                           root->start_mark.line + 1, root->start_mark.column + 1);
                r = -EINVAL;
                goto out;
        }
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(&doc, p->key);
                yaml_node_t *v = yaml_document_get_node(&doc, p->value);
                if (k->type != YAML_SCALAR_NODE) {
                        log_errorx("%s:%zu:%zu: option names must be scalars", path, k->start_mark.line + 1,
                                   k->start_mark.column + 1);
                        r = -EINVAL;
                        goto out;
                }
                const char *name = (const char *)k->data.scalar.value;
                ssize_t i = find_opt(cfg, name, strlen(name));
                if (i < 0) {
                        log_errorx("%s:%zu:%zu: unknown option '%s'", path, k->start_mark.line + 1,
                                   k->start_mark.column + 1, name);
                        r = -EINVAL;
                        goto out;
                }
                if (cfg->v[i].src > minsrc)
                        continue; /* set by env or flag: those win */
                if (v->type == YAML_SCALAR_NODE) {
                        if (cfg->defs[i].type == OPT_LIST) {
                                /* a (re)loaded file replaces its earlier list */
                                strv_free(cfg->v[i].list);
                                cfg->v[i].list = NULL;
                                cfg->v[i].src = SRC_DEFAULT;
                        }
                        r = config_set(cfg, (size_t)i, (const char *)v->data.scalar.value, SRC_FILE, err,
                                       sizeof err);
                } else if (v->type == YAML_SEQUENCE_NODE) {
                        bool logged = false;
                        r = set_from_sequence(cfg, (size_t)i, name, path, &doc, v, err, sizeof err, &logged);
                        if (logged)
                                goto out;
                } else {
                        snprintf(err, sizeof err, "'%s' must be a scalar or a list", name);
                        r = -EINVAL;
                }
                if (r < 0) {
                        log_errorx("%s:%zu:%zu: %s", path, v->start_mark.line + 1, v->start_mark.column + 1,
                                   err);
                        goto out;
                }
        }
out:
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return r;
}

void config_print_help(FILE *f, const char *usage, const char *footer, const struct opt_def *defs,
                       size_t n) {
        char env[128], left[128];

        fputs(usage, f);
        fputs("\nOptions (each has an environment twin, and a key of the same name in --config):\n", f);
        for (size_t i = 0; i < n; i++) {
                const struct opt_def *d = &defs[i];
                config_env_name(d->name, env, sizeof env);
                if (d->type == OPT_BOOL)
                        snprintf(left, sizeof left, "--%s", d->name);
                else
                        snprintf(left, sizeof left, "--%s %s", d->name, d->metavar ? d->metavar : "VALUE");
                fprintf(f, "  %-34s %s\n", left, d->help);
                fprintf(f, "  %-34s env %s", "", env);
                if (d->def)
                        fprintf(f, ", default %s", d->def);
                if (d->alias)
                        fprintf(f, ", alias --%s", d->alias);
                if (d->type == OPT_LIST)
                        fputs(", repeatable", f);
                fputc('\n', f);
        }
        fputs(
            "\nCommon options:\n"
            "  --config FILE                      YAML file of option names to values\n"
            "                                     env MGMT_CONFIG; precedence: flag > env > file > default\n"
            "  --log-level LEVEL                  debug, info, notice, warning or error\n"
            "                                     env MGMT_LOG_LEVEL, default info\n"
            "  -h, --help                         print this help and exit\n"
            "  --version                          print the version and exit\n",
            f);
        if (footer)
                fputs(footer, f);
}

static int usage_error(const char *prog, const char *msg) {
        fprintf(stderr, "%s: %s (see '%s --help')\n", prog, msg, prog);
        return CONFIG_EXIT_USAGE;
}

int config_parse(struct config *cfg, const char *prog, const char *version, const char *usage,
                 const char *footer, const struct opt_def *defs, size_t n, int argc, char **argv) {
        char err[700], env[128];
        int r;

        *cfg = (struct config){.prog = prog, .defs = defs, .n = n};
        cfg->v = calloc(n, sizeof(struct opt_val));
        cfg->args = calloc(1, sizeof(char *));
        if (!cfg->v || !cfg->args)
                return -ENOMEM;

        /* first pass: help, version, config file, log level */
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--"))
                        break;
                if (streq(a, "-h") || streq(a, "--help")) {
                        config_print_help(stdout, usage, footer, defs, n);
                        return CONFIG_EXIT_OK;
                }
                if (streq(a, "--version")) {
                        printf("%s %s\n", prog, version);
                        return CONFIG_EXIT_OK;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (defs[i].def && defs[i].type != OPT_LIST) {
                        r = config_set(cfg, i, defs[i].def, SRC_DEFAULT, err, sizeof err);
                        if (r < 0)
                                return usage_error(prog, err);
                }

        const char *cf = getenv("MGMT_CONFIG"), *ll = getenv("MGMT_LOG_LEVEL");
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--"))
                        break;
                if (streq(argv[i], "--config") && i + 1 < argc)
                        cf = argv[i + 1];
                else if (startswith(argv[i], "--config="))
                        cf = argv[i] + 9;
                else if (streq(argv[i], "--log-level") && i + 1 < argc)
                        ll = argv[i + 1];
                else if (startswith(argv[i], "--log-level="))
                        ll = argv[i] + 12;
        }
        if (ll) {
                if (log_set_level_str(ll) < 0)
                        return usage_error(
                            prog, "invalid --log-level: expected debug, info, notice, warning or error");
                cfg->log_level = strdup(ll);
        }
        if (cf) {
                cfg->config_file = strdup(cf);
                if (load_file(cfg, cf, SRC_FILE) < 0)
                        return CONFIG_EXIT_USAGE;
        }
        for (size_t i = 0; i < n; i++) {
                config_env_name(defs[i].name, env, sizeof env);
                const char *e = getenv(env);
                if ((!e || !*e) && defs[i].alias) {
                        /* the alias's twin (MGMT_PEER_URLS for --peer-urls) */
                        config_env_name(defs[i].alias, env, sizeof env);
                        e = getenv(env);
                }
                if (!e || !*e)
                        continue;
                r = 0;
                if (defs[i].type == OPT_LIST) {
                        /* env twin of a repeatable flag: whitespace-separated */
                        _cleanup_free_ char *copy = strdup(e);
                        char *save = NULL;
                        if (!copy)
                                return -ENOMEM;
                        for (char *t = strtok_r(copy, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
                                if ((r = config_set(cfg, i, t, SRC_ENV, err, sizeof err)) < 0)
                                        break;
                } else
                        r = config_set(cfg, i, e, SRC_ENV, err, sizeof err);
                if (r < 0) {
                        char m[900];
                        snprintf(m, sizeof m, "%s (from environment %s)", err, env);
                        return usage_error(prog, m);
                }
        }

        bool only_args = false;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (only_args || a[0] != '-' || streq(a, "-")) {
                        if (strv_push(&cfg->args, a) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (streq(a, "--")) {
                        only_args = true;
                        continue;
                }
                if (!startswith(a, "--")) {
                        snprintf(err, sizeof err, "unknown option '%s'", a);
                        return usage_error(prog, err);
                }
                const char *name = a + 2, *eq = strchr(name, '='), *val = NULL;
                size_t nl = eq ? (size_t)(eq - name) : strlen(name);
                if ((nl == 6 && strneq(name, "config", 6)) || (nl == 9 && strneq(name, "log-level", 9))) {
                        if (!eq)
                                i++;
                        if (i >= argc)
                                return usage_error(prog, "option needs a value");
                        continue;
                }
                ssize_t k = find_opt(cfg, name, nl);
                if (k < 0) {
                        snprintf(err, sizeof err, "unknown option '--%.*s'", (int)nl, name);
                        return usage_error(prog, err);
                }
                if (defs[k].type == OPT_BOOL) {
                        val = eq ? eq + 1 : "true";
                } else if (eq) {
                        val = eq + 1;
                } else {
                        if (i + 1 >= argc) {
                                snprintf(err, sizeof err, "option '--%s' needs a value (%s)", defs[k].name,
                                         defs[k].metavar ? defs[k].metavar : "VALUE");
                                return usage_error(prog, err);
                        }
                        val = argv[++i];
                }
                r = config_set(cfg, (size_t)k, val, SRC_FLAG, err, sizeof err);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return usage_error(prog, err);
        }
        return 0;
}

static void vals_free(struct opt_val *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].s);
                strv_free(v[i].list);
        }
        free(v);
}

/* Re-read the file into a copy and swap it in only when all of it is good,
 * so a bad file changes nothing. Values the old file set go back to their
 * defaults first: a key removed from the file no longer applies. */
int config_reload_file(struct config *cfg) {
        struct config tmp = *cfg;
        char err[600];
        int r;

        if (!cfg->config_file)
                return 0;
        tmp.v = calloc(cfg->n + 1, sizeof *tmp.v);
        if (!tmp.v)
                return log_error_errno(-ENOMEM, "out of memory");
        for (size_t i = 0; i < cfg->n; i++) {
                const struct opt_val *o = &cfg->v[i];
                if (o->src == SRC_FILE) {
                        if (cfg->defs[i].def && cfg->defs[i].type != OPT_LIST &&
                            config_set(&tmp, i, cfg->defs[i].def, SRC_DEFAULT, err, sizeof err) < 0) {
                                vals_free(tmp.v, cfg->n);
                                log_errorx("%s", err);
                                return -EINVAL;
                        }
                        continue;
                }
                tmp.v[i] = *o;
                tmp.v[i].s = o->s ? strdup(o->s) : NULL;
                tmp.v[i].list = o->list ? strv_copy(o->list) : NULL;
                if ((o->s && !tmp.v[i].s) || (o->list && !tmp.v[i].list)) {
                        vals_free(tmp.v, cfg->n);
                        return log_error_errno(-ENOMEM, "out of memory");
                }
        }
        r = load_file(&tmp, cfg->config_file, SRC_FILE);
        if (r < 0) {
                vals_free(tmp.v, cfg->n);
                return r;
        }
        vals_free(cfg->v, cfg->n);
        cfg->v = tmp.v;
        return 0;
}

void config_free(struct config *cfg) {
        for (size_t i = 0; cfg->v && i < cfg->n; i++) {
                free(cfg->v[i].s);
                strv_free(cfg->v[i].list);
        }
        free(cfg->v);
        strv_free(cfg->args);
        free(cfg->config_file);
        free(cfg->log_level);
        *cfg = (struct config){0};
}
