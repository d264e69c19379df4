/* graph_internal.h: what the parts of the graph parser share (lib/graph*.c):
 * the YAML tree, the error context and the field rules. Not an API.
 *   graph_yaml.c    libyaml events (and JSON) to a small tree; located errors
 *   graph_values.c  one typed value of a field: string, bool, int, mode, path...
 *   graph_fields.c  kinds and their fields: which fields, each field's rule, meta
 *   graph_resource.c  a resource's JSON form, copy, equality
 *   graph_order.c   look-up by (kind, name) and the topological order
 *   graph.c         building and checking a whole graph
 *   graph_subst.c   ${hostname} substitution */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "graph.h"
#include "macro.h"

#define YTREE_MAX_DEPTH 32
#define NAME_MAX_LEN 255

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
        enum ytype type;
        unsigned line, col; /* 1-based; 0 when the node came from JSON */
        char *value;        /* scalar text */
        size_t len;
        bool plain;  /* plain (unquoted) scalar: may be null or a number */
        bool is_int; /* from a JSON integer: ival holds it */
        long long ival;
        struct ynode **items; /* sequence items; mapping: key, value, key, value... */
        size_t n, cap;
};

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

#define fail(c, node, ...) fail_at((c), (node) ? (node)->line : 0, (node) ? (node)->col : 0, __VA_ARGS__)

/* graph_yaml.c */
void ynode_free(struct ynode *n);
bool ynode_is_null(const struct ynode *n);
/* Record (or, outside "many" mode, set) an error at line:col; returns -EINVAL. */
int fail_at(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) _printf_(4, 5);
bool recorded(struct ctx *c, int r);
void errors_finish(struct ctx *c);
int ytree_parse(struct ctx *c, const char *text, size_t len, struct ynode **ret);
int json_to_ynode(json_t *j, struct ynode **ret);

/* graph_values.c */
const char *ytype_name(const struct ynode *n);
int get_string(struct ctx *c, const char *what, const struct ynode *v, const char **ret);
int dup_string(struct ctx *c, const char *what, const struct ynode *v, char **ret);
int dup_string_opt(struct ctx *c, const char *what, const struct ynode *v, char **ret);
int get_bool_opt(struct ctx *c, const char *what, const struct ynode *v, bool *ret);
int get_int(struct ctx *c, const char *what, const struct ynode *v, long long min, long long max,
            long long *ret);
bool has_ctrl(const char *s);
int check_name(struct ctx *c, const char *what, const struct ynode *v, const char *name);
const char *path_problem(const char *path);
bool account_is_valid(const char *s);
int parse_mode(struct ctx *c, const char *what, const struct ynode *v, int *ret);
int parse_timeout(struct ctx *c, const char *what, const struct ynode *v, uint64_t *ret);
int parse_shell(struct ctx *c, const char *what, const struct ynode *v, char **ret);
const struct ynode *map_get(const struct ynode *m, const char *key);
bool is_unset(const struct ynode *v);

/* graph_fields.c */
int check_keys(struct ctx *c, const struct ynode *m, const char *const *fields, const char *extra,
               const char *where);
int resource_from_node(struct ctx *c, enum res_kind kind, const struct ynode *m, const char *extra,
                       struct resource *ret);

/* graph_order.c */
int cmp_res_idx(const void *a, const void *b, void *userdata);
ssize_t find_res(const struct graph *g, const size_t *sorted, enum res_kind kind, const char *name);
int toposort_full(const struct graph *g, size_t **ret_order, size_t *ret_cycle_edge, char *cycle,
                  size_t cyclelen);

/* graph.c */
/* Names are unique per kind; ret_sorted (may be NULL): indexes sorted by
 * kind and name. */
int check_unique_names(struct ctx *c, struct graph *g, size_t **ret_sorted);
/* No two file resources manage the same path. */
int check_unique_paths(struct ctx *c, const struct graph *g);
