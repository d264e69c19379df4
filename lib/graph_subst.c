/* graph_subst.c: ${hostname} substitution in a built graph, and the checks
 * it must pass again afterwards (names and paths may collide or grow). */
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "graph_internal.h"
#include "macro.h"
#include "util.h"

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
                size_t n = q ? (size_t)(q - p) : strlen(p);
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
        struct ctx c = {.filename = NULL, .err = err, .errlen = errlen};
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
                        return fail_at(&c, x->line, x->col, "resource name '%s' is longer than %d bytes",
                                       x->name, NAME_MAX_LEN);
                if (x->kind == RES_FILE && (why = path_problem(x->file.path)))
                        return fail_at(&c, x->line, x->col, "file resource '%s': 'path' %s, got '%s'",
                                       x->name, why, x->file.path);
        }
        if ((r = check_unique_names(&c, g, NULL)) < 0)
                return r;
        return check_unique_paths(&c, g);
}
