/* graph.c: mgmt's YAML graph format (DESIGN.md "Graphs"): build struct
 * graph from the tree (graph_yaml.c), validating everything with
 * FILE:LINE:COL messages and going on after an error so that all of them
 * are reported at once; names and paths unique, edges resolved and
 * acyclic. The field rules are in graph_fields.c, ${hostname} substitution
 * in graph_subst.c. */
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
#include "strv.h"
#include "util.h"

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
        static const char *const fields[] = {"kind", "name", NULL};
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
                return fail(c, kn, "%s: unknown kind '%s' (known: file, exec, print, noop, svc, pkg)", where,
                            ks);
        if (startswith(ns, "@@"))
                ns += 2;
        ssize_t i = find_res(g, sorted, (enum res_kind)kind, ns);
        if (i < 0 && refused) {
                char key[NAME_MAX_LEN + 16];
                snprintf(key, sizeof key, "%s/%s", ks, ns);
                if (strv_contains(refused, key))
                        return -ENOENT; /* its error is reported already */
        }
        if (i < 0)
                return fail(c, nn, "%s names no existing resource: there is no %s resource '%s'", where, ks,
                            ns);
        *ret = (size_t)i;
        return 0;
}

static int cmp_path_idx(const void *a, const void *b, void *userdata) {
        const struct graph *g = userdata;
        return strcmp(g->res[*(const size_t *)a].file.path, g->res[*(const size_t *)b].file.path);
}

/* Names are unique per kind. ret_sorted: resource indexes sorted by kind
 * and name, for edge look-ups. */
int check_unique_names(struct ctx *c, struct graph *g, size_t **ret_sorted) {
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
                        r = fail_at(c, b->line, b->col,
                                    "duplicate %s resource name '%s' (first declared at line %u)",
                                    res_kind_to_string(b->kind), b->name, a->line);
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
int check_unique_paths(struct ctx *c, const struct graph *g) {
        _cleanup_free_ size_t *idx = calloc(g->n_res + 1, sizeof(size_t));
        size_t n = 0;
        int r = 0;

        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_res; i++)
                if (g->res[i].kind == RES_FILE && !g->res[i].exported)
                        idx[n++] = i;
        qsort_r(idx, n, sizeof(size_t), cmp_path_idx, (void *)g);
        for (size_t i = 1; i < n; i++) {
                const struct resource *a = &g->res[idx[i - 1]], *b = &g->res[idx[i]];
                if (streq(a->file.path, b->file.path)) {
                        if (a->line > b->line) {
                                const struct resource *t = a;
                                a = b;
                                b = t;
                        }
                        r = fail_at(c, b->line, b->col,
                                    "file resources '%s' and '%s' (line %u) both manage '%s'", b->name,
                                    a->name, a->line, b->file.path);
                        if (!c->many)
                                return r;
                }
        }
        return r;
}

/* an error: -ENOMEM (or any error outside "many" mode) ends the validation;
 * in a helper it returns from the helper, whose caller returns it in turn */
#define KEEP_GOING(expr)                                                                                    \
        do {                                                                                                \
                int _r = (expr);                                                                            \
                if (_r < 0 && !recorded(c, _r))                                                             \
                        return _r;                                                                          \
        } while (0)

/* resources: {kind: [ {name:..., ...}, ... ]}. Each valid one is added to g;
 * "kind/name" of each refused one goes to *refused, so that edges to it do
 * not also report it missing. */
static int build_resources(struct ctx *c, struct graph *g, const struct ynode *v, size_t *cap,
                           char ***refused) {
        int r;

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
                                KEEP_GOING(fail(
                                    c, k,
                                    "unknown resource kind '%s' (known: file, exec, print, noop, svc, pkg)",
                                    k->value));
                                continue;
                        }
                        for (size_t j = 0; j < i; j += 2)
                                if (v->items[j]->type == Y_SCALAR && streq(v->items[j]->value, k->value))
                                        twice = true;
                        if (twice) {
                                KEEP_GOING(
                                    fail(c, k, "resource kind '%s' appears twice in 'resources'", k->value));
                                continue;
                        }
                        if (ynode_is_null(list))
                                continue;
                        if (list->type != Y_SEQ) {
                                KEEP_GOING(fail(c, list, "resources of kind '%s' must be a list, got %s",
                                                k->value, ytype_name(list)));
                                continue;
                        }
                        for (size_t j = 0; j < list->n; j++) {
                                struct resource res;
                                r = resource_from_node(c, (enum res_kind)kind, list->items[j], NULL, &res);
                                if (r < 0) {
                                        KEEP_GOING(r);
                                        /* edges to it must not report it missing */
                                        const struct ynode *nn = list->items[j]->type == Y_MAP
                                                                     ? map_get(list->items[j], "name")
                                                                     : NULL;
                                        if (nn && nn->type == Y_SCALAR && nn->value) {
                                                char key[NAME_MAX_LEN + 16];
                                                snprintf(key, sizeof key, "%s/%s", k->value,
                                                         startswith(nn->value, "@@") ? nn->value + 2
                                                                                     : nn->value);
                                                if (strv_push(refused, key) < 0)
                                                        return -ENOMEM;
                                        }
                                        continue;
                                }
                                if ((r = push_res(g, cap, &res)) < 0) {
                                        resource_clear(&res);
                                        return r;
                                }
                        }
                }
        }
        return 0;
}

/* collect: [ {kind: K, pattern: P} ]; an empty pattern ('') is not set. */
static int build_collect(struct ctx *c, struct graph *g, const struct ynode *v) {
        int r;

        if (v && !ynode_is_null(v) && v->type != Y_SEQ)
                KEEP_GOING(fail(c, v, "'collect' must be a list of {kind, pattern}, got %s", ytype_name(v)));
        else if (v && !ynode_is_null(v)) {
                static const char *const fields[] = {"kind", "pattern", "allow_exec", NULL};
                g->collect = calloc(v->n + 1, sizeof(struct collect));
                if (!g->collect)
                        return -ENOMEM;
                for (size_t i = 0; i < v->n; i++) {
                        const struct ynode *e = v->items[i], *kn, *pn;
                        const char *ks;
                        bool twice = false;
                        if (e->type != Y_MAP) {
                                KEEP_GOING(
                                    fail(c, e, "a 'collect' entry must be a mapping {kind, pattern}, got %s",
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
                                                "unknown kind '%s' in 'collect' (known: file, exec, print, "
                                                "noop, svc, pkg)",
                                                ks));
                                continue;
                        }
                        for (size_t j = 0; j < g->n_collect; j++)
                                if (g->collect[j].kind == (enum res_kind)kind)
                                        twice = true;
                        if (twice) {
                                KEEP_GOING(fail(c, kn, "kind '%s' is collected twice in 'collect'", ks));
                                continue;
                        }
                        struct collect *col = &g->collect[g->n_collect];
                        col->kind = (enum res_kind)kind;
                        const struct ynode *an = map_get(e, "allow_exec");
                        if (an && kind != RES_EXEC) {
                                KEEP_GOING(fail(c, an,
                                                "'allow_exec' applies only to a 'collect' entry of kind "
                                                "'exec', not '%s'",
                                                ks));
                                continue;
                        }
                        if (an && (r = get_bool_opt(c, "collect 'allow_exec'", an, &col->allow_exec)) < 0) {
                                KEEP_GOING(r);
                                continue;
                        }
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
                                KEEP_GOING(
                                    fail(c, pn,
                                         "collect 'pattern' for kind 'file' must be an absolute directory "
                                         "ending in '/', got '%s'",
                                         col->pattern));
                }
        }
        return 0;
}

/* edges: [ {name, from: {kind, name}, to: {kind, name}, notify} ], their ends
 * looked up in sorted; the line and column of each kept edge go to
 * *ret_eline and *ret_ecol (owned by the caller, for the cycle report). */
static int build_edges(struct ctx *c, struct graph *g, const struct ynode *v, const size_t *sorted,
                       char *const *refused, unsigned **ret_eline, unsigned **ret_ecol) {
        unsigned *eline = NULL, *ecol = NULL;
        int r;

        if (v && !ynode_is_null(v) && v->type != Y_SEQ)
                KEEP_GOING(fail(c, v, "'edges' must be a list, got %s", ytype_name(v)));
        else if (v && !ynode_is_null(v)) {
                static const char *const fields[] = {"name", "from", "to", "notify", NULL};
                g->edges = calloc(v->n + 1, sizeof(struct edge));
                *ret_eline = eline = calloc(v->n + 1, sizeof(unsigned));
                *ret_ecol = ecol = calloc(v->n + 1, sizeof(unsigned));
                if (!g->edges || !eline || !ecol)
                        return -ENOMEM;
                for (size_t i = 0; i < v->n; i++) {
                        const struct ynode *e = v->items[i], *nn, *fn, *tn, *on;
                        struct edge *ed = &g->edges[g->n_edges];
                        char where[NAME_MAX_LEN + 32];
                        size_t dup = SIZE_MAX;
                        if (e->type != Y_MAP) {
                                KEEP_GOING(fail(c, e,
                                                "an edge must be a mapping {name, from, to, notify}, got %s",
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
                        } else if ((r = edge_end(c, g, sorted, refused, ed->name, "from", fn, &ed->from)) <
                                   0) {
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
                        if ((on = map_get(e, "notify")) &&
                            (r = get_bool_opt(c, "edge 'notify'", on, &ed->notify)) < 0) {
                                KEEP_GOING(r);
                                ok = false;
                        }
                        if (dup != SIZE_MAX) {
                                KEEP_GOING(fail(c, nn,
                                                "duplicate edge name '%s' (first declared at line %u)",
                                                ed->name, eline[dup]));
                                ok = false;
                        }
                        if (!ok) {
                                free(ed->name);
                                *ed = (struct edge){0};
                                continue;
                        }
                        eline[g->n_edges] = e->line;
                        ecol[g->n_edges] = e->col;
                        g->n_edges++;
                }
        }
        return 0;
}

/* Validate the tree and build the graph. Errors are recorded and the
 * validation goes on (c->many) wherever what follows does not depend on the
 * broken part: every resource, collect entry and edge is checked. */
static int build_graph(struct ctx *c, const struct ynode *root, struct graph **ret) {
        static const char *const top_fields[] = {"graph", "comment", "resources", "collect", "edges", NULL};
        _cleanup_(graph_freep) struct graph *g = calloc(1, sizeof(*g));
        _cleanup_free_ size_t *sorted = NULL;
        _cleanup_free_ unsigned *eline = NULL, *ecol = NULL;
        _cleanup_strv_ char **refused = NULL; /* "kind/name" of resources that failed validation */
        const struct ynode *v;
        size_t cap = 0;
        int r;

        if (!g)
                return -ENOMEM;
        if (!root)
                return fail_at(c, 1, 1, "empty graph: expected a mapping with at least 'graph: NAME'");
        if (root->type != Y_MAP)
                return fail(
                    c, root,
                    "a graph must be a mapping with 'graph', 'resources', 'collect', 'edges', got %s",
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
                KEEP_GOING(fail(
                    c, v, "'graph' (the graph name) must be at most %d bytes with no control characters",
                    NAME_MAX_LEN));
        if ((v = map_get(root, "comment")) && v->type != Y_SCALAR)
                KEEP_GOING(fail(c, v, "'comment' must be a string, got %s", ytype_name(v)));

        /* resources, then the checks across them */
        if ((r = build_resources(c, g, map_get(root, "resources"), &cap, &refused)) < 0)
                return r;
        KEEP_GOING(check_unique_names(c, g, &sorted));
        if (!sorted)
                return -ENOMEM; /* check_unique_names returns it unless out of memory */
        KEEP_GOING(check_unique_paths(c, g));

        if ((r = build_collect(c, g, map_get(root, "collect"))) < 0)
                return r;
        if ((r = build_edges(c, g, map_get(root, "edges"), sorted, refused, &eline, &ecol)) < 0)
                return r;

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

#undef KEEP_GOING

int graph_parse(const char *text, size_t len, const char *filename, struct graph **ret, char *err,
                size_t errlen) {
        struct ctx c = {.filename = filename ? filename : "<graph>", .err = err, .errlen = errlen};
        struct ynode *root = NULL;
        int r;

        if (err && errlen)
                err[0] = 0;
        if (!text) /* e.g. a deploy record without a graph: same as an empty file */
                text = "", len = 0;
        if (len > GRAPH_MAX_SIZE)
                return fail_at(&c, 0, 0, "graph is %zu bytes, larger than the limit of %d bytes (1 MiB)",
                               len, GRAPH_MAX_SIZE);
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
        struct ctx c = {.filename = path, .err = err, .errlen = errlen};
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_max(path, GRAPH_MAX_SIZE, &text, &len);
        if (r == -EFBIG)
                return fail_at(&c, 0, 0, "graph is larger than the limit of %d bytes (1 MiB)",
                               GRAPH_MAX_SIZE);
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
