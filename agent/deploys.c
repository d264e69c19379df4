/* deploys.c: follow /_mgmt/deploy/ with one watch (no polling). On a new
 * highest id: decode the payload, validate the graph with the same code as
 * mgmt-deploy, substitute ${hostname} and hand it to the engine. A deploy
 * that does not validate is reported failed and the previous graph keeps
 * running. In --seeds --file mode the local graph runs until a deploy newer
 * than those present at start arrives. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "agent.h"
#include "deploy.h"
#include "keys.h"
#include "log.h"
#include "macro.h"

static void deploys_restart(struct agent *a);

int agent_deploy_payload_graph(const char *payload, size_t len, int64_t id, const char *hostname,
                               struct graph **ret, char *err, size_t errlen) {
        struct deploy d = {0};
        char why[512] = "";
        char fname[64];
        struct graph *g = NULL;
        int r;

        r = deploy_decode(payload, len, &d, why, sizeof why);
        if (r < 0) {
                snprintf(err, errlen, "deploy %lld: bad payload: %s", (long long)id, why);
                return -EINVAL;
        }
        if (d.id != id) {
                snprintf(err, errlen, "deploy %lld: payload says id %lld", (long long)id, (long long)d.id);
                deploy_clear(&d);
                return -EINVAL;
        }
        snprintf(fname, sizeof fname, "deploy-%lld.yaml", (long long)id);
        r = graph_parse(d.graph, d.graph_len, fname, &g, why, sizeof why);
        deploy_clear(&d);
        if (r < 0) {
                snprintf(err, errlen, "%s", why);
                return -EINVAL;
        }
        r = graph_subst_hostname(g, hostname, why, sizeof why);
        if (r < 0) {
                graph_free(g);
                if (r == -EINVAL)
                        snprintf(err, errlen, "%s:%s (after ${hostname} substitution)", fname, why);
                else
                        snprintf(err, errlen, "deploy %lld: cannot substitute ${hostname}: %s",
                                 (long long)id, strerror(-r));
                return r;
        }
        *ret = g;
        return 0;
}

/* Run g (deploy id) from now on. This host's exports are published again
 * only when they change: the first graph always, afterwards when g exports
 * something else than the graph it replaces (a publish already in flight or
 * waiting for a retry reads the current graph when it builds its txn). With
 * 200 agents the two requests of a publish that changes nothing were two
 * thirds of the load a deploy put on etcd. */
void agent_set_base(struct agent *a, struct graph *g, int64_t id) {
        bool publish = !a->base_set || !graph_exports_equal(a->base, g);

        if (a->base)
                graph_free(a->base);
        a->base = g;
        a->base_set = true;
        a->deploy_id = id;
        a->deploy_failed = false;
        free(a->deploy_error);
        a->deploy_error = NULL;
        if (id > 0)
                log_notice("applying deploy %lld (graph '%s', %zu resources)", (long long)id,
                           g && g->name ? g->name : "", g ? g->n_res : 0);
        if (a->etcd && publish)
                agent_exchange_publish(a);
        agent_graph_changed(a);
}

/* A deploy payload for id arrived (a watch event, or the read of the
 * highest id). It is followed when it is the highest that exists: newer
 * than the one followed, or that one rewritten (a later mod revision, e.g.
 * the id of a deleted bad payload re-used). */
static void deploy_received(struct agent *a, int64_t id, int64_t mod_rev, const char *payload, size_t len) {
        struct graph *g = NULL;
        char err[1024] = "";

        if (id <= 0 || id < a->deploy_highest ||
            (id == a->deploy_highest && mod_rev <= a->deploy_highest_rev))
                return;
        a->deploy_highest = id;
        a->deploy_highest_rev = mod_rev;
        if (a->file_until >= 0) {
                if (id <= a->file_until)
                        return;
                log_notice("deploy %lld is newer than those present at start: replacing the local graph",
                           (long long)id);
                a->file_until = -1;
        }
        if (agent_trust_check(a, id, payload, len, err, sizeof err) < 0 ||
            agent_deploy_payload_graph(payload, len, id, a->hostname, &g, err, sizeof err) < 0) {
                log_errorx("deploy %lld refused, keeping the previous graph: %s", (long long)id, err);
                a->deploy_failed = true;
                free(a->deploy_error);
                a->deploy_error = strdup(err);
                (void)sd_notifyf(false, "STATUS=deploy %lld failed: %s", (long long)id, err);
                /* even a refused first deploy is an answer: the unit has started */
                agent_ready(a);
                agent_status_update(a);
                return;
        }
        agent_set_base(a, g, id);
}

/* The deploy followed was deleted: forget it, so that the highest one that
 * remains is followed again (read by the caller); a failure it caused is no
 * longer reported. */
static void deploy_forget(struct agent *a, const char *why) {
        log_notice("deploy %lld %s: following the highest deploy that remains", (long long)a->deploy_highest,
                   why);
        a->deploy_highest = 0;
        a->deploy_highest_rev = 0;
        if (a->deploy_failed) {
                a->deploy_failed = false;
                free(a->deploy_error);
                a->deploy_error = NULL;
                agent_status_update(a);
        }
}

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        sd_event_source_unref(s);
        deploys_restart(userdata);
        return 0;
}

static void deploys_retry_later(struct agent *a, const char *what, const char *msg) {
        (void)agent_later(a, agent_etcd_trouble(a, what, msg), on_restart_timer);
}

static void on_deploy_watch(struct etcd_watch *w, const struct etcd_error *err,
                            const struct etcd_watch_msg *msg, void *userdata) {
        struct agent *a = userdata;

        if (err) {
                agent_watch_failed(a, &a->deploy_watch, err, msg, "deploys", deploys_restart);
                return;
        }
        bool reread = false;
        for (size_t i = 0; i < msg->n_events; i++) {
                const struct etcd_event *ev = &msg->events[i];
                const char *leaf = NULL;
                int64_t id = key_deploy_id(ev->kv.key, &leaf);
                if (id <= 0 || !leaf || !streq(leaf, "payload"))
                        continue;
                if (ev->type == ETCD_EVENT_DELETE) {
                        /* an older one deleted (pruned) changes nothing */
                        if (id == a->deploy_highest) {
                                deploy_forget(a, "was deleted");
                                reread = true;
                        }
                        continue;
                }
                log_info("deploy %lld written (revision %lld)", (long long)id,
                         (long long)ev->kv.mod_revision);
                deploy_received(a, id, ev->kv.mod_revision, ev->kv.value ? ev->kv.value : "",
                                ev->kv.value_len);
        }
        if (reread)
                deploys_restart(a);
}

static void on_payload(struct etcd_client *c, const struct etcd_error *err, json_t *reply, void *userdata) {
        struct agent *a = userdata;
        struct etcd_kvs kvs = {0};
        struct etcd_error perr = {0};
        const char *leaf = NULL;

        if (err || etcd_parse_range(reply, &kvs, &perr) < 0) {
                deploys_retry_later(a, "cannot read the latest deploy", err ? err->msg : perr.msg);
                return;
        }
        if (kvs.n == 1)
                deploy_received(a, key_deploy_id(kvs.kvs[0].key, &leaf), kvs.kvs[0].mod_revision,
                                kvs.kvs[0].value ? kvs.kvs[0].value : "", kvs.kvs[0].value_len);
        else {
                /* deleted (or compacted) since the keys were read: read them again */
                log_info("the latest deploy vanished while reading it; reading deploys again");
                (void)agent_later(a, USEC_PER_SEC / 10, on_restart_timer); /* not an etcd failure */
        }
        etcd_kvs_clear(&kvs);
}

/* Find the highest deploy id (keys only), watch from the next revision so
 * nothing written in between is missed, then fetch that one payload. */
static void on_deploy_range(struct etcd_client *c, const struct etcd_error *err, json_t *reply,
                            void *userdata) {
        struct agent *a = userdata;
        struct etcd_kvs kvs = {0};
        struct etcd_error perr = {0};
        _cleanup_free_ char *prefix = key_deploy_prefix();
        int64_t best_id = 0;
        int r;

        if (err || etcd_parse_range(reply, &kvs, &perr) < 0) {
                deploys_retry_later(a, "cannot read deploys", err ? err->msg : perr.msg);
                return;
        }
        agent_etcd_fine(a);
        best_id = deploy_highest_id(&kvs);
        /* the deploy followed is gone from a read that is not older than it
         * (e.g. deleted while a compacted watch was down): forget it */
        if (best_id < a->deploy_highest && kvs.revision >= a->deploy_highest_rev)
                deploy_forget(a, "no longer exists");
        if (a->file_until == 0 && !a->deploy_watch) {
                a->file_until = best_id;
                log_info("running the local graph until a deploy newer than %lld arrives",
                         (long long)best_id);
        }
        if (!a->deploy_watch && prefix) {
                r = etcd_watch_new(a->etcd, prefix, true, kvs.revision + 1, on_deploy_watch, a,
                                   &a->deploy_watch);
                if (r < 0) {
                        etcd_kvs_clear(&kvs);
                        deploys_retry_later(a, "cannot watch deploys", strerror(-r));
                        return;
                }
        }
        if (best_id > a->deploy_highest && (a->file_until < 0 || best_id > a->file_until)) {
                _cleanup_free_ char *key = key_deploy_payload(best_id);
                r = key ? etcd_call(a->etcd, ETCD_RANGE, etcd_req_range(key, false, kvs.revision, false),
                                    on_payload, a)
                        : -ENOMEM;
                if (r < 0) {
                        deploys_retry_later(a, "cannot read the latest deploy", strerror(-r));
                }
        } else if (best_id == 0 && a->file_until < 0 && !a->base_set) {
                log_notice("no deploy yet: waiting for one");
                agent_set_base(a, NULL, 0);
        }
        etcd_kvs_clear(&kvs);
}

/* The payloads only, at one revision (hash keys are not needed). */
static void deploys_restart(struct agent *a) {
        _cleanup_free_ char *prefix = key_deploy_prefix();
        int r;

        if (!prefix) {
                log_error_errno(-ENOMEM, "out of memory");
                return;
        }
        r = etcd_call(a->etcd, ETCD_RANGE, etcd_req_range(prefix, true, 0, true), on_deploy_range, a);
        if (r < 0)
                deploys_retry_later(a, "cannot read deploys", strerror(-r));
}

int agent_deploys_start(struct agent *a) {
        deploys_restart(a);
        return 0;
}
