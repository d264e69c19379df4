/* graph.c: mgmt's YAML graph format (DESIGN.md "Graphs"): parse with the
 * libyaml event API into a small tree (depth-limited, no aliases), validate
 * everything with FILE:LINE:COL messages, then build struct graph. The same
 * field rules are used for the JSON form of a resource (export/collect). */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <yaml.h>

#include "graph.h"
#include "macro.h"
#include "util.h"

#define YTREE_MAX_DEPTH 32
#define NAME_MAX_LEN 255

static const char *const kind_names[_RES_KIND_MAX] = {
        [RES_FILE] = "file",
        [RES_EXEC] = "exec",
        [RES_PRINT] = "print",
        [RES_NOOP] = "noop",
        [RES_SVC] = "svc",
        [RES_PKG] = "pkg",
};

static const char *const svc_state_names[] = { [SVC_STATE_UNSET] = "", [SVC_RUNNING] = "running",
                                                [SVC_STOPPED] = "stopped" };
static const char *const svc_startup_names[] = { [SVC_STARTUP_UNSET] = "", [SVC_ENABLED] = "enabled",
                                                 [SVC_DISABLED] = "disabled" };
static const char *const pkg_state_names[] = { [PKG_INSTALLED] = "installed", [PKG_UNINSTALLED] = "uninstalled",
                                               [PKG_NEWEST] = "newest" };

const char *svc_state_to_string(enum svc_state s) {
        return (unsigned) s < ELEMENTSOF(svc_state_names) ? svc_state_names[s] : NULL;
}

const char *svc_startup_to_string(enum svc_startup s) {
        return (unsigned) s < ELEMENTSOF(svc_startup_names) ? svc_startup_names[s] : NULL;
}

const char *pkg_state_to_string(enum pkg_state s) {
        return (unsigned) s < ELEMENTSOF(pkg_state_names) ? pkg_state_names[s] : NULL;
}

int svc_unit_name(const char *name, char *buf, size_t len) {
        int n = snprintf(buf, len, "%s%s", name, strchr(name, '.') ? "" : ".service");
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* Debian package names (Policy 5.6.1), optionally with ":ARCH". */
static bool pkg_name_is_valid(const char *s) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t) (colon - s) : strlen(s);
        if (n < 2 || n > 128 || !(islower((unsigned char) s[0]) || isdigit((unsigned char) s[0])))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!islower((unsigned char) s[i]) && !isdigit((unsigned char) s[i]) && !strchr("+-.", s[i]))
                        return false;
        if (colon) {
                if (!colon[1] || strlen(colon + 1) > 32)
                        return false;
                for (const char *p = colon + 1; *p; p++)
                        if (!islower((unsigned char) *p) && !isdigit((unsigned char) *p) && *p != '-')
                                return false;
        }
        return true;
}

const char *res_kind_to_string(enum res_kind k) {
        if ((unsigned) k >= _RES_KIND_MAX)
                return NULL;
        return kind_names[k];
}

int res_kind_from_string(const char *s) {
        for (int k = 0; s && k < _RES_KIND_MAX; k++)
                if (streq(s, kind_names[k]))
                        return k;
        return -EINVAL;
}

/* ---- a minimal YAML tree ---- */

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
        enum ytype type;
        unsigned line, col; /* 1-based; 0 when the node came from JSON */
        char *value;        /* scalar text */
        size_t len;
        bool plain;   /* plain (unquoted) scalar: may be null or a number */
        bool is_int;  /* from a JSON integer: ival holds it */
        long long ival;
        struct ynode **items; /* sequence items; mapping: key, value, key, value... */
        size_t n, cap;
};

static void ynode_free(struct ynode *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->n; i++)
                ynode_free(n->items[i]);
        free(n->items);
        free(n->value);
        free(n);
}

static int ynode_append(struct ynode *parent, struct ynode *child) {
        if (parent->n == parent->cap) {
                size_t nc = parent->cap ? parent->cap * 2 : 8;
                struct ynode **ni = reallocarray(parent->items, nc, sizeof(*ni));
                if (!ni)
                        return -ENOMEM;
                parent->items = ni;
                parent->cap = nc;
        }
        parent->items[parent->n++] = child;
        return 0;
}

static bool ynode_is_null(const struct ynode *n) {
        return !n || (n->type == Y_SCALAR && n->plain && !n->is_int &&
                      (n->len == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                       streq(n->value, "Null") || streq(n->value, "NULL")));
}

/* Error context: where messages go and which file they name. With many
 * set (a whole graph), each error is appended to err as a line and
 * validation goes on; otherwise err holds the one error. */
struct ctx {
        const char *filename; /* NULL: JSON input, no location prefix */
        char *err;
        size_t errlen;
        bool many;
        size_t n_errs, stored; /* errors found, errors written to err */
};

static int fail_at(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) _printf_(4, 5);
static int fail_at(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) {
        char msg[PATH_MAX + 1024];
        va_list ap;
        size_t o = 0;

        c->n_errs++;
        if (!c->err || c->errlen == 0)
                return -EINVAL;
        if (c->filename && line > 0)
                o = (size_t) snprintf(msg, sizeof msg, "%s:%u:%u: ", c->filename, line, col);
        else if (c->filename)
                o = (size_t) snprintf(msg, sizeof msg, "%s: ", c->filename);
        else if (line > 0)
                o = (size_t) snprintf(msg, sizeof msg, "%u:%u: ", line, col);
        if (o >= sizeof msg)
                o = 0;
        va_start(ap, fmt);
        vsnprintf(msg + o, sizeof msg - o, fmt, ap);
        va_end(ap);
        if (!c->many || c->stored == 0) {
                strlcpy(c->err, msg, c->errlen);
                c->stored = 1;
                return -EINVAL;
        }
        /* keep room for the "... and N more errors" line */
        size_t used = strlen(c->err);
        if (c->stored < GRAPH_ERRORS_MAX && used + 1 + strlen(msg) + 48 < c->errlen) {
                c->err[used] = '\n';
                strlcpy(c->err + used + 1, msg, c->errlen - used - 1);
                c->stored++;
        }
        return -EINVAL;
}

/* In "many" mode, an -EINVAL was recorded and validation goes on. */
static bool recorded(struct ctx *c, int r) {
        return c->many && r == -EINVAL;
}

/* Append "... and N more errors" when some were left out. */
static void errors_finish(struct ctx *c) {
        if (c->err && c->errlen && c->n_errs > c->stored) {
                size_t used = strlen(c->err);
                snprintf(c->err + used, c->errlen - used, "\n... and %zu more error%s", c->n_errs - c->stored,
                         c->n_errs - c->stored == 1 ? "" : "s");
        }
}

#define fail(c, node, ...) fail_at((c), (node) ? (node)->line : 0, (node) ? (node)->col : 0, __VA_ARGS__)

static struct ynode *ynode_new(enum ytype t, const yaml_mark_t *m) {
        struct ynode *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->type = t;
        if (m) {
                n->line = (unsigned) m->line + 1;
                n->col = (unsigned) m->column + 1;
        }
        return n;
}

/* Line and column of a byte offset (for reader errors, which carry only an offset). */
static void offset_to_mark(const char *text, size_t len, size_t off, unsigned *line, unsigned *col) {
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < off && i < len; i++) {
                if (text[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else
                        (*col)++;
        }
}

static int yaml_syntax_error(struct ctx *c, yaml_parser_t *p, const char *text, size_t len) {
        unsigned line, col;
        const char *problem = p->problem ? p->problem : "invalid YAML";

        if (p->error == YAML_READER_ERROR) {
                offset_to_mark(text, len, p->problem_offset, &line, &col);
                return fail_at(c, line, col, "yaml syntax error: %s", problem);
        }
        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        line = (unsigned) p->problem_mark.line + 1;
        col = (unsigned) p->problem_mark.column + 1;
        if (p->context)
                return fail_at(c, line, col, "yaml syntax error: %s %s (started at line %zu)", problem,
                               p->context, p->context_mark.line + 1);
        return fail_at(c, line, col, "yaml syntax error: %s", problem);
}

/* Parse text into a tree with the event API. Refuses aliases, several
 * documents and nesting deeper than YTREE_MAX_DEPTH. *ret is NULL for an
 * empty stream. */
static int ytree_parse(struct ctx *c, const char *text, size_t len, struct ynode **ret) {
        yaml_parser_t p;
        yaml_event_t ev;
        struct ynode *stack[YTREE_MAX_DEPTH + 1];
        size_t depth = 0;
        struct ynode *root = NULL;
        unsigned docs = 0;
        int r = 0;
        bool done = false;

        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *) text, len);
        yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

        while (!done) {
                if (!yaml_parser_parse(&p, &ev)) {
                        r = yaml_syntax_error(c, &p, text, len);
                        break;
                }
                struct ynode *n = NULL;
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++docs > 1)
                                r = fail_at(c, (unsigned) ev.start_mark.line + 1,
                                            (unsigned) ev.start_mark.column + 1,
                                            "only one YAML document is allowed in a graph");
                        break;
                case YAML_ALIAS_EVENT:
                        r = fail_at(c, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                    "yaml aliases ('*%s') are not supported in graphs",
                                    (const char *) ev.data.alias.anchor);
                        break;
                case YAML_SCALAR_EVENT:
                        n = ynode_new(Y_SCALAR, &ev.start_mark);
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        n->len = ev.data.scalar.length;
                        n->value = malloc(n->len + 1);
                        if (!n->value) {
                                free(n);
                                n = NULL;
                                r = -ENOMEM;
                                break;
                        }
                        memcpy(n->value, ev.data.scalar.value, n->len);
                        n->value[n->len] = 0;
                        /* an escaped "\0" would silently cut the string short */
                        if (memchr(n->value, 0, n->len)) {
                                r = fail_at(c, (unsigned) ev.start_mark.line + 1, (unsigned) ev.start_mark.column + 1,
                                            "a string contains a NUL byte (\\0)");
                                ynode_free(n);
                                n = NULL;
                                break;
                        }
                        n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
                        break;
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (depth >= YTREE_MAX_DEPTH) {
                                r = fail_at(c, (unsigned) ev.start_mark.line + 1,
                                            (unsigned) ev.start_mark.column + 1,
                                            "nesting deeper than %d levels", YTREE_MAX_DEPTH);
                                break;
                        }
                        n = ynode_new(ev.type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP, &ev.start_mark);
                        if (!n)
                                r = -ENOMEM;
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
                if (r >= 0 && n) {
                        if (depth > 0)
                                r = ynode_append(stack[depth - 1], n);
                        else if (!root)
                                root = n;
                        else
                                r = -EINVAL; /* cannot happen: one document, one root */
                        if (r < 0)
                                ynode_free(n);
                        else if (n->type != Y_SCALAR)
                                stack[depth++] = n;
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        break;
        }
        yaml_parser_delete(&p);
        if (r < 0) {
                ynode_free(root);
                return r;
        }
        *ret = root;
        return 0;
}

/* ---- JSON to tree, so JSON resources get the same validation ---- */

static int json_to_ynode(json_t *j, struct ynode **ret);

/* Convert v and append it to parent; on failure nothing is appended. */
static int json_append_ynode(struct ynode *parent, json_t *v) {
        struct ynode *vn = NULL;
        int r = json_to_ynode(v, &vn);
        if (r < 0)
                return r;
        r = ynode_append(parent, vn);
        if (r < 0)
                ynode_free(vn);
        return r;
}

static int json_to_ynode(json_t *j, struct ynode **ret) {
        struct ynode *n = NULL;
        char buf[64];
        int r;

        switch (json_typeof(j)) {
        case JSON_OBJECT: {
                const char *k;
                json_t *v;
                n = ynode_new(Y_MAP, NULL);
                if (!n)
                        return -ENOMEM;
                json_object_foreach(j, k, v) {
                        json_t *ks = json_string(k);
                        r = ks ? json_append_ynode(n, ks) : -ENOMEM;
                        json_decref(ks);
                        if (r >= 0)
                                r = json_append_ynode(n, v);
                        if (r < 0) {
                                ynode_free(n);
                                return r;
                        }
                }
                break;
        }
        case JSON_ARRAY: {
                size_t i;
                json_t *v;
                n = ynode_new(Y_SEQ, NULL);
                if (!n)
                        return -ENOMEM;
                json_array_foreach(j, i, v) {
                        r = json_append_ynode(n, v);
                        if (r < 0) {
                                ynode_free(n);
                                return r;
                        }
                }
                break;
        }
        default: {
                const char *s;
                size_t len;
                n = ynode_new(Y_SCALAR, NULL);
                if (!n)
                        return -ENOMEM;
                if (json_is_string(j)) {
                        s = json_string_value(j);
                        len = json_string_length(j);
                } else if (json_is_integer(j)) {
                        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
                        s = buf;
                        len = strlen(buf);
                        n->plain = true;
                        n->is_int = true;
                        n->ival = (long long) json_integer_value(j);
                } else if (json_is_real(j)) {
                        /* plain decimal, as YAML input must be: the one real field is
                         * a timeout in whole microseconds, which "%.6f" keeps exactly
                         * ("%g" would write 1e-05) */
                        double d = json_real_value(j);
                        snprintf(buf, sizeof buf, fabs(d) < 1e15 ? "%.6f" : "%.17g", d);
                        s = buf;
                        len = strlen(buf);
                        n->plain = true;
                } else if (json_is_boolean(j)) {
                        s = json_is_true(j) ? "true" : "false";
                        len = strlen(s);
                        n->plain = true;
                } else {
                        s = "";
                        len = 0;
                        n->plain = true;
                }
                n->value = malloc(len + 1);
                if (!n->value) {
                        free(n);
                        return -ENOMEM;
                }
                memcpy(n->value, s, len);
                n->value[len] = 0;
                n->len = len;
                break;
        }
        }
        *ret = n;
        return 0;
}

/* ---- field helpers ---- */

static const char *ytype_name(const struct ynode *n) {
        if (ynode_is_null(n))
                return "nothing (null)";
        switch (n->type) {
        case Y_SCALAR:
                return "a scalar";
        case Y_SEQ:
                return "a list";
        default:
                return "a mapping";
        }
}

/* A string value: a scalar that is not null and has no NUL byte. */
static int get_string(struct ctx *c, const char *what, const struct ynode *v, const char **ret) {
        if (v->type != Y_SCALAR)
                return fail(c, v, "%s must be a string, got %s", what, ytype_name(v));
        if (ynode_is_null(v))
                return fail(c, v, "%s has no value (write \"\" for an empty string)", what);
        if (strlen(v->value) != v->len)
                return fail(c, v, "%s contains a NUL byte", what);
        *ret = v->value;
        return 0;
}

static int dup_string(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        const char *s;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_bool(struct ctx *c, const char *what, const struct ynode *v, bool *ret) {
        const char *s;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        if (!v->plain)
                return fail(c, v, "%s must be true or false, got the string \"%s\"", what, s);
        if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE") || streq(s, "yes") || streq(s, "on"))
                *ret = true;
        else if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE") || streq(s, "no") ||
                 streq(s, "off"))
                *ret = false;
        else
                return fail(c, v, "%s must be true or false, got '%s'", what, s);
        return 0;
}

static bool has_ctrl(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Resource and edge names: non-empty, no '/', no control characters. */
static int check_name(struct ctx *c, const char *what, const struct ynode *v, const char *name) {
        if (!*name)
                return fail(c, v, "%s must not be empty", what);
        if (strchr(name, '/'))
                return fail(c, v, "%s '%s' must not contain '/'", what, name);
        if (has_ctrl(name))
                return fail(c, v, "%s must not contain control characters", what);
        if (strlen(name) > NAME_MAX_LEN)
                return fail(c, v, "%s is longer than %d bytes", what, NAME_MAX_LEN);
        return 0;
}

/* What is wrong with an absolute file path, or NULL. One spelling per file:
 * no "." or ".." components (a collected basename must not climb out of its
 * directory), no "//", no control characters, each component <= NAME_MAX. */
static const char *path_problem(const char *path) {
        if (strlen(path) >= PATH_MAX)
                return "is longer than PATH_MAX";
        if (has_ctrl(path))
                return "must not contain control characters";
        for (const char *p = path; *p;) {
                const char *e;
                size_t n;
                p++; /* the '/' */
                e = strchrnul(p, '/');
                n = (size_t) (e - p);
                if (n == 0 && *e)
                        return "must not contain '//'";
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return "must not contain '.' or '..' components";
                if (n > NAME_MAX_LEN)
                        return "has a component longer than 255 bytes";
                p = e;
        }
        return NULL;
}

/* owner/group: a user or group name or number (no ':', spaces or control characters). */
static bool account_is_valid(const char *s) {
        if (!s || !*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || *s == ':' || *s == '/' || *s == 0x7f)
                        return false;
        return true;
}

/* mode: always octal ("0644", 0644, 644, "0o644"), 0..07777; a JSON integer is its value. */
static int parse_mode(struct ctx *c, const char *what, const struct ynode *v, int *ret) {
        const char *s, *p;
        long m = 0;
        int r;

        if (v->type == Y_SCALAR && v->is_int) {
                if (v->ival < 0 || v->ival > 07777)
                        return fail(c, v, "%s %lld is out of range (0..07777)", what, v->ival);
                *ret = (int) v->ival;
                return 0;
        }
        r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        p = s;
        if (startswith(p, "0o") || startswith(p, "0O"))
                p += 2;
        if (!*p || strlen(p) > 5)
                goto bad;
        for (; *p; p++) {
                if (*p < '0' || *p > '7')
                        goto bad;
                m = m * 8 + (*p - '0');
        }
        if (m > 07777)
                goto bad;
        *ret = (int) m;
        return 0;
bad:
        return fail(c, v, "%s must be an octal mode like \"0644\" (at most 07777), got '%s'", what, s);
}

/* timeout: seconds, integer or decimal, 0 (none) up to one year. */
static int parse_timeout(struct ctx *c, const char *what, const struct ynode *v, uint64_t *ret) {
        const char *s;
        char *end;
        double d;
        int r = get_string(c, what, v, &s);
        if (r < 0)
                return r;
        /* plain decimal only: strtod alone also takes hex, "inf" and exponents */
        if (s[strspn(s, "0123456789.")] != 0)
                return fail(c, v, "%s must be a number of seconds (0 to 31536000), got '%s'", what, s);
        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(d) || d < 0 || d > 86400.0 * 365)
                return fail(c, v, "%s must be a number of seconds (0 to 31536000), got '%s'", what, s);
        *ret = (uint64_t) llround(d * 1e6);
        /* 0 means no timeout: a tiny value must not round to it */
        if (*ret == 0 && d > 0)
                return fail(c, v, "%s must be 0 (no timeout) or at least 0.000001 seconds, got '%s'", what, s);
        return 0;
}

/* ---- resources ---- */

void resource_clear(struct resource *r) {
        if (!r)
                return;
        free(r->name);
        free(r->file.path);
        free(r->file.content);
        free(r->file.source);
        free(r->file.owner);
        free(r->file.group);
        free(r->exec.cmd);
        free(r->exec.shell);
        free(r->exec.ifcmd);
        free(r->exec.ifshell);
        free(r->exec.watchcmd);
        free(r->exec.watchshell);
        free(r->print.msg);
        *r = (struct resource){ .file.mode = -1 };
}

static const char *const fields_file[] = { "name",  "path",  "content", "source", "state", "mode",
                                           "owner", "group", "recurse", "force",  "meta",  NULL };
static const char *const fields_exec[] = { "name",       "cmd",     "shell",   "ifcmd", "ifshell", "watchcmd",
                                           "watchshell", "timeout", "pollint", "state", "meta",    NULL };
static const char *const fields_print[] = { "name", "msg", "meta", NULL };
static const char *const fields_noop[] = { "name", "meta", NULL };
static const char *const fields_svc[] = { "name", "state", "startup", "session", "meta", NULL };
static const char *const fields_pkg[] = { "name",        "state",           "allowuntrusted",
                                          "allownonfree", "allowunsupported", "meta",
                                          NULL };
static const char *const *const kind_fields[_RES_KIND_MAX] = {
        [RES_FILE] = fields_file,
        [RES_EXEC] = fields_exec,
        [RES_PRINT] = fields_print,
        [RES_NOOP] = fields_noop,
        [RES_SVC] = fields_svc,
        [RES_PKG] = fields_pkg,
};

/* Fields of mgmt's resources this agent refuses, and why (docs/mgmt-graph.5). */
static const struct {
        int kind; /* -1: any kind */
        const char *field, *why;
} refused_fields[] = {
        { RES_EXEC, "cwd", "set the directory in 'cmd' instead ('cd DIR && ...')" },
        { RES_EXEC, "ifcwd", "set the directory in 'ifcmd' instead ('cd DIR && ...')" },
        { RES_EXEC, "watchcwd", "set the directory in 'watchcmd' instead ('cd DIR && ...')" },
        { RES_EXEC, "env", "set variables in 'cmd' instead ('VAR=value cmd')" },
        { RES_EXEC, "args", "write the arguments into 'cmd'" },
        { RES_EXEC, "user", "the agent runs commands as itself: use 'runuser -u USER -- cmd'" },
        { RES_EXEC, "group", "the agent runs commands as itself: use 'setpriv --regid GROUP cmd'" },
        { RES_EXEC, "sendoutput", "resources do not send values to each other here" },
        { RES_FILE, "fragments", "build the content in the graph, or with an exec" },
        { RES_FILE, "symlink", "symbolic links are not managed by the file kind" },
        { RES_FILE, "purge", "the agent never deletes files it does not manage" },
};

static const char *refused_why(enum res_kind kind, const char *field) {
        for (size_t i = 0; i < ELEMENTSOF(refused_fields); i++)
                if ((refused_fields[i].kind < 0 || refused_fields[i].kind == (int) kind) &&
                    streq(refused_fields[i].field, field))
                        return refused_fields[i].why;
        return NULL;
}

static bool field_known(const char *const *fields, const char *k) {
        for (; *fields; fields++)
                if (streq(*fields, k))
                        return true;
        return false;
}

static void fields_list(const char *const *fields, char *buf, size_t len) {
        buf[0] = 0;
        for (const char *const *f = fields; *f; f++) {
                if (f != fields)
                        strlcat(buf, ", ", len);
                strlcat(buf, *f, len);
        }
}

/* Check the keys of a mapping: scalars, known (extra may name one more
 * accepted key), no duplicates. Every bad key is reported (in "many" mode);
 * kind >= 0 explains fields of mgmt's that this agent refuses. */
static int check_keys_kind(struct ctx *c, const struct ynode *m, const char *const *fields, const char *extra,
                           const char *where, int kind) {
        char list[512];
        int r = 0;

        for (size_t i = 0; i + 1 < m->n; i += 2) {
                const struct ynode *k = m->items[i];
                const char *why;
                if (k->type != Y_SCALAR || ynode_is_null(k)) {
                        r = fail(c, k, "field names in %s must be strings", where);
                        if (!c->many)
                                return r;
                        continue;
                }
                if (!field_known(fields, k->value) && !(extra && streq(extra, k->value))) {
                        if (kind >= 0 && (why = refused_why((enum res_kind) kind, k->value)))
                                r = fail(c, k, "field '%s' in %s is not supported: %s", k->value, where, why);
                        else {
                                fields_list(fields, list, sizeof list);
                                if (extra) {
                                        strlcat(list, ", ", sizeof list);
                                        strlcat(list, extra, sizeof list);
                                }
                                r = fail(c, k, "unknown field '%s' in %s (known: %s)", k->value, where, list);
                        }
                        if (!c->many)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < i; j += 2)
                        if (m->items[j]->type == Y_SCALAR && streq(m->items[j]->value, k->value)) {
                                r = fail(c, k, "duplicate field '%s' in %s", k->value, where);
                                if (!c->many)
                                        return r;
                                break;
                        }
        }
        return r;
}

static int check_keys(struct ctx *c, const struct ynode *m, const char *const *fields, const char *extra,
                      const char *where) {
        return check_keys_kind(c, m, fields, extra, where, -1);
}

static const struct ynode *map_get(const struct ynode *m, const char *key) {
        for (size_t i = 0; i + 1 < m->n; i += 2)
                if (m->items[i]->type == Y_SCALAR && streq(m->items[i]->value, key))
                        return m->items[i + 1];
        return NULL;
}

/* mgmt writes every field with its empty default ('' , 0, false, [], {}):
 * such a value means "not set". */
static bool is_unset(const struct ynode *v) {
        if (!v || ynode_is_null(v))
                return true;
        if (v->type != Y_SCALAR)
                return v->n == 0;
        if (v->len == 0)
                return true;
        return v->plain && (streq(v->value, "0") || streq(v->value, "false"));
}

/* An integer field (plain scalar or JSON integer) in [min, max]. */
static int get_int(struct ctx *c, const char *what, const struct ynode *v, long long min, long long max,
                   long long *ret) {
        const char *s;
        char *end;
        long long n;
        int r;

        if (v->type == Y_SCALAR && v->is_int)
                n = v->ival;
        else {
                if ((r = get_string(c, what, v, &s)) < 0)
                        return r;
                errno = 0;
                n = strtoll(s, &end, 10);
                if (errno || end == s || *end)
                        return fail(c, v, "%s must be a whole number, got '%s'", what, s);
        }
        if (n < min || n > max)
                return fail(c, v, "%s must be between %lld and %lld, got %lld", what, min, max, n);
        *ret = n;
        return 0;
}

/* A boolean field where mgmt's empty default ('' or unset) means false. */
static int get_bool_opt(struct ctx *c, const char *what, const struct ynode *v, bool *ret) {
        if (is_unset(v)) {
                *ret = false;
                return 0;
        }
        return get_bool(c, what, v, ret);
}

/* meta: mgmt's meta parameters. noop, retry, delay and poll are honoured;
 * the others are accepted only at their empty value, with the reason. */
static int parse_meta(struct ctx *c, const char *where, const struct ynode *m, struct res_meta *ret) {
        static const char *const fields[] = { "noop",  "retry",    "delay",     "poll",   "limit",
                                              "burst", "sema",     "rewatch",   "realize", "reverse",
                                              "autoedge", "autogroup", "hidden", "export", "reset",
                                              NULL };
        static const struct {
                const char *field, *why;
        } unset_only[] = {
                { "limit", "event rate limits are not supported (the agent checks on each event)" },
                { "burst", "event rate limits are not supported (the agent checks on each event)" },
                { "sema", "semaphores are not supported (the agent runs one resource at a time)" },
                { "rewatch", "watches are always kept across graph changes" },
                { "realize", "the agent always checks a resource before it applies it" },
                { "reverse", "removing what a resource did when it leaves the graph is not supported" },
                { "autoedge", "automatic edges are not added: write the edge in 'edges'" },
                { "autogroup", "resources are never grouped" },
                { "hidden", "every resource in the graph is applied" },
                { "export", "export with the '@@' name prefix" },
                { "reset", "retry counters are reset on every graph change already" },
        };
        char what[NAME_MAX_LEN + 96];
        struct res_meta meta = { 0 };
        const struct ynode *v;
        long long n;
        int r, bad = 0;

        if (ynode_is_null(m)) {
                *ret = meta;
                return 0;
        }
        if (m->type != Y_MAP)
                return fail(c, m, "%s: 'meta' must be a mapping (noop, retry, delay, poll), got %s", where,
                            ytype_name(m));
        snprintf(what, sizeof what, "'meta' of %s", where);
        if ((r = check_keys(c, m, fields, NULL, what)) < 0)
                bad = r;
#define META(key) (snprintf(what, sizeof what, "%s: meta '%s'", where, key), what)
        if ((v = map_get(m, "noop")) && (r = get_bool_opt(c, META("noop"), v, &meta.noop)) < 0)
                bad = r;
        if ((v = map_get(m, "retry")) && !is_unset(v)) {
                if ((r = get_int(c, META("retry"), v, -1, 32767, &n)) < 0)
                        bad = r;
                else
                        meta.retry = (int) n;
        }
        if ((v = map_get(m, "delay")) && !is_unset(v)) {
                if ((r = get_int(c, META("delay"), v, 0, 31536000000LL, &n)) < 0) /* ms, up to a year */
                        bad = r;
                else
                        meta.delay_usec = (uint64_t) n * 1000;
        }
        if ((v = map_get(m, "poll")) && !is_unset(v)) {
                if ((r = get_int(c, META("poll"), v, 0, 31536000, &n)) < 0) /* s */
                        bad = r;
                else
                        meta.poll_usec = (uint64_t) n * USEC_PER_SEC;
        }
        for (size_t i = 0; i < ELEMENTSOF(unset_only); i++)
                if ((v = map_get(m, unset_only[i].field)) && !is_unset(v))
                        bad = fail(c, v, "%s: meta '%s' is not supported: %s (only its empty value is accepted)",
                                   where, unset_only[i].field, unset_only[i].why);
#undef META
        if (bad < 0)
                return bad;
        *ret = meta;
        return 0;
}

/* An optional string field; mgmt's '' means not set (stays NULL). */
static int dup_string_opt(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        if (!v || is_unset(v))
                return 0;
        return dup_string(c, what, v, ret);
}

/* A path to a shell: absolute. */
static int parse_shell(struct ctx *c, const char *what, const struct ynode *v, char **ret) {
        int r = dup_string_opt(c, what, v, ret);
        if (r < 0 || !*ret)
                return r;
        if ((*ret)[0] != '/') {
                r = fail(c, v, "%s must be an absolute path, got '%s'", what, *ret);
                free(*ret);
                *ret = NULL;
        }
        return r;
}

/* Validate one resource mapping of a known kind and fill r. In "many" mode
 * every error of the resource is recorded before it fails. */
static int resource_from_node(struct ctx *c, enum res_kind kind, const struct ynode *m, const char *extra,
                              struct resource *ret) {
        struct resource r = { .kind = kind, .file.mode = -1, .line = m->line, .col = m->col };
        const struct ynode *v;
        const char *kn = kind_names[kind], *s;
        char where[NAME_MAX_LEN + 64], what[NAME_MAX_LEN + 96];
        int q, bad = 0;
        long long n;

        if (m->type != Y_MAP)
                return fail(c, m, "a %s resource must be a mapping with at least 'name', got %s", kn, ytype_name(m));
        v = map_get(m, "name");
        if (!v)
                return fail(c, m, "%s resource has no 'name'", kn);
        q = get_string(c, "'name'", v, &s);
        if (q < 0)
                return q;
        if (startswith(s, "@@")) {
                r.exported = true;
                s += 2;
                /* "@@" marks an export once; "@@@@x" would read as two different names */
                if (startswith(s, "@@"))
                        return fail(c, v, "resource name '@@%s': '@@' marks an export once, the name itself must "
                                    "not start with '@@'", s);
        }
        q = check_name(c, "resource name", v, s);
        if (q < 0)
                return q;
        r.name = strdup(s);
        if (!r.name)
                return -ENOMEM;
        snprintf(where, sizeof where, "%s resource '%s'", kn, r.name);

/* a field error: -ENOMEM ends it now; -EINVAL ends it now or after every field */
#define CHECK(expr)                                             \
        do {                                                    \
                int _q = (expr);                                \
                if (_q < 0) {                                   \
                        bad = _q;                               \
                        if (_q != -EINVAL || !c->many)          \
                                goto fail;                      \
                }                                               \
        } while (0)
#define FIELD(key) (snprintf(what, sizeof what, "%s: '%s'", where, key), what)
        CHECK(check_keys_kind(c, m, kind_fields[kind], extra, where, (int) kind));
        if ((v = map_get(m, "meta")))
                CHECK(parse_meta(c, where, v, &r.meta));

        switch (kind) {
        case RES_FILE:
                v = map_get(m, "path");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'path' (required, an absolute file name)", where));
                else if ((q = dup_string(c, FIELD("path"), v, &r.file.path)) < 0)
                        CHECK(q);
                else if (r.file.path[0] != '/')
                        CHECK(fail(c, v, "%s: 'path' must be absolute, got '%s'", where, r.file.path));
                else if ((s = path_problem(r.file.path)))
                        CHECK(fail(c, v, "%s: 'path' %s, got '%s'", where, s, r.file.path));
                bool dir = r.file.path && r.file.path[0] && r.file.path[strlen(r.file.path) - 1] == '/';
                if (dir && streq(r.file.path, "/"))
                        CHECK(fail(c, v, "%s: 'path' must not be the root directory", where));
                if ((v = map_get(m, "content"))) {
                        CHECK(dup_string(c, FIELD("content"), v, &r.file.content));
                        if (dir)
                                CHECK(fail(c, v, "%s: 'content' makes no sense for a directory (a 'path' ending "
                                          "in '/')", where));
                }
                if ((v = map_get(m, "source")) && !is_unset(v)) {
                        CHECK(dup_string(c, FIELD("source"), v, &r.file.source));
                        if (r.file.source && r.file.source[0] != '/')
                                CHECK(fail(c, v, "%s: 'source' must be an absolute path, got '%s'", where,
                                           r.file.source));
                        else if (r.file.source && (s = path_problem(r.file.source)))
                                CHECK(fail(c, v, "%s: 'source' %s, got '%s'", where, s, r.file.source));
                        else if (r.file.source && (dir || r.file.source[strlen(r.file.source) - 1] == '/'))
                                CHECK(fail(c, v, "%s: 'source' of a directory is not supported (a tree copy): "
                                          "give each file its own resource", where));
                        if (r.file.content)
                                CHECK(fail(c, v, "%s: give 'content' or 'source', not both", where));
                }
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "absent"))
                                r.file.absent = true;
                        else if (!streq(s, "exists"))
                                CHECK(fail(c, v, "%s: 'state' must be 'exists' or 'absent', got '%s'", where, s));
                }
                if ((v = map_get(m, "mode")) && !ynode_is_null(v) && !(v->type == Y_SCALAR && v->len == 0))
                        CHECK(parse_mode(c, FIELD("mode"), v, &r.file.mode));
                if ((v = map_get(m, "owner"))) {
                        CHECK(dup_string_opt(c, FIELD("owner"), v, &r.file.owner));
                        if (r.file.owner && !account_is_valid(r.file.owner))
                                CHECK(fail(c, v, "%s: 'owner' must be a user name or number, got '%s'", where,
                                           r.file.owner));
                }
                if ((v = map_get(m, "group"))) {
                        CHECK(dup_string_opt(c, FIELD("group"), v, &r.file.group));
                        if (r.file.group && !account_is_valid(r.file.group))
                                CHECK(fail(c, v, "%s: 'group' must be a group name or number, got '%s'", where,
                                           r.file.group));
                }
                if ((v = map_get(m, "force")))
                        CHECK(get_bool_opt(c, FIELD("force"), v, &r.file.force));
                if ((v = map_get(m, "recurse"))) {
                        bool rec = false;
                        CHECK(get_bool_opt(c, FIELD("recurse"), v, &rec));
                        if (rec)
                                CHECK(fail(c, v, "%s: 'recurse: true' (managing a whole directory tree) is not "
                                          "supported: give each file its own resource", where));
                }
                if (r.file.absent && (r.file.content || r.file.source))
                        CHECK(fail(c, map_get(m, r.file.content ? "content" : "source"),
                                   "%s: '%s' makes no sense with state 'absent'", where,
                                   r.file.content ? "content" : "source"));
                break;
        case RES_EXEC:
                v = map_get(m, "cmd");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'cmd' (required, the command to run)", where));
                else if ((q = dup_string(c, FIELD("cmd"), v, &r.exec.cmd)) < 0)
                        CHECK(q);
                else if (!*r.exec.cmd)
                        CHECK(fail(c, v, "%s: 'cmd' must not be empty", where));
                CHECK(parse_shell(c, FIELD("shell"), map_get(m, "shell"), &r.exec.shell));
                CHECK(dup_string_opt(c, FIELD("ifcmd"), map_get(m, "ifcmd"), &r.exec.ifcmd));
                CHECK(parse_shell(c, FIELD("ifshell"), map_get(m, "ifshell"), &r.exec.ifshell));
                CHECK(dup_string_opt(c, FIELD("watchcmd"), map_get(m, "watchcmd"), &r.exec.watchcmd));
                CHECK(parse_shell(c, FIELD("watchshell"), map_get(m, "watchshell"), &r.exec.watchshell));
                if ((v = map_get(m, "timeout")) && !is_unset(v))
                        CHECK(parse_timeout(c, FIELD("timeout"), v, &r.exec.timeout_usec));
                if ((v = map_get(m, "pollint")) && !is_unset(v)) {
                        if ((q = get_int(c, FIELD("pollint"), v, 0, 31536000, &n)) < 0)
                                CHECK(q);
                        else
                                r.exec.pollint_usec = (uint64_t) n * USEC_PER_SEC;
                }
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (!streq(s, "present"))
                                CHECK(fail(c, v, "%s: 'state' of an exec can only be 'present' (mgmt's only "
                                          "value; a command cannot be made absent), got '%s'", where, s));
                }
                break;
        case RES_PRINT:
                v = map_get(m, "msg");
                if (!v)
                        CHECK(fail(c, m, "%s has no 'msg' (required, the message to print)", where));
                else
                        CHECK(dup_string(c, FIELD("msg"), v, &r.print.msg));
                break;
        case RES_SVC: {
                char unit[NAME_MAX_LEN + 16];
                bool session = false;
                if (svc_unit_name(r.name, unit, sizeof unit) < 0 || strlen(unit) > NAME_MAX_LEN)
                        CHECK(fail(c, map_get(m, "name"), "%s: the unit name is too long", where));
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "running"))
                                r.svc.state = SVC_RUNNING;
                        else if (streq(s, "stopped"))
                                r.svc.state = SVC_STOPPED;
                        else
                                CHECK(fail(c, v, "%s: 'state' must be 'running' or 'stopped', got '%s'", where, s));
                }
                if ((v = map_get(m, "startup")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("startup"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "enabled"))
                                r.svc.startup = SVC_ENABLED;
                        else if (streq(s, "disabled"))
                                r.svc.startup = SVC_DISABLED;
                        else
                                CHECK(fail(c, v, "%s: 'startup' must be 'enabled', 'disabled' or '', got '%s'", where,
                                           s));
                }
                if ((v = map_get(m, "session"))) {
                        CHECK(get_bool_opt(c, FIELD("session"), v, &session));
                        if (session)
                                CHECK(fail(c, v, "%s: 'session: true' (a user's service manager) is not supported: "
                                          "the agent manages the system's units", where));
                }
                break;
        }
        case RES_PKG:
                if (!pkg_name_is_valid(r.name))
                        CHECK(fail(c, map_get(m, "name"), "%s: '%s' is not a Debian package name ([a-z0-9][a-z0-9+.-]+, "
                                  "optionally ':ARCH')", where, r.name));
                if ((v = map_get(m, "state")) && !is_unset(v)) {
                        if ((q = get_string(c, FIELD("state"), v, &s)) < 0)
                                CHECK(q);
                        else if (streq(s, "installed"))
                                r.pkg.state = PKG_INSTALLED;
                        else if (streq(s, "uninstalled"))
                                r.pkg.state = PKG_UNINSTALLED;
                        else if (streq(s, "newest"))
                                r.pkg.state = PKG_NEWEST;
                        else
                                CHECK(fail(c, v, "%s: 'state' must be 'installed', 'uninstalled' or 'newest', got '%s' "
                                          "(pinning a version is not supported: use apt preferences)", where, s));
                }
                for (size_t i = 0; i < 3; i++) {
                        static const char *const allow[] = { "allowuntrusted", "allownonfree", "allowunsupported" };
                        bool yes = false;
                        if ((v = map_get(m, allow[i]))) {
                                CHECK(get_bool_opt(c, FIELD(allow[i]), v, &yes));
                                if (yes)
                                        CHECK(fail(c, v, "%s: '%s: true' is not supported: packages come from apt's "
                                                  "configured, trusted sources", where, allow[i]));
                        }
                }
                break;
        default:
                break;
        }
#undef FIELD
#undef CHECK
        if (bad < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        resource_clear(&r);
        return bad;
}

int resource_from_json(json_t *j, struct resource *ret, char *err, size_t errlen) {
        struct ctx c = { .filename = NULL, .err = err, .errlen = errlen };
        struct ynode *n = NULL;
        json_t *k;
        int kind, r;

        if (!json_is_object(j))
                return fail_at(&c, 0, 0, "resource must be a JSON object");
        k = json_object_get(j, "kind");
        if (!json_is_string(k))
                return fail_at(&c, 0, 0, "resource has no 'kind' string");
        kind = res_kind_from_string(json_string_value(k));
        if (kind < 0)
                return fail_at(&c, 0, 0, "unknown resource kind '%s' (known: file, exec, print, noop, svc, pkg)",
                               json_string_value(k));
        r = json_to_ynode(j, &n);
        if (r < 0)
                return r;
        /* "exported" is the JSON spelling of the "@@" prefix */
        json_t *e = json_object_get(j, "exported");
        if (e && !json_is_boolean(e)) {
                ynode_free(n);
                return fail_at(&c, 0, 0, "'exported' must be true or false");
        }
        /* drop "exported" from the tree so check_keys sees only kind fields */
        for (size_t i = 0; i + 1 < n->n; i += 2)
                if (streq(n->items[i]->value, "exported")) {
                        ynode_free(n->items[i]);
                        ynode_free(n->items[i + 1]);
                        memmove(&n->items[i], &n->items[i + 2], (n->n - i - 2) * sizeof(n->items[0]));
                        n->n -= 2;
                        break;
                }
        r = resource_from_node(&c, (enum res_kind) kind, n, "kind", ret);
        ynode_free(n);
        if (r < 0)
                return r;
        ret->exported = json_is_true(e);
        ret->line = ret->col = 0;
        return 0;
}

json_t *resource_to_json(const struct resource *r) {
        json_t *j = json_pack("{s:s, s:s}", "kind", res_kind_to_string(r->kind), "name", r->name);
        char buf[16];
        int q = 0;

        if (!j)
                return NULL;
        if (r->exported)
                q |= json_object_set_new(j, "exported", json_true());
        if (r->meta.noop || r->meta.retry || r->meta.delay_usec || r->meta.poll_usec) {
                json_t *m = json_object();
                if (!m) {
                        json_decref(j);
                        return NULL;
                }
                if (r->meta.noop)
                        q |= json_object_set_new(m, "noop", json_true());
                if (r->meta.retry)
                        q |= json_object_set_new(m, "retry", json_integer(r->meta.retry));
                if (r->meta.delay_usec)
                        q |= json_object_set_new(m, "delay", json_integer((json_int_t) (r->meta.delay_usec / 1000)));
                if (r->meta.poll_usec)
                        q |= json_object_set_new(m, "poll",
                                                 json_integer((json_int_t) (r->meta.poll_usec / USEC_PER_SEC)));
                q |= json_object_set_new(j, "meta", m);
        }
        switch (r->kind) {
        case RES_FILE:
                q |= json_object_set_new(j, "path", json_string(r->file.path));
                if (r->file.content)
                        q |= json_object_set_new(j, "content", json_string(r->file.content));
                if (r->file.source)
                        q |= json_object_set_new(j, "source", json_string(r->file.source));
                if (r->file.force)
                        q |= json_object_set_new(j, "force", json_true());
                q |= json_object_set_new(j, "state", json_string(r->file.absent ? "absent" : "exists"));
                if (r->file.mode >= 0) {
                        snprintf(buf, sizeof buf, "%04o", (unsigned) r->file.mode);
                        q |= json_object_set_new(j, "mode", json_string(buf));
                }
                if (r->file.owner)
                        q |= json_object_set_new(j, "owner", json_string(r->file.owner));
                if (r->file.group)
                        q |= json_object_set_new(j, "group", json_string(r->file.group));
                break;
        case RES_EXEC:
                q |= json_object_set_new(j, "cmd", json_string(r->exec.cmd));
                if (r->exec.shell)
                        q |= json_object_set_new(j, "shell", json_string(r->exec.shell));
                if (r->exec.ifcmd)
                        q |= json_object_set_new(j, "ifcmd", json_string(r->exec.ifcmd));
                if (r->exec.ifshell)
                        q |= json_object_set_new(j, "ifshell", json_string(r->exec.ifshell));
                if (r->exec.watchcmd)
                        q |= json_object_set_new(j, "watchcmd", json_string(r->exec.watchcmd));
                if (r->exec.watchshell)
                        q |= json_object_set_new(j, "watchshell", json_string(r->exec.watchshell));
                if (r->exec.pollint_usec)
                        q |= json_object_set_new(
                                j, "pollint", json_integer((json_int_t) (r->exec.pollint_usec / USEC_PER_SEC)));
                if (r->exec.timeout_usec) {
                        if (r->exec.timeout_usec % USEC_PER_SEC == 0)
                                q |= json_object_set_new(
                                        j, "timeout", json_integer((json_int_t) (r->exec.timeout_usec / USEC_PER_SEC)));
                        else
                                q |= json_object_set_new(j, "timeout",
                                                         json_real((double) r->exec.timeout_usec / 1e6));
                }
                break;
        case RES_PRINT:
                q |= json_object_set_new(j, "msg", json_string(r->print.msg));
                break;
        case RES_SVC:
                if (r->svc.state)
                        q |= json_object_set_new(j, "state", json_string(svc_state_to_string(r->svc.state)));
                if (r->svc.startup)
                        q |= json_object_set_new(j, "startup", json_string(svc_startup_to_string(r->svc.startup)));
                break;
        case RES_PKG:
                q |= json_object_set_new(j, "state", json_string(pkg_state_to_string(r->pkg.state)));
                break;
        default:
                break;
        }
        if (q) {
                json_decref(j);
                return NULL;
        }
        return j;
}

static int strdup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int resource_copy(const struct resource *src, struct resource *dst) {
        struct resource r = *src;
        r.name = r.file.path = r.file.content = r.file.source = r.file.owner = r.file.group = NULL;
        r.exec.cmd = r.exec.shell = r.exec.ifcmd = r.print.msg = NULL;
        r.exec.ifshell = r.exec.watchcmd = r.exec.watchshell = NULL;
        if (strdup_opt(src->name, &r.name) < 0 || strdup_opt(src->file.path, &r.file.path) < 0 ||
            strdup_opt(src->file.source, &r.file.source) < 0 || strdup_opt(src->exec.ifshell, &r.exec.ifshell) < 0 ||
            strdup_opt(src->exec.watchcmd, &r.exec.watchcmd) < 0 ||
            strdup_opt(src->exec.watchshell, &r.exec.watchshell) < 0 ||
            strdup_opt(src->file.content, &r.file.content) < 0 || strdup_opt(src->file.owner, &r.file.owner) < 0 ||
            strdup_opt(src->file.group, &r.file.group) < 0 || strdup_opt(src->exec.cmd, &r.exec.cmd) < 0 ||
            strdup_opt(src->exec.shell, &r.exec.shell) < 0 || strdup_opt(src->exec.ifcmd, &r.exec.ifcmd) < 0 ||
            strdup_opt(src->print.msg, &r.print.msg) < 0) {
                resource_clear(&r);
                return -ENOMEM;
        }
        *dst = r;
        return 0;
}

static bool streq_null(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

/* Same desired state (position in the file does not matter). */
bool resource_equal(const struct resource *a, const struct resource *b) {
        if (a->kind != b->kind || a->exported != b->exported || !streq_null(a->name, b->name))
                return false;
        if (a->meta.noop != b->meta.noop || a->meta.retry != b->meta.retry ||
            a->meta.delay_usec != b->meta.delay_usec || a->meta.poll_usec != b->meta.poll_usec)
                return false;
        switch (a->kind) {
        case RES_FILE:
                return streq_null(a->file.path, b->file.path) && streq_null(a->file.content, b->file.content) &&
                       a->file.absent == b->file.absent && a->file.mode == b->file.mode &&
                       streq_null(a->file.owner, b->file.owner) && streq_null(a->file.group, b->file.group) &&
                       streq_null(a->file.source, b->file.source) && a->file.force == b->file.force;
        case RES_EXEC:
                return streq_null(a->exec.cmd, b->exec.cmd) && streq_null(a->exec.shell, b->exec.shell) &&
                       streq_null(a->exec.ifcmd, b->exec.ifcmd) && a->exec.timeout_usec == b->exec.timeout_usec &&
                       streq_null(a->exec.ifshell, b->exec.ifshell) &&
                       streq_null(a->exec.watchcmd, b->exec.watchcmd) &&
                       streq_null(a->exec.watchshell, b->exec.watchshell) &&
                       a->exec.pollint_usec == b->exec.pollint_usec;
        case RES_PRINT:
                return streq_null(a->print.msg, b->print.msg);
        case RES_SVC:
                return a->svc.state == b->svc.state && a->svc.startup == b->svc.startup;
        case RES_PKG:
                return a->pkg.state == b->pkg.state;
        default:
                return true;
        }
}

/* ---- graph ---- */

void graph_free(struct graph *g) {
        if (!g)
                return;
        free(g->name);
        for (size_t i = 0; i < g->n_res; i++)
                resource_clear(&g->res[i]);
        free(g->res);
        for (size_t i = 0; i < g->n_collect; i++)
                free(g->collect[i].pattern);
        free(g->collect);
        for (size_t i = 0; i < g->n_edges; i++)
                free(g->edges[i].name);
        free(g->edges);
        free(g);
}

static void graph_freep(struct graph **g) {
        graph_free(*g);
}

/* Order resource indexes by (kind, name, position), for qsort_r. */
static int cmp_res_idx(const void *a, const void *b, void *userdata) {
        const struct graph *g = userdata;
        const struct resource *x = &g->res[*(const size_t *) a], *y = &g->res[*(const size_t *) b];
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        int c = strcmp(x->name, y->name);
        if (c)
                return c;
        return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

/* Index of resource (kind, name) via the sorted index, or -1. */
static ssize_t find_res(const struct graph *g, const size_t *sorted, enum res_kind kind, const char *name) {
        size_t lo = 0, hi = g->n_res;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct resource *r = &g->res[sorted[mid]];
                int c = r->kind != kind ? (r->kind < kind ? -1 : 1) : strcmp(r->name, name);
                if (c == 0)
                        return (ssize_t) sorted[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* Binary min-heap of resource indexes: ties broken by position. */
struct heap {
        size_t *v;
        size_t n;
};

static void heap_push(struct heap *h, size_t x) {
        size_t i = h->n++;
        h->v[i] = x;
        while (i > 0 && h->v[(i - 1) / 2] > h->v[i]) {
                size_t p = (i - 1) / 2, t = h->v[p];
                h->v[p] = h->v[i];
                h->v[i] = t;
                i = p;
        }
}

static size_t heap_pop(struct heap *h) {
        size_t top = h->v[0], i = 0;
        h->v[0] = h->v[--h->n];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < h->n && h->v[l] < h->v[m])
                        m = l;
                if (r < h->n && h->v[r] < h->v[m])
                        m = r;
                if (m == i)
                        break;
                size_t t = h->v[m];
                h->v[m] = h->v[i];
                h->v[i] = t;
                i = m;
        }
        return top;
}

/* Kahn's algorithm. On a cycle returns -ELOOP and, if ret_cycle_edge is
 * given, the index of one edge on the cycle and a text "a -> b -> a". */
static int toposort_full(const struct graph *g, size_t **ret_order, size_t *ret_cycle_edge, char *cycle,
                         size_t cyclelen) {
        size_t n = g->n_res, m = g->n_edges, done = 0;
        _cleanup_free_ size_t *indeg = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *out_start = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *out = calloc(m + 1, sizeof(size_t)); /* edge indexes grouped by source */
        _cleanup_free_ size_t *heapv = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *order = calloc(n + 1, sizeof(size_t));
        struct heap h = { .v = heapv };

        if (!indeg || !out_start || !out || !heapv || !order)
                return -ENOMEM;
        for (size_t e = 0; e < m; e++) {
                indeg[g->edges[e].to]++;
                out_start[g->edges[e].from + 1]++;
        }
        for (size_t i = 0; i < n; i++)
                out_start[i + 1] += out_start[i];
        {
                _cleanup_free_ size_t *fill = calloc(n + 1, sizeof(size_t));
                if (!fill)
                        return -ENOMEM;
                for (size_t e = 0; e < m; e++) {
                        size_t f = g->edges[e].from;
                        out[out_start[f] + fill[f]++] = e;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (indeg[i] == 0)
                        heap_push(&h, i);
        while (h.n > 0) {
                size_t x = heap_pop(&h);
                order[done++] = x;
                for (size_t k = out_start[x]; k < out_start[x + 1]; k++) {
                        size_t t = g->edges[out[k]].to;
                        if (--indeg[t] == 0)
                                heap_push(&h, t);
                }
        }
        if (done < n) {
                /* Walk backwards over remaining predecessors until a node repeats. */
                if (ret_cycle_edge || cycle) {
                        _cleanup_free_ size_t *seen = calloc(n + 1, sizeof(size_t)); /* step+1 when visited */
                        _cleanup_free_ size_t *via = calloc(n + 1, sizeof(size_t));  /* edge taken into node */
                        if (!seen || !via)
                                return -ENOMEM;
                        /* in-edges grouped by target, so each step is cheap */
                        _cleanup_free_ size_t *in_start = calloc(n + 1, sizeof(size_t));
                        _cleanup_free_ size_t *in = calloc(m + 1, sizeof(size_t));
                        _cleanup_free_ size_t *fill = calloc(n + 1, sizeof(size_t));
                        if (!in_start || !in || !fill)
                                return -ENOMEM;
                        for (size_t e = 0; e < m; e++)
                                in_start[g->edges[e].to + 1]++;
                        for (size_t i = 0; i < n; i++)
                                in_start[i + 1] += in_start[i];
                        for (size_t e = 0; e < m; e++) {
                                size_t t = g->edges[e].to;
                                in[in_start[t] + fill[t]++] = e;
                        }
                        size_t x = 0, step = 0;
                        while (x < n && indeg[x] == 0)
                                x++;
                        while (x < n && !seen[x]) {
                                seen[x] = ++step;
                                size_t k;
                                for (k = in_start[x]; k < in_start[x + 1]; k++)
                                        if (indeg[g->edges[in[k]].from] > 0)
                                                break;
                                if (k == in_start[x + 1])
                                        break; /* cannot happen */
                                via[x] = in[k];
                                x = g->edges[in[k]].from;
                        }
                        /* x starts the cycle: forward order is x -> ... following edges in reverse of the walk */
                        if (x < n && seen[x]) {
                                if (ret_cycle_edge)
                                        *ret_cycle_edge = via[x];
                                if (cycle && cyclelen) {
                                        /* the walk went x <- p1 <- p2 ... <- x; print forward: x -> ... */
                                        size_t len = 0, y = x;
                                        _cleanup_free_ size_t *path = calloc(n + 1, sizeof(size_t));
                                        if (!path)
                                                return -ENOMEM;
                                        do {
                                                path[len++] = y;
                                                y = g->edges[via[y]].from;
                                        } while (y != x && len < n);
                                        cycle[0] = 0;
                                        for (size_t i = len; i > 0; i--) {
                                                const struct resource *r = &g->res[path[i % len]];
                                                char part[NAME_MAX_LEN + 32];
                                                snprintf(part, sizeof part, "%s '%s' -> ", kind_names[r->kind],
                                                         r->name);
                                                strlcat(cycle, part, cyclelen);
                                        }
                                        const struct resource *r = &g->res[path[0]];
                                        char part[NAME_MAX_LEN + 32];
                                        snprintf(part, sizeof part, "%s '%s'", kind_names[r->kind], r->name);
                                        strlcat(cycle, part, cyclelen);
                                }
                        }
                }
                return -ELOOP;
        }
        if (ret_order)
                *ret_order = TAKE_PTR(order);
        return 0;
}

int graph_toposort(const struct graph *g, size_t **ret_order) {
        return toposort_full(g, ret_order, NULL, NULL, 0);
}

static int push_res(struct graph *g, size_t *cap, struct resource *r) {
        if (g->n_res == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                struct resource *nr = reallocarray(g->res, nc, sizeof(*nr));
                if (!nr)
                        return -ENOMEM;
                g->res = nr;
                *cap = nc;
        }
        g->res[g->n_res++] = *r;
        return 0;
}

/* from/to of an edge: {kind, name} naming an existing resource. */
static int edge_end(struct ctx *c, const struct graph *g, const size_t *sorted, char *const *refused,
                    const char *ename, const char *which, const struct ynode *v, size_t *ret) {
        static const char *const fields[] = { "kind", "name", NULL };
        char where[NAME_MAX_LEN + 64];
        const struct ynode *kn, *nn;
        const char *ks, *ns;
        int kind, r;

        snprintf(where, sizeof where, "'%s' of edge '%s'", which, ename);
        if (v->type != Y_MAP)
                return fail(c, v, "%s must be a mapping {kind: K, name: N}, got %s", where, ytype_name(v));
        if ((r = check_keys(c, v, fields, NULL, where)) < 0)
                return r;
        kn = map_get(v, "kind");
        nn = map_get(v, "name");
        if (!kn || !nn)
                return fail(c, v, "%s needs both 'kind' and 'name'", where);
        if ((r = get_string(c, "'kind'", kn, &ks)) < 0 || (r = get_string(c, "'name'", nn, &ns)) < 0)
                return r;
        kind = res_kind_from_string(ks);
        if (kind < 0)
                return fail(c, kn, "%s: unknown kind '%s' (known: file, exec, print, noop, svc, pkg)", where, ks);
        if (startswith(ns, "@@"))
                ns += 2;
        ssize_t i = find_res(g, sorted, (enum res_kind) kind, ns);
        if (i < 0 && refused) {
                char key[NAME_MAX_LEN + 16];
                snprintf(key, sizeof key, "%s/%s", ks, ns);
                if (strv_contains(refused, key))
                        return -ENOENT; /* its error is reported already */
        }
        if (i < 0)
                return fail(c, nn, "%s names no existing resource: there is no %s resource '%s'", where, ks, ns);
        *ret = (size_t) i;
        return 0;
}

static int cmp_path_idx(const void *a, const void *b, void *userdata) {
        const struct graph *g = userdata;
        return strcmp(g->res[*(const size_t *) a].file.path, g->res[*(const size_t *) b].file.path);
}

/* Names are unique per kind. ret_sorted: resource indexes sorted by kind
 * and name, for edge look-ups. */
static int check_unique_names(struct ctx *c, struct graph *g, size_t **ret_sorted) {
        _cleanup_free_ size_t *sorted = calloc(g->n_res + 1, sizeof(size_t));

        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_res; i++)
                sorted[i] = i;
        qsort_r(sorted, g->n_res, sizeof(size_t), cmp_res_idx, g);
        int r = 0;
        for (size_t i = 1; i < g->n_res; i++) {
                const struct resource *a = &g->res[sorted[i - 1]], *b = &g->res[sorted[i]];
                if (a->kind == b->kind && streq(a->name, b->name)) {
                        r = fail_at(c, b->line, b->col, "duplicate %s resource name '%s' (first declared at line %u)",
                                    kind_names[b->kind], b->name, a->line);
                        if (!c->many)
                                return r;
                }
        }
        if (ret_sorted)
                *ret_sorted = TAKE_PTR(sorted);
        return r;
}

/* Two file resources applied here must not manage the same path: each would
 * rewrite what the other wrote, forever (inotify sees every write). */
static int check_unique_paths(struct ctx *c, const struct graph *g) {
        _cleanup_free_ size_t *idx = calloc(g->n_res + 1, sizeof(size_t));
        size_t n = 0;
        int r = 0;

        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_res; i++)
                if (g->res[i].kind == RES_FILE && !g->res[i].exported)
                        idx[n++] = i;
        qsort_r(idx, n, sizeof(size_t), cmp_path_idx, (void *) g);
        for (size_t i = 1; i < n; i++) {
                const struct resource *a = &g->res[idx[i - 1]], *b = &g->res[idx[i]];
                if (streq(a->file.path, b->file.path)) {
                        if (a->line > b->line) {
                                const struct resource *t = a;
                                a = b;
                                b = t;
                        }
                        r = fail_at(c, b->line, b->col, "file resources '%s' and '%s' (line %u) both manage '%s'",
                                    b->name, a->name, a->line, b->file.path);
                        if (!c->many)
                                return r;
                }
        }
        return r;
}

/* Validate the tree and build the graph. Errors are recorded and the
 * validation goes on (c->many) wherever what follows does not depend on the
 * broken part: every resource, collect entry and edge is checked. */
static int build_graph(struct ctx *c, const struct ynode *root, struct graph **ret) {
        static const char *const top_fields[] = { "graph", "comment", "resources", "collect", "edges", NULL };
        _cleanup_(graph_freep) struct graph *g = calloc(1, sizeof(*g));
        _cleanup_free_ size_t *sorted = NULL;
        _cleanup_free_ unsigned *eline = NULL, *ecol = NULL;
        _cleanup_strv_ char **refused = NULL; /* "kind/name" of resources that failed validation */
        const struct ynode *v;
        size_t cap = 0;
        int r;

/* an error: -ENOMEM (or any error outside "many" mode) ends the validation */
#define KEEP_GOING(expr)                                \
        do {                                            \
                int _r = (expr);                        \
                if (_r < 0 && !recorded(c, _r))         \
                        return _r;                      \
        } while (0)

        if (!g)
                return -ENOMEM;
        if (!root)
                return fail_at(c, 1, 1, "empty graph: expected a mapping with at least 'graph: NAME'");
        if (root->type != Y_MAP)
                return fail(c, root, "a graph must be a mapping with 'graph', 'resources', 'collect', 'edges', got %s",
                            ytype_name(root));
        KEEP_GOING(check_keys(c, root, top_fields, NULL, "the graph"));
        v = map_get(root, "graph");
        if (!v)
                KEEP_GOING(fail(c, root, "the graph has no 'graph' field (its name)"));
        else if ((r = dup_string(c, "'graph' (the graph name)", v, &g->name)) < 0)
                KEEP_GOING(r);
        else if (!*g->name)
                KEEP_GOING(fail(c, v, "'graph' (the graph name) must not be empty"));
        else if (has_ctrl(g->name) || strlen(g->name) > NAME_MAX_LEN)
                KEEP_GOING(fail(c, v, "'graph' (the graph name) must be at most %d bytes with no control characters",
                                NAME_MAX_LEN));
        if ((v = map_get(root, "comment")) && v->type != Y_SCALAR)
                KEEP_GOING(fail(c, v, "'comment' must be a string, got %s", ytype_name(v)));

        /* resources: {kind: [ {name:..., ...}, ... ]} */
        v = map_get(root, "resources");
        if (v && !ynode_is_null(v) && v->type != Y_MAP)
                KEEP_GOING(fail(c, v, "'resources' must be a mapping of kind to a list of resources, got %s",
                                ytype_name(v)));
        else if (v && !ynode_is_null(v)) {
                for (size_t i = 0; i + 1 < v->n; i += 2) {
                        const struct ynode *k = v->items[i], *list = v->items[i + 1];
                        bool twice = false;
                        if (k->type != Y_SCALAR || ynode_is_null(k)) {
                                KEEP_GOING(fail(c, k, "resource kinds must be strings"));
                                continue;
                        }
                        int kind = res_kind_from_string(k->value);
                        if (kind < 0) {
                                KEEP_GOING(fail(c, k, "unknown resource kind '%s' (known: file, exec, print, noop, svc, pkg)",
                                                k->value));
                                continue;
                        }
                        for (size_t j = 0; j < i; j += 2)
                                if (v->items[j]->type == Y_SCALAR && streq(v->items[j]->value, k->value))
                                        twice = true;
                        if (twice) {
                                KEEP_GOING(fail(c, k, "resource kind '%s' appears twice in 'resources'", k->value));
                                continue;
                        }
                        if (ynode_is_null(list))
                                continue;
                        if (list->type != Y_SEQ) {
                                KEEP_GOING(fail(c, list, "resources of kind '%s' must be a list, got %s", k->value,
                                                ytype_name(list)));
                                continue;
                        }
                        for (size_t j = 0; j < list->n; j++) {
                                struct resource res;
                                r = resource_from_node(c, (enum res_kind) kind, list->items[j], NULL, &res);
                                if (r < 0) {
                                        KEEP_GOING(r);
                                        /* edges to it must not report it missing */
                                        const struct ynode *nn =
                                                list->items[j]->type == Y_MAP ? map_get(list->items[j], "name") : NULL;
                                        if (nn && nn->type == Y_SCALAR && nn->value) {
                                                char key[NAME_MAX_LEN + 16];
                                                snprintf(key, sizeof key, "%s/%s", k->value,
                                                         startswith(nn->value, "@@") ? nn->value + 2 : nn->value);
                                                if (strv_push(&refused, key) < 0)
                                                        return -ENOMEM;
                                        }
                                        continue;
                                }
                                if ((r = push_res(g, &cap, &res)) < 0) {
                                        resource_clear(&res);
                                        return r;
                                }
                        }
                }
        }

        KEEP_GOING(check_unique_names(c, g, &sorted));
        if (!sorted)
                return -ENOMEM; /* check_unique_names returns it unless out of memory */
        KEEP_GOING(check_unique_paths(c, g));

        /* collect: [ {kind: K, pattern: P} ]; an empty pattern ('') is not set */
        v = map_get(root, "collect");
        if (v && !ynode_is_null(v) && v->type != Y_SEQ)
                KEEP_GOING(fail(c, v, "'collect' must be a list of {kind, pattern}, got %s", ytype_name(v)));
        else if (v && !ynode_is_null(v)) {
                static const char *const fields[] = { "kind", "pattern", NULL };
                g->collect = calloc(v->n + 1, sizeof(struct collect));
                if (!g->collect)
                        return -ENOMEM;
                for (size_t i = 0; i < v->n; i++) {
                        const struct ynode *e = v->items[i], *kn, *pn;
                        const char *ks;
                        bool twice = false;
                        if (e->type != Y_MAP) {
                                KEEP_GOING(fail(c, e, "a 'collect' entry must be a mapping {kind, pattern}, got %s",
                                                ytype_name(e)));
                                continue;
                        }
                        if ((r = check_keys(c, e, fields, NULL, "a 'collect' entry")) < 0) {
                                KEEP_GOING(r);
                                continue;
                        }
                        kn = map_get(e, "kind");
                        pn = map_get(e, "pattern");
                        if (!kn) {
                                KEEP_GOING(fail(c, e, "'collect' entry has no 'kind'"));
                                continue;
                        }
                        if (!pn) {
                                KEEP_GOING(fail(c, e, "'collect' entry has no 'pattern'"));
                                continue;
                        }
                        if ((r = get_string(c, "collect 'kind'", kn, &ks)) < 0) {
                                KEEP_GOING(r);
                                continue;
                        }
                        int kind = res_kind_from_string(ks);
                        if (kind < 0) {
                                KEEP_GOING(fail(c, kn,
                                                "unknown kind '%s' in 'collect' (known: file, exec, print, noop, svc, pkg)", ks));
                                continue;
                        }
                        for (size_t j = 0; j < g->n_collect; j++)
                                if (g->collect[j].kind == (enum res_kind) kind)
                                        twice = true;
                        if (twice) {
                                KEEP_GOING(fail(c, kn, "kind '%s' is collected twice in 'collect'", ks));
                                continue;
                        }
                        struct collect *col = &g->collect[g->n_collect];
                        col->kind = (enum res_kind) kind;
                        if (is_unset(pn)) { /* mgmt's '': collected resources keep their own path */
                                g->n_collect++;
                                continue;
                        }
                        if ((r = dup_string(c, "collect 'pattern'", pn, &col->pattern)) < 0) {
                                KEEP_GOING(r);
                                continue;
                        }
                        g->n_collect++;
                        size_t pl = strlen(col->pattern);
                        if (kind == RES_FILE && (col->pattern[0] != '/' || col->pattern[pl - 1] != '/'))
                                KEEP_GOING(fail(c, pn,
                                                "collect 'pattern' for kind 'file' must be an absolute directory "
                                                "ending in '/', got '%s'",
                                                col->pattern));
                }
        }

        /* edges: [ {name, from: {kind, name}, to: {kind, name}, notify} ] */
        v = map_get(root, "edges");
        if (v && !ynode_is_null(v) && v->type != Y_SEQ)
                KEEP_GOING(fail(c, v, "'edges' must be a list, got %s", ytype_name(v)));
        else if (v && !ynode_is_null(v)) {
                static const char *const fields[] = { "name", "from", "to", "notify", NULL };
                g->edges = calloc(v->n + 1, sizeof(struct edge));
                eline = calloc(v->n + 1, sizeof(unsigned));
                ecol = calloc(v->n + 1, sizeof(unsigned));
                if (!g->edges || !eline || !ecol)
                        return -ENOMEM;
                for (size_t i = 0; i < v->n; i++) {
                        const struct ynode *e = v->items[i], *nn, *fn, *tn, *on;
                        struct edge *ed = &g->edges[g->n_edges];
                        char where[NAME_MAX_LEN + 32];
                        size_t dup = SIZE_MAX;
                        if (e->type != Y_MAP) {
                                KEEP_GOING(fail(c, e, "an edge must be a mapping {name, from, to, notify}, got %s",
                                                ytype_name(e)));
                                continue;
                        }
                        nn = map_get(e, "name");
                        if (!nn) {
                                KEEP_GOING(fail(c, e, "edge has no 'name'"));
                                continue;
                        }
                        if ((r = dup_string(c, "edge 'name'", nn, &ed->name)) < 0) {
                                KEEP_GOING(r);
                                continue;
                        }
                        if ((r = check_name(c, "edge name", nn, ed->name)) < 0) {
                                KEEP_GOING(r);
                                free(ed->name);
                                ed->name = NULL;
                                continue;
                        }
                        snprintf(where, sizeof where, "edge '%s'", ed->name);
                        for (size_t j = 0; j < g->n_edges; j++)
                                if (streq(g->edges[j].name, ed->name))
                                        dup = j;
                        bool ok = true;
                        if ((r = check_keys(c, e, fields, NULL, where)) < 0) {
                                KEEP_GOING(r);
                                ok = false;
                        }
                        fn = map_get(e, "from");
                        tn = map_get(e, "to");
                        if (!fn) {
                                KEEP_GOING(fail(c, e, "edge '%s' has no 'from'", ed->name));
                                ok = false;
                        } else if ((r = edge_end(c, g, sorted, refused, ed->name, "from", fn, &ed->from)) < 0) {
                                if (r != -ENOENT)
                                        KEEP_GOING(r);
                                ok = false;
                        }
                        if (!tn) {
                                KEEP_GOING(fail(c, e, "edge '%s' has no 'to'", ed->name));
                                ok = false;
                        } else if ((r = edge_end(c, g, sorted, refused, ed->name, "to", tn, &ed->to)) < 0) {
                                if (r != -ENOENT)
                                        KEEP_GOING(r);
                                ok = false;
                        }
                        if ((on = map_get(e, "notify")) && (r = get_bool_opt(c, "edge 'notify'", on, &ed->notify)) < 0) {
                                KEEP_GOING(r);
                                ok = false;
                        }
                        if (dup != SIZE_MAX) {
                                KEEP_GOING(fail(c, nn, "duplicate edge name '%s' (first declared at line %u)", ed->name,
                                                eline[dup]));
                                ok = false;
                        }
                        if (!ok) {
                                free(ed->name);
                                *ed = (struct edge){ 0 };
                                continue;
                        }
                        eline[g->n_edges] = e->line;
                        ecol[g->n_edges] = e->col;
                        g->n_edges++;
                }
        }
#undef KEEP_GOING

        if (c->n_errs > 0)
                return -EINVAL;
        if (g->n_edges > 0) {
                char cyc[1024];
                size_t ce = 0;
                cyc[0] = 0;
                r = toposort_full(g, NULL, &ce, cyc, sizeof cyc);
                if (r == -ELOOP)
                        return fail_at(c, eline[ce], ecol[ce], "edges form a cycle: %s", cyc);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(g);
        return 0;
}

int graph_parse(const char *text, size_t len, const char *filename, struct graph **ret, char *err, size_t errlen) {
        struct ctx c = { .filename = filename ? filename : "<graph>", .err = err, .errlen = errlen };
        struct ynode *root = NULL;
        int r;

        if (err && errlen)
                err[0] = 0;
        if (!text) /* e.g. a deploy record without a graph: same as an empty file */
                text = "", len = 0;
        if (len > GRAPH_MAX_SIZE)
                return fail_at(&c, 0, 0, "graph is %zu bytes, larger than the limit of %d bytes (1 MiB)", len,
                               GRAPH_MAX_SIZE);
        r = ytree_parse(&c, text, len, &root);
        if (r < 0)
                return r;
        c.many = true;
        r = build_graph(&c, root, ret);
        ynode_free(root);
        if (r == -EINVAL)
                errors_finish(&c);
        return r;
}

int graph_load_file(const char *path, struct graph **ret, char **ret_text, char *err, size_t errlen) {
        struct ctx c = { .filename = path, .err = err, .errlen = errlen };
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_max(path, GRAPH_MAX_SIZE, &text, &len);
        if (r == -EFBIG)
                return fail_at(&c, 0, 0, "graph is larger than the limit of %d bytes (1 MiB)", GRAPH_MAX_SIZE);
        if (r < 0) {
                snprintf(err, errlen, "cannot read graph '%s': %s", path, strerror(-r));
                return r;
        }
        r = graph_parse(text, len, path, ret, err, errlen);
        if (r < 0)
                return r;
        if (ret_text)
                *ret_text = TAKE_PTR(text);
        return 0;
}

/* Replace every ${hostname} in *s; NULL stays NULL. */
static int subst(char **s, const char *hostname) {
        static const char var[] = "${hostname}";
        const size_t vl = sizeof(var) - 1, hl = strlen(hostname);
        size_t count = 0, len;
        char *out, *o;
        const char *p;

        if (!*s)
                return 0;
        for (p = *s; (p = strstr(p, var)); p += vl)
                count++;
        if (count == 0)
                return 0;
        len = strlen(*s) - count * vl + count * hl;
        out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        o = out;
        for (p = *s;;) {
                const char *q = strstr(p, var);
                size_t n = q ? (size_t) (q - p) : strlen(p);
                memcpy(o, p, n);
                o += n;
                if (!q)
                        break;
                memcpy(o, hostname, hl);
                o += hl;
                p = q + vl;
        }
        *o = 0;
        free(*s);
        *s = out;
        return 0;
}

int graph_subst_hostname(struct graph *g, const char *hostname, char *err, size_t errlen) {
        struct ctx c = { .filename = NULL, .err = err, .errlen = errlen };
        int r = 0;

        if (err && errlen)
                err[0] = 0;
        if (!hostname_is_valid(hostname)) {
                fail_at(&c, 0, 0, "invalid hostname '%s'", hostname);
                return -EINVAL;
        }
        r |= subst(&g->name, hostname);
        for (size_t i = 0; i < g->n_res; i++) {
                struct resource *x = &g->res[i];
                r |= subst(&x->name, hostname);
                r |= subst(&x->file.path, hostname);
                r |= subst(&x->file.content, hostname);
                r |= subst(&x->file.owner, hostname);
                r |= subst(&x->file.group, hostname);
                r |= subst(&x->exec.cmd, hostname);
                r |= subst(&x->exec.shell, hostname);
                r |= subst(&x->exec.ifcmd, hostname);
                r |= subst(&x->exec.ifshell, hostname);
                r |= subst(&x->exec.watchcmd, hostname);
                r |= subst(&x->exec.watchshell, hostname);
                r |= subst(&x->file.source, hostname);
                r |= subst(&x->print.msg, hostname);
        }
        for (size_t i = 0; i < g->n_collect; i++)
                r |= subst(&g->collect[i].pattern, hostname);
        for (size_t i = 0; i < g->n_edges; i++)
                r |= subst(&g->edges[i].name, hostname);
        if (r)
                return -ENOMEM;
        /* what was unique before may collide now ("a-${hostname}" and "a-h1") */
        for (size_t i = 0; i < g->n_res; i++) {
                const struct resource *x = &g->res[i];
                const char *why;
                if (strlen(x->name) > NAME_MAX_LEN)
                        return fail_at(&c, x->line, x->col, "resource name '%s' is longer than %d bytes", x->name,
                                       NAME_MAX_LEN);
                if (x->kind == RES_FILE && (why = path_problem(x->file.path)))
                        return fail_at(&c, x->line, x->col, "file resource '%s': 'path' %s, got '%s'", x->name, why,
                                       x->file.path);
        }
        if ((r = check_unique_names(&c, g, NULL)) < 0)
                return r;
        return check_unique_paths(&c, g);
}
