/* exchange.c: export and collect (mgmt's "@@" resources).
 *
 * Export: the base graph's "@@" resources are written under
 * /_mgmt/exported/<host>/resources/<kind>/<name>, the host's whole set
 * replaced in one transaction (stale keys deleted, current ones put).
 * Collect: one watch on /_mgmt/exported/ keeps a sorted table of every
 * host's exports (this host's included); the graph the engine runs is the
 * base graph minus its exports plus the collected resources of each
 * `collect` kind, a collected file landing at pattern + basename(path).
 * With --trusted-keys, a collected exec runs only when the (signed) graph's
 * collect entry for exec sets allow_exec.
 * A withdrawn export simply leaves the table: the file is no longer managed
 * (and left in place, as mgmt does). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "keys.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

static void exchange_restart(struct agent *a);

static void collected_clear(struct collected *c) {
        free(c->key);
        free(c->host);
        resource_clear(&c->res);
}

void agent_collected_free_all(struct agent *a) {
        for (size_t i = 0; i < a->n_coll; i++)
                collected_clear(&a->coll[i]);
        free(a->coll);
        a->coll = NULL;
        a->n_coll = 0;
}

static ssize_t collected_find(struct agent *a, const char *key, bool *found) {
        size_t lo = 0, hi = a->n_coll;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(a->coll[mid].key, key);
                if (c == 0) {
                        *found = true;
                        return (ssize_t)mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return (ssize_t)lo;
}

/* Insert or replace one exported resource; returns 1 if the table changed. */
static int collected_put(struct agent *a, const char *key, const char *value, size_t len) {
        _cleanup_free_ char *host = NULL, *kind = NULL, *name = NULL;
        struct resource res = {0};
        char err[512] = "";
        json_error_t jerr;
        bool found;
        int r;

        r = key_exported_parse(key, &host, &kind, &name);
        if (r < 0) {
                log_warnx("ignoring malformed export key '%s'", key);
                return 0;
        }
        if (len > GRAPH_MAX_SIZE) { /* a resource is never larger than a whole graph */
                log_warnx("ignoring export '%s': %zu bytes, more than the limit of %d", key, len,
                          GRAPH_MAX_SIZE);
                return 0;
        }
        json_t *j = json_loadb(value, len, 0, &jerr);
        if (!j) {
                log_warnx("ignoring export '%s': bad JSON at %d:%d: %s", key, jerr.line, jerr.column,
                          jerr.text);
                return 0;
        }
        r = resource_from_json(j, &res, err, sizeof err);
        json_decref(j);
        if (r < 0) {
                log_warnx("ignoring export '%s': %s", key, err);
                return 0;
        }
        /* the record must be what its key says: no exec under a file key */
        if (!streq(res_kind_to_string(res.kind), kind) || !streq(res.name, name)) {
                log_warnx("ignoring export '%s': it holds %s[%s], not %s[%s]", key,
                          res_kind_to_string(res.kind), res.name, kind, name);
                resource_clear(&res);
                return 0;
        }
        res.exported = false;
        ssize_t i = collected_find(a, key, &found);
        if (found) {
                if (resource_equal(&a->coll[i].res, &res)) {
                        resource_clear(&res);
                        return 0;
                }
                resource_clear(&a->coll[i].res);
                a->coll[i].res = res;
                log_info("collected %s[%s] from '%s' changed", kind, name, host);
                return 1;
        }
        struct collected *n = reallocarray(a->coll, a->n_coll + 1, sizeof *n);
        if (!n) {
                resource_clear(&res);
                return log_error_errno(-ENOMEM, "out of memory");
        }
        a->coll = n;
        memmove(&a->coll[i + 1], &a->coll[i], (a->n_coll - (size_t)i) * sizeof *n);
        a->coll[i] = (struct collected){.key = strdup(key), .host = TAKE_PTR(host), .res = res};
        a->n_coll++;
        if (!a->coll[i].key)
                return log_error_errno(-ENOMEM, "out of memory");
        log_info("collected %s[%s] exported by '%s'", kind, name, a->coll[i].host);
        return 1;
}

static int collected_delete(struct agent *a, const char *key) {
        bool found;
        ssize_t i = collected_find(a, key, &found);

        if (!found)
                return 0;
        log_info("export '%s' withdrawn: no longer managed here", key);
        collected_clear(&a->coll[i]);
        memmove(&a->coll[i], &a->coll[i + 1], (a->n_coll - (size_t)i - 1) * sizeof *a->coll);
        a->n_coll--;
        return 1;
}

int agent_exchange_compose(const struct graph *base, const struct collected *coll, size_t n_coll,
                           bool trusted, struct graph **ret) {
        struct graph *g = calloc(1, sizeof *g);
        _cleanup_free_ size_t *map = NULL;
        size_t n_base = base ? base->n_res : 0, max = n_base + n_coll;
        int r = -ENOMEM;

        if (!g)
                return -ENOMEM;
        g->name = strdup(base && base->name ? base->name : "");
        g->res = calloc(max ? max : 1, sizeof *g->res);
        g->edges = calloc(base && base->n_edges ? base->n_edges : 1, sizeof *g->edges);
        map = calloc(n_base ? n_base : 1, sizeof *map);
        if (!g->name || !g->res || !g->edges || !map)
                goto fail;

        for (size_t i = 0; i < n_base; i++) {
                map[i] = SIZE_MAX;
                if (base->res[i].exported)
                        continue;
                r = resource_copy(&base->res[i], &g->res[g->n_res]);
                if (r < 0)
                        goto fail;
                map[i] = g->n_res++;
        }
        for (size_t k = 0; base && k < base->n_edges; k++) {
                const struct edge *e = &base->edges[k];
                if (map[e->from] == SIZE_MAX || map[e->to] == SIZE_MAX)
                        continue; /* edges to exported resources do not apply here */
                g->edges[g->n_edges] = (struct edge){.name = strdup(e->name ? e->name : ""),
                                                     .from = map[e->from],
                                                     .to = map[e->to],
                                                     .notify = e->notify};
                if (!g->edges[g->n_edges++].name) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        size_t n_local = g->n_res;
        for (size_t c = 0; base && c < base->n_collect; c++) {
                const struct collect *col = &base->collect[c];
                for (size_t i = 0; i < n_coll; i++) {
                        if (coll[i].res.kind != col->kind)
                                continue;
                        if (trusted && col->kind == RES_EXEC && !col->allow_exec) {
                                /* a host that can export could otherwise run commands on every other */
                                log_warnx("refusing collected exec[%s] from '%s': the signed graph's "
                                          "collect entry "
                                          "for exec does not set 'allow_exec: true'",
                                          coll[i].res.name, coll[i].host);
                                continue;
                        }
                        if (g->n_res == max) /* several collect entries of one kind */
                                break;
                        struct resource *nr = &g->res[g->n_res];
                        r = resource_copy(&coll[i].res, nr);
                        if (r < 0)
                                goto fail;
                        g->n_res++;
                        nr->exported = false;
                        char *name = NULL;
                        if (asprintf(&name, "%s@%s", coll[i].res.name, coll[i].host) < 0) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        free(nr->name);
                        nr->name = name;
                        if (nr->kind == RES_FILE && col->pattern) {
                                const char *base_name = strrchr(coll[i].res.file.path, '/');
                                base_name = base_name ? base_name + 1 : coll[i].res.file.path;
                                char *path = NULL;
                                size_t pl = strlen(col->pattern);
                                if (asprintf(&path, "%s%s%s", col->pattern,
                                             pl > 0 && col->pattern[pl - 1] == '/' ? "" : "/",
                                             base_name) < 0) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                free(nr->file.path);
                                nr->file.path = path;
                        }
                }
        }
        /* two collected files landing at one path (or on a local one) would fight: keep the first */
        for (size_t i = 0; i < g->n_res; i++) {
                if (g->res[i].kind != RES_FILE)
                        continue;
                for (size_t k = i + 1; k < g->n_res; k++) {
                        if (k < n_local || g->res[k].kind != RES_FILE ||
                            !streq(g->res[i].file.path, g->res[k].file.path))
                                continue;
                        log_warnx("collected %s would also manage '%s': ignored", g->res[k].name,
                                  g->res[k].file.path);
                        resource_clear(&g->res[k]);
                        memmove(&g->res[k], &g->res[k + 1], (g->n_res - k - 1) * sizeof *g->res);
                        g->n_res--;
                        k--;
                }
        }
        *ret = g;
        return 0;
fail:
        graph_free(g);
        return r;
}

/* ---- export ---- */

static int on_publish_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_event_source_unref(s);
        agent_exchange_publish(userdata);
        return 0;
}

static void publish_failed(struct agent *a, const char *why) {
        log_warnx("cannot publish exports: %s; retrying", why);
        a->exports_busy = false;
        (void)agent_later(a, USEC_PER_SEC, on_publish_retry);
}

static void on_publish_txn(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                           void *userdata) {
        struct agent *a = userdata;

        if (err) {
                publish_failed(a, err->msg);
                return;
        }
        a->exports_busy = false;
        log_debug("exports published");
        if (a->exports_dirty)
                agent_exchange_publish(a);
}

/* Got the keys currently exported by this host: one txn deletes the stale
 * ones and puts the current set (a put inside a deleted range is refused by
 * etcd, hence no prefix delete). */
static void on_publish_range(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                             void *userdata) {
        struct agent *a = userdata;
        struct etcd_kvs kvs = {0};
        struct etcd_error perr = {0};
        json_t *ops = json_array();
        char **keys = NULL;
        size_t n = 0;
        int r;

        if (err || etcd_parse_range(reply, &kvs, &perr) < 0) {
                json_decref(ops);
                publish_failed(a, err ? err->msg : perr.msg);
                return;
        }
        for (size_t i = 0; a->base && i < a->base->n_res; i++) {
                const struct resource *res = &a->base->res[i];
                if (!res->exported)
                        continue;
                char *key = key_exported(a->hostname, res_kind_to_string(res->kind), res->name);
                json_t *j = resource_to_json(res);
                char *val = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                json_decref(j);
                if (key && val && strv_contains(keys, key) <= 0) {
                        json_array_append_new(ops, etcd_op_put(key, val, 0));
                        (void)strv_push(&keys, key);
                        n++;
                }
                free(key);
                free(val);
        }
        for (size_t i = 0; i < kvs.n; i++)
                if (strv_contains(keys, kvs.kvs[i].key) <= 0)
                        json_array_append_new(ops, etcd_op_delete(kvs.kvs[i].key, false));
        log_info("publishing %zu exported resources (%zu withdrawn)", n, json_array_size(ops) - n);
        strv_free(keys);
        etcd_kvs_clear(&kvs);
        r = etcd_call(a->etcd, ETCD_TXN, etcd_req_txn(NULL, ops, NULL), on_publish_txn, a);
        if (r < 0)
                publish_failed(a, strerror(-r));
}

void agent_exchange_publish(struct agent *a) {
        _cleanup_free_ char *prefix = key_exported_host_prefix(a->hostname);
        int r;

        if (!a->etcd)
                return;
        if (a->exports_busy) {
                a->exports_dirty = true;
                return;
        }
        a->exports_dirty = false;
        a->exports_busy = true;
        r = prefix
                ? etcd_call(a->etcd, ETCD_RANGE, etcd_req_range(prefix, true, 0, true), on_publish_range, a)
                : -ENOMEM;
        if (r < 0)
                publish_failed(a, strerror(-r));
}

/* ---- collect ---- */

static void on_exported_watch(struct etcd_watch *w, const struct etcd_error *err,
                              const struct etcd_watch_msg *msg, void *userdata) {
        struct agent *a = userdata;
        bool changed = false;

        if (err) {
                agent_watch_failed(a, &a->exported_watch, err, msg, "exports", exchange_restart);
                return;
        }
        for (size_t i = 0; i < msg->n_events; i++) {
                const struct etcd_event *ev = &msg->events[i];
                if (ev->type == ETCD_EVENT_PUT)
                        changed |= collected_put(a, ev->kv.key, ev->kv.value ? ev->kv.value : "",
                                                 ev->kv.value_len) > 0;
                else
                        changed |= collected_delete(a, ev->kv.key) > 0;
        }
        if (changed)
                agent_graph_changed(a);
}

static int on_exchange_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_event_source_unref(s);
        exchange_restart(userdata);
        return 0;
}

static void on_exported_range(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                              void *userdata) {
        struct agent *a = userdata;
        struct etcd_kvs kvs = {0};
        struct etcd_error perr = {0};
        _cleanup_free_ char *prefix = key_exported_prefix();
        int r;

        if (err || etcd_parse_range(reply, &kvs, &perr) < 0) {
                (void)agent_later(a, agent_etcd_trouble(a, "cannot read exports", err ? err->msg : perr.msg),
                                  on_exchange_retry);
                return;
        }
        agent_etcd_fine(a);
        agent_collected_free_all(a);
        for (size_t i = 0; i < kvs.n; i++)
                (void)collected_put(a, kvs.kvs[i].key, kvs.kvs[i].value ? kvs.kvs[i].value : "",
                                    kvs.kvs[i].value_len);
        r = prefix ? etcd_watch_new(a->etcd, prefix, true, kvs.revision + 1, on_exported_watch, a,
                                    &a->exported_watch)
                   : -ENOMEM;
        if (r < 0) {
                log_error_errno(r, "cannot watch exports: %m");
                (void)agent_later(a, USEC_PER_SEC, on_exchange_retry);
        }
        etcd_kvs_clear(&kvs);
        agent_graph_changed(a);
}

static void exchange_restart(struct agent *a) {
        _cleanup_free_ char *prefix = key_exported_prefix();
        int r;

        r = prefix ? etcd_call(a->etcd, ETCD_RANGE, etcd_req_range(prefix, true, 0, false),
                               on_exported_range, a)
                   : -ENOMEM;
        if (r < 0) {
                log_warn_errno(r, "cannot read exports: %m");
                (void)agent_later(a, USEC_PER_SEC, on_exchange_retry);
        }
}

int agent_exchange_start(struct agent *a) {
        exchange_restart(a);
        return 0;
}

/* The deploy's graph or the collected resources changed: compose them
 * again and give the result to the engine. */
void agent_graph_changed(struct agent *a) {
        struct graph *g = NULL;
        int r;

        if (!a->base_set)
                return;
        r = agent_exchange_compose(a->base, a->coll, a->n_coll, a->trusted != NULL, &g);
        if (r < 0) {
                log_error_errno(r, "cannot build the graph to run: %m");
                return;
        }
        (void)engine_set_graph(a->engine, g);
}
