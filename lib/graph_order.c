/* graph_order.c: resources looked up by (kind, name) and put in an order
 * that respects every edge (Kahn's algorithm with a heap, ties by
 * position); a cycle is named edge by edge. */
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

/* Order resource indexes by (kind, name, position), for qsort_r. */
int cmp_res_idx(const void *a, const void *b, void *userdata) {
        const struct graph *g = userdata;
        const struct resource *x = &g->res[*(const size_t *)a], *y = &g->res[*(const size_t *)b];
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        int c = strcmp(x->name, y->name);
        if (c)
                return c;
        return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Index of resource (kind, name) via the sorted index, or -1. */
ssize_t find_res(const struct graph *g, const size_t *sorted, enum res_kind kind, const char *name) {
        size_t lo = 0, hi = g->n_res;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct resource *r = &g->res[sorted[mid]];
                int c = r->kind != kind ? (r->kind < kind ? -1 : 1) : strcmp(r->name, name);
                if (c == 0)
                        return (ssize_t)sorted[mid];
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
int toposort_full(const struct graph *g, size_t **ret_order, size_t *ret_cycle_edge, char *cycle,
                  size_t cyclelen) {
        size_t n = g->n_res, m = g->n_edges, done = 0;
        _cleanup_free_ size_t *indeg = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *out_start = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *out = calloc(m + 1, sizeof(size_t)); /* edge indexes grouped by source */
        _cleanup_free_ size_t *heapv = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ size_t *order = calloc(n + 1, sizeof(size_t));
        struct heap h = {.v = heapv};

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
                        _cleanup_free_ size_t *seen =
                            calloc(n + 1, sizeof(size_t)); /* step+1 when visited */
                        _cleanup_free_ size_t *via =
                            calloc(n + 1, sizeof(size_t)); /* edge taken into node */
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
                        /* x starts the cycle: forward order is x -> ... following edges in reverse of the
                         * walk */
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
                                                snprintf(part, sizeof part, "%s '%s' -> ",
                                                         res_kind_to_string(r->kind), r->name);
                                                strlcat(cycle, part, cyclelen);
                                        }
                                        const struct resource *r = &g->res[path[0]];
                                        char part[NAME_MAX_LEN + 32];
                                        snprintf(part, sizeof part, "%s '%s'", res_kind_to_string(r->kind),
                                                 r->name);
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
