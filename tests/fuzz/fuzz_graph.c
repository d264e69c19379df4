/* fuzz_graph.c: libFuzzer target over the graph parser and validator, and
 * over what the agent does next with a valid graph (substitution, ordering,
 * the JSON round trip of every resource). Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct graph *g = NULL;
        char err[512];
        int r;

        r = graph_parse((const char *) data, size, "fuzz.yaml", &g, err, sizeof err);
        if (r < 0) {
                /* every refusal says where: "fuzz.yaml:" then line:col or a message */
                if (r == -EINVAL && !startswith(err, "fuzz.yaml:"))
                        abort();
                if (g)
                        abort();
                return 0;
        }
        size_t *order = NULL;
        if (graph_toposort(g, &order) < 0)
                abort(); /* validation refuses cycles */
        free(order);
        for (size_t i = 0; i < g->n_res; i++) {
                json_t *j = resource_to_json(&g->res[i]);
                struct resource back;
                if (!j)
                        abort();
                if (resource_from_json(j, &back, err, sizeof err) < 0 || !resource_equal(&g->res[i], &back))
                        abort(); /* the JSON form must carry a valid resource unchanged */
                resource_clear(&back);
                json_decref(j);
        }
        /* substitution may make names or paths collide: refused with a position */
        err[0] = 0;
        r = graph_subst_hostname(g, "fuzz-host", err, sizeof err);
        if (r < 0 && (r != -EINVAL || !err[0]))
                abort();
        graph_free(g);
        return 0;
}
