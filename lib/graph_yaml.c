/* graph_yaml.c: mgmt's YAML graph text (and a resource's JSON form) to a
 * small tree with the libyaml event API (depth-limited, no aliases, one
 * document), and the located errors of the whole parser: FILE:LINE:COL,
 * recorded one per line so that validation can go on after an error. */
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <yaml.h>

#include "graph.h"
#include "graph_internal.h"
#include "macro.h"
#include "util.h"

void ynode_free(struct ynode *n) {
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

bool ynode_is_null(const struct ynode *n) {
        return !n || (n->type == Y_SCALAR && n->plain && !n->is_int &&
                      (n->len == 0 || streq(n->value, "~") || streq(n->value, "null") ||
                       streq(n->value, "Null") || streq(n->value, "NULL")));
}

int fail_at(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) {
        char msg[PATH_MAX + 1024];
        va_list ap;
        size_t o = 0;

        c->n_errs++;
        if (!c->err || c->errlen == 0)
                return -EINVAL;
        if (c->filename && line > 0)
                o = (size_t)snprintf(msg, sizeof msg, "%s:%u:%u: ", c->filename, line, col);
        else if (c->filename)
                o = (size_t)snprintf(msg, sizeof msg, "%s: ", c->filename);
        else if (line > 0)
                o = (size_t)snprintf(msg, sizeof msg, "%u:%u: ", line, col);
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
bool recorded(struct ctx *c, int r) {
        return c->many && r == -EINVAL;
}

/* Append "... and N more errors" when some were left out. */
void errors_finish(struct ctx *c) {
        if (c->err && c->errlen && c->n_errs > c->stored) {
                size_t used = strlen(c->err);
                snprintf(c->err + used, c->errlen - used, "\n... and %zu more error%s",
                         c->n_errs - c->stored, c->n_errs - c->stored == 1 ? "" : "s");
        }
}

static struct ynode *ynode_new(enum ytype t, const yaml_mark_t *m) {
        struct ynode *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->type = t;
        if (m) {
                n->line = (unsigned)m->line + 1;
                n->col = (unsigned)m->column + 1;
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
        line = (unsigned)p->problem_mark.line + 1;
        col = (unsigned)p->problem_mark.column + 1;
        if (p->context)
                return fail_at(c, line, col, "yaml syntax error: %s %s (started at line %zu)", problem,
                               p->context, p->context_mark.line + 1);
        return fail_at(c, line, col, "yaml syntax error: %s", problem);
}

/* A scalar event as a node; a string holding a NUL byte is refused. */
static int scalar_node(struct ctx *c, yaml_event_t *ev, struct ynode **ret) {
        struct ynode *n = ynode_new(Y_SCALAR, &ev->start_mark);

        if (!n)
                return -ENOMEM;
        n->len = ev->data.scalar.length;
        n->value = malloc(n->len + 1);
        if (!n->value) {
                free(n);
                return -ENOMEM;
        }
        memcpy(n->value, ev->data.scalar.value, n->len);
        n->value[n->len] = 0;
        /* an escaped "\0" would silently cut the string short */
        if (memchr(n->value, 0, n->len)) {
                int r = fail_at(c, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                                "a string contains a NUL byte (\\0)");
                ynode_free(n);
                return r;
        }
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
        *ret = n;
        return 0;
}

/* Hang a new node under the open collection (or make it the root); a
 * collection becomes the open one. On failure n is freed. */
static int attach_node(struct ynode **stack, size_t *depth, struct ynode **root, struct ynode *n) {
        int r = 0;

        if (*depth > 0)
                r = ynode_append(stack[*depth - 1], n);
        else if (!*root)
                *root = n;
        else
                r = -EINVAL; /* cannot happen: one document, one root */
        if (r < 0)
                ynode_free(n);
        else if (n->type != Y_SCALAR)
                stack[(*depth)++] = n;
        return r;
}

/* Parse text into a tree with the event API. Refuses aliases, several
 * documents and nesting deeper than YTREE_MAX_DEPTH. *ret is NULL for an
 * empty stream. */
int ytree_parse(struct ctx *c, const char *text, size_t len, struct ynode **ret) {
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
        yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
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
                                r = fail_at(c, (unsigned)ev.start_mark.line + 1,
                                            (unsigned)ev.start_mark.column + 1,
                                            "only one YAML document is allowed in a graph");
                        break;
                case YAML_ALIAS_EVENT:
                        r = fail_at(c, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1,
                                    "yaml aliases ('*%s') are not supported in graphs",
                                    (const char *)ev.data.alias.anchor);
                        break;
                case YAML_SCALAR_EVENT:
                        r = scalar_node(c, &ev, &n);
                        break;
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (depth >= YTREE_MAX_DEPTH) {
                                r = fail_at(c, (unsigned)ev.start_mark.line + 1,
                                            (unsigned)ev.start_mark.column + 1,
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
                if (r >= 0 && n)
                        r = attach_node(stack, &depth, &root, n);
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

int json_to_ynode(json_t *j, struct ynode **ret) {
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
                        n->ival = (long long)json_integer_value(j);
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
