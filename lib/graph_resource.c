/* graph_resource.c: one resource as a whole: its JSON form (export and
 * collect), copy, and equality of resources and of a graph's exports. */
#include <stdio.h>

#include "graph.h"
#include "graph_internal.h"
#include "macro.h"

int resource_from_json(json_t *j, struct resource *ret, char *err, size_t errlen) {
        struct ctx c = {.filename = NULL, .err = err, .errlen = errlen};
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
                return fail_at(&c, 0, 0,
                               "unknown resource kind '%s' (known: file, exec, print, noop, svc, pkg)",
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
        r = resource_from_node(&c, (enum res_kind)kind, n, "kind", ret);
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
                        q |= json_object_set_new(m, "delay",
                                                 json_integer((json_int_t)(r->meta.delay_usec / 1000)));
                if (r->meta.poll_usec)
                        q |= json_object_set_new(
                            m, "poll", json_integer((json_int_t)(r->meta.poll_usec / USEC_PER_SEC)));
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
                        snprintf(buf, sizeof buf, "%04o", (unsigned)r->file.mode);
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
                            j, "pollint", json_integer((json_int_t)(r->exec.pollint_usec / USEC_PER_SEC)));
                if (r->exec.timeout_usec) {
                        if (r->exec.timeout_usec % USEC_PER_SEC == 0)
                                q |= json_object_set_new(
                                    j, "timeout",
                                    json_integer((json_int_t)(r->exec.timeout_usec / USEC_PER_SEC)));
                        else
                                q |= json_object_set_new(j, "timeout",
                                                         json_real((double)r->exec.timeout_usec / 1e6));
                }
                break;
        case RES_PRINT:
                q |= json_object_set_new(j, "msg", json_string(r->print.msg));
                break;
        case RES_SVC:
                if (r->svc.state)
                        q |= json_object_set_new(j, "state", json_string(svc_state_to_string(r->svc.state)));
                if (r->svc.startup)
                        q |= json_object_set_new(j, "startup",
                                                 json_string(svc_startup_to_string(r->svc.startup)));
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
            strdup_opt(src->file.source, &r.file.source) < 0 ||
            strdup_opt(src->exec.ifshell, &r.exec.ifshell) < 0 ||
            strdup_opt(src->exec.watchcmd, &r.exec.watchcmd) < 0 ||
            strdup_opt(src->exec.watchshell, &r.exec.watchshell) < 0 ||
            strdup_opt(src->file.content, &r.file.content) < 0 ||
            strdup_opt(src->file.owner, &r.file.owner) < 0 ||
            strdup_opt(src->file.group, &r.file.group) < 0 || strdup_opt(src->exec.cmd, &r.exec.cmd) < 0 ||
            strdup_opt(src->exec.shell, &r.exec.shell) < 0 ||
            strdup_opt(src->exec.ifcmd, &r.exec.ifcmd) < 0 || strdup_opt(src->print.msg, &r.print.msg) < 0) {
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

/* The JSON of the exported resource of g with this kind and name (the first
 * one, as the publisher keeps the first of a key), NULL if none. */
static json_t *export_json(const struct graph *g, enum res_kind kind, const char *name) {
        for (size_t i = 0; g && i < g->n_res; i++)
                if (g->res[i].exported && g->res[i].kind == kind && streq_null(g->res[i].name, name))
                        return resource_to_json(&g->res[i]);
        return NULL;
}

/* Every exported resource of a is exported by b with the same JSON. */
static bool exports_covered(const struct graph *a, const struct graph *b) {
        for (size_t i = 0; a && i < a->n_res; i++) {
                const struct resource *r = &a->res[i];
                if (!r->exported)
                        continue;
                json_t *ja = export_json(a, r->kind, r->name), *jb = export_json(b, r->kind, r->name);
                bool same = ja && jb && json_equal(ja, jb);
                json_decref(ja);
                json_decref(jb);
                if (!same)
                        return false;
        }
        return true;
}

bool graph_exports_equal(const struct graph *a, const struct graph *b) {
        return exports_covered(a, b) && exports_covered(b, a);
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
                return streq_null(a->file.path, b->file.path) &&
                       streq_null(a->file.content, b->file.content) && a->file.absent == b->file.absent &&
                       a->file.mode == b->file.mode && streq_null(a->file.owner, b->file.owner) &&
                       streq_null(a->file.group, b->file.group) &&
                       streq_null(a->file.source, b->file.source) && a->file.force == b->file.force;
        case RES_EXEC:
                return streq_null(a->exec.cmd, b->exec.cmd) && streq_null(a->exec.shell, b->exec.shell) &&
                       streq_null(a->exec.ifcmd, b->exec.ifcmd) &&
                       a->exec.timeout_usec == b->exec.timeout_usec &&
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
